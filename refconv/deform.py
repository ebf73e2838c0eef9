r"""Exact deformable convolution: torchvision's ``deform_conv2d``, for any number of spatial axes.

The definition of ``specs/deform.md``.  Tap ``k`` of output position ``p``
reads the input at ``p*s - lo + k*d + delta`` with its own offset ``delta``
(``offset``), by multilinear interpolation of the input extended with zeros,
and is scaled by its modulation ``m`` (``mask``, default 1):

.. math::
    y[n, o, p] = b[o] + \sum_{c,\,k} w[o, c, k]\, m[n, g, k, p]\, \tilde x[n, c](p s - lo + k d + \delta[n, g, k, p]),
    \qquad \tilde x(z) = \sum_q x[q] \prod_i \max(0, 1 - |z_i - q_i|)

with ``g`` the offset group of input channel ``c``.  Offsets are rationals
(floats are the dyadic rationals they store), so the interpolation weights,
products of fractional parts, are exact; the result is correctly rounded once.
Re-exported by :mod:`refconv.oracle`.

Examples
--------
Half a sample to the right: the mean of neighbours, and zero past the end:

>>> x = np.array([[[2, 4, 8]]])
>>> deform_conv(x, np.full((1, 1, 3), 0.5), np.array([[[1]]])).tolist()
[[[3.0, 6.0, 4.0]]]
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import numpy as np

from . import exact as _exact
from .layouts import accepts_layouts  # layout= and weight_layout=
from .oracle import _accepts_unbatched, _asarray, _check_work, _combine, _Operands, _weight_rank
from .params import ConvParamError, deform_params

__all__ = ["deform_conv"]


def _numeric(name: str, a: np.ndarray | None) -> None:
    """Deformable convolution needs finite numbers: the floor of a sympy offset, or of inf, has no value."""
    if a is None:
        return
    if _exact.classify(a, name) == "symbolic":
        raise ConvParamError(f"{name}: deform_conv takes numbers (integers, floats, Fractions), not sympy expressions")
    vals = a.astype(np.float64) if a.dtype != object else np.array([float(v) for v in a.flat])
    if not np.isfinite(vals).all():
        raise ConvParamError(f"{name}: deform_conv needs finite values (a NaN or inf offset samples nowhere)")


def _sample(xg: np.ndarray, pos: list[np.ndarray], den: int) -> np.ndarray:
    """``den**D`` times the interpolated ``xg`` (N, Cg, *S) at positions ``pos[i] / den`` (each (N, *O)).

    Corner ``q = floor(z) + c`` (``c`` in {0, 1}^D) has weight ``prod_i (den - r_i if c_i == 0 else r_i)``
    with ``r = z*den - floor(z)*den``; corners outside the input hold zero.
    """
    n, cg, sizes = xg.shape[0], xg.shape[1], xg.shape[2:]
    lows = [z // den for z in pos]  # floor(z) per axis
    rems = [z - lo * den for z, lo in zip(pos, lows)]  # den * frac(z), in [0, den)
    nidx = np.arange(n).reshape((n, 1) + (1,) * len(sizes))
    cidx = np.arange(cg).reshape((1, cg) + (1,) * len(sizes))
    total = np.zeros((n, cg, *pos[0].shape[1:]), dtype=object)
    for corner in itertools.product((0, 1), repeat=len(sizes)):
        q = [lo + c for lo, c in zip(lows, corner)]
        inside = np.ones(q[0].shape, dtype=bool)
        for qi, si in zip(q, sizes):
            inside &= (qi >= 0) & (qi < si)
        weight = np.ones(q[0].shape, dtype=object)
        for r, c in zip(rems, corner):
            weight = weight * (r if c else den - r)  # the per-axis linear weight, times den
        clipped = [np.clip(qi, 0, si - 1).astype(np.int64)[:, None] for qi, si in zip(q, sizes)]
        vals = xg[(nidx, cidx, *clipped)]  # (N, Cg, *O)
        total = total + np.where(inside[:, None], vals * weight[:, None], 0)
    return total


@accepts_layouts(x="activation", offset="activation", w="weight", mask="activation")
@_accepts_unbatched(("x", "offset", "mask"), _weight_rank)
def deform_conv(
    x: Any, offset: Any, w: Any, b: Any = None, mask: Any = None, *, stride: Any = 1, padding: Any = 0,
    dilation: Any = 1, groups: int = 1, offset_groups: int = 1, exact: bool = False,
) -> np.ndarray:
    """Deformable convolution (v1, or v2 with ``mask``) with torchvision's ``deform_conv2d`` semantics.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *S)
    offset : array_like, shape (N, D * offset_groups * prod(K), *O)
        Channel ``(g * prod(K) + t) * D + i``: the axis-``i`` offset of tap ``t``
        (row-major over ``K``) in offset group ``g`` (torchvision: ``(dy, dx)`` pairs).
    w : array_like, shape (C_out, C_in // groups, *K)
    b : array_like, shape (C_out,), optional
    mask : array_like, shape (N, offset_groups * prod(K), *O), optional
        Modulation of each sampled tap (deformable convolution v2).
    stride, padding, dilation, groups : as in :func:`refconv.oracle.conv`
    offset_groups : int
        Input channel ``c`` uses offset group ``c // (C_in / offset_groups)``.
    exact : bool
        Return exact ``Fraction`` entries instead of correctly rounded floats.

    Examples
    --------
    >>> x = np.arange(1, 10).reshape(1, 1, 3, 3)
    >>> off = np.zeros((1, 2, 3, 3)); off[0, 1] = 0.25         # every tap a quarter sample right
    >>> deform_conv(x, off, np.ones((1, 1, 1, 1)), exact=True)[0, 0, 0].tolist()
    [Fraction(5, 4), Fraction(9, 4), Fraction(9, 4)]
    """
    xa, oa, wa = _asarray("x", x), _asarray("offset", offset), _asarray("w", w)
    ba = None if b is None else _asarray("b", b)
    ma = None if mask is None else _asarray("mask", mask)
    dp = deform_params(
        xa.shape, oa.shape, wa.shape, None if ba is None else ba.shape, None if ma is None else ma.shape,
        stride=stride, padding=padding, dilation=dilation, groups=groups, offset_groups=offset_groups,
    )
    p = dp.conv
    for name, a in (("x", xa), ("offset", oa), ("w", wa), ("b", ba), ("mask", ma)):
        _numeric(name, a)
    n, cin, d, out, taps = p.input_shape[0], p.input_shape[1], p.ndim, p.output_spatial, dp.taps
    m = int(np.prod(out, dtype=np.int64))
    # samples: N * C_in * taps * O, each 2**D corners; products: N * C_out * (C_in/G) * taps * O
    _check_work("deform_conv", n * cin * taps * m * (2**d + wa.shape[0] // p.groups),
                n * cin * taps * m + n * wa.shape[0] * m, taps * dp.offset_groups, "multiply-adds")
    ops = _Operands(x=xa, offset=oa, w=wa, b=ba, mask=ma)
    xi, oi, wi = (ops.ints[k].astype(object) for k in ("x", "offset", "w"))
    mi = ops.ints["mask"].astype(object) if ma is not None else np.ones((n, dp.offset_groups * taps, *out), dtype=object)
    so = ops.scale["offset"]
    den, num = so.denominator, so.numerator  # offset = oi * num / den
    cg = cin // dp.offset_groups
    grid = np.indices(out, dtype=np.int64)  # (D, *O): output position p
    col = np.empty((n, cin, taps, *out), dtype=object)  # den**D * mask * sampled input, per channel and tap
    for g in range(dp.offset_groups):
        for t, k in enumerate(np.ndindex(*p.kernel_spatial)):
            ch = (g * taps + t) * d
            # den * (p*s - lo + k*d) + den * delta, per axis: an exact integer position over den
            pos = [
                den * (grid[i] * p.stride[i] - p.padding[i][0] + k[i] * p.dilation[i])[None] + oi[:, ch + i] * num
                for i in range(d)
            ]
            s = _sample(xi[:, g * cg:(g + 1) * cg], pos, den)
            col[:, g * cg:(g + 1) * cg, t] = s * mi[:, g * taps + t][:, None]
    cout, gin = wa.shape[0], cin // p.groups
    og = cout // p.groups
    y = np.empty((n, cout, m), dtype=object)
    for gr in range(p.groups):
        wg = wi[gr * og:(gr + 1) * og].reshape(og, gin * taps)  # (O_g, C_g * taps)
        cg_col = col[:, gr * gin:(gr + 1) * gin].reshape(n, gin * taps, m)
        y[:, gr * og:(gr + 1) * og] = np.matmul(wg, cg_col)  # sum over channels and taps
    core = y.reshape(n, cout, *out)
    sm = ops.scale["mask"] if ma is not None else Fraction(1)
    parts = [(core, ops.scale["x"] * ops.scale["w"] * sm / Fraction(den) ** d)]
    if ba is not None:
        parts.append((np.broadcast_to(ops.ints["b"].astype(object).reshape((1, -1) + (1,) * d), core.shape), ops.scale["b"]))
    ints, scale = _combine(parts)
    return ops.finish(ints, scale, exact_out=exact)
