"""Fractional max pooling and deformable convolution: correct implementations in other computation orders and
classic mistakes.  Plain numpy, no refconv.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

# --------------------------------------------------------------------------- fractional max pooling


def _starts(n, k, o, u, rule="exact"):
    """Window starts of one axis: the definition's exact rule, or a mistaken one."""
    if o == 1:
        return [n - k]
    if rule == "float32":
        f = np.float32
        a = f(n - k) / f(o - 1)
        return [int(f(f(j) + f(u)) * a) - int(f(u) * a) for j in range(o - 1)] + [n - k]
    alpha = Fraction(n, o) if rule == "n/o" else Fraction(n - k, o - 1)
    u = Fraction(float(u))
    out = [min(n - k, math.floor((j + u) * alpha) - math.floor(u * alpha)) for j in range(o - 1)]
    return out + [n - k] if rule != "last_end" else out + [max(0, n - 2 * k)]


def _check_fractional(x, kernel_size, output_size):
    """ValueError for an output size below 1 or windows that do not fit (o + k - 1 > n), as PyTorch refuses."""
    for n, k, o in zip(x.shape[2:], kernel_size, output_size):
        if o < 1 or o + k - 1 > n:
            raise ValueError(f"output size {o} with kernel {k} does not fit an input of {n}")


def _frac(x, kernel_size, output_size, samples, rule="exact", reverse=False, ties="first", whole=False):
    x = np.asarray(x)
    _check_fractional(x, kernel_size, output_size)
    u = np.asarray(samples, dtype=np.float64)[..., ::-1] if reverse else np.asarray(samples, dtype=np.float64)
    n_, c_ = x.shape[:2]
    y = np.zeros((n_, c_, *output_size), x.dtype)
    idx = np.zeros(y.shape, np.int64)
    for b, c in itertools.product(range(n_), range(c_)):
        starts = [_starts(n, k, o, u[b, c, i], rule) for i, (n, k, o) in enumerate(zip(x.shape[2:], kernel_size,
                                                                                        output_size))]
        for p in itertools.product(*[range(o) for o in output_size]):
            best = None
            # the taps in row-major order (reversed for the last-tie rule)
            taps = list(itertools.product(*[range(k) for k in kernel_size]))
            for t in (taps[::-1] if ties == "last" else taps):
                q = tuple(starts[i][p[i]] + t[i] for i in range(len(p)))
                v = x[(b, c) + q]
                if best is None or v > best[0] or (np.isnan(v) and not np.isnan(best[0])):
                    best = (v, int(np.ravel_multi_index(q, x.shape[2:])))
            y[(b, c) + p], idx[(b, c) + p] = best
            if whole:
                idx[(b, c) + p] += (b * c_ + c) * math.prod(x.shape[2:])
    return y, idx


def fractional_max_pool(x, kernel_size, output_size, samples, *, return_indices):
    """Correct: element by element, the windows from the exact rule."""
    return _frac(x, kernel_size, output_size, samples)


def fractional_max_pool_search(x, kernel_size, output_size, samples, *, return_indices):
    """Correct, another order: the windows gathered at once, their maximum (the first NaN if any), then the first
    tap that holds it."""
    x = np.asarray(x)
    _check_fractional(x, kernel_size, output_size)
    u = np.asarray(samples, dtype=np.float64)
    y = np.zeros((*x.shape[:2], *output_size), x.dtype)
    idx = np.zeros(y.shape, np.int64)
    taps = list(itertools.product(*[range(k) for k in kernel_size]))
    for b, c in itertools.product(*[range(v) for v in x.shape[:2]]):
        starts = [_starts(n, k, o, u[b, c, i]) for i, (n, k, o) in enumerate(zip(x.shape[2:], kernel_size, output_size))]
        for p in itertools.product(*[range(o) for o in output_size]):
            qs = [tuple(starts[i][p[i]] + t[i] for i in range(len(p))) for t in taps]
            vals = np.array([x[(b, c) + q] for q in qs])
            nan = np.isnan(vals)
            j = int(np.argmax(nan)) if nan.any() else int(np.flatnonzero(vals == vals.max())[0])
            y[(b, c) + p], idx[(b, c) + p] = vals[j], np.ravel_multi_index(qs[j], x.shape[2:])
    return y, idx


def fractional_max_pool_float32_starts(x, kernel_size, output_size, samples, *, return_indices):
    """The starts computed in float32 (PyTorch's float32 kernel)."""
    return _frac(x, kernel_size, output_size, samples, rule="float32")


def fractional_max_pool_alpha_n_over_o(x, kernel_size, output_size, samples, *, return_indices):
    """alpha = n / o (the ratio of the sizes) instead of (n - k) / (o - 1)."""
    return _frac(x, kernel_size, output_size, samples, rule="n/o")


def fractional_max_pool_last_window_ends(x, kernel_size, output_size, samples, *, return_indices):
    """The last window ends at n - k instead of starting there."""
    return _frac(x, kernel_size, output_size, samples, rule="last_end")


def fractional_max_pool_reversed_samples(x, kernel_size, output_size, samples, *, return_indices):
    """The samples read last axis first (PyTorch's 2-D order passed through unchanged)."""
    return _frac(x, kernel_size, output_size, samples, reverse=True)


def fractional_max_pool_whole_tensor(x, kernel_size, output_size, samples, *, return_indices):
    """Indices counted across N and C."""
    return _frac(x, kernel_size, output_size, samples, whole=True)


def fractional_max_pool_last_tie(x, kernel_size, output_size, samples, *, return_indices):
    """Ties take the last maximum."""
    return _frac(x, kernel_size, output_size, samples, ties="last")


# --------------------------------------------------------------------------- deformable convolution


def _sample(plane, z, mode):
    """One sample of a plane at position z: bilinear (zeros outside), nearest, or clamped to the border."""
    sizes = plane.shape
    if mode == "nearest":
        z = [math.floor(v + 0.5) for v in z]
    if mode == "clamp":
        z = [min(max(v, 0.0), n - 1.0) for v, n in zip(z, sizes)]
    low = [math.floor(v) for v in z]
    total = 0.0
    for corner in itertools.product((0, 1), repeat=len(z)):
        q = [lo + c for lo, c in zip(low, corner)]
        if not all(0 <= qi < n for qi, n in zip(q, sizes)):
            continue
        weight = 1.0
        for v, lo, c in zip(z, low, corner):
            weight *= (v - lo) if c else 1.0 - (v - lo)
        total += weight * float(plane[tuple(q)])
    return total


def _check_deform(x, offset, w, b, stride, padding, dilation, groups, offset_groups):
    """ValueError for what the definition rejects: channels that groups do not divide, a window wider than the padded
    input, an offset of the wrong shape."""
    cin, cout, d = x.shape[1], w.shape[0], x.ndim - 2
    if cin % groups or cout % groups or w.shape[1] != cin // groups or cin % offset_groups:
        raise ValueError("groups or offset_groups do not divide the channels")
    if b is not None and np.shape(b) != (cout,):
        raise ValueError("bias of the wrong shape")
    out = []
    for n, k, s, (lo, hi), di in zip(x.shape[2:], w.shape[2:], stride, padding, dilation):
        room = n + lo + hi - di * (k - 1) - 1
        if room < 0:
            raise ValueError("the dilated kernel is wider than the padded input")
        out.append(room // s + 1)
    if offset.shape != (x.shape[0], d * offset_groups * math.prod(w.shape[2:]), *out):
        raise ValueError("offset of the wrong shape")


def _deform(x, offset, w, b, mask, stride, padding, dilation, groups, offset_groups, mode="bilinear", swap=False,
            planar=False, use_mask=True, reverse_sum=False):
    x, offset, w = (np.asarray(a, dtype=np.float64) for a in (x, offset, w))
    _check_deform(x, offset, w, b, stride, padding, dilation, groups, offset_groups)
    n_, cin = x.shape[:2]
    cout, kshape, d = w.shape[0], w.shape[2:], x.ndim - 2
    out = offset.shape[2:]
    taps = list(itertools.product(*[range(k) for k in kshape]))
    cg_off, gin, og = cin // offset_groups, cin // groups, cout // groups
    y = np.zeros((n_, cout, *out))
    for b_, o, p in itertools.product(range(n_), range(cout), itertools.product(*[range(v) for v in out])):
        terms = []
        for c in range(gin):
            ch = (o // og) * gin + c
            g = ch // cg_off
            for t, k in enumerate(taps):
                # the offset channel of axis i (read as axis d - 1 - i when swapped), interleaved or planar
                axes = [d - 1 - i if swap else i for i in range(d)]
                chans = [(g * d + a) * len(taps) + t if planar else (g * len(taps) + t) * d + a for a in axes]
                z = [p[i] * stride[i] - padding[i][0] + k[i] * dilation[i] + offset[(b_, chans[i]) + p]
                     for i in range(d)]
                s = _sample(x[b_, ch], z, mode)
                m = mask[(b_, g * len(taps) + t) + p] if mask is not None and use_mask else 1.0
                terms.append(float(w[(o, c) + k]) * float(m) * s)
        total = math.fsum(terms[::-1] if reverse_sum else terms) + (float(b[o]) if b is not None else 0.0)
        y[(b_, o) + p] = total
    return y.astype(x.dtype)


def deform_conv(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
    """Correct: per output element, the terms summed exactly (math.fsum), rounded once."""
    return _deform(x, offset, w, b, mask, stride, padding, dilation, groups, offset_groups)


def deform_conv_reversed(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
    """Correct, another order: the terms listed from the last tap and channel to the first."""
    return _deform(x, offset, w, b, mask, stride, padding, dilation, groups, offset_groups, reverse_sum=True)


def deform_conv_swapped(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
    """The offset pairs read as (dx, dy)."""
    return _deform(x, offset, w, b, mask, stride, padding, dilation, groups, offset_groups, swap=True)


def deform_conv_no_mask(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
    """The mask ignored."""
    return _deform(x, offset, w, b, mask, stride, padding, dilation, groups, offset_groups, use_mask=False)


def deform_conv_nearest(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
    """The nearest sample instead of the bilinear interpolation."""
    return _deform(x, offset, w, b, mask, stride, padding, dilation, groups, offset_groups, mode="nearest")


def deform_conv_clamped(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
    """Positions outside clamped onto the border instead of reading zeros."""
    return _deform(x, offset, w, b, mask, stride, padding, dilation, groups, offset_groups, mode="clamp")


def deform_conv_planar(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
    """The offsets read in a planar layout (all axis-0 offsets of a group first)."""
    return _deform(x, offset, w, b, mask, stride, padding, dilation, groups, offset_groups, planar=True)


#: Entry keyword dicts (tests/broken/__init__.py makes them Entries)
EXTRA2_BROKEN = [
    dict(name="fractional: starts in float32", op="fractional_max_pool", fn=fractional_max_pool_float32_starts,
         diagnosis="starts in float32 arithmetic"),
    dict(name="fractional: alpha = n / o", op="fractional_max_pool", fn=fractional_max_pool_alpha_n_over_o,
         diagnosis="alpha = n / o"),
    dict(name="fractional: the last window ends at n - k", op="fractional_max_pool",
         fn=fractional_max_pool_last_window_ends, diagnosis="last window ending at n - k"),
    dict(name="fractional: samples in reverse axis order", op="fractional_max_pool",
         fn=fractional_max_pool_reversed_samples, diagnosis="samples in reverse axis order"),
    dict(name="fractional: indices over the whole tensor", op="fractional_max_pool",
         fn=fractional_max_pool_whole_tensor, diagnosis="whole tensor"),
    dict(name="fractional: the last maximum on ties", op="fractional_max_pool", fn=fractional_max_pool_last_tie,
         diagnosis="last maximum"),
    dict(name="deform: offsets (y, x) swapped", op="deform_conv", fn=deform_conv_swapped, diagnosis="swapped"),
    dict(name="deform: mask ignored", op="deform_conv", fn=deform_conv_no_mask, diagnosis="mask ignored"),
    dict(name="deform: nearest instead of bilinear", op="deform_conv", fn=deform_conv_nearest, diagnosis="nearest"),
    dict(name="deform: clamped to the border", op="deform_conv", fn=deform_conv_clamped, diagnosis="clamp"),
    dict(name="deform: planar offset layout", op="deform_conv", fn=deform_conv_planar, diagnosis="planar"),
]
EXTRA2_CORRECT = [
    dict(name="fractional: element by element", op="fractional_max_pool", fn=fractional_max_pool),
    dict(name="fractional 3-D float64", op="fractional_max_pool", fn=fractional_max_pool_search, dims=3,
         dtype="float64"),
    dict(name="deform: exact sums rounded once", op="deform_conv", fn=deform_conv),
    dict(name="deform 1-D float64, terms reversed", op="deform_conv", fn=deform_conv_reversed, dims=1,
         dtype="float64"),
]
