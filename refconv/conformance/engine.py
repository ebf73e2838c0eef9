"""The check engine: catalogue, then exploration, then shrinking, diagnosis and report.

Each case is run the same way: build the inputs (a pure function of the case
and the dtype), compute the exact result of :mod:`refconv.oracle` and the
per-element bound of the precision profile (:mod:`refconv.conformance.bounds`)
from copies of them, *then* call the target through its canonical signature
(:meth:`Runner.invoke`, the one place that calls it; see
:mod:`refconv.conformance.isolation`), compare the shape, then every element.
The first failing case is shrunk greedily (fewer channels, no bias, unit
stride and dilation, no padding, smaller sizes, small integer inputs) while it
keeps failing the same way, then diagnosed by
:mod:`refconv.conformance.diagnose`.

Whose failure is it?  What the target does during its call (returning a wrong
value, raising anything, ``SystemExit`` included, hanging, crashing, modifying
its inputs, replacing refconv's own functions) fails the case: verdict FAIL.
Anything else that goes wrong during the check is refconv's failure: verdict
ERROR, with the traceback (never a PASS, never blamed on the target).
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import bounds, ops
from . import registry
from .cases import Case, Capabilities, catalogue, cases, coverage, dtype_of
from .isolation import (CallResult, IsolatedTarget, TargetCrashed, TargetFailure, TargetRaised, TargetTimeout,
                        alarm_usable, call_in_process, modified, to_array)
from .report import Failure, Report, _array_src, _inputs_for_report, repro  # noqa: F401 - repro is engine's too
from .targets import (FEATURES, Target, TargetError, bind_worker, caps_dict, declaration, excluded, features, fit,
                      infer_op, missing, resolve, restrict)

__all__ = ["check", "open_target", "DEFAULT_MAX_EXAMPLES", "Outcome", "Runner", "BOUND_MODES", "TargetTimeout",
           "shrink", "repro"]

#: hypothesis examples after the catalogue, by default
DEFAULT_MAX_EXAMPLES = 100
#: every ``bound=`` value: the algorithms of :data:`refconv.conformance.bounds.BOUND_MODES` and their aliases
BOUND_MODES = tuple(bounds.BOUND_MODES) + tuple(bounds.BOUND_ALIASES)
#: the text that ends every report of refconv's own failure
BUG = "a bug in refconv, not in the target: please report it with this output and the seed"

_to_numpy = to_array  # the name earlier versions used


class _Found(Exception):
    pass


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
    #: elements whose bound is infinite (n*u >= 1): their values were not judged
    unjudged: int = 0


# --------------------------------------------------------------------------- what the target may not touch


def _guarded() -> list[Any]:
    """The modules whose functions judge the target (a target that replaces one fails with 'tampering')."""
    from .. import oracle

    return [oracle, ops, bounds]


def _snapshot() -> dict[tuple[str, str], Any]:
    return {(m.__name__, k): v for m in _guarded() for k, v in vars(m).items()
            if callable(v) and not k.startswith("__")}


def _replaced(snapshot: dict[tuple[str, str], Any]) -> list[str]:
    """Names in ``snapshot`` that no longer hold the same object; each is put back."""
    mods = {m.__name__: m for m in _guarded()}
    out = []
    for (mod, name), obj in snapshot.items():
        if vars(mods[mod]).get(name) is not obj:
            setattr(mods[mod], name, obj)
            out.append(f"{mod}.{name}")
    return out


def _timeout(value: Any, name: str = "timeout") -> float | None:
    """Seconds as a positive float, or None for no limit (None or inf); ConvParamError otherwise."""
    from ..params import ConvParamError

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConvParamError(f"{name}={value!r}: expected a number of seconds > 0, or None for no limit")
    v = float(value)
    if math.isnan(v) or v <= 0:
        raise ConvParamError(f"{name}={value!r}: expected a number of seconds > 0 (inf or None: no limit)")
    return None if math.isinf(v) else v


class Runner:
    """Runs cases of one op against one target and judges them.

    The target is called on this thread (as its users call it) under a
    ``SIGALRM`` timeout, or in a worker process (``isolate=True``, or a given
    ``worker``).  Off the main thread, where no alarm can interrupt it, a
    target that can be loaded by name runs in a worker; any other runs
    without a timeout, and :attr:`notes` says so.
    """

    def __init__(self, target: Target, op: str, dtype: str, prof: bounds.Profile, *, bound: str = "direct",
                 timeout: float | None = 10.0, isolate: bool = False, worker: IsolatedTarget | None = None,
                 load_timeout: float | None = None) -> None:
        self.target, self.op, self.dtype, self.prof = target, op, dtype, prof
        self.bound_mode, self.timeout = bound, _timeout(timeout)
        self.calls = 0
        self.unbounded = 0
        self.hung = False
        self.notes: list[str] = []
        #: the catalogue and explored cases run (not the shrinker's): what the report says was covered
        self.judged: list[Case] = []
        #: refconv's own failures inside the diagnosis (a candidate that crashed): said in the report
        self.diagnosis_errors: list[str] = []
        self._isolated = worker
        self._own_worker = False
        if worker is None and not isolate and self.timeout is not None and not alarm_usable():
            if target.spec:
                isolate = True
                self.notes.append("the target ran in a worker process: a timeout in process needs SIGALRM and the "
                                  "main thread")
            else:
                self.notes.append("no timeout: the check ran off the main thread (or without SIGALRM), where a call "
                                  "cannot be interrupted, and the target has no importable name for a worker process")
                self.timeout = None
        why = _declared_isolation(target, op, dtype) if worker is None and not isolate and target.spec else ""
        if why:  # an adapter whose library is known to kill the process on some cases of op (a fatal signal)
            isolate = True
            self.notes.append(f"the target ran in a worker process: {why}")
        if worker is None and isolate:
            self._isolated = IsolatedTarget(target, self.timeout, load_timeout)
            self._isolated.load()
            self._own_worker = True
        self.fn = target.function(op) if self._isolated is None else None
        self._snapshot = _snapshot() if self._isolated is None else {}
        #: refconv functions the target replaced before the first call (when it was imported): the first case fails
        self.pending_tampering: list[str] = []

    def close(self) -> None:
        if self._own_worker and self._isolated is not None:
            self._isolated.close()

    #: a declared budget (:func:`check`'s ``catalogue_limit``): the most shapes of the catalogue run, and why
    budget: tuple[int | None, str] = (None, "")

    # ---------------------------------------------------------------- the call
    def _call(self, case: Case, arrays: dict[str, np.ndarray], pristine: dict[str, np.ndarray]) -> CallResult:
        """The one place that calls the target: its result, or a TargetFailure for what it did.

        Exceptions of other kinds raised here come from refconv itself.
        """
        self.calls += 1
        if self._isolated is not None:
            return self._isolated.call(self.op, case, arrays)
        fn = self.fn
        assert fn is not None  # in process: the target's function was looked up at start
        value = call_in_process(lambda: ops.call(fn, case, arrays, self.target.keywords), self.timeout)
        return CallResult(value, modified(arrays, pristine))

    def invoke(self, case: Case, arrays: dict[str, np.ndarray]) -> Any:
        """The target's result on ``arrays``.

        Raises what the target raised in this process (an ``Exception``), or a
        TargetFailure (TargetRaised for ``SystemExit`` and the like or from a
        worker, TargetTimeout, TargetCrashed).
        """
        try:
            res = self._call(case, arrays, {k: np.array(v, copy=True) for k, v in arrays.items()})
        except TargetRaised as exc:
            if isinstance(exc.original, Exception):
                raise exc.original from None
            raise
        finally:
            self._tampering()
        return res.value

    def _tampering(self) -> list[str]:
        names = self.pending_tampering + _replaced(self._snapshot)
        self.pending_tampering = []
        return names

    def _failed(self, exc: TargetFailure) -> Outcome:
        if isinstance(exc, TargetTimeout):
            self.hung = True
            return Outcome(False, "timeout", f"the target hung: {exc}")
        if isinstance(exc, TargetCrashed):
            return Outcome(False, "crash", f"the target crashed: {exc}")
        if isinstance(exc, TargetRaised) and exc.unsupported:
            return Outcome(False, "unsupported", f"the target refused the case as unsupported: {exc}",
                           traceback=exc.traceback)
        return Outcome(False, "exception", f"the target raised {exc}", traceback=getattr(exc, "traceback", ""))

    @staticmethod
    def _tampered(names: list[str]) -> Outcome:
        return Outcome(False, "tampering", f"the target replaced {', '.join(names)} (put back): an implementation "
                       "must not change the functions that judge it")

    # ---------------------------------------------------------------- judging
    def bound(self, case: Case, arrays: dict[str, np.ndarray], exp: np.ndarray, prof: bounds.Profile | None = None) -> np.ndarray:
        """Per-element bound of the claimed algorithm (:func:`refconv.conformance.bounds.case_bound`)."""
        if case.record.family == "quantized":
            return np.zeros(np.shape(exp))  # integer results are judged bit for bit
        return bounds.case_bound(_Bounded.of(case), arrays, exp, prof or self.prof, algorithm=self.bound_mode,
                                 dtype=self.dtype)

    def evaluate(self, case: Case) -> Outcome:
        return self.evaluate_arrays(case, case.arrays(self.dtype))

    def evaluate_arrays(self, case: Case, arrays: dict[str, np.ndarray]) -> Outcome:
        """Run the target on ``arrays`` (the inputs of ``case``) and judge the result."""
        if getattr(case, "expect_refusal", False):
            return self._refusal(case, arrays)
        pristine = {k: np.array(v, copy=True) for k, v in arrays.items()}
        # the judgement is fixed before the target runs: it cannot change what judges this call
        exp, indices = _split(case, ops.expected(case, pristine))
        bnd = self.bound(case, pristine, exp)
        failure: TargetFailure | None = None
        try:
            res = self._call(case, arrays, pristine)
        except TargetFailure as exc:
            failure = exc
        tampered = self._tampering()
        if tampered:
            return self._tampered(tampered)
        if failure is not None:
            return self._failed(failure)
        if res.not_array:
            return Outcome(False, "type", f"the result is not an array of numbers: {res.not_array}")
        try:
            act, act_indices = _results(case, res.value)
        except Exception as exc:  # noqa: BLE001 - whatever the target returned
            return Outcome(False, "type", f"the result is not {_wanted(case)}: {type(res.value).__name__} ({exc})")
        if res.mutated:
            return Outcome(False, "mutation", f"the target modified its input(s) {', '.join(res.mutated)} in place",
                           actual=act)
        if act.shape != exp.shape:
            return Outcome(False, "shape", f"output shape {act.shape}, expected {exp.shape}", actual=act, expected=exp)
        out = self._judge(act, exp, bnd, count=True)
        if not out.ok or indices is None:
            return out
        assert act_indices is not None  # an op with indices returns them (_results checked the pair)
        return _judge_indices(out, act_indices, indices)

    def _refusal(self, case: Case, arrays: dict[str, np.ndarray]) -> Outcome:
        """A configuration the definition rejects: raising is right, returning a result is a finding."""
        from ..params import ConvParamError

        try:
            case.validate()
            reason = "invalid parameters"
        except ConvParamError as exc:
            reason = str(exc)
        failure: TargetFailure | None = None
        try:
            res = self._call(case, arrays, {k: np.array(v, copy=True) for k, v in arrays.items()})
        except TargetFailure as exc:
            failure = exc
        tampered = self._tampering()
        if tampered:
            return self._tampered(tampered)
        if isinstance(failure, TargetRaised):
            return Outcome(True, message=f"refused: {failure}")
        if failure is not None:  # a hang or a crash is not a refusal
            return self._failed(failure)
        shape = "(not an array)" if res.not_array else str(tuple(np.shape(res.value)))
        return Outcome(False, "accepted-invalid", f"the target returned a result of shape {shape} for a "
                       f"configuration the definition rejects ({reason})")

    def compare(self, case: Case, arrays: dict[str, np.ndarray], act: np.ndarray, exp: np.ndarray,
                prof: bounds.Profile | None = None) -> Outcome:
        """Judge ``act`` against ``exp`` within the bound of ``prof`` (default: the claimed profile)."""
        return self._judge(act, exp, self.bound(case, arrays, exp, prof), count=prof is None)

    def _judge(self, act: np.ndarray, exp: np.ndarray, bnd: np.ndarray, *, count: bool = False) -> Outcome:
        a64 = act.astype(np.float64)
        unjudged = int((np.isinf(bnd) & np.isfinite(exp)).sum())  # n*u >= 1: no error bound exists there
        if count and unjudged:
            self.unbounded += 1
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(a64 - exp)
        finite_exp = np.isfinite(exp)
        bad_nonfinite = finite_exp & ~np.isfinite(a64)
        # an infinite or NaN expectation must be matched exactly (same infinity, or NaN for NaN)
        special_mismatch = ~finite_exp & ~((a64 == exp) | (np.isnan(a64) & np.isnan(exp)))
        bad_nonfinite = bad_nonfinite | special_mismatch
        viol = bad_nonfinite | (err > bnd)
        if not viol.any():
            return Outcome(True, actual=act, expected=exp, bound=bnd, unjudged=unjudged)
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
        return Outcome(False, kind, msg, actual=act, expected=exp, bound=bnd, worst=worst, violations=n,
                       unjudged=unjudged)


class _Bounded:
    """``case`` seen by :mod:`refconv.conformance.bounds` as the op whose bound applies (its record's ``bound_as``).

    Everything but ``op`` is the case's own: the magnitudes and the expectation come from its own oracle.
    """

    def __init__(self, case: Case, op: str) -> None:
        self._case, self.op = case, op

    def __getattr__(self, name: str) -> Any:
        return getattr(self._case, name)

    @staticmethod
    def of(case: Case) -> Any:
        rec = case.record
        return case if rec.bound_as is None else _Bounded(case, rec.bound_as)


def _split(case: Case, result: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``(values, indices)`` of an op with indices (``OpRecord.outputs``), else ``(result, None)``."""
    if len(case.record.outputs) > 1:
        return result[0], result[1]
    return result, None


def _wanted(case: Case) -> str:
    outs = case.record.outputs
    return "an array of numbers" if len(outs) == 1 else f"a pair ({', '.join(outs)}) of arrays"


def _results(case: Case, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The target's result as arrays: ``(values, indices)`` for an op with indices; TypeError/ValueError otherwise."""
    if len(case.record.outputs) == 1:
        return to_array(value), None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"expected a pair ({', '.join(case.record.outputs)})")
    idx = to_array(value[1])
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices of dtype {idx.dtype}, expected integers")
    return to_array(value[0]), idx


def _judge_indices(out: Outcome, act: np.ndarray, exp: np.ndarray) -> Outcome:
    """The indices beside values within the bound: equal, element for element (they select, nothing rounds)."""
    if act.shape != exp.shape:
        return Outcome(False, "shape", f"indices shape {act.shape}, expected {exp.shape}", actual=act, expected=exp)
    wrong = act.astype(np.int64) != exp
    if not wrong.any():
        return out
    idx = tuple(int(i) for i in np.argwhere(wrong)[0])
    worst = {"index": list(idx), "expected": int(exp[idx]), "actual": int(act[idx]), "error": float("inf"), "bound": 0.0}
    return Outcome(False, "indices", f"{int(wrong.sum())} of {exp.size} indices differ from the exact ones (the first "
                   "maximum in window order, flat within each (n, c) plane)", actual=act, expected=exp,
                   bound=np.zeros(exp.shape), worst=worst, violations=int(wrong.sum()))


# --------------------------------------------------------------------------- shrinking


def _mutations(c: Case) -> list[Case]:
    """Simpler variants of ``c``, most drastic first."""
    d = c.dims
    out: list[Case] = []

    def axis(i: int, **kw: Any) -> Case:
        vals = {k: tuple(v if j == i else getattr(c, k)[j] for j in range(d)) for k, v in kw.items()}
        return replace(c, **vals)  # type: ignore[arg-type]  # tuple fields of the case

    if c.n > 1:
        out.append(replace(c, n=1))
    if c.groups > 1:
        out.append(replace(c, groups=1, cin=c.cin // c.groups, cout=max(1, c.cout // c.groups)))
    if c.bias:
        out.append(replace(c, bias=False))
    if c.cin // c.groups > 1:
        out.append(replace(c, cin=c.cin - c.groups, cout=c.cout if not c.record.window else c.cin - c.groups))
    if not c.record.window and c.cout // c.groups > 1:
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
    if getattr(c, "layout", "contiguous") != "contiguous":
        out.append(replace(c, layout="contiguous"))
    if c.values != "small":
        out.append(replace(c, values="small"))
    if c.seed != 0:
        out.append(replace(c, seed=0))
    return out


def shrink(runner: Runner, caps: Capabilities, case: Case, outcome: Outcome, *, max_calls: int = 150,
           max_seconds: float = 15.0, errors: list | None = None) -> tuple[Case, Outcome, int]:
    """Greedy shrinking: apply the first simpler variant that fails the same way, until none does.

    ``errors``: when given, an exception of refconv while judging a variant is
    appended to it and shrinking stops with the smallest case so far;
    otherwise it propagates.
    """
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
            try:
                out = runner.evaluate(cand)
            except Exception as exc:  # noqa: BLE001 - refconv's own failure: reported, the case found so far kept
                if errors is None:
                    raise
                errors.append(exc)
                return case, outcome, steps
            if runner.hung:
                return case, outcome, steps
            if not out.ok and out.kind == outcome.kind:
                case, outcome, steps = replace(cand, label=case.label), out, steps + 1
                improved = True
                break
            if calls >= max_calls or time.perf_counter() - t0 >= max_seconds:
                break
    return case, outcome, steps


# --------------------------------------------------------------------------- check: validate


def _validate(op: str | None, dims: Any, dtype: str, precision: str | None, max_examples: Any, bound: str,
              timeout: Any, load_timeout: Any, unsupported: Any) -> tuple[float | None, float | None, tuple[str, ...]]:
    """ConvParamError naming the first bad argument; the timeouts (None: no limit) and feature names."""
    from ..params import ConvParamError

    if op is not None:
        registry.get(op)  # ConvParamError naming op= and the registered ops
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
        raise ConvParamError(f"bound={bound!r}: bounds are " + ", ".join(repr(b) for b in BOUND_MODES))
    return _timeout(timeout), _timeout(load_timeout, "load_timeout"), features(unsupported)


def open_target(target: Any, *, capabilities: Any = None, isolate: bool = False, timeout: float | None = 10.0,
                load_timeout: float | None = None) -> tuple[Target, IsolatedTarget | None]:
    """The :class:`Target`, and with ``isolate`` its loaded worker (the caller closes it).

    With ``isolate`` a ``module:function`` target is imported only in the
    worker: a crash, exit or hang while importing it is a TargetError.
    """
    tgt = resolve(target, capabilities=capabilities, load=not isolate)
    if not isolate:
        return tgt, None
    worker = IsolatedTarget(tgt, _timeout(timeout), _timeout(load_timeout, "load_timeout"))
    worker.load()
    try:
        return bind_worker(tgt, worker, capabilities), worker
    except BaseException:
        worker.close()
        raise


def _choose_op(tgt: Target, op: str | None) -> str:
    """``op``, checked against a plain callable's signature; when None, the op its signature names."""
    from ..params import ConvParamError

    if not tgt.is_function:
        return op or "conv"
    if op is None:
        return infer_op(tgt) or "conv"
    why = fit(tgt.signature, op)
    if why:
        raise ConvParamError(f"op={op!r}: target {tgt.name!r} is not {op}: {why}")
    return op


# --------------------------------------------------------------------------- check


def check(
    target: Any,
    *,
    op: str | None = None,
    dims: int = 2,
    dtype: str = "float32",
    precision: str | None = None,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    seed: int | None = None,
    bound: str = "direct",
    timeout: float | None = 10.0,
    isolate: bool = False,
    capabilities: Any = None,
    progress: bool = False,
    diagnose: bool = True,
    unsupported: Any = (),
    load_timeout: float | None = None,
    allow_known: bool = False,
    divergences: Any = None,
    catalogue_limit: int | None = None,
    budget: str = "",
) -> Report:
    """Check ``target`` against the oracle: catalogue first, then ``max_examples`` explored cases.

    Parameters
    ----------
    target : str or callable
        A built-in adapter name (``'torch'``, ``'onnxruntime'``, ``'jax'``,
        ``'scipy'``, ``'numpy'``, ``'refconv.fast'``), ``'module:function'``,
        ``'path/to/file.py:function'``, or a callable with the canonical
        signature of ``op`` (:mod:`refconv.conformance.ops`).
    op : str, optional
        A registered op (:func:`refconv.conformance.registry.names`: ``'conv'``,
        ``'conv_transpose'``, the pooling ops, the gradients ...).  Default: for a
        function, the op its signature names (``conv`` when it names none);
        for an adapter, ``'conv'``.  A function whose signature names another
        op is refused (a max-pooling function is never run as average pooling).
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
        The algorithm whose error bound the target claims
        (``specs/tolerance.md``): ``'direct'`` (summation in any order; alias
        ``'elementwise'``), ``'fft'`` (FFT-based, every linear op; alias
        ``'normwise'``), ``'winograd'`` (F(2, 3) / F(4, 3) minimal filtering;
        conv, conv_transpose, conv_grad_input) or ``'prefix_sum'`` (average
        pooling by summed-area tables).  A bound that does not apply to the op
        is a ``ConvParamError``.
    timeout : float or None
        Seconds one call may take before the target counts as hung (None or
        ``inf``: no limit).  In process the call is interrupted by a
        ``SIGALRM`` alarm, which native code that never returns to Python
        does not see: use ``isolate=True`` for those.
    isolate : bool
        Import and run the target in a worker process, never in this one: a
        crash, exit or hang (also while importing it) cannot take the check
        down, and the target cannot touch the oracle.
    capabilities : Capabilities or dict, optional
        Override what the target declares (a dict changes those fields).
    progress : bool
        Show a progress bar on stderr (tqdm when installed).
    diagnose : bool
        Explain a failure by re-running the oracle with perturbed conventions.
    unsupported : str or list of str
        Features the target does not implement (:data:`~refconv.conformance.targets.FEATURES`,
        e.g. ``['dilation', 'padding-asymmetric']``): their cases are not run
        (the report lists them).
    load_timeout : float, optional
        Seconds the worker may take to import the target (``isolate``;
        default ``max(timeout, 60)``, no limit when ``timeout`` is None).
    allow_known : bool
        Accept failures that a recorded known divergence explains (its
        predicate holds for the failing case): they are counted and listed,
        and the check goes on.  Without it such a failure is a FAIL marked
        "known divergence: <id>".
    divergences : path or list of Divergence, optional
        The known divergences (default: the packaged
        ``refconv/conformance/known_divergences.json``; a path adds a file's
        entries to them; :func:`refconv.conformance.divergences.load`).
    catalogue_limit : int, optional
        Run the catalogue's cases on at most this many distinct shapes
        (:func:`thinned`; every value class and memory layout of a kept shape
        runs); None: the whole catalogue.  A target's declared cost
        (``refconv check`` of a whole library) sets it; the report says so.
    budget : str
        Why the budget is what it is (the target's declared cost), said in the
        report's notes.

    Returns
    -------
    Report
        ``report.verdict`` is ``'PASS'``, ``'FAIL'``, ``'ERROR'`` (refconv
        itself failed: ``report.error``) or ``'INCONCLUSIVE'`` (more than half
        of the cases had no error bound in the claimed precision);
        ``report.ok`` is True for PASS only.  ``str(report)`` reads in ten
        seconds; ``report.to_json()`` / ``report.save_json(path)`` export it.
        A target that raises (``SystemExit`` included), hangs, crashes,
        modifies its inputs or replaces refconv's functions fails with that
        case; it never stops the check.

    Raises
    ------
    refconv.params.ConvParamError
        A bad ``op``, ``dims``, ``dtype``, ``precision``, ``max_examples``,
        ``bound``, ``timeout`` or ``unsupported``, an op the function's
        signature does not fit, or a combination the target declares
        unsupported.
    refconv.conformance.targets.TargetError
        A target that cannot be resolved or loaded (an adapter whose library
        is not installed; with ``isolate``, a target whose import crashes,
        exits or hangs).

    Notes
    -----
    In process, the expected values and bounds of each case are computed
    before the target is called, and a target that replaces a function of
    :mod:`refconv.oracle`, :mod:`~refconv.conformance.ops` or
    :mod:`~refconv.conformance.bounds` fails (the function is put back).  A
    deliberately hostile target in the same process can still defeat the
    check: patch other refconv modules or numpy itself, or patch before the
    check starts.  ``isolate=True`` leaves it nothing to patch: the target
    runs in another process, which imports it.

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
    >>> r.verdict, r.failure.kind
    ('FAIL', 'value')
    >>> any('flip' in d for d in r.failure.diagnosis)
    True
    """
    timeout, load_timeout, unsupported = _validate(op, dims, dtype, precision, max_examples, bound, timeout,
                                                    load_timeout, unsupported)
    known = _Known(divergences, allow_known, dtype)
    t0 = time.perf_counter()
    before = _snapshot()  # a target that replaces refconv's functions when it is imported fails its first case
    tgt, worker = open_target(target, capabilities=capabilities, isolate=isolate, timeout=timeout,
                              load_timeout=load_timeout)
    try:
        return _check(tgt, worker, before, t0, op=op, dims=dims, dtype=dtype, precision=precision,
                      max_examples=max_examples, seed=seed, bound=bound, timeout=timeout, progress=progress,
                      diagnose=diagnose, unsupported=unsupported, known=known, budget=(catalogue_limit, budget))
    finally:
        if worker is not None:
            worker.close()


class _Known:
    """The recorded known divergences (:mod:`refconv.conformance.divergences`) and whether they are accepted."""

    def __init__(self, entries: Any, allow: bool, dtype: str) -> None:
        from . import divergences as dv

        if entries is None or isinstance(entries, (str, os.PathLike)):
            self.entries = dv.load(entries)
        else:
            self.entries = list(entries)
        self.allow, self.dtype = bool(allow), dtype

    def explain(self, target: str, case: Case) -> list[str]:
        from . import divergences as dv

        return [f"{d.id}: {d.reason}" for d in dv.find(target, case, self.entries, self.dtype)]

    def accept(self, target: str, case: Case, report: Report) -> bool:
        """With ``allow_known``: record a failure that a known divergence explains, and go on."""
        if not self.allow:
            return False
        from . import divergences as dv

        found = dv.find(target, case, self.entries, self.dtype)
        for d in found[:1]:
            rec = report.accepted_known.setdefault(d.id, {"reason": d.reason, "cases": 0, "example": case.describe()})
            rec["cases"] += 1
        return bool(found)


class _Where:
    """What refconv is doing now (named in an ERROR verdict)."""

    now = "while starting the check"


def _check(tgt: Target, worker: IsolatedTarget | None, before: dict, t0: float, *, op: str | None, dims: int,
           dtype: str, precision: str | None, max_examples: int, seed: int | None, bound: str,
           timeout: float | None, progress: bool, diagnose: bool, unsupported: tuple[str, ...],
           known: _Known, budget: tuple[int | None, str] = (None, "")) -> Report:
    """The steps of :func:`check`: validate, then the catalogue and the exploration, then finish the report."""
    op = _choose_op(tgt, op)
    _validate_bound(op, bound)  # an algorithm whose bound does not apply to the op is a usage error
    prec = precision or dtype
    prof = bounds.profile(prec, dtype)
    if seed is None:
        seed = secrets.randbelow(2**31)
    report = Report(target=tgt.name, op=op, dims=dims, dtype=dtype, precision=prec, bound=bound, seed=seed,
                    profile=prof.describe())
    where = _Where()
    caps = _declared(tgt, op, dims, dtype, unsupported, report, where, t0)
    if caps is None:
        return report  # ERROR: refconv could not read the declaration (report.error)
    pending = _replaced(before) if worker is None else []  # put back before the runner takes its own snapshot
    runner = Runner(tgt, op, dtype, prof, bound=bound, timeout=timeout, worker=worker)
    runner.pending_tampering = pending
    runner.budget = budget
    _run(runner, caps, report, where, known, t0, dims=dims, max_examples=max_examples, seed=seed,
         progress=progress, diagnose=diagnose)
    return _finish(report, runner, t0)


def _declared(tgt: Target, op: str, dims: int, dtype: str, unsupported: tuple[str, ...], report: Report,
              where: _Where, t0: float) -> Capabilities | None:
    """The target's capabilities for the check (None: reading them failed, refconv's own error, in ``report``)."""
    try:
        where.now = "while reading the target's declared capabilities"
        caps = _optional_keywords(tgt, op, restrict(tgt.capabilities(op, dims, dtype), unsupported))
        report.capabilities = caps_dict(caps)
    except (TargetError, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - refconv's own failure (an adapter's declaration)
        _errored(report, where, t0)  # inside the handler: the traceback is this exception's
        return None
    lacking = missing(caps, op, dims, dtype)
    if lacking:
        from ..params import ConvParamError

        raise ConvParamError(f"target={tgt.name!r} does not support {lacking}")
    report.skipped = excluded(caps, op)
    return caps


def _run(runner: Runner, caps: Capabilities, report: Report, where: _Where, known: _Known, t0: float, *, dims: int,
         max_examples: int, seed: int, progress: bool, diagnose: bool) -> None:
    """The catalogue, then the exploration; the first failure reported (refconv's own error: ``report.error``)."""
    op, name = runner.op, runner.target.name
    bar = None
    try:
        where.now = "while building the catalogue"
        cat = _budgeted(catalogue(op, dims, caps), runner, report, max_examples)
        bar = _progress(progress, len(cat) + max_examples, f"{name} {op}")
        found = _run_catalogue(runner, cat, report, bar, where, known)
        if found is None and max_examples > 0 and not runner.hung:
            found = _explore(runner, caps, op, dims, max_examples, seed, report, bar, where, known)
        if found is not None:
            report.time_to_failure_s = time.perf_counter() - t0
            where.now = "while reporting the counterexample"
            first = found.get("explored", (found["case"], found["outcome"]))
            report.failure = _reported(runner, caps, found["case"], found["outcome"], diagnose, report, first=first)
            where.now = "while matching the failure against the known divergences"
            # the shrunk case, else the case as found: a known divergence explains it only if its predicate holds
            report.failure.known = known.explain(name, report.failure.case) or known.explain(name, first[0])
    except (TargetError, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - refconv's own failure: ERROR, never a PASS nor the target's fault
        report.error = traceback.format_exc()
        report.error_stage = where.now
    finally:
        runner.close()
        _close(bar)


def _finish(report: Report, runner: Runner, t0: float) -> Report:
    """The runner's notes, the coverage and the time."""
    report.notes += runner.notes
    try:  # the adapter's environment (versions, device, precision modes) that the verdict holds for
        report.notes += [str(line) for line in runner.target.environment()]
    except Exception as exc:  # noqa: BLE001 - a description only: its failure is said, the verdict stands
        report.notes.append(f"refconv could not read the target's environment ({type(exc).__name__}: {exc})")
    try:
        report.coverage = coverage(runner.judged)
    except Exception:  # noqa: BLE001 - a summary only: its failure is said, the verdict stands
        report.notes.append(f"refconv could not summarize the coverage ({BUG})")
    report.elapsed_s = time.perf_counter() - t0
    return report


def _validate_bound(op: str, bound: str) -> str:
    """:func:`bounds.validate_bound` for ``op``, or for the op whose bound it borrows (only ``'direct'`` then)."""
    from ..params import ConvParamError

    rec = registry.get(op)
    mode = bounds.validate_bound(rec.bound_as or op, bound)
    if mode not in rec.bound_modes():
        raise ConvParamError(f"bound={bound!r} does not apply to op={op!r} (applicable: "
                             + ", ".join(repr(m) for m in rec.bound_modes()) + ")")
    return mode


def _optional_keywords(tgt: Target, op: str, caps: Capabilities) -> Capabilities:
    """``caps`` without the optional parameters (``OpRecord.optional``) that the target's function does not take.

    A Capabilities field of the same name says whether the parameter is supported (``dilation``,
    ``divisor_override``); a function called without the keyword is checked at its default only.
    """
    wanted = [k for k in registry.get(op).optional if getattr(caps, k, False)]
    if not wanted:
        return caps
    names: set[str] | None = None
    if tgt.signature is not None:
        kinds = {k for _, k, _ in tgt.signature}
        names = None if "VAR_KEYWORD" in kinds else {n for n, k, _ in tgt.signature if k != "VAR_POSITIONAL"}
    elif tgt.keywords == "inspect":
        try:
            names = ops.accepted_keywords(tgt.function(op))[0]
        except Exception:  # noqa: BLE001 - a function that cannot be had here: its declaration stands
            names = None
    elif tgt.keywords is not None:
        names = set(tgt.keywords)
    if names is None:
        return caps
    return caps.replace(**{k: False for k in wanted if k not in names})


def _errored(report: Report, where: _Where, t0: float) -> Report:
    report.error = traceback.format_exc()
    report.error_stage = where.now
    report.elapsed_s = time.perf_counter() - t0
    return report


def _count(report: Report, out: Outcome, runner: Runner, case: Case) -> None:
    """Record a case run; count it if its values were not all judged (elements without an error bound)."""
    runner.judged.append(case)
    report.note_case(case, out.actual, out.expected, out.bound)  # its (error, bound) point for the reports' plots
    if out.ok and out.unjudged:
        report.unjudged_cases += 1
        report.unjudged_reason = f"no {runner.prof.name} bound for reductions this long"


def _declared_isolation(target: Target, op: str, dtype: str) -> str:
    """Why ``target`` runs ``op`` in ``dtype`` in a worker process ('' if it does not): its ``isolated(op, dtype)``."""
    declared = getattr(target, "isolated", None)
    return str(declared(op, dtype) or "") if callable(declared) else ""


def _shape_of(c: Case) -> Case:
    # the case without what only changes the values and the memory layout of the arrays (the same kernels run)
    return replace(c, values="normal", seed=0, layout="contiguous", label="")


def thinned(cat: list[Case], limit: int) -> list[Case]:
    """The cases of ``cat`` on at most ``limit`` of its distinct shapes, evenly spaced along it, in its order.

    Every value class and memory layout of a kept shape is kept (they cost a compiling library no new kernel).

    >>> from refconv.conformance.cases import catalogue
    >>> full = catalogue('conv', 1)
    >>> len({_shape_of(c) for c in thinned(full, 5)}), thinned(full, 5)[0] == full[0], thinned(full, 10**6) == full
    (5, True, True)
    """
    shapes = list(dict.fromkeys(_shape_of(c) for c in cat))
    if len(shapes) <= limit:
        return cat
    kept = {shapes[i * len(shapes) // limit] for i in range(limit)}
    return [c for c in cat if _shape_of(c) in kept]


def _budgeted(cat: list[Case], runner: Runner, report: Report, max_examples: int) -> list[Case]:
    """The catalogue under the runner's declared budget; the report's notes say what it left out, and why."""
    limit, why = runner.budget
    if limit is None and not why:
        return cat
    out = cat if limit is None else thinned(cat, limit)
    shapes = len({_shape_of(c) for c in cat})
    report.notes.append(f"a declared budget ({why}): {len(out)} of the catalogue's {len(cat)} cases (on "
                        f"{min(shapes, limit or shapes)} of its {shapes} shapes) and {max_examples} explored; the "
                        f"whole catalogue and {DEFAULT_MAX_EXAMPLES} explored: --op {runner.op} --dims {report.dims}")
    return out


def _run_catalogue(runner: Runner, cat: list[Case], report: Report, bar: Any, where: _Where,
                   known: _Known) -> dict | None:
    for i, c in enumerate(cat):
        where.now = f"while judging catalogue case {i + 1} ({c.label or c.describe()})"
        out = runner.evaluate(c)
        report.catalogue_cases += 1
        if _stops(runner, c, out, report, bar, known):
            return {"case": c, "outcome": out}
    return None


def _stops(runner: Runner, case: Case, out: Outcome, report: Report, bar: Any, known: _Known) -> bool:
    """Record a judged case; True when it is a failure the check stops on (not an accepted known divergence)."""
    _count(report, out, runner, case)
    _tick(bar)
    if out.ok:
        return False
    return runner.hung or not known.accept(runner.target.name, case, report)


#: target calls and seconds that hypothesis may spend shrinking an explored failure (the engine's shrinker follows)
EXPLORE_SHRINK_CALLS = 60
EXPLORE_SHRINK_SECONDS = 5.0


class _Stop(BaseException):
    """Ends hypothesis' run at once: not an ``Exception``, so hypothesis neither shrinks nor reports it."""


def _explore(runner: Runner, caps: Capabilities, op: str, dims: int, max_examples: int, seed: int, report: Report,
             bar: Any, where: _Where, known: _Known) -> dict | None:
    """Cases drawn from :func:`refconv.conformance.strategies.cases` under hypothesis ``seed``; the first failure
    shrunk by hypothesis (within :data:`EXPLORE_SHRINK_CALLS`), returned as ``{'case', 'outcome', 'explored'}``
    (``explored``: the case as drawn and its outcome)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    found: dict[str, Any] = {}

    @hseed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False, print_blob=False)
    @given(cases(op, dims, caps))  # refconv.conformance.strategies.cases
    def explore(case: Case) -> None:
        if "case" in found:  # hypothesis' shrink phase: a candidate smaller than the failure
            failing = _shrink_candidate(runner, case, found, where, known)
        else:
            failing = _explored(runner, case, found, report, bar, where, known)
        if failing:
            raise _Found  # from one line: hypothesis sees one failure all along its shrinking

    where.now = "while exploring (hypothesis)"
    try:
        explore()
    except (_Found, _Stop):
        pass
    except Exception:  # noqa: BLE001 - hypothesis' own complaint (a flaky replay) after a failure: the failure stands
        if "case" not in found:
            raise
    if "error" in found:
        raise found["error"]
    report.notes += found.get("notes", [])
    return {k: found[k] for k in ("case", "outcome", "explored")} if "case" in found else None


def _explored(runner: Runner, case: Case, found: dict[str, Any], report: Report, bar: Any, where: _Where,
              known: _Known) -> bool:
    """Judge an explored case; True (and ``found`` filled in) when the check stops on its failure."""
    where.now = f"while judging an explored case ({case.describe()})"
    try:
        out = runner.evaluate(case)
    except Exception as exc:  # noqa: BLE001 - refconv's own failure: stop here (hypothesis must not shrink it)
        found["error"] = exc
        raise _Stop from None
    report.explored_cases += 1
    if _stops(runner, case, out, report, bar, known):
        found.update(case=case, outcome=out, explored=(case, out), tried={case: out}, calls=0, t0=time.perf_counter())
        # a hang, a crash or tampering is not called again; a refusal check has nothing to shrink
        if runner.hung or out.kind in ("timeout", "crash", "tampering", "accepted-invalid"):
            raise _Stop
        return True
    if runner.hung:
        raise _Stop
    return False


def _shrink_candidate(runner: Runner, case: Case, found: dict[str, Any], where: _Where, known: _Known) -> bool:
    """True if ``case`` fails as the explored failure did (it becomes the failure).

    Each distinct case is judged once; past the budget, or when refconv itself fails, :class:`_Stop` ends the
    shrinking with the smallest failure so far.
    """
    tried = found["tried"]
    if case not in tried:
        if found["calls"] >= EXPLORE_SHRINK_CALLS or time.perf_counter() - found["t0"] > EXPLORE_SHRINK_SECONDS:
            raise _Stop
        found["calls"] += 1
        where.now = f"while shrinking an explored case ({case.describe()})"
        try:
            out = runner.evaluate(case)
        except Exception as exc:  # noqa: BLE001 - refconv's own failure: reported, the failure found so far kept
            found.setdefault("notes", []).append(
                f"refconv failed while hypothesis shrank the explored failure ({type(exc).__name__}: {exc}): the case "
                f"shown is the smallest found before that ({BUG})")
            raise _Stop from None
        if runner.hung:
            raise _Stop
        accepted = known.allow and bool(known.explain(runner.target.name, case))
        tried[case] = out if not out.ok and out.kind == found["outcome"].kind and not accepted else None
    if tried[case] is None:
        return False
    found.update(case=case, outcome=tried[case])
    return True


def _reported(runner: Runner, caps: Capabilities, case: Case, outcome: Outcome, diagnose: bool,
              report: Report, first: tuple[Case, Outcome] | None = None) -> Failure:
    """:func:`_failure`; if refconv fails on the way, the counterexample as found (a FAIL is never lost)."""
    try:
        return _failure(runner, caps, case, outcome, diagnose, report, first=first)
    except (TargetError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001
        report.notes.append(f"refconv failed while reporting the counterexample ({type(exc).__name__}: {exc}): it "
                            f"is shown as found, unshrunk ({BUG})")
        return Failure(kind=outcome.kind, case=case, message=outcome.message, worst=outcome.worst,
                       violations=outcome.violations, traceback=outcome.traceback, original=case.describe())


def _failure(runner: Runner, caps: Capabilities, case: Case, outcome: Outcome, diagnose: bool,
             report: Report, first: tuple[Case, Outcome] | None = None) -> Failure:
    """The counterexample, shrunk, explained and reproducible; refconv's failures on the way become notes.

    ``first``: the case as explored and its outcome, where hypothesis has already shrunk ``case`` from it.
    """
    first_case, first_outcome = first or (case, outcome)
    original = first_case.describe()
    steps = 0
    if (outcome.kind not in ("timeout", "crash", "tampering", "accepted-invalid") and not runner.hung
            and not getattr(case, "expect_refusal", False)):
        errors: list[Exception] = []
        case, outcome, steps = shrink(runner, caps, case, outcome, errors=errors)
        for exc in errors:
            report.notes.append(f"refconv's shrinker failed ({type(exc).__name__}: {exc}): the case shown is the "
                                f"smallest found before that ({BUG})")
    message = outcome.message
    if outcome.kind == "unsupported" and not runner.hung:
        message += "; " + _declare_refused(runner, caps, case)
    try:
        expected_shape = tuple(case.output_shape or ())
    except Exception:  # noqa: BLE001 - a configuration the definition rejects has no output shape
        expected_shape = None
    f = Failure(
        kind=outcome.kind, case=case, message=message, worst=outcome.worst, violations=outcome.violations,
        traceback=outcome.traceback, original=original, shrink_steps=steps, expected_shape=expected_shape,
        actual_shape=None if outcome.actual is None else tuple(np.shape(outcome.actual)),
    )
    f.inputs = _inputs_for_report(case, runner.dtype)
    quantized = case.record.family == "quantized"  # integer ops: their own reproduction and exact diagnosis
    if quantized:
        from . import quantized_ops
    f.repro = repro(runner.target, runner.op, case, runner.dtype) if not quantized else quantized_ops.repro(
        runner.target, runner.op, case)
    if diagnose and outcome.kind in ("value", "shape", "nonfinite", "exception", "indices"):
        from . import diagnose as float_diagnosis

        dg: Any = quantized_ops if quantized else float_diagnosis

        try:
            f.diagnosis, f.shape_formulas = dg.diagnose(runner, case, outcome)
            if first_case != case and first_outcome.kind == outcome.kind:
                # the unshrunk case tells conventions (and precisions) apart better: prefer its explanation
                unshrunk, _ = dg.diagnose(runner, first_case, first_outcome)
                if any("reproduces" in d or "precision" in d or "rounding" in d for d in unshrunk):
                    f.diagnosis = unshrunk
        except Exception as exc:  # noqa: BLE001 - a failed diagnosis must not hide the verdict
            f.diagnosis = [f"refconv's diagnosis failed ({type(exc).__name__}: {exc}); the verdict stands ({BUG})"]
    return f


#: features tried in this order when a refusal is explained (the specific before the general)
_REFUSABLE = ("stride", "dilation", "groups", "bias", "batch", "empty-batch", "channels", "output-padding",
              "ceil-mode", "count-include-pad", "count-exclude-pad", "padding-asymmetric", "padding")


def _declare_refused(runner: Runner, caps: Capabilities, case: Case) -> str:
    """Which feature the target refuses: the one whose removal (alone) makes the refusal go away."""
    used = [name for name in _REFUSABLE if not restrict(caps, [name]).supports(case)]
    for name in used:
        cand = restrict(caps, [name]).project(case)
        if cand is None or cand == case:
            continue
        out = runner.evaluate(cand)
        if runner.hung:
            break
        if out.kind != "unsupported":
            return f"the same case without {FEATURES[name]} is not refused: declare it: {declaration(name)}"
    if used:
        return (f"the case uses {', '.join(used)}: declare the one the target does not implement, e.g. "
                f"{declaration(used[0])}")
    return "the case uses no optional feature: the target refuses the plainest call of its op"


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, unit="case")


def _tick(bar: Any) -> None:
    """One case more on the progress bar; a bar that cannot write (stderr closed by the target) is dropped."""
    if bar is None:
        return
    try:
        bar.update(1)
    except Exception:  # noqa: BLE001 - the bar is a convenience, never a reason to fail
        bar.disable = True


def _close(bar: Any) -> None:
    if bar is not None:
        try:
            bar.close()
        except Exception:  # noqa: BLE001
            pass
