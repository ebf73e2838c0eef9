"""The check engine: catalogue, then exploration, then shrinking, diagnosis and report.

Each case is run the same way: build the inputs (a pure function of the case
and the dtype), call the target through its canonical signature under a
timeout, compare the shape, then every element against the exact result of
:mod:`refconv.oracle` within the per-element bound of the precision profile
(:mod:`refconv.conformance.bounds`).  The first failing case is shrunk greedily
(fewer channels, no bias, unit stride and dilation, no padding, smaller
sizes, small integer inputs) while it keeps failing the same way, then
diagnosed by :mod:`refconv.conformance.diagnose`.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from . import bounds, ops
from .cases import OPS, POOLS, Case, Capabilities, catalogue, cases, dtype_of
from .report import Failure, Report
from .targets import Target, resolve

__all__ = ["check", "DEFAULT_MAX_EXAMPLES", "Outcome", "Runner", "BOUND_MODES"]

#: hypothesis examples after the catalogue, by default
DEFAULT_MAX_EXAMPLES = 100
BOUND_MODES = ("elementwise", "normwise")


class _Found(Exception):
    pass


class TargetTimeout(Exception):
    """The target did not return within the timeout."""


@dataclass
class Outcome:
    ok: bool
    kind: str = ""
    message: str = ""
    actual: Any = None
    expected: Any = None
    bound: Any = None
    worst: dict | None = None
    violations: int = 0
    traceback: str = ""


def _call_with_timeout(fn: Callable[[], Any], timeout: float | None) -> Any:
    """Run ``fn`` in a daemon thread; raise :class:`TargetTimeout` if it outlives ``timeout`` seconds."""
    if not timeout:
        return fn()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True, name="refconv-target")
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TargetTimeout(f"no result after {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _exact_in(case: Case, S: np.ndarray, prof: bounds.Profile, dtype: str) -> np.ndarray:
    """Where every summation order is exact: ``dyadic`` values, products exact, partial sums in the format.

    Products of a multiple of ``2**-12`` (12 significant bits) and ``{-1, 0, 1}`` are exact; any partial sum
    is a multiple of ``2**-12`` of magnitude at most ``S``, hence exact in a format of ``p`` bits when
    ``S * 2**12 < 2**p``.  That needs the inputs themselves exact (no input rounding, a dtype of at least
    13 bits) and the accumulation and output formats both wide enough.
    """
    p_acc = round(-math.log2(prof.u_acc))
    p_out = round(-math.log2(prof.u_out))
    p_dt = bounds.FORMATS[dtype].p if dtype in bounds.FORMATS else 0
    if prof.u_in != 0 or p_dt < 13:
        return np.zeros(np.shape(S), dtype=bool)
    limit = 2.0 ** (min(p_acc, p_out) - 12)
    return np.isfinite(S) & (S < limit)


class Runner:
    """Runs cases of one op against one target and judges them."""

    def __init__(self, target: Target, op: str, dtype: str, prof: bounds.Profile, *, bound: str = "elementwise",
                 timeout: float | None = 10.0, isolate: bool = False) -> None:
        self.target, self.op, self.dtype, self.prof = target, op, dtype, prof
        self.bound_mode, self.timeout = bound, timeout
        self.fn = target.function(op)
        self.calls = 0
        self.unbounded = 0
        self.hung = False
        self._isolated = None
        if isolate:
            from .isolation import IsolatedTarget

            self._isolated = IsolatedTarget(target, op, timeout)

    def close(self) -> None:
        if self._isolated is not None:
            self._isolated.close()

    def invoke(self, case: Case, arrays: dict[str, np.ndarray]) -> Any:
        self.calls += 1
        if self._isolated is not None:
            return self._isolated.call(case, arrays)
        return _call_with_timeout(lambda: ops.call(self.fn, case, arrays, self.target.keywords), self.timeout)

    def bound(self, case: Case, arrays: dict[str, np.ndarray], exp: np.ndarray, prof: bounds.Profile | None = None) -> np.ndarray:
        prof = prof or self.prof
        S = ops.magnitude(case, arrays)
        if case.op == "max_pool":
            b = bounds.elementwise_bound(S, exp, 0, prof, input_factors=1)
        elif case.op == "avg_pool":
            # k - 1 additions, then up to four roundings on each term's path: a reciprocal 1/k, the products
            # x_i * (1/k) or the division, and a rescaling k/count at the borders (and its product)
            b = bounds.elementwise_bound(S, exp, case.terms() + 3, prof, input_factors=1)
        else:
            b = bounds.elementwise_bound(S, exp, case.terms(), prof, input_factors=2)
        if self.bound_mode == "normwise" and case.op == "conv":
            b = np.maximum(b, _normwise(case, arrays, prof) + b)
        elif case.values == "dyadic" and case.op not in POOLS:
            b = np.where(_exact_in(case, S, prof, self.dtype), 0.0, b)
        # the expectation is the exact value correctly rounded to float64: allow its half ulp
        return b + np.abs(exp) * 2.0**-52

    def evaluate(self, case: Case) -> Outcome:
        return self.evaluate_arrays(case, case.arrays(self.dtype))

    def evaluate_arrays(self, case: Case, arrays: dict[str, np.ndarray]) -> Outcome:
        """Run the target on ``arrays`` (the inputs of ``case``) and judge the result."""
        pristine = {k: v.copy() for k, v in arrays.items()}
        try:
            actual = self.invoke(case, arrays)
        except TargetTimeout as exc:
            self.hung = True
            return Outcome(False, "timeout", f"the target hung: {exc}")
        except Exception as exc:  # noqa: BLE001 - any exception of the target is its failure
            if type(exc).__name__ == "TargetCrashed":
                return Outcome(False, "crash", f"the target crashed: {exc}")
            tb = traceback.format_exc()
            if type(exc).__name__ == "TargetRaised":
                head, _, tb = str(exc).partition("\n")
                return Outcome(False, "exception", f"the target raised {head}", traceback=tb)
            return Outcome(False, "exception", f"the target raised {type(exc).__name__}: {exc}", traceback=tb)
        try:
            act = _to_numpy(actual)
        except Exception as exc:  # noqa: BLE001
            return Outcome(False, "type", f"the result is not an array of numbers: {type(actual).__name__} ({exc})")
        changed = [k for k, v in arrays.items() if not np.array_equal(v, pristine[k], equal_nan=True)]
        if changed:
            return Outcome(False, "mutation", f"the target modified its input(s) {', '.join(changed)} in place", actual=act)
        exp = ops.expected(case, arrays)
        if act.shape != exp.shape:
            return Outcome(False, "shape", f"output shape {act.shape}, expected {exp.shape}", actual=act, expected=exp)
        return self.compare(case, arrays, act, exp)

    def compare(self, case: Case, arrays: dict[str, np.ndarray], act: np.ndarray, exp: np.ndarray,
                prof: bounds.Profile | None = None) -> Outcome:
        a64 = act.astype(np.float64)
        bnd = self.bound(case, arrays, exp, prof)
        if prof is None and np.isinf(bnd).any() and np.isfinite(exp).all():
            self.unbounded += 1  # n*u >= 1: no error bound exists for those elements
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(a64 - exp)
        finite_exp = np.isfinite(exp)
        bad_nonfinite = finite_exp & ~np.isfinite(a64)
        # an infinite or NaN expectation must be matched exactly (same infinity, or NaN for NaN)
        special_mismatch = ~finite_exp & ~((a64 == exp) | (np.isnan(a64) & np.isnan(exp)))
        bad_nonfinite = bad_nonfinite | special_mismatch
        viol = bad_nonfinite | (err > bnd)
        if not viol.any():
            return Outcome(True, actual=act, expected=exp, bound=bnd)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            score = np.where(bad_nonfinite, np.inf, err / np.where(bnd > 0, bnd, np.finfo(float).tiny))
        score = np.where(viol, score, -1)
        idx = np.unravel_index(int(np.nanargmax(np.where(np.isnan(score), np.inf, score))), exp.shape)
        worst = {
            "index": [int(i) for i in idx],
            "expected": float(exp[idx]),
            "actual": float(a64[idx]),
            "error": float(err[idx]) if np.isfinite(err[idx]) else float("inf"),
            "bound": float(bnd[idx]),
        }
        kind = "nonfinite" if bad_nonfinite.any() else "value"
        n = int(viol.sum())
        msg = (f"{n} of {exp.size} elements differ from the exact result by more than the bound"
               if kind == "value" else f"{int(bad_nonfinite.sum())} element(s) where the target and the exact result "
               "disagree on infinity or NaN")
        return Outcome(False, kind, msg, actual=act, expected=exp, bound=bnd, worst=worst, violations=n)


def _to_numpy(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu()
        if str(getattr(v, "dtype", "")) == "torch.bfloat16":
            v = v.float()
        v = v.numpy()
    a = np.asarray(v)
    if a.dtype.kind not in "fiu" and a.dtype.name != "bfloat16":
        raise TypeError(f"dtype {a.dtype}")
    return a


def _normwise(case: Case, arrays: dict[str, np.ndarray], prof: bounds.Profile) -> np.ndarray:
    """FFT-style norm-wise bound per (n, o) slice, broadcast over the output positions."""
    x = np.asarray(arrays["x"], dtype=np.float64)
    w = np.asarray(arrays["w"], dtype=np.float64)
    n, cin = x.shape[:2]
    cout = w.shape[0]
    g, cg = case.groups, cin // case.groups
    og = cout // g
    xn = np.sqrt((x.reshape(n, cin, -1) ** 2).sum(-1)) if x.size else np.zeros((n, cin))  # ||x[n, c]||_2
    wn = np.abs(w.reshape(cout, cg, -1)).sum(-1)  # ||w[o, c]||_1
    out = np.zeros((n, cout))
    for o in range(cout):
        grp = o // og
        out[:, o] = xn[:, grp * cg:(grp + 1) * cg] @ wn[o]
    padded = [s + lo + hi for s, (lo, hi) in zip(case.spatial, case.padding)]
    length = 2 ** math.ceil(math.log2(max(2, 2 * math.prod(padded))))
    b = bounds.normwise_fft_bound(out, 1.0, length, cg, prof)
    return b.reshape(n, cout, *([1] * case.dims)) * np.ones(case.output_shape)


# --------------------------------------------------------------------------- shrinking


def _mutations(c: Case) -> list[Case]:
    """Simpler variants of ``c``, most drastic first."""
    d = c.dims
    out: list[Case] = []

    def axis(i: int, **kw: Any) -> Case:
        vals = {k: tuple(v if j == i else getattr(c, k)[j] for j in range(d)) for k, v in kw.items()}
        return replace(c, **vals)

    if c.n > 1:
        out.append(replace(c, n=1))
    if c.groups > 1:
        out.append(replace(c, groups=1, cin=c.cin // c.groups, cout=max(1, c.cout // c.groups)))
    if c.bias:
        out.append(replace(c, bias=False))
    if c.cin // c.groups > 1:
        out.append(replace(c, cin=c.cin - c.groups, cout=c.cout if c.op not in POOLS else c.cin - c.groups))
    if c.op not in POOLS and c.cout // c.groups > 1:
        out.append(replace(c, cout=c.cout - c.groups))
    if c.ceil_mode:
        out.append(replace(c, ceil_mode=False))
    if not c.count_include_pad:
        out.append(replace(c, count_include_pad=True))
    for i in range(d):
        if d > 1 and (c.spatial[i], c.kernel[i]) != (1, 1):
            out.append(axis(i, spatial=1, kernel=1, stride=1, dilation=1, padding=(0, 0), output_padding=0))
        if c.stride[i] > 1:
            out.append(axis(i, stride=1, output_padding=0))
        if c.dilation[i] > 1:
            out.append(axis(i, dilation=1))
            out.append(axis(i, dilation=c.dilation[i] - 1))
        if c.padding[i] != (0, 0):
            out.append(axis(i, padding=(0, 0)))
            lo, hi = c.padding[i]
            if lo:
                out.append(axis(i, padding=(lo - 1, hi)))
            if hi:
                out.append(axis(i, padding=(lo, hi - 1)))
        if c.output_padding[i]:
            out.append(axis(i, output_padding=0))
        if c.kernel[i] > 1:
            out.append(axis(i, kernel=c.kernel[i] - 1))
        if c.spatial[i] > 1:
            out.append(axis(i, spatial=c.spatial[i] - 1))
            if c.kernel[i] > 1:
                out.append(axis(i, spatial=c.spatial[i] - 1, kernel=c.kernel[i] - 1))
    if c.values != "small":
        out.append(replace(c, values="small"))
    if c.seed != 0:
        out.append(replace(c, seed=0))
    return out


def shrink(runner: Runner, caps: Capabilities, case: Case, outcome: Outcome, *, max_calls: int = 150,
           max_seconds: float = 15.0) -> tuple[Case, Outcome, int]:
    """Greedy shrinking: apply the first simpler variant that fails the same way, until none does."""
    t0, calls, steps = time.perf_counter(), 0, 0
    seen = {case}
    improved = True
    while improved and calls < max_calls and time.perf_counter() - t0 < max_seconds:
        improved = False
        for cand in _mutations(case):
            if cand in seen:
                continue
            seen.add(cand)
            if not cand.is_valid() or not caps.supports(cand):
                continue
            calls += 1
            out = runner.evaluate(cand)
            if runner.hung:
                return case, outcome, steps
            if not out.ok and out.kind == outcome.kind:
                case, outcome, steps = replace(cand, label=case.label), out, steps + 1
                improved = True
                break
            if calls >= max_calls or time.perf_counter() - t0 >= max_seconds:
                break
    return case, outcome, steps


# --------------------------------------------------------------------------- repro


def _array_src(a: np.ndarray, dtype: str) -> str:
    vals = np.asarray(a).astype(np.float64).tolist()
    dt = f"np.{dtype}" if dtype != "bfloat16" else "ml_dtypes.bfloat16"
    return f"np.array({vals!r}, dtype={dt})"


def repro(target: Target, op: str, case: Case, dtype: str, max_literal: int = 300) -> str:
    arrays = case.arrays(dtype)
    lines = ["import numpy as np", "from refconv import oracle"]
    if dtype == "bfloat16":
        lines.append("import ml_dtypes")
    lines.append(target.setup.format(op=op))
    if sum(a.size for a in arrays.values()) <= max_literal:
        for k, a in arrays.items():
            lines.append(f"{k} = {_array_src(a, dtype)}")
    else:
        lines.append("from refconv.conformance.cases import Case")
        lines.append(f"case = {dataclasses.replace(case, label='')!r}")
        lines.append(f"{', '.join(arrays)} = case.arrays({dtype!r}).values()")
    lines.append(f"y = {ops.repro_call(case)}")
    exp_call = ops.repro_call(case, f"oracle.{op}")
    for k in arrays:  # the oracle is given the exact values in float64
        exp_call = exp_call.replace(f"({k},", f"({k}.astype(np.float64),").replace(f" {k},", f" {k}.astype(np.float64),")
    if op in POOLS:
        exp_call = exp_call.replace(f"oracle.{op}(x,", f"oracle.{op}(x.astype(np.float64),")
    lines.append(f"expected = {exp_call}  # exact, correctly rounded to float64")
    lines.append("print(np.max(np.abs(np.asarray(y, dtype=np.float64) - expected)))")
    return "\n".join(lines)


def _inputs_for_report(case: Case, dtype: str, limit: int = 120) -> dict[str, Any]:
    arrays = case.arrays(dtype)
    if sum(a.size for a in arrays.values()) > limit:
        return {k: f"array of shape {a.shape} (see the reproduction)" for k, a in arrays.items()}
    return {k: np.asarray(a).astype(np.float64).tolist() for k, a in arrays.items()}


# --------------------------------------------------------------------------- check


def _validate(op: str, dims: Any, dtype: str, precision: str | None, max_examples: Any, bound: str) -> None:
    from ..params import ConvParamError

    if op not in OPS:
        raise ConvParamError(f"op={op!r}: ops are " + ", ".join(repr(o) for o in OPS))
    if not isinstance(dims, int) or isinstance(dims, bool) or dims not in (1, 2, 3):
        raise ConvParamError(f"dims={dims!r}: dims must be 1, 2 or 3")
    try:
        dtype_of(dtype)
    except ValueError as exc:
        raise ConvParamError(str(exc)) from None
    if precision is not None and precision not in bounds.PROFILES:
        raise ConvParamError(f"precision={precision!r}: profiles are " + ", ".join(repr(p) for p in bounds.PROFILES))
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 0:
        raise ConvParamError(f"max_examples={max_examples!r}: must be an integer >= 0")
    if bound not in BOUND_MODES:
        raise ConvParamError(f"bound={bound!r}: bound modes are " + ", ".join(repr(b) for b in BOUND_MODES))


def check(
    target: Any,
    *,
    op: str = "conv",
    dims: int = 2,
    dtype: str = "float32",
    precision: str | None = None,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    seed: int | None = None,
    bound: str = "elementwise",
    timeout: float | None = 10.0,
    isolate: bool = False,
    capabilities: Any = None,
    progress: bool = False,
    diagnose: bool = True,
) -> Report:
    """Check ``target`` against the oracle: catalogue first, then ``max_examples`` explored cases.

    Parameters
    ----------
    target : str or callable
        A built-in adapter name (``'torch'``, ``'onnxruntime'``, ``'jax'``,
        ``'scipy'``, ``'numpy'``, ``'refconv.fast'``), ``'module:function'``,
        ``'path/to/file.py:function'``, or a callable with the canonical
        signature of ``op`` (:mod:`refconv.conformance.ops`).
    op : str
        ``'conv'``, ``'conv_transpose'``, ``'max_pool'``, ``'avg_pool'``,
        ``'conv_grad_input'`` or ``'conv_grad_weight'``.
    dims : int
        Spatial axes, 1 to 3.
    dtype : str
        Dtype of the input arrays given to the target.
    precision : str, optional
        The precision profile claimed (default: ``dtype``): ``'float64'``,
        ``'float32'``, ``'tf32'``, ``'bfloat16'``, ``'float16'``.
    max_examples : int
        Hypothesis examples after the deterministic catalogue (0: catalogue only).
    seed : int, optional
        Seed of the exploration (random when None; the report names it).
    bound : str
        ``'elementwise'`` (direct summation in any order) or ``'normwise'``
        (adds the norm-wise allowance of FFT-based algorithms, conv only).
    timeout : float or None
        Seconds one call may take before the target counts as hung.
    isolate : bool
        Run the target in a subprocess (native code that may crash the interpreter).
    capabilities : Capabilities or dict, optional
        Override what the target declares.
    progress : bool
        Show a progress bar on stderr (tqdm when installed).
    diagnose : bool
        Explain a failure by re-running the oracle with perturbed conventions.

    Returns
    -------
    Report
        ``report.ok`` is the verdict; ``str(report)`` reads in ten seconds;
        ``report.to_json()`` / ``report.save_json(path)`` export it.  A target
        that raises, hangs, crashes or modifies its inputs fails with that
        case; it never stops the check.

    Raises
    ------
    refconv.params.ConvParamError
        A bad ``op``, ``dims``, ``dtype``, ``precision``, ``max_examples`` or
        ``bound``, or a combination the target declares unsupported.
    refconv.conformance.targets.TargetError
        A target that cannot be resolved or loaded.

    Examples
    --------
    >>> from refconv import oracle
    >>> def good(x, w, b, *, stride, padding, dilation, groups):
    ...     return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    >>> check(good, dims=1, max_examples=5, seed=0).ok
    True
    >>> def flipped(x, w, b, *, stride, padding, dilation, groups):
    ...     return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)
    >>> r = check(flipped, dims=1, max_examples=5, seed=0)
    >>> r.ok, r.failure.kind
    (False, 'value')
    >>> any('flip' in d for d in r.failure.diagnosis)
    True
    """
    _validate(op, dims, dtype, precision, max_examples, bound)
    t0 = time.perf_counter()
    tgt = resolve(target, capabilities=capabilities)
    caps = tgt.capabilities(op, dims, dtype)
    prec = precision or dtype
    prof = bounds.profile(prec, dtype)
    if seed is None:
        seed = secrets.randbelow(2**31)
    report = Report(target=tgt.name, op=op, dims=dims, dtype=dtype, precision=prec, bound=bound, seed=seed,
                    profile=prof.describe(), capabilities=_caps_dict(caps))
    unsupported = _unsupported(caps, op, dims, dtype)
    if unsupported:
        from ..params import ConvParamError

        raise ConvParamError(f"target={tgt.name!r} does not support {unsupported}")
    report.skipped = _skipped(caps, op)
    runner = Runner(tgt, op, dtype, prof, bound=bound, timeout=timeout, isolate=isolate)
    cat = catalogue(op, dims, caps)
    bar = _progress(progress, len(cat) + max_examples, f"{tgt.name} {op}")
    found: dict[str, Any] = {}
    try:
        for c in cat:
            out = runner.evaluate(c)
            report.catalogue_cases += 1
            if bar:
                bar.update(1)
            if not out.ok:
                found.update(case=c, outcome=out)
                break
        if not found and max_examples > 0:
            _explore(runner, caps, op, dims, max_examples, seed, report, found, bar)
        if found:
            report.time_to_failure_s = time.perf_counter() - t0
            report.failure = _failure(runner, caps, found["case"], found["outcome"], diagnose)
    finally:
        runner.close()
        if bar:
            bar.close()
    if runner.unbounded:
        report.notes.append(f"{runner.unbounded} case(s) had reductions too long for a {prec} bound (n*u >= 1): "
                            "their values were not judged")
    report.elapsed_s = time.perf_counter() - t0
    return report


def _caps_dict(caps: Capabilities) -> dict[str, Any]:
    d = {f.name: getattr(caps, f.name) for f in dataclasses.fields(caps) if f.name not in ("rule",)}
    d["padding"] = sorted(d["padding"])
    return d


def _unsupported(caps: Capabilities, op: str, dims: int, dtype: str) -> str:
    if op not in caps.ops:
        return f"op={op!r} (supported: {', '.join(caps.ops)})"
    if dims not in caps.dims:
        return f"dims={dims} (supported: {', '.join(map(str, caps.dims))})"
    if dtype not in caps.dtypes:
        return f"dtype={dtype!r} (supported: {', '.join(caps.dtypes)})"
    return ""


def _skipped(caps: Capabilities, op: str) -> list[str]:
    out = []
    pads = set(caps.padding)
    if "asymmetric" not in pads:
        out.append("padding other than " + "/".join(sorted(pads)))
    for name in ("stride", "dilation", "groups", "bias", "batch", "channels"):
        if not getattr(caps, name) and (name not in ("groups", "bias") or op not in POOLS):
            out.append(name)
    if op == "conv_transpose" and not caps.output_padding:
        out.append("output_padding")
    if op in POOLS and not caps.ceil_mode:
        out.append("ceil_mode")
    if op == "avg_pool" and len(caps.count_include_pad) < 2:
        out.append(f"count_include_pad={not caps.count_include_pad[0]}")
    out += list(caps.notes)
    return out


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None
    import sys

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, unit="case")


def _explore(runner: Runner, caps: Capabilities, op: str, dims: int, max_examples: int, seed: int, report: Report,
             found: dict[str, Any], bar: Any) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    @hseed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=False, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False)
    @given(cases(op, dims, caps))
    def explore(case: Case) -> None:
        if found:
            raise _Found
        out = runner.evaluate(case)
        report.explored_cases += 1
        if bar:
            bar.update(1)
        if not out.ok:
            found.update(case=case, outcome=out)
            raise _Found
        if runner.hung:
            raise _Found

    try:
        explore()
    except _Found:
        pass
    except Exception as exc:  # hypothesis gave up (too many invalid draws): report it, not a crash
        if not found:
            report.notes.append(f"exploration stopped early: {type(exc).__name__}: {str(exc).splitlines()[0]}")


def _failure(runner: Runner, caps: Capabilities, case: Case, outcome: Outcome, diagnose: bool) -> Failure:
    original = case.describe()
    first_case, first_outcome = case, outcome
    steps = 0
    if outcome.kind not in ("timeout", "crash") and not runner.hung:
        case, outcome, steps = shrink(runner, caps, case, outcome)
    f = Failure(
        kind=outcome.kind, case=case, message=outcome.message, worst=outcome.worst, violations=outcome.violations,
        traceback=outcome.traceback, original=original, shrink_steps=steps,
        expected_shape=tuple(case.output_shape),
        actual_shape=None if outcome.actual is None else tuple(np.shape(outcome.actual)),
    )
    f.inputs = _inputs_for_report(case, runner.dtype)
    f.repro = repro(runner.target, runner.op, case, runner.dtype)
    if diagnose and outcome.kind in ("value", "shape", "nonfinite", "exception"):
        from . import diagnose as dg

        try:
            f.diagnosis, f.shape_formulas = dg.diagnose(runner, case, outcome)
            if steps and first_outcome.kind == outcome.kind:
                # the unshrunk case tells conventions (and precisions) apart better: prefer its explanation
                first, _ = dg.diagnose(runner, first_case, first_outcome)
                if any("reproduces" in d or "precision" in d or "rounding" in d for d in first):
                    f.diagnosis = first
        except Exception as exc:  # noqa: BLE001 - a failed diagnosis must not hide the verdict
            f.diagnosis = [f"(diagnosis unavailable: {type(exc).__name__}: {exc})"]
    return f
