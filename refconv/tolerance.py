r"""Rigorous per-element error bounds for float convolutions ("Exact, then bounded").

Every bound of refconv lives here: the formats and precision profiles, the
bound of direct summation, of FFT convolution, of Winograd convolution and of
prefix-sum (summed-area table) average pooling, and the flush-to-zero terms.
:mod:`refconv.conformance.bounds` applies them to conformance cases;
``specs/tolerance.md`` derives each one.

A dot product of ``n`` terms computed in a format with unit roundoff ``u``, in
any summation order (blocked, pairwise, with or without FMA), satisfies
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1)

.. math::

    |\hat y - y| \le \gamma_n \sum_i |x_i w_i|, \qquad \gamma_n = \frac{n u}{1 - n u},

plus, with underflow, an absolute ``eta`` (half the smallest subnormal: the
error of one rounding below the smallest normal) for each product.  A
*precision profile* (:func:`profile`) says what a target may do on the way:
round its inputs to a narrower format, accumulate in some format, round the
output, flush subnormals to zero.  :func:`elementwise_bound` is the direct
bound of a profile; :func:`fft_error`, :func:`winograd_error` and
:func:`prefix_sum_error` are the computation errors of the fast algorithms.

The array-level helpers (:func:`conv_error_bound` ...) judge a result against
the oracle's value rounded to the working dtype (``against='rounded'``, one
more ``u |y| + eta``) or against the exact value (``against='exact'``).
Absolute sums are computed in float64 and rounded **up**; ``gamma`` is
computed in exact rational arithmetic and rounded up.

Examples
--------
>>> unit_roundoff('float32') == 2.0 ** -24
True
>>> FORMATS['float32'].eta == 2.0 ** -150       # half the smallest subnormal
True
>>> gamma(2, 0.5 ** 24) > 2 * 0.5 ** 24
True
>>> x = np.ones((1, 1, 4), np.float32); w = np.ones((1, 1, 3), np.float32)
>>> bound = conv_error_bound(x, w)
>>> bound.shape, bool((bound > 3 * 3 * 2.0 ** -24).all())
((1, 1, 2), True)
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Iterable, SupportsIndex, SupportsInt

import numpy as np
import numpy.typing as npt

from . import exact as _exact

if TYPE_CHECKING:
    from .params import IntOrInts, ShapeLike

__all__ = [
    # formats and profiles
    "Format",
    "FORMATS",
    "UNIT_ROUNDOFF",
    "Profile",
    "PROFILES",
    "profile",
    "unit_roundoff",
    "smallest_subnormal",
    "gamma",
    "round_up",
    "input_rounding",
    "round_significand",
    "round_to",
    # bounds on magnitudes
    "op_terms",
    "elementwise_bound",
    "input_underflow_bound",
    "fft_levels",
    "fft_eps",
    "fft_error",
    "normwise_fft_bound",
    "WinogradTransform",
    "winograd_transform",
    "WINOGRAD_VARIANTS",
    "winograd_error",
    "prefix_sum_error",
    # bounds on arrays
    "abs_sums",
    "dot_bound",
    "conv_error_bound",
    "conv_transpose_error_bound",
    "conv_grad_input_error_bound",
    "conv_grad_weight_error_bound",
    "conv_grad_bias_error_bound",
    "avg_pool_error_bound",
    "avg_pool_grad_error_bound",
    "fft_conv_error_bound",
    "winograd_conv_error_bound",
    "prefix_sum_avg_pool_error_bound",
    "within_bound",
]

_SQRT2_UP = 1.4142135623730951 * (1 + 2.0**-52)  # an upper bound of sqrt(2)
#: relative slack that keeps a bound evaluated in float64 an upper bound (a few ulps of each operation)
_SLACK = 1.0 + 16 * 2.0**-53


# --------------------------------------------------------------------------- formats


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: ``p`` significant bits (with the hidden one), normals from ``2**emin``."""

    name: str
    p: int
    emin: int

    @property
    def u(self) -> float:
        """Unit roundoff ``2**-p`` (round to nearest)."""
        return 2.0**-self.p

    @property
    def eta(self) -> float:
        """``2**(emin - p) = tiny * u``: half the smallest subnormal, the underflow error of one rounding.

        Rounded up to a float64 (``2**-1075`` is not one: float64's ``eta`` is ``2**-1074``).
        """
        return _up(Fraction(1, 2 ** (self.p - self.emin)))

    @property
    def tiny(self) -> float:
        """The smallest normal number ``2**emin`` (what flush-to-zero loses at most)."""
        return 2.0**self.emin

    @property
    def subnormal(self) -> float:
        """The smallest positive subnormal ``2**(emin - p + 1)``."""
        return 2.0 ** (self.emin - self.p + 1)


#: the formats of :mod:`refconv.exact` (one table of significand bits and exponent ranges)
FORMATS: dict[str, Format] = {name: Format(name, f.p, f.emin) for name, f in _exact.FORMATS.items()}

#: unit roundoff (half an ulp of 1) of each format
UNIT_ROUNDOFF = {name: f.u for name, f in FORMATS.items()}


def _fmt(dtype: npt.DTypeLike) -> str:
    if isinstance(dtype, str) and dtype in FORMATS:
        return dtype
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype={dtype!r}: expected one of {sorted(FORMATS)} or a numpy float dtype") from None
    name = {"complex128": "float64", "complex64": "float32"}.get(dt.name, dt.name)
    if name not in FORMATS:
        raise ValueError(f"dtype={dtype!r}: expected one of {sorted(FORMATS)} or a numpy float dtype")
    return name


def unit_roundoff(dtype: npt.DTypeLike) -> float:
    """``u`` of a format name (``'float32'``, ``'tf32'``, ``'bfloat16'`` ...) or a numpy float/complex dtype.

    >>> unit_roundoff(np.float64) == 2.0 ** -53, unit_roundoff('bfloat16')
    (True, 0.00390625)
    """
    return FORMATS[_fmt(dtype)].u


def smallest_subnormal(dtype: npt.DTypeLike) -> float:
    """The smallest positive subnormal of the format (``2 * eta``).

    >>> smallest_subnormal('float32') == 2.0 ** -149, smallest_subnormal('tf32') == 2.0 ** -136
    (True, True)
    """
    return FORMATS[_fmt(dtype)].subnormal


def round_up(a: npt.ArrayLike) -> np.ndarray:
    """One float64 step towards ``+inf``: an upper bound of a value computed with one rounding to nearest."""
    return np.nextafter(np.asarray(a, dtype=np.float64), np.inf)


def _up(q: Fraction) -> float:
    """The smallest float64 ``>= q``."""
    f = float(q)
    return f if Fraction(f) >= q else float(np.nextafter(f, np.inf))


def gamma(n: SupportsIndex, u: float, *, undefined: str = "raise") -> float:
    """``gamma_n = n u / (1 - n u)``, computed exactly and rounded up to float64.

    Where ``n u >= 1`` no bound exists: ``undefined='raise'`` raises
    ``ValueError``, ``undefined='inf'`` returns ``inf`` (the conformance judge
    then leaves those elements unjudged and says so).

    >>> gamma(0, 2.0 ** -24)
    0.0
    >>> gamma(10, 2.0 ** -24) >= 10 * 2.0 ** -24
    True
    >>> gamma(2 ** 24, 2.0 ** -24, undefined='inf')
    inf
    >>> gamma(2 ** 24, 2.0 ** -24)
    Traceback (most recent call last):
        ...
    ValueError: n=16777216, u=5.960464477539063e-08: n*u >= 1, gamma_n is undefined
    """
    if undefined not in ("raise", "inf"):
        raise ValueError(f"undefined={undefined!r}: must be 'raise' or 'inf'")
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"n={n}: must be >= 0")
    nu = n * Fraction(u)
    if nu >= 1:
        if undefined == "inf":
            return math.inf
        raise ValueError(f"n={n}, u={u}: n*u >= 1, gamma_n is undefined")
    return _up(nu / (1 - nu))


def input_rounding(fmt: npt.DTypeLike) -> float:
    """Relative error of a product whose two factors were first rounded to ``fmt``: ``2 u + u^2`` (rounded up).

    ``|fl(x) fl(w) - x w| <= (2u + u^2) |x w|`` away from underflow; the extra
    term of a precision profile that rounds its inputs (TF32, bfloat16, float16).

    >>> input_rounding('bfloat16') == 2 * 2.0 ** -8 + 2.0 ** -16
    True
    """
    u = Fraction(unit_roundoff(fmt))
    return _up(2 * u + u * u)


def round_significand(x: npt.ArrayLike, p: int) -> np.ndarray:
    """Round to ``p`` significant bits, to nearest even, keeping the dtype (no range limits).

    Emulates TF32 (``p=11``) and bfloat16 (``p=8``) on float32 or float64
    arrays: ``m * 2**e`` with ``0.5 <= |m| < 1`` becomes ``rint(m * 2**p) * 2**(e-p)``;
    every step is exact in the array's own format.

    >>> round_significand(np.array([1.0 + 2**-8, 1.0 + 3 * 2**-8], np.float32), 8).tolist()
    [1.0, 1.015625]
    """
    x = np.asarray(x)
    m, e = np.frexp(x)
    return np.ldexp(np.rint(np.ldexp(m, p)), e - p).astype(x.dtype)


def round_to(x: npt.ArrayLike, fmt: str) -> np.ndarray:
    """Round an array to the values of format ``fmt``, keeping its dtype.

    >>> float(round_to(np.float32(1 + 2**-11), 'float16'))
    1.0
    """
    x = np.asarray(x)
    if fmt == "float16":
        return x.astype(np.float16).astype(x.dtype)
    if fmt in ("float32", "float64") and FORMATS[fmt].p >= FORMATS[np.dtype(x.dtype).name].p:
        return x
    if fmt == "float32":
        return x.astype(np.float32).astype(x.dtype)
    return round_significand(x, FORMATS[fmt].p)


# --------------------------------------------------------------------------- precision profiles

_BASE_PROFILES: dict[str, tuple[str, str]] = {
    "float64": ("float64", "float64"),
    "float32": ("float32", "float32"),
    # TF32 tensor cores: inputs rounded to 11 significant bits, products and sums in float32
    "tf32": ("tf32", "float32"),
    "bfloat16": ("bfloat16", "bfloat16"),
    "float16": ("float16", "float16"),
}

#: profile name -> (input format, accumulation format); each ``'<name>-ftz'`` may also flush subnormals to zero
PROFILES: dict[str, tuple[str, str]] = {**_BASE_PROFILES, **{f"{k}-ftz": v for k, v in _BASE_PROFILES.items()}}


@dataclass(frozen=True)
class Profile:
    """What a target may do: round inputs (``u_in``), accumulate (``u_acc``), round the output (``u_out``).

    ``eta_acc``, ``eta_out`` and ``eta_in`` are the absolute errors one
    operation, the output rounding and one input rounding may add near zero:
    half the smallest subnormal of the format with gradual underflow (IEEE
    754), the smallest normal number when ``ftz`` (flush-to-zero and
    denormals-are-zero: every operation, not only products, may lose it).
    """

    name: str
    u_in: float
    u_acc: float
    u_out: float
    eta_acc: float
    eta_out: float
    eta_in: float = 0.0
    ftz: bool = False

    def describe(self) -> str:
        def p2(u: float) -> str:
            return "0" if u == 0 else f"2^{int(round(math.log2(u)))}"

        flush = ", subnormals may flush to zero" if self.ftz else ""
        return (f"{self.name} (inputs u={p2(self.u_in)}, accumulation u={p2(self.u_acc)}, "
                f"output u={p2(self.u_out)}{flush})")


def _format_of_dtype(dtype: npt.DTypeLike) -> Format:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in FORMATS:
        raise ValueError(f"dtype={name!r}: floating dtypes are " + ", ".join(k for k in FORMATS if k != "tf32"))
    return FORMATS[name]


def profile(name: str, dtype: npt.DTypeLike = "float32") -> Profile:
    """The precision profile ``name`` for a target given arrays of ``dtype``.

    Inputs already in a format at least as narrow as the profile's input format
    are not rounded again (``u_in = 0``).  ``'<name>-ftz'`` additionally allows
    flush-to-zero of inputs, intermediate results and outputs.

    >>> profile('bfloat16', 'float32').describe()
    'bfloat16 (inputs u=2^-8, accumulation u=2^-8, output u=2^-24)'
    >>> profile('float64', 'float32').describe()
    'float64 (inputs u=0, accumulation u=2^-53, output u=2^-24)'
    >>> p = profile('float32-ftz')
    >>> p.ftz, p.eta_acc == 2.0 ** -126, p.describe()
    (True, True, 'float32-ftz (inputs u=0, accumulation u=2^-24, output u=2^-24, subnormals may flush to zero)')
    >>> profile('fp8')
    Traceback (most recent call last):
        ...
    ValueError: precision='fp8': profiles are 'float64', 'float32', 'tf32', 'bfloat16', 'float16', 'float64-ftz', 'float32-ftz', 'tf32-ftz', 'bfloat16-ftz', 'float16-ftz'
    """
    if name not in PROFILES:
        raise ValueError(f"precision={name!r}: profiles are " + ", ".join(repr(k) for k in PROFILES))
    fin, facc = (FORMATS[f] for f in PROFILES[name])
    fdt = _format_of_dtype(dtype)
    # inputs of dtype fdt are exact in fin when fin keeps at least as many bits and as much range
    u_in = 0.0 if (fin.p >= fdt.p and fin.emin <= fdt.emin) else fin.u
    if name.endswith("-ftz"):
        # flush-to-zero: any result (and, denormals-are-zero, any input) below the smallest normal may become 0
        return Profile(name, u_in, facc.u, fdt.u, facc.tiny, fdt.tiny, fin.tiny, True)
    # gradual underflow: rounding an input to a narrower format may add half its smallest subnormal
    return Profile(name, u_in, facc.u, fdt.u, facc.eta, fdt.eta, fin.eta if u_in else 0.0, False)


def _narrower_output(prof: Profile) -> bool:
    return not (prof.u_acc == prof.u_out and prof.eta_acc == prof.eta_out)


# --------------------------------------------------------------------------- the direct bound


def op_terms(op: str, terms: int) -> tuple[int, int]:
    """``(n, input_factors)`` of the direct bound of ``op`` with ``terms`` summed terms per output element.

    Max pooling selects (no rounding, ``n = 0``).  Average pooling: ``k - 1``
    additions, then up to four roundings on each term's path (a reciprocal
    ``1/k``, the product or the division, a border rescaling ``k/count`` and
    its product): ``n = k + 3``.  The bilinear ops: ``n = terms`` products of
    two rounded factors.

    >>> op_terms('avg_pool', 9), op_terms('max_pool', 9), op_terms('conv', 9)
    ((12, 1), (0, 1), (9, 2))
    """
    if op == "max_pool":
        return 0, 1
    if op == "avg_pool":
        return terms + 3, 1
    return terms, 2


def _assemble(y: npt.ArrayLike, e_in: Any, e_alg: Any, n: int, prof: Profile) -> np.ndarray:
    """``E_in + E_alg + E_out``, with the final rounding to the output format (specs/tolerance.md)."""
    y = np.abs(np.asarray(y, dtype=np.float64))
    y = np.where(np.isfinite(y), y, 0.0)
    with np.errstate(invalid="ignore"):
        if not _narrower_output(prof):
            # accumulation format == output format: the result of the last operation is already in the output
            # format, or comes from a wider one whose own errors are below u**2 per operation; either way the
            # final rounding is one of the <= n roundings of size u on each term's path that gamma_n counts
            # (gamma_n(u) - u >= gamma_n(u_wide) * (1 + u) once u_wide <= u**2 / 2), so only underflow remains
            e_out = np.where(np.asarray(n) > 0, 0.0, prof.u_out * (y + e_in + e_alg)) + prof.eta_out
        else:
            e_out = prof.u_out * (y + e_in + e_alg) + prof.eta_out
        total = e_in + e_alg + e_out
    # the bound itself is evaluated in float64: inflate by a few float64 ulps so it stays an upper bound
    return total * _SLACK


def _direct_error(S: np.ndarray, n: int, prof: Profile, grow: float, complex_products: bool = False) -> np.ndarray:
    """``E_alg`` of direct summation: ``gamma_n grow S`` plus the underflow of each operation."""
    g = _SQRT2_UP * gamma(n + 2, prof.u_acc, undefined="inf") if complex_products else gamma(n, prof.u_acc, undefined="inf")
    if math.isinf(g):
        return np.full(np.shape(S), np.inf)
    # gradual underflow: each of the n products may lose eta, grown by at most (1 + gamma_n) on its way;
    # flush-to-zero: each of the n products and n additions may lose the smallest normal; complex: 4 real products
    ops = n * (2 if prof.ftz else 1) * (4 if complex_products else 1)
    return g * grow * S + ops * prof.eta_acc * max(2.0, 1.0 + g)


def elementwise_bound(S: npt.ArrayLike, y: npt.ArrayLike, n: int, prof: Profile, *, input_factors: int = 2,
                      complex_products: bool = False) -> np.ndarray:
    """``|y_hat - y|`` bound for values ``y`` with ``S = |b| + sum |x_i w_i|`` over ``n`` terms (direct summation).

    ``input_factors`` is how many rounded inputs each term multiplies (2 for a
    product ``x*w``, 1 for a plain sum as in average pooling).  Complex
    products use ``sqrt(2) gamma_{n+2}`` (Higham §3.6).  Not included: the
    absolute error of rounding or flushing tiny inputs, which needs the sums
    of the factors (:func:`input_underflow_bound`).

    >>> p = profile('float32')
    >>> b = elementwise_bound(np.array([10.0]), np.array([4.0]), 5, p)
    >>> bool(b[0] > 5 * 2.0**-24 * 10)
    True
    """
    S = np.asarray(S, dtype=np.float64)
    # infinite expectations (a max-pooling window of padding only) are compared exactly, not bounded
    S = np.where(np.isfinite(S), S, 0.0)
    grow = (1.0 + prof.u_in) ** input_factors
    e_in = (grow - 1.0) * S
    return _assemble(y, e_in, _direct_error(S, n, prof, grow, complex_products), n, prof)


def input_underflow_bound(factor_sums: npt.ArrayLike, n: int, prof: Profile, *, input_factors: int = 2) -> np.ndarray:
    """Absolute error from rounding or flushing tiny inputs: ``(1 + gamma_n) (1 + u_out) theta (1 + u_in) A (+ n theta^2)``.

    An input rounded to a narrower format (or flushed, ``ftz``) becomes
    ``x (1 + d) + e`` with ``|d| <= u_in``, ``|e| <= theta = prof.eta_in``; a
    product of two such factors is off by ``(2 u_in + u_in^2)|x w|`` (in
    :func:`elementwise_bound`) plus ``theta (1 + u_in)(|x| + |w|) + theta^2``.
    ``factor_sums`` is, per output element, ``A = sum_i (|x_i| + |w_i|)``
    (``input_factors=2``) or the sum of the coefficients of the inputs
    (``input_factors=1``: ``count / divisor`` for average pooling, 1 for max
    pooling).

    >>> p = profile('float16', 'float32')
    >>> float(input_underflow_bound(np.array([3.0]), 1, p)[0]) > 3 * 2.0 ** -25
    True
    >>> float(input_underflow_bound(np.array([3.0]), 1, profile('float32'))[0])
    0.0
    """
    A = np.asarray(factor_sums, dtype=np.float64)
    th = prof.eta_in
    if th == 0:
        return np.zeros(A.shape)
    g = gamma(n, prof.u_acc, undefined="inf")
    if input_factors == 2:
        base = th * (1 + prof.u_in) * A + n * th * th
    else:
        base = th * A
    return base * (1 + g) * (1 + prof.u_out) * _SLACK


# --------------------------------------------------------------------------- FFT


def fft_levels(lengths: Iterable[SupportsInt]) -> int:
    """Butterfly levels allowed for transforms of the linear-convolution ``lengths`` (one per axis).

    ``ceil(log2 L) + 2`` per axis: any transform length up to twice the next
    power of two above ``L`` (``next_fast_len`` and power-of-two padding), and
    one level for the real-to-complex packing of real transforms.

    >>> fft_levels([10, 10])
    12
    """
    return sum(math.ceil(math.log2(max(2, int(L)))) + 2 for L in lengths)


def fft_eps(levels: int, u: float) -> float:
    """Relative (to ``min(||p||_2 ||q||_1, ||p||_1 ||q||_2)``) error of one FFT convolution, rounded up.

    With ``eta_f = u + gamma_4 (sqrt(2) + u)`` (Higham Thm 24.2, twiddles
    accurate to ``u``), ``tau = levels eta_f / (1 - levels eta_f)``,
    ``mu = sqrt(2) gamma_2`` (one complex product) and
    ``tau' = tau + u (1 + tau)`` (inverse transform and its ``1/L`` scaling):
    ``eps = (1 + tau')(2 tau + tau^2 + mu (1 + tau)^2) + tau'``
    (specs/tolerance.md, "FFT").  ``inf`` when no bound exists.

    >>> 1e-6 < fft_eps(10, 2.0 ** -24) < 1e-4
    True
    """
    g2, g4 = gamma(2, u, undefined="inf"), gamma(4, u, undefined="inf")
    U, sq2 = Fraction(u), Fraction(_SQRT2_UP)
    if math.isinf(g4):
        return math.inf
    eta_f = U + Fraction(g4) * (sq2 + U)
    lv = Fraction(levels) * eta_f
    if lv >= 1:
        return math.inf
    tau = lv / (1 - lv)
    mu = sq2 * Fraction(g2)
    tau2 = tau + U * (1 + tau)
    return _up((1 + tau2) * (2 * tau + tau * tau + mu * (1 + tau) ** 2) + tau2)


def fft_error(M: npt.ArrayLike, A: npt.ArrayLike, levels: int, channels: int, prof: Profile, *, bias: npt.ArrayLike = 0.0) -> np.ndarray:
    """``E_alg`` of a convolution computed with FFTs, per output map (broadcast by the caller).

    ``M = sum_c min(||p_c||_2 ||q_c||_1, ||p_c||_1 ||q_c||_2)`` over the
    ``channels`` one-channel convolutions summed into the output,
    ``A = sum_c (||p_c||_1 + ||q_c||_1 + 1)``: each one-channel FFT convolution
    is off by at most ``eps M_c`` (:func:`fft_eps`); summing the channels (and
    the bias) adds ``gamma_C (M + |b|)`` and grows the errors by ``1 + 2 gamma_C``;
    underflow adds at most ``16 * 2**levels * eta_acc`` per unit of ``A``.

    >>> p = profile('float32')
    >>> e = fft_error(np.array([1.0]), np.array([3.0]), 10, 1, p)
    >>> bool(fft_eps(10, 2.0 ** -24) < e[0] < 1e-4)
    True
    """
    M = np.asarray(M, dtype=np.float64)
    bias = np.abs(np.asarray(bias, dtype=np.float64))
    cb = channels + (1 if np.any(bias) else 0)
    eps = fft_eps(levels, prof.u_acc)
    gC = gamma(cb, prof.u_acc, undefined="inf")
    if math.isinf(eps) or math.isinf(gC):
        return np.full(np.broadcast_shapes(M.shape, bias.shape), np.inf)
    under = 16.0 * 2.0**levels * prof.eta_acc * (2 if prof.ftz else 1) * np.asarray(A, dtype=np.float64)
    return (eps * M * (1 + 2 * gC) + gC * (M + bias) + under) * _SLACK


def normwise_fft_bound(x_norm2: npt.ArrayLike, w_norm1: npt.ArrayLike, length: int, channels: int, prof: Profile) -> np.ndarray:
    """FFT allowance from per-map sums ``sum_c ||x_c||_2 ||w_c||_1``, transforms of ``length`` points.

    The earlier interface of :func:`fft_error` (``levels = ceil(log2 length)``,
    inputs rounded by ``u_in``), kept for callers that hold those norms.

    >>> p = profile('float32')
    >>> 1e-6 < float(normwise_fft_bound(1.0, 1.0, 1024, 1, p)) < 1e-4
    True
    """
    grow = (1.0 + prof.u_in) ** 2
    M = grow * np.asarray(x_norm2, dtype=np.float64) * np.asarray(w_norm1, dtype=np.float64)
    return fft_error(M, 0.0, math.ceil(math.log2(max(int(length), 2))), channels, prof)


# --------------------------------------------------------------------------- Winograd


@dataclass(frozen=True)
class WinogradTransform:
    """The matrices of Winograd's minimal filtering ``F(m, r)`` at the given finite points (and infinity).

    ``y = A^T [(G g) * (B^T d)]`` for an input tile ``d`` of ``alpha = m + r - 1``
    samples and a kernel ``g`` of ``r`` taps (cross-correlation,
    ``y_i = sum_q g_q d_{i+q}``); exact rationals.
    """

    m: int
    r: int
    points: tuple[Fraction, ...]
    AT: tuple[tuple[Fraction, ...], ...]
    G: tuple[tuple[Fraction, ...], ...]
    BT: tuple[tuple[Fraction, ...], ...]

    @property
    def alpha(self) -> int:
        return self.m + self.r - 1

    def abs_matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``|A^T|``, ``|G|``, ``|B^T|`` as float64, each entry rounded up."""
        AT, G, BT = (np.array([[_up(abs(v)) for v in row] for row in M]) for M in (self.AT, self.G, self.BT))
        return AT, G, BT

    def roundings(self, dims: int, channels: int, bias: bool) -> int:
        """Roundings on any term's path: ``k = d (r + 1) + 2 d (alpha + 1) + C + bias``.

        Each 1-D transform stage with ``b`` inputs per output is ``b - 1``
        additions and one multiplication by a constant that may itself be
        rounded (``1/6``): ``b + 1``; ``d`` kernel stages, ``d`` input stages,
        ``d`` output stages; the elementwise product and ``C - 1`` channel
        additions; one bias addition.
        """
        return dims * (self.r + 1) + 2 * dims * (self.alpha + 1) + channels + int(bias)


def _solve_exact(M: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    """The solution of the consistent, full-column-rank system ``M v = rhs`` (exact Gaussian elimination)."""
    rows = [list(r) + [b] for r, b in zip(M, rhs)]
    ncol = len(M[0])
    piv_rows = []
    for c in range(ncol):
        p = next(i for i in range(len(rows)) if i not in piv_rows and rows[i][c] != 0)
        piv_rows.append(p)
        for i in range(len(rows)):
            if i != p and rows[i][c] != 0:
                f = rows[i][c] / rows[p][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[p])]
    for i in range(len(rows)):
        if i not in piv_rows and rows[i][-1] != 0:
            raise ValueError("inconsistent Winograd system (repeated points?)")
    return [rows[p][-1] / rows[p][c] for c, p in enumerate(piv_rows)]


@functools.lru_cache(maxsize=None)
def winograd_transform(m: int, r: int = 3, points: tuple[int | Fraction, ...] | None = None) -> WinogradTransform:
    """Toom-Cook matrices of ``F(m, r)`` (Lavin & Gray's construction), checked exactly.

    ``points`` are the ``m + r - 2`` finite points (the last one is infinity);
    by default ``0, 1, -1, 2, -2, 1/2, -1/2, 3, ...``.  ``A^T[i, t] = p_t^i``,
    ``G[t, q] = p_t^q / prod_{s != t}(p_t - p_s)``, the infinity row and column
    select the leading coefficient, and ``B^T`` solves the identity.

    >>> t = winograd_transform(2)
    >>> [[int(v) for v in row] for row in t.BT]    # Lavin & Gray's B^T, first row negated with G's
    [[-1, 0, 1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]]
    >>> [str(v) for v in winograd_transform(4).G[1]]
    ['-1/6', '-1/6', '-1/6']
    """
    alpha = m + r - 1
    if points is None:
        seq = [Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2), Fraction(-1, 2)]
        seq += [Fraction(s * v) for v in range(3, alpha) for s in (1, -1)]
        points = tuple(seq[: alpha - 1])
    pts = tuple(Fraction(p) for p in points)
    if len(pts) != alpha - 1 or len(set(pts)) != len(pts):
        raise ValueError(f"points={points!r}: F({m}, {r}) needs {alpha - 1} distinct finite points")
    AT = [[p**i for p in pts] + [Fraction(int(i == m - 1))] for i in range(m)]
    G = []
    for t, p in enumerate(pts):
        f = math.prod((p - s for j, s in enumerate(pts) if j != t), start=Fraction(1))
        G.append([p**q / f for q in range(r)])
    G.append([Fraction(int(q == r - 1)) for q in range(r)])
    # sum_k AT[i,k] G[k,q] BT[k,t] = [t == i + q] for all i < m, q < r: solve for each column BT[:, t]
    sysM = [[AT[i][k] * G[k][q] for k in range(alpha)] for i in range(m) for q in range(r)]
    cols = [_solve_exact(sysM, [Fraction(int(t == i + q)) for i in range(m) for q in range(r)]) for t in range(alpha)]
    BT = [[cols[t][k] for t in range(alpha)] for k in range(alpha)]
    return WinogradTransform(m, r, pts, tuple(map(tuple, AT)), tuple(map(tuple, G)), tuple(map(tuple, BT)))


#: the point sets a Winograd bound covers: F(2, 3) at 0, +-1; F(4, 3) at 0, +-1, +-2 and at 0, +-1, +-1/2
WINOGRAD_VARIANTS: tuple[tuple[int, tuple[Fraction, ...]], ...] = (
    (2, (Fraction(0), Fraction(1), Fraction(-1))),
    (4, (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2))),
    (4, (Fraction(0), Fraction(1), Fraction(-1), Fraction(1, 2), Fraction(-1, 2))),
)

#: relative rounding of the float64 evaluation of the non-negative magnitude sums below (< 2**20 terms per sum)
_F64_SUMS = 1.0 + 2.0**-30


def _kron_axes(mats: list[np.ndarray]) -> np.ndarray:
    """The outer product of per-axis vectors (an array with one axis per vector)."""
    return functools.reduce(np.multiply.outer, mats)


def _mode(a: np.ndarray, M: np.ndarray, axis: int) -> np.ndarray:
    """``M`` applied along ``axis`` of ``a`` (``out[..., i, ...] = sum_j M[i, j] a[..., j, ...]``)."""
    return np.moveaxis(np.tensordot(M, a, axes=([1], [axis])), 0, axis)


def winograd_error(a: np.ndarray, bw: np.ndarray, b_abs: npt.ArrayLike, prof: Profile, *, groups: int = 1,
                   variants: Any = WINOGRAD_VARIANTS) -> np.ndarray:
    """``E_alg`` of a stride-1 Winograd convolution with ``r x ... x r`` kernels, per output element.

    ``a`` is the padded input magnitude ``(N, C_in, *P)`` (``|x|``, grown by
    input rounding), ``bw`` the kernel magnitude ``(C_out, C_in/groups, r, ...)``,
    ``b_abs`` the bias magnitude (``0`` or ``(C_out,)``).  For each variant
    ``F(m, r)`` and each position ``i`` an output may take in its tile (any
    tile alignment), the bound is ``gamma_k T_i`` with

        T_i = sum_c [ |A^T|^{(x)d} ( (|G|^{(x)d} |g_c|) * (|B^T|^{(x)d} |d_c|) ) ]_i + |b|

    over the tile's input window ``d`` (starting ``i`` samples before the
    output), ``k`` from :meth:`WinogradTransform.roundings`, and underflow
    folded in as a floor added to every intermediate magnitude
    (specs/tolerance.md, "Winograd").  The maximum over positions and variants
    is returned.
    """
    a = np.asarray(a, dtype=np.float64)
    bw = np.asarray(bw, dtype=np.float64)
    N, Cin = a.shape[:2]
    Cout, Cg = bw.shape[:2]
    d = a.ndim - 2
    r = bw.shape[2]
    if any(k != r for k in bw.shape[2:]):
        raise ValueError(f"w.shape={bw.shape}: Winograd bounds need the same kernel size on every axis")
    out_sp = tuple(P - r + 1 for P in a.shape[2:])
    b_abs = np.broadcast_to(np.abs(np.asarray(b_abs, dtype=np.float64)), (Cout,))
    has_bias = bool(np.any(b_abs))
    best = np.zeros((N, Cout, *out_sp))
    og = Cout // groups
    for m, pts in variants:
        t = winograd_transform(m, r, tuple(pts))
        al = t.alpha
        k = t.roundings(d, Cg, has_bias)
        gk = gamma(k, prof.u_acc, undefined="inf")
        if math.isinf(gk):
            return np.full(best.shape, np.inf)
        AT, G, BT = t.abs_matrices()
        # floor added to every intermediate magnitude: gamma_k * phi >= theta (1 + gamma_k)^2 (specs/tolerance.md)
        theta = prof.eta_acc * (2 if prof.ftz else 1)
        phi = theta * (1 + gk) ** 2 / gk * _F64_SUMS if gk > 0 else 0.0
        rhoG, rhoB, sigA = G.sum(1), BT.sum(1), AT.sum(1)
        # per-entry floors: 2b nodes per entry and 1-D stage (b inputs), grown by the later stages' row sums
        cU = 2 * r * d * _kron_axes([np.maximum(1.0, rhoG)] * d)
        cV = 2 * al * d * _kron_axes([np.maximum(1.0, rhoB)] * d)
        U = bw
        for ax in range(d):
            U = _mode(U, G, 2 + ax)
        U = U + phi * cU  # (Cout, Cg, al, ..., al)
        kern = np.zeros((groups, m**d, og, Cg) + (al + m - 1,) * d)
        const = np.zeros((m**d, Cout))
        for ii, pos in enumerate(itertools.product(range(m), repeat=d)):
            wi = _kron_axes([AT[p] for p in pos])  # |A^T| weights of this output position, (al,)*d
            H = U * wi
            for ax in range(d):
                H = _mode(H, BT.T, 2 + ax)  # k -> t through |B^T|
            sl = tuple(slice(m - 1 - p, m - 1 - p + al) for p in pos)
            kern[(slice(None), ii, slice(None), slice(None)) + sl] = H.reshape(groups, og, Cg, *H.shape[2:])
            # data-free floors: V-stage floors times U, the products and channel sums, the output stages, the bias
            out_floor = 2 * al * d * float(np.prod([max(1.0, sigA[p]) for p in pos]))
            const[ii] = (phi * (U * wi * cV).reshape(Cout, -1).sum(1) + phi * 2 * Cg * float(wi.sum())
                         + phi * out_floor + 2 * phi + b_abs)
        ap = np.pad(a, [(0, 0), (0, 0)] + [(m - 1, m - 1)] * d)
        T = _conv64(ap, kern.reshape(groups * m**d * og, Cg, *kern.shape[4:]), groups)
        T = T.reshape(N, groups, m**d, og, *out_sp).transpose(0, 2, 1, 3, *range(4, 4 + d)).reshape(N, m**d, Cout, *out_sp)
        T = (T + const.reshape(1, m**d, Cout, *([1] * d))) * _F64_SUMS
        best = np.maximum(best, gk * T.max(axis=1))
    return best


def _conv64(x: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """Stride-1 unpadded correlation of non-negative float64 arrays with the direct engine."""
    from . import fast

    if x.shape[0] == 0:
        return np.zeros((0, w.shape[0], *(P - K + 1 for P, K in zip(x.shape[2:], w.shape[2:]))))
    return fast.conv(x, w, groups=groups, algorithm="direct")


# --------------------------------------------------------------------------- prefix sums


def prefix_sum_error(a: np.ndarray, kernel_size: IntOrInts, prof: Profile, **pool_kwargs: Any) -> np.ndarray:
    """``E_alg`` of average pooling by prefix sums (summed-area tables), per output element.

    ``a`` is the input magnitude ``(N, C, *S)`` (``|x|``, grown by input
    rounding).  The window sum is the signed sum of the prefix sums at the
    window's ``2**d`` corners, each prefix sum over the region from the
    array's start to its corner: per element
    ``gamma_k * sum_corners P_abs(corner) / divisor`` with
    ``k = sum_axes (P_a + 2 ceil(log2(P_a + 1))) + 2**d + 3`` (prefix additions
    in any scan order, the corner combination, reciprocal, product or
    division, and a border rescaling), plus floors for underflow.
    """
    from .oracle import _divisors
    from .params import pool_params

    a = np.asarray(a, dtype=np.float64)
    pp = pool_params(a.shape, kernel_size, **pool_kwargs)
    d = a.ndim - 2
    out = pp.output_spatial
    # the padded (and ceil-mode extended) extent, zeros outside the input
    # a dilated window (one prefix-sum grid per phase) lies inside its hull of d*(k-1) + 1 samples: the hull's
    # corner prefix sums bound the magnitudes of every phase's
    spans = [dd * (k - 1) + 1 for k, dd in zip(pp.kernel_size, pp.dilation)]
    need = [(o - 1) * s + k for o, s, k in zip(out, pp.stride, spans)]
    sizes = [max(n + lo + hi, nd) for n, (lo, hi), nd in zip(a.shape[2:], pp.padding, need)]
    k = sum(P + 2 * math.ceil(math.log2(P + 1)) for P in sizes) + 2**d + 3
    gk = gamma(k, prof.u_acc, undefined="inf")
    if math.isinf(gk):
        return np.full(a.shape[:2] + tuple(out), np.inf)
    theta = prof.eta_acc * (2 if prof.ftz else 1)
    phi = theta * (1 + gk) ** 2 / gk * _F64_SUMS if gk > 0 else 0.0
    P = np.zeros(a.shape[:2] + tuple(s + 1 for s in sizes))
    P[(slice(None), slice(None)) + tuple(slice(lo + 1, lo + 1 + n) for (lo, _), n in zip(pp.padding, a.shape[2:]))] = a
    for ax in range(d):
        # exclusive prefix sums along the axis, plus a floor of 2 phi per node passed
        P = np.cumsum(P, axis=2 + ax)
        idx = np.arange(P.shape[2 + ax], dtype=np.float64).reshape([-1 if i == 2 + ax else 1 for i in range(P.ndim)])
        P = P + 2 * phi * idx
    total = np.zeros(a.shape[:2] + tuple(out))
    for corner in itertools.product((0, 1), repeat=d):
        sl = []
        for c, o, s, kk, size in zip(corner, out, pp.stride, spans, sizes):
            start = np.arange(o) * s
            sl.append(np.minimum(start + kk, size) if c else start)
        total = total + P[(slice(None), slice(None)) + np.ix_(*sl)]
    q = np.asarray(_divisors(pp, pp.count_include_pad), dtype=np.float64)
    K = float(math.prod(pp.kernel_size))
    # the combination's nodes, then reciprocal, product and rescaling, each a node with a floor
    T = (total + 2 ** (d + 1) * phi) / q * (1 + phi * K) ** 2 + 4 * phi
    return gk * T * _F64_SUMS


# --------------------------------------------------------------------------- bounds on arrays


def abs_sums(op: str, *arrays: Any, n_terms: int, **kwargs: Any) -> np.ndarray:
    """Upper bound of the exact ``sum |terms|`` of a bilinear ``op`` of :mod:`refconv.fast`, per element.

    ``op(|a|, |b|, **kwargs)`` computed in float64 by the direct engine, then
    inflated by ``1 + 2 gamma_{n+3}(2^-53)`` plus ``(n + 1) eta_64`` and rounded
    up: a computed sum of non-negative terms is at least ``S (1 - gamma_n)``.
    """
    from . import fast

    absd = [np.abs(np.asarray(a)).astype(np.float64) if not isinstance(a, tuple) else a for a in arrays]
    fn = getattr(fast, op)
    if op in ("conv", "conv_transpose", "conv_grad_input", "conv_grad_weight"):
        kwargs = {**kwargs, "algorithm": "direct"}
    S = fn(*absd, **kwargs)
    # n products and additions, plus the rounding of |z| for complex factors: gamma_{n+3} covers them all
    g = gamma(n_terms + 3, 2.0**-53)
    return round_up(round_up(S * (1 + 2 * g)) + (n_terms + 1) * 2.0**-1074)


def _array_profile(dtype: npt.DTypeLike, input_format: npt.DTypeLike | None = None) -> Profile:
    """The profile of an array computation in ``dtype`` (inputs rounded to ``input_format`` first, if given)."""
    f = FORMATS[_fmt(dtype)]
    fin = None if input_format is None else FORMATS[_fmt(input_format)]
    return Profile(f.name if fin is None else f"{fin.name} inputs", 0.0 if fin is None else fin.u, f.u, f.u, f.eta, f.eta,
                   0.0 if fin is None else fin.eta)


def _is_complex(dtype: npt.DTypeLike) -> bool:
    return not isinstance(dtype, str) and np.dtype(dtype).kind == "c"


def _against(B: np.ndarray, S: np.ndarray, dtype: npt.DTypeLike, against: str) -> np.ndarray:
    """Add the rounding of the reference to ``dtype`` (``|fl(y) - y| <= u S + eta``) for ``against='rounded'``."""
    if against not in ("rounded", "exact"):
        raise ValueError(f"against={against!r}: must be 'rounded' or 'exact'")
    if against == "exact":
        return round_up(B)
    f = FORMATS[_fmt(dtype)]
    u = f.u * (_SQRT2_UP if _is_complex(dtype) else 1.0)
    return round_up(round_up(B + u * np.asarray(S, dtype=np.float64) * _SLACK) + f.eta)


def dot_bound(n: int, abs_sum: npt.ArrayLike, dtype: npt.DTypeLike, *, against: str = "rounded", input_format: npt.DTypeLike | None = None,
              factor_sums: npt.ArrayLike | None = None) -> np.ndarray:
    """Bound for ``n``-term dot products with absolute sums ``abs_sum`` (an upper bound of ``sum |terms|``).

    :func:`elementwise_bound` of the working format (``|y| <= S``), plus
    ``u S + eta`` for the comparison with a correctly rounded result
    (``against='rounded'``).  Complex formats use ``sqrt(2) gamma_{n+2}``.
    With ``input_format`` (e.g. ``'tf32'``) the factors are taken as rounded to
    that format first; tiny inputs then lose up to half its smallest
    subnormal, which needs ``factor_sums`` (``sum_i |x_i| + |w_i|`` per
    element, see :func:`input_underflow_bound`).

    >>> float(dot_bound(3, 1.0, 'float32', against='exact')) >= 3 * 2.0 ** -24
    True
    >>> bool(dot_bound(3, 1.0, 'float32', input_format='tf32', factor_sums=2.0) > dot_bound(3, 1.0, 'float32'))
    True
    """
    if against not in ("rounded", "exact"):
        raise ValueError(f"against={against!r}: must be 'rounded' or 'exact'")
    prof = _array_profile(dtype, input_format)
    S = np.asarray(abs_sum, dtype=np.float64)
    B = elementwise_bound(S, S, n, prof, complex_products=_is_complex(dtype))
    if prof.eta_in:
        if factor_sums is None:
            raise ValueError(f"factor_sums=None: input_format={input_format!r} rounds tiny inputs with an absolute "
                             "error; pass the per-element sums of |factors|")
        B = B + input_underflow_bound(factor_sums, n, prof)
    return _against(B, S, dtype, against)


def _dtype_of(dtype: npt.DTypeLike | None, *arrays: Any) -> npt.DTypeLike:
    """``dtype``, or when None the dtype numpy's promotion gives the arrays given."""
    if dtype is not None:
        return dtype
    return np.result_type(*[np.asarray(a).dtype for a in arrays if a is not None])


def _split_bias(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in ("algorithm", "max_memory")}


def _factor_sums(op: str, a: npt.ArrayLike, c: Any, third: Any, kw: dict[str, Any], input_format: npt.DTypeLike | None) -> Any:
    """``sum_i |a_i| + |c_i|`` per element of a bilinear ``op`` (only needed when inputs are rounded)."""
    if input_format is None:
        return None
    A, C = np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(c, dtype=np.float64))
    args = (third,) if third is not None else ()
    from . import fast

    fn = getattr(fast, op)
    s = fn(A, np.ones_like(C), *args, algorithm="direct", **kw) + fn(np.ones_like(A), C, *args, algorithm="direct", **kw)
    return s * _F64_SUMS


def _with_bias(S: np.ndarray, b: npt.ArrayLike | None) -> np.ndarray:
    if b is None:
        return S
    return round_up(S + np.abs(np.asarray(b, dtype=np.float64)).reshape((-1,) + (1,) * (S.ndim - 2)))


def conv_error_bound(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *, dtype: npt.DTypeLike | None = None, against: str = "rounded", input_format: npt.DTypeLike | None = None,
                     **conv_kwargs: Any) -> np.ndarray:
    """Per-element bound on ``|conv_hat - conv|`` for a float implementation of :func:`refconv.oracle.conv`.

    ``dtype`` is the working format (default: the inputs' dtype); the
    keywords are those of ``conv`` (stride, padding, dilation, groups, flip).
    ``input_format`` names a format the factors are rounded to first (a
    precision profile such as ``'tf32'``; see :func:`dot_bound`).
    Terms per element: ``n = C_in/groups * prod(K)`` products plus the bias.

    >>> b = conv_error_bound(np.ones((1, 2, 5)), np.ones((1, 2, 3)), np.ones(1))
    >>> b.shape, bool(b[0, 0, 0] >= 8 * 2.0 ** -53 * 7)
    ((1, 1, 3), True)
    """
    kw = _split_bias(conv_kwargs)
    w_arr = np.asarray(w)
    n = int(np.prod(w_arr.shape[1:])) + (0 if b is None else 1)
    S = _with_bias(abs_sums("conv", x, w, n_terms=n, **kw), b)
    F = _factor_sums("conv", x, w, None, kw, input_format)
    if F is not None and b is not None:
        F = F + 1.0  # a rounded bias: one more factor of magnitude <= theta (counted as 1 * theta)
    return dot_bound(n, S, _dtype_of(dtype, x, w, b), against=against, input_format=input_format, factor_sums=F)


def conv_transpose_error_bound(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *, dtype: npt.DTypeLike | None = None, against: str = "rounded", input_format: npt.DTypeLike | None = None,
                               **kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.conv_transpose`: ``n <= C_in/groups * prod(K)`` terms (+ bias)."""
    kw = _split_bias(kwargs)
    x_arr, w_arr = np.asarray(x), np.asarray(w)
    groups = kw.get("groups", 1)
    n = int(x_arr.shape[1] // groups * np.prod(w_arr.shape[2:])) + (0 if b is None else 1)
    S = _with_bias(abs_sums("conv_transpose", x, w, n_terms=n, **kw), b)
    F = _factor_sums("conv_transpose", x, w, None, kw, input_format)
    if F is not None and b is not None:
        F = F + 1.0
    return dot_bound(n, S, _dtype_of(dtype, x, w, b), against=against, input_format=input_format, factor_sums=F)


def conv_grad_input_error_bound(dy: npt.ArrayLike, w: npt.ArrayLike, input_shape: ShapeLike, *, dtype: npt.DTypeLike | None = None, against: str = "rounded", input_format: npt.DTypeLike | None = None,
                                **conv_kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.conv_grad_input`: ``n <= C_out/groups * prod(K)`` terms."""
    kw = _split_bias(conv_kwargs)
    w_arr = np.asarray(w)
    groups = kw.get("groups", 1)
    n = max(int(w_arr.shape[0] // groups * np.prod(w_arr.shape[2:])), 1)
    S = abs_sums("conv_grad_input", dy, w, tuple(input_shape), n_terms=n, **kw)
    F = _factor_sums("conv_grad_input", dy, w, tuple(input_shape), kw, input_format)
    return dot_bound(n, S, _dtype_of(dtype, dy, w), against=against, input_format=input_format, factor_sums=F)


def conv_grad_weight_error_bound(x: npt.ArrayLike, dy: npt.ArrayLike, weight_shape: ShapeLike, *, dtype: npt.DTypeLike | None = None, against: str = "rounded", input_format: npt.DTypeLike | None = None,
                                 **conv_kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.conv_grad_weight`: ``n = N * prod(O)`` terms."""
    kw = _split_bias(conv_kwargs)
    dy_arr = np.asarray(dy)
    n = max(int(dy_arr.shape[0] * np.prod(dy_arr.shape[2:])), 1)
    S = abs_sums("conv_grad_weight", x, dy, tuple(weight_shape), n_terms=n, **kw)
    F = _factor_sums("conv_grad_weight", x, dy, tuple(weight_shape), kw, input_format)
    return dot_bound(n, S, _dtype_of(dtype, x, dy), against=against, input_format=input_format, factor_sums=F)


def conv_grad_bias_error_bound(dy: npt.ArrayLike, *, dtype: npt.DTypeLike | None = None, against: str = "rounded", input_format: npt.DTypeLike | None = None) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.conv_grad_bias`: a sum of ``n = N * prod(O)`` terms."""
    a = np.abs(np.asarray(dy)).astype(np.float64)
    n = max(int(a.size // max(a.shape[1], 1)), 1)
    S = a.sum(axis=(0, *range(2, a.ndim)))
    S = round_up(round_up(S * (1 + 2 * gamma(n + 1, 2.0**-53))) + (n + 1) * 2.0**-1074)
    prof = _array_profile(_dtype_of(dtype, dy), input_format)
    B = elementwise_bound(S, S, n, prof, input_factors=1)
    if prof.eta_in:
        B = B + input_underflow_bound(np.full(S.shape, float(n)), n, prof, input_factors=1)
    return _against(B, S, _dtype_of(dtype, dy), against)


def _pool_bound(S: np.ndarray, n: int, dtype: npt.DTypeLike, against: str) -> np.ndarray:
    prof = _array_profile(dtype)
    return _against(elementwise_bound(S, S, n, prof, input_factors=1), S, dtype, against)


def avg_pool_error_bound(x: npt.ArrayLike, kernel_size: IntOrInts, *, dtype: npt.DTypeLike | None = None, against: str = "rounded",
                         **pool_kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.avg_pool`: a ``prod(K)``-term sum, then a division.

    ``gamma_{k+3} * sum|x| / q`` with ``k = prod(K)`` (:func:`op_terms`: the
    sum's ``k - 1`` additions, and a division or reciprocal and product, with
    a possible border rescaling).
    """
    from . import fast
    from .params import pool_params

    a = np.abs(np.asarray(x)).astype(np.float64)
    k = int(np.prod(pool_params(a.shape, kernel_size, **pool_kwargs).kernel_size))
    S = fast.avg_pool(a, kernel_size, **pool_kwargs)  # sum|x| / q in float64
    S = round_up(round_up(S * (1 + 2 * gamma(k + 1, 2.0**-53))) + (k + 1) * 2.0**-1074)
    return _pool_bound(S, op_terms("avg_pool", k)[0], _dtype_of(dtype, x), against)


def avg_pool_grad_error_bound(dy: npt.ArrayLike, input_shape: ShapeLike, kernel_size: IntOrInts, *, dtype: npt.DTypeLike | None = None,
                              against: str = "rounded", **pool_kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.avg_pool_grad`: up to ``prod(K)`` terms ``dy/q``, each rounded."""
    from . import fast
    from .params import pool_params

    a = np.abs(np.asarray(dy)).astype(np.float64)
    k = int(np.prod(pool_params(tuple(input_shape), kernel_size, **pool_kwargs).kernel_size))
    S = fast.avg_pool_grad(a, tuple(input_shape), kernel_size, **pool_kwargs)
    S = round_up(round_up(S * (1 + 2 * gamma(k + 2, 2.0**-53))) + (k + 1) * 2.0**-1074)
    return _pool_bound(S, k + 1, _dtype_of(dtype, dy), against)


def _channel_norms(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-(leading two axes) 1-norm and 2-norm over the spatial axes, rounded up."""
    flat = np.abs(a).reshape(a.shape[:2] + (math.prod(a.shape[2:]),)).astype(np.float64)
    # ||v||_2 = m ||v / m||_2 with m = max |v|: no overflow of the squares
    m = flat.max(-1, keepdims=True, initial=0.0)
    with np.errstate(invalid="ignore"):
        two = np.where(m[..., 0] > 0, m[..., 0] * np.sqrt(((flat / np.where(m > 0, m, 1.0)) ** 2).sum(-1)), 0.0)
    return flat.sum(-1) * _F64_SUMS, two * _F64_SUMS


def fft_conv_error_bound(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *, dtype: npt.DTypeLike | None = None, against: str = "rounded",
                         **conv_kwargs: Any) -> np.ndarray:
    """Bound for a convolution computed with FFTs (``fast.conv(..., algorithm='fft')``), broadcast per element.

    :func:`fft_error` with ``M = sum_c min(||x_c||_2 ||w_c||_1, ||x_c||_1 ||w_c||_2)``
    over the channels of the group and :func:`fft_levels` of the padded input
    plus the dilated kernel (a model bound, proven for radix-2 transforms:
    specs/tolerance.md, "FFT").

    >>> x = np.ones((1, 1, 8), np.float32); w = np.ones((1, 1, 3), np.float32)
    >>> bool((fft_conv_error_bound(x, w) > conv_error_bound(x, w)).all())
    True
    """
    from .params import conv_params

    xa, wa = np.asarray(x), np.asarray(w)
    p = conv_params(xa.shape, wa.shape, stride=conv_kwargs.get("stride", 1), padding=conv_kwargs.get("padding", 0),
                    dilation=conv_kwargs.get("dilation", 1), groups=conv_kwargs.get("groups", 1),
                    flip=conv_kwargs.get("flip", False))
    dt = _dtype_of(dtype, x, w)
    prof = _array_profile(dt)
    G = p.groups
    N, M = xa.shape[0], wa.shape[0]
    Cg = wa.shape[1]
    x1, x2 = _channel_norms(xa)
    w1, w2 = _channel_norms(wa)
    x1, x2 = x1.reshape(N, G, 1, Cg), x2.reshape(N, G, 1, Cg)
    w1, w2 = w1.reshape(1, G, M // G, Cg), w2.reshape(1, G, M // G, Cg)
    Mc = np.minimum(x2 * w1, x1 * w2).sum(-1).reshape(N, M)
    A = (x1 + w1 + 1).sum(-1).reshape(N, M)
    spans = [dd * (k - 1) + 1 for dd, k in zip(p.dilation, wa.shape[2:])]
    levels = fft_levels([P + s - 1 for P, s in zip(p.padded_spatial, spans)])
    bias = 0.0 if b is None else np.abs(np.asarray(b, dtype=np.float64))[None, :]
    E = fft_error(Mc, A, levels, Cg, prof, bias=bias)
    B = _assemble(Mc + bias, 0.0, E, Cg, prof)
    B = _against(B, Mc + bias, dt, against)
    shape = (N, M) + (1,) * p.ndim
    return np.broadcast_to(B.reshape(shape), p.output_shape).copy()


def winograd_conv_error_bound(x: npt.ArrayLike, w: npt.ArrayLike, b: npt.ArrayLike | None = None, *, dtype: npt.DTypeLike | None = None, against: str = "rounded",
                              padding: Any = 0, groups: int = 1) -> np.ndarray:
    """Bound for a stride-1 Winograd ``F(2, 3)`` / ``F(4, 3)`` convolution (any tile alignment), per element.

    The maximum of the direct bound and :func:`winograd_error` (a library may
    pick either algorithm per layer).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32); w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    >>> wb, db = winograd_conv_error_bound(x, w, padding=1), conv_error_bound(x, w, padding=1)
    >>> wb.shape, bool((wb >= db).all())
    ((1, 3, 8, 8), True)
    """
    from .params import conv_params

    xa, wa = np.asarray(x), np.asarray(w)
    p = conv_params(xa.shape, wa.shape, None if b is None else np.shape(b), padding=padding, groups=groups)
    dt = _dtype_of(dtype, x, w, b)
    prof = _array_profile(dt)
    n = int(np.prod(wa.shape[1:])) + (0 if b is None else 1)
    S = _with_bias(abs_sums("conv", x, w, n_terms=n, padding=padding, groups=groups), b)
    a = np.pad(np.abs(xa).astype(np.float64), [(0, 0), (0, 0)] + [tuple(q) for q in p.padding])
    E = np.maximum(_direct_error(S, n, prof, 1.0),
                   winograd_error(a, np.abs(wa), 0.0 if b is None else np.abs(b), prof, groups=groups))
    return _against(_assemble(S, 0.0, E, n, prof), S, dt, against)


def prefix_sum_avg_pool_error_bound(x: npt.ArrayLike, kernel_size: IntOrInts, *, dtype: npt.DTypeLike | None = None, against: str = "rounded",
                                    **pool_kwargs: Any) -> np.ndarray:
    """Bound for average pooling by prefix sums (summed-area tables) or directly, per element.

    >>> x = np.ones((1, 1, 64), np.float32)
    >>> bool((prefix_sum_avg_pool_error_bound(x, 2)[..., -1] > avg_pool_error_bound(x, 2)[..., -1]).all())
    True
    """
    from . import fast
    from .params import pool_params

    a = np.abs(np.asarray(x)).astype(np.float64)
    k = int(np.prod(pool_params(a.shape, kernel_size, **pool_kwargs).kernel_size))
    S = fast.avg_pool(a, kernel_size, **pool_kwargs) * _F64_SUMS
    dt = _dtype_of(dtype, x)
    prof = _array_profile(dt)
    n = op_terms("avg_pool", k)[0]
    E = np.maximum(_direct_error(S, n, prof, 1.0), prefix_sum_error(a, kernel_size, prof, **pool_kwargs))
    return _against(_assemble(S, 0.0, E, n, prof), S, dt, against)


def within_bound(actual: npt.ArrayLike, expected: npt.ArrayLike, bound: npt.ArrayLike) -> np.ndarray:
    """Elementwise ``|actual - expected| <= bound`` with the difference computed exactly (as Fractions).

    NaN and infinities must match exactly (same class and sign).

    >>> within_bound(np.float32([1.0]), np.float32([1.0000001]), np.array([2e-7])).tolist()
    [True]
    """
    a, e = np.asarray(actual), np.asarray(expected)
    bnd = np.broadcast_to(np.asarray(bound, dtype=np.float64), np.broadcast_shapes(a.shape, e.shape))
    a, e = np.broadcast_arrays(a, e)
    a128, e128 = a.astype(np.complex128), e.astype(np.complex128)
    finite = np.isfinite(a128) & np.isfinite(e128)
    # fast accept: the float64 difference is within (1 + 2^-51) of the true one
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a128 - e128)
        out = finite & (d * (1 + 2.0**-51) <= bnd)
    # non-finite values must match exactly: NaN with NaN, inf with inf of the same sign
    nf = ~finite
    out[nf] = (np.isnan(a128[nf]) & np.isnan(e128[nf])) | (a128[nf] == e128[nf])
    for idx in zip(*np.nonzero(finite & ~out)):
        av, ev = complex(a128[idx]), complex(e128[idx])
        dr = Fraction(av.real) - Fraction(ev.real)
        di = Fraction(av.imag) - Fraction(ev.imag)
        bb = Fraction(float(bnd[idx]))
        out[idx] = dr * dr + di * di <= bb * bb
    return out
