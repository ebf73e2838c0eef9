"""More realistic implementations: bugs a kernel author or a framework porter makes, and correct
variants that sum in unusual orders.  Plain numpy, no refconv.

Every function has the canonical signature of its op (refconv/conformance/ops.py).  The
building blocks (`windows`, `conv_ref`, ...) are correct; each bug is one planted deviation.
"""

from __future__ import annotations

import math

import numpy as np


# --------------------------------------------------------------------------- correct building blocks


def out_sizes(P, K, stride, dilation):
    return [(p - d * (k - 1) - 1) // s + 1 for p, k, s, d in zip(P, K, stride, dilation)]


def windows(xp, K, stride, dilation, outs):
    """(N, C, prod K, *O): the taps of every window, tap order row-major over K."""
    cols = []
    for k in np.ndindex(*K):
        sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(k, dilation, stride, outs))
        cols.append(xp[(slice(None), slice(None)) + sl])
    return np.stack(cols, axis=2)


def conv_ref(x, w, b, *, stride, padding, dilation, groups, acc=np.float64):
    """y = b + sum_{c,k} xp[g*cg + c, p*s + k*d] w[o, c, k], products and sums in ``acc``, rounded once."""
    dt = x.dtype
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding]).astype(acc)
    K = w.shape[2:]
    outs = out_sizes(xp.shape[2:], K, stride, dilation)
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    og = cout // groups
    col = windows(xp, K, stride, dilation, outs).reshape(N, groups, cg * math.prod(K), *outs)
    wg = w.astype(acc).reshape(groups, og, cg * math.prod(K))
    y = np.einsum("ngt...,got->ngo...", col, wg).reshape(N, cout, *outs)
    if b is not None:
        y = y + b.astype(acc).reshape((1, -1) + (1,) * len(K))
    return y.astype(dt)


def zero_insert(x, a):
    """(a - 1) zeros between samples on every spatial axis."""
    if all(ai == 1 for ai in a):
        return x
    shp = list(x.shape[:2]) + [(n - 1) * ai + 1 for n, ai in zip(x.shape[2:], a)]
    out = np.zeros(shp, dtype=x.dtype)
    out[(slice(None), slice(None)) + tuple(slice(None, None, ai) for ai in a)] = x
    return out


def transposed_weight(w, groups):
    """(C_in, C_out/g, *K) -> (C_out, C_in/g, *K) flipped: the forward weight of the transposed op."""
    cin, cog = w.shape[:2]
    K = w.shape[2:]
    cig = cin // groups
    wt = w.reshape(groups, cig, cog, *K).swapaxes(1, 2).reshape(groups * cog, cig, *K)
    return wt[(slice(None), slice(None)) + (slice(None, None, -1),) * len(K)]


def conv_transpose_ref(x, w, b, *, stride, padding, output_padding, dilation, groups, acc=np.float64, wt_fn=transposed_weight):
    """Transposed conv as a conv of the zero-inserted input with the flipped, transposed kernel."""
    K = w.shape[2:]
    xz = zero_insert(x, stride)
    pads = [(d * (k - 1) - lo, d * (k - 1) - hi + op) for (lo, hi), k, d, op in zip(padding, K, dilation, output_padding)]
    # positive padding pads, negative padding crops the padded array
    xz = np.pad(xz, [(0, 0), (0, 0)] + [(max(0, lo), max(0, hi)) for lo, hi in pads])
    crop = tuple(slice(max(0, -lo), xz.shape[2 + i] - max(0, -hi)) for i, (lo, hi) in enumerate(pads))
    xz = xz[(slice(None), slice(None)) + crop]
    return conv_ref(xz, wt_fn(w, groups), b, stride=(1,) * len(K), padding=[(0, 0)] * len(K), dilation=dilation,
                    groups=groups, acc=acc)


def pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode, fill):
    """(N, C, prod K, *O) windows and the mask of taps inside the padded input (PyTorch ceil rule)."""
    K = tuple(kernel_size)
    outs = []
    for n, k, s, (lo, hi), d in zip(x.shape[2:], K, stride, padding, dilation):
        span = n + lo + hi - d * (k - 1) - 1
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + lo:
            o -= 1
        outs.append(o)
    # pad generously on the right so ceil windows fit, then mark what is real input / padding
    extra = [max(0, (o - 1) * s + d * (k - 1) + 1 - (n + lo + hi)) for o, s, d, k, n, (lo, hi) in
             zip(outs, stride, dilation, K, x.shape[2:], padding)]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(lo, hi + e) for (lo, hi), e in zip(padding, extra)], constant_values=fill)
    inside = np.pad(np.ones(x.shape[2:]), [(lo, hi + e) for (lo, hi), e in zip(padding, extra)])
    inpad = np.pad(np.ones([n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding)]), [(0, e) for e in extra])
    col = windows(xp, K, stride, dilation, outs)
    m_in = windows(inside[None, None], K, stride, dilation, outs)[0, 0]
    m_pad = windows(inpad[None, None], K, stride, dilation, outs)[0, 0]
    return col, m_in, m_pad, outs


def max_pool_ref(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    col, m_in, _, _ = pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode, -np.inf)
    col = np.where(m_in > 0, col, -np.inf)
    return col.max(axis=2).astype(x.dtype)


def avg_pool_ref(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad, acc=np.float64):
    d = (1,) * len(kernel_size)
    col, m_in, m_pad, _ = pool_windows(x.astype(acc), kernel_size, stride, padding, d, ceil_mode, 0.0)
    div = (m_pad if count_include_pad else m_in).sum(axis=0)
    return (col.sum(axis=2) / div).astype(x.dtype)


def grad_input_ref(dy, w, input_shape, *, stride, padding, dilation, groups, acc=np.float64):
    """Scatter of dy through w in ``acc``, then crop the padding."""
    N, cin = input_shape[:2]
    sp = input_shape[2:]
    K = w.shape[2:]
    cout, cg = w.shape[:2]
    og = cout // groups
    P = [n + lo + hi for n, (lo, hi) in zip(sp, padding)]
    dxp = np.zeros((N, cin, *P), dtype=acc)
    O = dy.shape[2:]
    d64, w64 = dy.astype(acc), w.astype(acc)
    for g in range(groups):
        for k in np.ndindex(*K):
            sl = tuple(slice(t * dd, t * dd + s * (oo - 1) + 1, s) for t, dd, s, oo in zip(k, dilation, stride, O))
            contrib = np.einsum("no...,oc->nc...", d64[:, g * og:(g + 1) * og], w64[(slice(g * og, (g + 1) * og), slice(None)) + k])
            dxp[(slice(None), slice(g * cg, (g + 1) * cg)) + sl] += contrib
    keep = tuple(slice(lo, lo + n) for (lo, _), n in zip(padding, sp))
    return dxp[(slice(None), slice(None)) + keep].astype(dy.dtype)


def grad_weight_ref(x, dy, weight_shape, *, stride, padding, dilation, groups, acc=np.float64):
    cout, cg = weight_shape[:2]
    K = weight_shape[2:]
    og = cout // groups
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding]).astype(acc)
    O = dy.shape[2:]
    col = windows(xp, K, stride, dilation, O)  # (N, C_in, T, *O)
    N = x.shape[0]
    col = col.reshape(N, groups, cg, math.prod(K), math.prod(O))
    d = dy.astype(acc).reshape(N, groups, og, math.prod(O))
    dw = np.einsum("ngctp,ngop->goct", col, d)
    return dw.reshape(weight_shape).astype(x.dtype)


# --------------------------------------------------------------------------- conv bugs


def conv_offbyone_when_divisible(x, w, b, *, stride, padding, dilation, groups):
    """Output size (P - span) // s, one short when (P - span) is a multiple of s > 1."""
    y = conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    sl = []
    for i, (n, (lo, hi), k, s, d) in enumerate(zip(x.shape[2:], padding, w.shape[2:], stride, dilation)):
        r = n + lo + hi - d * (k - 1) - 1
        sl.append(slice(0, y.shape[2 + i] - 1 if (s > 1 and r % s == 0 and y.shape[2 + i] > 1) else None))
    return y[(slice(None), slice(None)) + tuple(sl)]


def conv_bias_axis_when_cout_eq_h(x, w, b, *, stride, padding, dilation, groups):
    """`y + b[:, None]`: right only by luck; when C_out equals the output height it broadcasts along H."""
    y = conv_ref(x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if b is None:
        return y
    if y.ndim >= 4 and y.shape[-2] == b.shape[0] and y.shape[1] != 1:
        return y + b[:, None].astype(y.dtype)
    return y + b.reshape((1, -1) + (1,) * (y.ndim - 2))


def conv_padding_scaled_by_dilation(x, w, b, *, stride, padding, dilation, groups):
    """Padding applied to the dilated grid (lo*d, hi*d)."""
    pads = [(lo * d, hi * d) for (lo, hi), d in zip(padding, dilation)]
    return conv_ref(x, w, b, stride=stride, padding=pads, dilation=dilation, groups=groups)


def conv_dilation_on_input(x, w, b, *, stride, padding, dilation, groups):
    """Dilation implemented as zeros inserted in the input (lhs dilation) instead of the kernel."""
    xz = zero_insert(x, dilation)
    return conv_ref(xz, w, b, stride=stride, padding=padding, dilation=(1,) * len(dilation), groups=groups)


def conv_stride_dilation_swapped(x, w, b, *, stride, padding, dilation, groups):
    return conv_ref(x, w, b, stride=dilation, padding=padding, dilation=stride, groups=groups)


def conv_axes_params_reversed(x, w, b, *, stride, padding, dilation, groups):
    """Per-axis parameters read in (W, H, D) order."""
    return conv_ref(x, w, b, stride=tuple(stride)[::-1], padding=tuple(padding)[::-1], dilation=tuple(dilation)[::-1], groups=groups)


def conv_drops_last_odd_channel(x, w, b, *, stride, padding, dilation, groups):
    """Channels summed two at a time; an odd last channel is dropped."""
    cg = w.shape[1]
    w2 = w.copy()
    if cg % 2 and cg > 1:
        w2[:, -1] = 0
    return conv_ref(x, w2, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _sequential(x, w, b, *, stride, padding, dilation, groups, acc, step=None):
    """Taps outer, channels inner, one accumulator per output in ``acc``; ``step(s, p)`` is one multiply-add."""
    dt = x.dtype
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    K = w.shape[2:]
    outs = out_sizes(xp.shape[2:], K, stride, dilation)
    N = x.shape[0]
    cout, cg = w.shape[:2]
    og = cout // groups
    T = cg * math.prod(K)
    col = windows(xp, K, stride, dilation, outs).reshape(N, groups, 1, T, *outs)
    wg = w.reshape(groups, og, T).reshape((1, groups, og, T) + (1,) * len(K))
    s = np.zeros((N, groups, og, *outs), dtype=acc)
    for t in range(T):
        if step is None:
            s = (s + (col[:, :, :, t] * wg[:, :, :, t]).astype(acc)).astype(acc)
        else:
            s = step(s, col[:, :, :, t].astype(np.float64) * wg[:, :, :, t].astype(np.float64))
    y = s.reshape(N, cout, *outs).astype(dt)
    if b is not None:
        y = (y + b.reshape((1, -1) + (1,) * len(K))).astype(dt)
    return y


def conv_f16_acc_long(x, w, b, *, stride, padding, dilation, groups):
    """Accumulates in float16 once the reduction is longer than 64 terms."""
    n = w.shape[1] * math.prod(w.shape[2:])
    if n <= 64:
        return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _sequential(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, acc=np.float16)


def _fma_rz(dt):
    """fl(s + p) rounded toward zero in ``dt`` (p exact in float64): an FMA in round-toward-zero mode."""
    def step(s, p):
        e = s.astype(np.float64) + p
        r = e.astype(dt)
        away = np.abs(r.astype(np.float64)) > np.abs(e)
        return np.where(away, np.nextafter(r, np.zeros((), dt)), r).astype(dt)
    return step


def conv_truncating_sum(x, w, b, *, stride, padding, dilation, groups):
    """Each multiply-add rounded toward zero (an FMA in RZ mode) instead of to nearest."""
    return _sequential(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, acc=x.dtype,
                       step=_fma_rz(x.dtype))


def conv_batch_chunk_overlap(x, w, b, *, stride, padding, dilation, groups):
    """Batch in chunks of 4; a partial last chunk is computed as the last 4 samples but stored at its own offset."""
    N = x.shape[0]
    if N <= 4:
        return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    parts = []
    for s in range(0, N, 4):
        lo = s if s + 4 <= N else N - 4
        parts.append(conv_ref(x[lo:lo + 4], w, b, stride=stride, padding=padding, dilation=dilation, groups=groups))
    return np.concatenate(parts)[:N]


def conv_wrong_when_batch_gt1(x, w, b, *, stride, padding, dilation, groups):
    """Bias added once per batch element into a shared buffer: sample n gets (n + 1) biases."""
    y = conv_ref(x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if b is None:
        return y
    acc = np.zeros_like(y[0])
    out = np.empty_like(y)
    for n in range(y.shape[0]):
        acc = acc + b.reshape((-1,) + (1,) * (y.ndim - 2))
        out[n] = y[n] + acc
    return out


def conv_output_f16_f64(x, w, b, *, stride, padding, dilation, groups):
    y = conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return y.astype(np.float16).astype(x.dtype)


def conv_bf16_output(x, w, b, *, stride, padding, dilation, groups):
    """Result stored through a bfloat16 buffer (8 significant bits)."""
    y = conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    m, e = np.frexp(y)
    return np.ldexp(np.rint(np.ldexp(m, 8)), e - 8).astype(x.dtype)


def conv_groups_weight_not_sliced(x, w, b, *, stride, padding, dilation, groups):
    """Every group uses the weights of group 0."""
    og = w.shape[0] // groups
    w2 = np.concatenate([w[:og]] * groups)
    return conv_ref(x, w2, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_wrong_for_many_channels(x, w, b, *, stride, padding, dilation, groups):
    """A path for more than 8 output channels that writes channel 8 into slot 0 and back (blocks swapped)."""
    y = conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if y.shape[1] > 8:
        y[:, [0, 8]] = y[:, [8, 0]]
    return y


def conv_size_gt16_tile_offset(x, w, b, *, stride, padding, dilation, groups):
    """Inputs wider than 16 go through a tiled path whose second tile starts one sample late."""
    if x.shape[-1] <= 16:
        return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    xs = np.concatenate([x[..., 1:], np.zeros_like(x[..., :1])], axis=-1)
    y2 = conv_ref(xs, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y[..., 16:] = y2[..., 16:]
    return y


def conv_alias_inplace_1x1(x, w, b, *, stride, padding, dilation, groups):
    """Square 1x1 layers computed in place in one buffer: later channels read already overwritten inputs."""
    if all(k == 1 for k in w.shape[2:]) and all(s == 1 for s in stride) and all(tuple(p) == (0, 0) for p in padding) \
            and groups == 1 and w.shape[0] == w.shape[1]:
        out = x.copy()
        for o in range(w.shape[0]):
            out[:, o] = np.einsum("c,nc...->n...", w[o].reshape(-1), out)
        if b is not None:
            out += b.reshape((1, -1) + (1,) * (x.ndim - 2))
        return out
    return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_same_lower_as_upper(x, w, b, *, stride, padding, dilation, groups):
    """Odd total padding always split with the extra zero at the end (loses the caller's lo/hi split)."""
    pads = [((lo + hi) // 2, lo + hi - (lo + hi) // 2) for lo, hi in padding]
    return conv_ref(x, w, b, stride=stride, padding=pads, dilation=dilation, groups=groups)


def conv_float32_partials_f64(x, w, b, *, stride, padding, dilation, groups):
    """float64 inputs, but channel-block partial sums kept in float32."""
    dt = x.dtype
    cg = w.shape[1]
    y = None
    for c0 in range(0, cg, 2):
        sub_w = np.zeros_like(w)
        sub_w[:, c0:c0 + 2] = w[:, c0:c0 + 2]
        part = conv_ref(x, sub_w, None, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(np.float32)
        y = part if y is None else (y + part).astype(np.float32)
    y = y.astype(dt)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * (x.ndim - 2))
    return y


# --------------------------------------------------------------------------- conv correct variants


def conv_column_major_gemm(x, w, b, *, stride, padding, dilation, groups):
    """im2col, reduction index column-major (taps outer, channels inner), float32 sequential sums."""
    dt = x.dtype
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    K = w.shape[2:]
    outs = out_sizes(xp.shape[2:], K, stride, dilation)
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    og = cout // groups
    col = windows(xp, K, stride, dilation, outs)  # (N, C, T, *O)
    y = np.zeros((N, cout, *outs), dtype=dt)
    for o in range(cout):
        g = o // og
        s = np.zeros((N, *outs), dtype=dt)
        for t in range(col.shape[2]):
            for c in range(cg):
                s = (s + col[:, g * cg + c, t] * w[o, c].reshape(-1)[t]).astype(dt)
        y[:, o] = s
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * len(K))
    return y


def conv_tree(x, w, b, *, stride, padding, dilation, groups):
    """Products in dt, then a tree reduction (np.add.reduce over a padded power of two)."""
    dt = x.dtype
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    K = w.shape[2:]
    outs = out_sizes(xp.shape[2:], K, stride, dilation)
    N = x.shape[0]
    cout, cg = w.shape[:2]
    og = cout // groups
    T = cg * math.prod(K)
    col = windows(xp, K, stride, dilation, outs).reshape(N, groups, 1, T, *outs)
    wg = w.reshape(groups, og, T).reshape((1, groups, og, T) + (1,) * len(K))
    prods = (col * wg).astype(dt)  # (N, G, og, T, *O)
    if b is not None:
        bb = np.broadcast_to(b.reshape(groups, og).reshape((1, groups, og, 1) + (1,) * len(K)), prods.shape[:3] + (1,) + prods.shape[4:])
        prods = np.concatenate([bb.astype(dt), prods], axis=3)
    L = prods.shape[3]
    p2 = 1 << max(0, (L - 1).bit_length())
    pad = [(0, 0)] * prods.ndim
    pad[3] = (0, p2 - L)
    prods = np.pad(prods, pad)
    while prods.shape[3] > 1:
        prods = (prods[:, :, :, 0::2] + prods[:, :, :, 1::2]).astype(dt)
    return prods[:, :, :, 0].reshape(N, cout, *outs)


def _winograd_f23_1d(d, g):
    """F(2, 3): two outputs of a 3-tap correlation from four inputs, in the arrays' dtype."""
    m1 = (d[0] - d[2]) * g[0]
    m2 = (d[1] + d[2]) * (g[0] + g[1] + g[2]) / 2
    m3 = (d[2] - d[1]) * (g[0] - g[1] + g[2]) / 2
    m4 = (d[1] - d[3]) * g[2]
    return m1 + m2 + m3, m2 - m3 - m4


def conv_winograd_f64(x, w, b, *, stride, padding, dilation, groups):
    """1-D stride-1 3-tap layers by Winograd F(2,3) in float64, rounded once; others direct in float64."""
    if x.ndim != 3 or w.shape[2] != 3 or stride[0] != 1 or dilation[0] != 1:
        return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    xp = np.pad(x, [(0, 0), (0, 0), tuple(padding[0])]).astype(np.float64)
    O = xp.shape[2] - 2
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    og = cout // groups
    tiles = -(-O // 2)
    xq = np.pad(xp, [(0, 0), (0, 0), (0, tiles * 2 + 2 - xp.shape[2])])
    y = np.zeros((N, cout, tiles * 2))
    w64 = w.astype(np.float64)
    for o in range(cout):
        g = o // og
        for c in range(cg):
            ch = xq[:, g * cg + c]
            d = [ch[:, i:i + 2 * tiles:2] for i in range(4)]
            a, bb = _winograd_f23_1d(d, w64[o, c])
            y[:, o, 0::2] += a
            y[:, o, 1::2] += bb
    y = y[:, :, :O]
    if b is not None:
        y = y + b.astype(np.float64)[None, :, None]
    return y.astype(x.dtype)


def conv_channel_blocks_f32(x, w, b, *, stride, padding, dilation, groups):
    """Channels in blocks of 4: each block summed in float64 and rounded, blocks summed in float32."""
    cg = w.shape[1]
    y = None
    for c0 in range(0, cg, 4):
        wb = np.zeros_like(w)
        wb[:, c0:c0 + 4] = w[:, c0:c0 + 4]
        part = conv_ref(x, wb, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
        y = part if y is None else (y + part).astype(x.dtype)
    if b is not None:
        y = (y + b.reshape((1, -1) + (1,) * (x.ndim - 2))).astype(x.dtype)
    return y


def conv_fma_chain(x, w, b, *, stride, padding, dilation, groups):
    """acc = fl(acc + x*w) with the product exact (FMA): float64 products, one rounding to dt per step, bias last."""
    dt = x.dtype
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    K = w.shape[2:]
    outs = out_sizes(xp.shape[2:], K, stride, dilation)
    N = x.shape[0]
    cout, cg = w.shape[:2]
    og = cout // groups
    T = cg * math.prod(K)
    col = windows(xp, K, stride, dilation, outs).reshape(N, groups, 1, T, *outs)
    wg = w.reshape(groups, og, T).reshape((1, groups, og, T) + (1,) * len(K))
    acc = np.zeros((N, groups, og, *outs), dtype=dt)
    for t in reversed(range(T)):
        acc = (acc.astype(np.float64) + col[:, :, :, t].astype(np.float64) * wg[:, :, :, t].astype(np.float64)).astype(dt)
    y = acc.reshape(N, cout, *outs)
    if b is not None:
        y = (y + b.reshape((1, -1) + (1,) * len(K))).astype(dt)
    return y


def conv_batch_chunks(x, w, b, *, stride, padding, dilation, groups):
    """Batch in chunks of 2, each by im2col + matmul in float32."""
    if x.shape[0] == 0:
        return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return np.concatenate([conv_ref(x[i:i + 2], w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,
                                    acc=x.dtype) for i in range(0, x.shape[0], 2)])


def conv_nhwc(x, w, b, *, stride, padding, dilation, groups):
    """Channels-last internally: (N, *S, C) windows times (T*C, C_out) per group, sums in dt."""
    dt = x.dtype
    xl = np.moveaxis(x, 1, -1)
    xp = np.pad(xl, [(0, 0)] + [tuple(p) for p in padding] + [(0, 0)])
    K = w.shape[2:]
    outs = out_sizes(xp.shape[1:-1], K, stride, dilation)
    N = x.shape[0]
    cout, cg = w.shape[:2]
    og = cout // groups
    y = np.empty((N, *outs, cout), dtype=dt)
    for g in range(groups):
        acc = np.zeros((N, *outs, og), dtype=dt)
        for k in np.ndindex(*K):
            sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(k, dilation, stride, outs))
            xs = xp[(slice(None),) + sl + (slice(g * cg, (g + 1) * cg),)]
            wk = w[(slice(g * og, (g + 1) * og), slice(None)) + k].T  # (cg, og)
            acc = (acc + xs @ wk).astype(dt)
        y[..., g * og:(g + 1) * og] = acc
    if b is not None:
        y = (y + b).astype(dt)
    return np.moveaxis(y, -1, 1)


def conv_einsum_f32(x, w, b, *, stride, padding, dilation, groups):
    return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, acc=x.dtype)


# --------------------------------------------------------------------------- conv_transpose


def ct_ref(x, w, b, *, stride, padding, output_padding, dilation, groups):
    return conv_transpose_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)


def ct_gather_f32(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Correct: zero-insert then a direct conv in float32."""
    return conv_transpose_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                              groups=groups, acc=x.dtype)


def ct_weight_no_group_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """(C_in, C_out/g) -> (C_out, C_in/g) by a plain reshape-and-swap that ignores groups."""
    def wt(w, groups):
        cin, cog = w.shape[:2]
        K = w.shape[2:]
        t = np.swapaxes(w, 0, 1).reshape(cog * groups, cin // groups, *K) if groups > 1 else np.swapaxes(w, 0, 1)
        return t[(slice(None), slice(None)) + (slice(None, None, -1),) * len(K)]
    return conv_transpose_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                              groups=groups, wt_fn=wt)


def ct_op_both_sides(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """output_padding split over both sides: the extra rows appear at the start when op >= 1."""
    y = ct_ref(x, w, b, stride=stride, padding=padding, output_padding=(0,) * len(stride), dilation=dilation, groups=groups)
    pads = [(op // 2 + op % 2 if False else op - op // 2, op // 2) if op else (0, 0) for op in output_padding]
    # the rows the output_padding adds are computed, not zeros: compute the full op output and shift
    full = ct_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    if not any(output_padding):
        return full
    sl = []
    for i, _pad in enumerate(pads):
        sl.append(slice(0, y.shape[2 + i]))
    out = np.zeros_like(full)
    inner = tuple(slice(lo_, lo_ + y.shape[2 + i]) for i, (lo_, _) in enumerate(pads))
    out[(slice(None), slice(None)) + inner] = y
    return out


def ct_dilation_ignored_in_size(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Scatter uses the dilation, the output size forgets it: the tail is cut (or zero)."""
    y = ct_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    sizes = [(n - 1) * s + k - lo - hi + op for n, s, k, (lo, hi), op in
             zip(x.shape[2:], stride, w.shape[2:], padding, output_padding)]
    return y[(slice(None), slice(None)) + tuple(slice(0, max(1, m)) for m in sizes)]


def ct_bias_per_input_channel(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Bias indexed by the input channel g*cig + oc instead of the output channel."""
    y = ct_ref(x, w, None, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    if b is None:
        return y
    cin = x.shape[1]
    idx = [min(o, cin - 1) for o in range(y.shape[1])]
    return y + b[idx].reshape((1, -1) + (1,) * len(stride))


def ct_pad_as_conv_padding(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Crop computed as d*(k-1) - p with k - 1 instead of d*(k - 1) (dilation forgotten in the crop)."""
    K = w.shape[2:]
    y = ct_ref(x, w, b, stride=stride, padding=[(0, 0)] * len(K), output_padding=output_padding, dilation=dilation, groups=groups)
    sl = []
    for i, ((lo, hi), k, d) in enumerate(zip(padding, K, dilation)):
        m = y.shape[2 + i] - lo - hi
        start = lo + (d - 1) * (k - 1) // 2 if d > 1 else lo
        start = min(start, y.shape[2 + i] - m)
        sl.append(slice(start, start + m))
    return y[(slice(None), slice(None)) + tuple(sl)]


def ct_f16_acc(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Accumulates in float16 when more than 32 products meet (long reductions only)."""
    n = x.shape[1] // groups * math.prod(w.shape[2:])
    if n <= 32:
        return ct_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    return conv_transpose_ref(x.astype(np.float16), w.astype(np.float16), None if b is None else b.astype(np.float16),
                              stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                              groups=groups, acc=np.float16).astype(x.dtype)


def ct_stride_phase_wrong(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Zeros inserted before each sample instead of after (input shifted by s - 1)."""
    y = ct_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    out = np.zeros_like(y) if b is None else np.broadcast_to(b.reshape((1, -1) + (1,) * len(stride)), y.shape).astype(y.dtype).copy()
    sl_src, sl_dst = [], []
    for i, s in enumerate(stride):
        sh = s - 1
        n = y.shape[2 + i]
        sl_src.append(slice(0, n - sh))
        sl_dst.append(slice(sh, n))
    out[(slice(None), slice(None)) + tuple(sl_dst)] = y[(slice(None), slice(None)) + tuple(sl_src)]
    return out


# --------------------------------------------------------------------------- max_pool


def max_pool_zero_init(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """m = 0; m = max(m, v): windows of negative numbers give 0."""
    return np.maximum(max_pool_ref(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode), 0).astype(x.dtype)


def max_pool_drop_partial(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """ceil_mode windows that run past the padded input are dropped (the floor size)."""
    return max_pool_ref(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=False) if ceil_mode else \
        max_pool_ref(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=False)


def max_pool_dilation_size_only(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Windows dilated, output size computed without the dilation (extra windows read -inf, cut to 0)."""
    y = max_pool_ref(x, kernel_size, stride=stride, padding=padding, dilation=(1,) * len(kernel_size), ceil_mode=ceil_mode)
    yd = max_pool_ref(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    out = np.full(y.shape, -np.inf, dtype=x.dtype)
    sl = tuple(slice(0, min(a, c)) for a, c in zip(y.shape[2:], yd.shape[2:]))
    out[(slice(None), slice(None)) + sl] = yd[(slice(None), slice(None)) + sl]
    return out


def max_pool_edge_clamp(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Out-of-range taps clamped to the edge sample (replicate padding): wrong for windows entirely outside."""
    col, _, _, outs = pool_windows(np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding], mode="edge"), kernel_size,
                                   stride, [(0, 0)] * len(kernel_size), dilation, False, -np.inf)
    # the clamp is exact for windows overlapping the input; the size follows the caller's rule
    y = max_pool_ref(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    ye = col.max(axis=2)
    sl = tuple(slice(0, min(a, c)) for a, c in zip(y.shape[2:], ye.shape[2:]))
    y = y.copy()
    y[(slice(None), slice(None)) + sl] = ye[(slice(None), slice(None)) + sl]
    return y.astype(x.dtype)


def max_pool_axes_reversed(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    return max_pool_ref(x, tuple(kernel_size)[::-1], stride=tuple(stride)[::-1], padding=tuple(padding)[::-1],
                        dilation=tuple(dilation)[::-1], ceil_mode=ceil_mode)


def max_pool_nan_as_value(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Correct: sliding windows then np.max (NaN propagation not exercised by the main check)."""
    return max_pool_ref(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)


def max_pool_loops(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Correct: explicit loops, running max initialised with the first real tap."""
    col, m_in, _, outs = pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode, -np.inf)
    y = np.full(col.shape[:2] + tuple(outs), -np.inf, dtype=x.dtype)
    for t in range(col.shape[2]):
        y = np.where(m_in[t] > 0, np.maximum(y, col[:, :, t]), y)
    return y.astype(x.dtype)


# --------------------------------------------------------------------------- avg_pool


def avg_pool_cip_ignored_with_ceil(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    return avg_pool_ref(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                        count_include_pad=True if ceil_mode else count_include_pad)


def avg_pool_divisor_hi_pad_forgotten(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """count_include_pad counts lo padding but not hi padding."""
    d = (1,) * len(kernel_size)
    col, m_in, m_pad, _ = pool_windows(x.astype(np.float64), kernel_size, stride, padding, d, ceil_mode, 0.0)
    if count_include_pad:
        pads_lo = [(lo, 0) for lo, hi in padding]
        # taps inside the input or in the lo padding
        ones = np.ones(x.shape[2:])
        m = np.pad(ones, pads_lo)
        m[tuple(slice(0, lo) for lo, _ in padding)] = 1
        lo_only = np.pad(np.pad(np.ones(x.shape[2:]), [(lo, 0) for lo, _ in padding]),
                         [(0, hi + 50) for _, hi in padding])
        mm = windows(lo_only[None, None], tuple(kernel_size), stride, d, col.shape[3:])[0, 0]
        div = mm.sum(axis=0)
    else:
        div = m_in.sum(axis=0)
    return (col.sum(axis=2) / div).astype(x.dtype)


def avg_pool_f32_mean(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Correct: np.sum in the input dtype (pairwise), then divide in the input dtype."""
    d = (1,) * len(kernel_size)
    col, m_in, m_pad, _ = pool_windows(x, kernel_size, stride, padding, d, ceil_mode, 0.0)
    div = (m_pad if count_include_pad else m_in).sum(axis=0).astype(x.dtype)
    return (col.sum(axis=2, dtype=x.dtype) / div).astype(x.dtype)


def avg_pool_separable(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Correct: sums one axis at a time in the input dtype (separable box filter), then divide."""
    d = (1,) * len(kernel_size)
    col, m_in, m_pad, outs = pool_windows(x, kernel_size, stride, padding, d, ceil_mode, 0.0)
    K = tuple(kernel_size)
    c = col.reshape(col.shape[:2] + K + tuple(outs))
    for ax in reversed(range(len(K))):
        acc = np.zeros(c.shape[:2 + ax] + c.shape[3 + ax:], dtype=x.dtype)
        for i in range(K[ax]):
            acc = (acc + np.take(c, i, axis=2 + ax)).astype(x.dtype)
        c = acc
    div = (m_pad if count_include_pad else m_in).sum(axis=0).astype(x.dtype)
    return (c / div).astype(x.dtype)


def avg_pool_f16_sum(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Window sums in float16 when the window has more than 8 taps."""
    if math.prod(kernel_size) <= 8:
        return avg_pool_ref(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    d = (1,) * len(kernel_size)
    col, m_in, m_pad, _ = pool_windows(x.astype(np.float16), kernel_size, stride, padding, d, ceil_mode, 0.0)
    s = np.zeros(col.shape[:2] + col.shape[3:], dtype=np.float16)
    for t in range(col.shape[2]):
        s = (s + col[:, :, t]).astype(np.float16)
    div = (m_pad if count_include_pad else m_in).sum(axis=0)
    return (s.astype(x.dtype) / div).astype(x.dtype)


def avg_pool_axes_reversed(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    return avg_pool_ref(x, tuple(kernel_size)[::-1], stride=tuple(stride)[::-1], padding=tuple(padding)[::-1],
                        ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def avg_pool_divisor_excludes_ceil_overhang_wrong(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """count_include_pad=True divisor counts the ceil overhang beyond the padding as well."""
    if not count_include_pad:
        return avg_pool_ref(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=False)
    d = (1,) * len(kernel_size)
    col, m_in, m_pad, _ = pool_windows(x.astype(np.float64), kernel_size, stride, padding, d, ceil_mode, 0.0)
    return (col.sum(axis=2) / math.prod(kernel_size)).astype(x.dtype) if ceil_mode else \
        avg_pool_ref(x, kernel_size, stride=stride, padding=padding, ceil_mode=False, count_include_pad=True)


# --------------------------------------------------------------------------- conv_grad_input


def gi_ref(dy, w, input_shape, *, stride, padding, dilation, groups):
    return grad_input_ref(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gi_missing_last_output_row(dy, w, input_shape, *, stride, padding, dilation, groups):
    """The scatter loop stops one output row early (range(O - 1)) on the first spatial axis."""
    if dy.shape[2] <= 1:
        return gi_ref(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    d2 = dy.copy()
    d2[:, :, -1] = 0
    return gi_ref(d2, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gi_via_transpose_pad_at_start(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Transposed conv of dy, then the unread tail zero-filled at the start instead of the end."""
    sp = input_shape[2:]
    K = w.shape[2:]
    full = conv_transpose_ref(dy, w, None, stride=stride, padding=[(0, 0)] * len(K), output_padding=(0,) * len(K),
                              dilation=dilation, groups=groups)
    # full covers padded rows [0, (O-1)s + span); the padded input has n + lo + hi rows
    out = full
    for i, (n, (lo, hi)) in enumerate(zip(sp, padding)):
        Pn = n + lo + hi
        miss = Pn - out.shape[2 + i]
        if miss > 0:
            pad = [(0, 0)] * out.ndim
            pad[2 + i] = (miss, 0)
            out = np.pad(out, pad)
    keep = tuple(slice(lo, lo + n) for (lo, _), n in zip(padding, sp))
    return out[(slice(None), slice(None)) + keep]


def gi_via_transpose(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Correct: transposed conv of dy (float32 gather), unread tail zero-filled at the end, then crop."""
    sp = input_shape[2:]
    K = w.shape[2:]
    full = conv_transpose_ref(dy, w, None, stride=stride, padding=[(0, 0)] * len(K), output_padding=(0,) * len(K),
                              dilation=dilation, groups=groups, acc=dy.dtype)
    out = full
    for i, (n, (lo, hi)) in enumerate(zip(sp, padding)):
        miss = n + lo + hi - out.shape[2 + i]
        if miss > 0:
            pad = [(0, 0)] * out.ndim
            pad[2 + i] = (0, miss)
            out = np.pad(out, pad)
    keep = tuple(slice(lo, lo + n) for (lo, _), n in zip(padding, sp))
    return out[(slice(None), slice(None)) + keep]


def gi_dilation_ignored(dy, w, input_shape, *, stride, padding, dilation, groups):
    sp = input_shape[2:]
    K = w.shape[2:]
    # a dilated kernel scattered as if undilated, then the padded length forced to fit
    P = [n + lo + hi for n, (lo, hi) in zip(sp, padding)]
    dxp = np.zeros((input_shape[0], input_shape[1], *P), dtype=np.float64)
    cout, cg = w.shape[:2]
    og = cout // groups
    O = dy.shape[2:]
    for o in range(cout):
        g = o // og
        for c in range(cg):
            for k in np.ndindex(*K):
                sl = tuple(slice(t, t + s * (oo - 1) + 1, s) for t, s, oo in zip(k, stride, O))
                dxp[(slice(None), g * cg + c) + sl] += dy[:, o].astype(np.float64) * w[(o, c) + k]
    keep = tuple(slice(lo, lo + n) for (lo, _), n in zip(padding, sp))
    return dxp[(slice(None), slice(None)) + keep].astype(dy.dtype)


def gi_groups_wrong(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Each group's gradient written to the input channels of group 0 onward interleaved."""
    y = gi_ref(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    cin = y.shape[1]
    cg = cin // groups
    perm = [(c % cg) * groups + c // cg for c in range(cin)]
    out = np.empty_like(y)
    out[:, perm] = y
    return out


def gi_f16_acc(dy, w, input_shape, *, stride, padding, dilation, groups):
    return grad_input_ref(dy.astype(np.float16), w.astype(np.float16), input_shape, stride=stride, padding=padding,
                          dilation=dilation, groups=groups, acc=np.float16).astype(dy.dtype)


def gi_f32_for_f64(dy, w, input_shape, *, stride, padding, dilation, groups):
    return grad_input_ref(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                          acc=np.float32).astype(dy.dtype)


def gi_scatter_f32(dy, w, input_shape, *, stride, padding, dilation, groups):
    """Correct: scatter-add in the input dtype, groups outer, taps inner."""
    return grad_input_ref(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, acc=dy.dtype)


def gi_crop_swapped(dy, w, input_shape, *, stride, padding, dilation, groups):
    sp = input_shape[2:]
    K = w.shape[2:]
    P = [n + lo + hi for n, (lo, hi) in zip(sp, padding)]
    g = grad_input_ref(dy, w, (input_shape[0], input_shape[1], *P), stride=stride, padding=[(0, 0)] * len(K),
                       dilation=dilation, groups=groups)
    keep = tuple(slice(hi, hi + n) for (_, hi), n in zip(padding, sp))
    return g[(slice(None), slice(None)) + keep]


# --------------------------------------------------------------------------- conv_grad_weight


def gw_ref(x, dy, weight_shape, *, stride, padding, dilation, groups):
    return grad_weight_ref(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gw_mean_over_batch(x, dy, weight_shape, *, stride, padding, dilation, groups):
    dw = gw_ref(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (dw / max(1, x.shape[0])).astype(x.dtype)


def gw_batch_f16(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Per-sample gradients summed over the batch in float16."""
    out = np.zeros(weight_shape, dtype=np.float16)
    for n in range(x.shape[0]):
        out = (out + gw_ref(x[n:n + 1], dy[n:n + 1], weight_shape, stride=stride, padding=padding, dilation=dilation,
                            groups=groups).astype(np.float16)).astype(np.float16)
    return out.astype(x.dtype)


def gw_groups_offset(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Group g reads input channels starting at g*cg of the wrong block (channels of group 0 for every group)."""
    cg = weight_shape[1]
    x2 = np.concatenate([x[:, :cg]] * groups, axis=1)
    return gw_ref(x2, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gw_hi_padding_ignored(x, dy, weight_shape, *, stride, padding, dilation, groups):
    pads = [(lo, 0) for lo, hi in padding]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(0, hi) for _, hi in padding])
    xp[(slice(None), slice(None)) + tuple(slice(xp.shape[2 + i] - hi, None) if hi else slice(0, 0)
                                          for i, (_, hi) in enumerate(padding))] = 0
    # the hi padding is present but filled with the last sample (stale buffer edge)
    xe = np.pad(x, [(0, 0), (0, 0)] + [(0, hi) for _, hi in padding], mode="edge") if x.size else xp
    return gw_ref(xe, dy, weight_shape, stride=stride, padding=pads, dilation=dilation, groups=groups)


def gw_last_output_col_dropped(x, dy, weight_shape, *, stride, padding, dilation, groups):
    d2 = dy.copy()
    if d2.shape[-1] > 1:
        d2[..., -1] = 0
    return gw_ref(x, d2, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gw_f32_for_f64(x, dy, weight_shape, *, stride, padding, dilation, groups):
    return grad_weight_ref(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                           acc=np.float32).astype(x.dtype)


def gw_batch_chunks_f32(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Correct: per-sample gradients in float64, rounded, summed over the batch in the input dtype."""
    out = np.zeros(weight_shape, dtype=x.dtype)
    for n in range(x.shape[0]):
        out = (out + gw_ref(x[n:n + 1], dy[n:n + 1], weight_shape, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)).astype(x.dtype)
    return out


def gw_einsum_dt(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Correct: one einsum in the input dtype."""
    return grad_weight_ref(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, acc=x.dtype)


def gw_via_conv_swapped(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Correct: dw = corr(x, dy) with stride and dilation exchanged, one group at a time, sequential float sums."""
    cout, cg = weight_shape[:2]
    K = weight_shape[2:]
    og = cout // groups
    dt = x.dtype
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    O = dy.shape[2:]
    dw = np.zeros(weight_shape, dtype=dt)
    for k in np.ndindex(*K):
        sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(k, dilation, stride, O))
        xs = xp[(slice(None), slice(None)) + sl]  # (N, C_in, *O)
        for g in range(groups):
            a = xs[:, g * cg:(g + 1) * cg].reshape(x.shape[0], cg, math.prod(O))
            bdy = dy[:, g * og:(g + 1) * og].reshape(x.shape[0], og, math.prod(O))
            acc = np.zeros((og, cg), dtype=dt)
            for n in range(x.shape[0]):
                acc = (acc + bdy[n] @ a[n].T).astype(dt)
            dw[(slice(g * og, (g + 1) * og), slice(None)) + k] = acc
    return dw


# --------------------------------------------------------------------------- remainder and size-dependent paths


def max_pool_channel_blocks(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Channels in SIMD blocks of 8; the remainder block reuses the previous block's channels."""
    y = max_pool_ref(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    C = y.shape[1]
    if C > 8 and C % 8:
        r = C % 8
        y[:, C - r:] = y[:, C - r - 8:C - 8]
    return y


def avg_pool_batch_chunks(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Batch in chunks of 4; a partial last chunk is computed as the last 4 samples at its own offset."""
    N = x.shape[0]
    f = lambda a: avg_pool_ref(a, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,  # noqa: E731
                               count_include_pad=count_include_pad)
    if N <= 4:
        return f(x)
    parts = [f(x[s:s + 4] if s + 4 <= N else x[N - 4:]) for s in range(0, N, 4)]
    return np.concatenate(parts)[:N]


def avg_pool_cip_ignored_asymmetric(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """count_include_pad honoured only for symmetric padding (the asymmetric path is a separate kernel)."""
    asym = any(lo != hi for lo, hi in padding)
    return avg_pool_ref(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad if not asym else not count_include_pad)


def ct_many_channels(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """More than 8 output channels: the remainder block of 8 is left as bias only."""
    y = ct_ref(x, w, None, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    C = y.shape[1]
    if C > 8 and C % 8:
        y[:, C - C % 8:] = 0
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * len(stride))
    return y


def ct_batch_chunks(x, w, b, *, stride, padding, output_padding, dilation, groups):
    N = x.shape[0]
    f = lambda a: ct_ref(a, w, b, stride=stride, padding=padding, output_padding=output_padding,  # noqa: E731
                         dilation=dilation, groups=groups)
    if N <= 4:
        return f(x)
    parts = [f(x[s:s + 4] if s + 4 <= N else x[N - 4:]) for s in range(0, N, 4)]
    return np.concatenate(parts)[:N]


def ct_axes_reversed(x, w, b, *, stride, padding, output_padding, dilation, groups):
    return ct_ref(x, w, b, stride=stride, padding=padding, output_padding=tuple(output_padding)[::-1], dilation=dilation,
                  groups=groups)


def ct_wide_tile(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Outputs wider than 16 on the last axis: columns from 16 on computed one input sample late."""
    y = ct_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    if y.shape[-1] > 16:
        y[..., 16:] = np.roll(y, 1, axis=-1)[..., 16:]
    return y


def conv_stride_times_dilation(x, w, b, *, stride, padding, dilation, groups):
    """When stride and dilation are both > 1 the window start is (p*s)*d (output size right, taps wrong)."""
    if not any(s > 1 and d > 1 for s, d in zip(stride, dilation)):
        return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    extra = [(s * d - s) * (o - 1) + 1 if s > 1 and d > 1 else 0 for s, d, o in zip(stride, dilation, y.shape[2:])]
    y2 = conv_ref(np.pad(x, [(0, 0), (0, 0)] + [(0, e) for e in extra]), w, b,
                  stride=tuple(s * d if s > 1 and d > 1 else s for s, d in zip(stride, dilation)), padding=padding,
                  dilation=dilation, groups=groups)
    return y2[(slice(None), slice(None)) + tuple(slice(0, n) for n in y.shape[2:])]


def gi_batch_chunks(dy, w, input_shape, *, stride, padding, dilation, groups):
    N = dy.shape[0]
    f = lambda d: gi_ref(d, w, (d.shape[0],) + tuple(input_shape[1:]), stride=stride, padding=padding,  # noqa: E731
                         dilation=dilation, groups=groups)
    if N <= 4:
        return f(dy)
    parts = [f(dy[s:s + 4] if s + 4 <= N else dy[N - 4:]) for s in range(0, N, 4)]
    return np.concatenate(parts)[:N]


def gw_wide_tile(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Output rows wider than 16: dy columns from 16 on skipped (a tile loop bound of W // 16 * 16)."""
    d2 = dy.copy()
    if d2.shape[-1] > 16:
        d2[..., (d2.shape[-1] // 16) * 16:] = 0
    return gw_ref(x, d2, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


# --------------------------------------------------------------------------- round two


def conv_asym_via_symmetric_crop(x, w, b, *, stride, padding, dilation, groups):
    """Asymmetric padding as symmetric max(lo, hi) padding, then the output cropped by (max - lo) // stride."""
    m = [max(lo, hi) for lo, hi in padding]
    y = conv_ref(x, w, b, stride=stride, padding=[(v, v) for v in m], dilation=dilation, groups=groups)
    ref = conv_ref(x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
    sl = tuple(slice((v - lo) // s, (v - lo) // s + n) for v, (lo, _), s, n in zip(m, padding, stride, ref.shape[2:]))
    return y[(slice(None), slice(None)) + sl]


def conv_f64_bias_as_f32(x, w, b, *, stride, padding, dilation, groups):
    """float64 convolution whose bias goes through a float32 buffer."""
    return conv_ref(x, w, None if b is None else b.astype(np.float32).astype(x.dtype), stride=stride, padding=padding,
                    dilation=dilation, groups=groups)


def ct_output_padding_rows_bias_only(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """The rows output_padding adds are filled with the bias instead of the computed values."""
    y = ct_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    fill = 0.0 if b is None else b.reshape((1, -1) + (1,) * len(stride))
    for i, op in enumerate(output_padding):
        if op:
            idx = [slice(None)] * y.ndim
            idx[2 + i] = slice(y.shape[2 + i] - op, None)
            y[tuple(idx)] = np.broadcast_to(fill, y[tuple(idx)].shape) if b is not None else 0
    return y


def avg_pool_ceil_divisor_clips_to_input(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """count_include_pad=True: windows that overhang the padded input are clipped to the input, not to n + hi."""
    d = (1,) * len(kernel_size)
    col, m_in, m_pad, outs = pool_windows(x.astype(np.float64), kernel_size, stride, padding, d, ceil_mode, 0.0)
    if not count_include_pad:
        return (col.sum(axis=2) / m_in.sum(axis=0)).astype(x.dtype)
    # a window that runs past n + hi counts only what lies in [-lo, n)
    div = m_pad.sum(axis=0)
    overhang = (m_pad.sum(axis=0) < math.prod(kernel_size))
    clipped = np.zeros_like(div)
    for t in range(m_pad.shape[0]):
        clipped += m_pad[t]
    lo_in = np.pad(np.ones(x.shape[2:]), [(lo, 0) for lo, _ in padding])
    lo_in = np.pad(lo_in, [(0, 64)] * len(kernel_size))
    m_lo = windows(lo_in[None, None], tuple(kernel_size), stride, d, outs)[0, 0].sum(axis=0)
    pads_hi = any(hi for _, hi in padding)
    div = np.where(overhang & pads_hi & bool(ceil_mode), m_lo, div)
    return (col.sum(axis=2) / div).astype(x.dtype)


def conv_kblocked_gemm(x, w, b, *, stride, padding, dilation, groups):
    """Correct: im2col GEMM with the reduction in blocks of 16 (float32 block sums, blocks added in float32)."""
    dt = x.dtype
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    K = w.shape[2:]
    outs = out_sizes(xp.shape[2:], K, stride, dilation)
    N = x.shape[0]
    cout, cg = w.shape[:2]
    og = cout // groups
    T = cg * math.prod(K)
    col = windows(xp, K, stride, dilation, outs).reshape(N, groups, T, math.prod(outs))
    wg = w.reshape(groups, og, T)
    y = np.zeros((N, groups, og, math.prod(outs)), dtype=dt)
    for k0 in range(0, T, 16):
        y = (y + np.matmul(wg[None, :, :, k0:k0 + 16], col[:, :, k0:k0 + 16])).astype(dt)
    y = y.reshape(N, cout, *outs)
    if b is not None:
        y = (y + b.reshape((1, -1) + (1,) * len(K))).astype(dt)
    return y


def avg_pool_as_conv(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    """Correct: window sums of x*(1/K) in the input dtype, then rescaled by K/count for the border windows."""
    dt = x.dtype
    d = (1,) * len(kernel_size)
    K = math.prod(kernel_size)
    col, m_in, m_pad, _ = pool_windows(x, kernel_size, stride, padding, d, ceil_mode, 0.0)
    inv = dt.type(1) / dt.type(K)
    s = np.zeros(col.shape[:2] + col.shape[3:], dtype=dt)
    for t in range(col.shape[2]):
        s = (s + col[:, :, t] * inv).astype(dt)
    cnt = (m_pad if count_include_pad else m_in).sum(axis=0)
    scale = np.where(cnt == K, dt.type(1), (dt.type(K) / cnt.astype(dt)).astype(dt)).astype(dt)
    return (s * scale).astype(dt)


def max_pool_separable(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    """Correct: max over the window one axis at a time (max is exact in any order)."""
    col, m_in, _, outs = pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode, -np.inf)
    col = np.where(m_in > 0, col, -np.inf)
    c = col.reshape(col.shape[:2] + tuple(kernel_size) + tuple(outs))
    for _ in kernel_size:
        c = c.max(axis=2)
    return c.astype(x.dtype)


def gw_im2col_matmul(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Correct: dW_g = dY_g (og, N*P) @ col_g(N*P, cg*K)^T with BLAS in the input dtype."""
    cout, cg = weight_shape[:2]
    K = weight_shape[2:]
    og = cout // groups
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    O = dy.shape[2:]
    N = x.shape[0]
    col = windows(xp, K, stride, dilation, O).reshape(N, groups, cg * math.prod(K), math.prod(O))
    col = col.transpose(1, 2, 0, 3).reshape(groups, cg * math.prod(K), N * math.prod(O))
    d = dy.reshape(N, groups, og, math.prod(O)).transpose(1, 2, 0, 3).reshape(groups, og, N * math.prod(O))
    dw = np.matmul(d, col.transpose(0, 2, 1))
    return dw.reshape(weight_shape).astype(x.dtype)


def ct_scatter_bias_first(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Correct: output initialised with the bias, then every product scattered in the input dtype (reverse taps)."""
    dt = x.dtype
    N, cin = x.shape[:2]
    K = w.shape[2:]
    cog = w.shape[1]
    cout = cog * groups
    cig = cin // groups
    full = [(n - 1) * s + d * (k - 1) + 1 + op for n, s, d, k, op in zip(x.shape[2:], stride, dilation, K, output_padding)]
    y = np.zeros((N, cout, *full), dtype=dt)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(K)).astype(dt)
    for k in reversed(list(np.ndindex(*K))):
        sl = tuple(slice(t * d, t * d + s * (n - 1) + 1, s) for t, d, s, n in zip(k, dilation, stride, x.shape[2:]))
        for g in range(groups):
            contrib = np.einsum("nc...,co->no...", x[:, g * cig:(g + 1) * cig], w[(slice(g * cig, (g + 1) * cig), slice(None)) + k])
            y[(slice(None), slice(g * cog, (g + 1) * cog)) + sl] = (y[(slice(None), slice(g * cog, (g + 1) * cog)) + sl] + contrib).astype(dt)
    crop = tuple(slice(lo, f - hi) for (lo, hi), f in zip(padding, full))
    return y[(slice(None), slice(None)) + crop]


def conv_strided_3x3_row_tiles(x, w, b, *, stride, padding, dilation, groups):
    """A 3x3 / stride 2 / padding 1 fast path in row tiles of 16 outputs whose later tiles start one input row late."""
    y = conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if w.shape[2:] == (3, 3) and tuple(stride) == (2, 2) and all(tuple(p) == (1, 1) for p in padding) and y.shape[2] > 16:
        xs = np.concatenate([x[:, :, 1:], np.zeros_like(x[:, :, :1])], axis=2)
        y2 = conv_ref(xs, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        y[:, :, 16:] = y2[:, :, 16:]
    return y


def _round_bits(a, p):
    m, e = np.frexp(a)
    return np.ldexp(np.rint(np.ldexp(m, p)), e - p).astype(a.dtype)


def conv_tf32_long(x, w, b, *, stride, padding, dilation, groups):
    """Reductions over 256 terms take a TF32 path (inputs rounded to 11 significant bits), claimed float32."""
    if w.shape[1] * math.prod(w.shape[2:]) > 256:
        x, w = _round_bits(x, 11), _round_bits(w, 11)
    return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def ct_bf16_long(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Transposed convolutions with over 256 terms per output run on bfloat16 inputs."""
    if x.shape[1] // groups * math.prod(w.shape[2:]) > 256:
        x, w = _round_bits(x, 8), _round_bits(w, 8)
    return ct_ref(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)


def gi_tf32_long(dy, w, input_shape, *, stride, padding, dilation, groups):
    if w.shape[0] // groups * math.prod(w.shape[2:]) > 256:
        dy, w = _round_bits(dy, 11), _round_bits(w, 11)
    return gi_ref(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gw_tf32_large(x, dy, weight_shape, *, stride, padding, dilation, groups):
    """Weight gradients of layers with more than 256 input channels x taps on a TF32 path."""
    if weight_shape[1] * math.prod(weight_shape[2:]) > 256:
        x, dy = _round_bits(x, 11), _round_bits(dy, 11)
    return gw_ref(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_depthwise_blocks_of_8(x, w, b, *, stride, padding, dilation, groups):
    """A depthwise path (groups == C_in) vectorised over channel blocks of 8 that drops the remainder block."""
    y = conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    C = y.shape[1]
    if groups == x.shape[1] and groups > 1 and C > 8 and C % 8:
        y[:, C - C % 8:] = 0 if b is None else b[C - C % 8:].reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def conv_many_groups_wrong(x, w, b, *, stride, padding, dilation, groups):
    """More than 8 groups: group g >= 8 reads the input channels of group g - 8."""
    if groups <= 8:
        return conv_ref(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    cg = x.shape[1] // groups
    idx = np.concatenate([np.arange(g * cg, (g + 1) * cg) if g < 8 else np.arange((g - 8) * cg, (g - 7) * cg)
                          for g in range(groups)])
    return conv_ref(x[:, idx], w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def gi_depthwise_blocks_of_8(dy, w, input_shape, *, stride, padding, dilation, groups):
    y = gi_ref(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    C = y.shape[1]
    if groups == C and groups > 1 and C > 8 and C % 8:
        y[:, C - C % 8:] = 0
    return y


def ct_depthwise_blocks_of_8(x, w, b, *, stride, padding, output_padding, dilation, groups):
    y = ct_ref(x, w, None, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    C = y.shape[1]
    if groups == x.shape[1] and groups > 1 and C > 8 and C % 8:
        y[:, C - C % 8:] = 0
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * len(stride))
    return y


def ct_bias_only_where_scattered(x, w, b, *, stride, padding, output_padding, dilation, groups):
    """Bias added inside the scatter loop: output positions no kernel tap reaches (stride > span) keep 0."""
    y = ct_ref(x, w, None, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    if b is None:
        return y
    ones = np.ones((1, x.shape[1]) + x.shape[2:], dtype=np.float64)
    reach = ct_ref(ones, np.ones_like(w, dtype=np.float64), None, stride=stride, padding=padding,
                   output_padding=output_padding, dilation=dilation, groups=groups)
    return (y + np.where(reach[:1] > 0, b.reshape((1, -1) + (1,) * len(stride)), 0)).astype(x.dtype)
