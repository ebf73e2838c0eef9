"""Configurable plain-numpy implementations for the conformance self-test.

Each function is a straightforward implementation of one canonical op with
knobs that plant one realistic bug (or change only the summation order /
accumulation format, which must stay within the bound).  Nothing here uses
refconv: these stand in for the code under test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

F16 = np.float16


def round_bits(a, p):
    """Round to p significant bits, ties to even (bfloat16: 8, tf32: 11)."""
    a = np.asarray(a)
    m, e = np.frexp(a)
    return np.ldexp(np.rint(np.ldexp(m, p)), e - p).astype(a.dtype)


def _accumulate(terms, dtype, order, acc):
    """Sum a list of same-shape arrays in the given order and format."""
    if order == "reverse":
        terms = terms[::-1]
    elif order == "shuffle":
        idx = np.random.default_rng(1234).permutation(len(terms))
        terms = [terms[i] for i in idx]
    if order == "pairwise":
        while len(terms) > 1:
            nxt = [(terms[i] + terms[i + 1]).astype(acc) for i in range(0, len(terms) - 1, 2)]
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = nxt
        return terms[0] if terms else None
    if order == "kahan":
        s = np.zeros_like(terms[0], dtype=acc)
        comp = np.zeros_like(s)
        for t in terms:
            yk = (t - comp).astype(acc)
            tk = (s + yk).astype(acc)
            comp = ((tk - s) - yk).astype(acc)
            s = tk
        return s
    if order == "blocked":
        blocks = [terms[i:i + 3] for i in range(0, len(terms), 3)]
        parts = []
        for blk in blocks:
            s = blk[0].astype(acc)
            for t in blk[1:]:
                s = (s + t).astype(acc)
            parts.append(s)
        return _accumulate(parts, dtype, "forward", acc)
    if order == "fma":
        # product exact in float64, one rounding per multiply-add into the accumulator
        s = np.zeros_like(terms[0], dtype=acc)
        for t in terms:
            s = (s.astype(np.float64) + t.astype(np.float64)).astype(acc)
        return s
    s = None
    for t in terms:
        s = t.astype(acc) if s is None else (s + t.astype(acc)).astype(acc)
    return s


def conv(x, w, b, *, stride, padding, dilation, groups, flip=False, pad_fn=None, phase=None, dil_off=0, out_map="block",
         in_map="block", bias_mode="normal", acc=None, order="taps", round_inputs=None, size_fn=None, products_f64=False):
    dt = x.dtype
    acc = acc or dt
    if round_inputs:
        x, w = round_inputs(x), round_inputs(w)
        b = None if b is None else round_inputs(b)
    d_ = len(stride)
    pads = [tuple(p) for p in padding]
    if pad_fn:
        pads = [pad_fn(lo, hi) for lo, hi in pads]
    dil = [d + dil_off for d in dilation]
    # a shifted stride phase reads past the end: those samples are zeros, as in a kernel reading stale padding
    xp = np.pad(x, [(0, 0), (0, 0)] + [(lo, hi + (phase[i] if phase else 0)) for i, (lo, hi) in enumerate(pads)])
    K = w.shape[2:]
    spans = [dd * (k - 1) + 1 for dd, k in zip(dil, K)]
    outs = [(P - sp - (phase[i] if phase else 0)) // s + 1 for i, (P, sp, s) in enumerate(zip(xp.shape[2:], spans, stride))]
    if size_fn:
        outs = [size_fn(P, sp, s) for P, sp, s in zip(xp.shape[2:], spans, stride)]
    ph = tuple(min(p, s - 1) for p, s in zip(phase, stride)) if phase else (0,) * d_
    phase = ph if phase else None
    N, cin = x.shape[:2]
    cout = w.shape[0]
    cg, og = cin // groups, cout // groups
    y = np.zeros((N, cout, *outs), dtype=dt)
    for o in range(cout):
        g = (o % groups) if out_map == "interleave" else o // og
        terms = []
        taps = list(np.ndindex(*K))
        chans = range(cg)
        pairs = [(c, k) for k in taps for c in chans] if order != "channels" else [(c, k) for c in chans for k in taps]
        for c, k in pairs:
            ch = c * groups + g if in_map == "interleave" else g * cg + c
            kk = tuple(ki - 1 - t for ki, t in zip(K, k)) if flip else k
            sl = tuple(slice(p0 + t * dd, p0 + t * dd + s * (o_ - 1) + 1, s) for t, dd, s, o_, p0 in zip(k, dil, stride, outs, ph))
            xs = xp[(slice(None), ch) + sl]
            if products_f64:
                terms.append(xs.astype(np.float64) * np.float64(w[(o, c) + kk]))
            else:
                terms.append((xs * w[(o, c) + kk]).astype(acc))
        if b is not None and bias_mode == "first":
            terms.insert(0, np.full(terms[0].shape, b[o], dtype=acc))
        if b is not None and bias_mode == "per_channel":
            terms = [t + b[o] for t in terms[:cg]] + terms[cg:]
        s = _accumulate(terms, dt, order if order not in ("taps", "channels") else "forward", acc)
        if b is not None and bias_mode == "normal":
            s = (s + b[o]).astype(acc)
        y[:, o] = s.astype(dt)
    if b is not None and bias_mode == "last_axis":
        y = y + b  # broadcasts along the last spatial axis (wrong axis)
    return y


def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups, layout="cin_first", crop_swap=False,
                   op_at_start=False, flip=False, ignore_op=False, order="forward", acc=None):
    dt = x.dtype
    acc = acc or dt
    if layout == "cout_first":  # reads w as (C_out, C_in/groups, *K): only square channel cases run
        w = np.swapaxes(w, 0, 1)
    N, cin = x.shape[:2]
    d_ = len(stride)
    K = w.shape[2:]
    cog = w.shape[1]
    cout = cog * groups
    cgi = cin // groups
    full = [(n - 1) * s + dd * (k - 1) + 1 for n, s, dd, k in zip(x.shape[2:], stride, dilation, K)]
    opad = (0,) * d_ if ignore_op else output_padding
    yfull = np.zeros((N, cout, *[f + op_ for f, op_ in zip(full, opad)]), dtype=acc)
    contributions = []
    for ci in range(cin):
        g = ci // cgi
        for oc in range(cog):
            for k in np.ndindex(*K):
                kk = tuple(ki - 1 - t for ki, t in zip(K, k)) if flip else k
                sl = tuple(slice(t * dd, t * dd + s * (n - 1) + 1, s) for t, dd, s, n in zip(k, dilation, stride, x.shape[2:]))
                contributions.append(((slice(None), g * cog + oc) + sl, (x[:, ci] * w[(ci, oc) + kk]).astype(acc)))
    if order == "reverse":
        contributions = contributions[::-1]
    for idx, val in contributions:
        yfull[idx] = (yfull[idx] + val).astype(acc)
    pads = [(hi, lo) if crop_swap else (lo, hi) for lo, hi in padding]
    sl = []
    for (lo, hi), f, op_ in zip(pads, full, opad):
        n_out = f - lo - hi + op_
        start = lo - op_ if op_at_start else lo
        sl.append(slice(start, start + n_out))
    y = yfull[(slice(None), slice(None)) + tuple(sl)]
    if b is not None:
        y = (y + b.reshape((1, -1) + (1,) * d_)).astype(acc)
    return y.astype(dt)


def _pool_geometry(n, k, s, lo, hi, d, ceil_mode, rule):
    span = n + lo + hi - d * (k - 1) - 1
    if not ceil_mode or rule == "floor":
        return span // s + 1
    o = -(-span // s) + 1
    if rule == "pytorch" and (o - 1) * s >= n + lo:
        o -= 1
    return o


def pool(x, kernel_size, *, stride, padding, dilation=None, ceil_mode=False, count_include_pad=True, kind="max",
         pad_value=None, rule="pytorch", divisor="pytorch", reciprocal=False, acc=None, pad_swap=False, dil_off=0, phase=0):
    dt = x.dtype
    acc = acc or dt
    d_ = len(kernel_size)
    dilation = tuple(dd + dil_off for dd in (dilation or (1,) * d_))
    pads = [(hi, lo) if pad_swap else (lo, hi) for lo, hi in padding]
    outs = [_pool_geometry(n, k, s, lo, hi, dd, ceil_mode, rule)
            for n, k, s, (lo, hi), dd in zip(x.shape[2:], kernel_size, stride, pads, dilation)]
    N, C = x.shape[:2]
    y = np.zeros((N, C, *outs), dtype=dt)
    for pos in itertools.product(*[range(o) for o in outs]):
        starts = [p * s - lo + phase for p, s, (lo, _) in zip(pos, stride, pads)]
        vals, n_in, n_pad = [], 0, 0
        for k in itertools.product(*[range(kk) for kk in kernel_size]):
            idx = [st + t * dd for st, t, dd in zip(starts, k, dilation)]
            inside = all(0 <= i < n for i, n in zip(idx, x.shape[2:]))
            in_pad = all(-lo <= i < n + hi for i, n, (lo, hi) in zip(idx, x.shape[2:], pads))
            if inside:
                vals.append(x[(slice(None), slice(None)) + tuple(idx)])
                n_in += 1
            elif in_pad and pad_value is not None:
                vals.append(np.full((N, C), pad_value, dtype=dt))
            n_pad += in_pad
        if kind == "max":
            v = np.max(np.stack(vals), axis=0) if vals else np.full((N, C), -np.inf, dtype=dt)
        else:
            s = np.zeros((N, C), dtype=acc)
            for t in vals:
                s = (s + t).astype(acc)
            if divisor == "pytorch":
                div = n_pad if count_include_pad else n_in
            elif divisor == "inverted":
                div = n_in if count_include_pad else n_pad
            elif divisor == "kernel":
                div = math.prod(kernel_size)
            else:  # "kernel_if_include": the full kernel size whenever padding counts
                div = math.prod(kernel_size) if count_include_pad else n_in
            v = (s * dt.type(1 / div)) if reciprocal else (s / div)
        y[(slice(None), slice(None)) + pos] = v
    return y.astype(dt)


def grad_input(dy, w, input_shape, *, stride, padding, dilation, groups, flip=False, unread="zero"):
    """Scatter of dy through w (the adjoint of the forward correlation)."""
    dt = dy.dtype
    N, cin = input_shape[:2]
    sp = input_shape[2:]
    K = w.shape[2:]
    cout = w.shape[0]
    cg, og = cin // groups, cout // groups
    P = [n + lo + hi for n, (lo, hi) in zip(sp, padding)]
    dxp = np.zeros((N, cin, *P), dtype=dt)
    O = dy.shape[2:]
    for o in range(cout):
        g = o // og
        for c in range(cg):
            for k in np.ndindex(*K):
                kk = tuple(ki - 1 - t for ki, t in zip(K, k)) if flip else k
                sl = tuple(slice(t * dd, t * dd + s * (oo - 1) + 1, s) for t, dd, s, oo in zip(k, dilation, stride, O))
                dxp[(slice(None), g * cg + c) + sl] += dy[:, o] * w[(o, c) + kk]
    keep = tuple(slice(lo, lo + n) for (lo, _), n in zip(padding, sp))
    dx = dxp[(slice(None), slice(None)) + keep]
    if unread == "garbage":  # rows the forward never read receive a copy of the last read row
        for ax, (n, (lo, _hi), k, s, dd, oo) in enumerate(zip(sp, padding, K, stride, dilation, O)):
            used = (oo - 1) * s + dd * (k - 1) + 1 - lo
            if used < n:
                src = [slice(None)] * dx.ndim
                src[2 + ax] = slice(used - 1, used)
                dst = [slice(None)] * dx.ndim
                dst[2 + ax] = slice(used, n)
                dx[tuple(dst)] = dx[tuple(src)]
    return dx


def grad_weight(x, dy, weight_shape, *, stride, padding, dilation, groups, flip=False, swap=False, acc=None):
    dt = x.dtype
    acc = acc or dt
    cout, cg = weight_shape[:2]
    K = weight_shape[2:]
    og = cout // groups
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    O = dy.shape[2:]
    st, dl = (dilation, stride) if swap else (stride, dilation)
    dw = np.zeros(weight_shape, dtype=dt)
    for o in range(cout):
        g = o // og
        for c in range(cg):
            for k in np.ndindex(*K):
                sl = tuple(slice(t * dd, t * dd + s * (oo - 1) + 1, s) for t, dd, s, oo in zip(k, dl, st, O))
                prod = (xp[(slice(None), g * cg + c) + sl] * dy[:, o]).astype(acc)
                if prod.shape != dy[:, o].shape:
                    raise ValueError("window does not fit")
                kk = tuple(ki - 1 - t for ki, t in zip(K, k)) if flip else k
                dw[(o, c) + kk] = prod.sum(dtype=acc)
    return dw
