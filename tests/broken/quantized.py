"""Quantized convolutions (ConvInteger, QLinearConv): correct implementations in several accumulation orders and
the classic wrong conventions.  Plain numpy and the standard library's Fraction, no refconv.

``QUANT_BROKEN`` and ``QUANT_CORRECT`` list the entries (as dicts of :class:`tests.broken.Entry` fields): each
broken one must FAIL with ``diagnosis`` in its diagnosis, each correct one must PASS.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}


# --------------------------------------------------------------------------- validation (as every library does)


def _geometry(x, w, stride, padding, dilation, groups):
    """Output sizes; ValueError for what the definition rejects."""
    if x.shape[1] % groups or w.shape[0] % groups or w.shape[1] * groups != x.shape[1]:
        raise ValueError("groups do not fit the channels")
    outs = []
    for n, k, s, d, (lo, hi) in zip(x.shape[2:], w.shape[2:], stride, dilation, padding):
        span = d * (k - 1) + 1
        if span > n + lo + hi:
            raise ValueError("kernel larger than the padded input")
        outs.append((n + lo + hi - span) // s + 1)
    return outs


# --------------------------------------------------------------------------- accumulators (orders and widths)


def _windows(xp, w, stride, dilation, outs):
    """``(tap, window)`` per kernel tap: the padded input read by that tap at every output position."""
    for k in np.ndindex(*w.shape[2:]):
        sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(k, dilation, stride, outs))
        yield k, xp[(slice(None), slice(None)) + sl]


def _acc_taps(xs, ws, stride, padding, dilation, groups, dtype=np.int64, reverse=False):
    """Sum over taps of per-tap channel contractions, in ``dtype`` (int64 exact; narrower wraps)."""
    outs = _geometry(xs, ws, stride, padding, dilation, groups)
    xp = np.pad(xs, [(0, 0), (0, 0)] + [tuple(p) for p in padding])  # xs = x - zx: zeros are the zero point
    n, cout, cg = xs.shape[0], ws.shape[0], ws.shape[1]
    og = cout // groups
    y = np.zeros((n, cout, *outs), dtype)
    taps = list(_windows(xp, ws, stride, dilation, outs))
    for k, win in (reversed(taps) if reverse else taps):
        for g in range(groups):
            part = np.einsum("nc...,oc->no...", win[:, g * cg:(g + 1) * cg].astype(np.int64),
                             ws[g * og:(g + 1) * og, :][(slice(None), slice(None)) + k].astype(np.int64))
            y[:, g * og:(g + 1) * og] = (y[:, g * og:(g + 1) * og] + part.astype(dtype)).astype(dtype)
    return y.astype(np.int64)


def _acc_gemm(xs, ws, stride, padding, dilation, groups):
    """im2col and one float64 GEMM per group: exact, every partial sum an integer far below 2**53."""
    outs = _geometry(xs, ws, stride, padding, dilation, groups)
    xp = np.pad(xs.astype(np.float64), [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    n, cout, cg = xs.shape[0], ws.shape[0], ws.shape[1]
    og = cout // groups
    cols = np.stack([win for _, win in _windows(xp, ws, stride, dilation, outs)], axis=2)  # (N, C, taps, *O)
    y = np.zeros((n, cout, *outs))
    for g in range(groups):
        c = cols[:, g * cg:(g + 1) * cg].reshape(n, cg * cols.shape[2], math.prod(outs))
        wm = ws[g * og:(g + 1) * og].reshape(og, -1).astype(np.float64)
        y[:, g * og:(g + 1) * og] = (wm @ c).reshape(n, og, *outs)
    return np.rint(y).astype(np.int64)


def _acc_decomposed(x, w, zx, zw, stride, padding, dilation, groups):
    """sum (x - zx)(w - zw) = sum x w - zw sum x - zx sum w + K zx zw, x padded with zx: the form int8 GEMMs use."""
    xp = np.pad(x.astype(np.int64), [(0, 0), (0, 0)] + [tuple(p) for p in padding], constant_values=zx)
    z = [(0, 0)] * len(padding)
    ones = np.ones_like(w, dtype=np.int64)
    wa = w.astype(np.int64)
    # per output channel, broadcast over (N, C_out, *O)
    zwv = np.broadcast_to(np.asarray(zw, np.int64), (w.shape[0],)).reshape((1, -1) + (1,) * (x.ndim - 2))
    k = math.prod(w.shape[1:])
    xw = _acc_taps(xp, wa, stride, z, dilation, groups)
    sx = _acc_taps(xp, ones, stride, z, dilation, groups)
    sw = wa.reshape(w.shape[0], -1).sum(axis=1).reshape((1, -1) + (1,) * (x.ndim - 2))
    return xw - zwv * sx - zx * sw + k * zx * zwv


# --------------------------------------------------------------------------- requantization


def _multipliers(x_scale, w_scale, y_scale, cout):
    sw = np.broadcast_to(np.asarray(w_scale, np.float32), (cout,))
    return [Fraction(float(x_scale)) * Fraction(float(s)) / Fraction(float(y_scale)) for s in sw]


def _round(v: Fraction, how: str) -> int:
    if how == "half_even":
        return round(v)                      # Python rounds a Fraction half to even, exactly
    if how == "half_away":
        return int(math.copysign(math.floor(abs(v) + Fraction(1, 2)), v))
    if how == "half_up":
        return math.floor(v + Fraction(1, 2))
    if how == "truncate":
        return math.trunc(v)
    raise ValueError(how)


def _srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    t = ab + (2**30 if ab >= 0 else 1 - 2**30)
    return int(t / 2**31) if abs(t) < 2**52 else (t // 2**31 if t >= 0 else -((-t) // 2**31))


def _rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    return (x >> e) + int((x & mask) > (mask >> 1) + (x < 0))


def _gemmlowp(acc: int, real: float) -> int:
    frac, shift = math.frexp(real)
    q = round(frac * 2**31) if frac * 2**31 % 1 != 0.5 else math.floor(frac * 2**31) + 1  # std::round
    if q == 2**31:
        q, shift = q // 2, shift + 1
    return _rdbpot(_srdhm(acc * 2 ** max(shift, 0), q), max(-shift, 0))


def _requantize(acc, x_scale, w_scale, y_scale, y_zero_point, out_dtype, how="half_even", saturate=True,
                per_tensor=False):
    lo, hi = _RANGE[out_dtype]
    cout = acc.shape[1]
    ws = np.float32(np.ravel(w_scale)[0]) if per_tensor else w_scale
    ms = _multipliers(x_scale, ws, y_scale, cout)
    out = np.empty(acc.shape, np.int64)
    for idx, a in np.ndenumerate(acc):
        if how == "gemmlowp":
            sw = np.broadcast_to(np.asarray(ws, np.float32), (cout,))[idx[1]]
            r = _gemmlowp(int(a), float(x_scale) * float(sw) / float(y_scale))
        elif how == "float32":
            sw = np.broadcast_to(np.asarray(ws, np.float32), (cout,))[idx[1]]
            scale = np.float32(np.float32(x_scale) * sw) / np.float32(y_scale)
            r = int(np.rint(np.float32(a) * scale))
        else:
            r = _round(int(a) * ms[idx[1]], how)
        v = r + int(y_zero_point)
        out[idx] = min(max(v, lo), hi) if saturate else (v - lo) % 256 + lo
    return out.astype(out_dtype)


# --------------------------------------------------------------------------- the implementations


def _shifted(x, w, x_zero_point, w_zero_point, per_tensor_zp=False):
    zw = np.asarray(w_zero_point, np.int64)
    if per_tensor_zp or zw.ndim == 0:
        zw = np.full(w.shape[0], np.ravel(zw)[0], np.int64)
    xs = x.astype(np.int64) - int(x_zero_point)
    ws = w.astype(np.int64) - zw.reshape((-1,) + (1,) * (w.ndim - 1))
    return xs, ws


def _conv_integer(acc="taps", pad_raw=False, per_tensor_zp=False, width=np.int64, validate=True):
    def fn(x, w, x_zero_point, w_zero_point, *, stride, padding, dilation, groups):
        if not validate:
            try:
                _geometry(x, w, stride, padding, dilation, groups)
            except ValueError:
                return np.zeros((x.shape[0], w.shape[0]) + (1,) * (x.ndim - 2), np.int32)
        if acc == "decomposed":
            return _acc_decomposed(x, w, int(x_zero_point), np.asarray(w_zero_point), stride, padding, dilation,
                                   groups)
        xs, ws = _shifted(x, w, x_zero_point, w_zero_point, per_tensor_zp)
        pads = padding
        if pad_raw:
            # the raw input padded with 0: the padding then reads as -x_zero_point after the shift
            xs = np.pad(x.astype(np.int64), [(0, 0), (0, 0)] + [tuple(p) for p in padding]) - int(x_zero_point)
            pads = [(0, 0)] * len(padding)
        if acc == "gemm":
            return _acc_gemm(xs, ws, stride, pads, dilation, groups)
        return _acc_taps(xs, ws, stride, pads, dilation, groups, dtype=width, reverse=acc == "reverse")
    return fn


def _qlinear(acc="taps", how="half_even", saturate=True, per_tensor=False, per_tensor_zp=False, pad_raw=False,
             width=np.int64, bias=True):
    integer = _conv_integer(acc=acc, pad_raw=pad_raw, per_tensor_zp=per_tensor_zp, width=width)

    def fn(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b, *, stride, padding,
           dilation, groups, out_dtype):
        a = integer(x, w, x_zero_point, w_zero_point, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)
        if b is not None and bias:
            a = (a + np.asarray(b, np.int64).reshape((-1,) + (1,) * (x.ndim - 2))).astype(width).astype(np.int64)
        return _requantize(a, x_scale, w_scale, y_scale, y_zero_point, out_dtype, how, saturate, per_tensor)
    return fn


QUANT_BROKEN = [
    dict(name="qlinear_conv: ties away from zero", op="qlinear_conv", fn=_qlinear(how="half_away"),
         diagnosis="rounding half_away"),
    dict(name="qlinear_conv: ties toward +inf", op="qlinear_conv", fn=_qlinear(how="half_up"),
         diagnosis="rounding half_up"),
    dict(name="qlinear_conv: gemmlowp fixed point (TFLite)", op="qlinear_conv", fn=_qlinear(how="gemmlowp"),
         diagnosis="rounding gemmlowp"),
    dict(name="qlinear_conv: requantization through float32", op="qlinear_conv", fn=_qlinear(how="float32"),
         diagnosis="rounding float32"),
    dict(name="qlinear_conv 1-D: truncation", op="qlinear_conv", fn=_qlinear(how="truncate"), dims=1,
         diagnosis="rounding truncate"),
    dict(name="qlinear_conv: zero point ignored in the padding", op="qlinear_conv", fn=_qlinear(pad_raw=True),
         diagnosis="zero point ignored in the padding"),
    dict(name="qlinear_conv: per-tensor scale for per-channel", op="qlinear_conv", fn=_qlinear(per_tensor=True),
         diagnosis="per-tensor scale"),
    dict(name="qlinear_conv 3-D: per-tensor zero point for per-channel", op="qlinear_conv",
         fn=_qlinear(per_tensor_zp=True), dims=3, diagnosis="per-tensor zero point"),
    dict(name="qlinear_conv: missing saturation (the cast wraps)", op="qlinear_conv", fn=_qlinear(saturate=False),
         diagnosis="missing saturation"),
    dict(name="qlinear_conv: int32 accumulator (wraps)", op="qlinear_conv", fn=_qlinear(width=np.int32),
         diagnosis="int32 wrap"),
    dict(name="qlinear_conv: int16 accumulator (wraps)", op="qlinear_conv", fn=_qlinear(width=np.int16),
         diagnosis="int16 wrap"),
    dict(name="qlinear_conv: bias ignored", op="qlinear_conv", fn=_qlinear(bias=False), diagnosis="bias ignored"),
    dict(name="conv_integer: zero point ignored in the padding", op="conv_integer", fn=_conv_integer(pad_raw=True),
         diagnosis="zero point ignored in the padding"),
    dict(name="conv_integer 1-D: int16 accumulator (wraps)", op="conv_integer", fn=_conv_integer(width=np.int16),
         dims=1, diagnosis="int16 wrap"),
    dict(name="conv_integer: per-tensor zero point for per-channel", op="conv_integer",
         fn=_conv_integer(per_tensor_zp=True), diagnosis="per-tensor zero point"),
    dict(name="conv_integer: never validates", op="conv_integer", fn=_conv_integer(validate=False),
         kind="accepted-invalid"),
]

QUANT_CORRECT = [
    dict(name="qlinear_conv: per-tap int64 accumulation", op="qlinear_conv", fn=_qlinear()),
    dict(name="qlinear_conv 1-D: taps in reverse order", op="qlinear_conv", fn=_qlinear(acc="reverse"), dims=1),
    dict(name="qlinear_conv 3-D: im2col float64 GEMM (exact below 2**53)", op="qlinear_conv", fn=_qlinear(acc="gemm"),
         dims=3),
    dict(name="qlinear_conv: zero points folded out of the GEMM", op="qlinear_conv", fn=_qlinear(acc="decomposed")),
    dict(name="conv_integer: per-tap int64 accumulation", op="conv_integer", fn=_conv_integer()),
    dict(name="conv_integer 3-D: taps in reverse order", op="conv_integer", fn=_conv_integer(acc="reverse"), dims=3),
    dict(name="conv_integer 1-D: im2col float64 GEMM", op="conv_integer", fn=_conv_integer(acc="gemm"), dims=1),
    dict(name="conv_integer: zero points folded out of the GEMM", op="conv_integer", fn=_conv_integer(acc="decomposed")),
]
