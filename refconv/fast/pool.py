"""Max and average pooling and their gradients, over the convolution windows.

Windows are strided views ``v[..., p, k] = xp[..., p*s + k*d]`` (no copies);
every reduction runs tap by tap in row-major window order, so:

* ``max_pool``: a running ``np.maximum`` (NaN propagates; padding never wins);
* ``max_pool_grad``: the gradient goes to the **first** maximal input element
  of each window in row-major window order; a NaN counts as maximal and the
  first NaN wins; padding never wins;
* ``avg_pool``: the window sum (taps in order) divided by the divisor, the
  number of window positions inside the padded input (``count_include_pad``)
  or inside the input; a division, so an exactly summed window is correctly
  rounded;
* gradients scatter with one strided slice add per tap (no ``np.add.at``);
* memory: the result, converted inputs and per-output helper arrays are held
  under the cap of :mod:`refconv.fast.memory` before they are allocated, and
  samples are padded in chunks that fit next to them.

Examples
--------
>>> import numpy as np
>>> x = np.array([[[1., 3., 2., 3., 0.]]])
>>> max_pool(x, 2, stride=1).tolist()
[[[3.0, 3.0, 3.0, 3.0]]]
>>> max_pool_grad(np.ones((1, 1, 4)), x, 2, stride=1).tolist()
[[[0.0, 2.0, 0.0, 2.0, 0.0]]]
>>> avg_pool(x, 2, padding=1, count_include_pad=False).tolist()
[[[1.0, 2.5, 1.5]]]
"""

from __future__ import annotations

import itertools
from collections import namedtuple
from typing import Any

import numpy as np

from ..params import check_gradient_shape, pool_params
from .dtypes import all_finite, as_array, check_exact_bound, check_exact_ints, compute_dtype
from .geometry import prod
from .memo import memoized
from .memory import Budget, get_memory_cap, nbytes, ufunc_buffers
from .parallel import run_tasks

__all__ = ["max_pool", "avg_pool", "max_pool_grad", "avg_pool_grad"]

#: bytes of padded input per task (samples per task; the partition never changes a result)
TASK_BYTES = 8 << 20


def _taps(kernel):
    return itertools.product(*(range(k) for k in kernel))


def _slices(pp):
    """The ``xp`` slices of every tap in row-major order, lazily (a window may have very many taps)."""
    return ((slice(None), slice(None), *_tap_slices(k, pp)) for k in _taps(pp.kernel_size))


def _padded_extent(pp) -> tuple[tuple[int, int], ...]:
    """``(lo, hi')`` per axis where ``hi'`` also covers ceil-mode windows past the right padding."""
    out = []
    for n, k, s, (lo, hi), d, o in zip(pp.input_shape[2:], pp.kernel_size, pp.stride, pp.padding, pp.dilation, pp.output_spatial):
        need = (o - 1) * s + d * (k - 1) + 1 if o > 0 else 0
        out.append((lo, max(hi, need - n - lo)))
    return tuple(out)


_Plan = namedtuple("_Plan", ("input_shape", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                             "count_include_pad", "output_spatial", "output_shape"))


def _plan(pp) -> _Plan:
    """The fields of a validated :class:`~refconv.params.PoolParams`, each computed once (the output
    size is a property that the per-tap helpers would recompute); read-only."""
    return _Plan(*(getattr(pp, name) for name in _Plan._fields))


def _validated_plan(input_shape: Any, kernel_size: Any, **kwargs: Any) -> _Plan:
    return _plan(pool_params(input_shape, kernel_size, **kwargs))


# validated once per geometry (a training loop repeats a few); errors are raised every time
_pool_plan = memoized(_validated_plan)


def _padded_bytes(shape, pads, dtype) -> int:
    """Bytes of one sample of an array of ``shape`` after padding."""
    return nbytes((shape[1], *(n + lo + hi for n, (lo, hi) in zip(shape[2:], pads))), dtype)


def _budget(op: str, held: list[tuple[str, int]]) -> Budget:
    """The cap in effect, holding ``(what, bytes)`` in order (the result first)."""
    budget = Budget(get_memory_cap())
    for what, n in held:
        budget = budget.hold(n, f"{what} of {op}")
    return budget


def _pad(x: np.ndarray, pads, fill) -> np.ndarray:
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    shape = (*x.shape[:2], *(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads)))
    xp = np.full(shape, fill, dtype=x.dtype)
    xp[(slice(None), slice(None), *(slice(lo, lo + n) for n, (lo, hi) in zip(x.shape[2:], pads)))] = x
    return xp


def _tap_slices(k, pp):
    """``xp`` positions ``p*s + k*d`` of tap ``k`` for every output ``p``, as slices."""
    return tuple(
        slice(ki * d, ki * d + (o - 1) * s + 1, s) for ki, d, s, o in zip(k, pp.dilation, pp.stride, pp.output_spatial)
    )


def _valid_mask(k, pp, pads) -> np.ndarray | None:
    """Broadcastable mask of the outputs whose tap ``k`` reads a real input element (None: all do)."""
    masks = []
    any_pad = False
    nsp = len(pp.kernel_size)
    for ax, (ki, d, s, o, n, (lo, _)) in enumerate(
        zip(k, pp.dilation, pp.stride, pp.output_spatial, pp.input_shape[2:], pads)
    ):
        pos = np.arange(o) * s + ki * d - lo  # input index read by tap k of output p
        m = (pos >= 0) & (pos < n)
        if not m.all():
            any_pad = True
        shape = [1] * nsp
        shape[ax] = o
        masks.append(m.reshape(shape))
    if not any_pad:
        return None
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out


def _pool_dtype(name: str, a: np.ndarray) -> np.dtype:
    """Real dtypes only: float32/float64 kept, integers allowed (exact paths), complex refused."""
    return compute_dtype((name, a), integers=True, complex_ok=False)


def _fill_min(dt: np.dtype):
    """The padding value of max pooling: ``-inf``, or the smallest integer."""
    return -np.inf if dt.kind == "f" else np.iinfo(dt).min


def _exact_float64(name: str, a: np.ndarray, terms: int) -> np.ndarray:
    """Integers as float64, checked so that sums of ``terms`` of them stay exact (below 2**53)."""
    f = check_exact_ints(name, a)
    big = max(-float(f.min()), float(f.max())) if f.size else 0.0  # max |f| without a temporary
    check_exact_bound(np.array([big * terms]), name)
    return f


def _disjoint(pp) -> bool:
    """Whether no two windows share an input element: the stride at least the window's span on every axis."""
    return all(s >= d * (k - 1) + 1 for s, d, k in zip(pp.stride, pp.dilation, pp.kernel_size))


def _sample_tasks(n: int, per_sample: int, what: str, budget: Budget, out_elements: int, itemsize: int) -> tuple[list[tuple[int, int]], int]:
    """Sample ranges of about :data:`TASK_BYTES` each, next to what ``budget`` holds (results never depend on the partition).

    Each sample also counts numpy's buffers of ufuncs on its strided tap views
    (``out_elements`` items of ``itemsize`` bytes per sample at most).  Returns
    the ranges and how many may run at once under the cap.
    """
    per_sample += ufunc_buffers(out_elements, itemsize)
    fit = budget.chunks(n, per_sample, what=f"one batch sample of {what}")
    size = max(1, min(fit, TASK_BYTES // max(per_sample, 1)))
    tasks = [(i, min(n, i + size)) for i in range(0, n, size)]
    return tasks, budget.chunks(len(tasks), size * max(per_sample, 1))


def max_pool(x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1,
             ceil_mode: Any = False) -> np.ndarray:
    """Max pooling: ``y[n, c, p] = max_k xp[n, c, p*s + k*d]`` (padding is ``-inf``; NaN propagates).

    Integers keep their dtype (padding is the smallest integer).

    Examples
    --------
    >>> import numpy as np
    >>> max_pool(np.arange(16.).reshape(1, 1, 4, 4), 2)[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    x = as_array("x", x)
    pp = _pool_plan(x.shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    if _pool_dtype("x", x).kind == "f":
        x = x.astype(np.result_type(x.dtype, np.float32), copy=False)  # float32 and float64: no copy
    budget = _budget("max_pool", [("the result", nbytes(pp.output_shape, x.dtype))])
    y = np.empty(pp.output_shape, dtype=x.dtype)
    if y.size == 0:
        return y
    pads = _padded_extent(pp)

    def task(r):
        xp = _pad(x[r[0] : r[1]], pads, _fill_min(x.dtype))
        out = y[r[0] : r[1]]
        slices = _slices(pp)
        np.copyto(out, xp[next(slices)])
        for sl in slices:
            # NaN propagates; between equal values (-0.0 and 0.0) np.maximum returns its second argument,
            # the running maximum: the first maximal element of the window wins, as in the oracle
            np.maximum(xp[sl], out, out=out)

    tasks, par = _sample_tasks(x.shape[0], _padded_bytes(x.shape, pads, x.dtype), "max_pool", budget, prod(y.shape[1:]), x.dtype.itemsize)
    run_tasks(task, tasks, max_parallel=par)
    return y


def max_pool_grad(dy: Any, x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                  ceil_mode: Any = False) -> np.ndarray:
    """Gradient of max pooling: each ``dy[n, c, p]`` goes to the first maximal element of its window.

    Row-major window order decides ties; a NaN counts as maximal and the first
    NaN of a window wins; padding never wins (where every input element of a
    window is ``-inf`` the first of them gets the gradient, as in PyTorch), and
    a window of padding only (possible with dilation) credits nothing.  The
    result has the dtype of ``dy`` (int64 for integers, exact).

    Examples
    --------
    >>> import numpy as np
    >>> max_pool_grad(np.array([[[10.]]]), np.array([[[2., 5., 5.]]]), 3).tolist()
    [[[0.0, 10.0, 0.0]]]
    """
    x, dy = as_array("x", x), as_array("dy", dy)
    pp = _pool_plan(x.shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    check_gradient_shape(dy.shape, pp.output_shape, "pooling")
    _pool_dtype("x", x)
    # the result has the dtype of dy (int64 for integers: exact sums, checked below 2**53)
    dt = _pool_dtype("dy", dy)
    Kp = prod(pp.kernel_size)
    ft = np.dtype(np.float64) if dt.kind in "iu" else dt  # the dtype dx is summed in
    held = [("the result", nbytes(x.shape, ft))]
    if dt.kind in "iu":
        held += [("the float64 copy of dy", nbytes(dy.shape, ft)), ("the int64 copy of the result", nbytes(x.shape, dt))]
    budget = _budget("max_pool_grad", held)
    if dt.kind in "iu":
        dy = _exact_float64("dy", dy, Kp)
    else:
        dy = dy.astype(dt, copy=False)
    if x.dtype.kind == "f":
        x = x.astype(np.result_type(x.dtype, np.float32), copy=False)  # float32 and float64: no copy
    pads = _padded_extent(pp)
    dx = np.zeros(x.shape, dtype=dy.dtype)
    if dy.size == 0:
        return dx.astype(dt)
    fill = _fill_min(x.dtype)
    crop = (slice(None), slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], pads)))
    is_float = x.dtype.kind == "f"
    unpadded = all(lo == 0 and hi == 0 for lo, hi in pads)
    disjoint = _disjoint(pp)  # each tap's share is assigned, not added

    def task(r):
        xp = _pad(x[r[0] : r[1]], pads, fill)
        slices = _slices(pp)
        y = xp[next(slices)].copy()
        for sl in slices:
            np.maximum(y, xp[sl], out=y)  # the window maximum; NaN propagates
        # the first input (not padding) tap equal to the maximum (or NaN, only where the maximum is NaN)
        # wins: taps in row-major order, `taken` marks the windows already credited
        nan = is_float and bool(np.isnan(y).any())
        taken = np.zeros(y.shape, dtype=bool)
        hit = np.empty(y.shape, dtype=bool)
        # no padding: the gradient of the chunk is dx itself (zeros already)
        dxp = dx[r[0] : r[1]] if unpadded else np.zeros(xp.shape, dtype=dy.dtype)
        d = dy[r[0] : r[1]]
        zero = np.zeros((), dtype=dy.dtype)
        finite = all_finite(d)
        share = np.empty(y.shape, dtype=dy.dtype)
        for t, (k, sl) in enumerate(zip(_taps(pp.kernel_size), _slices(pp))):
            tap = xp[sl]
            np.equal(tap, y, out=hit)
            if nan:
                hit |= tap != tap
            valid = None if unpadded else _valid_mask(k, pp, pads)
            if valid is not None:
                hit &= valid  # padding taps never win
            if t:
                np.greater(hit, taken, out=hit)  # hit and not yet taken (nothing is before the first tap)
            if t < Kp - 1:
                taken |= hit
            # dxp[n, c, p*s + k_t*d] += dy[n, c, p] where tap t won: one strided slice per tap
            if disjoint and finite:
                # no other window reaches these elements: an assignment of dy * [tap t won] + 0.0 (exact, dy
                # finite; + 0.0: the sum into zeros of the definition, so -0.0 * 1 and -1.0 * 0 give +0.0)
                np.multiply(d, hit, out=share)
                np.add(share, zero, out=dxp[sl])
            elif disjoint:
                np.add(np.where(hit, d, zero), zero, out=dxp[sl])  # a selection: inf * 0 would be NaN
            elif finite:
                np.multiply(d, hit, out=share)  # dy * [tap t won]: exact, dy finite
                dxp[sl] += share
            else:
                dxp[sl] += np.where(hit, d, zero)  # a selection: inf * 0 would be NaN
        if not unpadded:
            dx[r[0] : r[1]] = dxp[crop]

    # per sample: the padded input and its gradient; the window maxima, the gradient share and its selection,
    # and four boolean masks (taken, hit, the NaN test, the padding taps) per output
    out1 = prod(dy.shape[1:])
    per_sample = (_padded_bytes(x.shape, pads, x.dtype) + _padded_bytes(x.shape, pads, dy.dtype)
                  + out1 * (x.dtype.itemsize + 2 * dy.dtype.itemsize + 4))
    itemsize = max(x.dtype.itemsize, dy.dtype.itemsize)
    tasks, par = _sample_tasks(x.shape[0], per_sample, "max_pool_grad", budget, out1, itemsize)
    run_tasks(task, tasks, max_parallel=par)
    return dx.astype(dt, copy=False)


def _divisor(pp, pads, dtype) -> np.ndarray:
    """Window size per output: positions inside the padded input (or the input), as a product of axes."""
    out = np.ones((1, 1) + (1,) * len(pp.kernel_size), dtype=dtype)
    for ax, (n, k, s, (lo, hi), o) in enumerate(
        zip(pp.input_shape[2:], pp.kernel_size, pp.stride, pp.padding, pp.output_spatial)
    ):
        start = np.arange(o) * s - lo  # window start in input coordinates
        end = start + k
        if pp.count_include_pad:
            cnt = np.minimum(end, n + hi) - np.maximum(start, -lo)
        else:
            cnt = np.minimum(end, n) - np.maximum(start, 0)
        shape = [1, 1] + [1] * len(pp.kernel_size)
        shape[2 + ax] = o
        out = out * cnt.astype(dtype).reshape(shape)
    return out


def avg_pool(x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, ceil_mode: Any = False,
             count_include_pad: Any = True) -> np.ndarray:
    """Average pooling: the window sum divided by the window size (see :func:`_divisor`).

    With ``count_include_pad`` the divisor counts padding positions (but not
    the part of a ceil-mode window past the right padding), as PyTorch.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool(np.arange(16.).reshape(1, 1, 4, 4), 2)[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    x = as_array("x", x)
    pp = _pool_plan(x.shape, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad)
    # integers: exact float64 sums (checked below 2**53), then one correctly rounded division
    exact_int = _pool_dtype("x", x).kind in "iu"
    ft = np.dtype(np.float64) if exact_int else np.result_type(x.dtype, np.float32)
    held = [("the result", nbytes(pp.output_shape, ft)), ("the divisors", 2 * nbytes(pp.output_spatial, ft))]
    if exact_int:
        held.append(("the float64 copy of x", nbytes(x.shape, ft)))
    budget = _budget("avg_pool", held)
    if exact_int:
        x = _exact_float64("x", x, prod(pp.kernel_size))
    x = x.astype(ft, copy=False)  # float32 and float64: no copy
    y = np.zeros(pp.output_shape, dtype=x.dtype)
    if y.size == 0:
        return y
    pads = _padded_extent(pp)

    def task(r):
        xp = _pad(x[r[0] : r[1]], pads, 0)
        out = y[r[0] : r[1]]
        # the window sum, taps added in row-major order
        slices = _slices(pp)
        np.copyto(out, xp[next(slices)])
        for sl in slices:
            out += xp[sl]

    tasks, par = _sample_tasks(x.shape[0], _padded_bytes(x.shape, pads, x.dtype), "avg_pool", budget, prod(y.shape[1:]), x.dtype.itemsize)
    run_tasks(task, tasks, max_parallel=par)
    y /= _divisor(pp, pads, x.dtype)
    return y


def avg_pool_grad(dy: Any, input_shape: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0,
                  ceil_mode: Any = False, count_include_pad: Any = True) -> np.ndarray:
    """Gradient of average pooling: ``dx[i] = sum over windows p holding i of dy[p] / divisor[p]``.

    Examples
    --------
    >>> import numpy as np
    >>> avg_pool_grad(np.array([[[4., 8.]]]), (1, 1, 4), 2).tolist()
    [[[2.0, 2.0, 4.0, 4.0]]]
    """
    dy = as_array("dy", dy)
    pp = _pool_plan(input_shape, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad)
    check_gradient_shape(dy.shape, pp.output_shape, "pooling")
    dt = _pool_dtype("dy", dy)
    pads = _padded_extent(pp)
    shape = pp.input_shape
    exact_int = dt.kind in "iu"
    dt = np.dtype(np.float64) if exact_int else dt
    held = [("the result", nbytes(shape, dt)), ("the divisors", 3 * nbytes(pp.output_spatial, np.float64)),
            ("the gradient shares", nbytes(dy.shape, dt))]
    if exact_int:
        held.append(("the float64 copy of dy and its absolute values", 2 * nbytes(dy.shape, np.float64)))
    budget = _budget("avg_pool_grad", held)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(shape[2:], pads))
    crop = (slice(None), slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(shape[2:], pads)))
    dx = np.zeros(shape, dtype=dt)
    if dy.size == 0:
        return dx
    div = _divisor(pp, pads, np.float64)
    if exact_int:
        # integers: dx = (sum_p dy[p] * (L / div[p])) / L over the common denominator L, an exact
        # integer sum (checked below 2**53) and one correctly rounded division
        lcm = float(np.lcm.reduce(div.astype(np.int64).reshape(-1)))
        g = _exact_float64("dy", dy, prod(pp.kernel_size)) * (lcm / div)
        check_exact_bound(np.abs(g).max(keepdims=True) * prod(pp.kernel_size), "avg_pool_grad")
    else:
        g = dy.astype(dt, copy=False) / div.astype(dt)
        if all(lo == 0 and hi == 0 for lo, hi in pads) and _disjoint(pp):
            # windows that share no element and read no padding (2x2 stride 2, ...): each element of dx is
            # the one share of its window, g + 0.0 (the sum into zeros: +0.0 for -0.0), one strided pass per tap
            zero = dt.type(0)
            for sl in _slices(pp):
                np.add(g, zero, out=dx[sl])
            return dx

    def task(r):
        dxp = np.zeros((r[1] - r[0], shape[1], *padded), dtype=dt)
        gr = g[r[0] : r[1]]
        for sl in _slices(pp):
            dxp[sl] += gr  # taps in row-major order
        if exact_int:
            dxp /= lcm
        dx[r[0] : r[1]] = dxp[crop]

    per_sample = _padded_bytes(shape, pads, dt)
    tasks, par = _sample_tasks(shape[0], per_sample, "avg_pool_grad", budget, prod(dy.shape[1:]), dt.itemsize)
    run_tasks(task, tasks, max_parallel=par)
    return dx
