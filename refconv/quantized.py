"""Quantized convolution, exact: ONNX ``ConvInteger`` and ``QLinearConv``, requantization and its roundings.

The definitions (normative text: ``specs/quantized.md``):

* ``conv_integer``: ``acc[n, o, p] = sum (xp[n, c, p*s + k*d] - zx) * (w[o, c, k] - zw[o])`` with the
  input padded by its zero point ``zx`` (the value that dequantizes to 0), so a padded tap adds exactly 0.
  The exact integer is returned; :func:`int32_overflow` reports where it does not fit int32.
* ``qlinear_conv``: ``y = clamp(R(acc * M) + zy, out_min, out_max)`` with ``acc = conv_integer(...) + b``
  (an int32 bias in the accumulator's scale ``sx * sw[o]``) and ``M = sx * sw[o] / sy``, per tensor or
  per output channel.  ``R`` is the rounding mode of :data:`ROUNDINGS`.

Rounding modes of ``R(v)`` (:func:`requantize`):

``half_even``   nearest integer, ties to even, of the exact ``v = acc * M``;
``half_away``   nearest, ties away from zero (C ``round``);
``half_up``     nearest, ties toward +inf (``floor(v + 1/2)``);
``gemmlowp``    gemmlowp / TFLite fixed point: ``M`` as ``(q, shift)`` (:func:`quantize_multiplier`), then
                ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc * 2**max(shift, 0), q),
                max(-shift, 0))`` on int32; in ``qlinear_conv`` ``M`` is first computed in float64 as
                ``sx * sw / sy`` (what TFLite does);
``float32``     the float-scale path of ONNX Runtime's MLAS and PyTorch's fbgemm/qnnpack: the scale
                ``fl32(fl32(sx * sw) / sy)``, then ``fl32(fl32(acc) * scale)`` rounded half-to-even
                (``nearbyintf`` in the default rounding mode).  Not exact: it is a convention to
                name, not the definition.

Everything is computed with Python integers and :class:`fractions.Fraction`; ``float32`` emulates each
float32 rounding with numpy scalars (correctly rounded IEEE operations).

Examples
--------
>>> import numpy as np
>>> x = np.array([[[1, 2, 3, 4]]], dtype=np.uint8)
>>> w = np.array([[[1, -1]]], dtype=np.int8)
>>> conv_integer(x, w, 1, 0, padding=1).tolist()     # the padding holds the zero point: it adds 0
[[[0, -1, -1, -1, 3]]]
>>> requantize([5, 15, -5], Fraction(1, 10), 0, rounding='half_even').tolist()   # 0.5, 1.5, -0.5
[0, 2, 0]
>>> requantize([5, 15, -5], Fraction(1, 10), 0, rounding='half_away').tolist()
[1, 2, -1]
>>> quantize_multiplier(0.25)
(1073741824, -1)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from .params import ConvParamError

__all__ = ["ROUNDINGS", "OUT_DTYPES", "INT32_MIN", "INT32_MAX", "conv_integer", "qlinear_conv", "requantize",
           "quantize_multiplier", "multiply_by_quantized_multiplier", "saturating_rounding_doubling_high_mul",
           "rounding_divide_by_pot", "round_half", "int32_overflow", "Int32Overflow", "real_multiplier",
           "wrap_int32"]

#: the rounding modes of the requantization
ROUNDINGS = ("half_even", "half_away", "half_up", "gemmlowp", "float32")
#: output types and their ranges
OUT_DTYPES = {"int8": (-128, 127), "uint8": (0, 255)}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# --------------------------------------------------------------------------- validation


def _fraction(v: Any) -> Fraction:
    """``Fraction(v)`` of a real number already checked (an int, a float, a Fraction, a numpy scalar)."""
    return Fraction(v)


def _ints(name: str, a: Any) -> np.ndarray:
    """``a`` as an array of Python ints (object dtype); ConvParamError naming ``name`` unless every value is an integer."""
    try:
        arr = np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - ragged lists and the like
        raise ConvParamError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype.kind == "b":
        raise ConvParamError(f"{name}.dtype=bool: pass integers")
    if arr.dtype.kind in "iu":
        return arr.astype(object)
    flat = arr.ravel()
    out = np.empty(flat.shape, dtype=object)
    for i, v in enumerate(flat.tolist() if arr.dtype != object else flat):
        integral = isinstance(v, numbers.Integral) or isinstance(v, numbers.Real) and math.isfinite(float(v)) and \
            _fraction(v).denominator == 1
        if isinstance(v, bool) or not integral:
            raise ConvParamError(f"{name}: every value must be an integer, got {v!r}")
        out[i] = int(v)
    return out.reshape(arr.shape)


def _zero_point(name: str, zp: Any, channels: int, *, per_channel: bool) -> np.ndarray:
    """A zero point as Python ints of shape ``(channels,)`` (a scalar is repeated); per channel only where allowed."""
    z = _ints(name, zp)
    if z.ndim == 0 or z.size == 1 and z.ndim == 1 and not per_channel:
        return np.full(channels, int(z.reshape(())), dtype=object)
    if per_channel and z.ndim == 1 and z.size == channels:
        return z
    want = f"a scalar or one value per output channel ({channels})" if per_channel else "a scalar"
    raise ConvParamError(f"{name}={_short(zp)}: must be {want}, got shape {z.shape}")


def _short(v: Any) -> str:
    text = repr(v.tolist() if isinstance(v, np.ndarray) else v)
    return text if len(text) <= 60 else text[:57] + "..."


def _scale(name: str, s: Any, channels: int, *, per_channel: bool) -> list[Fraction]:
    """Positive finite scales as exact Fractions of the stored values, one per channel."""
    try:
        arr = np.asarray(s)
    except Exception as exc:  # noqa: BLE001
        raise ConvParamError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.ndim > 1 or arr.ndim == 1 and not (arr.size == channels and per_channel or arr.size == 1):
        want = f"a scalar or one value per output channel ({channels})" if per_channel else "a scalar"
        raise ConvParamError(f"{name}={_short(s)}: must be {want}, got shape {arr.shape}")
    out = []
    for v in arr.ravel().tolist() if arr.dtype != object else list(arr.ravel()):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) or v <= 0:
            raise ConvParamError(f"{name}={_short(s)}: scales must be finite and > 0")
        out.append(_fraction(v))
    return out * channels if len(out) == 1 else out


def _rounding(rounding: Any) -> str:
    if rounding not in ROUNDINGS:
        raise ConvParamError(f"rounding={rounding!r}: rounding modes are " + ", ".join(repr(r) for r in ROUNDINGS))
    return rounding


def _out_dtype(out_dtype: Any, *hints: Any) -> str:
    """``out_dtype``, or the int8/uint8 dtype of the first hint that has one (ONNX: the type of y_zero_point)."""
    if out_dtype is None:
        for h in hints:
            dt = getattr(h, "dtype", None)
            if dt is not None and str(dt) in OUT_DTYPES:
                return str(dt)
        raise ConvParamError("out_dtype=None: pass out_dtype='int8' or 'uint8' (no int8/uint8 y_zero_point or x to "
                             "take it from)")
    name = str(np.dtype(out_dtype)) if not isinstance(out_dtype, str) and out_dtype in (np.int8, np.uint8) else out_dtype
    if name not in OUT_DTYPES:
        raise ConvParamError(f"out_dtype={out_dtype!r}: output types are " + ", ".join(repr(d) for d in OUT_DTYPES))
    return name


# --------------------------------------------------------------------------- ConvInteger


def conv_integer(x: Any, w: Any, x_zero_point: Any = 0, w_zero_point: Any = 0, *, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """ONNX ``ConvInteger``: the exact integer ``sum (x - zx) * (w - zw[o])``, the input padded with ``zx``.

    Parameters
    ----------
    x : array_like of integers, shape (N, C_in, *S)
    w : array_like of integers, shape (C_out, C_in // groups, *K)
    x_zero_point : int
        The input's zero point (per tensor).
    w_zero_point : int or array_like, shape (C_out,)
        The weight's zero point, per tensor or per output channel.
    stride, padding, dilation, groups
        As :func:`refconv.oracle.conv` (padding strings included).

    Returns
    -------
    ndarray of int64 (object of Python ints beyond int64), shape (N, C_out, *O)
        Exact; it may exceed int32 (see :func:`int32_overflow`).

    Examples
    --------
    >>> import numpy as np
    >>> conv_integer(np.array([[[0, 255]]], np.uint8), np.array([[[2, 3]]], np.uint8), 128, [1]).tolist()
    [[[126]]]
    """
    xa = _ints("x", x)
    wa = _ints("w", w)
    if wa.ndim < 1:
        raise ConvParamError(f"w.shape={wa.shape}: expected (C_out, C_in // groups, *K)")
    cout = wa.shape[0]
    zx = _zero_point("x_zero_point", x_zero_point, 1, per_channel=False)[0]
    zw = _zero_point("w_zero_point", w_zero_point, cout, per_channel=True)
    # the zero points subtracted first: the padding (zeros) then dequantizes to 0, as the zero point does
    xs = xa - zx
    ws = wa - zw.reshape((cout,) + (1,) * (wa.ndim - 1))
    top = max([abs(v) for v in xs.ravel().tolist()], default=0) * max([abs(v) for v in ws.ravel().tolist()], default=0)
    if top * max(1, math.prod(wa.shape[1:])) < 2**62:
        # |acc| <= max|x - zx| * max|w - zw| * C_in/groups * prod(K) < 2**62: int64 arithmetic is exact
        xs, ws = xs.astype(np.int64), ws.astype(np.int64)
    from . import oracle  # here, not at the top: refconv.fast.quantized shares this module's checks, never the oracle

    y = oracle.conv(xs, ws, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return _narrow(y)


def _narrow(y: np.ndarray) -> np.ndarray:
    """int64 when every value fits, else the object array of Python ints."""
    if y.dtype == object:
        vals = [int(v) for v in y.ravel()]
        if all(-(2**63) <= v < 2**63 for v in vals):
            return np.array(vals, dtype=np.int64).reshape(y.shape)
        return np.array(vals, dtype=object).reshape(y.shape)
    return y.astype(np.int64)


@dataclass(frozen=True)
class Int32Overflow:
    """Where an exact accumulator leaves int32: ``count`` elements, the first at ``index`` with ``value``."""

    count: int
    index: tuple[int, ...] | None
    value: int | None
    size: int

    @property
    def fits(self) -> bool:
        return self.count == 0

    def __str__(self) -> str:
        if self.fits:
            return f"all {self.size} accumulator values fit int32"
        return (f"{self.count} of {self.size} accumulator values do not fit int32 [{INT32_MIN}, {INT32_MAX}]; "
                f"first at {self.index}: {self.value}")


def int32_overflow(acc: Any) -> Int32Overflow:
    """Report the values of an exact accumulator that do not fit int32 (an int32 kernel wraps or saturates there).

    >>> print(int32_overflow([1, 2**31, -2**31]))
    1 of 3 accumulator values do not fit int32 [-2147483648, 2147483647]; first at (1,): 2147483648
    """
    a = _ints("acc", acc)
    bad = [(i, int(v)) for i, v in np.ndenumerate(a) if not INT32_MIN <= v <= INT32_MAX]
    first = bad[0] if bad else (None, None)
    return Int32Overflow(len(bad), first[0], first[1], int(a.size))


def wrap_int32(v: int) -> int:
    """``v`` modulo 2**32 in ``[-2**31, 2**31)``: what a wrapping int32 accumulator holds."""
    return (v + 2**31) % 2**32 - 2**31


# --------------------------------------------------------------------------- gemmlowp fixed point


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul``: ``(a*b + nudge) / 2**31`` truncated, int32 saturating.

    ``nudge = 2**30`` for ``a*b >= 0``, ``1 - 2**30`` otherwise; the one overflowing case
    ``a = b = INT32_MIN`` gives ``INT32_MAX``.

    >>> saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX
    True
    >>> saturating_rounding_doubling_high_mul(3, 2**30), saturating_rounding_doubling_high_mul(-3, 2**30)
    (2, -1)
    """
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    t = ab + nudge
    # C's integer division truncates toward zero
    return t // 2**31 if t >= 0 else -((-t) // 2**31)


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded to nearest, ties away from zero.

    >>> [rounding_divide_by_pot(v, 1) for v in (3, -3, 5, -5)]
    [2, -2, 3, -3]
    """
    if not 0 <= exponent <= 31:
        raise ConvParamError(f"exponent={exponent}: RoundingDivideByPOT takes 0 <= exponent <= 31")
    mask = (1 << exponent) - 1
    remainder = x & mask                      # two's complement low bits, as int32 '&'
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)  # arithmetic shift: floor


def quantize_multiplier(real: Any) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real = q * 2**(shift - 31)`` with ``q`` in ``[2**30, 2**31)``.

    ``q = round(frac * 2**31)`` (ties away from zero) where ``real = frac * 2**shift``,
    ``0.5 <= frac < 1``; ``q = 2**31`` becomes ``2**30`` with ``shift + 1``; a shift below -31 gives
    ``(0, 0)``.  ``real`` is taken exactly (a float is its stored value).

    >>> quantize_multiplier(0.5), quantize_multiplier(1.0), quantize_multiplier(Fraction(1, 3))
    ((1073741824, 0), (1073741824, 1), (1431655765, -1))
    """
    if isinstance(real, bool) or not isinstance(real, numbers.Real) or not math.isfinite(float(real)) or real < 0:
        raise ConvParamError(f"real={real!r}: the multiplier must be a finite number >= 0")
    r = _fraction(real)
    if r == 0:
        return 0, 0
    shift = _floor_log2(r) + 1                # r = frac * 2**shift, 0.5 <= frac < 1
    frac = r / Fraction(2) ** shift
    q = round_half(frac * 2**31, "half_away")
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ConvParamError(f"real={real!r}: the multiplier is too large for int32 fixed point (shift {shift} > 30)")
    return int(q), int(shift)


def _floor_log2(r: Fraction) -> int:
    e = r.numerator.bit_length() - r.denominator.bit_length()
    return e if Fraction(2) ** e <= r else e - 1


def multiply_by_quantized_multiplier(acc: int, q: int, shift: int) -> int:
    """TFLite ``MultiplyByQuantizedMultiplier``: the gemmlowp rounding of ``acc * q * 2**(shift - 31)``.

    >>> q, shift = quantize_multiplier(0.5)         # (2**30, 0): no right shift, the doubling high mul rounds
    >>> multiply_by_quantized_multiplier(3, q, shift), multiply_by_quantized_multiplier(-3, q, shift)  # ties up
    (2, -1)
    >>> q, shift = quantize_multiplier(0.25)        # (2**30, -1): RoundingDivideByPOT rounds ties away from 0
    >>> multiply_by_quantized_multiplier(6, q, shift), multiply_by_quantized_multiplier(-6, q, shift)
    (2, -2)
    """
    left, right = max(shift, 0), max(-shift, 0)
    v = acc * 2**left
    if not INT32_MIN <= v <= INT32_MAX:
        raise ConvParamError(f"acc={acc}: acc * 2**{left} = {v} does not fit int32 (the gemmlowp pipeline is int32)")
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(v, q), right)


# --------------------------------------------------------------------------- rounding and requantization


def round_half(v: Fraction, mode: str) -> int:
    """The integer nearest ``v`` with ties per ``mode`` (``half_even``, ``half_away``, ``half_up``).

    >>> [round_half(Fraction(k, 2), 'half_even') for k in (-3, -1, 1, 3)]
    [-2, 0, 0, 2]
    >>> [round_half(Fraction(k, 2), 'half_up') for k in (-3, -1, 1, 3)]
    [-1, 0, 1, 2]
    """
    fl = math.floor(v)
    rest = v - fl
    if rest != Fraction(1, 2):
        return fl + (1 if rest > Fraction(1, 2) else 0)
    if mode == "half_even":
        return fl + (fl % 2)
    if mode == "half_away":
        return fl + 1 if v > 0 else fl
    if mode == "half_up":
        return fl + 1
    raise ConvParamError(f"rounding={mode!r}: not a rounding to nearest")


def _f32(v: Any) -> np.float32:
    return np.float32(v)


def _requantize_one(a: int, m: Any, zp: int, rounding: str, lo: int, hi: int) -> int:
    if rounding == "gemmlowp":
        q, shift = m
        if not INT32_MIN <= a <= INT32_MAX:
            raise ConvParamError(f"acc={a}: does not fit int32 (the gemmlowp pipeline is int32)")
        r = multiply_by_quantized_multiplier(a, q, shift)
    elif rounding == "float32":
        # fl32(fl32(acc) * scale), ties to even (nearbyintf / the MLAS magic-number rounding)
        with np.errstate(over="ignore"):
            v = _f32(a) * m
        if not np.isfinite(v):
            return hi if v > 0 else lo
        r = round_half(Fraction(float(v)), "half_even")
    else:
        r = round_half(a * m, rounding)
    return min(max(r + zp, lo), hi)


def _multipliers(multiplier: Any, channels: int, rounding: str) -> list[Any]:
    """One multiplier per channel in the form ``rounding`` uses: Fraction, float32, or ``(q, shift)``."""
    pair = isinstance(multiplier, tuple) and len(multiplier) == 2 and all(
        isinstance(v, numbers.Integral) for v in multiplier)
    if rounding == "gemmlowp" and pair:
        ms: list[Any] = [multiplier]             # one (q, shift)
    elif isinstance(multiplier, (list, tuple, np.ndarray)) and np.ndim(multiplier) != 0:
        ms = list(multiplier.tolist() if isinstance(multiplier, np.ndarray) else multiplier)
    else:
        ms = [multiplier.item() if isinstance(multiplier, np.ndarray) else multiplier]
    if len(ms) not in (1, channels):
        raise ConvParamError(f"multiplier: {len(ms)} values for {channels} channels (one, or one per channel)")
    out: list[Any] = []  # (q, shift) pairs, float32 values or Fractions, after the rounding
    for m in ms:
        if rounding == "gemmlowp":
            if isinstance(m, (tuple, list)) and len(m) == 2:
                q, shift = int(m[0]), int(m[1])
                if not 0 <= q <= INT32_MAX or not -31 <= shift <= 30:
                    raise ConvParamError(f"multiplier={m!r}: (q, shift) needs 0 <= q < 2**31 and -31 <= shift <= 30")
                out.append((q, shift))
            else:
                out.append(quantize_multiplier(m))
        elif rounding == "float32":
            if isinstance(m, bool) or not isinstance(m, (numbers.Real, np.floating)) or not math.isfinite(float(m)) or m < 0:
                raise ConvParamError(f"multiplier={m!r}: must be a finite number >= 0")
            out.append(_f32(m))
        else:
            if isinstance(m, bool) or not isinstance(m, numbers.Real) or not math.isfinite(float(m)) or m < 0:
                raise ConvParamError(f"multiplier={m!r}: must be a finite number >= 0")
            out.append(_fraction(m))
    return out * channels if len(out) == 1 else out


def requantize(acc: Any, multiplier: Any, zero_point: Any, *, rounding: str = "half_even",
               out_dtype: str = "int8", axis: int = 1) -> np.ndarray:
    """``clamp(R(acc * multiplier) + zero_point)`` to ``out_dtype``, ``R`` per ``rounding``.

    Parameters
    ----------
    acc : array_like of integers
        The exact accumulator (for ``gemmlowp`` it must fit int32).
    multiplier : number, ``(q, shift)`` (gemmlowp), or a sequence of them, one per channel along ``axis``
        Taken exactly (``Fraction(float)`` is the stored value); for ``float32`` rounded to float32 first;
        for ``gemmlowp`` a real number goes through :func:`quantize_multiplier`.
    zero_point : int
        The output's zero point, added after the rounding.
    rounding : str
        One of :data:`ROUNDINGS`.
    out_dtype : ``'int8'`` or ``'uint8'``
        The output type; values saturate to its range.
    axis : int
        The channel axis of a per-channel multiplier (1: ``(N, C, *S)``; a 1-D ``acc`` uses axis 0).

    Examples
    --------
    >>> requantize([[7, -7]], [Fraction(1, 2), Fraction(1, 14)], 0, rounding='half_up', axis=1).tolist()
    [[4, 0]]
    >>> requantize([1000, -1000], 1, 3, out_dtype='uint8').tolist()   # saturation at both ends
    [255, 0]
    >>> requantize([5], 0.1, 0, rounding='float32').tolist(), requantize([5], 0.1, 0).tolist()
    ([0], [1])
    """
    rounding = _rounding(rounding)
    lo, hi = OUT_DTYPES[_out_dtype(out_dtype)]
    a = _ints("acc", acc)
    zp = _ints("zero_point", zero_point)
    if zp.ndim:
        raise ConvParamError(f"zero_point={_short(zero_point)}: the output zero point is a scalar")
    ax = axis if a.ndim > 1 else 0
    channels = a.shape[ax] if a.ndim else 1
    ms = _multipliers(multiplier, channels, rounding)
    out = np.empty(a.shape, dtype=np.int64)
    for idx, v in np.ndenumerate(a):
        m = ms[idx[ax]] if a.ndim else ms[0]
        out[idx] = _requantize_one(int(v), m, int(zp), rounding, lo, hi)
    return out.astype(np.dtype(_out_dtype(out_dtype)))


# --------------------------------------------------------------------------- QLinearConv


def real_multiplier(x_scale: Any, w_scale: Any, y_scale: Any, channels: int, rounding: str) -> list[Any]:
    """The per-channel multiplier ``sx * sw[o] / sy`` as ``rounding`` computes it.

    Exact Fractions for the rounding modes to nearest; ``fl64(sx * sw) / sy`` in float64 for ``gemmlowp``
    (TFLite's double computation, then :func:`quantize_multiplier`); ``fl32(fl32(sx * sw) / sy)`` for
    ``float32`` (ONNX Runtime, fbgemm, qnnpack).

    >>> real_multiplier(0.5, [0.25, 1.0], 2.0, 2, 'half_even')
    [Fraction(1, 16), Fraction(1, 4)]
    """
    rounding = _rounding(rounding)
    sx = _scale("x_scale", x_scale, 1, per_channel=False)[0]
    sw = _scale("w_scale", w_scale, channels, per_channel=True)
    sy = _scale("y_scale", y_scale, 1, per_channel=False)[0]
    if rounding == "gemmlowp":
        return [quantize_multiplier(float(sx) * float(s) / float(sy)) for s in sw]
    if rounding == "float32":
        return [_f32(_f32(float(sx)) * _f32(float(s))) / _f32(float(sy)) for s in sw]
    return [sx * s / sy for s in sw]


def qlinear_conv(x: Any, x_scale: Any, x_zero_point: Any, w: Any, w_scale: Any, w_zero_point: Any, y_scale: Any,
                 y_zero_point: Any, b: Any = None, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: int = 1, rounding: str = "half_even", out_dtype: Any = None) -> np.ndarray:
    """ONNX ``QLinearConv``: ``clamp(R((conv_integer + b) * sx * sw[o] / sy) + zy)``.

    Parameters
    ----------
    x, x_scale, x_zero_point
        Input integers (N, C_in, *S), its scale (> 0) and zero point (scalars).
    w, w_scale, w_zero_point
        Weight integers (C_out, C_in // groups, *K), scale and zero point per tensor or per output channel.
    y_scale, y_zero_point
        Output scale and zero point (scalars).
    b : array_like of int32, shape (C_out,), optional
        Bias in the accumulator's scale ``sx * sw[o]`` (zero point 0), added to the exact accumulator.
    stride, padding, dilation, groups
        As :func:`refconv.oracle.conv`; the padding holds ``x_zero_point``.
    rounding : str
        One of :data:`ROUNDINGS` (default ``'half_even'``, ONNX's rounding).
    out_dtype : ``'int8'``, ``'uint8'`` or None
        None: the dtype of ``y_zero_point`` (ONNX), else of ``x``, when int8/uint8.

    Returns
    -------
    ndarray of out_dtype, shape (N, C_out, *O)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[10, 20, 30]]], np.uint8)
    >>> w = np.array([[[1, 2]]], np.int8)
    >>> qlinear_conv(x, 0.5, 10, w, 1.0, 0, 4.0, np.uint8(100)).tolist()   # [20, 50] / 8 = [2.5, 6.25]
    [[[102, 106]]]
    """
    rounding = _rounding(rounding)
    odt = _out_dtype(out_dtype, y_zero_point, x)
    wa = _ints("w", w)
    cout = wa.shape[0] if wa.ndim else 0
    acc = conv_integer(x, wa, x_zero_point, w_zero_point, stride=stride, padding=padding, dilation=dilation,
                       groups=groups).astype(object)
    if b is not None:
        ba = _ints("b", b)
        if ba.shape != (cout,):
            raise ConvParamError(f"b.shape={ba.shape}: expected (C_out,) = ({cout},)")
        if any(not INT32_MIN <= v <= INT32_MAX for v in ba.tolist()):
            raise ConvParamError(f"b={_short(b)}: the bias is int32")
        acc = acc + ba.reshape((cout,) + (1,) * (acc.ndim - 2))
    ms = real_multiplier(x_scale, w_scale, y_scale, cout, rounding)
    zy = _zero_point("y_zero_point", y_zero_point, 1, per_channel=False)[0]
    lo, hi = OUT_DTYPES[odt]
    if not lo <= zy <= hi:
        raise ConvParamError(f"y_zero_point={_short(y_zero_point)}: outside the range of {odt} [{lo}, {hi}]")
    return requantize(acc, ms, zy, rounding=rounding, out_dtype=odt, axis=1)
