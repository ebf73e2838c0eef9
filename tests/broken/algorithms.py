"""Fast algorithms in plain numpy for the conformance self-test: FFT, Winograd and prefix sums, correct and broken.

The correct ones compute in float32 the way libraries do (scipy.fft on float32
arrays gives complex64 spectra; Winograd transforms, products and channel sums
in float32; summed-area tables in float32) and must pass the bound of their
algorithm (``bound='fft'``, ``'winograd'``, ``'prefix_sum'``).  The broken ones
keep the algorithm but lose precision (float16 accumulation or spectra) or
wrap around (an FFT length too short); each must fail.  ``conv_ftz`` flushes
subnormal inputs, products and partial sums to zero, as GPUs and oneDNN do in
FTZ/DAZ mode: it passes ``precision='float32-ftz'`` and fails ``'float32'``
on subnormal inputs.  Nothing here uses refconv: these stand in for the code
under test.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import scipy.fft

from . import base

F16, F32 = np.float16, np.float32
TINY32 = F32(2.0**-126)  # the smallest normal float32


def _pads(padding):
    return [(0, 0), (0, 0)] + [tuple(p) for p in padding]


def _dilate(a, factors):
    """Insert ``f - 1`` zeros between samples along each spatial axis."""
    out = np.zeros(a.shape[:2] + tuple((n - 1) * f + 1 for n, f in zip(a.shape[2:], factors)), dtype=a.dtype)
    out[(slice(None), slice(None)) + tuple(slice(None, None, f) for f in factors)] = a
    return out


def _f16_spectrum(z):
    """A complex64 array with real and imaginary parts rounded to float16 (half-precision spectra)."""
    return (z.real.astype(F16).astype(F32) + 1j * z.imag.astype(F16).astype(F32)).astype(np.complex64)


# --------------------------------------------------------------------------- FFT


def conv_fft(x, w, b, *, stride, padding, dilation, groups, half=False, truncate=False):
    """Correlation through ``irfft(rfft(xp) * rfft(reversed w))``, channels contracted per frequency."""
    work = F16 if half else F32
    xp = np.pad(x, _pads(padding)).astype(work).astype(F32)
    wd = _dilate(w.astype(work).astype(F32), dilation)
    d_ = len(stride)
    axes = tuple(range(-d_, 0))
    P, D = xp.shape[2:], wd.shape[2:]
    # linear correlation needs L >= P (the valid part never wraps); a truncated length wraps around
    L = [max(q, p - 1) if truncate else scipy.fft.next_fast_len(p + q - 1, real=True) for p, q in zip(P, D)]
    X = scipy.fft.rfftn(xp, L, axes=axes)
    W = scipy.fft.rfftn(wd[(slice(None), slice(None)) + (slice(None, None, -1),) * d_], L, axes=axes)
    if half:
        X, W = _f16_spectrum(X), _f16_spectrum(W)
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    og = cout // groups
    Z = np.concatenate([np.einsum("nc...,oc...->no...", X[:, g * cg:(g + 1) * cg], W[g * og:(g + 1) * og])
                        for g in range(groups)], axis=1) if N else np.zeros((0, cout) + X.shape[2:], np.complex64)
    if half:
        Z = _f16_spectrum(Z)
    z = scipy.fft.irfftn(Z, L, axes=axes)
    outs = [(p - q) // s + 1 for p, q, s in zip(P, D, stride)]
    idx = np.ix_(*[(q - 1 + np.arange(o) * s) % l for q, o, s, l in zip(D, outs, stride, L)])
    y = z[(slice(None), slice(None)) + idx].astype(F32)
    if b is not None:
        y = y + b.astype(F32).reshape((1, -1) + (1,) * d_)
    return y.astype(x.dtype)


def _scatter_fft(x, w, stride, dilation, groups, crop, out_sizes):
    """``full[n, g*Cog + o, i*s + k*d] += x[n, c, i] * w[c, o, k]`` by FFT, then ``full[lo : lo + size]``."""
    d_ = len(stride)
    axes = tuple(range(-d_, 0))
    xd = _dilate(x.astype(F32), stride)
    wd = _dilate(w.astype(F32), dilation)
    full = [a + q - 1 for a, q in zip(xd.shape[2:], wd.shape[2:])]
    L = [scipy.fft.next_fast_len(max(f, lo + s), real=True) for f, lo, s in zip(full, (c[0] for c in crop), out_sizes)]
    X = scipy.fft.rfftn(xd, L, axes=axes)
    W = scipy.fft.rfftn(wd, L, axes=axes)
    N, cin = x.shape[:2]
    cog = w.shape[1]
    cig = cin // groups
    Y = np.concatenate([np.einsum("nc...,co...->no...", X[:, g * cig:(g + 1) * cig], W[g * cig:(g + 1) * cig])
                        for g in range(groups)], axis=1) if N else np.zeros((0, groups * cog) + X.shape[2:], np.complex64)
    y = scipy.fft.irfftn(Y, L, axes=axes)
    # positions past the full product (output padding, unread rows) are zeros: L >= lo + size holds them
    sl = tuple(slice(lo, lo + s) for (lo, _), s in zip(crop, out_sizes))
    return y[(slice(None), slice(None)) + sl].astype(F32)


def conv_transpose_fft(x, w, b, *, stride, padding, output_padding, dilation, groups):
    sizes = [(n - 1) * s + d * (k - 1) + 1 - lo - hi + op
             for n, s, d, k, (lo, hi), op in zip(x.shape[2:], stride, dilation, w.shape[2:], padding, output_padding)]
    y = _scatter_fft(x, w, stride, dilation, groups, padding, sizes)
    if b is not None:
        y = y + b.astype(F32).reshape((1, -1) + (1,) * len(stride))
    return y.astype(x.dtype)


def conv_grad_input_fft(dy, w, input_shape, *, stride, padding, dilation, groups):
    """The adjoint of the forward correlation: a transposed convolution of ``dy`` cropped to the input."""
    return _scatter_fft(dy, w, stride, dilation, groups, padding, list(input_shape[2:])).astype(dy.dtype)


def conv_grad_weight_fft(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """``dw[o, c, k] = sum_n corr(xp[n, c], dy[n, o] dilated by s)[k*d]`` with the batch summed per frequency."""
    d_ = len(stride)
    axes = tuple(range(-d_, 0))
    xp = np.pad(x, _pads(padding)).astype(F32)
    dyd = _dilate(dy.astype(F32), stride)
    L = [scipy.fft.next_fast_len(p, real=True) for p in xp.shape[2:]]
    X = scipy.fft.rfftn(xp, L, axes=axes)
    Dc = np.conj(scipy.fft.rfftn(dyd, L, axes=axes))
    cout, cg = weight_shape[:2]
    og = cout // groups
    R = np.concatenate([np.einsum("nc...,no...->oc...", X[:, g * cg:(g + 1) * cg], Dc[:, g * og:(g + 1) * og])
                        for g in range(groups)], axis=0)
    r = scipy.fft.irfftn(R, L, axes=axes)  # r[tau] = sum_m xp[m + tau] dyd[m]: no wrap for tau <= P - len(dyd)
    idx = np.ix_(*[np.arange(k) * d for k, d in zip(weight_shape[2:], dilation)])
    return r[(slice(None), slice(None)) + idx].astype(x.dtype)


# --------------------------------------------------------------------------- Winograd (Lavin & Gray)

_WINOGRAD = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], F32),
        np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], F32),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], F32)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], F32),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], F32),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], F32)),
}


def _along(a, M, axis):
    """``M`` applied along ``axis`` of ``a`` in the arrays' own precision."""
    return np.moveaxis(np.tensordot(M, a, axes=([1], [axis])), 0, axis)


def conv_winograd(x, w, b, *, stride, padding, dilation, groups, m=2, offset=0, acc=F32):
    """Winograd F(m, 3) per axis for stride-1, undilated 3x...x3 kernels; a direct float32 loop otherwise.

    Tiles of ``m`` outputs start ``offset`` outputs before the first one (a
    partial first tile); the channel sum of the transformed products is
    accumulated in ``acc``.
    """
    d_ = len(stride)
    if any(s != 1 for s in stride) or any(dd != 1 for dd in dilation) or any(k != 3 for k in w.shape[2:]):
        return base.conv(x.astype(F32), w.astype(F32), None if b is None else b.astype(F32), stride=stride,
                         padding=padding, dilation=dilation, groups=groups).astype(x.dtype)
    BT, G, AT = _WINOGRAD[m]
    al = m + 2
    xp = np.pad(x.astype(F32), _pads(padding))
    outs = [p - 2 for p in xp.shape[2:]]
    tiles = [-(-(o + offset) // m) for o in outs]
    # input of tile t starts at t*m - offset: pad offset zeros before and enough after
    xt = np.pad(xp, [(0, 0), (0, 0)] + [(offset, t * m + 2 - offset - p) for t, p in zip(tiles, xp.shape[2:])])
    win = np.lib.stride_tricks.sliding_window_view(xt, (al,) * d_, axis=tuple(range(2, 2 + d_)))
    V = win[(slice(None), slice(None)) + (slice(None, None, m),) * d_]  # (N, C, *tiles, *alpha)
    nt = 2 + d_
    for ax in range(d_):
        V = _along(V, BT, nt + ax)
    U = w.astype(F32)
    for ax in range(d_):
        U = _along(U, G, 2 + ax)  # (Cout, Cg, *alpha)
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    og = cout // groups
    Mt = np.zeros((N, cout, *tiles) + (al,) * d_, dtype=acc)
    for o in range(cout):
        g = o // og
        for c in range(cg):
            prod = (V[:, g * cg + c] * U[o, c].reshape((1,) * (1 + d_) + U.shape[2:])).astype(acc)
            Mt[:, o] = (Mt[:, o] + prod).astype(acc)
    Y = Mt.astype(F32)
    for ax in range(d_):
        Y = _along(Y, AT, nt + ax)  # (N, Cout, *tiles, *m)
    # interleave tiles and positions: axis (tile, pos) -> tile*m + pos
    order = [0, 1] + [i for ax in range(d_) for i in (2 + ax, nt + ax)]
    Y = Y.transpose(order).reshape((N, cout) + tuple(t * m for t in tiles))
    Y = Y[(slice(None), slice(None)) + tuple(slice(offset, offset + o) for o in outs)]
    if b is not None:
        Y = Y + b.astype(F32).reshape((1, -1) + (1,) * d_)
    return np.ascontiguousarray(Y).astype(x.dtype)


def conv_transpose_winograd(x, w, b, *, stride, padding, output_padding, dilation, groups, m=2):
    """Stride 1: the transposed convolution is a correlation with the adjoint kernel (flipped, channels swapped)."""
    if any(s != 1 for s in stride) or any(dd != 1 for dd in dilation) or any(k != 3 for k in w.shape[2:]):
        return base.conv_transpose(x.astype(F32), w.astype(F32), None if b is None else b.astype(F32), stride=stride,
                                   padding=padding, output_padding=output_padding, dilation=dilation,
                                   groups=groups).astype(x.dtype)
    cin, cog = w.shape[:2]
    wt = w.reshape(groups, cin // groups, cog, *w.shape[2:]).swapaxes(1, 2).reshape(groups * cog, cin // groups, *w.shape[2:])
    wt = wt[(slice(None), slice(None)) + (slice(None, None, -1),) * len(stride)]
    pads = [(2 - lo, 2 - hi) for lo, hi in padding]
    xc = x
    for ax, (lo, hi) in enumerate(pads):  # a padding past the kernel crops the input instead
        n = xc.shape[2 + ax]
        sl = [slice(None)] * xc.ndim
        sl[2 + ax] = slice(max(-lo, 0), n - max(-hi, 0))
        xc = xc[tuple(sl)]
    pads = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    return conv_winograd(xc, np.ascontiguousarray(wt), b, stride=stride, padding=pads, dilation=dilation,
                         groups=groups, m=m)


def conv_grad_input_winograd(dy, w, input_shape, *, stride, padding, dilation, groups, m=4):
    """Stride 1: the input gradient is the transposed convolution of ``dy`` (no rows left unread)."""
    if any(s != 1 for s in stride) or any(dd != 1 for dd in dilation) or any(k != 3 for k in w.shape[2:]):
        return base.grad_input(dy.astype(F32), w.astype(F32), input_shape, stride=stride, padding=padding,
                               dilation=dilation, groups=groups).astype(dy.dtype)
    return conv_transpose_winograd(dy, w, None, stride=stride, padding=padding, output_padding=(0,) * len(stride),
                                   dilation=dilation, groups=groups, m=m)


# --------------------------------------------------------------------------- prefix sums


def avg_pool_prefix_sum(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad, acc=F32):
    """Average pooling from a summed-area table: ``2**d`` corner prefix sums per window, then the divisor."""
    d_ = len(kernel_size)
    outs = [base._pool_geometry(n, k, s, lo, hi, 1, ceil_mode, "pytorch")
            for n, k, s, (lo, hi) in zip(x.shape[2:], kernel_size, stride, padding)]
    sizes = [max(n + lo + hi, (o - 1) * s + k) for n, k, s, (lo, hi), o in zip(x.shape[2:], kernel_size, stride, padding, outs)]
    P = np.zeros(x.shape[:2] + tuple(s + 1 for s in sizes), dtype=acc)
    with np.errstate(over="ignore", invalid="ignore"):  # a float16 table may overflow: its bug, not a crash
        P[(slice(None), slice(None)) + tuple(slice(lo + 1, lo + 1 + n) for (lo, _), n in zip(padding, x.shape[2:]))] = x
        for ax in range(d_):
            P = np.cumsum(P, axis=2 + ax, dtype=acc)  # sequential running sums in acc
    total = np.zeros(x.shape[:2] + tuple(outs), dtype=acc)
    for corner in itertools.product((0, 1), repeat=d_):
        idx = [np.minimum(np.arange(o) * s + k, size) if c else np.arange(o) * s
               for c, o, s, k, size in zip(corner, outs, stride, kernel_size, sizes)]
        sign = -1 if (d_ - sum(corner)) % 2 else 1
        with np.errstate(over="ignore", invalid="ignore"):
            total = (total + sign * P[(slice(None), slice(None)) + np.ix_(*idx)]).astype(acc)
    counts = []
    for n, k, s, (lo, hi), o in zip(x.shape[2:], kernel_size, stride, padding, outs):
        start = np.arange(o) * s - lo
        counts.append(np.minimum(start + k, n + hi) - start if count_include_pad else np.minimum(start + k, n) - np.maximum(start, 0))
    div = functools.reduce(np.multiply.outer, counts)  # divisor = product of the per-axis counts
    return (total.astype(F32) / np.asarray(div, dtype=F32)).astype(x.dtype)


# --------------------------------------------------------------------------- flush to zero


def _flush(a):
    a = np.asarray(a, dtype=F32)
    return np.where(np.abs(a) < TINY32, F32(0), a).astype(F32)


def conv_ftz(x, w, b, *, stride, padding, dilation, groups):
    """Direct float32 convolution with denormals-are-zero inputs and every product and partial sum flushed."""
    xp = np.pad(_flush(x), _pads(padding))
    w = _flush(w)
    K = w.shape[2:]
    outs = [(p - dd * (k - 1) - 1) // s + 1 for p, dd, k, s in zip(xp.shape[2:], dilation, K, stride)]
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    og = cout // groups
    y = np.zeros((N, cout, *outs), dtype=F32)
    for o in range(cout):
        g = o // og
        acc = np.zeros((N, *outs), dtype=F32)
        for c in range(cg):
            for k in np.ndindex(*K):
                sl = tuple(slice(t * dd, t * dd + s * (q - 1) + 1, s) for t, dd, s, q in zip(k, dilation, stride, outs))
                acc = _flush(acc + _flush(xp[(slice(None), g * cg + c) + sl] * w[(o, c) + k]))
        if b is not None:
            acc = _flush(acc + _flush(b[o]))
        y[:, o] = acc
    return y.astype(x.dtype)


# --------------------------------------------------------------------------- registry


def _conv(fn, **knobs):
    def f(x, w, b, *, stride, padding, dilation, groups):
        return fn(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, **knobs)

    return f


def _avg(**knobs):
    def f(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
        return avg_pool_prefix_sum(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                                   count_include_pad=count_include_pad, **knobs)

    return f


#: correct fast algorithms: each passes the bound of its algorithm
ALGORITHM_CORRECT = [
    dict(name="conv: float32 FFT", op="conv", fn=_conv(conv_fft), dims=2, dtype="float32", bound="fft", diagnosis=None),
    dict(name="conv_transpose: float32 FFT", op="conv_transpose", fn=conv_transpose_fft, dims=2, dtype="float32",
         bound="fft", diagnosis=None),
    dict(name="conv_grad_input: float32 FFT", op="conv_grad_input", fn=conv_grad_input_fft, dims=2, dtype="float32",
         bound="fft", diagnosis=None),
    dict(name="conv_grad_weight: float32 FFT", op="conv_grad_weight", fn=conv_grad_weight_fft, dims=2, dtype="float32",
         bound="fft", diagnosis=None),
    dict(name="conv: float32 Winograd F(2x2, 3x3)", op="conv", fn=_conv(conv_winograd, m=2), dims=2, dtype="float32",
         bound="winograd", diagnosis=None),
    dict(name="conv: float32 Winograd F(4x4, 3x3)", op="conv", fn=_conv(conv_winograd, m=4), dims=2, dtype="float32",
         bound="winograd", diagnosis=None),
    dict(name="conv: float32 Winograd F(4x4, 3x3), tiles shifted by 3", op="conv", fn=_conv(conv_winograd, m=4, offset=3),
         dims=2, dtype="float32", bound="winograd", diagnosis=None),
    dict(name="conv_transpose: float32 Winograd F(2x2, 3x3)", op="conv_transpose",
         fn=lambda x, w, b, *, stride, padding, output_padding, dilation, groups: conv_transpose_winograd(
             x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups, m=2),
         dims=2, dtype="float32", bound="winograd", diagnosis=None),
    dict(name="conv_grad_input: float32 Winograd F(4x4, 3x3)", op="conv_grad_input", fn=conv_grad_input_winograd, dims=2,
         dtype="float32", bound="winograd", diagnosis=None),
    dict(name="avg_pool: float32 summed-area table", op="avg_pool", fn=_avg(), dims=2, dtype="float32",
         bound="prefix_sum", diagnosis=None),
    dict(name="conv: flush-to-zero float32, claimed float32-ftz", op="conv", fn=conv_ftz, dims=2, dtype="float32",
         bound="direct", precision="float32-ftz", diagnosis=None),
]

#: the same algorithms with a planted precision bug: each must fail its algorithm's bound
ALGORITHM_BROKEN = [
    dict(name="conv: Winograd F(4x4, 3x3) accumulating channels in float16", op="conv",
         fn=_conv(conv_winograd, m=4, acc=F16), dims=2, dtype="float32", bound="winograd", diagnosis=None),
    dict(name="conv: FFT with float16 spectra", op="conv", fn=_conv(conv_fft, half=True), dims=2, dtype="float32",
         bound="fft", diagnosis=None),
    dict(name="conv: FFT length too short (wrap-around)", op="conv", fn=_conv(conv_fft, truncate=True), dims=2,
         dtype="float32", bound="fft", diagnosis=None),
    dict(name="avg_pool: summed-area table in float16", op="avg_pool", fn=_avg(acc=F16), dims=2, dtype="float32",
         bound="prefix_sum", diagnosis=None),
    dict(name="conv: flush-to-zero float32 claimed as float32", op="conv", fn=conv_ftz, dims=2, dtype="float32",
         bound="direct", precision="float32", diagnosis=None),
]
