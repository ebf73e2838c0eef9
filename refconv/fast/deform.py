r"""Deformable convolution, vectorized: the sampled columns of every tap at once, then one GEMM per group.

The definition of ``specs/deform.md`` (torchvision's ``deform_conv2d``, any number of
axes), computed in floating point the way torchvision's CPU kernel computes it:

1. the sample position of tap ``k`` at output ``p``: ``z = p*s - lo + k*d + delta`` per axis;
2. its multilinear interpolation as a convex combination of the ``2**D`` corners
   ``q = floor(z) + c``: weight ``prod_i (f_i if c_i else 1 - f_i)`` with ``f = z - floor(z)``,
   corners outside the input contributing nothing (the corners summed in row-major order);
3. the sample times its modulation (``mask``), laid out as columns ``(C_in * prod(K), prod(O))``;
4. ``y = w @ columns + b`` per group.

float32 inputs are computed in float32, anything else real in float64.  With offsets on a
dyadic grid (multiples of ``2**-j``) and small integer data every step is exact in float64,
so the result equals :func:`refconv.deform.deform_conv` bit for bit.

Examples
--------
>>> import numpy as np
>>> deform_conv(np.array([[[2.0, 4.0, 8.0]]]), np.full((1, 1, 3), 0.5), np.array([[[1.0]]])).tolist()
[[[3.0, 6.0, 4.0]]]
"""

from __future__ import annotations

import itertools
import math
from typing import Any, cast

import numpy as np

from ..params import ConvParamError, deform_params
from .dtypes import as_array
from .memory import Budget, get_memory_cap, nbytes

__all__ = ["deform_conv"]


def _real(name: str, a: Any) -> np.ndarray | None:
    if a is None:
        return None
    arr = as_array(name, a)
    if arr.dtype.kind not in "fiub":
        raise ConvParamError(f"{name}.dtype={arr.dtype}: the fast engine computes deformable convolution on real "
                             "numbers (use refconv.oracle for Fractions)")
    return arr


def _positions(p: Any, offset: np.ndarray, og: int, taps: int) -> list[np.ndarray]:
    """Per axis ``i``, the sample positions ``p*s - lo + k*d + delta``, shape ``(N, G_off, taps, *O)``."""
    d, out = p.ndim, p.output_spatial
    off = offset.reshape(offset.shape[0], og, taps, d, *out)  # channel (g * taps + t) * D + i
    grid = np.indices(out)  # (D, *O)
    ks = np.array(list(np.ndindex(*p.kernel_spatial)), dtype=np.int64).reshape(taps, d)  # row-major taps
    pos = []
    for i in range(d):
        base = (grid[i] * p.stride[i] - p.padding[i][0])[None] + (ks[:, i] * p.dilation[i]).reshape((taps,) + (1,) * d)
        pos.append(base[None, None].astype(offset.dtype) + off[:, :, :, i])  # one rounding of z (exact on a grid)
    return pos


def _columns(x: np.ndarray, pos: list[np.ndarray], og: int) -> np.ndarray:
    """The interpolated samples ``(N, G_off, taps, *O, C_in / G_off)``: corners in row-major order, zeros outside."""
    n, cin, sizes = x.shape[0], x.shape[1], x.shape[2:]
    xg = x.reshape(n, og, cin // og, *sizes)
    lows = [np.floor(z) for z in pos]
    fracs = [z - lo for z, lo in zip(pos, lows)]  # exact: z and floor(z) share their binade's grid
    lead = pos[0].ndim
    nidx = np.arange(n).reshape((n,) + (1,) * (lead - 1))
    gidx = np.arange(og).reshape((1, og) + (1,) * (lead - 2))
    total = np.zeros(pos[0].shape + (cin // og,), dtype=x.dtype)
    for corner in itertools.product((0, 1), repeat=len(sizes)):
        q = [lo.astype(np.int64) + c for lo, c in zip(lows, corner)]
        inside = np.ones(q[0].shape, dtype=bool)
        weight = np.ones(q[0].shape, dtype=x.dtype)
        for qi, si, f, c in zip(q, sizes, fracs, corner):
            inside &= (qi >= 0) & (qi < si)
            weight = weight * (f if c else 1 - f)  # the per-axis linear weight
        clipped = [np.clip(qi, 0, si - 1) for qi, si in zip(q, sizes)]
        # advanced indices around the channel slice: the channel axis comes last
        vals = xg[(nidx, gidx, slice(None), *clipped)]
        total += np.where(inside, weight, 0)[..., None] * vals
    return total


def deform_conv(x: Any, offset: Any, w: Any, b: Any = None, mask: Any = None, *, stride: Any = 1, padding: Any = 0,
                dilation: Any = 1, groups: int = 1, offset_groups: int = 1) -> np.ndarray:
    """:func:`refconv.deform.deform_conv` in floating point (same arguments, same validation).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *S)
    offset : array_like, shape (N, D * offset_groups * prod(K), *O)
    w : array_like, shape (C_out, C_in // groups, *K)
    b : array_like, shape (C_out,), optional
    mask : array_like, shape (N, offset_groups * prod(K), *O), optional
    stride, padding, dilation, groups, offset_groups : as in :func:`refconv.deform.deform_conv`

    Examples
    --------
    >>> x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    >>> off = np.zeros((1, 2, 3, 3)); off[0, 1] = 0.25         # every tap a quarter sample right
    >>> deform_conv(x, off, np.ones((1, 1, 1, 1)))[0, 0, 0].tolist()
    [1.25, 2.25, 2.25]
    """
    xa, oa, wa = (cast(np.ndarray, _real(k, v)) for k, v in (("x", x), ("offset", offset), ("w", w)))  # required
    ba, ma = _real("b", b), _real("mask", mask)
    dp = deform_params(xa.shape, oa.shape, wa.shape, None if ba is None else ba.shape,
                       None if ma is None else ma.shape, stride=stride, padding=padding, dilation=dilation,
                       groups=groups, offset_groups=offset_groups)
    p, og, taps = dp.conv, dp.offset_groups, dp.taps
    if not np.isfinite(oa.astype(np.float64)).all():
        raise ConvParamError("offset: deform_conv needs finite values (a NaN or inf offset samples nowhere)")
    present = [a for a in (xa, oa, wa, ba, ma) if a is not None]
    dt = np.dtype(np.float32) if all(a.dtype == np.float32 for a in present) else np.dtype(np.float64)
    n, cin, out = p.input_shape[0], p.input_shape[1], p.output_spatial
    m = math.prod(out)
    Budget(get_memory_cap()).hold(nbytes((n, cin, taps, m), dt) * 3 + nbytes(p.output_shape, dt),
                                  "the sampled columns of deform_conv")
    col = _columns(xa.astype(dt), _positions(p, oa.astype(dt), og, taps), og)  # (N, G_off, taps, *O, C_g)
    if ma is not None:
        col = col * ma.astype(dt).reshape(n, og, taps, *out)[..., None]  # the modulation of each tap
    # (N, G_off, taps, M, C_g) -> (N, C_in, taps, M): channel g * C_g + c
    col = np.moveaxis(col.reshape(n, og, taps, m, cin // og), 4, 2).reshape(n, cin, taps, m)
    cout, gin = wa.shape[0], cin // p.groups
    ogr = cout // p.groups
    wd: np.ndarray = wa.astype(dt).reshape(p.groups, ogr, gin * taps)
    cols = col.reshape(n, p.groups, gin * taps, m)
    y = np.einsum("gok,ngkm->ngom", wd, cols, optimize=True).reshape(n, cout, *out)  # sum over channels and taps
    if ba is not None:
        y = y + ba.astype(dt).reshape((1, cout) + (1,) * p.ndim)
    return y
