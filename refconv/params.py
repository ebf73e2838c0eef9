"""Validated, normalized parameters: the only place user arguments are checked.

Every public operation of :mod:`refconv.oracle` and :mod:`refconv.fast` builds
one of the frozen descriptions below at its boundary, from the arguments in
every accepted form, and computes only from that description afterwards.

Accepted forms of a per-axis integer parameter (``stride``, ``dilation``,
``output_padding``, ``kernel_size``): one ``int`` for every axis, or one ``int``
per spatial axis.  Accepted forms of ``padding``: one ``int`` (both sides of
every axis), one ``int`` per axis (both sides), one ``(lo, hi)`` pair per axis,
or a string:

==============  ============================================================
``'valid'``     ``(0, 0)`` on every axis
``'full'``      ``(d*(K-1), d*(K-1))``: every partial overlap
``'same'``      output length ``ceil(n / s)``; an odd total padding puts the
                extra zero at the end (TF/Keras ``SAME``, PyTorch
                ``padding='same'``, ONNX ``SAME_UPPER``)
``'same_lower'`` as ``'same'`` with the extra zero at the start (ONNX
                ``SAME_LOWER``)
==============  ============================================================

Every integer (a parameter, a side of the padding, a dimension of a given
shape, ``groups``) is at most :data:`MAX_INDEX` ``= 2**63 - 1`` in magnitude,
the longest axis numpy can index; a larger one is refused here, for both
engines.  Sizes within that range may still be too large to compute: the fast
engine refuses them against its memory cap
(:class:`refconv.fast.MemoryCapError`), the oracle against its work limit
(:class:`OracleSizeError`).

Examples
--------
>>> p = conv_params((1, 3, 32, 32), (2, 3, 5, 5))
>>> p.padding, p.output_spatial
(((0, 0), (0, 0)), (28, 28))
>>> conv_params((1, 1, 4), (1, 1, 2), padding='same').padding
((0, 1),)
>>> conv_params((1, 1, 4), (1, 1, 2), padding='same_lower').padding
((1, 0),)
>>> conv_params((1, 1, 5), (1, 1, 3), stride=0)
Traceback (most recent call last):
    ...
refconv.params.ConvParamError: stride=0: every stride must be an integer >= 1
>>> conv_params((1, 1, 5), (1, 1, 3), padding=2**63)
Traceback (most recent call last):
    ...
refconv.params.ConvParamError: padding=9223372036854775808: larger than any array axis can be (max 2**63-1)
"""

from __future__ import annotations

import functools
import numbers
from fractions import Fraction
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence, SupportsIndex, TypeGuard, Union

from . import shapes

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ConvParamError",
    "ConvParams",
    "ConvTransposeParams",
    "PoolParams",
    "conv_params",
    "conv_transpose_params",
    "pool_params",
    "normalize_padding",
    "general_crop",
    "check_params_match",
    "check_gradient_shape",
    "PADDING_STRINGS",
    "PADDING_MODES",
    "SIGNAL_MODES",
    "MAX_INDEX",
    "AdaptivePoolParams",
    "UnpoolParams",
    "adaptive_pool_params",
    "unpool_params",
    "lp_norm",
    "padding_mode",
    "signal_mode",
    "check_divisor_override",
    "padding_form",
    "PADDING_FORM_RULE",
    "OracleSizeError",
    "spatial_rank",
    "unbatched",
    "accepts_unbatched",
    "weight_rank",
    "per_axis_rank",
    "FractionalPoolParams",
    "fractional_pool_params",
    "DeformParams",
    "deform_params",
    "ShapeLike",
    "IntOrInts",
    "PaddingLike",
]

PADDING_STRINGS = ("valid", "same", "same_lower", "full")

#: how a convolution fills its padding (PyTorch's ``padding_mode``; ONNX ``Pad`` modes constant/reflect/edge/wrap)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

#: modes of the signal-style ``convolve`` and ``correlate``
SIGNAL_MODES = ("full", "valid", "same")

Padding = tuple[tuple[int, int], ...]

#: a shape as given: a sequence of integers (Python or numpy integers; ``x.shape``, a list, a ``torch.Size``)
ShapeLike = Sequence[SupportsIndex]
#: a per-axis integer parameter as given: one integer for every spatial axis, or one per spatial axis
IntOrInts = Union[SupportsIndex, Sequence[SupportsIndex]]
#: ``padding`` as given: a padding string, one integer, or per spatial axis an integer or a ``(lo, hi)`` pair
PaddingLike = Union[str, SupportsIndex, Sequence[Union[SupportsIndex, Sequence[SupportsIndex]]]]


#: the largest length or offset numpy can index (``2**63 - 1``): no integer parameter or dimension may exceed it
MAX_INDEX = 2**63 - 1


class ConvParamError(ValueError):
    """An invalid argument: the message names the argument, its value and the rule."""


class OracleSizeError(ConvParamError):
    """A call of :mod:`refconv.oracle` whose work exceeds its limit (:func:`refconv.oracle.work_limit`)."""


def _is_int(v: object) -> TypeGuard[numbers.Integral]:
    # bool is an int subclass but never a valid size, stride or padding
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _fmt(name: str, value: Any) -> str:
    return f"{name}={value!r}"


def _bounded(name: str, value: Any, vals: Sequence[int]) -> None:
    """Every integer of ``vals`` (the normalized ``value``) is at most :data:`MAX_INDEX` in magnitude.

    >>> _bounded('stride', 10**30, (10**30,))
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: stride=1000000000000000000000000000000: larger than any array axis can be (max 2**63-1)
    """
    if any(abs(v) > MAX_INDEX for v in vals):
        raise ConvParamError(f"{_fmt(name, value)}: larger than any array axis can be (max 2**63-1)")


def per_axis(name: str, value: Any, ndim: int, *, minimum: int) -> tuple[int, ...]:
    """Normalize an int or a sequence of ``ndim`` ints, each ``>= minimum``.

    >>> per_axis('stride', 2, 3, minimum=1)
    (2, 2, 2)
    >>> per_axis('stride', (1, 2), 2, minimum=1)
    (1, 2)
    >>> per_axis('dilation', (1, 2), 3, minimum=1)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: dilation=(1, 2): expected one int or 3 ints (one per spatial axis), got 2
    """
    rule = f"every {name} must be an integer >= {minimum}"
    if _is_int(value):
        vals = (operator.index(value),) * ndim
    elif isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ConvParamError(
                f"{_fmt(name, value)}: expected one int or {ndim} ints "
                f"(one per spatial axis), got {len(value)}"
            )
        if not all(_is_int(v) for v in value):
            raise ConvParamError(f"{_fmt(name, value)}: {rule} (bool and non-integers are rejected)")
        vals = tuple(operator.index(v) for v in value)
    else:
        if hasattr(value, "shape") and getattr(value, "ndim", None) == 0 and _is_int(value.item()) and not isinstance(value.item(), bool):
            return per_axis(name, value.item(), ndim, minimum=minimum)
        raise ConvParamError(f"{_fmt(name, value)}: {rule} (bool and non-integers are rejected)")
    if any(v < minimum for v in vals):
        raise ConvParamError(f"{_fmt(name, value)}: {rule}")
    _bounded(name, value, vals)
    return vals


def normalize_padding(
    padding: PaddingLike,
    input_spatial: Sequence[int],
    kernel_spatial: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> Padding:
    """Turn any accepted ``padding`` form into one ``(lo, hi)`` pair per axis.

    Strings depend on the sizes: ``'same'`` and ``'same_lower'`` use
    :func:`refconv.shapes.same_padding`, ``'full'`` is ``d*(K-1)`` on both sides.

    >>> normalize_padding(1, (5, 5), (3, 3), (1, 1), (1, 1))
    ((1, 1), (1, 1))
    >>> normalize_padding([(0, 2), 1], (5, 5), (3, 3), (1, 1), (1, 1))
    ((0, 2), (1, 1))
    >>> normalize_padding('full', (5,), (3,), (1,), (2,))
    ((4, 4),)
    >>> normalize_padding('same', (7,), (4,), (2,), (1,))
    ((1, 2),)
    >>> normalize_padding('SAME', (7,), (4,), (1,), (1,))
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: padding='SAME': padding strings are 'valid', 'same', 'same_lower', 'full'
    """
    ndim = len(kernel_spatial)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * ndim
        if padding == "full":
            return tuple((d * (k - 1), d * (k - 1)) for k, d in zip(kernel_spatial, dilation))
        if padding in ("same", "same_lower"):
            return tuple(
                shapes.same_padding(n, k, s, d, lower=(padding == "same_lower"))
                for n, k, s, d in zip(input_spatial, kernel_spatial, stride, dilation)
            )
        raise ConvParamError(
            f"{_fmt('padding', padding)}: padding strings are "
            + ", ".join(repr(s) for s in PADDING_STRINGS)
        )
    rule = "padding must be an int, one int per axis, or one (lo, hi) pair of ints >= 0 per axis"
    if _is_int(padding):
        if padding < 0:
            raise ConvParamError(f"{_fmt('padding', padding)}: {rule}")
        _bounded("padding", padding, (int(padding),))
        return ((int(padding), int(padding)),) * ndim
    if not isinstance(padding, (tuple, list)):
        raise ConvParamError(f"{_fmt('padding', padding)}: {rule}")
    if len(padding) != ndim:
        raise ConvParamError(
            f"{_fmt('padding', padding)}: expected one entry per spatial axis ({ndim}), got {len(padding)}"
        )
    out = []
    for p in padding:
        if _is_int(p):
            pair = (int(p), int(p))
        elif isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(v) for v in p):
            pair = (int(p[0]), int(p[1]))
        else:
            raise ConvParamError(f"{_fmt('padding', padding)}: {rule}")
        if min(pair) < 0:
            raise ConvParamError(f"{_fmt('padding', padding)}: {rule}")
        _bounded("padding", padding, pair)
        out.append(pair)
    return tuple(out)


#: the accepted forms of ``padding`` before the sizes are known
PADDING_FORM_RULE = (
    "must be an int >= 0, one of " + ", ".join(map(repr, PADDING_STRINGS))
    + ", or per spatial axis an int or a (lo, hi) pair of ints >= 0"
)


def padding_form(padding: Any) -> int | str | tuple[int | tuple[int, int], ...]:
    """Check the form of ``padding`` where the sizes are not known yet; lists become tuples.

    :func:`normalize_padding` turns the result into pairs once the sizes are known.

    >>> padding_form([1, [0, 2]])
    (1, (0, 2))
    >>> padding_form(-1)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: padding=-1: must be an int >= 0, one of 'valid', 'same', 'same_lower', 'full', or per spatial axis an int or a (lo, hi) pair of ints >= 0
    """
    bad = ConvParamError(f"{_fmt('padding', padding)}: {PADDING_FORM_RULE}")
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise bad
        return padding
    if _is_int(padding):
        if padding < 0:
            raise bad
        _bounded("padding", padding, (int(padding),))
        return int(padding)
    if not isinstance(padding, (tuple, list)) or not padding:
        raise bad
    out: list[int | tuple[int, int]] = []
    for p in padding:
        if isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(v) and operator.index(v) >= 0 for v in p):
            out.append((int(p[0]), int(p[1])))
        elif _is_int(p) and operator.index(p) >= 0:
            out.append(int(p))
        else:
            raise bad
    _bounded("padding", padding, [v for q in out for v in (q if isinstance(q, tuple) else (q,))])
    return tuple(out)


def _check_shape(name: str, shape: Any) -> tuple[int, ...]:
    try:
        shp = tuple(shape)
    except TypeError:
        raise ConvParamError(f"{_fmt(name, shape)}: expected a shape (a sequence of ints)") from None
    if not all(_is_int(v) and operator.index(v) >= 0 for v in shp):
        raise ConvParamError(f"{_fmt(name, shape)}: every dimension must be an integer >= 0")
    _bounded(name, shape, shp)
    return tuple(int(v) for v in shp)


def _operands(input_shape: Any, weight_shape: Any, groups: Any, weight_doc: str) -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    """Checked shapes of ``x`` and ``w`` (same rank, at least one spatial axis), spatial rank, and groups."""
    xs = _check_shape("x.shape", input_shape)
    ws = _check_shape("w.shape", weight_shape)
    if len(xs) < 3:
        raise ConvParamError(f"x.ndim={len(xs)}: x must have shape (N, C_in, *spatial) with at least one spatial axis")
    if len(ws) != len(xs):
        raise ConvParamError(f"w.ndim={len(ws)}: {weight_doc} must have the rank of x ({len(xs)})")
    if not _is_int(groups) or groups < 1:
        raise ConvParamError(f"{_fmt('groups', groups)}: groups must be an integer >= 1")
    _bounded("groups", groups, (int(groups),))
    return xs, ws, len(xs) - 2, int(groups)


@dataclass(frozen=True)
class ConvParams:
    """The general operation of ``specs/convolution.md`` on an input of ``input_shape``.

    ``y[n, o, p] = b[o] + sum_{c, k} xp[n, g(o)*Cg + c, p*s + k*d] * w[o, c, k']``
    where ``xp`` is the input with ``input_dilation - 1`` zeros between samples
    and ``padding`` zeros around it, ``k' = k`` (cross-correlation) or
    ``k' = K - 1 - k`` (``flip=True``, convolution).
    """

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    dilation: tuple[int, ...]
    input_dilation: tuple[int, ...]
    groups: int
    flip: bool
    has_bias: bool = False

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.stride)

    @property
    def kernel_spatial(self) -> tuple[int, ...]:
        return self.weight_shape[2:]

    @property
    def input_spatial(self) -> tuple[int, ...]:
        return self.input_shape[2:]

    @property
    def dilated_input_spatial(self) -> tuple[int, ...]:
        """Length of each axis after input dilation: ``a*(n-1) + 1`` (0 stays 0)."""
        return tuple(a * (n - 1) + 1 if n > 0 else 0 for n, a in zip(self.input_spatial, self.input_dilation))

    @functools.cached_property  # a frozen record: computed once
    def padded_spatial(self) -> tuple[int, ...]:
        """Length of each axis of ``xp``: dilated input plus ``lo + hi``."""
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.dilated_input_spatial, self.padding))

    @functools.cached_property  # a frozen record: computed once
    def output_spatial(self) -> tuple[int, ...]:
        return tuple(
            shapes.conv_output_size(n, k, s, 0, d)
            for n, k, s, d in zip(self.padded_spatial, self.kernel_spatial, self.stride, self.dilation)
        )

    @functools.cached_property  # a frozen record: computed once
    def output_shape(self) -> tuple[int, ...]:
        return (self.input_shape[0], self.weight_shape[0], *self.output_spatial)

    @property
    def unread(self) -> tuple[int, ...]:
        """Trailing rows of ``xp`` that no output reads, per axis (``r`` in the gradient formulas)."""
        return tuple(
            P - ((o - 1) * s + d * (k - 1) + 1)
            for P, o, k, s, d in zip(self.padded_spatial, self.output_spatial, self.kernel_spatial, self.stride, self.dilation)
        )


def conv_params(
    input_shape: ShapeLike,
    weight_shape: ShapeLike,
    bias_shape: ShapeLike | None = None,
    *,
    stride: IntOrInts = 1,
    padding: PaddingLike = 0,
    dilation: IntOrInts = 1,
    groups: SupportsIndex = 1,
    flip: bool | np.bool_ = False,
    input_dilation: IntOrInts = 1,
) -> ConvParams:
    """Validate convolution arguments and return the normalized :class:`ConvParams`.

    ``input_shape`` is ``(N, C_in, *S)`` and ``weight_shape`` is
    ``(C_out, C_in // groups, *K)``; ``bias_shape`` is ``None`` or ``(C_out,)``.

    >>> conv_params((1, 4, 8), (6, 2, 3), groups=2).output_shape
    (1, 6, 6)
    >>> conv_params((1, 4, 8), (6, 4, 3), groups=2)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: w.shape[1]=4: must equal C_in / groups = 4 / 2 = 2
    >>> conv_params((1, 1, 3), (1, 1, 3), dilation=2)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: w.shape=(1, 1, 3) with dilation=(2,): the dilated kernel spans 5 on axis 0, larger than the padded input 3 (input 3, padding (0, 0))
    """
    xs, ws, ndim, groups = _operands(input_shape, weight_shape, groups, "the weight (C_out, C_in/groups, *K)")
    if not isinstance(flip, (bool,)) and not (hasattr(flip, "dtype") and flip.dtype == bool):
        raise ConvParamError(f"{_fmt('flip', flip)}: flip must be True or False")
    cin, cout = xs[1], ws[0]
    if cin % groups:
        raise ConvParamError(f"{_fmt('groups', groups)}: groups must divide C_in={cin}")
    if cout % groups:
        raise ConvParamError(f"{_fmt('groups', groups)}: groups must divide C_out={cout}")
    if ws[1] != cin // groups:
        raise ConvParamError(f"w.shape[1]={ws[1]}: must equal C_in / groups = {cin} / {groups} = {cin // groups}")
    if any(k < 1 for k in ws[2:]):
        raise ConvParamError(f"w.shape={ws}: every kernel size must be >= 1")
    if bias_shape is not None:
        bs = _check_shape("b.shape", bias_shape)
        if bs != (cout,):
            raise ConvParamError(f"b.shape={bs}: the bias must have shape (C_out,) = ({cout},)")
    s = per_axis("stride", stride, ndim, minimum=1)
    d = per_axis("dilation", dilation, ndim, minimum=1)
    a = per_axis("input_dilation", input_dilation, ndim, minimum=1)
    dil_in = tuple(ai * (n - 1) + 1 if n > 0 else 0 for n, ai in zip(xs[2:], a))
    pad = normalize_padding(padding, dil_in, ws[2:], s, d)
    for i, (n, k, di, (lo, hi)) in enumerate(zip(dil_in, ws[2:], d, pad)):
        span = di * (k - 1) + 1
        if span > n + lo + hi:
            raise ConvParamError(
                f"w.shape={ws} with dilation={d}: the dilated kernel spans {span} on axis {i}, "
                f"larger than the padded input {n + lo + hi} (input {n}, padding {(lo, hi)})"
            )
    return ConvParams(xs, ws, s, pad, d, a, groups, bool(flip), bias_shape is not None)


def general_crop(padding: PaddingLike, input_dilation: IntOrInts, ndim: int) -> tuple[Padding, tuple[int, ...]] | None:
    """For the general operation: ``(pairs, input_dilation)`` when ``padding`` has a negative side, else ``None``.

    Negative ``(lo, hi)`` sides crop (as in ``lax.conv_general_dilated``).  The
    caller then materializes ``xp`` itself (dilate, pad, crop) and runs with no
    padding and no input dilation; every other padding form goes to
    :func:`conv_params` unchanged.

    >>> general_crop(((2, -1),), 2, 1)
    (((2, -1),), (2,))
    >>> general_crop(1, 1, 2) is None, general_crop('same', 1, 1) is None
    (True, True)
    """
    if ndim < 1:
        raise ConvParamError(f"x.ndim={ndim + 2}: x must have shape (N, C_in, *spatial)")
    if not isinstance(padding, (tuple, list)) or len(padding) != ndim:
        return None
    if not all(isinstance(q, (tuple, list)) and len(q) == 2 and all(_is_int(v) for v in q) for q in padding):
        return None
    pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    if all(lo >= 0 and hi >= 0 for lo, hi in pairs):
        return None
    _bounded("padding", padding, [v for q in pairs for v in q])
    return pairs, per_axis("input_dilation", input_dilation, ndim, minimum=1)


def check_gradient_shape(dy_shape: ShapeLike, expected: tuple[int, ...], of: str = "forward") -> None:
    """A gradient ``dy`` must have the shape of the output it is the gradient of.

    >>> check_gradient_shape((1, 1, 2), (1, 1, 3), "pooling")
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: dy.shape=(1, 1, 2): must be the pooling output shape (1, 1, 3)
    """
    if tuple(dy_shape) != tuple(expected):
        raise ConvParamError(f"dy.shape={tuple(dy_shape)}: must be the {of} output shape {tuple(expected)}")


def check_params_match(params: ConvParams, input_shape: ShapeLike, weight_shape: ShapeLike) -> None:
    """``params`` passed explicitly must describe these operands.

    >>> check_params_match(conv_params((1, 1, 5), (1, 1, 3)), (1, 1, 4), (1, 1, 3))
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: params: built for x.shape=(1, 1, 5), w.shape=(1, 1, 3); got (1, 1, 4), (1, 1, 3)
    """
    if tuple(input_shape) != params.input_shape or tuple(weight_shape) != params.weight_shape:
        raise ConvParamError(
            f"params: built for x.shape={params.input_shape}, w.shape={params.weight_shape}; "
            f"got {tuple(input_shape)}, {tuple(weight_shape)}"
        )


@dataclass(frozen=True)
class ConvTransposeParams:
    """Transposed convolution: the adjoint (input gradient) of a forward convolution.

    Weight layout ``(C_in, C_out // groups, *K)`` as in PyTorch.  Output length
    per axis: ``(n - 1)*s - lo - hi + d*(K - 1) + output_padding + 1``.
    """

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    has_bias: bool = False

    @property
    def ndim(self) -> int:
        return len(self.stride)

    @property
    def kernel_spatial(self) -> tuple[int, ...]:
        return self.weight_shape[2:]

    @property
    def output_spatial(self) -> tuple[int, ...]:
        return tuple(
            shapes.conv_transpose_output_size(n, k, s, p, op, d)
            for n, k, s, p, op, d in zip(
                self.input_shape[2:], self.kernel_spatial, self.stride, self.padding, self.output_padding, self.dilation
            )
        )

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.input_shape[0], self.weight_shape[1] * self.groups, *self.output_spatial)

    def forward(self) -> ConvParams:
        """The forward convolution whose input gradient this transposed convolution is.

        When ``output_padding >= stride`` (allowed if ``dilation`` is larger)
        that forward convolution has more outputs than this input has samples;
        the transposed convolution is the adjoint of its first ``n`` outputs.

        >>> ct = conv_transpose_params((1, 2, 3), (2, 5, 3), stride=2, padding=1, output_padding=1)
        >>> ct.output_shape
        (1, 5, 6)
        >>> f = ct.forward()
        >>> f.input_shape, f.weight_shape, f.output_shape
        ((1, 5, 6), (2, 5, 3), (1, 2, 3))
        """
        out = self.output_shape
        # forward weight (C_out_fwd = C_in_t, C_in_fwd/groups = C_out_t/groups, *K): the same array
        return conv_params(
            out, self.weight_shape, stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups
        )


def conv_transpose_params(
    input_shape: ShapeLike,
    weight_shape: ShapeLike,
    bias_shape: ShapeLike | None = None,
    *,
    stride: IntOrInts = 1,
    padding: PaddingLike = 0,
    output_padding: IntOrInts | None = 0,
    dilation: IntOrInts = 1,
    groups: SupportsIndex = 1,
    output_size: IntOrInts | None = None,
) -> ConvTransposeParams:
    """Validate transposed-convolution arguments.

    ``padding`` crops the full output: ints, per-axis ints, ``(lo, hi)`` pairs
    and ``'valid'`` are accepted; ``'same'`` / ``'same_lower'`` choose the
    padding and ``output_padding`` that make the output ``n * s`` long (the
    adjoint of a ``same`` forward convolution of that length).

    >>> conv_transpose_params((1, 1, 4), (1, 1, 3), stride=2, padding='same').output_spatial
    (8,)
    >>> conv_transpose_params((1, 1, 4), (1, 1, 3), stride=2, output_padding=2)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: output_padding=(2,): each output_padding must be smaller than its stride (2,) or its dilation (1,)
    """
    xs, ws, ndim, groups = _operands(
        input_shape, weight_shape, groups, "the transposed-convolution weight (C_in, C_out/groups, *K)"
    )
    if xs[1] % groups:
        raise ConvParamError(f"{_fmt('groups', groups)}: groups must divide C_in={xs[1]}")
    if ws[0] != xs[1]:
        raise ConvParamError(
            f"w.shape[0]={ws[0]}: the transposed-convolution weight (C_in, C_out/groups, *K) must have C_in={xs[1]} rows"
        )
    if any(k < 1 for k in ws[2:]):
        raise ConvParamError(f"w.shape={ws}: every kernel size must be >= 1")
    if bias_shape is not None:
        bs = _check_shape("b.shape", bias_shape)
        if bs != (ws[1] * groups,):
            raise ConvParamError(f"b.shape={bs}: the bias must have shape (C_out,) = ({ws[1] * groups},)")
    s = per_axis("stride", stride, ndim, minimum=1)
    d = per_axis("dilation", dilation, ndim, minimum=1)
    if output_size is not None:
        want = _transpose_output_size(output_size, ndim)
        if isinstance(padding, str) and padding in ("same", "same_lower"):
            # ONNX ConvTranspose output_shape with auto_pad: total padding = full length - wanted, split by the preset
            op = per_axis("output_padding", output_padding, ndim, minimum=0)
            pads = []
            for i, (n, k, si, di, o, w) in enumerate(zip(xs[2:], ws[2:], s, d, op, want)):
                total = (n - 1) * si + di * (k - 1) + 1 + o - w
                if total < 0:
                    raise ConvParamError(
                        f"{_fmt('output_size', output_size)}: longer than the full transposed output "
                        f"{(n - 1) * si + di * (k - 1) + 1 + o} on axis {i}"
                    )
                small, big = total // 2, total - total // 2
                pads.append((small, big) if padding == "same" else (big, small))
            return conv_transpose_params(xs, ws, bias_shape, stride=s, padding=tuple(pads), output_padding=op,
                                         dilation=d, groups=groups)
        if output_padding not in (0, None):
            raise ConvParamError(f"{_fmt('output_padding', output_padding)}: output_size chooses the output_padding")
        # PyTorch: output_padding = wanted - the length without it, within [0, max(stride, dilation))
        pad = normalize_padding(padding, xs[2:], ws[2:], s, d)
        try:
            op = tuple(shapes.output_padding_for(n, w, k, si, p, di) for n, w, k, si, p, di in zip(xs[2:], want, ws[2:], s, pad, d))
        except ConvParamError as exc:
            raise ConvParamError(f"{_fmt('output_size', output_size)}: {exc}") from None
        return conv_transpose_params(xs, ws, bias_shape, stride=s, padding=pad, output_padding=op, dilation=d, groups=groups)
    if isinstance(padding, str) and padding in ("same", "same_lower"):
        if output_padding not in (0, None):
            raise ConvParamError(
                f"{_fmt('output_padding', output_padding)}: with padding={padding!r} the output_padding is chosen to give n * stride"
            )
        pads, ops = [], []
        for n, k, si, di in zip(xs[2:], ws[2:], s, d):
            lo, hi = shapes.same_padding(n * si, k, si, di, lower=(padding == "same_lower"))
            pads.append((lo, hi))
            ops.append(n * si - shapes.conv_transpose_output_size(n, k, si, (lo, hi), 0, di))
        pad, op = tuple(pads), tuple(ops)
    else:
        pad = normalize_padding("valid" if padding == "valid" else padding, xs[2:], ws[2:], s, d)
        op = per_axis("output_padding", output_padding, ndim, minimum=0)
    if any(o >= si and o >= di for o, si, di in zip(op, s, d)):
        raise ConvParamError(
            f"output_padding={op}: each output_padding must be smaller than its stride {s} or its dilation {d}"
        )
    params = ConvTransposeParams(xs, ws, s, pad, op, d, groups, bias_shape is not None)
    for i, o in enumerate(params.output_spatial):
        if o < 1:
            raise ConvParamError(
                f"padding={pad}: crops the whole output on axis {i} (full length "
                f"{(xs[2 + i] - 1) * s[i] + d[i] * (ws[2 + i] - 1) + 1}, output {o})"
            )
    return params


def _transpose_output_size(output_size: Any, ndim: int) -> tuple[int, ...]:
    """``output_size`` of a transposed convolution: spatial sizes, or a whole shape (PyTorch accepts both)."""
    osz = list(output_size) if isinstance(output_size, (tuple, list)) else output_size
    if isinstance(osz, list) and len(osz) == ndim + 2:
        osz = osz[2:]
    return per_axis("output_size", osz, ndim, minimum=1)


@dataclass(frozen=True)
class PoolParams:
    """Pooling windows: the convolution windows with max or mean instead of the weighted sum.

    ``O = floor((n + lo + hi - d*(k-1) - 1) / s) + 1``, or with ``ceil_mode``
    the ceiling, minus one when the last window would start in the right padding.
    """

    input_shape: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    dilation: tuple[int, ...]
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None = None

    @property
    def ndim(self) -> int:
        return len(self.stride)

    @property
    def output_spatial(self) -> tuple[int, ...]:
        return tuple(
            shapes.pool_output_size(n, k, s, p, d, self.ceil_mode)
            for n, k, s, p, d in zip(self.input_shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)
        )

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (*self.input_shape[:2], *self.output_spatial)


def check_divisor_override(value: Any) -> int | None:
    """``None``, or the non-zero integer every window sum of average pooling is divided by (PyTorch's rule).

    >>> check_divisor_override(0)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: divisor_override=0: must be None or a non-zero integer
    """
    if value is None:
        return None
    if not _is_int(value) or value == 0:
        raise ConvParamError(f"{_fmt('divisor_override', value)}: must be None or a non-zero integer")
    _bounded("divisor_override", value, (int(value),))
    return int(value)


def _pool_input(input_shape: Any) -> tuple[int, ...]:
    xs = _check_shape("x.shape", input_shape)
    if len(xs) < 3:
        raise ConvParamError(f"x.ndim={len(xs)}: x must have shape (N, C, *spatial) with at least one spatial axis")
    return xs


def pool_params(
    input_shape: ShapeLike,
    kernel_size: IntOrInts,
    *,
    stride: IntOrInts | None = None,
    padding: PaddingLike = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: SupportsIndex | None = None,
) -> PoolParams:
    """Validate pooling arguments (``stride=None`` means ``stride = kernel_size``).

    Any padding is defined, also wider than half the window: a window of
    padding only has maximum ``-inf`` and the divisor rule of average pooling
    (``specs/pooling.md``).  PyTorch refuses a padding side over half of ``k``;
    that is a limit of PyTorch, not of the definition.  The window must fit
    in the padded input (at least one output per axis).

    >>> pool_params((1, 1, 5, 5), 2, ceil_mode=True).output_spatial
    (3, 3)
    >>> pool_params((1, 1, 5, 5), 2, padding=2).output_spatial
    (4, 4)
    >>> pool_params((1, 1, 1), 3, dilation=2)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: kernel_size=3 with dilation=(2,): the window spans 5 on axis 0, larger than the padded input 1
    """
    xs = _pool_input(input_shape)
    ndim = len(xs) - 2
    k = per_axis("kernel_size", kernel_size, ndim, minimum=1)
    s = k if stride is None else per_axis("stride", stride, ndim, minimum=1)
    d = per_axis("dilation", dilation, ndim, minimum=1)
    for name, flag in (("ceil_mode", ceil_mode), ("count_include_pad", count_include_pad)):
        if not isinstance(flag, bool):
            raise ConvParamError(f"{_fmt(name, flag)}: must be True or False")
    div = check_divisor_override(divisor_override)
    pad = normalize_padding(padding, xs[2:], k, s, d)
    for i, (ki, di, (lo, hi)) in enumerate(zip(k, d, pad)):
        span = di * (ki - 1) + 1
        if shapes.pool_output_size(xs[2 + i], ki, s[i], (lo, hi), di, ceil_mode) < 1:
            raise ConvParamError(
                f"{_fmt('kernel_size', kernel_size)} with dilation={d}: the window spans {span} on axis {i}, "
                f"larger than the padded input {xs[2 + i] + lo + hi}"
            )
    return PoolParams(xs, k, s, pad, d, ceil_mode, count_include_pad, div)


@dataclass(frozen=True)
class AdaptivePoolParams:
    """Adaptive pooling: output position ``i`` of an axis of length ``n`` pools ``[floor(i*n/o), ceil((i+1)*n/o))``."""

    input_shape: tuple[int, ...]
    output_spatial: tuple[int, ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (*self.input_shape[:2], *self.output_spatial)

    @property
    def bins(self) -> tuple[list[tuple[int, int]], ...]:
        """Per axis, each output position's ``(start, end)`` (:func:`refconv.shapes.adaptive_bins`)."""
        return tuple(shapes.adaptive_bins(n, o) for n, o in zip(self.input_shape[2:], self.output_spatial))


def adaptive_pool_params(
    input_shape: ShapeLike, output_size: SupportsIndex | Sequence[SupportsIndex | None]
) -> AdaptivePoolParams:
    """Validate adaptive pooling: ``output_size`` is one int, or one int (or ``None``: keep the size) per axis.

    >>> adaptive_pool_params((1, 1, 5, 4), (3, None)).output_shape
    (1, 1, 3, 4)
    >>> adaptive_pool_params((1, 1, 0), 2)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: x.shape=(1, 1, 0): adaptive pooling needs every spatial size >= 1
    """
    xs = _pool_input(input_shape)
    if any(n < 1 for n in xs[2:]):
        raise ConvParamError(f"x.shape={xs}: adaptive pooling needs every spatial size >= 1")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != len(xs) - 2:
            raise ConvParamError(f"{_fmt('output_size', output_size)}: expected one int or {len(xs) - 2} entries")
        filled = [n if o is None else o for n, o in zip(xs[2:], output_size)]
        out = per_axis("output_size", filled, len(xs) - 2, minimum=1)
    else:
        out = per_axis("output_size", output_size, len(xs) - 2, minimum=1)
    return AdaptivePoolParams(xs, out)


@dataclass(frozen=True)
class UnpoolParams:
    """Max unpooling: ``out[n, c].flat[indices[n, c, p]] = y[n, c, p]`` on a zero array of ``output_shape``."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def unpool_params(
    input_shape: ShapeLike,
    indices_shape: ShapeLike,
    kernel_size: IntOrInts,
    *,
    stride: IntOrInts | None = None,
    padding: PaddingLike = 0,
    output_size: IntOrInts | None = None,
) -> UnpoolParams:
    """Validate max unpooling; the default output is ``(n - 1)*s - lo - hi + k`` per axis.

    ``output_size`` (spatial sizes, or the whole shape as PyTorch accepts) must
    lie within one stride of the default on every axis, as PyTorch requires.

    >>> unpool_params((1, 1, 2), (1, 1, 2), 2).output_shape
    (1, 1, 4)
    >>> unpool_params((1, 1, 2), (1, 1, 2), 2, output_size=5).output_shape
    (1, 1, 5)
    >>> unpool_params((1, 1, 2), (1, 1, 2), 2, output_size=7)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: output_size=7: must lie in [3, 5] on axis 0 (default size 4, stride 2)
    """
    ys = _pool_input(input_shape)
    ist = _check_shape("indices.shape", indices_shape)
    if ist != ys:
        raise ConvParamError(f"indices.shape={ist}: must equal y.shape={ys}")
    ndim = len(ys) - 2
    k = per_axis("kernel_size", kernel_size, ndim, minimum=1)
    s = k if stride is None else per_axis("stride", stride, ndim, minimum=1)
    pad = normalize_padding(padding, ys[2:], k, s, (1,) * ndim)
    default = tuple(shapes.max_unpool_output_size(n, ki, si, p) for n, ki, si, p in zip(ys[2:], k, s, pad))
    if output_size is None:
        out = default
    else:
        osz = list(output_size) if isinstance(output_size, (tuple, list)) else output_size
        if isinstance(osz, list) and len(osz) == ndim + 2:
            osz = osz[2:]
        out = per_axis("output_size", osz, ndim, minimum=0)
        for i, (o, dflt, si) in enumerate(zip(out, default, s)):
            if not dflt - si < o < dflt + si:
                raise ConvParamError(
                    f"{_fmt('output_size', output_size)}: must lie in [{dflt - si + 1}, {dflt + si - 1}] on axis {i} "
                    f"(default size {dflt}, stride {si})"
                )
    if any(o < 0 for o in out):
        raise ConvParamError(f"padding={pad}: crops the whole unpooled output {out}")
    return UnpoolParams(ys, (*ys[:2], *out))


def lp_norm(p: Any) -> int:
    """The exponent of L_p pooling: an integer >= 1 (a float or Fraction with an integer value is accepted).

    >>> lp_norm(2.0)
    2
    >>> lp_norm(1.5)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: p=1.5: the oracle's lp_pool is exact for integer p >= 1 only
    """
    ok = isinstance(p, numbers.Real) and not isinstance(p, bool) and p == p and abs(p) != float("inf")
    if not ok or p != int(p) or p < 1:
        raise ConvParamError(f"{_fmt('p', p)}: the oracle's lp_pool is exact for integer p >= 1 only")
    _bounded("p", p, (int(p),))
    return int(p)


def padding_mode(mode: Any) -> str:
    """One of :data:`PADDING_MODES`.

    >>> padding_mode('mirror')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: padding_mode='mirror': padding modes are 'zeros', 'reflect', 'replicate', 'circular'
    """
    if mode not in PADDING_MODES:
        raise ConvParamError(f"{_fmt('padding_mode', mode)}: padding modes are " + ", ".join(repr(m) for m in PADDING_MODES))
    return str(mode)


def signal_mode(mode: Any, odd_zero: Any, name: str) -> tuple[str, str]:
    """The checked ``mode`` and ``odd_zero`` of the signal-style ``convolve``/``correlate`` called ``name``.

    >>> signal_mode('same', 'end', 'convolve')
    ('same', 'end')
    >>> signal_mode('circular', 'start', 'correlate')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: mode='circular': correlate modes are 'full', 'valid', 'same'
    """
    if mode not in SIGNAL_MODES:
        raise ConvParamError(f"mode={mode!r}: {name} modes are 'full', 'valid', 'same'")
    if odd_zero not in ("start", "end"):
        raise ConvParamError(f"odd_zero={odd_zero!r}: must be 'start' (numpy/scipy) or 'end' (TF SAME)")
    return str(mode), str(odd_zero)


def spatial_rank(*per_axis_values: Any) -> int | None:
    """The number of spatial axes named by per-axis arguments: the length of the first tuple or list, else ``None``.

    >>> spatial_rank(2, (3, 3), 1), spatial_rank(2, None)
    (2, None)
    """
    for v in per_axis_values:
        if isinstance(v, (tuple, list)):
            return len(v)
    return None


def unbatched(name: str, shape: ShapeLike, spatial: int | None) -> bool:
    """Whether the input ``name`` of ``shape`` lacks the batch axis: ``(C, *spatial)`` instead of ``(N, C, *spatial)``.

    PyTorch accepts such unbatched inputs for convolution and pooling; the
    oracle adds ``N = 1`` and drops it from the result.  ``spatial`` is the
    number of spatial axes (from the weight's rank, or a per-axis tuple
    argument: :func:`spatial_rank`); ``None`` (only ints given) means batched.

    >>> unbatched('x', (3, 8, 8), 2), unbatched('x', (1, 3, 8, 8), 2), unbatched('x', (3, 8), None)
    (True, False, False)
    >>> unbatched('x', (8,), 2)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: x.ndim=1: expected 4 axes (N, C, *spatial) or 3 (C, *spatial) for 2 spatial axes (x.shape=(8,))
    """
    shp = _check_shape(f"{name}.shape", shape)
    if spatial is None or len(shp) == spatial + 2:
        return False
    if len(shp) == spatial + 1 and spatial >= 1:
        return True
    raise ConvParamError(
        f"{name}.ndim={len(shp)}: expected {spatial + 2} axes (N, C, *spatial) or {spatial + 1} (C, *spatial) "
        f"for {spatial} spatial axes ({name}.shape={shp})"
    )


def weight_rank(name: str = "w") -> Any:
    """The spatial rank of a call read from its weight argument ``name``: the weight's rank minus two."""

    def rank(arguments: dict[str, Any]) -> int | None:
        w = arguments.get(name)
        return None if w is None else max(len(getattr(w, "shape", None) or _np().shape(w)) - 2, 0)

    return rank


def per_axis_rank(*names: str) -> Any:
    """The spatial rank of a call named by the first tuple among its per-axis arguments ``names`` (:func:`spatial_rank`)."""
    return lambda arguments: spatial_rank(*(arguments.get(n) for n in names))


def accepts_unbatched(arrays: Sequence[str], spatial: Any) -> Any:
    """Decorate an operation so that it also takes PyTorch's unbatched inputs ``(C, *spatial)``.

    ``spatial(arguments)`` gives the number of spatial axes from the bound
    arguments (:func:`weight_rank`, :func:`per_axis_rank`); when the first of
    ``arrays`` is unbatched (:func:`unbatched`), every array in ``arrays``
    gains ``N = 1`` and the result (each result of a tuple) loses it.  The
    one validation of unbatched inputs for :mod:`refconv.fast`.

    >>> @accepts_unbatched(("x",), per_axis_rank("k"))
    ... def shape_of(x, k):
    ...     return _np().asarray(x)
    >>> shape_of(_np().zeros((3, 5)), (2,)).shape, shape_of(_np().zeros((1, 3, 5)), (2,)).shape
    ((3, 5), (1, 3, 5))
    """
    import functools
    import inspect

    def deco(f: Any) -> Any:
        sig = inspect.signature(f)
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        positional = [p.name for p in sig.parameters.values() if p.kind in kinds]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                # the arguments by name (what sig.bind gives, without its cost on every call)
                if len(args) > len(positional) or any(k in kwargs for k in positional[: len(args)]):
                    raise TypeError
                arguments = dict(zip(positional, args), **kwargs)
                first = arguments[arrays[0]]
                shape = first.shape if isinstance(first, _np().ndarray) else _np().asarray(first).shape
                rank = spatial(arguments)
            except (TypeError, ValueError, KeyError):  # the operation itself names what is wrong
                return f(*args, **kwargs)
            if not unbatched(arrays[0], shape, rank):
                return f(*args, **kwargs)
            bound = sig.bind(*args, **kwargs)
            for name in arrays:
                if bound.arguments.get(name) is not None:
                    bound.arguments[name] = _np().asarray(bound.arguments[name])[None]  # N = 1
            out = f(*bound.args, **bound.kwargs)
            return tuple(r[0] for r in out) if isinstance(out, tuple) else out[0]

        return wrapper

    return deco


def _np() -> Any:
    import numpy

    return numpy


@dataclass(frozen=True)
class FractionalPoolParams:
    """Fractional max pooling: per ``(n, c)`` plane and axis ``i``, ``o_i`` windows of ``k_i`` starting at ``starts``.

    ``starts[i]`` has shape ``(N*C, o_i)`` (:func:`refconv.shapes.fractional_starts`
    of that plane's sample for axis ``i``).
    """

    input_shape: tuple[int, ...]
    kernel_size: tuple[int, ...]
    output_spatial: tuple[int, ...]
    starts: tuple[Any, ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (*self.input_shape[:2], *self.output_spatial)


def fractional_pool_params(
    input_shape: ShapeLike, kernel_size: IntOrInts, output_size: IntOrInts, samples: Any
) -> FractionalPoolParams:
    """Validate fractional max pooling; ``samples[n, c, i]`` in ``[0, 1)`` is plane ``(n, c)``'s sample for axis ``i``.

    Each axis needs ``o + k - 1 <= n`` (PyTorch's rule).  PyTorch's
    ``_random_samples`` list the axes in reverse order for 2-D inputs
    (``samples = torch_samples[..., ::-1]``) and in order for 3-D.

    >>> fractional_pool_params((1, 1, 10), 2, 4, [[[0.5]]]).starts[0].tolist()
    [[0, 3, 5, 8]]
    >>> fractional_pool_params((1, 1, 10), 2, 4, [[[1.0]]])
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: samples[0, 0, 0]=1.0: every sample must lie in [0, 1)
    """
    import numpy as np

    xs = _pool_input(input_shape)
    ndim = len(xs) - 2
    k = per_axis("kernel_size", kernel_size, ndim, minimum=1)
    out = per_axis("output_size", output_size, ndim, minimum=1)
    for i, (n, ki, oi) in enumerate(zip(xs[2:], k, out)):
        if oi + ki - 1 > n:
            raise ConvParamError(
                f"{_fmt('output_size', output_size)} with kernel_size={k}: output_size + kernel_size - 1 must be at "
                f"most the input size {n} on axis {i}"
            )
    try:
        u = np.asarray(samples)
    except Exception as exc:  # ragged lists and the like
        raise ConvParamError(f"samples: cannot be read as an array ({exc})") from None
    if u.shape != (*xs[:2], ndim):
        raise ConvParamError(f"samples.shape={u.shape}: must be (N, C, spatial axes) = {(*xs[:2], ndim)}")
    if u.dtype.kind not in "iuf" and not (u.dtype == object and all(isinstance(v, (numbers.Rational, float)) for v in u.flat)):
        raise ConvParamError(f"samples.dtype={u.dtype}: samples must be real numbers (floats or Fractions)")
    flat = u.reshape(-1).tolist()
    fr = [Fraction(v) if v == v and abs(v) != float("inf") else None for v in flat]
    for j, v in enumerate(fr):
        if v is None or not 0 <= v < 1:
            where = ", ".join(map(str, np.unravel_index(j, u.shape)))
            raise ConvParamError(f"samples[{where}]={flat[j]!r}: every sample must lie in [0, 1)")
    planes = np.array(fr, dtype=object).reshape(-1, ndim)
    starts = tuple(
        np.array([shapes.fractional_starts(n, ki, oi, v) for v in planes[:, i]], dtype=np.int64).reshape(-1, oi)
        for i, (n, ki, oi) in enumerate(zip(xs[2:], k, out))
    )
    return FractionalPoolParams(xs, k, out, starts)


@dataclass(frozen=True)
class DeformParams:
    """Deformable convolution: the windows of ``conv`` (``conv_params``), each tap moved by its own offset.

    ``offset`` has shape ``(N, offset_groups * prod(K) * D, *O)`` with channel
    ``(g * prod(K) + t) * D + i`` holding the axis-``i`` offset of tap ``t``
    (row-major) for offset group ``g``; ``mask`` has ``(N, offset_groups * prod(K), *O)``.
    """

    conv: ConvParams
    offset_groups: int

    @property
    def taps(self) -> int:
        return _prod_int(self.conv.kernel_spatial)


def _prod_int(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def deform_params(
    input_shape: ShapeLike,
    offset_shape: ShapeLike,
    weight_shape: ShapeLike,
    bias_shape: ShapeLike | None = None,
    mask_shape: ShapeLike | None = None,
    *,
    stride: IntOrInts = 1,
    padding: PaddingLike = 0,
    dilation: IntOrInts = 1,
    groups: SupportsIndex = 1,
    offset_groups: SupportsIndex = 1,
) -> DeformParams:
    """Validate deformable convolution (torchvision's ``deform_conv2d`` layout, for any number of axes).

    >>> deform_params((1, 2, 4, 4), (1, 18, 2, 2), (1, 2, 3, 3)).conv.output_shape
    (1, 1, 2, 2)
    >>> deform_params((1, 2, 4, 4), (1, 9, 2, 2), (1, 2, 3, 3))
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: offset.shape=(1, 9, 2, 2): must be (N, 2 * offset_groups * prod(K), *out) = (1, 18, 2, 2)
    """
    p = conv_params(input_shape, weight_shape, bias_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if not _is_int(offset_groups) or offset_groups < 1 or p.input_shape[1] % offset_groups:
        raise ConvParamError(
            f"{_fmt('offset_groups', offset_groups)}: must be an integer >= 1 dividing C_in={p.input_shape[1]}"
        )
    dp = DeformParams(p, int(offset_groups))
    n, out, d = p.input_shape[0], p.output_spatial, p.ndim
    want = (n, d * dp.offset_groups * dp.taps, *out)
    if _check_shape("offset.shape", offset_shape) != want:
        raise ConvParamError(
            f"offset.shape={tuple(offset_shape)}: must be (N, {d} * offset_groups * prod(K), *out) = {want}"
        )
    if mask_shape is not None:
        want_m = (n, dp.offset_groups * dp.taps, *out)
        if _check_shape("mask.shape", mask_shape) != want_m:
            raise ConvParamError(f"mask.shape={tuple(mask_shape)}: must be (N, offset_groups * prod(K), *out) = {want_m}")
    return dp
