"""Exact pooling: max (with indices), average, L_p, adaptive, global; max unpooling; their gradients.

The definitions of ``specs/pooling.md``.  Every operation pools channel by
channel over windows of the general operation (``p*s + k*d - lo`` per axis),
or over adaptive bins; the maximum compares and never rounds, the mean and
the L_p norm are exact rationals correctly rounded once.  All functions are
re-exported by :mod:`refconv.oracle`.

Examples
--------
>>> y, i = max_pool(np.array([[[1, 3, 2, 5, 4]]]), 2, return_indices=True)
>>> y.tolist(), i.tolist()
([[[3, 5]]], [[[1, 3]]])
>>> max_unpool(y, i, 2, output_size=5).tolist()
[[[0, 3, 0, 5, 0]]]
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from . import exact as _exact
from .layouts import accepts_layouts  # layout= on every operation
from .oracle import _accepts_unbatched, _asarray, _check_work, _Operands, _per_axis_rank, _prod, _window
from .params import (
    ConvParamError,
    adaptive_pool_params,
    check_gradient_shape,
    fractional_pool_params,
    lp_norm,
    pool_params,
    unpool_params,
)

__all__ = [
    "max_pool",
    "avg_pool",
    "lp_pool",
    "max_pool_grad",
    "avg_pool_grad",
    "max_unpool",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "global_avg_pool",
    "global_max_pool",
    "fractional_max_pool",
]


# --------------------------------------------------------------------------- windows


def _pool_windows(x: np.ndarray, pp: Any, fill: Any) -> tuple[np.ndarray, Any]:
    """Padded input (``fill`` in the padding and past it for ceil_mode) and each tap's window."""
    out = pp.output_spatial
    need = tuple((o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out, pp.stride, pp.dilation, pp.kernel_size))
    sizes = tuple(max(n + lo + hi, nd) for n, (lo, hi), nd in zip(x.shape[2:], pp.padding, need))
    xp = np.full(x.shape[:2] + sizes, fill, dtype=x.dtype if x.dtype != object else object)
    xp[(slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in zip(pp.padding, x.shape[2:]))] = x
    wins = ((k, _window(k, pp.stride, pp.dilation, out)) for k in np.ndindex(*pp.kernel_size))  # one pass, lazily
    return xp, wins


def _pool_work(op: str, pp: Any, passes: int, padded_arrays: int) -> None:
    """Pooling's work: ``passes`` sweeps of ``N*C*prod(k)*prod(O)`` window terms (``passes * prod(k)`` tap steps),
    and ``padded_arrays`` padded inputs."""
    out = pp.output_spatial
    need = ((o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out, pp.stride, pp.dilation, pp.kernel_size))
    padded = _prod(max(n + lo + hi, nd) for n, (lo, hi), nd in zip(pp.input_shape[2:], pp.padding, need))
    nc = _prod(pp.input_shape[:2])
    kp = _prod(pp.kernel_size)
    _check_work(op, passes * nc * kp * _prod(out), padded_arrays * nc * padded + _prod(pp.output_shape), passes * kp, "window terms")


def _max_fill(x: np.ndarray) -> Any:
    if x.dtype.kind == "f":
        return -np.inf
    if x.dtype.kind in "iu":
        return np.iinfo(x.dtype).min
    if any(_exact._is_sympy(v) for v in x.flat):
        raise ConvParamError("x: max pooling of sympy expressions is not defined (use numbers)")
    return -float("inf")


def _argmax_taps(x: np.ndarray, pp: Any) -> tuple[np.ndarray, np.ndarray]:
    """Window maxima and the first maximal tap (row-major) among the window's input elements.

    A NaN is maximal and the first NaN wins; padding taps never win (a window
    of padding only keeps ``-inf`` and tap ``-1``).
    """
    xp, wins = _pool_windows(x, pp, _max_fill(x))
    inside, _ = _pool_windows(np.ones(x.shape, dtype=bool), pp, False)
    best: Any = None  # the three are None until the first tap
    idx: Any = None
    have: Any = None
    for t, (_, win) in enumerate(wins):
        v = xp[(slice(None), slice(None)) + win]
        ok = inside[(slice(None), slice(None)) + win]
        if best is None:
            best, idx, have = v.copy(), np.where(ok, 0, -1), ok.copy()
            continue
        if v.dtype.kind == "f":
            larger = (v > best) | (np.isnan(v) & ~np.isnan(best))
        else:
            larger = v > best
        better = ok & (~have | larger)
        best = np.where(better, v, best)
        idx = np.where(better, t, idx)
        have |= ok
    return best, idx


def _flat_indices(pp: Any, tap: np.ndarray) -> np.ndarray:
    """The winning tap's input position, flattened in C order within its ``(n, c)`` plane (``-1``: no input)."""
    taps = np.array(list(np.ndindex(*pp.kernel_size)), dtype=np.int64).reshape(-1, pp.ndim)  # (T, D)
    grid = np.indices(pp.output_spatial, dtype=np.int64)  # (D, *O): output position p
    sizes = pp.input_shape[2:]
    flat = np.zeros(tap.shape, dtype=np.int64)
    for i in range(pp.ndim):
        lo = pp.padding[i][0]
        # input coordinate on axis i: p_i * s_i + k_i * d_i - lo_i
        coord = grid[i] * pp.stride[i] + taps[np.maximum(tap, 0), i] * pp.dilation[i] - lo
        flat = flat * sizes[i] + coord
    return np.where(tap >= 0, flat, -1)


def onnx_indices(indices: Any, input_shape: Sequence[int], storage_order: int = 0) -> np.ndarray:
    """PyTorch's per-plane indices as ONNX ``MaxPool``'s ``Indices``: counted across the whole tensor.

    ``storage_order=0`` is row-major (``((n*C + c)*H + h)*W + w``), ``1``
    column-major over the spatial axes (``(n*C + c)*H*W + h + w*H``); ``-1``
    (a window of padding only) stays ``-1``.

    >>> onnx_indices(np.array([[[[3]], [[2]]]]), (1, 2, 2, 2), 1).tolist()
    [[[[3]], [[5]]]]
    """
    ind = np.asarray(indices, dtype=np.int64)
    shp = tuple(int(v) for v in input_shape)
    if storage_order not in (0, 1):
        raise ConvParamError(f"storage_order={storage_order!r}: must be 0 (row-major) or 1 (column-major)")
    plane = _prod(shp[2:])
    nc = np.arange(_prod(shp[:2]), dtype=np.int64).reshape(shp[:2] + (1,) * (ind.ndim - 2))
    pos = ind
    if storage_order == 1 and ind.size:
        coords = np.unravel_index(np.maximum(ind, 0), shp[2:])
        pos = np.ravel_multi_index(coords, shp[2:], order="F")
    return np.where(ind >= 0, nc * plane + pos, -1)


# --------------------------------------------------------------------------- max pooling


@accepts_layouts(x="activation")
@_accepts_unbatched(("x",), _per_axis_rank("kernel_size", "stride", "dilation"))
def max_pool(
    x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Max pooling: the largest element of each window (padding is ``-inf``); exact in any dtype.

    Any padding is defined: a window holding only padding has maximum
    ``-inf`` (an error for integer inputs) and index ``-1``.  With
    ``return_indices`` also the int64 index of each maximum, flattened within
    its ``(n, c)`` plane (PyTorch's convention; :func:`onnx_indices` gives
    ONNX's); ties take the first maximum in row-major order of the window's
    taps, a NaN is maximal and the first NaN wins.

    With ``ceil_mode`` the output has one more window on an axis when the
    remainder is non-zero, unless that window would start in the right padding.

    Examples
    --------
    >>> x = np.array([[[1, 3, 2, 5, 4]]])
    >>> max_pool(x, 2).tolist(), max_pool(x, 2, ceil_mode=True).tolist()
    ([[[3, 5]]], [[[3, 5, 4]]])
    >>> max_pool(x, 3, stride=1, padding=1).tolist()
    [[[3, 3, 5, 5, 5]]]
    >>> max_pool(np.array([[[2., 2., 1.]]]), 2, stride=1, return_indices=True)[1].tolist()   # ties: the first
    [[[0, 1]]]
    """
    if not isinstance(return_indices, bool):
        raise ConvParamError(f"return_indices={return_indices!r}: must be True or False")
    xa = _asarray("x", x)
    pp = pool_params(xa.shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    _pool_work("max_pool", pp, 1, 2)  # the padded input and its mask of input positions
    best, tap = _argmax_taps(xa, pp)
    if xa.dtype.kind in "iu" and xa.size and not _window_has_input(pp).all():
        raise ConvParamError(
            f"kernel_size={pp.kernel_size}, dilation={pp.dilation}, padding={pp.padding}: some windows hold "
            "only padding, whose maximum is -inf; integer inputs cannot represent it (pass floats)"
        )
    return (best, _flat_indices(pp, tap)) if return_indices else best


def _window_has_input(pp: Any) -> np.ndarray:
    """Per output position: whether any tap of the (dilated) window lands inside the input."""
    hits = []
    for n, k, s, d, (lo, _), o in zip(pp.input_shape[2:], pp.kernel_size, pp.stride, pp.dilation, pp.padding, pp.output_spatial):
        taps = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - lo  # input index of each tap
        hits.append(((taps >= 0) & (taps < n)).any(axis=1))
    return functools.reduce(np.logical_and.outer, hits)


@accepts_layouts(dy="activation", x="activation")
@_accepts_unbatched(("x", "dy"), _per_axis_rank("kernel_size", "stride", "dilation"))
def max_pool_grad(
    dy: Any, x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1,
    ceil_mode: bool = False, exact: bool = False,
) -> np.ndarray:
    """Gradient of :func:`max_pool`: each ``dy`` goes to its window's first maximal element.

    Tie rule: the first maximal input element in row-major order of the
    window's taps (PyTorch's CPU kernels pick the same among numbers); a NaN
    counts as maximal and the first NaN wins (PyTorch credits the last NaN);
    padding never receives the gradient.  Overlapping windows add their
    gradients, exactly.

    Examples
    --------
    >>> max_pool_grad(np.array([[[10, 20]]]), np.array([[[1, 7, 7, 2]]]), 2, stride=1, padding=0)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: dy.shape=(1, 1, 2): must be the pooling output shape (1, 1, 3)
    >>> max_pool_grad(np.array([[[10, 20, 30]]]), np.array([[[1, 7, 7, 2]]]), 2, stride=1).tolist()
    [[[0, 30, 30, 0]]]
    """
    xa, dya = _asarray("x", x), _asarray("dy", dy)
    pp = pool_params(xa.shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    check_gradient_shape(dya.shape, pp.output_shape, "pooling")
    _pool_work("max_pool_grad", pp, 2, 3)  # the argmax sweep and the scatter; two padded inputs and the result
    _, idx = _argmax_taps(xa, pp)
    ops = _Operands(dy=dya)
    ops.widen("dy", terms=max(1, int(np.prod(pp.kernel_size))))

    def run(dy: np.ndarray) -> np.ndarray:
        xp, wins = _pool_windows(np.zeros(xa.shape, dtype=dy.dtype), pp, 0)
        for t, (_, win) in enumerate(wins):
            xp[(slice(None), slice(None)) + win] += np.where(idx == t, dy, 0)
        keep = tuple(slice(lo, lo + n) for (lo, _), n in zip(pp.padding, xa.shape[2:]))
        return xp[(slice(None), slice(None)) + keep]

    if ops.kind == "symbolic":
        return run(ops.ints["dy"])
    return ops.finish(run(ops.ints["dy"]), ops.scale["dy"], exact_out=exact, replay=run)


@accepts_layouts(y="activation", indices="activation", output_size="size")
@_accepts_unbatched(("y", "indices"), _per_axis_rank("kernel_size", "stride"))
def max_unpool(
    y: Any, indices: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, output_size: Any = None
) -> np.ndarray:
    """Max unpooling: zeros of the unpooled shape, ``out[n, c].flat[indices[n, c, p]] = y[n, c, p]``.

    Indices are per ``(n, c)`` plane as :func:`max_pool` returns them; when
    an index repeats, the last write in row-major order of ``y`` wins (what
    PyTorch's CPU kernel does; on other devices the winner is unspecified).
    The default output length is ``(n - 1)*s - lo - hi + k``.

    Examples
    --------
    >>> max_unpool(np.array([[[7, 9]]]), np.array([[[1, 2]]]), 2).tolist()
    [[[0, 7, 9, 0]]]
    """
    ya, ia = _asarray("y", y), np.asarray(indices)
    if ia.dtype.kind not in "iu":
        raise ConvParamError(f"indices.dtype={ia.dtype}: indices must be integers")
    up = unpool_params(ya.shape, ia.shape, kernel_size, stride=stride, padding=padding, output_size=output_size)
    _check_work("max_unpool", ya.size, _prod(up.output_shape), 1, "writes")
    plane = _prod(up.output_shape[2:])
    bad = (ia < 0) | (ia >= plane)
    if bad.any():
        where = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ConvParamError(
            f"indices[{', '.join(map(str, where))}]={int(ia[where])}: outside the unpooled plane of {plane} elements "
            f"(output shape {up.output_shape})"
        )
    nc = _prod(up.output_shape[:2])
    out = np.zeros((nc, plane), dtype=ya.dtype if ya.dtype != object else object)
    rows = np.repeat(np.arange(nc), _prod(ya.shape[2:]))
    # numpy fancy assignment: the last of repeated indices wins, in C order
    out[rows, ia.reshape(-1).astype(np.int64)] = ya.reshape(-1)
    return out.reshape(up.output_shape)


# --------------------------------------------------------------------------- average and L_p pooling


def _divisors(pp: Any, count_include_pad: bool) -> np.ndarray:
    """Per output position: the divisor ``divisor_override``, else the window's taps inside the input
    (``count_include_pad=False``) or inside input and padding (``True``); never the taps past the padding."""
    if getattr(pp, "divisor_override", None) is not None:
        return np.full(pp.output_spatial, pp.divisor_override, dtype=object)
    counts = []
    for n, k, s, d, (lo, hi), o in zip(pp.input_shape[2:], pp.kernel_size, pp.stride, pp.dilation, pp.padding, pp.output_spatial):
        taps = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - lo  # input coordinate of each tap
        first, end = (-lo, n + hi) if count_include_pad else (0, n)
        counts.append(((taps >= first) & (taps < end)).sum(axis=1))
    # divisor = product of per-axis counts: an outer product over the output grid
    return functools.reduce(np.multiply.outer, [c.astype(object) for c in counts])


def _over_divisors(total: np.ndarray, div: np.ndarray) -> tuple[np.ndarray, int]:
    """``total / div`` as ``(ints, lcm)`` with ``ints / lcm`` exact; a zero divisor gives 0 here (the caller sets NaN)."""
    safe = np.where(div == 0, 1, div).astype(object)
    lcm = int(np.lcm.reduce(np.array(np.abs(safe), dtype=np.int64).reshape(-1))) if safe.size else 1
    # sum/div = (sum * (lcm/div)) / lcm: one integer array over the common denominator
    return total.astype(object) * (lcm // safe), lcm


@accepts_layouts(x="activation")
@_accepts_unbatched(("x",), _per_axis_rank("kernel_size", "stride", "dilation"))
def avg_pool(
    x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: Any = None, exact: bool = False,
) -> np.ndarray:
    """Average pooling: the exact window sum divided by the divisor, correctly rounded.

    Divisor: ``divisor_override`` when given (PyTorch), else with
    ``count_include_pad`` the window taps inside input plus padding (taps past
    the padding, reachable only with ``ceil_mode``, never count); without it,
    the taps inside the input.  ``dilation`` spaces the taps (ONNX
    ``AveragePool`` ``dilations``).  A window of padding only without
    ``count_include_pad`` divides 0 by 0: NaN (refused with ``exact=True``).
    Integer inputs give correctly rounded float64 (exact Fractions with
    ``exact=True``).

    Examples
    --------
    >>> x = np.array([[[1, 2, 3, 4, 6]]])
    >>> avg_pool(x, 2).tolist()
    [[[1.5, 3.5]]]
    >>> avg_pool(x, 2, ceil_mode=True).tolist()          # the last window holds one element
    [[[1.5, 3.5, 6.0]]]
    >>> avg_pool(x, 3, stride=1, padding=1).tolist()     # zeros of the padding count
    [[[1.0, 2.0, 3.0, 4.333333333333333, 3.3333333333333335]]]
    >>> avg_pool(x, 3, stride=1, padding=1, count_include_pad=False, exact=True)[0, 0, 0]
    Fraction(3, 2)
    >>> avg_pool(x, 2, dilation=2, stride=1, divisor_override=1).tolist()   # x[p] + x[p+2]
    [[[4, 6, 9]]]
    """
    xa = _asarray("x", x)
    pp = pool_params(xa.shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad, divisor_override=divisor_override)
    _pool_work("avg_pool", pp, 1, 1)
    div = _divisors(pp, count_include_pad)
    ops = _Operands(x=xa)
    if ops.kind == "symbolic":
        raise ConvParamError("x: avg_pool of sympy expressions: use conv with a constant kernel instead")
    ops.widen("x", terms=max(1, int(np.prod(pp.kernel_size))))
    empty = np.broadcast_to(div == 0, pp.output_shape)
    if exact and empty.any():
        raise ConvParamError(
            f"padding={pp.padding}: some windows hold only padding and count_include_pad=False divides by 0 "
            "(NaN); no exact value"
        )

    def run(x: np.ndarray) -> np.ndarray:
        xp, wins = _pool_windows(x, pp, 0)
        total = np.zeros(pp.output_shape, dtype=xp.dtype)
        for _, win in wins:
            total = total + xp[(slice(None), slice(None)) + win]
        return total

    ints, lcm = _over_divisors(run(ops.ints["x"]), div)
    if ops.kind == "int" and not exact and (pp.divisor_override is None or lcm != 1):
        ops.kind, ops.dtype = "float", np.dtype(np.float64)
    out = ops.finish(ints, ops.scale["x"] / lcm, exact_out=exact, replay=run)
    if empty.any():
        out = out.astype(np.float64) if out.dtype.kind != "f" and out.dtype != object else out
        out[empty] = np.nan
    return out


@accepts_layouts(dy="activation", input_shape="activation_shape")
def avg_pool_grad(
    dy: Any, input_shape: Sequence[int], kernel_size: Any, *, stride: Any = None, padding: Any = 0,
    dilation: Any = 1, ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Any = None,
    exact: bool = False,
) -> np.ndarray:
    """Gradient of :func:`avg_pool`: ``dx[i] = sum over windows containing i of dy / divisor``.

    Padding positions receive nothing (they are not inputs).

    Examples
    --------
    >>> avg_pool_grad(np.array([[[2, 4]]]), (1, 1, 4), 2).tolist()
    [[[1.0, 1.0, 2.0, 2.0]]]
    """
    dya = _asarray("dy", dy)
    pp = pool_params(input_shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad, divisor_override=divisor_override)
    check_gradient_shape(dya.shape, pp.output_shape, "pooling")
    _pool_work("avg_pool_grad", pp, 1, 2)  # the padded gradient and the result
    div = _divisors(pp, count_include_pad)
    ops = _Operands(dy=dya)
    if ops.kind == "symbolic":
        raise ConvParamError("dy: avg_pool_grad of sympy expressions: use conv_grad_input with a constant kernel instead")
    # a zero divisor belongs to a window of padding only: it sends nothing to the input
    safe = np.where(div == 0, 1, div).astype(object)
    lcm = int(np.lcm.reduce(np.array(np.abs(safe), dtype=np.int64).reshape(-1))) if safe.size else 1
    mult = (lcm // safe).astype(object)

    def run(dy: np.ndarray) -> np.ndarray:
        share = dy.astype(object) * mult if dy.dtype != np.float64 else dy / np.array(safe, dtype=np.float64)
        xp, wins = _pool_windows(np.zeros(tuple(pp.input_shape), dtype=share.dtype), pp, 0)
        for _, win in wins:
            xp[(slice(None), slice(None)) + win] += share
        keep = tuple(slice(lo, lo + n) for (lo, _), n in zip(pp.padding, pp.input_shape[2:]))
        return xp[(slice(None), slice(None)) + keep]

    ints = run(ops.ints["dy"])
    if ops.kind == "int" and not exact:
        ops.kind, ops.dtype = "float", np.dtype(np.float64)
    return ops.finish(ints, ops.scale["dy"] / lcm, exact_out=exact, replay=run)


@accepts_layouts(x="activation")
@_accepts_unbatched(("x",), _per_axis_rank("kernel_size", "stride", "dilation"))
def lp_pool(
    x: Any, p: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """L_p pooling: ``y = (sum over the window of |x|**p) ** (1/p)``, correctly rounded, for integer ``p``.

    Padding (ONNX ``LpPool`` ``pads``) contributes zeros, as do taps past it
    under ``ceil_mode``.  The sum is exact and its root correctly rounded
    (:func:`refconv.exact.round_root`); integer inputs give float64.  An
    infinity in a window gives ``inf``, a NaN gives NaN.

    PyTorch's ``lp_pool`` differs: it computes ``avg_pool(x**p) * prod(k)``,
    so a negative ``x`` with odd ``p`` subtracts, and a ``ceil_mode`` window
    cut short is scaled up to the full window (``specs/pooling.md``).

    Examples
    --------
    >>> lp_pool(np.array([[[3, -4, 1]]]), 2, 2, stride=1).tolist()
    [[[5.0, 4.123105625617661]]]
    >>> lp_pool(np.array([[[1., -2.]]]), 1, 2).tolist()
    [[[3.0]]]
    """
    xa = _asarray("x", x)
    q = lp_norm(p)
    pp = pool_params(xa.shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    _pool_work("lp_pool", pp, 1, 1)
    ops = _Operands(x=xa)
    if ops.kind == "symbolic":
        raise ConvParamError("x: lp_pool of sympy expressions is not defined (use numbers)")
    xi = np.abs(ops.ints["x"]).astype(object) ** q  # |x|**p = |ints|**p * scale**p, exact

    xp, wins = _pool_windows(xi, pp, 0)
    total = np.zeros(pp.output_shape, dtype=object)
    for _, win in wins:
        total = total + xp[(slice(None), slice(None)) + win]
    scale = ops.scale["x"] ** q
    dtype = ops.dtype if ops.kind == "float" else np.dtype(np.float64)
    fmt = _exact.format_of(dtype)
    out = np.empty(pp.output_shape, dtype=dtype)
    out.reshape(-1)[:] = [_exact.round_root(int(t) * scale.numerator, scale.denominator, q, fmt) for t in total.flat]
    if ops.special:
        # |x|**p of a special: inf stays inf, NaN stays NaN; max picks NaN over inf
        mag = np.abs(xa.astype(np.float64))
        xs, wins = _pool_windows(np.where(np.isfinite(mag), 0.0, mag), pp, 0.0)
        worst = np.zeros(pp.output_shape)
        for _, win in wins:
            v = xs[(slice(None), slice(None)) + win]
            worst = np.where(np.isnan(v) | np.isnan(worst), np.nan, np.maximum(worst, v))
        bad = worst != 0
        out[bad] = worst[bad]
    return out


# --------------------------------------------------------------------------- adaptive and global pooling


def _adaptive(x: np.ndarray, ap: Any, reduce: Any) -> list[Any]:
    """``reduce(block)`` for every output position, where ``block`` is ``x[..., bins]`` (row-major order)."""
    out = []
    for pos in np.ndindex(*ap.output_spatial):
        sl = tuple(slice(*ap.bins[i][pi]) for i, pi in enumerate(pos))
        out.append(reduce(x[(slice(None), slice(None)) + sl], sl))
    return out


@accepts_layouts(x="activation")
@_accepts_unbatched(("x",), _per_axis_rank("output_size"))
def adaptive_avg_pool(x: Any, output_size: Any, *, exact: bool = False) -> np.ndarray:
    """Adaptive average pooling: output ``i`` averages ``[floor(i*n/o), ceil((i+1)*n/o))`` on each axis.

    The exact mean, correctly rounded (integers give float64; ``exact=True``
    gives Fractions).  ``output_size`` entries ``None`` keep the input size.

    Examples
    --------
    >>> adaptive_avg_pool(np.array([[[1, 2, 3, 4, 6]]]), 3).tolist()       # bins [0,2) [1,4) [3,5)
    [[[1.5, 3.0, 5.0]]]
    """
    xa = _asarray("x", x)
    ap = adaptive_pool_params(xa.shape, output_size)
    nc = _prod(xa.shape[:2])
    _check_work("adaptive_avg_pool", nc * sum(_prod(e - s for s, e in (b[i] for b, i in zip(ap.bins, pos)))
                                              for pos in np.ndindex(*ap.output_spatial)),
                _prod(ap.output_shape), _prod(ap.output_spatial), "window terms")
    ops = _Operands(x=xa)
    if ops.kind == "symbolic":
        raise ConvParamError("x: adaptive_avg_pool of sympy expressions is not defined (use numbers)")
    xi = ops.ints["x"].astype(object)
    sums = _adaptive(xi, ap, lambda blk, sl: blk.sum(axis=tuple(range(2, blk.ndim))))
    counts = [_prod(s.stop - s.start for s in sl) for sl in _adaptive(xi[:1, :1], ap, lambda blk, sl: sl)]
    total = np.moveaxis(np.stack(sums, axis=-1), -1, 2).reshape(ap.output_shape)
    div = np.array(counts, dtype=object).reshape(ap.output_spatial)
    ints, lcm = _over_divisors(total, div)
    if ops.kind == "int" and not exact:
        ops.kind, ops.dtype = "float", np.dtype(np.float64)
    out = ops.finish(ints, ops.scale["x"] / lcm, exact_out=exact)
    if ops.special and not exact:
        # IEEE sums of the specials' signs per bin: NaN, or the infinity that wins
        sp = _adaptive(np.where(np.isfinite(xa.astype(np.float64)), 0.0, xa.astype(np.float64)), ap,
                       lambda blk, sl: blk.sum(axis=tuple(range(2, blk.ndim))))
        s = np.moveaxis(np.stack(sp, axis=-1), -1, 2).reshape(ap.output_shape)
        bad = ~np.isfinite(s)
        out[bad] = s[bad]
    return out


def _first_max_key(row: Any) -> Callable[[int], tuple[Any, int]]:
    """The ``max`` key over the positions of ``row`` that picks its first maximum."""
    return lambda j: (row[j], -j)


@accepts_layouts(x="activation")
@_accepts_unbatched(("x",), _per_axis_rank("output_size"))
def adaptive_max_pool(x: Any, output_size: Any, *, return_indices: bool = False) -> Any:
    """Adaptive max pooling over PyTorch's bins (see :func:`adaptive_avg_pool`); indices as :func:`max_pool`.

    Ties take the first maximum in row-major order of the bin; a NaN is maximal and the first NaN wins.

    Examples
    --------
    >>> y, i = adaptive_max_pool(np.array([[[1, 5, 5, 2, 6]]]), 3, return_indices=True)
    >>> y.tolist(), i.tolist()
    ([[[5, 5, 6]]], [[[1, 1, 4]]])
    """
    if not isinstance(return_indices, bool):
        raise ConvParamError(f"return_indices={return_indices!r}: must be True or False")
    xa = _asarray("x", x)
    ap = adaptive_pool_params(xa.shape, output_size)
    nc = _prod(xa.shape[:2])
    _check_work("adaptive_max_pool", nc * _prod(xa.shape[2:]) * 2, _prod(ap.output_shape), _prod(ap.output_spatial),
                "window terms")
    _max_fill(xa)
    vals, idxs = [], []
    for pos in np.ndindex(*ap.output_spatial):
        sl = tuple(slice(*ap.bins[i][pi]) for i, pi in enumerate(pos))
        # (N, C, bin size): the size named, so an empty batch or no channels reshapes too (bins are never empty)
        blk: np.ndarray = xa[(slice(None), slice(None)) + sl].reshape(
            xa.shape[:2] + (_prod(s.stop - s.start for s in sl),))
        if blk.dtype.kind == "f":
            nan = np.isnan(blk)
            # the first NaN, else the first maximum (argmax returns the first occurrence)
            arg = np.where(nan.any(axis=-1), np.argmax(nan, axis=-1), np.argmax(np.where(nan, -np.inf, blk), axis=-1))
        else:
            arg = np.argmax(blk, axis=-1) if blk.dtype != object else np.array(
                [max(range(blk.shape[-1]), key=_first_max_key(r)) for r in blk.reshape(-1, blk.shape[-1])],
                dtype=np.intp).reshape(blk.shape[:2])
        vals.append(np.take_along_axis(blk, arg[..., None], axis=-1)[..., 0])
        local = np.unravel_index(arg, tuple(s.stop - s.start for s in sl))
        idxs.append(np.ravel_multi_index(tuple(li + s.start for li, s in zip(local, sl)), xa.shape[2:]))
    y = np.stack(vals, axis=-1).reshape(ap.output_shape)
    i = np.stack(idxs, axis=-1).reshape(ap.output_shape).astype(np.int64)
    return (y, i) if return_indices else y


@accepts_layouts(x="activation")
def global_avg_pool(x: Any, *, exact: bool = False) -> np.ndarray:
    """Global average pooling: the mean of each ``(n, c)`` plane, shape ``(N, C, 1, ..., 1)`` (ONNX ``GlobalAveragePool``).

    >>> global_avg_pool(np.array([[[[1, 2], [3, 5]]]])).tolist()
    [[[[2.75]]]]
    """
    xa = _asarray("x", x)
    return adaptive_avg_pool(xa, 1, exact=exact)


@accepts_layouts(x="activation")
def global_max_pool(x: Any) -> np.ndarray:
    """Global max pooling: the maximum of each ``(n, c)`` plane, shape ``(N, C, 1, ..., 1)`` (ONNX ``GlobalMaxPool``).

    >>> global_max_pool(np.array([[[[1, 2], [7, 5]]]])).tolist()
    [[[[7]]]]
    """
    return adaptive_max_pool(_asarray("x", x), 1)


# --------------------------------------------------------------------------- fractional max pooling


@accepts_layouts(x="activation")
@_accepts_unbatched(("x",), _per_axis_rank("kernel_size", "output_size"))
def fractional_max_pool(x: Any, kernel_size: Any, output_size: Any, samples: Any, *, return_indices: bool = False) -> Any:
    """Fractional max pooling with the pseudo-random windows fixed by ``samples``; exact in any dtype.

    Plane ``(n, c)`` pools, on axis ``i``, the ``o_i`` windows of ``k_i``
    samples starting at :func:`refconv.shapes.fractional_starts`
    ``(n_i, k_i, o_i, samples[n, c, i])``: ``floor((j + u) * alpha) - floor(u * alpha)``
    with ``alpha = (n_i - k_i) / (o_i - 1)``, the last window at ``n_i - k_i``
    (PyTorch's intervals in exact arithmetic; ``specs/pooling.md``).  PyTorch's
    ``_random_samples`` list the axes in reverse order for 2-D inputs: pass
    ``torch_samples[..., ::-1]``.  Indices and ties as in :func:`max_pool`
    (first maximum in row-major tap order; PyTorch credits the last NaN).
    An unbatched ``x`` of shape ``(C, *spatial)`` takes ``samples`` of shape ``(1, C, D)``.

    Examples
    --------
    >>> x = np.array([[[5, 1, 2, 7, 3, 0, 4, 6, 9, 8]]])
    >>> fractional_max_pool(x, 2, 4, [[[0.5]]], return_indices=True)   # windows start at 0, 3, 5, 8
    (array([[[5, 7, 4, 9]]]), array([[[0, 3, 6, 8]]]))
    """
    if not isinstance(return_indices, bool):
        raise ConvParamError(f"return_indices={return_indices!r}: must be True or False")
    xa = _asarray("x", x)
    fp = fractional_pool_params(xa.shape, kernel_size, output_size, samples)
    nc, kp, ndim = _prod(fp.input_shape[:2]), _prod(fp.kernel_size), len(fp.kernel_size)
    _check_work("fractional_max_pool", nc * kp * _prod(fp.output_spatial), 2 * _prod(fp.output_shape), kp, "window terms")
    if xa.dtype == object and any(_exact._is_sympy(v) for v in xa.flat):
        raise ConvParamError("x: max pooling of sympy expressions is not defined (use numbers)")
    planes = xa.reshape(nc, *fp.input_shape[2:])
    shape = (nc, *fp.output_spatial)
    plane = np.arange(nc).reshape((nc,) + (1,) * ndim)

    def axis_view(i: int, a: np.ndarray) -> np.ndarray:
        # per-plane starts (NC, o_i) placed on output axis i of (NC, *O)
        return a.reshape((nc,) + (1,) * i + (fp.output_spatial[i],) + (1,) * (ndim - 1 - i))

    starts = [axis_view(i, st) for i, st in enumerate(fp.starts)]
    best: Any = None  # both None until the first tap
    flat: Any = None
    for tap in np.ndindex(*fp.kernel_size):
        coords = [st + t for st, t in zip(starts, tap)]  # input coordinate of this tap on each axis
        v = np.broadcast_to(planes[(plane, *coords)], shape)
        # C-order index within the (n, c) plane: sum_i coord_i * prod(n_{i+1:})
        f = np.broadcast_to(_flat_of(coords, fp.input_shape[2:]), shape)
        if best is None:
            best, flat = v.copy(), f.copy()
            continue
        larger = (v > best) | (np.isnan(v) & ~np.isnan(best)) if v.dtype.kind == "f" else np.asarray(v > best, dtype=bool)
        best = np.where(larger, v, best)
        flat = np.where(larger, f, flat)
    y = best.reshape(fp.output_shape)
    return (y, flat.astype(np.int64).reshape(fp.output_shape)) if return_indices else y


def _flat_of(coords: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """C-order flat index of ``coords`` in an array of spatial ``sizes``: ``sum_i c_i * prod(sizes[i+1:])``."""
    flat = np.zeros((), dtype=np.int64)
    for c, n in zip(coords, sizes):
        flat = flat * n + c
    return flat
