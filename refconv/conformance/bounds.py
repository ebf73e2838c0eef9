"""The judge's bound of one conformance case (specs/tolerance.md); every formula is in :mod:`refconv.tolerance`.

This module re-exports the formats and precision profiles of
:mod:`refconv.tolerance` and adds :func:`case_bound`, the single entry the
judge and the diagnosis use: the per-element bound of a :class:`Case` for the
algorithm the target claims (``bound=``):

==============  ==========================================================  ======================================
algorithm       what it allows                                              ops
==============  ==========================================================  ======================================
``direct``      direct summation in any order (alias ``elementwise``)       all
``fft``         FFT convolution, norm-wise error (alias ``normwise``)       conv, conv_transpose, both gradients
``winograd``    Winograd F(2, 3) / F(4, 3), any tile alignment              conv, conv_transpose, conv_grad_input
``prefix_sum``  average pooling by prefix sums (summed-area tables)         avg_pool
==============  ==========================================================  ======================================

Each algorithm's bound is the larger of its own and the direct one (a
library may pick either per call); Winograd applies to stride-1, undilated
``3 x ... x 3`` kernels, other cases of those ops get the direct bound.

Examples
--------
>>> from refconv.conformance.cases import Case
>>> from refconv.conformance import ops
>>> c = Case('conv', spatial=(6,), kernel=(3,))
>>> a = c.arrays('float32'); y = ops.expected(c, a)
>>> p = profile('float32')
>>> d = case_bound(c, a, y, p, dtype='float32')
>>> w = case_bound(c, a, y, p, algorithm='winograd', dtype='float32')
>>> d.shape, bool((w >= d).all()), bool((w > d).any())
((1, 1, 4), True, True)
>>> bound_modes('avg_pool')
('direct', 'prefix_sum')
>>> validate_bound('max_pool', 'winograd')
Traceback (most recent call last):
    ...
refconv.params.ConvParamError: bound='winograd' does not apply to op='max_pool' (applicable: 'direct')
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tolerance as _tol
from ..params import ConvParamError
from ..tolerance import (  # noqa: F401 - re-exported: the bounds of the judge are those of refconv.tolerance
    FORMATS,
    PROFILES,
    WINOGRAD_VARIANTS,
    Format,
    Profile,
    elementwise_bound,
    input_underflow_bound,
    normwise_fft_bound,
    op_terms,
    profile,
    round_significand,
    round_to,
)

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
    "input_underflow_bound",
    "op_terms",
    "BOUND_MODES",
    "BOUND_ALIASES",
    "bound_modes",
    "validate_bound",
    "winograd_applies",
    "exact_in",
    "op_bound",
    "case_bound",
]

def _own() -> tuple[Any, ...]:
    """The registered ops with a bound of their own (the others borrow one: ``OpRecord.bound_as``)."""
    from . import registry

    return tuple(r for r in registry.records() if r.bound_as is None)


#: every op with its own bound; the sums of products (the convolution family) among them
_ALL = tuple(r.name for r in _own())
_LINEAR = tuple(r.name for r in _own() if r.family == "conv")

#: algorithm -> the ops whose results it may compute
BOUND_MODES: dict[str, tuple[str, ...]] = {
    "direct": _ALL,
    "fft": _LINEAR,
    # Winograd transforms a correlation with a small weight: not the weight gradient (its "weight" is dy)
    "winograd": tuple(r.name for r in _own() if r.family == "conv" and r.second != "weight_shape"),
    # summed-area tables compute window sums: the averaging window reductions
    "prefix_sum": tuple(r.name for r in _own() if r.window and r.bound == "abs"),
}
#: earlier names: 'elementwise' is 'direct', 'normwise' is 'fft'
BOUND_ALIASES = {"elementwise": "direct", "normwise": "fft"}


def gamma(n: Any, u: float) -> float:
    """``gamma_n(u)`` (:func:`refconv.tolerance.gamma`); ``inf`` where ``n*u >= 1`` (the judge leaves those unjudged).

    >>> gamma(3, 0.5)
    inf
    >>> float(gamma(1, 2.0**-53)) > 2.0**-53
    True
    """
    return _tol.gamma(int(n), u, undefined="inf")


def bound_modes(op: str) -> tuple[str, ...]:
    """The algorithms (``bound=`` values, without aliases) whose bound applies to ``op``.

    >>> bound_modes('conv')
    ('direct', 'fft', 'winograd')
    """
    if op not in _ALL:
        raise ConvParamError(f"op={op!r}: ops are " + ", ".join(repr(o) for o in _ALL))
    return tuple(m for m, ops_ in BOUND_MODES.items() if op in ops_)


def validate_bound(op: str, bound: str) -> str:
    """The canonical algorithm of ``bound`` for ``op``; ``ConvParamError`` naming ``bound=`` when it does not apply.

    >>> validate_bound('conv', 'normwise'), validate_bound('avg_pool', 'elementwise')
    ('fft', 'direct')
    >>> validate_bound('conv', 'strassen')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: bound='strassen': bound modes are 'direct', 'fft', 'winograd', 'prefix_sum' (aliases: 'elementwise' = 'direct', 'normwise' = 'fft')
    """
    if not isinstance(bound, str) or BOUND_ALIASES.get(bound, bound) not in BOUND_MODES:
        aliases = ", ".join(f"{a!r} = {c!r}" for a, c in BOUND_ALIASES.items())
        raise ConvParamError(f"bound={bound!r}: bound modes are " + ", ".join(repr(m) for m in BOUND_MODES)
                             + f" (aliases: {aliases})")
    mode = BOUND_ALIASES.get(bound, bound)
    modes = bound_modes(op)
    if mode not in modes:
        raise ConvParamError(f"bound={bound!r} does not apply to op={op!r} (applicable: "
                             + ", ".join(repr(m) for m in modes) + ")")
    return mode


def winograd_applies(case: Any) -> bool:
    """Whether ``case`` is a stride-1, undilated convolution with ``3 x ... x 3`` kernels (Winograd's domain).

    >>> from refconv.conformance.cases import Case
    >>> winograd_applies(Case('conv', spatial=(6, 6), kernel=(3, 3))), winograd_applies(Case('conv', kernel=(3,), stride=(2,)))
    (True, False)
    """
    return (case.op in BOUND_MODES["winograd"] and all(k == 3 for k in case.kernel)
            and all(s == 1 for s in case.stride) and all(d == 1 for d in case.dilation))


def exact_in(case: Any, S: np.ndarray, prof: Profile, dtype: str) -> np.ndarray:
    """Where every summation order is exact: ``dyadic`` values, products exact, partial sums in the format.

    Products of a multiple of ``2**-12`` (12 significant bits) and ``{-1, 0, 1}`` are exact; any partial sum
    is a multiple of ``2**-12`` of magnitude at most ``S``, hence exact in a format of ``p`` bits when
    ``S * 2**12 < 2**p``.  That needs the inputs themselves exact (no input rounding, a dtype of at least
    13 bits) and the accumulation and output formats both wide enough.
    """
    p_acc = round(-math.log2(prof.u_acc))
    p_out = round(-math.log2(prof.u_out))
    p_dt = FORMATS[dtype].p if dtype in FORMATS else 0
    if prof.u_in != 0 or p_dt < 13:
        return np.zeros(np.shape(S), dtype=bool)
    limit = 2.0 ** (min(p_acc, p_out) - 12)
    return np.isfinite(S) & (S < limit)


def op_bound(op: str, S: Any, y: Any, terms: int, prof: Profile) -> np.ndarray:
    """The direct bound of ``op`` from its magnitudes ``S`` and values ``y`` (:func:`refconv.tolerance.op_terms`).

    For callers that hold magnitudes but no case (the diagnosis of other
    conventions); no input-underflow term, no half ulp of the expectation.

    >>> p = profile('float32')
    >>> bool(op_bound('avg_pool', [1.0], [1.0], 4, p) == elementwise_bound([1.0], [1.0], 7, p, input_factors=1))
    True
    """
    n, factors = op_terms(op, terms)
    return elementwise_bound(S, y, n, prof, input_factors=factors)


# --------------------------------------------------------------------------- case level


def _operands(case: Any) -> tuple[str, str]:
    """The two factors of each term: the op's first two arrays (``(x, w)``, ``(dy, w)``, ``(x, dy)``)."""
    first, second = list(case.input_shapes())[:2]
    return first, second


def _grown(a: np.ndarray, prof: Profile) -> np.ndarray:
    """``(1 + u_in)|a| + eta_in``: an upper bound of the magnitude of each input after rounding or flushing."""
    return (1.0 + prof.u_in) * np.abs(np.asarray(a, dtype=np.float64)) + prof.eta_in


def _factor_sums(case: Any, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Per element, the sum of the magnitudes of each term's factors (or the inputs' coefficients for pooling)."""
    from . import ops

    if case.op == "max_pool":
        return np.ones(case.output_shape)
    keep = case.record.selectors  # indices and the max-pooled x choose; they are not factors
    ones = {k: v if k in keep else np.ones(np.shape(v)) for k, v in arrays.items()}
    if case.op == "avg_pool":
        return ops.values_of(case, ops.expected(case, ones))  # count / divisor
    factors = [k for k in arrays if k != "b" and k not in keep][:2]
    if len(factors) == 1:
        # a plain sum (the bias gradient): one factor per term
        return ops.expected(case, {**ones, factors[0]: np.abs(np.asarray(arrays[factors[0]], dtype=np.float64))})
    k1, k2 = factors
    f1 = {**ones, k1: np.abs(np.asarray(arrays[k1], dtype=np.float64))}
    f2 = {**ones, k2: np.abs(np.asarray(arrays[k2], dtype=np.float64))}
    f1.pop("b", None)  # the bias counts once, as 1 in f2 (a rounded bias: theta)
    return ops.expected(case, f1) + ops.expected(case, f2)


def _pad_or_crop(a: np.ndarray, pads: list[tuple[int, int]]) -> np.ndarray:
    """Zero padding ``(lo, hi)`` per spatial axis; a negative side crops."""
    a = np.pad(a, [(0, 0), (0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in pads])
    sl = tuple(slice(max(-lo, 0), a.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pads))
    return a[(slice(None), slice(None)) + sl]


def _swap_groups(w: np.ndarray, groups: int) -> np.ndarray:
    """``(A, B, *K)`` -> ``(groups*B, A/groups, *K)`` with the spatial axes reversed (the adjoint's kernel)."""
    A, B = w.shape[:2]
    wt = w.reshape(groups, A // groups, B, *w.shape[2:]).swapaxes(1, 2).reshape(groups * B, A // groups, *w.shape[2:])
    return wt[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def _winograd(case: Any, arrays: dict[str, np.ndarray], prof: Profile) -> np.ndarray:
    """Winograd ``E_alg`` of a stride-1 3x3 case, through its forward problem ``conv(data, kernel)``."""
    k1, k2 = _operands(case)
    a, w = _grown(arrays[k1], prof), _grown(arrays[k2], prof)
    b = _grown(arrays["b"], prof) if "b" in arrays else 0.0
    if case.op == "conv":
        data, kern = _pad_or_crop(a, list(case.padding)), w
    else:
        # the transposed convolution and the input gradient (stride 1): a full convolution with the adjoint kernel
        data = _pad_or_crop(a, [(k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(case.kernel, case.padding)])
        kern = _swap_groups(w, case.groups)
    return _tol.winograd_error(data, kern, b, prof, groups=case.groups)


def _fft(case: Any, arrays: dict[str, np.ndarray], prof: Profile) -> np.ndarray:
    """FFT ``E_alg`` per output map: ``M = sum_c min(||p||_2 ||q||_1, ||p||_1 ||q||_2)`` over the summed channels."""
    k1, k2 = _operands(case)
    p1, p2 = _tol._channel_norms(_grown(arrays[k1], prof))
    q1, q2 = _tol._channel_norms(_grown(arrays[k2], prof))
    G = case.groups
    spans = [d * (k - 1) + 1 for d, k in zip(case.dilation, case.kernel)]
    padded = [n + lo + hi for n, (lo, hi) in zip(case.spatial, case.padding)]
    n1, c1 = p1.shape
    n2, c2 = q1.shape
    if case.op == "conv":
        # y[n, o] = sum_{c in group} corr(x[n, c], w[o, c])
        ps, qs, axis = (n1, G, 1, c1 // G), (1, G, n2 // G, c2), 3
        lengths = [P + s - 1 for P, s in zip(padded, spans)]
    elif case.op == "conv_transpose":
        # y[n, o] = sum_{c in group} x[n, c] (*) w[c, o]: the stride-dilated input convolved with the kernel
        ps, qs, axis = (n1, G, c1 // G, 1), (1, G, n2 // G, c2), 2
        lengths = [(n - 1) * s + sp + op for n, s, sp, op in zip(case.spatial, case.stride, spans, case.output_padding)]
    elif case.op == "conv_grad_input":
        # dx[n, c] = sum_{o in group} dy[n, o] (*) w[o, c]
        ps, qs, axis = (n1, G, c1 // G, 1), (1, G, n2 // G, c2), 2
        lengths = [P + s - 1 for P, s in zip(padded, spans)]
    else:
        # dw[o, c] = sum_n corr(x[n, group(o) c], dy[n, o])
        ps, qs, axis = (n1, G, 1, c1 // G), (n2, G, c2 // G, 1), 0
        lengths = [P + (o - 1) * s for P, o, s in zip(padded, case.forward_output_shape[2:], case.stride)]
    P1, P2, Q1, Q2 = p1.reshape(ps), p2.reshape(ps), q1.reshape(qs), q2.reshape(qs)
    M = np.minimum(P2 * Q1, P1 * Q2).sum(axis)
    A = (P1 + Q1 + 1).sum(axis)
    channels = (P1 * Q1).shape[axis]
    b = _grown(arrays["b"], prof).reshape(G, -1) if "b" in arrays else 0.0
    E = _tol.fft_error(M, A, _tol.fft_levels(lengths), channels, prof, bias=b)
    lead = tuple(case.output_shape[:2])
    return np.broadcast_to(E.reshape(lead + (1,) * case.dims), case.output_shape)


def _moded(case: Any, arrays: dict[str, np.ndarray], prof: Profile, mode: str) -> np.ndarray:
    """The algorithm's ``E_alg`` with a padding mode: the same problem on the input padded by its mode, with no
    padding of its own (PyTorch's modules pad, then convolve).  The input gradient sends each padded position's
    gradient to the sample it copies: the errors of the copies add, and so do the copies' values (``n`` more
    additions, ``n`` the largest pad)."""
    from dataclasses import replace

    from ..padding_modes import pad_mode, pad_mode_adjoint

    pads = list(case.padding)
    own = getattr(case, "_case", case)  # the case itself, also when seen through the bound of another op
    flat = replace(own, padding=((0, 0),) * case.dims, padding_mode="zeros",
                   spatial=tuple(n + lo + hi for n, (lo, hi) in zip(case.spatial, pads)))
    if case.op == "conv_grad_input":
        E = case_bound(flat, arrays, np.zeros(flat.output_shape), prof, algorithm=mode, dtype="float64")
        copies = max(max(p) for p in pads) + 2
        shape = (case.n, case.cin, *case.spatial)
        return pad_mode_adjoint(E, pads, case.padding_mode, shape) * (1 + _tol.gamma(copies, prof.u_acc))
    a = dict(arrays)
    a["x"] = pad_mode(np.asarray(arrays["x"], dtype=np.float64), pads, case.padding_mode)
    return case_bound(flat, a, np.zeros(flat.output_shape), prof, algorithm=mode, dtype="float64")


def _prefix_sum(case: Any, arrays: dict[str, np.ndarray], prof: Profile) -> np.ndarray:
    kw = case.kwargs()
    k = kw.pop("kernel_size")
    return _tol.prefix_sum_error(_grown(arrays["x"], prof), k, prof, **kw)


def case_bound(case: Any, arrays: dict[str, np.ndarray], exp: np.ndarray, prof: Profile, *, algorithm: str = "direct",
               dtype: str) -> np.ndarray:
    """Per-element bound on ``|actual - exp|`` for ``case`` computed from ``arrays`` (of ``dtype``) under ``prof``.

    ``exp`` is the exact result correctly rounded to float64
    (:func:`refconv.conformance.ops.expected`); its half ulp is included.
    ``algorithm`` is a ``bound=`` value (:data:`BOUND_MODES`, aliases
    accepted).  The bound is ``E_in + max(E_direct, E_algorithm) + E_out``
    (specs/tolerance.md) plus, for profiles that round or flush inputs, the
    absolute error of tiny inputs.  With ``algorithm='direct'`` and
    ``values='dyadic'`` the elements whose every summation order is exact
    (:func:`exact_in`) get 0.

    Raises
    ------
    refconv.params.ConvParamError
        ``algorithm`` unknown or not applicable to ``case.op``.
    """
    from . import ops

    mode = validate_bound(case.op, algorithm)
    if case.op in ("fractional_max_pool", "deform_conv"):  # their own bounds (refconv.conformance.extra_ops)
        from .extra_ops import case_bound as extra_bound

        return extra_bound(case, arrays, exp, prof, dtype=dtype)
    if getattr(case, "unbatched", False) and mode != "direct":
        # the algorithms' bounds read the batched shapes: the same call with N = 1, its bound without N
        full, batched = case.batched(arrays)
        return case_bound(full if case.op == full.op else type(case)(full, case.op), batched, np.asarray(exp)[None],
                          prof, algorithm=algorithm, dtype=dtype)[0]
    S = ops.magnitude(case, arrays)
    n, factors = op_terms(case.op, case.terms())
    Sf = np.where(np.isfinite(S), S, 0.0)
    grow = (1.0 + prof.u_in) ** factors
    e_alg = _tol._direct_error(Sf, n, prof, grow)
    if mode in ("fft", "winograd") and getattr(case, "padding_mode", "zeros") != "zeros":
        e_alg = np.maximum(e_alg, _moded(case, arrays, prof, mode))
    elif mode == "fft":
        e_alg = np.maximum(e_alg, _fft(case, arrays, prof))
    elif mode == "winograd" and winograd_applies(case):
        e_alg = np.maximum(e_alg, _winograd(case, arrays, prof))
    elif mode == "prefix_sum":
        e_alg = np.maximum(e_alg, _prefix_sum(case, arrays, prof))
    b = _tol._assemble(exp, (grow - 1.0) * Sf, e_alg, n, prof)
    if prof.eta_in:
        b = b + input_underflow_bound(_factor_sums(case, arrays) * (1 + 2.0**-50), n, prof, input_factors=factors)
    if mode == "direct" and case.values == "dyadic" and case.op not in ("max_pool", "avg_pool"):
        b = np.where(exact_in(case, S, prof, dtype), 0.0, b)
    # the expectation is the exact value correctly rounded to float64: allow its half ulp
    return b + np.abs(exp) * 2.0**-52
