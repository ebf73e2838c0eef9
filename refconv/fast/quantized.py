"""Vectorized exact quantized convolution: the functions of :mod:`refconv.quantized`, in numpy.

* ``conv_integer``: the zero points subtracted in int64, then :func:`refconv.fast.conv` on int64
  (exact: the fast engine accumulates integers in int64).  The largest possible ``|acc|``,
  ``B = max|x - zx| * max|w - zw| * C_in/groups * prod(K)``, must stay below ``2**63`` (else
  :class:`~refconv.params.ConvParamError`); when ``B < 2**53`` the product is computed by a float64 GEMM
  instead, exact because every partial sum is an integer below ``2**53``.
* ``requantize``: ``half_even`` / ``half_away`` / ``half_up`` on the exact rational ``acc * p / q``
  with integer floor division (int64 when ``|acc| * p < 2**63``, Python ints in an object array
  otherwise); ``gemmlowp`` in int64 (``SaturatingRoundingDoublingHighMul``, ``RoundingDivideByPOT``);
  ``float32`` in float32 with :func:`numpy.rint` (ties to even).

This module never imports the oracle; the geometry is validated by :mod:`refconv.params` through
:func:`refconv.fast.conv`, the quantization parameters by the same checks as :mod:`refconv.quantized`.

Examples
--------
>>> import numpy as np
>>> x = np.array([[[1, 2, 3, 4]]], dtype=np.uint8)
>>> conv_integer(x, np.array([[[1, -1]]], dtype=np.int8), 1, 0, padding=1).tolist()
[[[0, -1, -1, -1, 3]]]
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from .. import quantized as Q
from ..params import ConvParamError
from .conv import conv as _fast_conv

__all__ = ["conv_integer", "qlinear_conv", "requantize"]


def _int64(name: str, a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind in "iu" and arr.dtype.itemsize <= 8 and arr.dtype != np.uint64:
        return arr.astype(np.int64)
    ints = Q._ints(name, arr)  # the oracle's validation: integers only, named
    if any(not -(2**62) <= v < 2**62 for v in ints.ravel().tolist()):
        raise ConvParamError(f"{name}: values beyond 2**62 in magnitude (the fast engine works in int64)")
    return ints.astype(np.int64)


def conv_integer(x: Any, w: Any, x_zero_point: Any = 0, w_zero_point: Any = 0, *, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """:func:`refconv.quantized.conv_integer`, vectorized and exact (int64 result)."""
    xa, wa = _int64("x", x), _int64("w", w)
    if wa.ndim < 1:
        raise ConvParamError(f"w.shape={wa.shape}: expected (C_out, C_in // groups, *K)")
    cout = wa.shape[0]
    zx = int(Q._zero_point("x_zero_point", x_zero_point, 1, per_channel=False)[0])
    zw = Q._zero_point("w_zero_point", w_zero_point, cout, per_channel=True).astype(np.int64)
    xs = xa - zx
    ws = wa - zw.reshape((cout,) + (1,) * (wa.ndim - 1))
    terms = math.prod(wa.shape[1:])
    mx = int(np.abs(xs).max()) if xs.size else 0
    mw = int(np.abs(ws).max()) if ws.size else 0
    bound = mx * mw * terms  # |acc| <= max|x - zx| * max|w - zw| * C_in/groups * prod(K)
    if bound >= 2**63:
        raise ConvParamError(f"x, w: the accumulator may reach {bound} >= 2**63 (int64); use refconv.quantized")
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, algorithm="direct")
    if bound < 2**53:
        # every partial sum of the GEMM is an integer below 2**53: float64 is exact in any order
        y = _fast_conv(xs.astype(np.float64), ws.astype(np.float64), **kw)
        return y.astype(np.int64)
    return _fast_conv(xs, ws, **kw).astype(np.int64)


def _round_div(num: np.ndarray, den: int, mode: str) -> np.ndarray:
    """``num / den`` (den > 0) rounded to the nearest integer, ties per ``mode``; exact integer arithmetic."""
    fl = num // den
    twice = 2 * (num - fl * den)             # 2 * remainder, in [0, 2*den)
    up = twice > den
    tie = twice == den
    if mode == "half_even":
        up = up | tie & (fl % 2 == 1)
    elif mode == "half_away":
        up = up | tie & (num > 0)
    else:  # half_up
        up = up | tie
    return fl + up


def _srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int64 holding int32 values."""
    ab = a * b                                            # |ab| <= 2**62: exact in int64
    nudge = np.where(ab >= 0, 2**30, 1 - 2**30)
    t = ab + nudge
    q = np.where(t >= 0, t // 2**31, -((-t) // 2**31))  # C division: truncation toward zero
    return np.where((a == Q.INT32_MIN) & (b == Q.INT32_MIN), Q.INT32_MAX, q)


def _rdbpot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT on int64 holding int32 values (exponent per element, 0..31)."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(acc: Any, multiplier: Any, zero_point: Any, *, rounding: str = "half_even", out_dtype: str = "int8",
               axis: int = 1) -> np.ndarray:
    """:func:`refconv.quantized.requantize`, vectorized (same arguments, same result)."""
    rounding = Q._rounding(rounding)
    odt = Q._out_dtype(out_dtype)
    lo, hi = Q.OUT_DTYPES[odt]
    a = np.asarray(acc)
    a = a.astype(object) if a.dtype == object or a.dtype.kind not in "iu" else a.astype(np.int64)
    if a.dtype == object:
        a = Q._ints("acc", a)
    zp = Q._ints("zero_point", zero_point)
    if zp.ndim:
        raise ConvParamError(f"zero_point={zero_point!r}: the output zero point is a scalar")
    ax = axis if a.ndim > 1 else 0
    channels = a.shape[ax] if a.ndim else 1
    ms = Q._multipliers(multiplier, channels, rounding)
    shape = [1] * a.ndim
    if a.ndim:
        shape[ax] = channels
    if rounding == "gemmlowp":
        if a.dtype == object or a.size and (a.min() < Q.INT32_MIN or a.max() > Q.INT32_MAX):
            raise ConvParamError("acc: does not fit int32 (the gemmlowp pipeline is int32)")
        q = np.array([m[0] for m in ms], dtype=np.int64).reshape(shape)
        shift = np.array([m[1] for m in ms], dtype=np.int64).reshape(shape)
        v = a * (np.int64(1) << np.maximum(shift, 0))
        if v.size and (v.min() < Q.INT32_MIN or v.max() > Q.INT32_MAX):
            raise ConvParamError("acc: acc * 2**shift does not fit int32 (the gemmlowp pipeline is int32)")
        r = _rdbpot(_srdhm(v, q), np.broadcast_to(np.maximum(-shift, 0), v.shape))
    elif rounding == "float32":
        s = np.array(ms, dtype=np.float32).reshape(shape)
        with np.errstate(over="ignore"):
            f = a.astype(np.float32) * s                  # fl32(fl32(acc) * scale)
        f = np.clip(f, np.float32(-2.0**40), np.float32(2.0**40))  # beyond any output: saturates below
        r = np.rint(f).astype(np.int64)                   # ties to even
    else:
        fr = [Fraction(m) for m in ms]
        den = math.lcm(*[f.denominator for f in fr]) if fr else 1
        p = [f.numerator * (den // f.denominator) for f in fr]  # m = p / den on a common denominator
        big = a.dtype == object or a.size and int(np.abs(a).max()) * max(p, default=0) >= 2**62 or den >= 2**62
        if big:
            num = a.astype(object) * np.array(p, dtype=object).reshape(shape)
            r = _round_div(num, den, rounding)
            r = np.clip(r.astype(object), lo - 2**40, hi + 2**40).astype(np.int64)
        else:
            num = a * np.array(p, dtype=np.int64).reshape(shape)
            r = _round_div(num, den, rounding)
    return np.clip(r + int(zp), lo, hi).astype(np.dtype(odt))


def qlinear_conv(x: Any, x_scale: Any, x_zero_point: Any, w: Any, w_scale: Any, w_zero_point: Any, y_scale: Any,
                 y_zero_point: Any, b: Any = None, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, rounding: str = "half_even", out_dtype: Any = None) -> np.ndarray:
    """:func:`refconv.quantized.qlinear_conv`, vectorized and exact."""
    rounding = Q._rounding(rounding)
    odt = Q._out_dtype(out_dtype, y_zero_point, x)
    wa = _int64("w", w)
    cout = wa.shape[0] if wa.ndim else 0
    acc = conv_integer(x, wa, x_zero_point, w_zero_point, stride=stride, padding=padding, dilation=dilation,
                       groups=groups)
    if b is not None:
        ba = _int64("b", b)
        if ba.shape != (cout,):
            raise ConvParamError(f"b.shape={ba.shape}: expected (C_out,) = ({cout},)")
        if ba.size and (ba.min() < Q.INT32_MIN or ba.max() > Q.INT32_MAX):
            raise ConvParamError("b: the bias is int32")
        acc = acc + ba.reshape((cout,) + (1,) * (acc.ndim - 2))
    ms = Q.real_multiplier(x_scale, w_scale, y_scale, cout, rounding)
    zy = int(Q._zero_point("y_zero_point", y_zero_point, 1, per_channel=False)[0])
    lo, hi = Q.OUT_DTYPES[odt]
    if not lo <= zy <= hi:
        raise ConvParamError(f"y_zero_point={y_zero_point!r}: outside the range of {odt} [{lo}, {hi}]")
    return requantize(acc, ms, zy, rounding=rounding, out_dtype=odt, axis=1)
