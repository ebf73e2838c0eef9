"""Fractional max pooling and deformable convolution as checked operations of the registry.

``fractional_max_pool`` (``specs/pooling.md`` §7) returns ``(values, indices)``; its windows
are fixed by ``samples`` (an array ``(N, C, D)`` in ``[0, 1)``, a selector, not a magnitude),
filled from :attr:`Case.samples` (one value per axis, ``'top'`` for the largest value below 1
in the case's dtype; ``None``: multiples of ``1/256`` drawn per plane).  A maximum rounds
nothing: its bound is 0 (exact) wherever the profile rounds no input.

``deform_conv`` (``specs/deform.md``) takes ``x, offset, w, b, mask``; the offsets are filled
by :attr:`Case.offsets` (one of :data:`OFFSETS`, always on a dyadic grid, so every sample
position is exact in the computing format), the mask (:attr:`Case.mask`) with multiples of
``1/8`` in ``[0, 1]``, the offset groups by :attr:`Case.offset_groups` (``None``: drawn from the
seed among the divisors of ``C_in``, as is a ``None`` mask).  Its error bound is derived in
``specs/tolerance.md`` (deformable convolution): ``gamma_N S`` with
``N = C_in/groups * prod(K) + [bias] + 2D + 2**D`` and ``S`` the op on ``|x|, |w|, |b|, |mask|``
with the offsets as they are; elements that read a position that rounds are left unjudged.

This module holds both records, how their inputs are filled, their catalogues, their
diagnosis candidates and their bounds (called by :func:`refconv.conformance.bounds.case_bound`).

Examples
--------
>>> from refconv.conformance.cases import Case
>>> c = Case('fractional_max_pool', spatial=(10,), kernel=(2,), output_size=(4,), samples=(0.5,))
>>> a = c.arrays('float32'); a['samples'].tolist(), c.output_shape
([[[0.5]]], (1, 1, 4))
>>> d = Case('deform_conv', cin=2, cout=2, spatial=(5,), kernel=(3,), offsets='half', offset_groups=2, mask=True)
>>> {k: v.shape for k, v in d.arrays('float64').items()}
{'x': (1, 2, 5), 'w': (2, 2, 3), 'offset': (1, 6, 3), 'mask': (1, 6, 3)}
>>> sorted(set(np.abs(d.arrays('float64')['offset']).ravel().tolist()))
[0.5]
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from .. import params as P
from .. import shapes
from . import registry

__all__ = ["OFFSETS", "fractional_defaults", "describe_inputs", "fractional_inputs", "deform_inputs",
           "fractional_catalogue", "deform_catalogue", "fractional_candidates", "deform_candidates", "case_bound",
           "positions_round", "starts_in", "starts_differ"]

#: how a deform_conv case's offsets are filled
OFFSETS = ("grid", "zero", "integer", "half", "outside", "border")


# --------------------------------------------------------------------------- fractional max pooling: the case


def fractional_defaults(case: Any) -> None:
    """``Case.__post_init__`` of fractional pooling: no stride, padding or dilation; an ``output_size`` drawn
    from the seed (uniform in ``[1, n - k + 1]`` per axis) when none is given."""
    d = len(case.spatial)
    for name, v in (("stride", (1,) * d), ("dilation", (1,) * d), ("padding", ((0, 0),) * d)):
        object.__setattr__(case, name, v)
    if case.output_size is None:
        rng = np.random.default_rng([case.seed, 37])
        object.__setattr__(case, "output_size", tuple(int(rng.integers(1, n - k + 2)) if n >= k else 1
                                                      for n, k in zip(case.spatial, case.kernel)))


def describe_inputs(case: Any) -> str:
    """What :meth:`Case.describe` adds for these ops: the samples, or the offsets' fill."""
    if case.record.takes("samples"):
        return f" samples={case.samples}" if case.samples is not None else " samples=drawn"
    return f" offsets={case.offsets}" + ("" if _mask_on(case) else " (no mask)")


def _top(dt: np.dtype) -> float:
    """The largest value below 1 in ``dt``: ``1 - 2**-p``."""
    from .cases import _format

    return 1.0 - 2.0 ** -_format(np.dtype(dt))[0]


def _samples(case: Any, dt: Any) -> np.ndarray:
    """The ``(N, C, D)`` samples of ``case`` in dtype ``dt`` (exact there)."""
    shape = (case.n, case.cin, case.dims)
    if case.samples is None:
        rng = np.random.default_rng([case.seed, 31])
        return (rng.integers(0, 256, size=shape) / 256.0).astype(dt)  # 8 bits: exact in bfloat16
    row = [_top(dt) if v == "top" else float(v) for v in case.samples]
    return np.broadcast_to(np.array(row), shape).astype(dt)


def fractional_inputs(case: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs with the samples of ``case`` (``OpRecord.fill``)."""
    return {**arrays, "samples": _samples(case, arrays["x"].dtype)}


def _fractional_normalize(c: Any) -> Any:
    return P.fractional_pool_params((c.n, c.cin, *c.spatial), c.kernel, c.output_size, np.zeros((c.n, c.cin, c.dims)))


# --------------------------------------------------------------------------- deformable convolution: the case


def _seeded(case: Any, tag: int) -> np.random.Generator:
    return np.random.default_rng([case.seed, tag])


def offset_groups(case: Any) -> int:
    """The case's offset groups: its own, or one drawn from the seed among the divisors of ``C_in``."""
    if case.offset_groups is not None:
        return case.offset_groups
    divisors = [g for g in range(1, max(1, case.cin) + 1) if case.cin % g == 0] or [1]
    return divisors[int(_seeded(case, 41).integers(len(divisors)))]


def _mask_on(case: Any) -> bool:
    return bool(case.mask) if case.mask is not None else bool(_seeded(case, 43).integers(2))


def _out_spatial(c: Any) -> tuple[int, ...]:
    """The output size per axis (at least 1 for a configuration the definition rejects)."""
    return tuple(max(1, shapes.conv_output_size(n, k, s, p, d))
                 for n, k, s, p, d in zip(c.spatial, c.kernel, c.stride, c.padding, c.dilation))


def _deform_arrays(c: Any) -> dict[str, tuple[int, ...]]:
    """x, w (the two factors first: the diagnosis reads magnitudes from them), offset, b, mask."""
    taps, og, out = math.prod(c.kernel), offset_groups(c), _out_spatial(c)
    a = {"x": (c.n, c.cin, *c.spatial), "w": c.weight_shape, "offset": (c.n, c.dims * og * taps, *out)}
    if c.bias:
        a["b"] = (c.cout,)
    if _mask_on(c):
        a["mask"] = (c.n, og * taps, *out)
    return a


def _deform_normalize(c: Any) -> Any:
    a = _deform_arrays(c)
    return P.deform_params(a["x"], a["offset"], a["w"], a.get("b"), a.get("mask"), stride=c.stride,
                           padding=c.padding, dilation=c.dilation, groups=c.groups, offset_groups=offset_groups(c)).conv


def _deform_terms(c: Any) -> int:
    # the roundings on one term's path: the outer sum, the corner weights (2D - 1), the product with x, the
    # corner sum (2**D - 1), the mask and the weight (specs/tolerance.md, deformable convolution)
    return (c.cin // c.groups) * math.prod(c.kernel) + int(c.bias) + 2 * c.dims + 2**c.dims


def _base(case: Any) -> np.ndarray:
    """The undeformed positions ``p*s - lo + k*d``: shape ``(D, taps, *O)`` (taps row-major)."""
    out = _out_spatial(case)
    grid = np.indices(out)
    ks = np.array(list(np.ndindex(*case.kernel)), dtype=np.int64).reshape(-1, case.dims)
    lead = (ks.shape[0],) + (1,) * case.dims
    return np.stack([(grid[i] * case.stride[i] - case.padding[i][0])[None] + (ks[:, i] * case.dilation[i]).reshape(lead)
                     for i in range(case.dims)])


def _offset_values(case: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The offsets of ``case`` (float64, on a dyadic grid) in the layout ``(N, og * taps * D, *O)``."""
    rng = _seeded(case, 47)
    kind = case.offsets
    if kind == "zero":
        return np.zeros(shape)
    if kind == "integer":
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    if kind == "half":
        return rng.choice(np.array([-0.5, 0.5]), size=shape)
    n, og, taps, d = shape[0], offset_groups(case), math.prod(case.kernel), case.dims
    if kind in ("outside", "border"):
        base = _base(case)  # (D, taps, *O)
        out = np.empty((n, og, taps, d) + shape[2:])
        for i, size in enumerate(case.spatial):
            # outside: beyond the input by two samples; border: half a sample past the first or last sample
            far = (-2.0 - size, size + 1.0) if kind == "outside" else (-0.5, size - 0.5)
            side = rng.integers(0, 2, size=(n, og, taps) + shape[2:])
            out[:, :, :, i] = np.where(side == 1, far[1], far[0]) - base[i][None, None]
        return out.reshape(shape)
    if kind != "grid":
        raise P.ConvParamError(f"offsets={kind!r}: offset fills are " + ", ".join(repr(o) for o in OFFSETS))
    return rng.integers(-20, 21, size=shape) / 8.0  # multiples of 1/8 in [-2.5, 2.5]


def deform_inputs(case: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs with the offsets and the mask of ``case`` (``OpRecord.fill``); exact in every dtype."""
    dt = arrays["x"].dtype
    out = {**arrays, "offset": _offset_values(case, arrays["offset"].shape).astype(dt)}
    if "mask" in arrays:
        out["mask"] = (_seeded(case, 53).integers(0, 9, size=arrays["mask"].shape) / 8.0).astype(dt)
    return out


# --------------------------------------------------------------------------- the records

registry.register(registry.OpRecord(
    "fractional_max_pool", "fn(x, kernel_size, output_size, samples, *, return_indices)",
    family="pool", oracle=".oracle:fractional_max_pool", fast=".fast:fractional_max_pool", bound="max",
    catalogue=".conformance.extra_ops:fractional_catalogue", candidates=".conformance.extra_ops:fractional_candidates",
    arrays=lambda c: {"x": (c.n, c.cin, *c.spatial), "samples": (c.n, c.cin, c.dims)},
    positional=lambda c, a: [a["x"], c.kernel, c.output_size, a["samples"]],
    keywords=lambda c: {"return_indices": True}, normalize=_fractional_normalize,
    output=lambda c: tuple(_fractional_normalize(c).output_shape), terms=lambda c: math.prod(c.kernel),
    cancel=lambda c: None, adapters=("torch", "refconv.fast", "refconv.oracle"), outputs=("y", "indices"),
    has_dilation=False, selectors=("samples",), fill=".conformance.extra_ops:fractional_inputs",
    values=("subnormal_products", "cancel"),
    doc="(values, int64 indices flat within each (n, c) plane); windows from the samples, PyTorch's rule in exact "
        "arithmetic; judged exactly"))
registry.register(registry.OpRecord(
    "deform_conv", "fn(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups)",
    family="deform", oracle=".oracle:deform_conv", fast=".fast:deform_conv",
    catalogue=".conformance.extra_ops:deform_catalogue", candidates=".conformance.extra_ops:deform_candidates",
    arrays=_deform_arrays, positional=lambda c, a: [a["x"], a["offset"], a["w"], a.get("b"), a.get("mask")],
    keywords=lambda c: {"stride": c.stride, "padding": c.padding, "dilation": c.dilation, "groups": c.groups,
                        "offset_groups": offset_groups(c)},
    normalize=_deform_normalize, output=lambda c: tuple(c.validate().output_shape), terms=_deform_terms,
    cancel=lambda c: None, adapters=("torch", "onnxruntime", "refconv.fast", "refconv.oracle"), has_bias=True,
    has_groups=True, selectors=("offset",), fill=".conformance.extra_ops:deform_inputs", values=("cancel",),
    doc="torchvision's deform_conv2d, any D: bilinear samples (zeros outside) times the mask; offsets on a dyadic grid"))


# --------------------------------------------------------------------------- catalogues


def fractional_catalogue(op: str, dims: int) -> Any:
    """Output size 1 and ``n - k + 1``, samples 0 and just below 1, kernel 1, ties, a start on an exact integer."""
    from .cases import Case, Parts

    S = lambda *v: v[:dims]  # noqa: E731 - per-axis values
    c = [
        Case(op, 1, 1, 1, S(10, 9, 7), S(2, 2, 2), output_size=S(4, 4, 3), samples=S(0.5, 0.25, 0.75), label="plain"),
        Case(op, 2, 3, 3, S(11, 9, 8), S(3, 2, 2), output_size=S(4, 5, 3), seed=1,
             label="batch and channels: a sample per plane and axis"),
        Case(op, 1, 2, 2, S(9, 8, 7), S(3, 2, 2), output_size=S(1, 1, 1), samples=S(0.5, 0.5, 0.5), seed=2,
             label="output size 1: the one window at n - k"),
        Case(op, 1, 2, 2, S(9, 8, 7), S(3, 2, 2), output_size=S(7, 7, 6), samples=S(0.0, "top", 0.5), seed=3,
             label="output size n - k + 1: every window position (alpha = 1)"),
        Case(op, 1, 2, 2, S(12, 10, 9), S(2, 3, 2), output_size=S(5, 4, 4), samples=S(0.0, 0.0, 0.0), seed=4,
             label="samples 0"),
        Case(op, 1, 2, 2, S(12, 10, 9), S(2, 3, 2), output_size=S(5, 4, 4), samples=S("top", "top", "top"), seed=5,
             label="samples just below 1"),
        Case(op, 1, 2, 2, S(9, 8, 7), S(1, 1, 1), output_size=S(5, 4, 4), seed=6, label="kernel 1: single samples"),
        Case(op, 1, 2, 2, S(10, 9, 8), S(3, 2, 2), output_size=S(4, 4, 3), values="unit", seed=7,
             label="ties: the first maximum in window order"),
        Case(op, 1, 2, 2, S(10, 9, 8), S(2, 2, 2), output_size=S(5, 4, 4), values="negative", seed=8,
             label="negative values"),
        # alpha = 26/11, u = 1/2: (5 + 1/2) * alpha = 13 exactly (start 12); float32 gives 12.99999... (start 11)
        Case(op, 1, 2, 2, S(27, 6, 5), S(1, 2, 2), output_size=S(12, 3, 2), samples=S(0.5, 0.5, 0.5), seed=9,
             label="a window start on an exact integer: (5 + 1/2) * 26/11 = 13"),
    ]
    every = Case(op, 2, 3, 3, S(11, 10, 9), S(3, 2, 2), output_size=S(4, 5, 4))
    degenerate = [
        Case(op, 1, 2, 2, S(2, 3, 2), S(2, 3, 2), output_size=S(1, 1, 1), seed=60, label="window as large as the input"),
        Case(op, 0, 2, 2, S(6, 5, 4), S(2, 2, 2), output_size=S(3, 2, 2), seed=61, label="empty batch"),
    ]
    invalid = [
        Case(op, 1, 1, 1, S(5, 5, 5), S(2, 2, 2), output_size=S(5, 2, 2), seed=90, expect_refusal=True,
             label="output_size + kernel_size - 1 beyond the input"),
        Case(op, 1, 1, 1, S(5, 5, 5), S(2, 2, 2), output_size=S(0, 2, 2), seed=91, expect_refusal=True,
             label="output size 0"),
    ]
    return Parts(c, every, degenerate, invalid)


def deform_catalogue(op: str, dims: int) -> Any:
    """Zero, integer, half-way, outside and border offsets, the mask, offset groups, groups, the conv geometry."""
    from .cases import Case, Parts, _conv_degenerate, _conv_invalid

    S = lambda *v: v[:dims]  # noqa: E731 - per-axis values
    one: dict[str, Any] = dict(offset_groups=1, mask=False)
    c = [
        Case(op, 1, 1, 1, S(5, 4, 3), S(3, 2, 2), offsets="zero", label="zero offsets: the plain convolution", **one),
        Case(op, 2, 3, 2, S(6, 5, 4), S(3, 3, 2), bias=True, offsets="integer", seed=1,
             label="integer offsets: taps shifted by whole samples", **one),
        Case(op, 1, 2, 2, S(6, 5, 4), S(3, 2, 2), offsets="half", seed=2,
             label="half-way offsets: the mean of two neighbours per axis", **one),
        Case(op, 1, 2, 3, S(6, 5, 4), S(3, 2, 2), bias=True, offsets="outside", seed=3,
             label="offsets moving every tap outside: zeros (the bias alone)", **one),
        Case(op, 1, 2, 2, S(6, 5, 4), S(2, 2, 2), offsets="border", seed=4,
             label="taps half a sample past the border: half the border sample, not all of it", **one),
        Case(op, 1, 2, 2, S(6, 5, 4), S(3, 2, 2), offset_groups=1, mask=True, seed=5, label="modulation mask"),
        Case(op, 2, 4, 4, S(7, 6, 5), S(3, 2, 2), offset_groups=2, mask=True, seed=6, label="two offset groups"),
        Case(op, 1, 4, 6, S(7, 6, 5), S(3, 2, 2), groups=2, bias=True, seed=7, label="groups", **one),
        Case(op, 1, 4, 4, S(7, 6, 5), S(3, 2, 2), groups=2, offset_groups=4, mask=True, seed=8,
             label="groups and offset groups crossing"),
        Case(op, 1, 2, 2, S(9, 8, 7), S(3, 2, 2), stride=S(2, 3, 2), dilation=S(2, 1, 2),
             padding=S((1, 2), (0, 1), (2, 1)), offset_groups=2, mask=True, seed=9,
             label="stride, dilation, asymmetric padding"),
        Case(op, 1, 2, 2, S(7, 6, 5), S(3, 3, 2), padding=S((1, 1), (1, 1), (1, 1)), seed=10,
             label="symmetric padding", **one),
        Case(op, 1, 3, 2, S(6, 5, 4), S(1, 1, 1), offset_groups=1, mask=True, seed=11, label="a 1 x 1 kernel"),
        Case(op, 1, 2, 2, S(6, 5, 4), S(3, 2, 2), values="small", offsets="half", offset_groups=2, mask=True, seed=12,
             label="small integers, half-way offsets: exact in every order"),
    ]
    every = Case(op, 2, 4, 4, S(9, 7, 5), S(3, 2, 2), stride=S(2, 3, 1), padding=S((1, 2), (0, 1), (1, 0)),
                 dilation=S(2, 1, 2), groups=2, bias=True, offset_groups=2, mask=True)
    invalid = _conv_invalid(op, dims) + [
        Case(op, 1, 3, 3, S(5, 4, 3), S(3, 2, 2), offset_groups=2, seed=93, expect_refusal=True,
             label="offset groups not dividing the input channels")]
    return Parts(c, every, _conv_degenerate(op, dims), invalid)


# --------------------------------------------------------------------------- fractional pooling: other conventions


def _typed_starts(dtype: str) -> Callable[[int, int, int, float], list[int]]:
    """PyTorch's kernel in ``dtype``: ``int((j + u) * alpha) - int(u * alpha)``, every operation rounded to ``dtype``."""
    def rule(n: int, k: int, o: int, u: float) -> list[int]:
        from .cases import dtype_of

        f = dtype_of(dtype).type
        if o == 1:
            return [n - k]
        alpha = f(f(n - k) / f(o - 1))
        return [int(float(f(f(f(j) + f(u)) * alpha))) - int(float(f(f(u) * alpha))) for j in range(o - 1)] + [n - k]

    return rule


def _ratio_starts(n: int, k: int, o: int, u: float, alpha: Fraction, rnd: Callable = math.floor) -> list[int]:
    """Starts ``rnd((j + u) alpha) - rnd(u alpha)`` clipped to ``[0, n - k]``, the last at ``n - k``."""
    uf = Fraction(u)
    return [min(n - k, max(0, rnd((j + uf) * alpha) - rnd(uf * alpha))) for j in range(o - 1)] + [n - k]


#: start rules a target may use instead of the definition's: name -> (explanation, rule(n, k, o, u))
_RULES: dict[str, tuple[str, Callable[[int, int, int, float], list[int]]]] = {
    **{f"starts in {t} arithmetic": (
        f"alpha = (n - k)/(o - 1), j + u and the products rounded to {t} (PyTorch's kernel for {t} inputs), not exact",
        _typed_starts(t)) for t in ("float32", "float64", "bfloat16")},
    "alpha = n / o": ("the pseudo-random sequence with alpha = n/o (the ratio of the sizes) instead of (n - k)/(o - 1)",
                      lambda n, k, o, u: _ratio_starts(n, k, o, u, Fraction(n, o))),
    "ceil instead of floor": ("starts ceil((j + u) alpha) - ceil(u alpha) instead of the floors",
                              lambda n, k, o, u: _ratio_starts(n, k, o, u, Fraction(n - k, max(1, o - 1)), math.ceil)),
    "last window ending at n - k": (
        "the last window ends at n - k (starts at n - 2k) instead of starting there",
        lambda n, k, o, u: shapes.fractional_starts(n, k, o, u)[:-1] + [max(0, n - 2 * k)]),
}


def starts_in(case: Any, samples: np.ndarray, rule: Callable | None = None) -> list[np.ndarray]:
    """Per axis, the window starts ``(N*C, o_i)`` of ``case`` under ``rule`` (default: the definition's)."""
    rule = rule or shapes.fractional_starts
    u = np.asarray(samples, dtype=np.float64).reshape(-1, case.dims)
    return [np.array([rule(n, k, o, float(v)) for v in u[:, i]], dtype=np.int64).reshape(-1, o)
            for i, (n, k, o) in enumerate(zip(case.spatial, case.kernel, case.output_size))]


def _pooled(case: Any, x: np.ndarray, starts: list[np.ndarray], last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Window maxima and their plane indices for the given starts (``last``: the last maximum on ties)."""
    from ..fast.fractional import _windows

    from types import SimpleNamespace

    nc = case.n * case.cin
    # the fields fast.fractional._windows reads
    coords = _windows(SimpleNamespace(kernel_size=case.kernel, output_spatial=case.output_size, starts=starts), nc)
    plane = np.arange(nc).reshape((nc,) + (1,) * (case.dims + 1))
    vals = np.asarray(x, dtype=np.float64).reshape(nc, *case.spatial)[(plane, *coords)]
    flat = np.zeros((), np.int64)
    for c, n in zip(coords, case.spatial):
        flat = flat * n + c
    flat = np.broadcast_to(flat, vals.shape)
    if last:
        vals, flat = vals[..., ::-1], flat[..., ::-1]
    best = np.argmax(vals, axis=-1)[..., None] if vals.size else np.zeros(vals.shape[:-1] + (1,), np.int64)
    shape = (case.n, case.cin, *case.output_size)
    pick = (lambda a: np.take_along_axis(a, best, axis=-1)[..., 0].reshape(shape)) if vals.size else (
        lambda a: np.zeros(shape, a.dtype))
    return pick(vals), pick(flat)


def fractional_candidates(case: Any) -> list:
    """Other start rules (values and indices), samples in reverse axis order, indices over the tensor, last ties."""
    from ..pooling import onnx_indices
    from .diagnose import Candidate

    def starts_of(a: dict[str, np.ndarray], rule: Callable | None, reverse: bool = False) -> list[np.ndarray]:
        u = np.asarray(a["samples"], dtype=np.float64)
        return starts_in(case, u[..., ::-1] if reverse else u, rule)

    out = []
    variants: list[tuple[str, str, Callable | None, bool]] = [(name, why, rule, False)
                                                              for name, (why, rule) in _RULES.items()]
    if case.dims > 1:
        variants.append(("samples in reverse axis order", "samples[n, c, ::-1]: the axes last first (PyTorch's "
                         "2-D order (u_W, u_H)) read in axis order, or the other way round", None, True))
    def pooled(rule: Callable | None, reverse: bool, which: int, last: bool = False) -> Callable[..., np.ndarray]:
        # the values (which=0) or the indices (1) under a start rule, samples reversed or not
        def compute(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
            return _pooled(case, a["x"], starts_of(a, rule, reverse), last)[which]

        return compute

    for name, why, rule, rev in variants:
        for i, what in ((0, ""), (1, " (indices)")):
            out.append(Candidate(name + what, why, case, indices=bool(i), compute=pooled(rule, rev, i)))
    shape = (case.n, case.cin, *case.spatial)
    exact = pooled(None, False, 1)  # the definition's indices

    def whole(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
        return onnx_indices(exact(a), shape, 0)

    out.append(Candidate("indices counted over the whole tensor", "indices count across N and C instead of within "
                         "each (n, c) plane", case, indices=True, compute=whole))
    out.append(Candidate("the last maximum on ties", "ties take the last maximum in window order, not the first", case,
                         indices=True, compute=pooled(None, False, 1, True)))
    return out


def starts_differ(case: Any, dtype: str) -> bool:
    """True when PyTorch's interval arithmetic in ``dtype`` moves some window start of ``case`` (its samples in ``dtype``)."""
    if getattr(case, "op", None) != "fractional_max_pool" or not case.is_valid():
        return False
    from .cases import dtype_of

    u = _samples(case, dtype_of(dtype))
    return any(not np.array_equal(a, b) for a, b in zip(starts_in(case, u), starts_in(case, u, _typed_starts(dtype))))


# --------------------------------------------------------------------------- deformable convolution: other conventions


def _case_offsets(case: Any) -> np.ndarray:
    """The case's offsets in float64 (on a dyadic grid: the target's own values in any dtype)."""
    return _offset_values(case, _deform_arrays(case)["offset"])


def _moved(case: Any, how: str) -> np.ndarray:
    """The case's offsets under another reading: positions rounded, clamped, axes swapped, a planar layout."""
    off = _case_offsets(case)
    n, og, taps, d, out = case.n, offset_groups(case), math.prod(case.kernel), case.dims, _out_spatial(case)
    per = off.reshape(n, og, taps, d, *out)
    if how == "swapped":
        return per[:, :, :, ::-1].reshape(off.shape)
    if how == "planar":
        # channel (g * D + i) * taps + t read as the axis-i offset of tap t
        return np.moveaxis(off.reshape(n, og, d, taps, *out), 2, 3).reshape(off.shape)
    base = _base(case)
    moved = np.empty_like(per)
    for i, size in enumerate(case.spatial):
        z = base[i][None, None] + per[:, :, :, i]
        z = np.floor(z + 0.5) if how == "nearest" else np.clip(z, 0, size - 1)
        moved[:, :, :, i] = z - base[i][None, None]
    return moved.reshape(off.shape)


def _deform_with(case: Any, a: dict[str, np.ndarray], approximate: bool, offset: np.ndarray,
                 mask: bool = True) -> np.ndarray:
    from .. import fast, oracle

    fn = fast.deform_conv if approximate else oracle.deform_conv
    kw = {k: v for k, v in case.kwargs().items()}
    x, w, b = (None if a.get(k) is None else np.asarray(a[k], dtype=np.float64) for k in ("x", "w", "b"))
    m = np.asarray(a["mask"], dtype=np.float64) if mask and a.get("mask") is not None else None
    return fn(x, offset, w, b, m, **kw)


def deform_candidates(case: Any) -> list:
    """Offsets swapped, negated, in a planar layout; the mask ignored; nearest sampling; the border clamped."""
    from .diagnose import Candidate

    def cand(name: str, why: str, offset: Callable[[], np.ndarray], mask: bool = True) -> Candidate:
        def compute(a: dict[str, np.ndarray], approximate: bool = False) -> np.ndarray:
            return _deform_with(case, a, approximate, offset(), mask)

        return Candidate(name, why, case, compute=compute)

    out = [cand("offsets negated", "each tap read at its position minus the offset", lambda: -_case_offsets(case)),
           cand("nearest instead of bilinear", "each tap reads the nearest input sample (positions rounded half up) "
                "instead of interpolating", lambda: _moved(case, "nearest")),
           cand("clamp to the border", "a position outside the input is clamped onto its border (replicate) instead "
                "of reading zeros", lambda: _moved(case, "clamp"))]
    if case.dims > 1:
        out.append(cand("offsets (y, x) swapped", "the offset pairs read in reverse axis order ((dx, dy) for 2-D)",
                        lambda: _moved(case, "swapped")))
        out.append(cand("offset layout planar", "offset channel (g * D + i) * taps + t read as the axis-i offset of tap "
                        "t (all axis-0 offsets first) instead of torchvision's interleaved (g * taps + t) * D + i",
                        lambda: _moved(case, "planar")))
    if _mask_on(case):
        out.append(cand("mask ignored", "the modulation mask not applied (deformable convolution v1)",
                        lambda: _case_offsets(case), mask=False))
    return out


# --------------------------------------------------------------------------- bounds


def positions_round(case: Any, arrays: dict[str, np.ndarray], prof: Any) -> np.ndarray:
    """Per output element, whether some tap's position ``p*s - lo + k*d + delta`` (or an offset, under a profile
    that rounds inputs) is not exact in the profile's formats: no bound is derived there."""
    from ..tolerance import round_significand

    n, og, taps, d, out = case.n, offset_groups(case), math.prod(case.kernel), case.dims, _out_spatial(case)
    off = np.asarray(arrays["offset"], dtype=np.float64).reshape(n, og, taps, d, *out)
    base = _base(case)
    bad = np.zeros((n, *out), dtype=bool)
    p_acc = round(-math.log2(prof.u_acc))
    for i in range(d):
        z = base[i][None, None] + off[:, :, :, i]
        bad |= (round_significand(z, p_acc) != z).any(axis=(1, 2))
    if prof.u_in:
        flat = off.reshape(n, og * taps * d, *out)
        bad |= (round_significand(flat, round(-math.log2(prof.u_in))) != flat).any(axis=1)
    return np.broadcast_to(bad[:, None], (n, case.cout, *out))


def _fractional_bound(exp: np.ndarray, prof: Any, dtype: str) -> np.ndarray:
    """0 where the profile rounds no input and the output format holds the dtype; else the max_pool bound."""
    from .bounds import FORMATS, elementwise_bound, input_underflow_bound

    y = np.abs(np.where(np.isfinite(exp), exp, 0.0))
    if prof.u_in == 0 and prof.eta_in == 0 and dtype in FORMATS and prof.u_out <= 2.0 ** -FORMATS[dtype].p:
        return np.zeros(np.shape(exp))  # a selection of input values: exact
    b = elementwise_bound(y, y, 0, prof, input_factors=1)
    return b + input_underflow_bound(np.ones(np.shape(exp)), 0, prof, input_factors=1) + y * 2.0**-52


def case_bound(case: Any, arrays: dict[str, np.ndarray], exp: np.ndarray, prof: Any, *, dtype: str) -> np.ndarray:
    """The judge's bound of a fractional_max_pool or deform_conv case (specs/tolerance.md)."""
    from .. import tolerance as _tol
    from . import ops
    from .bounds import _factor_sums, input_underflow_bound

    if case.op == "fractional_max_pool":
        return _fractional_bound(np.asarray(exp, dtype=np.float64), prof, dtype)
    S = ops.magnitude(case, arrays)
    n = case.terms()
    Sf = np.where(np.isfinite(S), S, 0.0)
    grow = (1.0 + prof.u_in) ** 3  # x, w and the mask: three rounded inputs per term
    b = _tol._assemble(exp, (grow - 1.0) * Sf, _tol._direct_error(Sf, n, prof, grow), n, prof)
    if prof.eta_in:
        b = b + input_underflow_bound(_factor_sums(case, arrays) * (1 + 2.0**-50), n, prof, input_factors=3)
    b = np.where(positions_round(case, arrays, prof), np.inf, b)
    return b + np.abs(exp) * 2.0**-52
