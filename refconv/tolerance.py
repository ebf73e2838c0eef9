r"""Rigorous per-element error bounds for float convolutions ("Exact, then bounded").

A dot product of ``n`` terms computed in a format with unit roundoff ``u``, in
any summation order (blocked, pairwise, with or without FMA) satisfies
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1)

.. math::

    |\hat y - y| \le \gamma_n \sum_i |x_i w_i|, \qquad \gamma_n = \frac{n u}{1 - n u}.

A convolution output with a bias is a dot product of ``n + 1`` terms (the bias
is a term with an exact product), so per element

.. math::

    |\hat y - y| \le \gamma_{n+1} \Big(|b| + \sum |x_i w_i|\Big) + (n + 1)\,\eta

where ``n = (C_in / groups) * prod(K)`` and the last term covers underflow
(``eta`` the smallest subnormal; every product may lose ``eta / 2``).
Compared with the oracle, whose float result is the exact value correctly
rounded, one more ``u |y| <= u S`` (and ``eta / 2``) is added:
``against='rounded'`` (the default) includes it, ``against='exact'`` does not.

The absolute sums ``S = |b| + sum |x_i w_i|`` are computed in float64 with the
direct engine and then rounded **up** rigorously: the computed ``S_hat`` of
non-negative terms satisfies ``S <= S_hat (1 + 2 gamma_{n+1}(2^-53)) + (n+1) eta_64``,
and every float operation of the bound itself is followed by one step up
(``np.nextafter``), so the bound never under-estimates.  ``gamma`` is computed
in exact rational arithmetic and rounded up.

Formats (:data:`UNIT_ROUNDOFF`): ``float64`` ``2^-53``, ``float32`` ``2^-24``,
``tf32`` and ``float16`` ``2^-11``, ``bfloat16`` ``2^-8``.  Precision profiles
(inputs rounded to a narrower format first) build on :func:`gamma` and
:func:`abs_sums`.

Examples
--------
>>> unit_roundoff('float32') == 2.0 ** -24
True
>>> gamma(2, 0.5 ** 24) > 2 * 0.5 ** 24
True
>>> import numpy as np
>>> x = np.ones((1, 1, 4), np.float32); w = np.ones((1, 1, 3), np.float32)
>>> bound = conv_error_bound(x, w)
>>> bound.shape, bool((bound > 3 * 3 * 2.0 ** -24).all())
((1, 1, 2), True)
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "UNIT_ROUNDOFF",
    "unit_roundoff",
    "gamma",
    "smallest_subnormal",
    "round_up",
    "abs_sums",
    "dot_bound",
    "input_rounding",
    "conv_error_bound",
    "conv_transpose_error_bound",
    "conv_grad_input_error_bound",
    "conv_grad_weight_error_bound",
    "conv_grad_bias_error_bound",
    "avg_pool_error_bound",
    "avg_pool_grad_error_bound",
    "fft_conv_error_bound",
    "within_bound",
]

#: unit roundoff (half an ulp of 1) of the formats precision profiles name
UNIT_ROUNDOFF = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "tf32": 2.0**-11,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}

#: smallest positive subnormal of each format (bfloat16 and tf32 share float32's exponent range)
_ETA = {
    "float64": 2.0**-1074,
    "float32": 2.0**-149,
    "tf32": 2.0**-149,
    "float16": 2.0**-24,
    "bfloat16": 2.0**-133,
}


def _fmt(dtype: Any) -> str:
    if isinstance(dtype, str) and dtype in UNIT_ROUNDOFF:
        return dtype
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype={dtype!r}: expected one of {sorted(UNIT_ROUNDOFF)} or a numpy float dtype") from None
    names = {np.dtype(np.float64): "float64", np.dtype(np.float32): "float32", np.dtype(np.float16): "float16",
             np.dtype(np.complex128): "float64", np.dtype(np.complex64): "float32"}
    if dt not in names:
        raise ValueError(f"dtype={dtype!r}: expected one of {sorted(UNIT_ROUNDOFF)} or a numpy float dtype")
    return names[dt]


def unit_roundoff(dtype: Any) -> float:
    """``u`` of a format name (``'float32'``, ``'tf32'``, ``'bfloat16'`` ...) or a numpy float/complex dtype.

    >>> unit_roundoff(np.float64) == 2.0 ** -53, unit_roundoff('bfloat16')
    (True, 0.00390625)
    """
    return UNIT_ROUNDOFF[_fmt(dtype)]


def smallest_subnormal(dtype: Any) -> float:
    """``eta``: the smallest positive subnormal of the format.

    >>> smallest_subnormal('float32') == 2.0 ** -149
    True
    """
    return _ETA[_fmt(dtype)]


def round_up(a: Any) -> np.ndarray:
    """One float64 step towards ``+inf``: an upper bound of a value computed with one rounding to nearest."""
    return np.nextafter(np.asarray(a, dtype=np.float64), np.inf)


def gamma(n: int, u: float) -> float:
    """``gamma_n = n u / (1 - n u)``, computed exactly and rounded up to float64.

    Raises ``ValueError`` when ``n u >= 1`` (no bound exists).

    >>> gamma(0, 2.0 ** -24)
    0.0
    >>> gamma(10, 2.0 ** -24) >= 10 * 2.0 ** -24
    True
    >>> gamma(2 ** 24, 2.0 ** -24)
    Traceback (most recent call last):
        ...
    ValueError: n=16777216, u=5.960464477539063e-08: n*u >= 1, gamma_n is undefined
    """
    if n < 0:
        raise ValueError(f"n={n}: must be >= 0")
    fu = Fraction(u)
    nu = n * fu
    if nu >= 1:
        raise ValueError(f"n={n}, u={u}: n*u >= 1, gamma_n is undefined")
    g = nu / (1 - nu)
    f = float(g)  # round to nearest, then step up if it fell below
    return f if Fraction(f) >= g else float(np.nextafter(f, np.inf))


def input_rounding(fmt: Any) -> float:
    """Relative error of a product whose two factors were first rounded to ``fmt``: ``2 u + u^2`` (rounded up).

    ``|fl(x) fl(w) - x w| <= (2u + u^2) |x w|``; the extra term of a precision
    profile that rounds its inputs (TF32, bfloat16, float16) before multiplying.

    >>> input_rounding('bfloat16') == 2 * 2.0 ** -8 + 2.0 ** -16
    True
    """
    u = Fraction(unit_roundoff(fmt))
    r = 2 * u + u * u
    f = float(r)
    return f if Fraction(f) >= r else float(np.nextafter(f, np.inf))


def dot_bound(n: int, abs_sum: Any, dtype: Any, *, against: str = "rounded", input_format: Any = None) -> np.ndarray:
    """Bound for ``n``-term dot products with absolute sums ``abs_sum`` (an upper bound of ``sum |terms|``).

    ``gamma_n * S + n * eta`` (``against='exact'``), plus ``u * S + eta / 2`` for
    the comparison with a correctly rounded result (``against='rounded'``).
    Complex formats use ``sqrt(2) * gamma_{n+2}`` (Higham §3.6).  With
    ``input_format`` (e.g. ``'tf32'``) the factors are taken as rounded to that
    format first: ``(1 + r)(1 + gamma_n) - 1`` with ``r = input_rounding(fmt)``
    replaces ``gamma_n``.

    >>> float(dot_bound(3, 1.0, 'float32', against='exact')) >= 3 * 2.0 ** -24
    True
    >>> bool(dot_bound(3, 1.0, 'float32', input_format='tf32') > dot_bound(3, 1.0, 'float32'))
    True
    """
    if against not in ("rounded", "exact"):
        raise ValueError(f"against={against!r}: must be 'rounded' or 'exact'")
    fmt = _fmt(dtype)
    u, eta = UNIT_ROUNDOFF[fmt], _ETA[fmt]
    is_complex = not isinstance(dtype, str) and np.dtype(dtype).kind == "c"
    g = gamma(n + 2, u) * 1.4142135623730951 * (1 + 2.0**-52) if is_complex else gamma(n, u)
    if input_format is not None:
        r = input_rounding(input_format)
        g = float(round_up(round_up(r + g) + round_up(r * g)))  # (1 + r)(1 + g) - 1, rounded up
    if against == "rounded":
        g = float(round_up(g + u * (1.4142135623730951 if is_complex else 1.0)))
    S = np.asarray(abs_sum, dtype=np.float64)
    return round_up(round_up(S * g) + (n + 1) * eta)


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


def _dtype_of(dtype, *arrays) -> Any:
    if dtype is not None:
        return dtype
    return np.result_type(*[np.asarray(a).dtype for a in arrays if a is not None])


def _split_bias(kwargs):
    return {k: v for k, v in kwargs.items() if k not in ("algorithm", "max_memory")}


def conv_error_bound(x: Any, w: Any, b: Any = None, *, dtype: Any = None, against: str = "rounded", input_format: Any = None,
                     **conv_kwargs: Any) -> np.ndarray:
    """Per-element bound on ``|conv_hat - conv|`` for a float implementation of :func:`refconv.oracle.conv`.

    ``dtype`` is the working format (default: the inputs' dtype); the
    keywords are those of ``conv`` (stride, padding, dilation, groups, flip).
    ``input_format`` names a format the factors are rounded to first (a
    precision profile such as ``'tf32'``; see :func:`dot_bound`).
    Terms per element: ``n = C_in/groups * prod(K)`` products plus the bias.

    >>> import numpy as np
    >>> b = conv_error_bound(np.ones((1, 2, 5)), np.ones((1, 2, 3)), np.ones(1))
    >>> b.shape, bool(b[0, 0, 0] >= 8 * 2.0 ** -53 * 7)
    ((1, 1, 3), True)
    """
    kw = _split_bias(conv_kwargs)
    w_arr = np.asarray(w)
    n = int(np.prod(w_arr.shape[1:])) + (0 if b is None else 1)
    S = abs_sums("conv", x, w, n_terms=n, **kw)
    if b is not None:
        S = round_up(S + np.abs(np.asarray(b, dtype=np.float64)).reshape((-1,) + (1,) * (S.ndim - 2)))
    return dot_bound(n, S, _dtype_of(dtype, x, w, b), against=against, input_format=input_format)


def conv_transpose_error_bound(x: Any, w: Any, b: Any = None, *, dtype: Any = None, against: str = "rounded", input_format: Any = None,
                               **kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.conv_transpose`: ``n <= C_in/groups * prod(K)`` terms (+ bias)."""
    kw = _split_bias(kwargs)
    x_arr, w_arr = np.asarray(x), np.asarray(w)
    groups = kw.get("groups", 1)
    n = int(x_arr.shape[1] // groups * np.prod(w_arr.shape[2:])) + (0 if b is None else 1)
    S = abs_sums("conv_transpose", x, w, n_terms=n, **kw)
    if b is not None:
        S = round_up(S + np.abs(np.asarray(b, dtype=np.float64)).reshape((-1,) + (1,) * (S.ndim - 2)))
    return dot_bound(n, S, _dtype_of(dtype, x, w, b), against=against, input_format=input_format)


def conv_grad_input_error_bound(dy: Any, w: Any, input_shape: Any, *, dtype: Any = None, against: str = "rounded", input_format: Any = None,
                                **conv_kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.conv_grad_input`: ``n <= C_out/groups * prod(K)`` terms."""
    kw = _split_bias(conv_kwargs)
    dy_arr, w_arr = np.asarray(dy), np.asarray(w)
    groups = kw.get("groups", 1)
    n = max(int(w_arr.shape[0] // groups * np.prod(w_arr.shape[2:])), 1)
    S = abs_sums("conv_grad_input", dy, w, tuple(input_shape), n_terms=n, **kw)
    return dot_bound(n, S, _dtype_of(dtype, dy, w), against=against, input_format=input_format)


def conv_grad_weight_error_bound(x: Any, dy: Any, weight_shape: Any, *, dtype: Any = None, against: str = "rounded", input_format: Any = None,
                                 **conv_kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.conv_grad_weight`: ``n = N * prod(O)`` terms."""
    kw = _split_bias(conv_kwargs)
    dy_arr = np.asarray(dy)
    n = max(int(dy_arr.shape[0] * np.prod(dy_arr.shape[2:])), 1)
    S = abs_sums("conv_grad_weight", x, dy, tuple(weight_shape), n_terms=n, **kw)
    return dot_bound(n, S, _dtype_of(dtype, x, dy), against=against, input_format=input_format)


def conv_grad_bias_error_bound(dy: Any, *, dtype: Any = None, against: str = "rounded", input_format: Any = None) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.conv_grad_bias`: ``n = N * prod(O)`` terms."""
    a = np.abs(np.asarray(dy)).astype(np.float64)
    n = max(int(a.size // max(a.shape[1], 1)), 1)
    S = a.sum(axis=(0, *range(2, a.ndim)))
    S = round_up(round_up(S * (1 + 2 * gamma(n + 1, 2.0**-53))) + (n + 1) * 2.0**-1074)
    return dot_bound(n, S, _dtype_of(dtype, dy), against=against, input_format=input_format)


def avg_pool_error_bound(x: Any, kernel_size: Any, *, dtype: Any = None, against: str = "rounded",
                         **pool_kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.avg_pool`: a ``prod(K)``-term sum, then one division.

    ``|fl(fl(s)/q) - s/q| <= gamma_k * sum|x| / q`` with ``k = prod(K)`` (the sum's
    ``k - 1`` roundings and the division's one).
    """
    from . import fast
    from .params import pool_params

    a = np.abs(np.asarray(x)).astype(np.float64)
    k = int(np.prod(pool_params(a.shape, kernel_size, **pool_kwargs).kernel_size))
    S = fast.avg_pool(a, kernel_size, **pool_kwargs)  # sum|x| / q in float64
    S = round_up(round_up(S * (1 + 2 * gamma(k + 1, 2.0**-53))) + (k + 1) * 2.0**-1074)
    return dot_bound(k, S, _dtype_of(dtype, x), against=against)


def avg_pool_grad_error_bound(dy: Any, input_shape: Any, kernel_size: Any, *, dtype: Any = None,
                              against: str = "rounded", **pool_kwargs: Any) -> np.ndarray:
    """Per-element bound for :func:`refconv.oracle.avg_pool_grad`: up to ``prod(K)`` terms ``dy/q``, each rounded."""
    from . import fast
    from .params import pool_params

    a = np.abs(np.asarray(dy)).astype(np.float64)
    k = int(np.prod(pool_params(tuple(input_shape), kernel_size, **pool_kwargs).kernel_size))
    S = fast.avg_pool_grad(a, tuple(input_shape), kernel_size, **pool_kwargs)
    S = round_up(round_up(S * (1 + 2 * gamma(k + 2, 2.0**-53))) + (k + 1) * 2.0**-1074)
    return dot_bound(k + 1, S, _dtype_of(dtype, dy), against=against)


def fft_conv_error_bound(x: Any, w: Any, b: Any = None, *, dtype: Any = None, against: str = "rounded",
                         **conv_kwargs: Any) -> np.ndarray:
    r"""Normwise model bound for an FFT convolution (``algorithm='fft'``), broadcast per element.

    For one channel pair with transform length ``L`` (product over axes) and an
    FFT whose computed spectrum has relative 2-norm error at most
    ``eps = log2(L) eta' / (1 - log2(L) eta')``, ``eta' = u + gamma_4 (sqrt 2 + u)``
    (Higham Thm 24.2, radix-2 Cooley-Tukey, twiddles accurate to ``u``):
    ``|y_hat - y|_inf <= |y_hat - y|_2 <= (3 eps + eps^2 + 2 gamma_2) M``,
    ``M = max(|x|_2 |w|_1, |x|_1 |w|_2)``, summed over the channels of a group,
    plus ``gamma_{Cg}`` times that sum for the channel contraction.  This is a
    model bound: scipy's pocketfft uses mixed radices, so the bound carries a
    factor 4 of margin and is checked empirically, not proven for it.
    """
    from .params import conv_params

    xa = np.asarray(x)
    wa = np.asarray(w)
    p = conv_params(xa.shape, wa.shape, stride=conv_kwargs.get("stride", 1), padding=conv_kwargs.get("padding", 0),
                    dilation=conv_kwargs.get("dilation", 1), groups=conv_kwargs.get("groups", 1),
                    flip=conv_kwargs.get("flip", False))
    u = unit_roundoff(_dtype_of(dtype, x, w))
    L = float(np.prod(p.padded_spatial))
    lg = max(np.log2(max(L, 2.0)), 1.0) + len(p.padded_spatial)  # one extra level per axis for mixed radices
    eta = u + gamma(4, u) * (np.sqrt(2) + u)
    eps = lg * eta / (1 - lg * eta)
    G = p.groups
    N, C = xa.shape[:2]
    M, Cg = wa.shape[:2]
    x64, w64 = np.abs(xa.astype(np.complex128)).reshape(N, G, Cg, -1), np.abs(wa.astype(np.complex128)).reshape(G, M // G, Cg, -1)
    x2, x1 = np.sqrt((x64**2).sum(-1)), x64.sum(-1)  # (N, G, Cg)
    w2, w1 = np.sqrt((w64**2).sum(-1)), w64.sum(-1)  # (G, Mg, Cg)
    Mc = np.maximum(x2[:, :, None, :] * w1[None], x1[:, :, None, :] * w2[None])  # (N, G, Mg, Cg)
    per = Mc.sum(-1).reshape(N, M)
    c = 4 * (3 * eps + eps**2 + 2 * gamma(2, u)) + gamma(Cg, u)
    total = per * c * (1 + 1e-12)
    if b is not None:
        total = total + u * np.abs(np.asarray(b, dtype=np.float64))[None, :]
    if against == "rounded":
        total = total + u * (per + (0 if b is None else np.abs(np.asarray(b, dtype=np.float64))[None, :]))
    shape = (N, M) + (1,) * p.ndim
    return np.broadcast_to(round_up(total).reshape(shape), p.output_shape).copy()


def within_bound(actual: Any, expected: Any, bound: Any) -> np.ndarray:
    """Elementwise ``|actual - expected| <= bound`` with the difference computed exactly (as Fractions).

    NaN and infinities must match exactly (same class and sign).

    >>> import numpy as np
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
