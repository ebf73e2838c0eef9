"""Convention fingerprinting: probe an implementation with impulses and small integers.

Each probe calls the target on one tiny integer input and compares the
result, exactly, with the oracle under every candidate convention; the
finding is the convention that matches (or ``'none matched'`` / the exception).
Probes go through the canonical signature (what the target does with the
explicit parameters) and, for built-in adapters, through the library's own
``same`` modes (which side gets the odd zero).

Examples
--------
>>> from refconv import oracle
>>> fp = identify('refconv.oracle', ops=('conv',))
>>> fp['conv.kernel']
'cross-correlation (no flip)'
>>> fp['conv.dilation']
'counted from 1 (dilation 1 is dense)'
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from . import ops, registry
from .cases import Case, padding_kinds
from .diagnose import Candidate, _explicit_pool, _interleave
from .targets import Target, resolve

__all__ = ["identify", "table", "PROPERTIES", "native_same_side", "default_dims", "missing_ops"]

#: property -> one-line meaning, in table order
PROPERTIES = {
    "conv.kernel": "correlation or convolution (kernel flip)",
    "conv.padding": "padding pair (lo, hi) applied as given",
    "conv.dilation": "dilation counted from 0 or 1",
    "conv.stride": "first strided output at offset 0",
    "conv.groups": "group mapping of channels",
    "conv.layout": "activation layout (NC* channels first, N*C channels last)",
    "conv.weight_layout": "convolution weight layout",
    "pool.layout": "pooling activation layout",
    "same.odd_zero": "odd 'same' padding: side of the extra zero (library's own mode)",
    "max_pool.ceil": "ceil_mode rule",
    "avg_pool.divisor_include_pad": "avg pool divisor with count_include_pad=True",
    "avg_pool.divisor_exclude_pad": "avg pool divisor with count_include_pad=False",
    "conv_transpose.layout": "transposed-convolution activation layout",
    "conv_transpose.weight": "transposed-convolution weight layout",
    "conv_transpose.weight_layout": "transposed-convolution weight layout of the library (adapters)",
    "conv_transpose.crop": "transposed-convolution crop (padding) sides",
}


_CAPS: list = []  # capabilities of the target being probed (set by identify)
#: the probe call's guard (set by identify): the timeout, and the first probe that hung (the rest are not run)
_GUARD: dict = {"timeout": 10.0, "hung": ""}


def _why_not(caps: Any, case: Case) -> str:
    """The first declared capability that rules ``case`` out, in words."""
    padding = getattr(caps, "padding", None)
    reasons = (
        (case.op not in getattr(caps, "ops", (case.op,)), f"the target declares no {case.op}"),
        (case.dims not in getattr(caps, "dims", (case.dims,)),
         f"the target declares dims {tuple(getattr(caps, 'dims', ()))}, not {case.dims}-D"),
        (padding is not None and not (padding_kinds(case) & set(padding)),
         f"the probe needs padding {sorted(padding_kinds(case))}, the target declares {sorted(padding or ())}"),
        (not getattr(caps, "stride", True) and any(v != 1 for v in case.stride), "the target declares no strides > 1"),
        (not getattr(caps, "dilation", True) and any(v != 1 for v in case.dilation), "the target declares no dilation > 1"),
        (not getattr(caps, "groups", True) and case.groups != 1, "the target declares no groups > 1"),
        (not getattr(caps, "channels", True) and (case.cin > 1 or case.cout > 1), "the target declares one channel only"),
        (not getattr(caps, "ceil_mode", True) and case.ceil_mode, "the target declares no ceil_mode"),
        (case.record.takes("count_include_pad") and case.count_include_pad not in getattr(caps, "count_include_pad", (case.count_include_pad,)),
         f"the target declares no count_include_pad={case.count_include_pad}"),
    )
    for applies, why in reasons:
        if applies:
            return why
    return "the target's capability rule refuses the probe"


def _clip(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _called(fn: Callable, case: Case, arrays: dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
    """The call of ``fn`` on ``case`` with ``arrays``, its (first) result as float64."""
    return lambda: np.asarray(ops.values_of(case, ops.call(fn, case, arrays)), dtype=np.float64)


def _probe(fn: Callable, case: Case, arrays: dict[str, np.ndarray], truth: str,
           alts: Sequence[tuple[str, Candidate | None]]) -> str:
    caps = _CAPS[-1] if _CAPS else None
    if caps is not None and not caps.supports(case):
        return f"not offered: {_why_not(caps, case)}"
    # small integers: exact in float32, which every adapter accepts
    call_arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    from .isolation import TargetRaised, TargetTimeout, alarm_usable, call_in_process

    if _GUARD["hung"]:
        return f"not probed: the target hung on an earlier probe ({_GUARD['hung']})"
    try:
        # the target's call, guarded as in `refconv check`: SystemExit and hangs are findings, not the end of identify
        y = call_in_process(lambda: np.asarray(ops.call(fn, case, call_arrays), dtype=np.float64),
                            _GUARD["timeout"] if alarm_usable() else None)
    except TargetTimeout as exc:
        _GUARD["hung"] = case.describe()
        return f"hangs: {exc}"
    except TargetRaised as exc:  # an unsupported probe is a finding, not a crash
        msg = _clip(exc.message)
        return f"raises {exc.type_name}" + (f": {msg}" if msg else "")
    exp = ops.expected(case, arrays)
    if y.shape == exp.shape and np.array_equal(y, exp):
        return truth
    for label, cand in alts:
        if cand is None:  # a convention that does not apply to this probe
            continue
        try:
            c = cand.evaluate(arrays)
        except Exception:  # noqa: BLE001
            continue
        if c.shape == y.shape and np.array_equal(c, y):
            return label
    if y.shape != exp.shape:
        return f"none matched: output shape {y.shape}, the reference's {exp.shape}"
    return "none matched: the values match no candidate convention"


def _lift(case: Case, d: int) -> Case:
    """A 1-D probe as a ``d``-D one: the same geometry on every spatial axis."""
    if d == 1:
        return case
    return replace(
        case, spatial=case.spatial * d, kernel=case.kernel * d, stride=case.stride * d, padding=case.padding * d,
        dilation=case.dilation * d, output_padding=case.output_padding * d,
    )


def _outer(vectors: Sequence[Any]) -> np.ndarray:
    """The outer product of per-axis vectors, as a (1, 1, *spatial) array."""
    out = np.ones(())
    for v in vectors:
        out = np.multiply.outer(out, np.asarray(v, dtype=np.float64))
    return out[None, None]


def _ints(case: Case, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.integers(1, 10, size=s).astype(np.float64) for k, s in case.input_shapes().items()}


def _conv_probes(fn: Callable, d: int = 1) -> dict[str, str]:
    out = {}
    c = _lift(Case("conv", 1, 1, 1, (6,), (3,)), d)
    # an impulse, and a kernel of distinct powers of two (exact in float32): 2**(k_0 + 3*k_1 + 9*k_2)
    a = {"x": _outer([[0, 0, 1, 0, 0, 0]] * d), "w": _outer([[1, 2 ** (3 ** i), 4 ** (3 ** i)] for i in range(d)])}
    flipped = Candidate("", "", c, inputs=lambda t: {**t, "w": t["w"][(slice(None), slice(None)) + (slice(None, None, -1),) * d]})
    out["conv.kernel"] = _probe(fn, c, a, "cross-correlation (no flip)", [("convolution (kernel flipped)", flipped)])
    c = _lift(Case("conv", 1, 1, 1, (5,), (2,), padding=((0, 1),)), d)
    a = _ints(c)
    out["conv.padding"] = _probe(fn, c, a, "(lo, hi) as given",
                                 [("(hi, lo): sides swapped", Candidate("", "", replace(c, padding=((1, 0),) * d)))])
    c = _lift(Case("conv", 1, 1, 1, (7,), (2,), dilation=(2,)), d)
    a = _ints(c)
    out["conv.dilation"] = _probe(fn, c, a, "counted from 1 (dilation 1 is dense)",
                                  [("counted from 0 (dilation 0 is dense)", Candidate("", "", replace(c, dilation=(3,) * d)))])
    c = _lift(Case("conv", 1, 1, 1, (7,), (2,), stride=(2,)), d)
    a = _ints(c)
    one = replace(c, stride=(1,) * d, padding=((0, 1),) * d)
    phase1 = (slice(None), slice(None)) + (slice(1, 7, 2),) * d  # outputs 1, 3, 5 of the dense result
    out["conv.stride"] = _probe(fn, c, a, "offset 0", [("offset 1", Candidate("", "", one, output=lambda y: y[phase1]))])
    c = _lift(Case("conv", 1, 4, 4, (3,), (1,), groups=2), d)
    a = _ints(c)
    out["conv.groups"] = _probe(fn, c, a, "contiguous blocks (o // (C_out/groups))",
                                [("interleaved (o % groups)", Candidate("", "", c, compute=_interleave(c, "output")))])
    return out


# --------------------------------------------------------------------------- layouts

_SP, _K = (7, 8, 9), (4, 5, 6)  # spatial and kernel sizes of the layout probes: distinct from each other and the channels


def _layout_case(op: str, d: int, depthwise: bool = False) -> Case:
    """A probe whose axes all differ in length, so that each layout hypothesis gives its arrays other shapes."""
    rec = registry.get(op)
    if rec.family != "conv":
        k = (2, 3, 2)[:d]
        if rec.takes("output_size") and not rec.takes("kernel_size"):
            return Case(op, 1, 2, 2, _SP[:d], k, output_size=(3, 4, 5)[:d])
        return Case(op, 1, 2, 2, _SP[:d], k)
    if depthwise:  # C_in = groups = 3, multiplier 2
        return Case(op, 1, 3, 6, _SP[:d], _K[:d], groups=3)
    return Case(op, 1, 2, 3, _SP[:d], _K[:d])


def _hypotheses(op: str, d: int, depthwise: bool = False) -> list[tuple[str, str | None]]:
    """``(layout, weight_layout)`` pairs a function of ``op`` in ``d`` spatial axes might take."""
    from .targets import _weight_kind

    sp = "DHW"[3 - d:]
    acts = [f"NC{sp}", f"N{sp}C"]
    kind = _weight_kind(op)
    if kind is None:
        return [(a, None) for a in acts]
    if kind == "transposed_weight":
        ws = [f"IO{sp}", f"{sp}OI"]
    else:
        ws = [f"OI{sp}", f"{sp}IO", f"O{sp}I"] + ([f"{sp}IM"] if depthwise else [])
    return [(a, w) for a in acts for w in ws]


def _pair(act: str, wl: str | None) -> str:
    return act + ("" if wl is None else f"/{wl}")


def detect_layouts(fn: Callable, op: str, dims: int, timeout: float | None = 10.0) -> tuple[list[tuple[str, str | None]], dict[str, str]]:
    """The ``(layout, weight_layout)`` pairs under which ``fn`` computes ``op`` exactly on a probe with asymmetric
    shapes (every axis a different length), and what each pair gave (``'match'``, ``'raises ...'``, ``'none matched: ...'``).

    Pairs: channels first or last, times the weight layouts of the op's kind
    (:mod:`refconv.layouts`); when no pair matches on a plain probe, a
    depthwise one (``groups = C_in``) also tries ``HWIM``.

    >>> from refconv import oracle
    >>> def tf_like(x, w, b, *, stride, padding, dilation, groups):
    ...     return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,
    ...                        layout='NHWC', weight_layout='HWIO')
    >>> detect_layouts(tf_like, 'conv', 2)[0]
    [('NHWC', 'HWIO')]
    """
    from .isolation import TargetRaised, TargetTimeout, alarm_usable, call_in_process
    from .targets import in_layouts

    found: list[tuple[str, str | None]] = []
    tried: dict[str, str] = {}
    rounds = [False] + ([True] if registry.get(op).family == "conv" and _hypotheses(op, dims)[0][1] and
                        not op.startswith("conv_transpose") else [])
    for depthwise in rounds:
        case = _layout_case(op, dims, depthwise)
        arrays = _ints(case, seed=5)
        if registry.get(op).family != "conv":  # multiples of the window size: exact averages
            arrays = {k: v * int(np.prod(case.kernel)) for k, v in arrays.items()}
        exp = ops.values_of(case, ops.expected(case, arrays))
        exp32 = exp.astype(np.float32).astype(np.float64)  # what a float32 computation can return exactly
        call_arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
        for act, wl in _hypotheses(op, dims, depthwise):
            key = _pair(act, wl) + (" (depthwise)" if depthwise else "")
            g = in_layouts(fn, op, act, wl)
            try:
                y = call_in_process(_called(g, case, call_arrays), timeout if alarm_usable() else None)
            except TargetTimeout as exc:
                tried[key] = f"hangs: {exc}"
                _GUARD["hung"] = f"layout probe {key}"  # identify probes nothing more
                return found, tried
            except TargetRaised as exc:
                msg = _clip(exc.message)
                tried[key] = f"raises {exc.type_name}" + (f": {msg}" if msg else "")
                continue
            except Exception as exc:  # noqa: BLE001 - the result cannot be read in this layout
                tried[key] = f"raises {type(exc).__name__}: {_clip(str(exc))}"
                continue
            if y.shape == exp.shape and (np.array_equal(y, exp) or np.array_equal(y, exp32)):
                tried[key] = "match"
                found.append((act, wl))
            else:
                tried[key] = (f"none matched: output shape {y.shape}, the reference's {exp.shape}" if y.shape != exp.shape
                              else "none matched: other values")
        if found:
            break
    return found, tried


def shaped_pair(tried: dict[str, str]) -> tuple[str, str | None] | None:
    """The one layout pair of :func:`detect_layouts` whose results had the reference's shape (other values), if one
    (plain probes first, then depthwise)."""
    for depthwise in (False, True):
        keys = [k for k, v in tried.items() if v == "none matched: other values" and ("(depthwise)" in k) == depthwise]
        if len(keys) == 1:
            act, _, wl = keys[0].split(" ")[0].partition("/")
            return act, wl or None
        if keys:
            return None
    return None


def _layout_rows(fn: Callable, op: str, d: int, prefix: str, declared: tuple[Any, Any]) -> tuple[dict[str, str], Callable]:
    """Rows ``<prefix>.layout`` (and ``conv.weight_layout`` / ``conv_transpose.weight``), and ``fn`` as a canonical
    callable in the layouts found (or declared), for the other probes.

    A pair whose results match exactly decides; failing that, the one pair
    whose results have the reference's shape (the function follows other
    conventions, which the other rows name); otherwise the row says why and
    the other probes call ``fn`` with canonical arrays.
    """
    from .targets import in_layouts

    if declared != (None, None):
        rows = {f"{prefix}.layout": f"{declared[0] or 'channels first'} (declared)"}
        if declared[1] and prefix in ("conv", "conv_transpose"):
            rows["conv.weight_layout" if prefix == "conv" else "conv_transpose.weight"] = f"{declared[1]} (declared)"
        return rows, in_layouts(fn, op, *declared)
    caps = _CAPS[-1] if _CAPS else None
    probe = _layout_case(op, d)
    if caps is not None and not caps.supports(probe):
        return {f"{prefix}.layout": f"not offered: {_why_not(caps, probe)}"}, fn
    if _GUARD["hung"]:
        return {f"{prefix}.layout": f"not probed: the target hung on an earlier probe ({_GUARD['hung']})"}, fn
    found, tried = detect_layouts(fn, op, d, _GUARD["timeout"])
    note = ""
    if not found:  # the shapes decide when the values follow other conventions
        pair = shaped_pair(tried)
        if pair is not None:
            found, note = [pair], " (by the shapes of its results; their values: the other rows)"
    if len(found) == 1:
        act, wl = found[0]
        rows = {f"{prefix}.layout": f"{act} ({'channels last' if act.endswith('C') else 'channels first'}){note}"}
        if wl is not None:
            lay = _layouts_of().layout(wl)
            if prefix == "conv":
                rows["conv.weight_layout"] = wl + (" (depthwise: groups = C_in)" if lay.depthwise else "") + note
            elif wl != lay.canonical:  # a canonical transposed weight is left to the weight probe
                rows["conv_transpose.weight"] = f"{wl} (*K, C_out/groups, C_in){note}"
        return rows, in_layouts(fn, op, act, wl)
    if found:
        why = f"undecided: {len(found)} layouts match ({', '.join(_pair(a, w) for a, w in found)})"
    elif len(set(tried.values())) == 1:
        why = next(iter(tried.values()))  # every pair the same finding: that finding (raises SystemExit...)
    elif len({v.split(":")[0] for v in tried.values()}) == 1 and next(iter(tried.values())).startswith("raises"):
        first, finding = next(iter(tried.items()))
        why = f"{finding.split(':')[0]} in every layout pair tried ({len(tried)}; {first}: {finding})"
    else:
        why = "none matched: " + "; ".join(f"{k}: {_clip(v, 60)}" for k, v in tried.items())
    rows = {f"{prefix}.layout": why}
    if prefix == "conv":  # the same finding, or a pointer to the long one
        rows["conv.weight_layout"] = (
            f"not probed: the target hung on an earlier probe ({_GUARD['hung']})" if why.startswith("hangs") else
            why if not why.startswith("none matched") else
            "undecided: no activation and weight layout pair fits (see the activation layout)")
    return rows, fn


def _layouts_of() -> Any:
    from .. import layouts

    return layouts


def _function(target: Target, op: str) -> Callable | None:
    try:
        return target.function(op)
    except Exception:  # noqa: BLE001 - the target has no such op: no rows for it
        return None


def _pool_probes(target: Target, caps: Callable, wanted: tuple[str, ...] = ("max_pool", "avg_pool"), d: int = 1) -> dict[str, str]:
    out = {}
    mp = _function(target, "max_pool") if "max_pool" in wanted else None
    caps("max_pool")
    if mp is not None:
        # n=6, k=3, s=2, pad 1: floor gives 3 windows, ceil 4 (the 4th starts inside the input)
        c = _lift(Case("max_pool", 1, 1, 1, (6,), (3,), stride=(2,), padding=((1, 1),), ceil_mode=True), d)
        a = {"x": np.arange(1.0, 6**d + 1).reshape(1, 1, *c.spatial)}  # distinct, increasing in C order
        first = _probe(mp, c, a, "ceil", [("floor (ceil_mode ignored)", _explicit_pool(c, c.padding, -np.inf, "floor", "padded"))])
        if first == "ceil":
            # n=5, k=2, s=2, pad 1: plain ceil adds a 4th window starting in the right padding; PyTorch's rule drops it
            c = _lift(Case("max_pool", 1, 1, 1, (5,), (2,), stride=(2,), padding=((1, 1),), ceil_mode=True), d)
            a = {"x": np.arange(1.0, 5**d + 1).reshape(1, 1, *c.spatial)}
            first = _probe(mp, c, a, "ceil; last window must start inside input or left padding (PyTorch)",
                           [("plain ceil (a window may start in the right padding)", _explicit_pool(c, c.padding, -np.inf, "plain", "padded"))])
        out["max_pool.ceil"] = first
    ap = _function(target, "avg_pool") if "avg_pool" in wanted else None
    caps("avg_pool")
    if ap is not None:
        for cip, key in ((True, "avg_pool.divisor_include_pad"), (False, "avg_pool.divisor_exclude_pad")):
            c = _lift(Case("avg_pool", 1, 1, 1, (5,), (3,), stride=(2,), padding=((1, 1),), ceil_mode=True, count_include_pad=cip), d)
            # window sums divisible by 1, 2 and 3 on every axis: exact averages
            a = {"x": _outer([[6, 12, 24, 48, 96]] * d)}
            labels = {"padded": "window inside input + padding", "input": "input elements only",
                      "kernel": "always the kernel size"}
            truth = labels["padded" if cip else "input"]
            alts: list[tuple[str, Candidate | None]] = []
            for rule in ("pytorch", "plain", "floor"):
                for div, lab in labels.items():
                    cand = _explicit_pool(c, c.padding, 0.0, rule, div)
                    if cand is not None and not (rule == "pytorch" and lab == truth):
                        alts.append((lab + ("" if rule == "pytorch" else f" ({rule} ceil)"), cand))
            c2 = c
            avg_caps = target.capabilities("avg_pool", d, "float32")
            if not avg_caps.ceil_mode:
                c2 = replace(c, ceil_mode=False)
                alts = [(lab, _explicit_pool(c2, c2.padding, 0.0, "floor", div)) for div, lab in labels.items() if lab != truth]
            if cip not in avg_caps.count_include_pad:
                out[key] = f"not offered: the target declares no count_include_pad={cip}"
                continue
            out[key] = _probe(ap, c2, a, truth, alts)
    return out


def _transpose_probes(target: Target, d: int = 1) -> dict[str, str]:
    out: dict[str, str] = {}
    fn = _function(target, "conv_transpose")
    if fn is None:
        return out
    c = _lift(Case("conv_transpose", 1, 2, 2, (3,), (2,)), d)
    a = _ints(c)
    swapped = Candidate("", "", c, inputs=lambda t: {**t, "w": np.swapaxes(t["w"], 0, 1)})
    out["conv_transpose.weight"] = _probe(fn, c, a, "(C_in, C_out/groups, *K)",
                                          [("(C_out, C_in/groups, *K)", swapped)])
    caps = target.capabilities("conv_transpose", d, "float32")
    c = _lift(Case("conv_transpose", 1, 1, 1, (3,), (3,), stride=(2,), padding=((0, 1),)), d)
    if "asymmetric" not in caps.padding:
        out["conv_transpose.crop"] = "symmetric only"
    else:
        a = _ints(c)
        out["conv_transpose.crop"] = _probe(fn, c, a, "lo from the start, hi from the end",
                                            [("swapped", Candidate("", "", replace(c, padding=((1, 0),) * d)))])
    return out


def native_same_side(target: Target) -> str:
    """Which side the library's own odd 'same' padding puts the extra zero on (adapters only)."""
    from .. import oracle

    x = np.array([[[1.0, 2.0, 4.0, 8.0]]])
    w = np.array([[[1.0, 16.0]]])
    fns = _native_same(target.name)
    if not fns:
        return "no 'same' mode"
    found = []
    for label, fn in fns.items():
        try:
            y = np.asarray(fn(x, w), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001
            found.append(f"{label}: raises {type(exc).__name__}")
            continue
        if np.array_equal(y, oracle.conv(x, w, padding="same")):
            found.append(f"{label}: end")
        elif np.array_equal(y, oracle.conv(x, w, padding="same_lower")):
            found.append(f"{label}: start")
        else:
            found.append(f"{label}: none matched")
    return "; ".join(found)


def _native_same(name: str) -> dict[str, Callable]:
    if name == "torch":
        def t(x, w):
            import torch

            return torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w), padding="same").numpy()
        return {"padding='same'": t}
    if name == "onnxruntime":
        from .adapters.onnx_adapter import run_node

        return {m: (lambda x, w, m=m: run_node("Conv", [x.astype(np.float32), w.astype(np.float32)], kernel_shape=[2], auto_pad=m))
                for m in ("SAME_UPPER", "SAME_LOWER")}
    if name == "jax":
        def j(x, w):
            from jax import lax

            return np.asarray(lax.conv_general_dilated(x.astype(np.float32), w.astype(np.float32), (1,), "SAME",
                                                       dimension_numbers=("NCH", "OIH", "NCH")))
        return {"padding='SAME'": j}
    if name == "tensorflow":
        def tf_same(x, w):
            import tensorflow as tf

            # NWC input, WIO filter: the library's own layout for conv1d
            y = tf.nn.conv1d(x.transpose(0, 2, 1).astype(np.float32), w.transpose(2, 1, 0).astype(np.float32),
                             1, "SAME")
            return np.asarray(y).transpose(0, 2, 1)
        return {"padding='SAME'": tf_same}
    if name == "openvino":
        from .adapters.openvino_adapter import _run

        return {m: (lambda x, w, m=m: _run("conv", [x.astype(np.float32), w.astype(np.float32)], "cpu", "f32",
                                           stride=[1], dilation=[1], groups=1, auto_pad=m, pads=None)[0])
                for m in ("same_upper", "same_lower")}
    if name == "scipy":
        from scipy import signal

        return {"correlate(mode='same')": lambda x, w: signal.correlate(x[0, 0], w[0, 0], mode="same")[None, None]}
    if name == "numpy":
        return {"correlate(mode='same')": lambda x, w: np.correlate(x[0, 0], w[0, 0], mode="same")[None, None]}
    return {}


def identify(
    target: Any, *, ops: tuple[str, ...] | None = None, dims: int | None = None, timeout: float | None = 10.0,
    layout: str | None = None, weight_layout: str | None = None,
) -> dict[str, str]:
    """Fingerprint of ``target``'s conventions: ``{property: finding}`` (see :data:`PROPERTIES`).

    Only the rows of ``ops`` are probed.  ``dims`` is the number of spatial
    axes of the probes (each 1-D probe repeated on every axis); by default 1,
    or the fewest the target declares for the first op when it declares no 1-D.
    A row that cannot be decided says why (``'not offered: ...'``,
    ``'raises ...: message'``, ``'hangs: ...'``, ``'none matched: ...'``).
    ``ops`` defaults to every op the registry has probes for.  Each probe
    call is guarded as in :func:`refconv.conformance.check`: ``timeout``
    seconds (None: no limit); a target that raises ``SystemExit`` or hangs
    gets that row, and after a hang the remaining rows are not probed.

    Layouts: a function's activation and weight layouts are detected
    (:func:`detect_layouts`: rows ``conv.layout``, ``conv.weight_layout``,
    ``pool.layout``, ``conv_transpose.layout``) and its other rows probed
    through them; ``layout`` / ``weight_layout`` declare them instead (then
    ``dims`` defaults to their rank).  Built-in adapters take canonical arrays.
    """
    from .targets import with_layouts

    ops = registry.probed() if ops is None else ops
    tgt = with_layouts(resolve(target), layout, weight_layout)
    if dims is None and (layout or weight_layout):
        from .. import layouts

        dims = layouts.layout(layout or weight_layout).dims
    if dims is None:
        dims = default_dims(tgt, ops)
    if dims not in (1, 2, 3):
        raise ValueError(f"dims={dims!r}: expected 1, 2 or 3")
    if layout or weight_layout:
        from .targets import check_layouts

        for op in ops:  # the names, their kinds and their rank against each op and dims: ConvParamError
            check_layouts(op, dims, layout, weight_layout if registry.get(op).family == "conv" else None)
    from .engine import _timeout

    out: dict[str, str] = {}
    _GUARD.update(timeout=_timeout(timeout), hung="")
    try:
        return _identify(tgt, ops, out, dims)
    finally:
        _CAPS.clear()
        _GUARD.update(timeout=10.0, hung="")


def default_dims(target: Target, ops: tuple[str, ...]) -> int:
    """1, or the fewest spatial axes the target declares for the first op when 1 is not among them."""
    for op in ops:
        try:
            declared = tuple(target.capabilities(op, 1, "float32").dims)
        except Exception:  # noqa: BLE001 - no declaration: probe 1-D
            continue
        if declared and 1 not in declared:
            return min(declared)
        return 1
    return 1


def missing_ops(target: Any, ops: tuple[str, ...]) -> dict[str, str]:
    """``{op: why}`` for the requested ops the target has no function for (they get no rows)."""
    tgt = resolve(target)
    out = {}
    for op in ops:
        try:
            tgt.function(op)
        except Exception as exc:  # noqa: BLE001
            detail = "" if isinstance(exc, KeyError) else _clip(str(exc))
            out[op] = f"the target has no {op} function" + (f" ({detail})" if detail else "")
    return out


def _in_found_layouts(tgt: Target, op: str, prefix: str, dims: int) -> tuple[dict[str, str], Callable | None, Any]:
    """The layout rows of ``op`` for ``tgt``, its function for the other probes, and the pair found (or declared).

    Built-in adapters take canonical arrays (no rows); a target checked with
    declared layouts (``module:function[layout=...]``) gets them as rows.
    """
    fn = _function(tgt, op)
    if fn is None:
        return {}, None, None
    declared = getattr(tgt, "layouts", None)
    if declared is not None:
        rows, _ = _layout_rows(fn, op, dims, prefix, tuple(declared))
        return rows, fn, None  # already translated by the target
    if not tgt.is_function:  # an adapter translates; the library's own layouts when it names them
        native = (getattr(tgt, "native_layouts", None) or {}).get(op)
        if not native:
            return {}, fn, None
        rows = {f"{prefix}.layout": f"{native[0]} (the library's own; the adapter translates)"}
        if native[1] and prefix in ("conv", "conv_transpose"):
            rows["conv.weight_layout" if prefix == "conv" else "conv_transpose.weight_layout"] = native[1]
        return rows, fn, None
    rows, wrapped = _layout_rows(fn, op, dims, prefix, (None, None))
    return rows, wrapped, (wrapped if wrapped is not fn else None)


def _translated(tgt: Target, layout: str) -> Target:
    """``tgt`` with every op's function taking ``layout`` activations (the pooling probes after the layout is found)."""
    from .targets import in_layouts

    return Target(tgt.name, lambda op: in_layouts(tgt.function(op), op, layout), tgt._caps, tgt.setup, tgt.spec,
                  tgt.keywords, signature=tgt.signature, callable=tgt.callable, is_function=tgt.is_function)


def _identify(tgt: Target, ops: tuple[str, ...], out: dict[str, str], dims: int = 1) -> dict[str, str]:
    def caps(op: str) -> None:
        _CAPS.clear()
        try:
            _CAPS.append(tgt.capabilities(op, dims, "float32"))
        except Exception:  # noqa: BLE001
            pass

    if "conv" in ops:
        caps("conv")
        rows, fn, _ = _in_found_layouts(tgt, "conv", "conv", dims)
        out.update(rows)
        if fn is not None:  # through the layouts found; with canonical arrays when none was
            out.update(_conv_probes(fn, dims))
            if "depthwise" in out.get("conv.weight_layout", ""):
                out["conv.groups"] = "not offered: a depthwise HWIM weight holds groups = C_in only"
        if dims == 1:  # the library's own 'same' modes are probed in 1-D
            same = native_same_side(tgt)
            if same != "no 'same' mode":
                out["same.odd_zero"] = same
    pools = tuple(op for op in ops if registry.get(op).window)
    if pools:
        ptgt = tgt
        first = next((op for op in pools if _function(tgt, op) is not None), None)
        if first is not None and (tgt.is_function or getattr(tgt, "layouts", None) is not None
                                  or getattr(tgt, "native_layouts", None)):
            caps(first)
            rows, _, _ = _in_found_layouts(tgt, first, "pool", dims)
            out.update(rows)
            found = out.get("pool.layout", "")
            if tgt.is_function and getattr(tgt, "layouts", None) is None and found[:1] == "N" and found.split()[0].endswith("C"):
                ptgt = _translated(tgt, found.split()[0])
        out.update(_pool_probes(ptgt, caps, pools, dims))
    if "conv_transpose" in ops:
        caps("conv_transpose")
        rows, fn, _ = _in_found_layouts(tgt, "conv_transpose", "conv_transpose", dims)
        out.update(rows)
        ttgt = tgt
        if fn is not None and tgt.is_function and getattr(tgt, "layouts", None) is None:
            ttgt = Target(tgt.name, lambda op: fn, tgt._caps, tgt.setup, tgt.spec, tgt.keywords,
                          signature=tgt.signature, callable=tgt.callable, is_function=True)
        probes = _transpose_probes(ttgt, dims)
        if "conv_transpose.weight" in rows:  # the layout found names the weight's axes
            probes.pop("conv_transpose.weight", None)
        out.update(probes)
    return out


def table(fingerprints: dict[str, dict[str, str]]) -> str:
    """A markdown table: one row per property, one column per target."""
    names = list(fingerprints)
    props = [p for p in PROPERTIES if any(p in fp for fp in fingerprints.values())]
    lines = ["| property | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for p in props:
        lines.append(f"| {PROPERTIES[p]} | " + " | ".join(fingerprints[n].get(p, "n/a") for n in names) + " |")
    return "\n".join(lines)


def to_json(fingerprints: dict[str, Any]) -> str:
    return json.dumps(fingerprints, indent=2, sort_keys=True)


#: columns of the framework table: (header, property)
FRAMEWORK_COLUMNS = (
    ("kernel", "conv.kernel"),
    ("odd 'same' zero", "same.odd_zero"),
    ("dilation", "conv.dilation"),
    ("groups", "conv.groups"),
    ("ceil_mode", "max_pool.ceil"),
    ("avg divisor, include pad", "avg_pool.divisor_include_pad"),
    ("avg divisor, exclude pad", "avg_pool.divisor_exclude_pad"),
    ("transposed weight", "conv_transpose.weight"),
    ("transposed crop", "conv_transpose.crop"),
)

ADAPTER_TARGETS = ("torch", "onnxruntime", "jax", "scipy", "numpy")


def _short(finding: str) -> str:
    """An undecided finding without its reason (``'not offered'``), for the compact framework table."""
    if finding.startswith(("not offered: ", "none matched: ", "raises ")):
        return finding.split(": ", 1)[0]
    return finding


def framework_table(fingerprints: dict[str, dict[str, str]]) -> str:
    """Markdown table, one row per target, the columns of :data:`FRAMEWORK_COLUMNS`."""
    lines = ["| target | " + " | ".join(h for h, _ in FRAMEWORK_COLUMNS) + " |",
             "|---" * (len(FRAMEWORK_COLUMNS) + 1) + "|"]
    for name, fp in fingerprints.items():
        lines.append(f"| `{name}` | " + " | ".join(_short(fp.get(p, "n/a")) for _, p in FRAMEWORK_COLUMNS) + " |")
    return "\n".join(lines)


def adapter_fingerprints() -> dict[str, dict[str, str]]:
    """Fingerprints of the built-in adapters to other libraries (what specs/conventions.md shows)."""
    return {name: identify(name) for name in ADAPTER_TARGETS}
