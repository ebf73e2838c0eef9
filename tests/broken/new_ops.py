"""Max pooling with indices, L_p, adaptive pooling, average pooling with dilation and divisor_override:
correct implementations (float64, rounded once) and classic mistakes.  Plain numpy, no refconv.
"""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------- windows (correct building blocks)


def _outputs(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Output sizes; ValueError for a window longer than the padded input (as every library does)."""
    outs = []
    for n, k, s, d, (lo, hi) in zip(x.shape[2:], kernel_size, stride, dilation, padding):
        span = d * (k - 1) + 1
        if span > n + lo + hi:
            raise ValueError("window larger than the padded input")
        room = n + lo + hi - span
        o = (-(-room // s) if ceil_mode else room // s) + 1
        if ceil_mode and (o - 1) * s >= n + lo:
            o -= 1  # the last window may not start in the right padding
        outs.append(o)
    return outs


def _taps(x, kernel_size, stride, padding, dilation, outs, fill):
    """``(tap, values, inside, flat)`` per window tap in row-major order: the tap's value for every output, whether it
    reads the input, and its input position flat within the (n, c) plane."""
    ext = [(lo, max(hi, (o - 1) * s + d * (k - 1) + 1 - n - lo))
           for n, k, s, d, (lo, hi), o in zip(x.shape[2:], kernel_size, stride, dilation, padding, outs)]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + ext, constant_values=fill)
    for k in np.ndindex(*kernel_size):
        sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(k, dilation, stride, outs))
        inside, flat = np.ones((1,) * len(k), bool), np.zeros((1,) * len(k), np.int64)
        for i, (n, t, s, d, (lo, _), o) in enumerate(zip(x.shape[2:], k, stride, dilation, padding, outs)):
            coord = (np.arange(o) * s + t * d - lo).reshape([o if j == i else 1 for j in range(len(k))])
            inside = inside & (coord >= 0) & (coord < n)
            flat = flat * n + coord
        yield k, xp[(slice(None), slice(None)) + sl], inside, flat


def _argmax(x, kernel_size, stride, padding, dilation, ceil_mode, *, ties="first", fill=-np.inf):
    outs = _outputs(x, kernel_size, stride, padding, dilation, ceil_mode)
    best = np.full(x.shape[:2] + tuple(outs), -np.inf)
    idx = np.full(best.shape, -1, np.int64)
    have = np.zeros(best.shape, bool)
    for _, v, inside, flat in _taps(x, kernel_size, stride, padding, dilation, outs, fill):
        better = (v >= best) if ties == "last" else (v > best) | (np.isnan(v) & ~np.isnan(best))
        better = inside & (~have | better)
        best, idx, have = np.where(better, v, best), np.where(better, flat, idx), have | inside
    return best.astype(x.dtype), idx


# --------------------------------------------------------------------------- max pooling with indices


def max_pool_indices(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Correct: the first maximum of each window's input elements (-inf and -1 for a window of padding only)."""
    return _argmax(x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool_indices_whole_tensor(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Indices counted across N and C (ONNX's Indices) where PyTorch counts within each plane."""
    y, i = _argmax(x, kernel_size, stride, padding, dilation, ceil_mode)
    plane = int(np.prod(x.shape[2:]))
    nc = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1,) * (x.ndim - 2))
    return y, np.where(i >= 0, i + nc * plane, -1)


def max_pool_indices_last_tie(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Ties take the last maximum (a '>=' comparison)."""
    return _argmax(x, kernel_size, stride, padding, dilation, ceil_mode, ties="last")


def max_pool_indices_in_window(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """The index of the winning tap within its window instead of its input position."""
    outs = _outputs(x, kernel_size, stride, padding, dilation, ceil_mode)
    y, _ = _argmax(x, kernel_size, stride, padding, dilation, ceil_mode)
    tap = np.full(y.shape, -1, np.int64)
    for t, (_, v, inside, _) in enumerate(_taps(x, kernel_size, stride, padding, dilation, outs, -np.inf)):
        tap = np.where((tap < 0) & inside & (v == y), t, tap)
    return y, tap


# --------------------------------------------------------------------------- average pooling


def _avg(x, kernel_size, stride, padding, ceil_mode, count_include_pad, dilation, divisor_override, *, use_dilation=True,
         use_override=True):
    dilation = dilation or (1,) * len(kernel_size)
    dil = dilation if use_dilation else (1,) * len(kernel_size)
    outs = _outputs(x, kernel_size, stride, padding, dilation, ceil_mode)
    total = np.zeros(x.shape[:2] + tuple(outs))
    count = np.zeros(tuple(outs))
    for k, v, inside, _ in _taps(x, kernel_size, stride, padding, dil, outs, 0.0):
        total = total + v
        counted = inside
        if count_include_pad:
            # taps inside the input or its padding (not past it, where ceil_mode windows reach)
            counted = np.ones((1,) * len(k), bool)
            for i, (n, t, s, d, (lo, hi), o) in enumerate(zip(x.shape[2:], k, stride, dil, padding, outs)):
                c = (np.arange(o) * s + t * d - lo).reshape([o if j == i else 1 for j in range(len(k))])
                counted = counted & (c >= -lo) & (c < n + hi)
        count = count + np.broadcast_to(counted, count.shape)
    div = np.full(count.shape, float(divisor_override)) if (divisor_override is not None and use_override) else count
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / div).astype(x.dtype)


def avg_pool_dilated(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad, dilation=None,
                     divisor_override=None):
    """Correct: dilated windows, divisor_override when given, float64 sums divided once."""
    return _avg(x, kernel_size, stride, padding, ceil_mode, count_include_pad, dilation, divisor_override)


def avg_pool_dilation_ignored(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad, dilation=None,
                              divisor_override=None):
    """Contiguous windows at the dilated window's output positions."""
    return _avg(x, kernel_size, stride, padding, ceil_mode, count_include_pad, dilation, divisor_override,
                use_dilation=False)


def avg_pool_override_ignored(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad, dilation=None,
                              divisor_override=None):
    """divisor_override accepted and dropped."""
    return _avg(x, kernel_size, stride, padding, ceil_mode, count_include_pad, dilation, divisor_override,
                use_override=False)


# --------------------------------------------------------------------------- L_p pooling


def _check_p(p):
    if p != int(p) or p < 1:
        raise ValueError(f"p={p}: an integer >= 1")


def _lp(x, p, kernel_size, stride, padding, dilation, ceil_mode, power, finish):
    _check_p(p)
    outs = _outputs(x, kernel_size, stride, padding, dilation, ceil_mode)
    total = np.zeros(x.shape[:2] + tuple(outs))
    for _, v, _, _ in _taps(x, kernel_size, stride, padding, dilation, outs, 0.0):
        total = total + power(v, p)
    with np.errstate(invalid="ignore"):
        return finish(total, p, int(np.prod(kernel_size))).astype(x.dtype)


def lp_pool(x, p, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Correct: float64 sums of |x|**p, one root."""
    return _lp(x, p, kernel_size, stride, padding, dilation, ceil_mode, lambda v, q: np.abs(v) ** q,
               lambda s, q, k: s ** (1.0 / q))


def lp_pool_signed(x, p, kernel_size, *, stride, padding, dilation, ceil_mode):
    """x**p summed with its sign (PyTorch's route through average pooling), not |x|**p."""
    return _lp(x, p, kernel_size, stride, padding, dilation, ceil_mode, lambda v, q: v ** q,
               lambda s, q, k: np.sign(s) * np.abs(s) ** (1.0 / q))


def lp_pool_mean(x, p, kernel_size, *, stride, padding, dilation, ceil_mode):
    """The mean of |x|**p under the root instead of the sum."""
    return _lp(x, p, kernel_size, stride, padding, dilation, ceil_mode, lambda v, q: np.abs(v) ** q,
               lambda s, q, k: (s / k) ** (1.0 / q))


# --------------------------------------------------------------------------- adaptive pooling


def _bins_ceil(n, o):
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def _bins_floor(n, o):
    return [(i * n // o, max(i * n // o + 1, (i + 1) * n // o)) for i in range(o)]


def _bins_equal(n, o):
    w = max(1, n // o)
    return [(min(i * w, n - w), min(i * w, n - w) + w) for i in range(o)]


def _adaptive(x, output_size, reduce, bins):
    if any(o < 1 for o in output_size):
        raise ValueError(f"output_size={output_size}: every size must be >= 1")
    y = x.astype(np.float64)
    for ax in range(x.ndim - 1, 1, -1):
        y = np.stack([reduce(y.take(range(s, e), axis=ax), ax) for s, e in bins(x.shape[ax], output_size[ax - 2])], axis=ax)
    return y.astype(x.dtype)


def adaptive_avg_pool(x, output_size):
    """Correct: PyTorch's bins [floor(i*n/o), ceil((i+1)*n/o)), float64 means."""
    return _adaptive(x, output_size, lambda b, ax: b.mean(axis=ax), _bins_ceil)


def adaptive_avg_pool_floor_bins(x, output_size):
    """Bins end at floor((i+1)*n/o): uneven bins lose their last sample."""
    return _adaptive(x, output_size, lambda b, ax: b.mean(axis=ax), _bins_floor)


def adaptive_max_pool(x, output_size):
    """Correct: the maximum of each bin (NaN propagates)."""
    return _adaptive(x, output_size, lambda b, ax: b.max(axis=ax), _bins_ceil)


def adaptive_max_pool_equal_bins(x, output_size):
    """Every bin n // o samples long: the remainder is dropped."""
    return _adaptive(x, output_size, lambda b, ax: b.max(axis=ax), _bins_equal)


# --------------------------------------------------------------------------- gradients and unpooling


def _scatter(shape, flat, values):
    """Zeros of ``shape`` (float64), ``values`` added at the flat indices of each (n, c) plane (repeats add)."""
    nc, plane, taps = shape[0] * shape[1], int(np.prod(shape[2:])), int(np.prod(flat.shape[2:]))
    out = np.zeros((nc, plane))
    idx = flat.reshape(nc, taps)
    rows = np.broadcast_to(np.arange(nc)[:, None], idx.shape)
    ok = idx >= 0
    np.add.at(out, (rows[ok], idx[ok]), values.astype(np.float64).reshape(nc, taps)[ok])
    return out.reshape(shape)


def conv_grad_bias(dy):
    """Correct: float64 sums over the batch and the positions, rounded once."""
    return dy.astype(np.float64).sum(axis=(0, *range(2, dy.ndim))).astype(dy.dtype)


def conv_grad_bias_mean(dy):
    """The mean of dy instead of its sum."""
    return dy.astype(np.float64).mean(axis=(0, *range(2, dy.ndim))).astype(dy.dtype) if dy.size else conv_grad_bias(dy)


def conv_grad_bias_first_sample(dy):
    """Only the first sample of the batch."""
    return conv_grad_bias(dy[:1])


def _max_grad(dy, x, kernel_size, stride, padding, dilation, ceil_mode, ties):
    _, idx = _argmax(x, kernel_size, stride, padding, dilation, ceil_mode, ties=ties)
    return _scatter(x.shape, idx, dy).astype(x.dtype)


def max_pool_grad(dy, x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Correct: dy to the first maximum of each window's input elements, overlapping windows added in float64."""
    return _max_grad(dy, x, kernel_size, stride, padding, dilation, ceil_mode, "first")


def max_pool_grad_last_tie(dy, x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Ties credit the last maximum."""
    return _max_grad(dy, x, kernel_size, stride, padding, dilation, ceil_mode, "last")


def _avg_grad(dy, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, dilation, divisor_override,
              flip_count=False):
    # the adjoint of average pooling: the gradient of sum(avg_pool(x) * dy) by the window sums of the unit inputs
    x = np.zeros(input_shape)
    grad = np.zeros(input_shape)
    cip = count_include_pad != flip_count
    plane = int(np.prod(input_shape[2:]))
    for j in range(plane):
        e = np.zeros(input_shape[2:])
        e.flat[j] = 1.0
        ones = x + e  # the unit input at position j in every (n, c) plane
        y = _avg(ones, kernel_size, stride, padding, ceil_mode, cip, dilation, divisor_override)
        grad.reshape(input_shape[0], input_shape[1], plane)[:, :, j] = (y * dy.astype(np.float64)).reshape(
            input_shape[0], input_shape[1], int(np.prod(dy.shape[2:]))).sum(axis=2)
    return grad.astype(dy.dtype)


def avg_pool_grad(dy, input_shape, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Correct: each input's gradient, the sum of dy / divisor over the windows that hold it (float64)."""
    return _avg_grad(dy, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, None, None)


def avg_pool_grad_other_count(dy, input_shape, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """The divisor of the other count_include_pad."""
    return _avg_grad(dy, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, None, None,
                     flip_count=True)


def _unpool_size(y, kernel_size, stride, padding, output_size):
    """The unpooled spatial sizes; ValueError where output_size is a stride or more from the default (PyTorch)."""
    sizes = []
    for m, k, s, (lo, hi), o in zip(y.shape[2:], kernel_size, stride, padding, output_size):
        default = (m - 1) * s - lo - hi + k
        if not default - s < o < default + s:
            raise ValueError(f"output_size {o} out of range around {default}")
        sizes.append(o)
    return sizes


def max_unpool(y, indices, kernel_size, *, stride, padding, output_size):
    """Correct: y written at the flat indices of each (n, c) plane of zeros."""
    sizes = _unpool_size(y, kernel_size, stride, padding, output_size)
    nc, taps = y.shape[0] * y.shape[1], int(np.prod(y.shape[2:]))
    out = np.zeros((nc, int(np.prod(sizes))))
    # repeated indices carry the same value (one maximum read by several windows): assignment order is moot
    out[np.arange(nc)[:, None], indices.reshape(nc, taps)] = y.astype(np.float64).reshape(nc, taps)
    return out.reshape(y.shape[:2] + tuple(sizes)).astype(y.dtype)


def max_unpool_whole_tensor(y, indices, kernel_size, *, stride, padding, output_size):
    """Indices read across the whole tensor (no plane offset)."""
    sizes = _unpool_size(y, kernel_size, stride, padding, output_size)
    out = np.zeros((y.shape[0], y.shape[1], *sizes))
    out.reshape(-1)[indices.reshape(-1)] = y.astype(np.float64).reshape(-1)
    return out.astype(y.dtype)


#: the entries of the gradient and unpooling ops: Entry keyword dicts (tests/broken/__init__.py makes them Entries)
GRAD_BROKEN = [
    dict(name="conv_grad_bias: the mean instead of the sum", op="conv_grad_bias", fn=conv_grad_bias_mean,
         diagnosis="mean instead of sum"),
    dict(name="conv_grad_bias 1-D: the first sample only", op="conv_grad_bias", fn=conv_grad_bias_first_sample, dims=1,
         diagnosis="first sample only"),
    dict(name="max_pool_grad: ties credit the last maximum", op="max_pool_grad", fn=max_pool_grad_last_tie,
         diagnosis="last maximum"),
    dict(name="avg_pool_grad: the other count_include_pad", op="avg_pool_grad", fn=avg_pool_grad_other_count, dims=1,
         diagnosis="count_include_pad inverted"),
    dict(name="max_unpool: indices across the whole tensor", op="max_unpool", fn=max_unpool_whole_tensor,
         diagnosis="whole tensor"),
]
GRAD_CORRECT = [
    dict(name="conv_grad_bias: float64 sums", op="conv_grad_bias", fn=conv_grad_bias),
    dict(name="conv_grad_bias 3-D float64", op="conv_grad_bias", fn=conv_grad_bias, dims=3, dtype="float64"),
    dict(name="max_pool_grad: the first maximum", op="max_pool_grad", fn=max_pool_grad),
    dict(name="avg_pool_grad 1-D: window sums of dy / divisor", op="avg_pool_grad", fn=avg_pool_grad, dims=1),
    dict(name="max_unpool: per-plane indices", op="max_unpool", fn=max_unpool),
    dict(name="max_unpool 3-D float64", op="max_unpool", fn=max_unpool, dims=3, dtype="float64"),
]


# --------------------------------------------------------------------------- convolution padding modes


def _conv_padded(x, w, b, stride, padding, dilation, groups, np_mode):
    """float64 direct convolution of ``x`` padded by ``np.pad(mode=np_mode)`` (PyTorch's modules pad, then convolve)."""
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [tuple(p) for p in padding], mode=np_mode)
    d = x.ndim - 2
    k = w.shape[2:]
    outs = [(n - dl * (kk - 1) - 1) // s + 1 for n, kk, s, dl in zip(xp.shape[2:], k, stride, dilation)]
    if any(o < 1 for o in outs):
        raise ValueError("kernel larger than the padded input")
    cout, cg = w.shape[0], w.shape[1]
    if x.shape[1] != cg * groups or cout % groups:
        raise ValueError(f"groups={groups} do not fit C_in={x.shape[1]}, C_out={cout}")
    og = cout // groups
    y = np.zeros((x.shape[0], cout, *outs))
    for t in np.ndindex(*k):
        sl = tuple(slice(ti * dl, ti * dl + s * (o - 1) + 1, s) for ti, dl, s, o in zip(t, dilation, stride, outs))
        for g in range(groups):
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + sl]
            wt = w[(slice(g * og, (g + 1) * og), slice(None)) + t].astype(np.float64)
            y[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...", patch, wt)
    if b is not None:
        y += b.astype(np.float64).reshape((1, -1) + (1,) * d)
    return y.astype(x.dtype)


_NP = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def conv_padding_mode(x, w, b, *, stride, padding, dilation, groups, padding_mode="zeros"):
    """Correct: np.pad with the mode's numpy name; refuses reflect past n - 1 and circular past n (as PyTorch)."""
    for (lo, hi), n in zip(padding, x.shape[2:]):
        if padding_mode == "reflect" and max(lo, hi) >= n or padding_mode == "circular" and max(lo, hi) > n:
            raise ValueError(f"padding {(lo, hi)} too large for padding_mode={padding_mode!r} and input {n}")
    return _conv_padded(x, w, b, stride, padding, dilation, groups, _NP[padding_mode])


def conv_reflect_symmetric(x, w, b, *, stride, padding, dilation, groups, padding_mode="zeros"):
    """'reflect' as numpy's 'symmetric': the edge sample repeated."""
    mode = "symmetric" if padding_mode == "reflect" else _NP[padding_mode]
    return _conv_padded(x, w, b, stride, padding, dilation, groups, mode)


def conv_mode_ignored(x, w, b, *, stride, padding, dilation, groups, padding_mode="zeros"):
    """padding_mode accepted and dropped: zeros."""
    return _conv_padded(x, w, b, stride, padding, dilation, groups, "constant")


MODE_BROKEN = [
    dict(name="conv: padding_mode 'reflect' as numpy's 'symmetric'", op="conv", fn=conv_reflect_symmetric,
         diagnosis="'symmetric' instead"),
    dict(name="conv 1-D: padding_mode ignored", op="conv", fn=conv_mode_ignored, dims=1,
         diagnosis="padding_mode ignored"),
]
MODE_CORRECT = [
    dict(name="conv: every padding_mode through np.pad", op="conv", fn=conv_padding_mode),
    dict(name="conv 3-D float64: every padding_mode", op="conv", fn=conv_padding_mode, dims=3, dtype="float64"),
]
