"""Max pooling with indices, L_p pooling and adaptive pooling, vectorized over the batch and channels.

The definitions of ``specs/pooling.md``, computed in the input's floating
format (integers: float64 for the means and norms, their own dtype for the
maxima):

* ``max_pool_indices``: the maximum of each window and the index of its
  **first** maximal input element in row-major window order, flat within its
  ``(n, c)`` plane; a NaN counts as maximal and the first NaN wins; padding
  never wins (a window of padding only gives ``-inf`` and index ``-1``);
* ``lp_pool``: ``(sum over the window of |x|**p) ** (1/p)`` with taps summed
  in row-major window order, padding contributing zeros;
* ``adaptive_avg_pool`` / ``adaptive_max_pool``: PyTorch's bins
  ``[floor(i*n/o), ceil((i+1)*n/o))``, reduced one axis at a time (last axis
  first), so the maximum's index is the first in row-major order of the bin.

Examples
--------
>>> import numpy as np
>>> y, i = max_pool_indices(np.array([[[1., 3., 3., 2.]]]), 2, stride=1)
>>> y.tolist(), i.tolist()
([[[3.0, 3.0, 3.0]]], [[[1, 1, 2]]])
>>> lp_pool(np.array([[[3., -4., 1.]]]), 2, 2, stride=1).tolist()
[[[5.0, 4.123105625617661]]]
>>> adaptive_avg_pool(np.array([[[1., 2., 3., 4., 6.]]]), 3).tolist()
[[[1.5, 3.0, 5.0]]]
>>> adaptive_max_pool(np.array([[[1., 5., 5., 2., 6.]]]), 3, return_indices=True)[1].tolist()
[[[1, 1, 4]]]
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..params import ConvParamError, adaptive_pool_params, lp_norm, pool_params
from .dtypes import as_array
from .memory import Budget, get_memory_cap, nbytes

__all__ = ["max_pool_indices", "lp_pool", "adaptive_avg_pool", "adaptive_max_pool"]


def _float(x: np.ndarray) -> np.ndarray:
    """float32 and float64 kept, integers (and narrower floats) as float64; complex refused."""
    if x.dtype.kind == "c":
        raise ConvParamError(f"x.dtype={x.dtype}: pooling is defined on real numbers")
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def _hold(op: str, shape: tuple[int, ...], dtype: Any, copies: int = 2) -> None:
    """The result and ``copies - 1`` arrays of its size, under the memory cap (MemoryCapError naming ``op``)."""
    Budget(get_memory_cap()).hold(copies * nbytes(shape, dtype), f"the result of {op}")


def _padded(x: np.ndarray, pp: Any, fill: Any) -> np.ndarray:
    """``x`` padded with ``fill`` by ``(lo, hi)`` per axis, and past ``hi`` as far as ceil-mode windows reach."""
    ext = []
    for n, k, s, d, (lo, hi), o in zip(x.shape[2:], pp.kernel_size, pp.stride, pp.dilation, pp.padding, pp.output_spatial):
        need = (o - 1) * s + d * (k - 1) + 1  # the padded extent the windows read
        ext.append((lo, max(hi, need - n - lo)))
    xp = np.full(x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], ext)), fill, dtype=x.dtype)
    xp[(slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in zip(ext, x.shape[2:]))] = x
    return xp


def _taps(pp: Any):
    """``(tap, slices)`` per window tap in row-major order: the padded positions ``p*s + k*d`` of every output."""
    for k in itertools.product(*(range(v) for v in pp.kernel_size)):
        sl = tuple(slice(ki * d, ki * d + (o - 1) * s + 1, s)
                   for ki, d, s, o in zip(k, pp.dilation, pp.stride, pp.output_spatial))
        yield k, (slice(None), slice(None)) + sl


def _tap_flat(pp: Any, k: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Tap ``k``'s input position flat in its plane, and whether it is inside the input (broadcast over outputs)."""
    flat = np.zeros((1,) * len(k), dtype=np.int64)
    inside = np.ones((1,) * len(k), dtype=bool)
    for i, (n, ki, s, d, (lo, _), o) in enumerate(zip(pp.input_shape[2:], k, pp.stride, pp.dilation, pp.padding,
                                                      pp.output_spatial)):
        shape = [1] * len(k)
        shape[i] = o
        coord = (np.arange(o) * s + ki * d - lo).reshape(shape)  # input coordinate p*s + k*d - lo on axis i
        inside = inside & (coord >= 0) & (coord < n)
        flat = flat * n + coord
    return flat, inside


def max_pool_indices(x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                     ceil_mode: Any = False) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling with the int64 index of each window's first maximum (see the module docstring)."""
    x = as_array("x", x)
    if x.dtype.kind not in "fiu":
        raise ConvParamError(f"x.dtype={x.dtype}: pooling is defined on real numbers")
    pp = pool_params(x.shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    _hold("max_pool_indices", pp.output_shape, np.float64, 4)
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    xp = _padded(x, pp, fill)
    best: Any = None  # the three are None until the first tap
    idx: Any = None
    have: Any = None
    for k, sl in _taps(pp):
        v = xp[sl]
        flat, ok = _tap_flat(pp, k)
        if best is None:
            best, idx, have = v.copy(), np.where(ok, flat, -1), np.broadcast_to(ok, v.shape).copy()
            continue
        larger = v > best
        if v.dtype.kind == "f":
            larger |= np.isnan(v) & ~np.isnan(best)  # a NaN is maximal; the first NaN stays
        better = ok & (~have | larger)
        best = np.where(better, v, best)
        idx = np.where(better, flat, idx)
        have |= ok
    if best is None or best.size == 0:
        return np.empty(pp.output_shape, dtype=x.dtype), np.empty(pp.output_shape, dtype=np.int64)
    if x.dtype.kind in "iu" and not have.all():
        raise ConvParamError(f"padding={pp.padding}: some windows hold only padding, whose maximum -inf integers "
                             "cannot represent (pass floats)")
    return best, np.broadcast_to(idx, pp.output_shape).astype(np.int64)


def _root(s: np.ndarray, p: int) -> np.ndarray:
    """``s ** (1/p)``: exact for p = 1, one correctly rounded square root per halving for p = 2 and 4."""
    if p == 1:
        return s
    if p == 2:
        return np.sqrt(s)
    if p == 4:
        return np.sqrt(np.sqrt(s))
    return s ** (1.0 / p)


def lp_pool(x: Any, p: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1,
            ceil_mode: Any = False) -> np.ndarray:
    """L_p pooling ``(sum |x|**p) ** (1/p)`` over each window, padding as zeros (ONNX ``LpPool``)."""
    q = lp_norm(p)
    x = _float(as_array("x", x))
    pp = pool_params(x.shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    _hold("lp_pool", pp.output_shape, x.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        xp = _padded(np.abs(x) ** q, pp, 0)
        total = np.zeros(pp.output_shape, dtype=x.dtype)
        for _, sl in _taps(pp):
            total += xp[sl]  # taps in row-major window order
        return _root(total, q)


def _bins(n: int, o: int) -> list[tuple[int, int]]:
    # output i pools [floor(i*n/o), ceil((i+1)*n/o))
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def adaptive_avg_pool(x: Any, output_size: Any) -> np.ndarray:
    """Adaptive average pooling: each bin's sum, axis by axis, divided by the bin's size."""
    x = _float(as_array("x", x))
    ap = adaptive_pool_params(x.shape, output_size)
    _hold("adaptive_avg_pool", ap.output_shape, x.dtype)
    y, count = x, np.ones((1,) * (x.ndim - 2))
    for a in range(x.ndim - 1, 1, -1):  # the last axis first
        bins = _bins(x.shape[a], ap.output_shape[a])
        y = np.stack([y.take(range(s, e), axis=a).sum(axis=a) for s, e in bins], axis=a)
        shape = [1] * (x.ndim - 2)
        shape[a - 2] = len(bins)
        count = count * np.array([e - s for s, e in bins], dtype=np.float64).reshape(shape)
    with np.errstate(invalid="ignore"):
        return (y / count.astype(y.dtype)).astype(x.dtype, copy=False)


def _first_max(block: np.ndarray) -> np.ndarray:
    """Index along the last axis of the first maximum (the first NaN when there is one)."""
    if block.dtype.kind != "f":
        return np.argmax(block, axis=-1)
    nan = np.isnan(block)
    return np.where(nan.any(axis=-1), np.argmax(nan, axis=-1), np.argmax(np.where(nan, -np.inf, block), axis=-1))


def adaptive_max_pool(x: Any, output_size: Any, *, return_indices: bool = False) -> Any:
    """Adaptive max pooling; with ``return_indices`` the first maximum's index flat within its ``(n, c)`` plane."""
    if not isinstance(return_indices, bool):
        raise ConvParamError(f"return_indices={return_indices!r}: must be True or False")
    x = as_array("x", x)
    if x.dtype.kind not in "fiu":
        raise ConvParamError(f"x.dtype={x.dtype}: pooling is defined on real numbers")
    ap = adaptive_pool_params(x.shape, output_size)
    _hold("adaptive_max_pool", ap.output_shape, np.float64, 2 + x.ndim)
    vals = x
    coords: dict[int, np.ndarray] = {}  # coords[a]: the input coordinate on axis a of the kept element
    for a in range(x.ndim - 1, 1, -1):  # the last axis first: ties go to the smallest row-major position
        parts_v: list[np.ndarray] = []
        parts_c: dict[int, list[np.ndarray]] = {b: [] for b in [*coords, a]}
        for s, e in _bins(x.shape[a], ap.output_shape[a]):
            blk = np.moveaxis(vals.take(range(s, e), axis=a), a, -1)
            arg = _first_max(blk)[..., None]
            parts_v.append(np.take_along_axis(blk, arg, axis=-1)[..., 0])
            for b, c in coords.items():
                parts_c[b].append(np.take_along_axis(np.moveaxis(c.take(range(s, e), axis=a), a, -1), arg, axis=-1)[..., 0])
            parts_c[a].append(arg[..., 0] + s)
        vals = np.stack(parts_v, axis=a)
        coords = {b: np.stack(v, axis=a) for b, v in parts_c.items()}
    if not return_indices:
        return vals
    flat = np.zeros(ap.output_shape, dtype=np.int64)
    for a in range(2, x.ndim):
        flat = flat * x.shape[a] + coords[a]  # row-major within the (n, c) plane
    return vals, flat
