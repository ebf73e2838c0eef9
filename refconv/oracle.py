r"""The executable definition: exact convolution, pooling and their gradients.

Everything here is the one general operation of ``specs/convolution.md``, for
any number of spatial axes, written as loops over kernel taps that read like
the equations (each tap is one vectorized slice over all output positions):

.. math::

    y[n, o, p] = b[o] + \sum_{c < C_{in}/G} \sum_{k} x_p[n, g(o) C_{in}/G + c, p s + k d]\, w[o, c, k']

with ``k' = k`` (cross-correlation, ``flip=False``, what deep learning calls
convolution) or ``k' = K - 1 - k`` (convolution, ``flip=True``).

Arithmetic is exact: integers stay integers (int64, or Python ints when int64
would overflow), ``Fraction`` and sympy entries stay exact, and floats are the
dyadic rationals they store; a float result is the exact value correctly
rounded (to nearest, ties to even) to the result dtype, or the exact value as
``Fraction`` with ``exact=True``.

IEEE specials follow the literal sum: a NaN anywhere in a window gives NaN,
``inf * 0`` is NaN (zeros of the padding and of input dilation included),
``inf + (-inf)`` is NaN, otherwise an infinite term gives that infinity.  An
exactly zero result is ``+0.0`` (the sign of zero is not tracked).

Examples
--------
The seed's 1-D examples: full convolution and one valid correlation.

>>> convolve([1, 2, 3, 4], [5, 6, 7]).tolist()
[5, 16, 34, 52, 45, 28]
>>> correlate([1, 2, 3], [5, 6, 7], mode='valid').tolist()
[38]

A 32x32x3 input and two 5x5x3 filters give 28x28x2:

>>> x = np.ones((1, 3, 32, 32), dtype=int)
>>> conv(x, np.ones((2, 3, 5, 5), dtype=int)).shape
(1, 2, 28, 28)

Work limit: exact arithmetic is slow (floats become large integers: about
0.1 to 0.4 us per multiply-add; small integers about 1 ns), so a call whose
*work* -- its multiply-adds (comparisons and additions for pooling), plus the
elements of the arrays it builds (padded input, result), plus
:data:`STEP_WORK` ``= 100`` per step of its loops over kernel taps -- exceeds
:data:`DEFAULT_WORK_LIMIT` ``= 10**9`` (minutes of float arithmetic) is refused
before anything is allocated, with :class:`~refconv.params.OracleSizeError`
naming the number and the limit.  Raise the limit for a block of code with
:func:`work_limit` (``None``: no limit).  The bias gradient, linear in its
input, has no limit.

>>> conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), padding=10**9)
Traceback (most recent call last):
    ...
refconv.params.OracleSizeError: oracle.conv: 8,000,000,213 operations (4,000,000,006 multiply-adds, 4,000,000,007 array elements, 2 tap steps x 100), over the oracle's work limit of 1,000,000,000; raise it with refconv.oracle.work_limit(n) (None: no limit), or use refconv.fast
>>> with work_limit(10**10):
...     conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), padding=2).tolist()
[[[0.0, 1.0, 2.0, 2.0, 2.0, 1.0, 0.0]]]
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from fractions import Fraction
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from . import exact
from .padding_modes import pad_mode, pad_mode_adjoint
from .layouts import accepts_layouts  # layout= and weight_layout= on every operation
from .params import (
    ConvParamError,
    ConvParams,
    OracleSizeError,
    check_gradient_shape,
    check_params_match,
    conv_params,
    conv_transpose_params,
    general_crop,
    signal_mode,
    accepts_unbatched,
    per_axis_rank,
    weight_rank,
)

__all__ = [
    "conv",
    "conv_transpose",
    "max_pool",
    "avg_pool",
    "conv_grad_input",
    "conv_grad_weight",
    "conv_grad_bias",
    "conv_backward",
    "conv_transpose_grad_input",
    "conv_transpose_grad_weight",
    "max_pool_grad",
    "avg_pool_grad",
    "lp_pool",
    "max_unpool",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "global_avg_pool",
    "global_max_pool",
    "fractional_max_pool",
    "deform_conv",
    "convolve",
    "correlate",
    "conv_matrix",
    "general_conv",
    "DEFAULT_WORK_LIMIT",
    "STEP_WORK",
    "OracleSizeError",
    "get_work_limit",
    "work_limit",
]


# --------------------------------------------------------------------------- work limit

#: per call: multiply-adds (or pooling comparisons and additions), plus array elements built, plus STEP_WORK per tap step
DEFAULT_WORK_LIMIT = 10**9

_WORK_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("refconv_oracle_work_limit", default=DEFAULT_WORK_LIMIT)


def get_work_limit() -> int | None:
    """The work limit in effect here (the innermost :func:`work_limit`, else :data:`DEFAULT_WORK_LIMIT`)."""
    return _WORK_LIMIT.get()


@contextlib.contextmanager
def work_limit(limit: int | None) -> Iterator[int | None]:
    """Set the work limit of oracle calls inside a ``with`` block (``None``: no limit).

    A :mod:`contextvars` setting: threads and async tasks do not see each other's.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConvParamError(f"limit={limit!r}: the oracle's work limit must be an integer >= 1, or None")
    token = _WORK_LIMIT.set(limit)
    try:
        yield limit
    finally:
        _WORK_LIMIT.reset(token)


#: work counted for one step of a loop over kernel taps (its Python overhead, about 10 to 40 us)
STEP_WORK = 100


def _check_work(op: str, terms: int, elements: int, steps: int, what: str = "multiply-adds") -> None:
    """Refuse ``op`` when ``terms`` (its arithmetic) plus ``elements`` (of the arrays it builds) plus
    :data:`STEP_WORK` per step of its loops over taps exceed the limit."""
    limit = _WORK_LIMIT.get()
    work = terms + elements + STEP_WORK * steps
    if limit is not None and work > limit:
        raise OracleSizeError(
            f"oracle.{op}: {work:,} operations ({terms:,} {what}, {elements:,} array elements, {steps:,} tap steps "
            f"x {STEP_WORK}), over the oracle's work limit of {limit:,}; raise it with refconv.oracle.work_limit(n) "
            "(None: no limit), or use refconv.fast"
        )


def _prod(values: Iterable[int]) -> int:
    return math.prod(int(v) for v in values)


def _conv_work(op: str, p: ConvParams, padded_elements: int, result_elements: int) -> None:
    """The general operation's work: ``N * C_out * (C_in / G) * prod(K) * prod(O)`` multiply-adds, ``prod(K) * G`` steps."""
    n, cout, cg = p.input_shape[0], p.weight_shape[0], p.weight_shape[1]
    kp = _prod(p.kernel_spatial)
    _check_work(op, n * cout * cg * kp * _prod(p.output_spatial), padded_elements + result_elements, kp * p.groups)


# --------------------------------------------------------------------------- operands


def _asarray(name: str, a: Any) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ConvParamError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype.kind == "b":
        raise ConvParamError(f"{name}.dtype=bool: pass numbers (integers, floats, Fractions or sympy)")
    try:
        exact.classify(arr, name)
    except TypeError as exc:
        raise ConvParamError(str(exc)) from None
    return arr


class _Operands:
    """Named operands in one arithmetic domain: scaled integers, or sympy objects.

    For numeric kinds each array ``a`` is held as ``ints * scale`` (exact);
    non-finite floats are set aside and replayed on their signs at the end.
    """

    def __init__(self, **arrays: np.ndarray | None) -> None:
        present = {k: v for k, v in arrays.items() if v is not None}
        kinds = {exact.classify(v, k) for k, v in present.items()}
        if "symbolic" in kinds:
            self.kind = "symbolic"
        elif "rational" in kinds:
            self.kind = "rational"
        elif "float" in kinds:
            self.kind = "float"
            self.dtype = np.result_type(*[v.dtype for v in present.values()])
        else:
            self.kind = "int"
        self.has_fraction = any(
            isinstance(e, (Fraction, float)) for v in present.values() if v.dtype == object for e in v.flat
        )
        self.special = False
        self.ints: dict[str, np.ndarray] = {}
        self.scale: dict[str, Fraction] = {}
        self.signs: dict[str, np.ndarray] = {}
        for name, a in present.items():
            if self.kind == "symbolic":
                self.ints[name] = a.astype(object)
                self.scale[name] = Fraction(1)
                continue
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                self.special = True
            self.ints[name], self.scale[name] = exact.to_scaled(np.where(np.isfinite(a), a, 0) if a.dtype.kind == "f" else a)
        if self.special:
            # sign replay: finite entries become -1/0/+1, specials stay; sums of these are exact in float64
            for name, a in present.items():
                a64 = a.astype(np.float64) if a.dtype != object else np.array([float(v) for v in a.flat]).reshape(a.shape)
                self.signs[name] = np.where(np.isfinite(a64), np.sign(a64), a64)

    def widen(self, *names: str, terms: int) -> None:
        """Switch to Python ints when ``terms`` products of these operands could overflow int64."""
        if self.kind == "symbolic":
            return
        bound = terms
        for n in names:
            a = self.ints[n]
            bound *= int(np.abs(a).max()) if a.size else 0
        if bound >= exact.INT64_SAFE:
            for n in names:
                self.ints[n] = self.ints[n].astype(object)

    def finish(self, ints: np.ndarray, scale: Fraction, *, exact_out: bool, replay: Callable[..., np.ndarray] | None = None) -> np.ndarray:
        """Turn ``ints * scale`` into the result: int64/objects, Fractions, or correctly rounded floats."""
        if self.kind == "symbolic":
            return ints
        if exact_out or self.kind == "rational" and (scale.denominator != 1 or self.has_fraction):
            out = exact.to_fractions(ints, scale)
        elif self.kind in ("int", "rational"):
            vals = ints * int(scale) if scale != 1 else ints
            out = vals if vals.dtype == object else vals.astype(np.int64)
            if out.dtype == object and self.kind == "int":
                out = exact._to_int64_or_object(out)
        else:
            out = exact.round_scaled(ints, scale, self.dtype)
        if self.special and replay is not None:
            # Python floats in object arrays: IEEE products and sums term by term (BLAS may skip 0 * inf)
            with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are the point here
                s = replay(**{k: v.astype(object) for k, v in self.signs.items()}).astype(np.float64)
            bad = ~np.isfinite(s)
            if out.dtype == object:
                out[bad] = s[bad]
            else:
                out = out.astype(self.dtype) if out.dtype.kind != "f" else out
                out[bad] = s[bad]
        return out


def _combine(parts: Sequence[tuple[np.ndarray, Fraction]]) -> tuple[np.ndarray, Fraction]:
    """Exact sum of ``ints_i * scale_i``: rescale each to the common scale ``g`` (their rational gcd)."""
    parts = [p for p in parts if p is not None]
    num, den = 0, 1
    for _, s in parts:
        num = math.gcd(num, s.numerator)
        den = math.lcm(den, s.denominator)
    g = Fraction(num, den)
    total = None
    for ints, s in parts:
        m = s / g  # an integer
        assert m.denominator == 1
        bound = (int(np.abs(ints).max()) if ints.size else 0) * int(m) * len(parts)
        # Python integers where the product (or the factor m itself: an all-zero bias) would leave int64
        wide = bound >= exact.INT64_SAFE or int(m) >= exact.INT64_SAFE
        term = ints if m == 1 else (ints.astype(object) if wide and ints.dtype != object else ints) * int(m)
        if total is None:
            total = term
        else:
            if total.dtype != object and term.dtype != object:
                b2 = (int(np.abs(total).max()) if total.size else 0) + (int(np.abs(term).max()) if term.size else 0)
                if b2 >= exact.INT64_SAFE:
                    total, term = total.astype(object), term.astype(object)
            total = total + term
    assert total is not None  # at least one part
    return total, g


# PyTorch's unbatched inputs (C, *spatial): the one validation layer's decorator (refconv.params), as refconv.fast
_accepts_unbatched = accepts_unbatched
_per_axis_rank = per_axis_rank
_weight_rank = weight_rank("w")


# --------------------------------------------------------------------------- index maps


def _taps(kernel: Sequence[int], flip: bool) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Pairs ``(k, k')``: the tap offset and the weight index it reads (``K-1-k`` when flipped)."""
    for k in np.ndindex(*kernel):
        yield k, (tuple(K - 1 - ki for K, ki in zip(kernel, k)) if flip else k)


def _window(k: Sequence[int], stride: Sequence[int], dilation: Sequence[int], out: Sequence[int]) -> tuple[slice, ...]:
    """Positions ``p*s + k*d`` for ``p < O`` on every axis, as slices."""
    return tuple(
        slice(ki * di, ki * di + si * (oi - 1) + 1, si) if oi > 0 else slice(0, 0)
        for ki, si, di, oi in zip(k, stride, dilation, out)
    )


def _dilate_pad(x: np.ndarray, input_dilation: Sequence[int], padding: Sequence[tuple[int, int]]) -> np.ndarray:
    """``xp``: ``a - 1`` zeros between samples, then ``lo``/``hi`` zeros (negative: cropped)."""
    nsp = x.ndim - 2
    dil = tuple(a * (n - 1) + 1 if n > 0 else 0 for n, a in zip(x.shape[2:], input_dilation))
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in padding]
    xp = np.zeros(x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(dil, grow)), dtype=x.dtype)
    xp[(slice(None), slice(None)) + tuple(slice(lo, lo + n, a) for (lo, _), n, a in zip(grow, dil, input_dilation))] = x
    # negative sides crop; cropping past the other end leaves an empty axis (never a wrapped slice)
    crop = tuple(
        slice(-min(lo, 0), max(xp.shape[2 + i] + min(hi, 0), -min(lo, 0))) for i, (lo, hi) in enumerate(padding)
    )
    return xp[(slice(None), slice(None)) + crop] if nsp else xp


def _acc_dtype(*arrays: np.ndarray) -> Any:
    return object if any(a.dtype == object for a in arrays) else np.result_type(*arrays)


def _correlate(xp: np.ndarray, w: np.ndarray, p: ConvParams, flip: bool, out: Sequence[int]) -> np.ndarray:
    """``y[n, o, p] = sum_{c, k} xp[n, g(o)*Cg + c, p*s + k*d] * w[o, c, k']`` (no bias)."""
    n, cout, cg = xp.shape[0], w.shape[0], w.shape[1]
    og = cout // p.groups  # output channels per group
    y = np.zeros((n, cout, *out), dtype=_acc_dtype(xp, w))
    for k, kw in _taps(w.shape[2:], flip):
        win = xp[(slice(None), slice(None)) + _window(k, p.stride, p.dilation, out)]  # (N, C_in, *O)
        for g in range(p.groups):
            taps = w[(slice(g * og, (g + 1) * og), slice(None)) + kw]  # (Og, Cg)
            # (Og, Cg) . (N, Cg, *O) over c -> (Og, N, *O)
            y[:, g * og : (g + 1) * og] += np.moveaxis(np.tensordot(taps, win[:, g * cg : (g + 1) * cg], axes=([1], [1])), 0, 1)
    return y


def _scatter(dy: np.ndarray, w: np.ndarray, p: ConvParams, flip: bool, padded: Sequence[int]) -> np.ndarray:
    """Adjoint of :func:`_correlate`: ``dxp[n, g*Cg + c, p*s + k*d] += dy[n, o, p] * w[o, c, k']``."""
    n, cout, cg = dy.shape[0], w.shape[0], w.shape[1]
    og = cout // p.groups
    dxp = np.zeros((n, cg * p.groups, *padded), dtype=_acc_dtype(dy, w))
    out = dy.shape[2:]
    for k, kw in _taps(w.shape[2:], flip):
        win = (slice(None),) + _window(k, p.stride, p.dilation, out)
        for g in range(p.groups):
            taps = w[(slice(g * og, (g + 1) * og), slice(None)) + kw]  # (Og, Cg)
            # (Og, Cg) . (N, Og, *O) over o -> (Cg, N, *O)
            contrib = np.tensordot(taps, dy[:, g * og : (g + 1) * og], axes=([0], [1]))
            dxp[(slice(None), slice(g * cg, (g + 1) * cg)) + win[1:]] += np.moveaxis(contrib, 0, 1)
    return dxp


def _weight_corr(xp: np.ndarray, dy: np.ndarray, p: ConvParams, flip: bool, kernel: Sequence[int]) -> np.ndarray:
    """``dw[o, c, k'] = sum_{n, p} xp[n, g(o)*Cg + c, p*s + k*d] * dy[n, o, p]``."""
    cout = dy.shape[1]
    cg = xp.shape[1] // p.groups
    og = cout // p.groups
    dw = np.zeros((cout, cg, *kernel), dtype=_acc_dtype(xp, dy))
    out = dy.shape[2:]
    axes = [0] + list(range(2, dy.ndim))
    for k, kw in _taps(kernel, flip):
        win = xp[(slice(None), slice(None)) + _window(k, p.stride, p.dilation, out)]
        for g in range(p.groups):
            # sum over batch and output positions: (N, Og, *O) x (N, Cg, *O) -> (Og, Cg)
            dw[(slice(g * og, (g + 1) * og), slice(None)) + kw] = np.tensordot(
                dy[:, g * og : (g + 1) * og], win[:, g * cg : (g + 1) * cg], axes=(axes, axes)
            )
    return dw


# --------------------------------------------------------------------------- convolution


def _round_fractions(out: np.ndarray, *operands: np.ndarray) -> np.ndarray:
    """Exact Fractions as the operands' result would be returned: int64 for integers, else correctly rounded floats."""
    ops = _Operands(**{f"a{i}": a for i, a in enumerate(operands)})
    if ops.kind == "symbolic":
        return out
    den = math.lcm(1, *[int(v.denominator) for v in out.flat]) if out.size else 1
    ints = np.array([int(v * den) for v in out.flat], dtype=object).reshape(out.shape)
    return ops.finish(ints, Fraction(1, den), exact_out=False)


def _conv_params_from(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, kw: dict[str, Any]) -> ConvParams:
    return conv_params(x.shape, w.shape, None if b is None else b.shape, **kw)


def _forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams, exact_out: bool, op: str) -> np.ndarray:
    # arrays built: the padded input and the result
    _conv_work(op, p, p.input_shape[0] * p.input_shape[1] * _prod(p.padded_spatial), _prod(p.output_shape))
    ops = _Operands(x=x, w=w, b=b)
    terms = w.shape[1] * int(np.prod(w.shape[2:], dtype=np.int64))
    ops.widen("x", "w", terms=max(terms, 1))
    out = p.output_spatial

    def run(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        y = _correlate(_dilate_pad(x, p.input_dilation, p.padding), w, p, p.flip, out)
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * len(out))
        return y

    if ops.kind == "symbolic":
        return run(ops.ints["x"], ops.ints["w"], ops.ints.get("b"))
    core = run(ops.ints["x"], ops.ints["w"])
    parts = [(core, ops.scale["x"] * ops.scale["w"])]
    if b is not None:
        parts.append((np.broadcast_to(ops.ints["b"].reshape((1, -1) + (1,) * len(out)), core.shape), ops.scale["b"]))
    ints, scale = _combine(parts)
    return ops.finish(ints, scale, exact_out=exact_out, replay=run)


@accepts_layouts(x="activation", w="weight")
@_accepts_unbatched(("x",), _weight_rank)
def conv(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
    exact: bool = False,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """N-D convolution layer: cross-correlation by default, convolution with ``flip=True``.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *S)
    w : array_like, shape (C_out, C_in // groups, *K)
    b : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of int
    padding : int, tuple, ``(lo, hi)`` pairs, or ``'valid' | 'same' | 'same_lower' | 'full'``
    groups : int
        Output channel ``o`` reads input channels of group ``o // (C_out / groups)``.
    flip : bool
        Flip the kernel (``k' = K - 1 - k``): mathematical convolution.
    exact : bool
        Return exact ``Fraction`` entries instead of correctly rounded floats.
    padding_mode : ``'zeros' | 'reflect' | 'replicate' | 'circular'``
        What the padding holds (PyTorch's modules; :mod:`refconv.padding_modes`).

    Returns
    -------
    ndarray, shape (N, C_out, *O) with ``O = floor((n + lo + hi - d*(K-1) - 1) / s) + 1``

    Examples
    --------
    >>> x = np.arange(1, 6).reshape(1, 1, 5)
    >>> conv(x, np.array([[[1, 0, -1]]])).tolist()          # y[p] = x[p] - x[p+2]
    [[[-2, -2, -2]]]
    >>> conv(x, np.array([[[1, 0, -1]]]), flip=True).tolist()
    [[[2, 2, 2]]]
    >>> conv(x, np.array([[[1, 1]]]), padding='same').tolist()   # odd zero at the end
    [[[3, 5, 7, 9, 5]]]
    >>> conv(np.array([[[0.1, 0.2]]], dtype=np.float32), np.array([[[1.0, 1.0]]], dtype=np.float32), exact=True)[0, 0, 0]
    Fraction(40265319, 134217728)
    >>> conv(x, np.array([[[1, 1]]]), padding=1, padding_mode='circular').tolist()   # x[-1] = x[4]
    [[[6, 3, 5, 7, 9, 6]]]
    """
    xa, wa = _asarray("x", x), _asarray("w", w)
    ba = None if b is None else _asarray("b", b)
    p = _conv_params_from(xa, wa, ba, dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip))
    if padding_mode != "zeros":
        # the padded input itself, then no padding
        xa = pad_mode(xa, p.padding, padding_mode)
        p = _conv_params_from(xa, wa, ba, dict(stride=stride, padding=0, dilation=dilation, groups=groups, flip=flip))
    return _forward(xa, wa, ba, p, exact, "conv")


@accepts_layouts(x="activation", w="weight")
def general_conv(
    x: Any,
    w: Any,
    b: Any = None,
    params: ConvParams | None = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    input_dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
    exact: bool = False,
) -> np.ndarray:
    """The general operation of ``specs/convolution.md``, with input dilation; padding pairs may be negative (cropping).

    Either pass a :class:`~refconv.params.ConvParams` built by
    :func:`refconv.params.conv_params` (with ``input_dilation``), or the
    keywords.  Transposed convolution is this operation with input dilation =
    stride and the kernel flipped and channel-transposed:

    >>> x = np.array([[[1, 2]]]); w = np.array([[[1, 10, 100]]])
    >>> general_conv(x, w, input_dilation=2, padding=2, flip=True).tolist()
    [[[1, 10, 102, 20, 200]]]
    >>> conv_transpose(x, w, stride=2).tolist()
    [[[1, 10, 102, 20, 200]]]
    """
    xa, wa = _asarray("x", x), _asarray("w", w)
    ba = None if b is None else _asarray("b", b)
    if params is not None:
        check_params_match(params, xa.shape, wa.shape)
        return _forward(xa, wa, ba, params, exact, "general_conv")
    crop = general_crop(padding, input_dilation, xa.ndim - 2)
    if crop is not None:
        # negative sides crop: xp itself (dilated, padded, cropped), then no padding and no input dilation;
        # _dilate_pad first builds the dilated input with the positive sides of the padding
        grown = [a * (n - 1) + 1 + max(lo, 0) + max(hi, 0) if n > 0 else max(lo, 0) + max(hi, 0)
                 for n, a, (lo, hi) in zip(xa.shape[2:], crop[1], crop[0])]
        _check_work("general_conv", 0, _prod(xa.shape[:2]) * _prod(grown), 0)
        xa = _dilate_pad(xa, crop[1], crop[0])
        padding, input_dilation = 0, 1
    p = conv_params(
        xa.shape, wa.shape, None if ba is None else ba.shape, stride=stride, padding=padding, dilation=dilation,
        groups=groups, flip=flip, input_dilation=input_dilation,
    )
    return _forward(xa, wa, ba, p, exact, "general_conv")


@accepts_layouts(dy="activation", w="weight", input_shape="activation_shape")
def conv_grad_input(
    dy: Any,
    w: Any,
    input_shape: Sequence[int],
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
    exact: bool = False,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv` with respect to ``x``: the literal adjoint (scatter) of the forward sum.

    ``dx[n, g*Cg + c, p*s + k*d - lo] += dy[n, o, p] * w[o, c, k']``; input rows
    that the forward pass never reads get an exact zero.

    Examples
    --------
    >>> conv_grad_input(np.array([[[1, 1]]]), np.array([[[1, 2]]]), (1, 1, 5), stride=2).tolist()
    [[[1, 2, 1, 2, 0]]]

    With a ``padding_mode`` other than ``'zeros'`` the gradient of the padded
    input is folded back: a reflected, replicated or wrapped sample
    accumulates the gradients of its copies.

    >>> conv_grad_input(np.array([[[1, 1, 1]]]), np.array([[[1, 1]]]), (1, 1, 2), padding=1, padding_mode='replicate').tolist()
    [[[3, 3]]]
    """
    dya, wa = _asarray("dy", dy), _asarray("w", w)
    p = conv_params(input_shape, wa.shape, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    check_gradient_shape(dya.shape, p.output_shape)
    if padding_mode == "zeros":
        return _grad_input(dya, wa, p, exact)
    padded = (*p.input_shape[:2], *p.padded_spatial)
    pad_mode(np.zeros((0, 0, *p.input_spatial)), p.padding, padding_mode)  # the mode and its padding limits
    q = conv_params(padded, wa.shape, stride=stride, padding=0, dilation=dilation, groups=groups, flip=flip)
    dxp = _grad_input(dya, wa, q, True)
    out = pad_mode_adjoint(dxp, p.padding, padding_mode, p.input_shape)
    return out if exact else _round_fractions(out, dya, wa)


def _grad_input(dy: np.ndarray, w: np.ndarray, p: ConvParams, exact_out: bool) -> np.ndarray:
    # arrays built: the padded input gradient and the input gradient
    n, cin = p.input_shape[:2]
    _conv_work("conv_grad_input", p, n * cin * _prod(p.padded_spatial), _prod(p.input_shape))
    ops = _Operands(dy=dy, w=w)
    ops.widen("dy", "w", terms=max(1, w.shape[0] * int(np.prod(w.shape[2:], dtype=np.int64))))

    def run(dy: np.ndarray, w: np.ndarray) -> np.ndarray:
        dxp = _scatter(dy, w, p, p.flip, p.padded_spatial)
        # undo padding and input dilation: x[i] sits at xp[lo + a*i]
        keep = tuple(slice(lo, lo + n, a) for (lo, _), n, a in zip(p.padding, p.dilated_input_spatial, p.input_dilation))
        return dxp[(slice(None), slice(None)) + keep]

    if ops.kind == "symbolic":
        return run(ops.ints["dy"], ops.ints["w"])
    ints = run(ops.ints["dy"], ops.ints["w"])
    return ops.finish(ints, ops.scale["dy"] * ops.scale["w"], exact_out=exact_out, replay=run)


@accepts_layouts("weight", x="activation", dy="activation", weight_shape="weight_shape")
def conv_grad_weight(
    x: Any,
    dy: Any,
    weight_shape: Sequence[int],
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
    exact: bool = False,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv` with respect to ``w``: correlation of ``x`` with ``dy``.

    ``dw[o, c, k'] = sum_{n, p} xp[n, g(o)*Cg + c, p*s + k*d] * dy[n, o, p]``:
    stride and dilation trade places relative to the forward pass.

    Examples
    --------
    >>> conv_grad_weight(np.array([[[1, 2, 3, 4]]]), np.array([[[1, 0, 1]]]), (1, 1, 2)).tolist()
    [[[4, 6]]]
    """
    xa, dya = _asarray("x", x), _asarray("dy", dy)
    p = conv_params(xa.shape, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    check_gradient_shape(dya.shape, p.output_shape)
    if padding_mode != "zeros":
        # correlation of the padded input (its padding filled as the mode says) with dy
        xa = pad_mode(xa, p.padding, padding_mode)
        p = conv_params(xa.shape, weight_shape, stride=stride, padding=0, dilation=dilation, groups=groups, flip=flip)
    # arrays built: the padded input and the weight gradient
    _conv_work("conv_grad_weight", p, p.input_shape[0] * p.input_shape[1] * _prod(p.padded_spatial), _prod(p.weight_shape))
    ops = _Operands(x=xa, dy=dya)
    ops.widen("x", "dy", terms=max(1, int(np.prod(dya.shape, dtype=np.int64)) // max(dya.shape[1], 1)))

    def run(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return _weight_corr(_dilate_pad(x, p.input_dilation, p.padding), dy, p, p.flip, p.kernel_spatial)

    if ops.kind == "symbolic":
        return run(ops.ints["x"], ops.ints["dy"])
    ints = run(ops.ints["x"], ops.ints["dy"])
    return ops.finish(ints, ops.scale["x"] * ops.scale["dy"], exact_out=exact, replay=run)


@accepts_layouts(None, dy="activation")
def conv_grad_bias(dy: Any, *, exact: bool = False) -> np.ndarray:
    """Gradient of :func:`conv` with respect to ``b``: ``db[o] = sum_{n, p} dy[n, o, p]``.

    >>> conv_grad_bias(np.array([[[1, 2], [3, 4]]])).tolist()
    [3, 7]
    """
    dya = _asarray("dy", dy)
    if dya.ndim < 2:
        raise ConvParamError(f"dy.ndim={dya.ndim}: dy must have shape (N, C_out, *spatial)")
    ops = _Operands(dy=dya)
    axes = (0, *range(2, dya.ndim))
    ops.widen("dy", terms=max(1, dya.size))

    def run(dy: np.ndarray) -> np.ndarray:
        return dy.sum(axis=axes) if dy.dtype != object else np.sum(dy, axis=axes, dtype=object)

    if ops.kind == "symbolic":
        return run(ops.ints["dy"])
    return ops.finish(run(ops.ints["dy"]), ops.scale["dy"], exact_out=exact, replay=run)


def conv_backward(
    dy: Any,
    x: Any,
    w: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
    bias: bool = True,
    input_grad: bool = True,
    exact: bool = False,
    padding_mode: str = "zeros",
    layout: Any = None,
    weight_layout: Any = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)`` of ``y = conv(x, w, b, ...)``: :func:`conv_grad_input` (``None`` with
    ``input_grad=False``), :func:`conv_grad_weight` and :func:`conv_grad_bias` (``None`` with ``bias=False``).

    >>> dx, dw, db = conv_backward(np.ones((1, 1, 2), int), np.array([[[1, 2, 3]]]), np.array([[[1, 10]]]))
    >>> dx.tolist(), dw.tolist(), db.tolist()
    ([[[1, 11, 10]]], [[[3, 5]]], [2])
    """
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip, exact=exact,
              padding_mode=padding_mode, layout=layout, weight_layout=weight_layout)
    dx = conv_grad_input(dy, w, np.shape(x), **kw) if input_grad else None
    dw = conv_grad_weight(x, dy, np.shape(w), **kw)
    return dx, dw, (conv_grad_bias(dy, exact=exact, layout=layout) if bias else None)


@accepts_layouts(x="activation", w="transposed_weight", output_size="size")
@_accepts_unbatched(("x",), _weight_rank)
def conv_transpose(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    exact: bool = False,
    output_size: Any = None,
) -> np.ndarray:
    """Transposed convolution: the input gradient of the forward convolution, plus bias.

    Weight ``(C_in, C_out // groups, *K)`` as in PyTorch.  Each input sample
    scatters a copy of the kernel to ``p*s + k*d - lo``; output length
    ``(n-1)*s - lo - hi + d*(K-1) + output_padding + 1``.

    Examples
    --------
    >>> conv_transpose(np.array([[[1, 2, 3]]]), np.array([[[1, 1, 1]]]), stride=2).tolist()
    [[[1, 1, 3, 2, 5, 3, 3]]]
    >>> conv_transpose(np.array([[[1, 2, 3]]]), np.array([[[1, 1, 1]]]), stride=2, padding=1, output_padding=1).tolist()
    [[[1, 3, 2, 5, 3, 3]]]

    ``output_size`` picks ``output_padding`` (PyTorch); with ``padding='same'``
    or ``'same_lower'`` it is ONNX's ``output_shape``: the total padding
    ``full - output_size`` split with the odd one at the end (start):

    >>> conv_transpose(np.array([[[1, 2, 3]]]), np.array([[[1, 1, 1]]]), stride=2, padding=1, output_size=6).tolist()
    [[[1, 3, 2, 5, 3, 3]]]
    >>> conv_transpose(np.array([[[1, 2, 3]]]), np.array([[[1, 1, 1]]]), stride=2, padding='same', output_size=4).tolist()
    [[[1, 3, 2, 5]]]
    """
    xa, wa = _asarray("x", x), _asarray("w", w)
    ba = None if b is None else _asarray("b", b)
    ct = conv_transpose_params(
        xa.shape, wa.shape, None if ba is None else ba.shape, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation, groups=groups, output_size=output_size,
    )
    # the forward convolution this is the adjoint of (output_padding rows are never read by it)
    fwd = ConvParams(ct.output_shape, wa.shape, ct.stride, ct.padding, ct.dilation, (1,) * ct.ndim, ct.groups, False)
    # the scatter of the forward problem (at least one output per input sample); arrays: its padded result and y
    _conv_work("conv_transpose", fwd, ct.output_shape[0] * ct.output_shape[1] * _prod(fwd.padded_spatial), _prod(ct.output_shape))
    ops = _Operands(x=xa, w=wa, b=ba)
    ops.widen("x", "w", terms=max(1, wa.shape[0] * int(np.prod(wa.shape[2:], dtype=np.int64))))
    nsp = ct.ndim

    def run(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        dxp = _scatter(x, w, fwd, False, fwd.padded_spatial)
        keep = tuple(slice(lo, lo + n) for (lo, _), n in zip(ct.padding, ct.output_spatial))
        y = dxp[(slice(None), slice(None)) + keep]
        return y if b is None else y + b.reshape((1, -1) + (1,) * nsp)

    if ops.kind == "symbolic":
        return run(ops.ints["x"], ops.ints["w"], ops.ints.get("b"))
    core = run(ops.ints["x"], ops.ints["w"])
    parts = [(core, ops.scale["x"] * ops.scale["w"])]
    if ba is not None:
        parts.append((np.broadcast_to(ops.ints["b"].reshape((1, -1) + (1,) * nsp), core.shape), ops.scale["b"]))
    ints, scale = _combine(parts)
    return ops.finish(ints, scale, exact_out=exact, replay=run)


@accepts_layouts(dy="activation", w="transposed_weight")
def conv_transpose_grad_input(
    dy: Any, w: Any, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1, exact: bool = False,
    output_padding: Any = 0,
) -> np.ndarray:
    """Gradient of :func:`conv_transpose` with respect to ``x``: the forward convolution of ``dy`` with ``w``.

    ``y = conv_transpose(x, w)`` is ``conv_grad_input(x, w)``, so its adjoint
    is ``conv(dy, w)`` with the same stride, padding, dilation and groups.
    ``output_padding`` adds ``op`` rows at the end of ``y``; where ``op`` is at
    least the stride (allowed below the dilation) that convolution has
    ``floor(op / s)`` outputs past ``x``'s last sample, which are cut off.

    >>> conv_transpose_grad_input(np.array([[[1, 1, 1, 1, 1, 1, 1]]]), np.array([[[1, 2, 3]]]), stride=2).tolist()
    [[[6, 6, 6]]]
    >>> conv_transpose_grad_input(np.ones((1, 1, 6)), np.ones((1, 1, 2)), dilation=2, output_padding=1).shape
    (1, 1, 3)
    """
    out = conv(dy, w, stride=stride, padding=padding, dilation=dilation, groups=groups, exact=exact)
    extra = _transpose_extra(out.ndim - 2, stride, output_padding, dilation)
    # x's samples are the first o - floor(op/s) outputs of each axis
    return out[(slice(None), slice(None)) + tuple(slice(0, n - e) for n, e in zip(out.shape[2:], extra))]


def _transpose_extra(d: int, stride: Any, output_padding: Any, dilation: Any) -> tuple[int, ...]:
    """``floor(op / s)`` per axis: outputs of the adjoint convolution past the transposed op's input.

    ``output_padding`` must be below the stride or the dilation, as for :func:`conv_transpose`.
    """
    from .params import per_axis

    s, op = per_axis("stride", stride, d, minimum=1), per_axis("output_padding", output_padding, d, minimum=0)
    dl = per_axis("dilation", dilation, d, minimum=1)
    for o, si, di in zip(op, s, dl):
        if o >= max(si, di):
            raise ConvParamError(f"output_padding={tuple(op)}: must be smaller than the stride {tuple(s)} or the "
                                 f"dilation {tuple(dl)} on each axis")
    return tuple(o // si for o, si in zip(op, s))


@accepts_layouts("transposed_weight", x="activation", dy="activation", weight_shape="transposed_weight_shape")
def conv_transpose_grad_weight(
    x: Any, dy: Any, weight_shape: Sequence[int], *, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
    groups: int = 1, exact: bool = False, output_padding: Any = 0,
) -> np.ndarray:
    """Gradient of :func:`conv_transpose` with respect to ``w`` ``(C_in, C_out/groups, *K)``.

    ``dw[i, c, k] = sum_{n, p} dy[n, g*Cg + c, p*s + k*d - lo] * x[n, i, p]``: the
    weight gradient of the forward convolution with ``dy`` as its input and
    ``x`` as its output gradient (``x`` extended by ``floor(op / s)`` zeros per
    axis where ``output_padding`` is at least the stride).

    >>> conv_transpose_grad_weight(np.array([[[1, 2]]]), np.array([[[1, 1, 1, 1]]]), (1, 1, 3), stride=1).tolist()
    [[[3, 3, 3]]]
    >>> conv_transpose_grad_weight(np.ones((1, 1, 3)), np.ones((1, 1, 6)), (1, 1, 2), dilation=2, output_padding=1).tolist()
    [[[3.0, 3.0]]]
    """
    xa = _asarray("x", x)
    extra = _transpose_extra(xa.ndim - 2, stride, output_padding, dilation)
    if any(extra):
        # positions p >= n of the adjoint convolution read dy but hold no input: zero output gradient there
        xa = np.pad(xa, [(0, 0), (0, 0)] + [(0, e) for e in extra])
    return conv_grad_weight(dy, xa, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                            exact=exact)


# --------------------------------------------------------------------------- signal style


def _signal(a: Any, v: Any, mode: str, odd_zero: str, flip: bool, name: str) -> np.ndarray:
    aa, va = _asarray("a", a), _asarray("v", v)
    mode, odd_zero = signal_mode(mode, odd_zero, name)
    if aa.ndim != va.ndim or aa.ndim == 0:
        raise ConvParamError(f"a.ndim={aa.ndim}, v.ndim={va.ndim}: a and v must have the same number (>= 1) of axes")
    if aa.size == 0 or va.size == 0:
        raise ConvParamError(f"a.shape={aa.shape}, v.shape={va.shape}: a and v must not be empty")
    pad: Any
    if mode == "valid":
        a_big = all(n >= m for n, m in zip(aa.shape, va.shape))
        v_big = all(m >= n for n, m in zip(aa.shape, va.shape))
        if not (a_big or v_big):
            raise ConvParamError(
                f"mode='valid' with a.shape={aa.shape}, v.shape={va.shape}: one input must be at least as large as the other on every axis"
            )
        if not a_big:
            # valid needs the larger input first: convolution commutes; correlation reverses
            out = _signal(va, aa, mode, odd_zero, flip, name)
            return out if flip else out[tuple(slice(None, None, -1) for _ in range(out.ndim))]
        pad = "valid"
    elif mode == "full":
        pad = tuple((m - 1, m - 1) for m in va.shape)
    else:
        # same: the centred part of full; an even kernel's extra zero at the start (numpy/scipy) or end
        pad = tuple(((m - 1) - (m - 1) // 2, (m - 1) // 2) if odd_zero == "start" else ((m - 1) // 2, (m - 1) - (m - 1) // 2) for m in va.shape)
    x, w = aa[None, None], va[None, None]
    return _forward(x, w, None, conv_params(x.shape, w.shape, padding=pad, flip=flip), False, name)[0, 0]


def correlate(a: Any, v: Any, mode: str = "full", *, odd_zero: str = "start") -> np.ndarray:
    """Signal-style N-D cross-correlation ``z[p] = sum_k a[p + k - lo] * v[k]`` (no conjugation).

    ==========  ========================  =====================================
    mode        output length             padding of ``a`` (``m = len(v)``)
    ==========  ========================  =====================================
    ``full``    ``n + m - 1``             ``(m-1, m-1)``
    ``valid``   ``max(n, m) - min + 1``   none; if ``v`` is the larger input the
                                          result is ``correlate(v, a)`` reversed,
                                          as numpy and scipy do
    ``same``    ``n`` (shape of ``a``)    ``(ceil((m-1)/2), floor((m-1)/2))``: the
                                          extra zero of an even ``m`` at the start
                                          (numpy, scipy); ``odd_zero='end'`` puts
                                          it at the end (TF ``SAME``)
    ==========  ========================  =====================================

    Examples
    --------
    >>> correlate([1, 2, 3, 4], [1, 10]).tolist()
    [10, 21, 32, 43, 4]
    >>> correlate([1, 2, 3, 4], [1, 10], 'same').tolist()
    [10, 21, 32, 43]
    >>> correlate([1, 2, 3, 4], [1, 10], 'same', odd_zero='end').tolist()
    [21, 32, 43, 4]
    """
    return _signal(a, v, mode, odd_zero, False, "correlate")


def convolve(a: Any, v: Any, mode: str = "full", *, odd_zero: str = "start") -> np.ndarray:
    """Signal-style N-D convolution ``z[p] = sum_k a[p - k + (m-1) - lo] * v[k]``: correlation with ``v`` flipped.

    Modes and lengths as in :func:`correlate`; full convolution commutes, and
    ``valid`` swaps the inputs when ``v`` is the larger one, as numpy and scipy
    do.  ``same`` returns the shape of ``a`` (scipy); numpy's ``same`` returns
    ``max(n, m)`` samples instead, which differs when ``v`` is longer.

    Examples
    --------
    >>> convolve([1, 2, 3, 4], [5, 6, 7]).tolist()
    [5, 16, 34, 52, 45, 28]
    >>> convolve([1, 2, 3, 4], [5, 6, 7], 'valid').tolist()
    [34, 52]
    >>> convolve([1, 2, 3, 4], [5, 6, 7], 'same').tolist()
    [16, 34, 52, 45]
    """
    return _signal(a, v, mode, odd_zero, True, "convolve")


# --------------------------------------------------------------------------- matrix form


def conv_matrix(
    w: Any,
    input_shape: Sequence[int],
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
) -> np.ndarray:
    """The dense matrix ``M`` with ``vec(y) = M @ vec(x)`` for one sample (no bias).

    ``input_shape`` is ``(C_in, *S)``; rows index ``(o, *p)`` and columns
    ``(c, *i)`` in C order.  Row ``(o, p)`` holds ``w[o, c, k']`` at column
    ``(g(o)*Cg + c, p*s + k*d - lo)`` when that lies inside the input, zero
    elsewhere: a fully connected layer with tied and zero weights.  ``M.T``
    is the input gradient.

    Examples
    --------
    >>> conv_matrix(np.array([[[5, 6, 7]]]), (1, 4), padding=2, flip=True)   # the seed's x * w
    array([[5, 0, 0, 0],
           [6, 5, 0, 0],
           [7, 6, 5, 0],
           [0, 7, 6, 5],
           [0, 0, 7, 6],
           [0, 0, 0, 7]])
    """
    wa = _asarray("w", w)
    shp = tuple(input_shape)
    p = conv_params((1, *shp), wa.shape, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    # the dense matrix, and one index write per (tap, output channel, input channel, output position)
    _check_work("conv_matrix", _prod(wa.shape) * _prod(p.output_spatial), _prod(p.output_shape) * _prod(shp),
                _prod(wa.shape), "index writes")
    cin, sp = shp[0], shp[1:]
    cout, cg = wa.shape[:2]
    og = cout // p.groups
    out = p.output_spatial
    n_in = int(np.prod(sp, dtype=np.int64))
    n_out = int(np.prod(out, dtype=np.int64))
    m = np.zeros((cout * n_out, cin * n_in), dtype=wa.dtype)
    pos = np.indices(out).reshape(len(out), -1)  # every output position p, one column each
    for k, kw in _taps(wa.shape[2:], p.flip):
        src = np.stack([pi * s + ki * d - lo for pi, s, ki, d, (lo, _) in zip(pos, p.stride, k, p.dilation, p.padding)])
        inside = np.all((src >= 0) & (src < np.array(sp)[:, None]), axis=0)
        rows_p = np.flatnonzero(inside)
        cols_i = np.ravel_multi_index(tuple(src[:, inside]), sp) if len(sp) else np.zeros(0, int)
        for o in range(cout):
            g = o // og
            for c in range(cg):
                m[o * n_out + rows_p, (g * cg + c) * n_in + cols_i] = wa[(o, c) + kw]
    return m


# --------------------------------------------------------------------------- pooling (refconv.pooling)

# the pooling operations live in refconv.pooling, which uses the operands and windows above; they are
# attributes of this module too, resolved on first use (an import here would be circular)
_POOLING = frozenset(
    ("_divisors", "adaptive_avg_pool", "adaptive_max_pool", "avg_pool", "avg_pool_grad", "global_avg_pool",
     "global_max_pool", "lp_pool", "max_pool", "max_pool_grad", "max_unpool", "fractional_max_pool")
)


def __getattr__(name: str) -> Any:
    if name in _POOLING:
        from . import pooling

        return getattr(pooling, name)
    if name in ("conv_integer", "qlinear_conv"):  # integer convolution: refconv.quantized
        from . import quantized

        return getattr(quantized, name)
    if name == "deform_conv":
        from . import deform

        return deform.deform_conv
    raise AttributeError(f"module 'refconv.oracle' has no attribute {name!r}")
