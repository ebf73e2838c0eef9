"""Bugs that hide: remainder tiles in paths taken only with every feature on, memory layouts, flushed
subnormals, invalid configurations accepted, windows of padding only; and blocked implementations that
handle every remainder (correct).  Plain numpy, no refconv.

The building blocks are correct: ``conv_f64`` etc. compute in float64 and round once.  A "path" is the
condition under which a kernel library would dispatch to a specialised kernel (grouped, strided and
dilated, with bias); each bug lives in one such path and in one tile remainder, as real ones do.
"""

from __future__ import annotations

import functools
import math

import numpy as np

TINY = {np.dtype(np.float32): np.finfo(np.float32).tiny, np.dtype(np.float64): np.finfo(np.float64).tiny}


# --------------------------------------------------------------------------- correct building blocks


def conv_shape(xs, ws, bs, stride, padding, dilation, groups):
    """The forward output shape; ValueError on what the definition rejects (as every library does)."""
    cin, cout, cg = xs[1], ws[0], ws[1]
    if cin % groups or cout % groups or cg != cin // groups:
        raise ValueError(f"groups={groups} does not fit C_in={cin}, C_out={cout}, w.shape={tuple(ws)}")
    if bs is not None and tuple(bs) != (cout,):
        raise ValueError(f"bias shape {tuple(bs)}")
    outs = []
    for n, k, s, d, (lo, hi) in zip(xs[2:], ws[2:], stride, dilation, padding):
        if d * (k - 1) + 1 > n + lo + hi:
            raise ValueError("kernel wider than the padded input")
        outs.append((n + lo + hi - d * (k - 1) - 1) // s + 1)
    return (xs[0], cout, *outs)


def check_conv(x, w, b, stride, padding, dilation, groups):
    conv_shape(x.shape, w.shape, None if b is None else b.shape, stride, padding, dilation, groups)


def check_ct(x, w, b, stride, padding, output_padding, dilation, groups):
    cin = x.shape[1]
    if cin % groups or w.shape[0] != cin or (b is not None and b.shape != (w.shape[1] * groups,)):
        raise ValueError("groups or weight do not fit")
    if any(o >= s and o >= d for o, s, d in zip(output_padding, stride, dilation)):
        raise ValueError("output_padding too large")
    for n, s, d, k, op, (lo, hi) in zip(x.shape[2:], stride, dilation, w.shape[2:], output_padding, padding):
        if (n - 1) * s + d * (k - 1) + 1 + op - lo - hi < 1:
            raise ValueError("crop larger than the output")


def check_pool(x, kernel_size, stride, padding, dilation):
    for n, k, d, (lo, hi) in zip(x.shape[2:], kernel_size, dilation, padding):
        span = d * (k - 1) + 1
        if max(lo, hi) > span // 2:
            raise ValueError("padding larger than half the window")
        if span > n + lo + hi:
            raise ValueError("window larger than the padded input")


def _validate(op, args, kw):
    """The definition's argument checks for a canonical call of ``op``."""
    if op == "conv":
        check_conv(*args[:3], kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
    elif op == "conv_transpose":
        check_ct(*args[:3], kw["stride"], kw["padding"], kw["output_padding"], kw["dilation"], kw["groups"])
    elif op in ("max_pool", "avg_pool"):
        k = args[1] if len(args) > 1 else kw["kernel_size"]
        check_pool(args[0], k, kw["stride"], kw["padding"], kw.get("dilation", (1,) * len(k)))
    elif op == "conv_grad_input":
        dy, w = args[:2]
        xs = args[2] if len(args) > 2 else kw["input_shape"]
        if conv_shape(xs, w.shape, None, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]) != dy.shape:
            raise ValueError("dy does not have the forward output shape")
    else:
        x, dy = args[:2]
        ws = args[2] if len(args) > 2 else kw["weight_shape"]
        if conv_shape(x.shape, ws, None, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]) != dy.shape:
            raise ValueError("dy does not have the forward output shape")


def refusing(op, fn):
    """``fn`` behind the definition's argument checks: ValueError on a configuration the definition rejects."""

    @functools.wraps(fn)
    def wrapped(*args, **kw):
        _validate(op, args, kw)
        return fn(*args, **kw)

    return wrapped


def _outs(P, K, stride, dilation):
    return [(p - d * (k - 1) - 1) // s + 1 for p, k, s, d in zip(P, K, stride, dilation)]


def _cols(xp, K, stride, dilation, outs):
    """(N, C, prod K, *O): every window's taps."""
    cols = []
    for k in np.ndindex(*K):
        sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(k, dilation, stride, outs))
        cols.append(xp[(slice(None), slice(None)) + sl])
    return np.stack(cols, axis=2)


def conv_f64(x, w, b, *, stride, padding, dilation, groups):
    """The exact-enough result: float64 products and sums, rounded once to x.dtype."""
    check_conv(x, w, b, stride, padding, dilation, groups)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    K = w.shape[2:]
    outs = _outs(xp.shape[2:], K, stride, dilation)
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    col = _cols(xp, K, stride, dilation, outs).reshape(N, groups, cg * math.prod(K), *outs)
    y = np.einsum("ngt...,got->ngo...", col, w.astype(np.float64).reshape(groups, cout // groups, -1))
    y = y.reshape(N, cout, *outs)
    if b is not None:
        y = y + b.astype(np.float64).reshape((1, -1) + (1,) * len(K))
    return y.astype(x.dtype)


def ct_f64(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Transposed convolution by scatter in float64, rounded once (weight (C_in, C_out/groups, *K))."""
    check_ct(x, w, b, stride, padding, output_padding, dilation, groups)
    cin = x.shape[1]
    K = w.shape[2:]
    cog = w.shape[1]
    cig = cin // groups
    full = [(n - 1) * s + d * (k - 1) + 1 + op for n, s, d, k, op in zip(x.shape[2:], stride, dilation, K, output_padding)]
    sizes = [f - lo - hi for f, (lo, hi) in zip(full, padding)]
    N = x.shape[0]
    y = np.zeros((N, groups, cog, *full))
    xg = x.astype(np.float64).reshape(N, groups, cig, *x.shape[2:])
    wg = w.astype(np.float64).reshape(groups, cig, cog, *K)
    for k in np.ndindex(*K):
        sl = tuple(slice(t * d, t * d + s * (n - 1) + 1, s) for t, d, s, n in zip(k, dilation, stride, x.shape[2:]))
        y[(slice(None), slice(None), slice(None)) + sl] += np.einsum("ngc...,gco->ngo...", xg, wg[(slice(None),) * 3 + k])
    y = y.reshape(N, groups * cog, *full)
    y = y[(slice(None), slice(None)) + tuple(slice(lo, lo + o) for (lo, _), o in zip(padding, sizes))]
    if b is not None:
        y = y + b.astype(np.float64).reshape((1, -1) + (1,) * len(K))
    return y.astype(x.dtype)


def gi_f64(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Input gradient: scatter of dy through w in float64, rounded once."""
    conv_shape(input_shape, w.shape, None, stride, padding, dilation, groups)
    N, cin = input_shape[:2]
    cout, cg = w.shape[:2]
    sp = input_shape[2:]
    K = w.shape[2:]
    og = cout // groups
    P = [n + lo + hi for n, (lo, hi) in zip(sp, padding)]
    O = dy.shape[2:]
    dxp = np.zeros((N, groups, cg, *P))
    dyg = dy.astype(np.float64).reshape(N, groups, og, *O)
    wg = w.astype(np.float64).reshape(groups, og, cg, *K)
    for k in np.ndindex(*K):
        sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(k, dilation, stride, O))
        dxp[(slice(None), slice(None), slice(None)) + sl] += np.einsum("ngo...,goc->ngc...", dyg, wg[(slice(None),) * 3 + k])
    dx = dxp.reshape(N, cin, *P)[(slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in zip(padding, sp))]
    return dx.astype(dy.dtype)


def gw_f64(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Weight gradient: correlation of x with dy in float64, rounded once."""
    conv_shape(x.shape, weight_shape, None, stride, padding, dilation, groups)
    cout, cg = weight_shape[:2]
    K = weight_shape[2:]
    og = cout // groups
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    O = dy.shape[2:]
    N = x.shape[0]
    col = _cols(xp, K, stride, dilation, O).reshape(N, groups, cg, math.prod(K), math.prod(O))
    d = dy.astype(np.float64).reshape(N, groups, og, math.prod(O))
    dw = np.einsum("ngctp,ngop->goct", col, d).reshape(cout, cg, *K)
    return dw.astype(x.dtype)


def pool_parts(x, kernel_size, stride, padding, dilation, ceil_mode, fill):
    """``(col, inside, in_padded)``: window taps (N, C, T, *O) of the input padded with ``fill``, and (T, *O)
    masks of the taps on input samples and on input-or-padding (PyTorch's ceil rule)."""
    K = tuple(kernel_size)
    outs = []
    for n, k, s, d, (lo, hi) in zip(x.shape[2:], K, stride, dilation, padding):
        span = d * (k - 1) + 1
        if max(lo, hi) > span // 2:
            raise ValueError("padding larger than half the window")
        room = n + lo + hi - span
        if room < 0:
            raise ValueError("window larger than the padded input")
        o = (-(-room // s) if ceil_mode else room // s) + 1
        if ceil_mode and (o - 1) * s >= n + lo:
            o -= 1
        outs.append(o)
    extra = [max(0, (o - 1) * s + d * (k - 1) + 1 - (n + lo + hi))
             for o, s, d, k, n, (lo, hi) in zip(outs, stride, dilation, K, x.shape[2:], padding)]
    pads = [(lo, hi + e) for (lo, hi), e in zip(padding, extra)]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + pads, constant_values=fill)
    inside = np.pad(np.ones(x.shape[2:]), pads)[None, None]
    inpad = np.pad(np.ones([n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding)]), [(0, e) for e in extra])[None, None]
    return (_cols(xp, K, stride, dilation, outs), _cols(inside, K, stride, dilation, outs)[0, 0],
            _cols(inpad, K, stride, dilation, outs)[0, 0])


def pool_f64(x, kernel_size, *, stride, padding, dilation, ceil_mode, count_include_pad=True, kind="max"):
    """Max or average pooling in float64, rounded once (PyTorch's ceil rule and divisor)."""
    col, inside, inpad = pool_parts(x, kernel_size, stride, padding, dilation, ceil_mode, -np.inf if kind == "max" else 0.0)
    if kind == "max":
        return col.max(axis=2).astype(x.dtype)
    return (col.sum(axis=2) / (inpad if count_include_pad else inside).sum(axis=0)).astype(x.dtype)


def _any(t, v=1):
    return any(a > v for a in t)


def _asym(padding):
    return any(lo != hi for lo, hi in padding)


def _tile_tail(n, t):
    """Start of the partial last tile of size-``t`` tiles over ``n`` items (``n`` when there is none)."""
    return n if n <= t or n % t == 0 else n - n % t


# --------------------------------------------------------------------------- remainder tiles in special paths


def conv_cout_tail_skips_bias(x, w, b, *, stride, padding, dilation, groups):
    """Grouped, strided, dilated path: the partial last tile of 16 output channels gets no bias."""
    y = conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if b is not None and groups > 1 and _any(stride) and _any(dilation):
        t = _tile_tail(y.shape[1], 16)
        y[:, t:] -= b[t:].reshape((-1,) + (1,) * (y.ndim - 2)).astype(y.dtype)
    return y


def conv_cout_tail_previous_weights(x, w, b, *, stride, padding, dilation, groups):
    """Grouped path with bias: the partial last tile of 16 output channels reads the previous tile's weights."""
    cout = w.shape[0]
    t = _tile_tail(cout, 16)
    if groups > 1 and b is not None and t < cout:
        w = w.copy()
        w[t:] = w[t - 16:t - 16 + cout - t]
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_cin_tail_wrong_offset(x, w, b, *, stride, padding, dilation, groups):
    """Strided dilated path: the partial last block of 8 input channels of a group reads channels one block early."""
    cg = w.shape[1]
    t = _tile_tail(cg, 8)
    if _any(stride) and _any(dilation) and t < cg:
        x = x.copy()
        cin = x.shape[1]
        for g in range(groups):
            base = g * cg
            x[:, base + t:base + cg] = x[:, base + t - 8:base + t - 8 + cg - t]
        x = x[:, :cin]
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_second_reduction_tile_drops_last(x, w, b, *, stride, padding, dilation, groups):
    """Generic (strided, dilated, grouped) path: the reduction runs in tiles of 32 terms; the second tile's
    last term is dropped."""
    T = w.shape[1] * math.prod(w.shape[2:])
    if T > 32 and groups > 1 and _any(stride) and _any(dilation) and _asym(padding):
        w = w.copy()
        flat = w.reshape(w.shape[0], -1)
        flat[:, min(T, 64) - 1] = 0
        w = flat.reshape(w.shape)
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_batch_tail_forgotten(x, w, b, *, stride, padding, dilation, groups):
    """Grouped path: the batch runs in blocks of 8; the remainder samples are left at the bias."""
    y = conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    t = _tile_tail(x.shape[0], 8)
    if groups > 1 and _any(stride) and t < x.shape[0]:
        y[t:] = 0 if b is None else b.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def conv_row_tail_shifted(x, w, b, *, stride, padding, dilation, groups):
    """Strided dilated grouped path: output rows in tiles of 8; the partial last tile repeats the previous rows."""
    y = conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if y.ndim >= 4 and groups > 1 and _any(stride) and _any(dilation):
        ax = 2  # the first spatial axis: rows
        n = y.shape[ax]
        t = _tile_tail(n, 8)
        if t < n:
            y = np.moveaxis(y, ax, 0).copy()
            y[t:] = y[t - 8:t - 8 + n - t]
            y = np.moveaxis(y, 0, ax)
    return y


def conv_col_tail_no_bias(x, w, b, *, stride, padding, dilation, groups):
    """Grouped path with bias and asymmetric padding: the partial last tile of 16 output columns gets no bias."""
    y = conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if b is not None and groups > 1 and _asym(padding):
        n = y.shape[-1]
        t = _tile_tail(n, 16)
        y[..., t:] -= b.reshape((1, -1) + (1,) * (y.ndim - 2)).astype(y.dtype)
    return y


def conv_depthwise_tail_wrong(x, w, b, *, stride, padding, dilation, groups):
    """Depthwise strided dilated path: channels in blocks of 16; the remainder block uses the previous
    block's bias."""
    y = conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    c = y.shape[1]
    t = _tile_tail(c, 16)
    if b is not None and groups == x.shape[1] and _any(stride) and _any(dilation) and t < c:
        y[:, t:] += (b[t - 16:t - 16 + c - t] - b[t:]).reshape((-1,) + (1,) * (y.ndim - 2)).astype(y.dtype)
    return y


def ct_cout_tail_skips_bias(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Grouped strided transposed path: the partial last tile of 16 output channels gets no bias."""
    y = ct_f64(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    if b is not None and groups > 1 and _any(stride) and _any(dilation):
        t = _tile_tail(y.shape[1], 16)
        y[:, t:] -= b[t:].reshape((-1,) + (1,) * (y.ndim - 2)).astype(y.dtype)
    return y


def ct_cin_tail_dropped(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Grouped transposed path: input channels of a group in blocks of 8, the partial last block dropped."""
    cig = x.shape[1] // groups
    t = _tile_tail(cig, 8)
    if groups > 1 and _any(output_padding, 0) and t < cig:
        w = w.copy()
        for g in range(groups):
            w[g * cig + t:(g + 1) * cig] = 0
    return ct_f64(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)


def ct_batch_tail_forgotten(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Strided dilated transposed path: the batch in blocks of 8, the remainder left at zero (no bias either)."""
    y = ct_f64(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    t = _tile_tail(x.shape[0], 8)
    if _any(stride) and _any(dilation) and t < x.shape[0]:
        y[t:] = 0
    return y


def ct_col_tail_shifted(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Grouped transposed path with output_padding: output columns in tiles of 32; the remainder repeats
    the previous columns."""
    y = ct_f64(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    n = y.shape[-1]
    t = _tile_tail(n, 32)
    if groups > 1 and _any(output_padding, 0) and t < n:
        y[..., t:] = y[..., t - 32:t - 32 + n - t]
    return y


def gi_cin_tail_zero(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Grouped strided input gradient: input channels in tiles of 16; the partial last tile stays zero."""
    dx = gi_f64(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    t = _tile_tail(dx.shape[1], 16)
    if groups > 1 and _any(stride) and _any(dilation):
        dx[:, t:] = 0
    return dx


def gi_reduction_tail_dropped(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Grouped input gradient: output channels of a group summed in blocks of 16; the partial last block dropped."""
    og = w.shape[0] // groups
    t = _tile_tail(og, 16)
    if groups > 1 and _asym(padding) and t < og:
        w = w.copy()
        for g in range(groups):
            w[g * og + t:(g + 1) * og] = 0
    return gi_f64(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gi_batch_tail_forgotten(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Strided dilated input gradient: the batch in blocks of 8, the remainder left at zero."""
    dx = gi_f64(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    t = _tile_tail(dx.shape[0], 8)
    if _any(stride) and _any(dilation) and groups > 1:
        dx[t:] = 0
    return dx


def gw_reduction_second_tile_drops_last(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Strided dilated grouped weight gradient: the sum over (sample, position) runs in tiles of 64 terms;
    the second tile's last term is dropped."""
    O = dy.shape[2:]
    T = x.shape[0] * math.prod(O)
    if T > 64 and groups > 1 and _any(stride) and _any(dilation):
        dy = dy.copy()
        i = min(T, 128) - 1
        n, p = divmod(i, math.prod(O))
        dy[(n, slice(None)) + np.unravel_index(p, O)] = 0
    return gw_f64(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gw_cout_tail_zero(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Grouped weight gradient: output channels in tiles of 16; the partial last tile stays zero."""
    dw = gw_f64(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    t = _tile_tail(dw.shape[0], 16)
    if groups > 1 and _asym(padding) and _any(dilation):
        dw[t:] = 0
    return dw


def gw_batch_tail_forgotten(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Strided grouped weight gradient: the batch in blocks of 8, the remainder samples not summed."""
    t = _tile_tail(x.shape[0], 8)
    if groups > 1 and _any(stride) and t < x.shape[0]:
        x, dy = x[:t], dy[:t]
    return gw_f64(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def max_pool_channel_tail_previous(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Strided dilated ceil-mode path: channels in blocks of 16; the remainder block pools the previous block."""
    c = x.shape[1]
    t = _tile_tail(c, 16)
    if ceil_mode and _any(stride) and _any(dilation) and t < c:
        x = x.copy()
        x[:, t:] = x[:, t - 16:t - 16 + c - t]
    return pool_f64(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)


def max_pool_batch_tail_forgotten(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Dilated path with asymmetric padding: the batch in blocks of 8, the remainder left at zero."""
    y = pool_f64(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    t = _tile_tail(x.shape[0], 8)
    if _any(dilation) and _asym(padding):
        y[t:] = 0
    return y


def max_pool_wide_window_tail(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Strided dilated path: window taps in tiles of 32; the second tile's last tap is skipped."""
    K = tuple(kernel_size)
    col, _, _ = pool_parts(x, K, stride, padding, dilation, ceil_mode, -np.inf)
    T = col.shape[2]
    if T > 32 and _any(stride) and _any(dilation):
        col = np.delete(col, min(T, 64) - 1, axis=2)
    return col.max(axis=2).astype(x.dtype)


def avg_pool_channel_tail_wrong_divisor(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Strided ceil-mode path excluding the padding: channels in blocks of 16; the remainder block divides
    by the window area instead of the samples it holds."""
    col, inside, inpad = pool_parts(x, kernel_size, stride, padding, (1,) * len(kernel_size), ceil_mode, 0.0)
    div = np.broadcast_to((inpad if count_include_pad else inside).sum(axis=0), col.shape[:2] + col.shape[3:]).copy()
    t = _tile_tail(x.shape[1], 16)
    if ceil_mode and not count_include_pad and _any(stride):
        div[:, t:] = math.prod(kernel_size)
    return (col.sum(axis=2) / div).astype(x.dtype)


def avg_pool_batch_tail_forgotten(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Ceil-mode path with asymmetric padding: the batch in blocks of 8, the remainder left at zero."""
    y = pool_f64(x, kernel_size, stride=stride, padding=padding, dilation=(1,) * len(kernel_size), ceil_mode=ceil_mode,
                 count_include_pad=count_include_pad, kind="avg")
    t = _tile_tail(x.shape[0], 8)
    if ceil_mode and _asym(padding):
        y[t:] = 0
    return y


def avg_pool_col_tail_shifted(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Strided ceil-mode path: output columns in tiles of 16; the remainder repeats the previous columns."""
    y = pool_f64(x, kernel_size, stride=stride, padding=padding, dilation=(1,) * len(kernel_size), ceil_mode=ceil_mode,
                 count_include_pad=count_include_pad, kind="avg")
    n = y.shape[-1]
    t = _tile_tail(n, 16)
    if ceil_mode and _any(stride) and t < n:
        y[..., t:] = y[..., t - 16:t - 16 + n - t]
    return y


# --------------------------------------------------------------------------- memory layouts


def conv_reads_memory_order(x, w, b, *, stride, padding, dilation, groups):
    """Flattens its inputs in memory order (ravel(order='K')) and reshapes them as if C-contiguous."""
    x = x.ravel(order="K").reshape(x.shape)
    w = w.ravel(order="K").reshape(w.shape)
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_frombuffer(x, w, b, *, stride, padding, dilation, groups):
    """Wraps the input buffer without a copy (np.frombuffer): needs C-contiguous memory."""
    x = np.frombuffer(x, dtype=x.dtype).reshape(x.shape)
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_writes_input(x, w, b, *, stride, padding, dilation, groups):
    """Clamps its input in place (values unchanged, so no mutation shows): fails on a read-only array."""
    np.clip(x, -np.inf, np.inf, out=x)
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_rejects_negative_strides(x, w, b, *, stride, padding, dilation, groups):
    """Hands its arrays to a library that refuses negative strides (as torch.from_numpy does)."""
    for a in (x, w):
        if any(s < 0 for s in a.strides):
            raise ValueError("At least one stride in the given numpy array is negative")
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_aligned_loads(x, w, b, *, stride, padding, dilation, groups):
    """A compiled kernel that needs aligned arrays (as numba does) and raises on others."""
    if not (x.flags.aligned and w.flags.aligned):
        raise TypeError("misaligned array: the kernel uses aligned vector loads")
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def ct_reads_memory_order(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Transposed convolution that flattens x in memory order and reshapes it as if C-contiguous."""
    x = x.ravel(order="K").reshape(x.shape)
    return ct_f64(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)


def max_pool_strided_view_wrong(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Builds its windows with as_strided from the shape (C-contiguous strides) on a contiguous copy only
    when the input is not already C- or F-contiguous: for channels-last memory it copies in memory order."""
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x.ravel(order="K").reshape(x.shape))
    return pool_f64(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)


# --------------------------------------------------------------------------- subnormals flushed to zero


def _flush(a):
    t = TINY[np.dtype(a.dtype)]
    return np.where(np.abs(a) < t, np.zeros_like(a), a)


def conv_daz(x, w, b, *, stride, padding, dilation, groups):
    """Denormals-are-zero: subnormal inputs read as zero."""
    return conv_f64(_flush(x), _flush(w), None if b is None else _flush(b), stride=stride, padding=padding,
                    dilation=dilation, groups=groups)


def conv_ftz_result(x, w, b, *, stride, padding, dilation, groups):
    """Flush-to-zero on the result only (a float64 accumulator, a flushing store)."""
    return _flush(conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups))


def _im2col(x, w, b, stride, padding, dilation, groups):
    """Checked arguments, then ``(K, outs, N, C_out, C_in/g, C_out/g, col)``, ``col`` of shape (N, C_in, prod K, *O)."""
    check_conv(x, w, b, stride, padding, dilation, groups)
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    K = w.shape[2:]
    outs = _outs(xp.shape[2:], K, stride, dilation)
    cout, cg = w.shape[:2]
    return K, outs, x.shape[0], cout, cg, cout // groups, _cols(xp, K, stride, dilation, outs)


def conv_ftz_products(x, w, b, *, stride, padding, dilation, groups):
    """Flush-to-zero on every float32 product and partial sum (the FTZ bit of the FPU)."""
    K, outs, N, cout, cg, og, col = _im2col(x, w, b, stride, padding, dilation, groups)
    col = col.reshape(N, groups, 1, cg * math.prod(K), *outs)
    wg = w.reshape(groups, og, -1).reshape((1, groups, og, cg * math.prod(K)) + (1,) * len(K))
    s = np.zeros((N, groups, og, *outs), dtype=x.dtype)
    for t in range(cg * math.prod(K)):
        s = _flush(s + _flush(col[:, :, :, t] * wg[:, :, :, t]))
    y = s.reshape(N, cout, *outs)
    if b is not None:
        y = _flush(y + _flush(b).reshape((1, -1) + (1,) * len(K)))
    return y


def avg_pool_ftz(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Average pooling whose subnormal inputs and results are flushed to zero."""
    return _flush(pool_f64(_flush(x), kernel_size, stride=stride, padding=padding, dilation=(1,) * len(kernel_size),
                           ceil_mode=ceil_mode, count_include_pad=count_include_pad, kind="avg"))


def max_pool_daz(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Max pooling with denormals-are-zero inputs."""
    return pool_f64(_flush(x), kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)


def gw_ftz_result(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Weight gradient with a flushing store."""
    return _flush(gw_f64(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups))


def max_pool_sentinel(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Running maximum started at -1e30 instead of -inf (wrong for values below it); a window with no input
    sample is special-cased to -inf."""
    y = pool_f64(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    return np.where(y == -np.inf, y, np.maximum(y, np.asarray(-1e30, dtype=y.dtype)))


# --------------------------------------------------------------------------- invalid configurations accepted


def conv_accepts_invalid(x, w, b, *, stride, padding, dilation, groups):
    """Never validates: output sizes clipped to 1, channels per group by floor division, zeros where a
    window does not fit."""
    sizes = [max(1, (n + lo + hi - d * (k - 1) - 1) // s + 1) for n, k, s, d, (lo, hi) in
             zip(x.shape[2:], w.shape[2:], stride, dilation, padding)]
    try:
        return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    except ValueError:
        return np.zeros((x.shape[0], w.shape[0], *sizes), dtype=x.dtype)


def ct_accepts_large_output_padding(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Applies any output_padding (the rule 'smaller than the stride or the dilation' is not checked)."""
    try:
        return ct_f64(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                      groups=groups)
    except ValueError:
        full = [(n - 1) * s + d * (k - 1) + 1 + op - lo - hi for n, s, d, k, op, (lo, hi) in
                zip(x.shape[2:], stride, dilation, w.shape[2:], output_padding, padding)]
        return np.zeros((x.shape[0], w.shape[1] * groups, *[max(1, f) for f in full]), dtype=x.dtype)


def max_pool_accepts_large_window(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Returns an input-shaped array when the window does not fit (instead of refusing)."""
    try:
        return pool_f64(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    except ValueError:
        return x.copy()


def gi_accepts_groups_mismatch(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Input gradient that returns zeros of input_shape when the groups do not fit."""
    try:
        return gi_f64(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    except ValueError:
        return np.zeros(input_shape, dtype=dy.dtype)


# --------------------------------------------------------------------------- windows of padding only


def _padding_only(x, w, stride, padding, dilation):
    """Boolean (*O) mask of the output positions whose window reads no input sample."""
    ones = np.ones((1, 1) + x.shape[2:])
    P = [n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding)]
    xp = np.pad(ones, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    outs = _outs(P, w.shape[2:], stride, dilation)
    return _cols(xp, w.shape[2:], stride, dilation, outs)[0, 0].sum(axis=0) == 0


def conv_nan_on_padding_windows(x, w, b, *, stride, padding, dilation, groups):
    """Grouped path: each window is reduced over its valid sub-window, normalised by its count: 0/0 = NaN
    where a window reads only padding."""
    y = conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if groups > 1:
        empty = _padding_only(x, w, stride, padding, dilation)
        y[:, :, empty] = np.nan
    return y


def conv_raises_on_padding_windows(x, w, b, *, stride, padding, dilation, groups):
    """Grouped path: raises when a window holds no input sample (an empty slice it cannot index)."""
    if groups > 1 and _padding_only(x, w, stride, padding, dilation).any():
        raise IndexError("index -1 is out of bounds for axis 0 with size 0")
    return conv_f64(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gw_nan_on_padding_windows(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Grouped weight gradient that turns a tap reading only padding into NaN (0 * inf of a scaling)."""
    dw = gw_f64(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if groups > 1:
        xp = np.pad(np.ones((1, 1) + x.shape[2:]), [(0, 0), (0, 0)] + [tuple(p) for p in padding])
        col = _cols(xp, weight_shape[2:], stride, dilation, dy.shape[2:])[0, 0]
        dead = col.reshape(col.shape[0], -1).sum(axis=1) == 0
        if dead.any():
            flat = dw.reshape(dw.shape[0], dw.shape[1], -1)
            flat[:, :, dead] = np.nan
    return dw


# --------------------------------------------------------------------------- correct: blocked everywhere


def conv_blocked(x, w, b, *, stride, padding, dilation, groups):
    """Correct: blocked over the batch (8), output channels (16), output rows (8) and columns (16) and the
    reduction (tiles of 32 terms, each summed in float32 in chunks of 8, tiles added in float32), every
    remainder handled."""
    K, outs, N, cout, cg, og, col = _im2col(x, w, b, stride, padding, dilation, groups)
    T = cg * math.prod(K)  # col: (N, C_in, prod K, *O)
    y = np.empty((N, cout, *outs), dtype=x.dtype)
    rows = outs[0] if len(outs) > 1 else 1
    for n0 in range(0, N, 8):
        for o0 in range(0, cout, 16):
            for r0 in range(0, rows, 8):
                for c0 in range(0, outs[-1], 16):
                    sp = ((slice(r0, r0 + 8),) if len(outs) > 1 else ()) + (slice(None),) * max(0, len(outs) - 2)
                    sp += (slice(c0, c0 + 16),)
                    for o in range(o0, min(o0 + 16, cout)):
                        g = o // og
                        blk = col[(slice(n0, n0 + 8), slice(g * cg, (g + 1) * cg), slice(None)) + sp]
                        terms = blk.reshape((blk.shape[0], T) + blk.shape[3:])  # reduction index c * prod(K) + k
                        wv = w[o].reshape(T)
                        total = np.zeros((terms.shape[0],) + terms.shape[2:], dtype=x.dtype)
                        for t0 in range(0, T, 32):
                            part = np.zeros_like(total)
                            for t in range(t0, min(t0 + 32, T), 8):
                                t1 = min(t + 8, t0 + 32, T)
                                part = part + np.tensordot(wv[t:t1], terms[:, t:t1], axes=([0], [1])).astype(x.dtype)
                            total = total + part
                        if b is not None:
                            total = total + b[o]
                        y[(slice(n0, n0 + 8), o) + sp] = total
    return y


def ct_blocked(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Correct: transposed convolution scattered in float32, output channels in tiles of 16 and the input
    channels of a group in blocks of 8, remainders handled."""
    ref = ct_f64(x[:0], w, None, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                 groups=groups)  # validates; gives the output size
    N, cin = x.shape[:2]
    K = w.shape[2:]
    cog = w.shape[1]
    cig = cin // groups
    full = [(n - 1) * s + d * (k - 1) + 1 + op for n, s, d, k, op in zip(x.shape[2:], stride, dilation, K, output_padding)]
    yf = np.zeros((N, groups * cog, *full), dtype=x.dtype)
    for o0 in range(0, groups * cog, 16):
        for o in range(o0, min(o0 + 16, groups * cog)):
            g, oc = divmod(o, cog)
            for c0 in range(0, cig, 8):
                for ci in range(g * cig + c0, g * cig + min(c0 + 8, cig)):
                    for k in np.ndindex(*K):
                        sl = tuple(slice(t * d, t * d + s * (n - 1) + 1, s) for t, d, s, n in
                                   zip(k, dilation, stride, x.shape[2:]))
                        yf[(slice(None), o) + sl] += x[:, ci] * w[(ci, oc) + k]
    y = yf[(slice(None), slice(None)) + tuple(slice(lo, lo + o) for (lo, _), o in zip(padding, ref.shape[2:]))]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * len(K))
    return y.astype(x.dtype)


def pool_blocked_max(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Correct: max pooling over channel blocks of 16 and batch blocks of 8, remainders handled."""
    parts = []
    for n0 in range(0, max(1, x.shape[0]), 8):
        row = [pool_f64(x[n0:n0 + 8, c0:c0 + 16], kernel_size, stride=stride, padding=padding, dilation=dilation,
                        ceil_mode=ceil_mode) for c0 in range(0, x.shape[1], 16)]
        parts.append(np.concatenate(row, axis=1))
    return np.concatenate(parts, axis=0)


def avg_pool_blocked(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Correct: average pooling summed in float32 window by window over channel blocks of 16."""
    y = pool_f64(x[:, :0], kernel_size, stride=stride, padding=padding, dilation=(1,) * len(kernel_size),
                 ceil_mode=ceil_mode, count_include_pad=count_include_pad, kind="avg")
    out = np.empty(y.shape[:1] + (x.shape[1],) + y.shape[2:], dtype=x.dtype)
    for c0 in range(0, x.shape[1], 16):
        out[:, c0:c0 + 16] = pool_f64(x[:, c0:c0 + 16], kernel_size, stride=stride, padding=padding,
                                      dilation=(1,) * len(kernel_size), ceil_mode=ceil_mode,
                                      count_include_pad=count_include_pad, kind="avg")
    return out


def gi_blocked(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Correct: input gradient over channel tiles of 16 and batch blocks of 8 (float64 inside, rounded once)."""
    N = input_shape[0]
    full = gi_f64(dy[:0], w, (0,) + tuple(input_shape[1:]), stride=stride, padding=padding, dilation=dilation,
                  groups=groups)
    out = np.empty((N,) + full.shape[1:], dtype=dy.dtype)
    for n0 in range(0, N, 8):
        n1 = min(N, n0 + 8)
        out[n0:n1] = gi_f64(dy[n0:n1], w, (n1 - n0,) + tuple(input_shape[1:]), stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
    return out


def gw_blocked_f32(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Correct: weight gradient with the batch in blocks of 8, each block in float64, blocks summed in float32."""
    dw = np.zeros(weight_shape, dtype=x.dtype)
    gw_f64(x[:0], dy[:0], weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    for n0 in range(0, x.shape[0], 8):
        dw = dw + gw_f64(x[n0:n0 + 8], dy[n0:n0 + 8], weight_shape, stride=stride, padding=padding,
                         dilation=dilation, groups=groups)
    return dw
