"""Diagnosis: which perturbed convention does the target compute?

Every candidate is the oracle re-run with one convention changed (kernel
flipped, padding sides swapped, stride phase shifted, dilation off by one,
groups interleaved, bias on the wrong axis, ceil rule or divisor changed,
transposed weight layout swapped, ...).  A candidate whose shape equals the
target's and whose values agree within the same error bound explains the
failure (an empty output compares no value and explains nothing); if none
does and the values agree under a lower precision profile, the target
computes in a narrower format than claimed.

Before the conventions: a failure that disappears with C-contiguous inputs
depends on the memory layout; one that disappears with one sample instead of
an empty batch is the empty batch's; one reproduced by the oracle with
subnormal inputs or results set to zero is flushing (FTZ/DAZ).

Examples
--------
>>> from refconv.conformance.cases import Case
>>> c = Case('conv', spatial=(5,), kernel=(3,), padding=((0, 1),))
>>> [k.name for k in candidates(c)][:4]
['kernel flipped', 'window offset +1', 'window offset -1', 'padding sides swapped']
>>> axis_formula(c, 0)
'floor((5 + 0 + 1 - 1*(3 - 1) - 1) / 1) + 1 = 4'
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal

import numpy as np

from .. import shapes
from ..params import ConvParamError
from . import bounds, ops
from .cases import Case

__all__ = ["Candidate", "candidates", "diagnose", "matches", "axis_formula"]


@dataclass
class Candidate:
    """One alternative convention: a modified case and/or transforms of the inputs and output."""

    name: str
    explanation: str
    case: Case
    inputs: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None
    output: Callable[[np.ndarray], np.ndarray] | None = None
    #: ``compute(arrays, approximate)``: the result, exact or (``approximate=True``) in float64 arithmetic
    compute: Callable[[dict[str, np.ndarray], bool], np.ndarray] | None = None
    #: the candidate gives the indices beside the values (an op with indices): compared exactly
    indices: bool = False

    def evaluate(self, arrays: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        """The candidate's result: exact (the oracle), or a quick float64 one (:func:`ops.expected`)."""
        # integer arrays (indices) stay integers
        a = {k: np.asarray(v, dtype=np.int64 if np.asarray(v).dtype.kind in "iu" else np.float64) for k, v in arrays.items()}
        if self.inputs is not None:
            a = self.inputs(a)
        if self.compute is not None:
            y = self.compute(a, approximate)
        else:
            y = ops.expected(self.case, a, approximate=approximate)
        return self.output(y) if self.output is not None else y


def _forward(case: Case) -> bool:
    """A forward convolution: a sum of products, neither transposed nor a gradient."""
    rec = case.record
    return rec.family == "conv" and not rec.transposed and rec.grad_of is None


def _output_shape(case: Case) -> tuple[int, ...]:
    """``case.output_shape`` of a case the definition accepts (the cases diagnosed are such cases)."""
    shape = case.output_shape
    assert shape is not None, "a case the definition rejects has no output shape"
    return shape


def _is_max(case: Case) -> bool:
    """A maximum over windows: the magnitude of its bound is ``|y|``."""
    return case.record.bound == "max"


def _weight_result(case: Case) -> bool:
    """An op whose result is a weight (the weight gradient)."""
    return case.record.second == "weight_shape"


def axis_formula(case: Case, i: int) -> str:
    """Output size of axis ``i`` as the formula with the numbers substituted."""
    n, k, s, d = case.spatial[i], case.kernel[i], case.stride[i], case.dilation[i]
    lo, hi = case.padding[i]
    if case.record.transposed:
        op_ = case.output_padding[i]
        o = shapes.conv_transpose_output_size(n, k, s, (lo, hi), op_, d)
        return f"({n} - 1)*{s} - {lo} - {hi} + {d}*({k} - 1) + {op_} + 1 = {o}"
    if case.record.window:
        o = shapes.pool_output_size(n, k, s, (lo, hi), d, case.ceil_mode)
        f = "ceil" if case.ceil_mode else "floor"
        rule = " (minus one if the last window starts in the right padding)" if case.ceil_mode else ""
        return f"{f}(({n} + {lo} + {hi} - {d}*({k} - 1) - 1) / {s}) + 1{rule} = {o}"
    o = shapes.conv_output_size(n, k, s, (lo, hi), d)
    return f"floor(({n} + {lo} + {hi} - {d}*({k} - 1) - 1) / {s}) + 1 = {o}"


def _flip_axes(axes: tuple[int, ...], name: str = "w") -> Callable:
    def f(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a = dict(a)
        a[name] = np.flip(a[name], axis=tuple(2 + i for i in axes))
        return a

    return f


def _per_axis(case: Case, i: int, **kw: Any) -> Case:
    vals: dict[str, Any] = {k: tuple(v if j == i else getattr(case, k)[j] for j in range(case.dims))
                            for k, v in kw.items()}
    return replace(case, **vals)


def _interleave(case: Case, which: str) -> Callable:
    """Compute with a dense (groups=1) weight whose group mapping is interleaved."""
    g, cin, cout = case.groups, case.cin, case.cout
    cg, og = cin // g, cout // g

    def compute(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        w = a["w"]
        dense = np.zeros((cout, cin, *w.shape[2:]))
        for o in range(cout):
            grp = (o % g) if which in ("output", "both") else o // og
            for c in range(cg):
                ch = (c * g + grp) if which in ("input", "both") else grp * cg + c
                dense[o, ch] = w[o, c]
        dense_case = replace(case, groups=1)
        return ops.expected(dense_case, {**a, "w": dense}, approximate=approximate)

    return compute


def _stride_phase(case: Case, phases: tuple[int, ...]) -> Candidate:
    # stride-1 result, with room past the end for outputs read from the right padding
    one = replace(case, stride=(1,) * case.dims, padding=tuple((lo, hi + p) for (lo, hi), p in zip(case.padding, phases)))
    out = _output_shape(case)[2:]

    def output(y: np.ndarray) -> np.ndarray:
        idx = tuple(slice(p, p + s * o, s) for p, s, o in zip(phases, case.stride, out))
        return y[(slice(None), slice(None)) + idx]

    return Candidate(
        f"stride phase {phases}", f"strided outputs taken at offset {phases} instead of 0 (p*s + phase)", one, output=output,
    )


def _bias_times(factor: int) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The inputs with the bias multiplied by ``factor``."""
    return lambda a: {**a, "b": a["b"] * factor}


def _bias_variants(case: Case) -> list[Candidate]:
    if not case.bias or not case.record.has_bias:
        return []
    nb = replace(case, bias=False)
    out = [Candidate("bias ignored", "the bias is not added", nb, inputs=lambda a: {k: v for k, v in a.items() if k != "b"})]
    kprod = math.prod(case.kernel)
    reads = case.cin // case.groups
    for factor, why in ((2, "added twice"), (reads, "added once per input channel of the group"),
                        (kprod, "added once per kernel tap"), (reads * kprod, "added once per product (inside the loop)")):
        if factor > 1:
            out.append(Candidate(f"bias {why}", f"the bias is {why} ({factor} times)", case,
                                 inputs=_bias_times(factor)))
    nsp = case.dims
    yshape = _output_shape(case)
    for ax in [0] + list(range(2, 2 + nsp)):
        if yshape[ax] == case.cout and case.cout > 1:
            def compute(a, approximate=False, ax=ax):
                y = ops.expected(nb, {k: v for k, v in a.items() if k != "b"}, approximate=approximate)
                shape = [1] * y.ndim
                shape[ax] = -1
                return y + a["b"].reshape(shape)
            out.append(Candidate(f"bias on axis {ax}", f"the bias is broadcast along axis {ax} instead of the channel axis 1", case,
                                 compute=compute))
    return out


def _general(case: Case, pads: tuple) -> Callable:
    """The oracle's general operation with any (even negative, cropping) padding."""

    def compute(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        return ops.general_expected(case, a, pads, approximate=approximate)

    return compute


def _dilation_from_zero(case: Case) -> Candidate:
    """Dilation used as ``d - 1``: where that is 0 every tap reads the same sample (the kernel sums up)."""
    zero = tuple(i for i, dd in enumerate(case.dilation) if dd == 1)
    mod = replace(case, dilation=tuple(max(1, dd - 1) for dd in case.dilation),
                  kernel=tuple(1 if i in zero else k for i, k in enumerate(case.kernel)))
    why = "dilation counted from 0: d used as d - 1 (dilation 1 reads one sample K times)"
    if _forward(case):
        return Candidate("dilation off by one (d - 1)", why, mod,
                         inputs=lambda a: {**a, "w": a["w"].sum(axis=tuple(2 + i for i in zero), keepdims=True)} if zero else a)
    if _is_max(case):
        cand = _explicit_pool(mod, case.padding, -np.inf, "pytorch" if case.ceil_mode else "floor", "padded")
        if cand is not None:
            cand.name, cand.explanation = "dilation off by one (d - 1)", why
            return cand
    return Candidate("dilation off by one (d - 1)", why, mod)


def conv_candidates(case: Case) -> list[Candidate]:
    """A convolution or its gradients: each convention a library may have changed, in the order they are tried."""
    return (_mode_candidates(case) + _flip_candidates(case) + _window_candidates(case) + _padding_candidates(case)
            + _dilation_candidates(case) + _stride_candidates(case) + _layout_candidates(case) + _bias_variants(case))


_PadMode = Literal["reflect", "edge", "wrap", "symmetric"]
#: numpy's np.pad modes: PyTorch's 'replicate' is 'edge', 'circular' is 'wrap', and 'symmetric' repeats the edge
_NP_MODES: dict[str, _PadMode] = {"reflect": "reflect", "replicate": "edge", "circular": "wrap",
                                   "symmetric": "symmetric"}


def _mode_candidates(case: Case) -> list[Candidate]:
    """A padding_mode other than zeros: zeros instead, another mode, or 'reflect' repeating the edge sample."""
    if case.padding_mode == "zeros":
        return []
    c = [Candidate("padding_mode ignored", f"zeros in the padding instead of padding_mode={case.padding_mode!r}",
                   replace(case, padding_mode="zeros"))]
    for other in ("reflect", "replicate", "circular", "symmetric") if case.op == "conv" else ():
        if other == case.padding_mode:
            continue
        c.append(Candidate(f"padding_mode {other!r} instead", f"the padding filled as {other!r} (numpy's "
                           f"np.pad mode {_NP_MODES[other]!r}) instead of {case.padding_mode!r}", case,
                           compute=_padded_with(case, _NP_MODES[other])))
    return c


def _padded_with(case: Case, np_mode: _PadMode) -> Callable:
    """The convolution of an input padded by ``np.pad(mode=np_mode)``, with no padding of its own."""
    def compute(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        x = np.pad(np.asarray(a["x"], dtype=np.float64), [(0, 0), (0, 0)] + list(case.padding), mode=np_mode)
        flat = replace(case, padding=((0, 0),) * case.dims, padding_mode="zeros",
                       spatial=tuple(n + lo + hi for n, (lo, hi) in zip(case.spatial, case.padding)))
        return ops.expected(flat, {**a, "x": x}, approximate=approximate)

    return compute


def _flip_candidates(case: Case) -> list[Candidate]:
    """The kernel flipped, on every axis or on one."""
    c: list[Candidate] = []
    d = case.dims
    allax = tuple(range(d))
    if _weight_result(case):
        c.append(Candidate("kernel flipped", "the weight gradient is returned flipped (convolution instead of cross-correlation)",
                           case, output=lambda y: np.flip(y, axis=tuple(range(2, 2 + d)))))
    elif case.record.transposed:
        c.append(Candidate("kernel not flipped", "the kernel is not flipped when scattering (or flipped twice)", case,
                           inputs=_flip_axes(allax)))
    else:
        c.append(Candidate("kernel flipped", "computes convolution (k' = K - 1 - k) instead of cross-correlation", case,
                           inputs=_flip_axes(allax)))
    if d > 1:
        for i in range(d):
            if case.kernel[i] > 1:
                c.append(Candidate(f"kernel flipped on axis {i}", f"the kernel is reversed along spatial axis {i} only", case,
                                   inputs=_flip_axes((i,))))
    return c


def _window_candidates(case: Case) -> list[Candidate]:
    """Windows shifted by one; output_padding ignored or on the wrong side."""
    c: list[Candidate] = []
    d = case.dims
    if _forward(case):
        for shift in (1, -1):
            shifted = tuple((lo - shift, hi + shift) for lo, hi in case.padding)
            c.append(Candidate(f"window offset {shift:+d}", f"every window starts {abs(shift)} sample(s) "
                               f"{'later' if shift > 0 else 'earlier'} (p*s + {shift})", case, compute=_general(case, shifted)))
    if case.record.transposed and any(case.output_padding):
        c.append(Candidate("output_padding ignored", "output_padding is not applied", replace(case, output_padding=(0,) * d)))
        p2 = tuple((l - o, h) for (l, h), o in zip(case.padding, case.output_padding))
        if all(l >= 0 for l, _ in p2):
            c.append(Candidate("output_padding at the start", "the output_padding rows are added before the output instead of after",
                               replace(case, padding=p2, output_padding=(0,) * d)))
    return c


def _padding_candidates(case: Case) -> list[Candidate]:
    """The padding (a transposed crop) on the wrong side, one side dropped, or doubled."""
    c: list[Candidate] = []
    pads = case.padding
    mods = [
        ("padding sides swapped", "lo and hi padding exchanged (the odd zero on the wrong side)", tuple((h, l) for l, h in pads)),
        ("hi padding ignored", "only the lo padding is applied", tuple((l, 0) for l, h in pads)),
        ("lo padding ignored", "only the hi padding is applied", tuple((0, h) for l, h in pads)),
        ("lo padding on both sides", "the lo padding is used on both sides", tuple((l, l) for l, h in pads)),
        ("hi padding on both sides", "the hi padding is used on both sides", tuple((h, h) for l, h in pads)),
        ("all padding at the end", "the total padding is put after the input", tuple((0, l + h) for l, h in pads)),
        ("all padding at the start", "the total padding is put before the input", tuple((l + h, 0) for l, h in pads)),
    ]
    if case.record.transposed:
        mods = [(n.replace("padding", "crop"), e.replace("padding", "crop"), p) for n, e, p in mods]
    seen = {pads}
    for name, why, p in mods:
        if p not in seen:
            seen.add(p)
            c.append(Candidate(name, why, replace(case, padding=p)))
    return c


def _dilation_candidates(case: Case) -> list[Candidate]:
    """The dilation off by one, counted from zero, ignored, or swapped with the stride."""
    c: list[Candidate] = []
    d = case.dims
    for i in range(d):
        dd = case.dilation[i]
        if dd > 1:
            c.append(Candidate("dilation off by one (d - 1)", f"dilation {dd} used as {dd - 1} on axis {i}: counted from 0",
                               _per_axis(case, i, dilation=dd - 1)))
        c.append(Candidate("dilation off by one (d + 1)", f"dilation {dd} used as {dd + 1} on axis {i}", _per_axis(case, i, dilation=dd + 1)))
    if d > 1:
        c.append(Candidate("dilation off by one (d + 1)", "dilation d used as d + 1 on every axis",
                           replace(case, dilation=tuple(x + 1 for x in case.dilation))))
    c.append(_dilation_from_zero(case))
    if any(case.dilation[i] > 1 for i in range(d)):
        c.append(Candidate("dilation ignored", "dilation treated as 1", replace(case, dilation=(1,) * d)))
    if case.stride != case.dilation and any(s > 1 for s in case.stride + case.dilation):
        c.append(Candidate("stride and dilation swapped", "the stride is used as dilation and vice versa",
                           replace(case, stride=case.dilation, dilation=case.stride)))
    return c


def _stride_candidates(case: Case) -> list[Candidate]:
    """A stride phase other than 0, or the stride ignored."""
    c: list[Candidate] = []
    d = case.dims
    if case.record.family == "conv" and any(s > 1 for s in case.stride):
        if _forward(case):
            phases = list(itertools.islice(itertools.product(*[range(s) for s in case.stride]), 1, 28))
            for ph in dict.fromkeys(phases):
                if any(ph):
                    c.append(_stride_phase(case, ph))
        c.append(Candidate("stride ignored", "stride treated as 1", replace(case, stride=(1,) * d, output_padding=(0,) * d)))
    return c


def _layout_candidates(case: Case) -> list[Candidate]:
    """Groups interleaved, weight axes exchanged."""
    c: list[Candidate] = []
    d = case.dims
    if case.groups > 1 and not case.record.transposed:
        for which, why in (("output", "output channel o uses group o % groups instead of o // (C_out / groups)"),
                           ("input", "group g reads input channels g, g + groups, ... instead of a contiguous block"),
                           ("both", "both channel mappings interleaved")):
            if _forward(case):
                c.append(Candidate(f"group mapping interleaved ({which})", why, case, compute=_interleave(case, which)))
    if case.record.transposed and case.groups == 1 and case.cin == case.cout:
        c.append(Candidate("weight layout swapped", "the weight is read as (C_out, C_in/groups, *K) instead of (C_in, C_out/groups, *K)",
                           case, inputs=lambda a: {**a, "w": np.swapaxes(a["w"], 0, 1)}))
    if _forward(case) and case.groups == 1 and case.cin == case.cout and case.cin > 1:
        c.append(Candidate("weight channel axes swapped", "the weight is read as (C_in, C_out, *K)", case,
                           inputs=lambda a: {**a, "w": np.swapaxes(a["w"], 0, 1)}))
    if d == 2 and case.kernel[0] == case.kernel[1] and not _weight_result(case):
        c.append(Candidate("kernel spatial axes transposed", "the kernel's two spatial axes are exchanged", case,
                           inputs=lambda a: {**a, "w": np.swapaxes(a["w"], -1, -2)}))
    return c


def _explicit_pool(case: Case, pads: tuple, fill: float, ceil_rule: str, divisor: str) -> Candidate | None:
    """Pooling on an explicitly padded input: any padding, fill value, ceil rule and divisor."""
    d = case.dims
    outs = []
    for n, k, s, dl, (lo, hi) in zip(case.spatial, case.kernel, case.stride, case.dilation, pads):
        span = n + lo + hi - dl * (k - 1) - 1
        if span < 0:
            return None
        if ceil_rule == "floor":
            o = span // s + 1
        else:
            o = -(-span // s) + 1
            if ceil_rule == "pytorch" and (o - 1) * s >= n + lo:
                o -= 1
        outs.append(o)
    need = [(o - 1) * s + dl * (k - 1) + 1 for o, s, dl, k in zip(outs, case.stride, case.dilation, case.kernel)]
    ext = [max(n + lo + hi, nd) for n, (lo, hi), nd in zip(case.spatial, pads, need)]

    def compute(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        x = a["x"]
        xp = np.full(x.shape[:2] + tuple(ext), fill, dtype=np.float64)
        inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, case.spatial))
        xp[(slice(None), slice(None)) + inner] = x
        if _is_max(case):
            flat = replace(case, spatial=tuple(ext), padding=((0, 0),) * d, ceil_mode=False)
            y = ops.expected(flat, {"x": xp}, approximate=approximate)
            return y[(slice(None), slice(None)) + tuple(slice(0, o) for o in outs)]
        ones = np.ones((x.shape[1], 1, *case.kernel))
        conv = replace(case, op="conv", spatial=tuple(ext), padding=((0, 0),) * d, cout=x.shape[1], groups=x.shape[1], bias=False)
        sums = ops.expected(conv, {"x": xp, "w": ones}, approximate=approximate)
        if divisor == "kernel":
            div = np.full(sums.shape, float(math.prod(case.kernel)))
        else:
            mask = np.zeros((1, 1) + tuple(ext))
            if divisor == "input":
                mask[(0, 0) + inner] = 1
            else:  # positions inside input plus padding
                mask[(0, 0) + tuple(slice(0, n + lo + hi) for n, (lo, hi) in zip(case.spatial, pads))] = 1
            cnt = ops.expected(replace(conv, cin=1, cout=1, groups=1, n=1), {"x": mask, "w": np.ones((1, 1, *case.kernel))},
                               approximate=approximate)
            div = np.broadcast_to(cnt, sums.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = sums / div
        return y[(slice(None), slice(None)) + tuple(slice(0, o) for o in outs)]

    return Candidate("", "", case, compute=compute)


def pool_candidates(case: Case) -> list[Candidate]:
    c: list[Candidate] = []
    d = case.dims
    truth_rule = "pytorch" if case.ceil_mode else "floor"
    truth_div = "padded" if case.count_include_pad else "input"
    rules = {"floor": "floor (ceil_mode ignored)", "pytorch": "ceil with PyTorch's rule (last window starts inside input or left padding)",
             "plain": "plain ceil (a last window may start in the right padding)"}
    divs = {"padded": "window positions inside input plus padding", "input": "window positions inside the input",
            "kernel": "the full kernel size, even for windows cut short by ceil_mode"}
    fill = -np.inf if _is_max(case) else 0.0
    for rule in ("floor", "pytorch", "plain"):
        for div in (("padded", "input", "kernel") if case.record.takes("count_include_pad") else ("padded",)):
            if (rule, div) == (truth_rule, truth_div) or (rule == truth_rule and _is_max(case)):
                continue
            cand = _explicit_pool(case, case.padding, fill, rule, div)
            if cand is None:
                continue
            parts = []
            if rule != truth_rule:
                parts.append(f"output size by {rules[rule]}")
            if div != truth_div and case.record.takes("count_include_pad"):
                parts.append(f"divisor = {divs[div]}")
            cand.name = ("ceil rule" if rule != truth_rule else "") + (" and " if rule != truth_rule and div != truth_div else "") + (
                "divisor rule" if div != truth_div else "")
            cand.explanation = "; ".join(parts)
            c.append(cand)
    if _is_max(case) and any(lo or hi for lo, hi in case.padding):
        z = _explicit_pool(case, case.padding, 0.0, truth_rule, "padded")
        if z is not None:
            z.name, z.explanation = "zero padding in max pooling", "the padding holds zeros instead of -inf"
            c.append(z)
    pads = case.padding
    for name, why, p in (
        ("padding sides swapped", "lo and hi padding exchanged", tuple((h, l) for l, h in pads)),
        ("hi padding ignored", "only the lo padding is applied", tuple((l, 0) for l, h in pads)),
        ("lo padding ignored", "only the hi padding is applied", tuple((0, h) for l, h in pads)),
    ):
        if p != pads:
            cand = _explicit_pool(case, p, fill, truth_rule, truth_div)
            if cand is not None:
                cand.name, cand.explanation = name, why
                c.append(cand)
    if _is_max(case):
        c.append(_dilation_from_zero(case))
        c.append(Candidate("dilation off by one (d + 1)", "dilation d used as d + 1", replace(case, dilation=tuple(x + 1 for x in case.dilation))))
    if any(s > 1 for s in case.stride):
        phases = [tuple(p if j == i else 0 for j in range(d)) for i in range(d) for p in range(1, case.stride[i])]
        for ph in phases:
            c.append(_stride_phase(case, ph))
    return c


def candidates(case: Case) -> list[Candidate]:
    """All alternative conventions for ``case`` (only those that differ from it)."""
    return case.record.build_candidates(case)


def _far(case: Case, arrays: dict[str, np.ndarray], a: np.ndarray, y: np.ndarray, cand: Candidate, n: int,
         prof: Any, slack: float = 1.0) -> bool:
    """A cheap necessary condition for a match, checked before the magnitudes are computed exactly: every
    error within the bound of the largest magnitude any output can have (``n * max|x| * max|w| + max|b|``).

    ``slack=2`` for a float64 ``y`` (direct summation): its own error ``gamma_n(2**-53) * S`` is at most the
    bound of any profile, so doubling the allowance keeps every true match."""
    v = {k: np.abs(np.asarray(t, dtype=np.float64)) for k, t in arrays.items()}
    if cand.inputs is not None:
        v = {k: np.abs(t) for k, t in cand.inputs(v).items()}
    tops = {k: float(np.max(np.where(np.isfinite(t), t, 0.0))) if t.size else 0.0 for k, t in v.items()}
    first = list(tops.values())
    if case.record.window or len(first) < 2:
        smax = n * first[0]
    else:
        smax = n * first[0] * first[1] + tops.get("b", 0.0)
    bmax = float(bounds.elementwise_bound(np.array([smax]), np.array([0.0]), n, prof,
                                          input_factors=1 if case.record.window else 2)[0])
    both = np.isfinite(a) & np.isfinite(y)
    err = np.abs(a[both] - y[both])
    allowed = slack * (2 * bmax + np.abs(y[both]) * (4 * prof.u_out + 2.0**-50))
    return bool((err > allowed).any())


def matches(runner: Any, case: Case, arrays: dict[str, np.ndarray], actual: np.ndarray, cand: Candidate) -> bool:
    """Whether ``actual`` equals the candidate's result within the error bound (or exactly, where the bound is 0).

    A candidate that makes the case invalid, or that refconv declines for size, matches nothing; any other
    exception of a candidate is refconv's own failure: it is recorded in ``runner.diagnosis_errors`` (the
    report says so) and the candidate counts as no match.
    """
    n, factors = bounds.op_terms(case.record.bound_as or case.op, case.terms())  # the judge's rounding count
    prof = runner.prof
    if cand.indices:
        try:
            return bool(np.array_equal(cand.evaluate(arrays), actual))
        except ConvParamError:
            return False
    a = np.asarray(actual, dtype=np.float64)
    try:
        with np.errstate(all="ignore"):
            try:
                # a float64 screen first: most candidates are far off and need no exact evaluation
                quick = cand.evaluate(arrays, approximate=True)
            except ConvParamError:
                return False  # the changed convention makes the case invalid: nothing to compare
            except Exception:  # noqa: BLE001 - the fast engine declines (memory cap, a form it lacks): go exact
                quick = None
            if quick is not None and (quick.shape != actual.shape or _far(case, arrays, a, quick, cand, n, prof, 2)):
                return False
            y = cand.evaluate(arrays)
            if y.shape != actual.shape or y.size == 0:
                return False  # an empty output reproduces nothing: no value was compared
            if _is_max(case):
                s = np.abs(y)
            elif _far(case, arrays, a, y, cand, n, prof):
                return False
            else:
                s = np.abs(cand.evaluate({k: np.abs(np.asarray(v, dtype=np.float64)) for k, v in arrays.items()}))
    except (ConvParamError, MemoryError):  # not applicable to this case, or too large to evaluate
        return False
    except Exception as exc:  # noqa: BLE001 - refconv's own failure: said in the report, never silent
        errors = getattr(runner, "diagnosis_errors", None)
        if isinstance(errors, list):
            errors.append(f"candidate {cand.name!r} failed: {type(exc).__name__}: {exc}")
        return False
    b = bounds.elementwise_bound(np.where(np.isfinite(s), s, 0), np.where(np.isfinite(y), y, 0), n, prof,
                                 input_factors=factors) + np.abs(np.where(np.isfinite(y), y, 0)) * 2.0**-52
    same_special = (np.isnan(a) & np.isnan(y)) | (np.isinf(a) & (a == y))
    with np.errstate(invalid="ignore"):
        ok = same_special | (np.abs(a - y) <= b)
    return bool(ok.all())


def _layout_findings(runner: Any, case: Case, outcome: Any) -> list[str]:
    """For inputs in a non-contiguous layout: does the same case with C-contiguous inputs pass?"""
    if case.layout == "contiguous":
        return []
    if not runner.evaluate(replace(case, layout="contiguous")).ok:
        return []
    out = [f"depends on memory layout: passes with C-contiguous inputs, fails with {case.layout} inputs"]
    msg = str(getattr(outcome, "message", "") or "")
    if outcome.kind == "exception":
        if case.layout == "readonly" and "read-only" in msg:
            out.append("it writes into an input array (copy an input before modifying it)")
        else:
            out.append(f"it raises with {case.layout} inputs: {msg}")
    elif outcome.kind in ("value", "nonfinite") and outcome.actual is not None:
        arrays = case.arrays(runner.dtype)
        # the values as they lie in memory, read as if C-contiguous (ravel(order='K'), np.frombuffer, a raw pointer)
        mem = {k: np.ravel(v, order="K").reshape(v.shape) for k, v in arrays.items()}
        plain = Candidate("memory order", "", case)
        if any(not np.array_equal(mem[k], arrays[k], equal_nan=True) for k in arrays) and matches(
                runner, case, mem, np.asarray(outcome.actual), plain):
            out.append("it reads the inputs' memory in storage order as if it were C-contiguous (ravel(order='K'), "
                       "np.frombuffer or a raw pointer): the oracle on the inputs so read reproduces the output")
        elif outcome.kind == "nonfinite" and case.layout == "strided":
            out.append("NaN where the exact result is finite: it reads the gaps of the strided inputs' buffer (NaN there)")
    return out


def _tiny(dtype: str) -> float:
    import ml_dtypes

    from .cases import dtype_of

    return float(ml_dtypes.finfo(dtype_of(dtype)).tiny)


def _ftz_findings(runner: Any, case: Case, arrays: dict[str, np.ndarray], outcome: Any) -> list[str]:
    """Subnormal inputs, products or results flushed to zero (FTZ/DAZ), verified against the oracle."""
    if outcome.kind not in ("value", "nonfinite") or outcome.actual is None or outcome.expected is None:
        return []
    tiny = _tiny(runner.dtype)
    a64 = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    exp = np.asarray(outcome.expected, dtype=np.float64)
    actual = np.asarray(outcome.actual)

    def sub(v: np.ndarray) -> bool:
        return bool(((v != 0) & (np.abs(v) < tiny)).any())

    names = list(a64)
    products_sub = False
    if not case.record.window and len(names) >= 2 and a64[names[0]].size and a64[names[1]].size:
        # every nonzero product below the smallest normal: flushing the products zeroes all of them
        products_sub = float(np.abs(a64[names[0]]).max()) * float(np.abs(a64[names[1]]).max()) < tiny
    if not (any(sub(v) for v in a64.values()) or sub(exp) or products_sub):
        return []

    def flush(v: np.ndarray) -> np.ndarray:
        return np.where(np.abs(v) < tiny, 0.0, v)

    def daz(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: flush(v) for k, v in a.items()}

    def no_products(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: (np.zeros_like(v) if k == names[0] else flush(v) if k == "b" else v) for k, v in a.items()}

    cands = [
        ("subnormal inputs read as zero (DAZ)", daz, None),
        ("subnormal results written as zero (FTZ)", None, flush),
        ("subnormal inputs read as zero and subnormal results written as zero", daz, flush),
    ]
    if products_sub:
        cands.append(("subnormal products flushed to zero", no_products, flush))
    prec = runner.prof.name
    head = f"flushes subnormals to zero (FTZ/DAZ); if that is intended, claim precision '{prec}-ftz'"
    for what, inputs, output in cands:
        if matches(runner, case, arrays, actual, Candidate(what, "", case, inputs=inputs, output=output)):
            return [f"{head} ({what}: the oracle with this change reproduces the output)"]
    name = f"{prec}-ftz"
    if name in getattr(bounds, "PROFILES", {}):
        try:
            if runner.compare(case, arrays, actual, exp, bounds.profile(name, runner.dtype)).ok:
                return [f"{head} (the errors fit the {name} bound: subnormal operands or partial sums flushed)"]
        except Exception:  # noqa: BLE001 - a profile that does not apply to this op
            pass
    return []


def _empty_batch(runner: Any, case: Case, outcome: Any) -> tuple[list[str], list[str]] | None:
    """A failure of an empty batch: does the same case with N = 1 fail the same way?"""
    one = replace(case, n=1)
    out1 = runner.evaluate(one)
    if out1.ok or out1.kind != outcome.kind:
        if outcome.kind == "shape":
            got = tuple(np.shape(outcome.actual))
            what = f"output shape {got} instead of {tuple(_output_shape(case))}"
        else:
            what = outcome.message
        return [f"empty batch: {what} only when N = 0 (the same case with N = 1 "
                f"{'passes' if out1.ok else 'fails differently: ' + out1.kind})"], []
    found, formulas = diagnose(runner, one, out1)
    return ["the failure does not depend on the empty batch: the same case with N = 1 fails the same way "
            "(diagnosed there, where values can be compared)"] + found, formulas


def diagnose(runner: Any, case: Case, outcome: Any) -> tuple[list[str], list[str]]:
    """``(findings, shape_formulas)`` for a failed outcome of ``case``.

    In order: a failure that depends on the memory layout; one of an empty
    batch only; subnormals flushed to zero; then the conventions whose
    perturbed oracle reproduces the output (shape and values), and precision.
    """
    findings: list[str] = _layout_findings(runner, case, outcome)
    formulas: list[str] = []
    if findings:
        return findings, formulas
    if case.n == 0 and outcome.kind in ("shape", "exception"):
        found = _empty_batch(runner, case, outcome)
        if found is not None:
            return found
    if outcome.kind == "exception":
        findings.append("exception raised by the target on a valid case (the oracle accepts these parameters)")
        return findings, formulas
    arrays = case.arrays(runner.dtype)
    actual = np.asarray(outcome.actual)
    ftz = _ftz_findings(runner, case, arrays, outcome)
    if ftz:
        return ftz, formulas
    # indices that fail beside right values: the index conventions; otherwise the conventions of the values
    cands = [c for c in candidates(case) if c.indices == (outcome.kind == "indices")]
    # a candidate explains the output only if the oracle with that change reproduces its shape and its values
    hits = [cand for cand in cands if matches(runner, case, arrays, actual, cand)]
    for err in getattr(runner, "diagnosis_errors", [])[:3]:
        findings.append(f"(refconv's diagnosis is incomplete: {err}; a bug in refconv, please report it)")
    if outcome.kind == "shape":
        _shape_findings(case, actual, hits, findings, formulas)
    for cand in hits[:3]:
        findings.append(f"{cand.name}: {cand.explanation} (the oracle with this change reproduces the output)")
    if not hits and outcome.kind == "shape":
        findings.append("no single convention change reproduces the output (its shape and its values)")
    if not hits and outcome.kind == "nonfinite" and outcome.worst:
        findings.append(_nonfinite_finding(case, outcome.worst))
        return findings, formulas
    if not hits and outcome.kind in ("value", "nonfinite") and actual.shape == tuple(_output_shape(case)):
        findings += _precision_findings(runner, case, arrays, actual, outcome)
    return findings, formulas


def _shape_findings(case: Case, actual: np.ndarray, hits: list[Candidate], findings: list[str],
                    formulas: list[str]) -> None:
    """A wrong shape: the formula of each wrong axis (also under each matching convention), rank and channels."""
    exp_shape = _output_shape(case)
    if actual.ndim == len(exp_shape):
        wrong = [i for i in range(case.dims) if actual.shape[2 + i] != exp_shape[2 + i]]
        formulas += [f"axis {i} expected: {axis_formula(case, i)}" for i in wrong]
        for cand in hits:
            if cand.compute is None and cand.output is None and cand.case.is_valid():
                formulas += [f"axis {i} with {cand.name}: {axis_formula(cand.case, i)}" for i in wrong]
    if actual.ndim != len(exp_shape):
        findings.append(f"rank {actual.ndim} instead of {len(exp_shape)}: layout (N, C, *spatial) expected")
    elif actual.shape[:2] != tuple(exp_shape[:2]):
        findings.append(f"batch/channel sizes {actual.shape[:2]} instead of {tuple(exp_shape[:2])}")


def _nonfinite_finding(case: Case, w: dict) -> str:
    """An infinity or NaN where the definition has another value (or the other way round)."""
    exp_v, act_v = w["expected"], w["actual"]
    if not np.isfinite(exp_v):
        why = ("a window with no input element (its maximum is -inf)" if _is_max(case) and exp_v == -np.inf
               else "an IEEE special of the definition")
        return f"the exact result is {exp_v!r} ({why}) but the target returns {act_v!r}"
    return f"the target returns {act_v!r} where the exact result is finite ({exp_v!r}): overflow or an invalid operation"


#: the profiles tried, narrowest last, and how a finding names them
_NARROWER = ["float64", "float32", "tf32", "bfloat16 inputs", "float16", "bfloat16"]
_LABELS = {"tf32": "tf32 (or float16 inputs) with float32 accumulation",
           "bfloat16 inputs": "bfloat16 inputs with float32 accumulation"}


def _precision_findings(runner: Any, case: Case, arrays: dict[str, np.ndarray], actual: np.ndarray,
                        outcome: Any) -> list[str]:
    """Values off with no convention to blame: a logic bug (wrong also on exact inputs), a precision lower than
    claimed (the first narrower profile whose bound holds), or the size of the error."""
    findings: list[str] = []
    claimed = runner.prof.name
    rounding_only = True
    if case.record.family == "conv":
        # with inputs in {-1, 0, 1} every format computes exactly (up to 256 terms; sparse ones past that,
        # partial sums at most ~128): a rounding problem disappears, a logic bug stays
        exact = "unit" if case.terms() <= 256 else "sparse"
        if any(not runner.evaluate(replace(case, values=exact, seed=case.seed + k)).ok for k in range(4)):
            rounding_only = False
            findings.append("not a rounding problem: the results are wrong also for inputs in {-1, 0, 1}, "
                            "which every format sums exactly")
    plain = claimed[:-4] if claimed.endswith("-ftz") else claimed
    for name in (_NARROWER[_NARROWER.index(plain) + 1:] if rounding_only and plain in _NARROWER else []):
        prof = _narrower_profile(name, runner.dtype)
        if runner.compare(case, arrays, actual, np.asarray(outcome.expected), prof).ok:
            findings.append(f"precision lower than claimed: the errors exceed the {claimed} bound but fit "
                            f"{_LABELS.get(name, 'the ' + name + ' profile')} ({prof.describe()})")
            return findings
    w = outcome.worst or {}
    if w and rounding_only:
        err, bnd = w.get("error", 0), w.get("bound", 0)
        rel = err / max(abs(w.get("expected", 0)), 1e-300)
        findings.append(f"no single convention change explains it; worst error {err:.3g} is "
                        f"{err / bnd if bnd else float('inf'):.3g} times the bound (relative {rel:.2g})")
    return findings


def _narrower_profile(name: str, dtype: str) -> Any:
    if name == "bfloat16 inputs":
        # diagnosis only: inputs rounded to bfloat16, products and sums in float32 (mixed-precision units)
        base = bounds.profile("tf32", dtype)
        return bounds.Profile(name, bounds.FORMATS["bfloat16"].u, base.u_acc, base.u_out, base.eta_acc, base.eta_out)
    return bounds.profile(name, dtype)


# --------------------------------------------------------------------------- the pooling ops added to the six


def indices_candidates(case: Case) -> list[Candidate]:
    """Max pooling with indices: the conventions of max pooling's values, then of the indices (compared exactly)."""
    from ..pooling import onnx_indices

    plain = replace(case, op="max_pool")
    exact = lambda a: ops.expected(case, a)[1]  # noqa: E731 - the exact indices (the oracle)
    shape = (case.n, case.cin, *case.spatial)
    c = pool_candidates(plain)
    c.append(Candidate("indices counted over the whole tensor", "indices count across N and C (ONNX Indices, "
                       "storage_order=0) instead of within each (n, c) plane", case, indices=True,
                       compute=lambda a, approximate: onnx_indices(exact(a), shape, 0)))
    c.append(Candidate("column-major indices", "indices over the whole tensor with the spatial axes column-major "
                       "(ONNX storage_order=1)", case, indices=True,
                       compute=lambda a, approximate: onnx_indices(exact(a), shape, 1)))
    c.append(Candidate("the last maximum on ties", "ties take the last maximum in window order, not the first", case,
                       indices=True, compute=lambda a, approximate: _last_max_indices(case, a["x"])))
    return c


def _last_max_indices(case: Case, x: np.ndarray) -> np.ndarray:
    """The index of the last maximal input element of each window (a tie rule other than the definition's)."""
    from ..fast import pool_extra as pe

    pp = case.validate()
    xp = pe._padded(np.asarray(x, dtype=np.float64), pp, -np.inf)
    best: Any = None  # None until the first tap
    idx: Any = None
    for k, sl in pe._taps(pp):
        v = xp[sl]
        flat, ok = pe._tap_flat(pp, k)
        if best is None:
            best, idx = np.where(ok, v, -np.inf), np.broadcast_to(np.where(ok, flat, -1), v.shape).copy()
            continue
        later = ok & (v >= best)  # a tie goes to the later tap
        best, idx = np.where(later, v, best), np.where(later, flat, idx)
    return idx


def _adaptive_with(case: Case, bins: Callable[[int, int], list[tuple[int, int]]], name: str, why: str) -> Candidate:
    """Adaptive pooling over other bins (mean or maximum per bin, in float64)."""
    def compute(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        y = np.asarray(a["x"], dtype=np.float64)
        out_size = case.output_size
        assert out_size is not None  # an adaptive op's case: __post_init__ fills it in
        for ax in range(y.ndim - 1, 1, -1):
            parts = [y.take(range(s, max(e, s + 1)), axis=ax) for s, e in bins(case.spatial[ax - 2], out_size[ax - 2])]
            red = [p.max(axis=ax) if _is_max(case) else p.mean(axis=ax) for p in parts]
            y = np.stack(red, axis=ax)
        return y

    return Candidate(name, why, case, compute=compute)


def adaptive_candidates(case: Case) -> list[Candidate]:
    """Adaptive pooling: bins by other rounding rules."""
    return [
        _adaptive_with(case, lambda n, o: [(i * n // o, (i + 1) * n // o) for i in range(o)], "bins floor/floor",
                       "bin i ends at floor((i+1)*n/o) instead of ceil((i+1)*n/o)"),
        _adaptive_with(case, lambda n, o: [(i * (n // o), (i + 1) * (n // o)) for i in range(o)], "equal bins n // o",
                       "every bin n // o samples long, stepping by n // o (the remainder dropped)"),
        _adaptive_with(case, lambda n, o: [(min(n - 1, -(-i * n // o)), -(-(i + 1) * n // o)) for i in range(o)],
                       "bins ceil/ceil",
                       "bin i starts at ceil(i*n/o) instead of floor(i*n/o)"),
    ]


def lp_candidates(case: Case) -> list[Candidate]:
    """L_p pooling: signed powers (PyTorch's average-pooling route), the mean instead of the sum."""
    k = math.prod(case.kernel)

    def through(f: Callable[[np.ndarray], np.ndarray], post: Callable[[np.ndarray], np.ndarray]) -> Callable:
        def compute(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
            ones = np.ones((a["x"].shape[1], 1, *case.kernel))
            conv = replace(case, op="conv", cout=case.cin, groups=case.cin, bias=False, ceil_mode=False)
            pads = case.padding
            s = ops.general_expected(conv, {"x": f(np.asarray(a["x"], dtype=np.float64)), "w": ones}, pads,
                                     approximate=approximate)
            with np.errstate(invalid="ignore"):
                return post(s)
        return compute

    p = case.norm
    signed = through(lambda x: x ** p, lambda s: np.sign(s) * np.abs(s) ** (1.0 / p))
    mean = through(lambda x: np.abs(x) ** p, lambda s: (s / k) ** (1.0 / p))
    return [Candidate("signed powers", "x**p summed with its sign (the window sum of x**p, as PyTorch's lp_pool "
                      "computes it), not |x|**p", case, compute=signed),
            Candidate("mean instead of sum", "(mean of |x|**p) ** (1/p): the window sum divided by the window size",
                      case, compute=mean)]



# --------------------------------------------------------------------------- gradients and unpooling


def bias_grad_candidates(case: Case) -> list[Candidate]:
    """The bias gradient: the mean instead of the sum, one sample instead of the batch."""
    count = max(1, case.n * math.prod(case.forward_output_shape[2:]))
    total = lambda a: np.asarray(a["dy"], dtype=np.float64).sum(axis=(0, *range(2, a["dy"].ndim)))  # noqa: E731
    return [
        Candidate("mean instead of sum", "dy averaged over the batch and the positions instead of summed", case,
                  compute=lambda a, approximate: total(a) / count),
        Candidate("the first sample only", "the sum over the positions of sample 0, the rest of the batch left out",
                  case, compute=lambda a, approximate: total({"dy": np.asarray(a["dy"])[:1]})),
    ]


def transpose_grad_candidates(case: Case) -> list[Candidate]:
    """The transposed convolution's gradients: the kernel flipped, output_padding's extra outputs kept."""
    axes = tuple(range(2, 2 + case.dims))
    if case.op.endswith("input"):
        out = [Candidate("kernel flipped", "the spatial axes of w reversed (convolution instead of correlation)", case,
                         inputs=_flip_axes(axes))]
    else:
        out = [Candidate("kernel flipped", "the weight gradient with its spatial axes reversed", case,
                         output=lambda y: np.flip(y, axis=axes)),
               Candidate("weight layout swapped", "the gradient in the layout (C_out // groups, C_in, *K) read as "
                         "(C_in, C_out // groups, *K)", case,
                         output=lambda y: np.swapaxes(y, 0, 1).reshape(y.shape))]
    extra = [o // s for o, s in zip(case.output_padding, case.stride)]
    if case.op.endswith("input") and any(extra):
        from .. import oracle

        kw = {k: getattr(case, k) for k in ("stride", "padding", "dilation", "groups")}
        out.append(Candidate("output_padding's trailing outputs kept", "conv(dy, w) without cutting the "
                             "floor(output_padding / stride) outputs past the input's last sample", case,
                             compute=lambda a, approximate: oracle.conv(a["dy"], a["w"], **kw)))
    return out


def _scatter_planes(shape: tuple[int, ...], flat: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Zeros of ``shape`` with ``values`` added at the flat indices of each (n, c) plane (repeats add)."""
    nc, plane = shape[0] * shape[1], math.prod(shape[2:])
    out = np.zeros((nc, plane))
    rows = np.repeat(np.arange(nc), flat.size // max(1, nc))
    np.add.at(out, (rows, flat.reshape(-1)), np.asarray(values, dtype=np.float64).reshape(-1))
    return out.reshape(shape)


def max_grad_candidates(case: Case) -> list[Candidate]:
    """Max pooling's gradient: ties credited to the last maximum, or to every maximum of the window."""
    idx_case = replace(case, op="max_pool_indices")

    def last(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        return _scatter_planes(np.shape(a["x"]), _last_max_indices(idx_case, a["x"]), a["dy"])

    def every(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        first = np.asarray(ops.expected(idx_case, {"x": a["x"]})[1])
        later = _last_max_indices(idx_case, a["x"])
        # the first maximum's gradient, plus the last one's where it is another element
        dy = np.asarray(a["dy"], dtype=np.float64)
        return (_scatter_planes(np.shape(a["x"]), first, dy)
                + _scatter_planes(np.shape(a["x"]), later, np.where(later != first, dy, 0.0)))

    return [Candidate("the last maximum on ties", "dy credited to the last maximal element of its window, not the "
                      "first", case, compute=last),
            Candidate("every maximum on ties", "dy credited to the first and the last maximal element of its window",
                      case, compute=every)]


def avg_grad_candidates(case: Case) -> list[Candidate]:
    """Average pooling's gradient: the other count_include_pad, the full window as divisor."""
    c = [Candidate("count_include_pad inverted", f"the divisor as with count_include_pad={not case.count_include_pad}",
                   replace(case, count_include_pad=not case.count_include_pad))]
    if case.divisor_override is None:
        c.append(Candidate("full-window divisor", "every window divided by prod(kernel_size), also where it is cut "
                           "short", replace(case, divisor_override=math.prod(case.kernel))))
    return c


def unpool_candidates(case: Case) -> list[Candidate]:
    """Max unpooling: indices read over the whole tensor, or column-major within the plane."""
    shape = case.output_shape or (case.n, case.cin, *case.spatial)

    def whole(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        out = np.zeros(math.prod(shape))
        flat = np.asarray(a["indices"]).reshape(-1)
        ok = (flat >= 0) & (flat < out.size)
        out[flat[ok]] = np.asarray(a["y"], dtype=np.float64).reshape(-1)[ok]
        return out.reshape(shape)

    def column_major(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        sp = shape[2:]
        coords = np.unravel_index(np.asarray(a["indices"]).reshape(-1), sp)
        flat = np.ravel_multi_index(coords, sp, order="F").reshape(np.shape(a["indices"]))
        out = np.zeros((shape[0] * shape[1], math.prod(sp)))
        rows = np.repeat(np.arange(out.shape[0]), flat.size // max(1, out.shape[0]))
        out[rows, flat.reshape(-1)] = np.asarray(a["y"], dtype=np.float64).reshape(-1)
        return out.reshape(shape)

    return [Candidate("indices over the whole tensor", "an index counts across N and C (ONNX storage_order=0), "
                      "not within its (n, c) plane", case, compute=whole),
            Candidate("column-major indices", "an index read column-major within its plane", case,
                      compute=column_major)]
