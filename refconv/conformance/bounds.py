"""Precision profiles and rigorous per-element error bounds (specs/tolerance.md).

A target computes ``y = b + sum_i x_i w_i`` (``n`` terms) in floating point.
A *precision profile* names what it may do on the way: round its inputs to a
narrower format (unit roundoff ``u_in``), multiply and add in a format with
unit roundoff ``u_acc`` in any order, and round the result to the output
dtype (``u_out``).  With ``S = |b| + sum_i |x_i w_i|`` the computed value
satisfies, whatever the summation order (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., section 3.1, eq. 3.5, plus the input
rounding and the final rounding)::

    E_in  = ((1 + u_in)**2 - 1) * S                      inputs rounded first
    E_acc = gamma_n(u_acc) * (1 + u_in)**2 * S + n*eta   products and sums
    E_out = u_out * (|y| + E_in + E_acc) + eta_out       final rounding
    |y_hat - y| <= E_in + E_acc + E_out

where ``gamma_n(u) = n*u / (1 - n*u)`` and ``eta`` is half the smallest
subnormal of the accumulation format (the absolute error of an underflowing
product).  When the accumulation format is the output format (``n >= 1``) the
final rounding is one of the ``n`` roundings ``gamma_n`` already counts, so
``E_out = eta_out``: a single product ``fl(x*w)`` may be off by ``u*|y|``,
not ``2u*|y|`` (which is what rounding toward zero can produce).

Examples
--------
>>> p = profile('float32')
>>> p.u_acc == 2.0**-24, p.u_in
(True, 0.0)
>>> profile('tf32', 'float32').u_in == 2.0**-11
True
>>> float(gamma(10, 2.0**-24)) >= 10 * 2.0**-24 / (1 - 10 * 2.0**-24)
True
>>> float(round_significand(np.float32(1 + 2**-9), 8))     # bfloat16 keeps 8 bits
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FORMATS",
    "PROFILES",
    "Format",
    "Profile",
    "profile",
    "gamma",
    "round_significand",
    "round_to",
    "elementwise_bound",
    "normwise_fft_bound",
]


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: ``p`` significand bits (with the hidden one)."""

    name: str
    p: int
    emin: int  # exponent of the smallest normal number

    @property
    def u(self) -> float:
        """Unit roundoff ``2**-p`` (round to nearest)."""
        return 2.0**-self.p

    @property
    def eta(self) -> float:
        """Half the smallest subnormal: ``2**(emin - p)``, the underflow error of one operation."""
        return 2.0 ** (self.emin - self.p)


FORMATS: dict[str, Format] = {
    "float64": Format("float64", 53, -1022),
    "float32": Format("float32", 24, -126),
    "tf32": Format("tf32", 11, -126),
    "bfloat16": Format("bfloat16", 8, -126),
    "float16": Format("float16", 11, -14),
}

#: profile name -> (input format, accumulation format)
PROFILES: dict[str, tuple[str, str]] = {
    "float64": ("float64", "float64"),
    "float32": ("float32", "float32"),
    # TF32 tensor cores: inputs rounded to 11 significant bits, products and sums in float32
    "tf32": ("tf32", "float32"),
    "bfloat16": ("bfloat16", "bfloat16"),
    "float16": ("float16", "float16"),
}


@dataclass(frozen=True)
class Profile:
    """What a target may do: round inputs (``u_in``), accumulate (``u_acc``), round the output (``u_out``)."""

    name: str
    u_in: float
    u_acc: float
    u_out: float
    eta_acc: float
    eta_out: float

    def describe(self) -> str:
        def p2(u: float) -> str:
            return "0" if u == 0 else f"2^{int(round(math.log2(u)))}"

        return f"{self.name} (inputs u={p2(self.u_in)}, accumulation u={p2(self.u_acc)}, output u={p2(self.u_out)})"


def _format_of_dtype(dtype) -> Format:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in FORMATS:
        raise ValueError(f"dtype={name!r}: floating dtypes are " + ", ".join(k for k in FORMATS if k != "tf32"))
    return FORMATS[name]


def profile(name: str, dtype="float32") -> Profile:
    """The precision profile ``name`` for a target given arrays of ``dtype``.

    Inputs already in a format at least as narrow as the profile's input format
    are not rounded again (``u_in = 0``).

    >>> profile('bfloat16', 'float32').describe()
    'bfloat16 (inputs u=2^-8, accumulation u=2^-8, output u=2^-24)'
    >>> profile('float64', 'float32').describe()
    'float64 (inputs u=0, accumulation u=2^-53, output u=2^-24)'
    >>> profile('fp8')
    Traceback (most recent call last):
        ...
    ValueError: precision='fp8': profiles are 'float64', 'float32', 'tf32', 'bfloat16', 'float16'
    """
    if name not in PROFILES:
        raise ValueError(f"precision={name!r}: profiles are " + ", ".join(repr(k) for k in PROFILES))
    fin, facc = (FORMATS[f] for f in PROFILES[name])
    fdt = _format_of_dtype(dtype)
    # inputs of dtype fdt are exact in fin when fin keeps at least as many bits and as much range
    u_in = 0.0 if (fin.p >= fdt.p and fin.emin <= fdt.emin) else fin.u
    return Profile(name, u_in, facc.u, fdt.u, facc.eta, fdt.eta)


def gamma(n, u: float):
    """Higham's ``gamma_n = n*u / (1 - n*u)`` (:func:`refconv.tolerance.gamma`, rounded up); ``inf`` where ``n*u >= 1``.

    >>> gamma(3, 0.5)
    inf
    >>> float(gamma(1, 2.0**-53)) > 2.0**-53
    True
    """
    from ..tolerance import gamma as exact_gamma

    n = int(n)
    if n * u >= 1:
        return float("inf")
    return exact_gamma(n, u)


def elementwise_bound(S, y, n, prof: Profile, *, input_factors: int = 2):
    """``|y_hat - y|`` bound for values ``y`` with ``S = |b| + sum |x_i w_i|`` over ``n`` terms.

    ``input_factors`` is how many rounded inputs each term multiplies (2 for a
    product ``x*w``, 1 for a plain sum as in average pooling).

    >>> p = profile('float32')
    >>> b = elementwise_bound(np.array([10.0]), np.array([4.0]), 5, p)
    >>> bool(b[0] > 5 * 2.0**-24 * 10)
    True
    """
    S = np.asarray(S, dtype=np.float64)
    y = np.abs(np.asarray(y, dtype=np.float64))
    # infinite expectations (a max-pooling window of padding only) are compared exactly, not bounded
    S = np.where(np.isfinite(S), S, 0.0)
    y = np.where(np.isfinite(y), y, 0.0)
    grow = (1.0 + prof.u_in) ** input_factors
    e_in = (grow - 1.0) * S
    e_acc = gamma(n, prof.u_acc) * grow * S + np.asarray(n, dtype=np.float64) * 2 * prof.eta_acc
    if prof.u_acc == prof.u_out and prof.eta_acc == prof.eta_out:
        # accumulation format == output format: the result of the last operation is already in the output
        # format, or comes from a wider one whose own errors are below u**2 per operation; either way the
        # final rounding is one of the <= n roundings of size u on each term's path that gamma_n counts
        # (gamma_n(u) - u >= gamma_n(u_wide) * (1 + u) once u_wide <= u**2 / 2), so only underflow remains
        e_out = np.where(np.asarray(n) > 0, 0.0, prof.u_out * (y + e_in + e_acc)) + prof.eta_out
    else:
        e_out = prof.u_out * (y + e_in + e_acc) + prof.eta_out
    with np.errstate(invalid="ignore"):
        total = e_in + e_acc + e_out
    # the bound itself is evaluated in float64: inflate by a few float64 ulps so it stays an upper bound
    return total * (1.0 + 16 * 2.0**-53)


def normwise_fft_bound(x_norm2, w_norm1, length: int, channels: int, prof: Profile):
    """Norm-wise bound for a convolution computed with FFTs (specs/tolerance.md, "FFT").

    Each of ``channels`` one-channel convolutions, done as ``ifft(fft(x) * fft(w))``
    with transforms of ``length`` points, has a 2-norm (hence max-norm)
    error at most ``eps * ||x||_2 * ||w||_1`` with ``tau = log2(L) * eta_fft``,
    ``eta_fft = u + gamma_4(u) * (sqrt(2) + u)`` (Higham, Theorem 24.2) and
    ``eps = 3*tau + tau**2 + sqrt(2)*gamma_2(u)``, all with ``(1 + tau)**2``
    slack; ``x_norm2`` and ``w_norm1`` hold the per-channel norms summed over
    the channels (as ``sum_c ||x_c||_2 ||w_c||_1``).  The channel sum and the
    bias add ``gamma_{channels+1}`` of the direct bound, which callers add.

    >>> p = profile('float32')
    >>> float(normwise_fft_bound(1.0, 1.0, 64, 1, p)) < 1e-4
    True
    """
    u = prof.u_acc
    L = max(int(length), 2)
    if u * (4 + math.ceil(math.log2(L))) >= 1:
        return np.full(np.shape(x_norm2), np.inf)
    eta_fft = u + gamma(4, u) * (math.sqrt(2) + u)
    tau = math.ceil(math.log2(L)) * eta_fft / max(1e-300, 1 - math.ceil(math.log2(L)) * eta_fft)
    mu = math.sqrt(2) * gamma(2, u)
    eps = (1 + tau) * (2 * tau + tau**2 + mu * (1 + tau) ** 2) + tau + u
    grow = (1.0 + prof.u_in) ** 2
    return (eps * grow + (grow - 1)) * (1 + gamma(channels, u)) * np.asarray(x_norm2, dtype=np.float64) * np.asarray(
        w_norm1, dtype=np.float64
    ) * (1.0 + 2.0**-40)


def round_significand(x, p: int):
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


def round_to(x, fmt: str):
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
