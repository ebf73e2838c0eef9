"""Exact arithmetic for the oracle: numbers as scaled integers, and correct rounding.

Every finite float is a dyadic rational ``M * 2**E``.  An array of floats is
therefore an array of integers times one common power of two, and a sum of
products of such arrays is an integer times a known rational scale: exact.
The result is then rounded once, correctly (round to nearest, ties to even),
to the output format.

>>> ints, scale = to_scaled(np.array([0.5, 1.25, -3.0]))
>>> ints.tolist(), scale
([2, 5, -12], Fraction(1, 4))
>>> bool(round_rational(1, 3, FORMATS['float32']) == np.float32(1 / 3))
True
>>> round_rational(1, 3, FORMATS['bfloat16'])   # 8 significant bits
0.333984375
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatFormat",
    "FORMATS",
    "format_of",
    "classify",
    "to_scaled",
    "round_rational",
    "round_scaled",
    "to_fractions",
    "iroot",
    "round_root",
    "INT64_SAFE",
]

#: integer arrays whose every partial sum stays below this are computed in int64
INT64_SAFE = 2**62


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: ``p`` significant bits, normal exponents ``[emin, emax]``."""

    name: str
    p: int
    emin: int
    emax: int

    @property
    def unit_roundoff(self) -> Fraction:
        """``u = 2**-p``: the relative error bound of one rounding to nearest."""
        return Fraction(1, 2**self.p)

    @property
    def max_finite(self) -> Fraction:
        return Fraction(2**self.p - 1) * Fraction(2) ** (self.emax - self.p + 1)


FORMATS = {
    "float64": FloatFormat("float64", 53, -1022, 1023),
    "float32": FloatFormat("float32", 24, -126, 127),
    "tf32": FloatFormat("tf32", 11, -126, 127),
    "bfloat16": FloatFormat("bfloat16", 8, -126, 127),
    "float16": FloatFormat("float16", 11, -14, 15),
}


def format_of(dtype: npt.DTypeLike) -> FloatFormat:
    """The :class:`FloatFormat` of a numpy float dtype.

    >>> format_of(np.float16).p
    11
    """
    name = np.dtype(dtype).name
    if name not in FORMATS:
        raise TypeError(f"dtype={name}: exact rounding supports float16, float32 and float64")
    return FORMATS[name]


def _is_sympy(v: Any) -> bool:
    return type(v).__module__.startswith("sympy")


def classify(a: np.ndarray, name: str) -> str:
    """Kind of arithmetic an array needs: ``'int'``, ``'float'``, ``'rational'`` or ``'symbolic'``.

    >>> classify(np.array([1, 2]), 'x'), classify(np.array([0.5]), 'x')
    ('int', 'float')
    >>> classify(np.array([Fraction(1, 3)], dtype=object), 'x')
    'rational'
    >>> classify(np.array([1 + 2j]), 'x')
    Traceback (most recent call last):
        ...
    TypeError: x.dtype=complex128: the oracle supports integer, float, Fraction and sympy entries
    """
    kind = a.dtype.kind
    if kind in "iu":
        return "int"
    if kind == "f" and a.dtype.itemsize <= 8:
        return "float"
    if kind == "O":
        seen = "rational"
        for v in a.flat:
            if _is_sympy(v):
                return "symbolic"
            if isinstance(v, bool) or not isinstance(v, (int, float, Fraction, np.integer, np.floating)):
                raise TypeError(f"{name} holds {type(v).__name__} {v!r}: entries must be int, Fraction, float or sympy")
        return seen
    raise TypeError(f"{name}.dtype={a.dtype}: the oracle supports integer, float, Fraction and sympy entries")


def _to_int64_or_object(vals: np.ndarray) -> np.ndarray:
    """Object array of Python ints -> int64 when every value fits, else unchanged."""
    if vals.size == 0:
        return vals.astype(np.int64)
    big = max(abs(int(v)) for v in vals.flat)
    return vals.astype(np.int64) if big < INT64_SAFE else vals


def to_scaled(a: np.ndarray) -> tuple[np.ndarray, Fraction]:
    """Write ``a`` exactly as ``ints * scale``: ``ints`` int64 (or object ints when large).

    Floats must be finite (the caller treats IEEE specials separately).  The
    scale is the largest power of two (floats) or ``1 / lcm(denominators)``
    (Fractions) that makes every entry an integer.

    >>> to_scaled(np.array([3, -4]))[0].dtype
    dtype('int64')
    >>> i, s = to_scaled(np.array([Fraction(1, 2), Fraction(2, 3)], dtype=object))
    >>> i.tolist(), s
    ([3, 4], Fraction(1, 6))
    >>> i, s = to_scaled(np.array([1e300, 1e-300]))
    >>> i.dtype, Fraction(int(i[1])) * s == Fraction(1e-300)
    (dtype('O'), True)
    """
    kind = a.dtype.kind
    if kind in "iu":
        if a.dtype == np.uint64 and a.size and int(a.max()) >= INT64_SAFE:
            return a.astype(object), Fraction(1)
        return a.astype(np.int64), Fraction(1)
    if kind == "f":
        return _floats_to_scaled(a.astype(np.float64))
    # object: ints, Fractions and floats, all exact rationals
    fr = np.empty(a.shape, dtype=object)
    fr.flat[:] = [Fraction(v) if not isinstance(v, (int, np.integer)) else int(v) for v in a.flat]
    den = 1
    for v in fr.flat:
        if isinstance(v, Fraction):
            den = math.lcm(den, v.denominator)
    ints = np.empty(a.shape, dtype=object)
    ints.flat[:] = [int(v * den) for v in fr.flat]
    return _to_int64_or_object(ints), Fraction(1, den)


def _floats_to_scaled(a: np.ndarray) -> tuple[np.ndarray, Fraction]:
    # a = m * 2**e with 0.5 <= |m| < 1; M = m * 2**53 is an integer significand
    nz = a != 0
    if not nz.any():
        return np.zeros(a.shape, dtype=np.int64), Fraction(1)
    m, e = np.frexp(a)
    sig = (m * 2.0**53).astype(np.int64)
    exp = e.astype(np.int64) - 53
    # strip trailing zero bits: sig = odd * 2**tz
    low = np.where(nz, sig & -sig, 1)
    tz = (np.frexp(low.astype(np.float64))[1] - 1).astype(np.int64)
    odd = np.where(nz, sig >> tz, 0)
    top = np.where(nz, exp + tz, np.iinfo(np.int64).max)
    k = int(top.min())  # common exponent: every entry is an integer multiple of 2**k
    shift = np.where(nz, exp + tz - k, 0)
    bits = np.frexp(np.abs(odd).astype(np.float64))[1].astype(np.int64) + shift
    if int(bits.max()) <= 62:
        ints = np.left_shift(odd, shift)
    else:
        ints = np.left_shift(odd.astype(object), shift.astype(object))
    scale = Fraction(2) ** k
    return ints, scale


def round_rational(num: int, den: int, fmt: FloatFormat) -> float:
    """``num / den`` rounded to nearest, ties to even, in ``fmt`` (subnormals and overflow included).

    The value is returned as a Python float, which holds it exactly.

    >>> round_rational(1, 2**1075, FORMATS['float64'])   # half the smallest subnormal: ties to even (0)
    0.0
    >>> round_rational(3, 2**1076, FORMATS['float64']) == 5e-324
    True
    >>> round_rational(2**128, 1, FORMATS['float32'])
    inf
    >>> round_rational(65519, 1, FORMATS['float16']), round_rational(65520, 1, FORMATS['float16'])
    (65504.0, inf)
    """
    if den <= 0:
        raise ValueError(f"den={den}: must be positive")
    if num == 0:
        return 0.0
    neg = num < 0
    num = -num if neg else num
    # e = floor(log2(num / den)): 2**e <= num/den < 2**(e+1)
    e = num.bit_length() - den.bit_length()
    if (num << max(0, -e)) < (den << max(0, e)):
        e -= 1
    q = max(e, fmt.emin) - (fmt.p - 1)  # the quantum (ulp exponent) at this magnitude
    n2, d2 = (num, den << q) if q >= 0 else (num << -q, den)
    m, r = divmod(n2, d2)
    if 2 * r > d2 or (2 * r == d2 and m & 1):
        m += 1
    if m == 0:
        return -0.0 if neg else 0.0
    if m.bit_length() - 1 + q > fmt.emax:
        return -math.inf if neg else math.inf
    val = math.ldexp(m, q)
    return -val if neg else val


def round_scaled(ints: np.ndarray, scale: Fraction, dtype: npt.DTypeLike) -> np.ndarray:
    """Correctly round ``ints * scale`` elementwise to the float ``dtype``.

    >>> round_scaled(np.array([1, 3]), Fraction(1, 3), np.float32).tolist() == [float(np.float32(1/3)), 1.0]
    True
    """
    dt = np.dtype(dtype)
    fmt = format_of(dt)
    out = np.empty(ints.shape, dtype=dt)
    num, den = scale.numerator, scale.denominator
    # exact fast path: small integers times a power of two inside the normal range
    if ints.dtype == np.int64 and den & (den - 1) == 0 and num & (num - 1) == 0:
        k = num.bit_length() - den.bit_length()
        big = int(np.abs(ints).max()) if ints.size else 0
        if big < 2**fmt.p and (big == 0 or fmt.emin <= k and big.bit_length() + k <= fmt.emax):
            out[...] = np.ldexp(ints.astype(np.float64), k)
            return out
    flat = out.reshape(-1)
    for i, v in enumerate(ints.flat):
        flat[i] = round_rational(int(v) * num, den, fmt)
    return out


def to_fractions(ints: np.ndarray, scale: Fraction) -> np.ndarray:
    """``ints * scale`` as an object array of Fractions (exact).

    >>> to_fractions(np.array([1, 2]), Fraction(1, 4)).tolist()
    [Fraction(1, 4), Fraction(1, 2)]
    """
    out = np.empty(ints.shape, dtype=object)
    out.flat[:] = [Fraction(int(v)) * scale for v in ints.flat]
    return out


def iroot(a: int, p: int) -> int:
    """``floor(a ** (1/p))`` for an integer ``a >= 0`` and ``p >= 1``, exactly (Newton's iteration from above).

    >>> iroot(26, 3), iroot(27, 3), iroot(10**40, 2) == 10**20
    (2, 3, True)
    """
    if a < 0 or p < 1:
        raise ValueError(f"a={a}, p={p}: need a >= 0 and p >= 1")
    if a < 2 or p == 1:
        return a
    x = 1 << -(-a.bit_length() // p)  # 2**ceil(bits/p) > a**(1/p)
    while True:
        # x_{k+1} = ((p-1) x_k + a / x_k**(p-1)) / p decreases monotonically to the floor of the root
        y = ((p - 1) * x + a // x ** (p - 1)) // p
        if y >= x:
            return x
        x = y


def round_root(num: int, den: int, p: int, fmt: FloatFormat) -> float:
    """``(num / den) ** (1/p)`` (``num >= 0``, ``den > 0``) rounded to nearest, ties to even, in ``fmt``.

    With ``m = floor(r * 2**e)`` of at least ``fmt.p + 2`` bits, the root ``r``
    is ``m * 2**-e`` when that is exact, else strictly inside
    ``(m, m + 1) * 2**-e``, an interval no rounding boundary of ``fmt`` cuts:
    rounding its midpoint rounds ``r``.

    >>> round_root(2, 1, 2, FORMATS['float64']) == 2 ** 0.5
    True
    >>> round_root(27, 8, 3, FORMATS['float64'])
    1.5
    """
    if num < 0 or den <= 0:
        raise ValueError(f"num={num}, den={den}: need num >= 0 and den > 0")
    if num == 0:
        return 0.0
    # log2 r >= (bits(num) - 1 - bits(den)) / p: choose e with r * 2**e >= 2**(fmt.p + 2)
    e = fmt.p + 3 - (num.bit_length() - 1 - den.bit_length()) // p
    while True:
        a, b = (num << (e * p), den) if e >= 0 else (num, den << (-e * p))
        m = iroot(a // b, p)
        if m.bit_length() >= fmt.p + 2:
            break
        e += fmt.p + 2 - m.bit_length() + 1
    if m**p * b == a:
        return round_rational(m, 1 << e, fmt) if e >= 0 else round_rational(m << -e, 1, fmt)
    # the midpoint of (m, m + 1) * 2**-e
    return round_rational(2 * m + 1, 1 << (e + 1), fmt) if e + 1 >= 0 else round_rational((2 * m + 1) << -(e + 1), 1, fmt)
