"""The layer vocabulary: frozen descriptions that know their output shape and parameter count.

A description holds hyperparameters only, never weights.  Shapes are per
image, without the batch axis: ``(C, *spatial)`` for feature maps and
``(F,)`` after :class:`Flatten`.  Every description answers, for a given input
shape:

=========================  ====================================================
``output_shape(shape)``    the output shape (sizes from :mod:`refconv.shapes`;
                           sympy expressions in, formulas out, via
                           :mod:`refconv.symbolic`)
``num_params(shape)``      trainable parameters (weights and biases)
``num_buffers(shape)``     non-trainable state (batch-norm running mean and
                           variance)
``macs(shape, bias=..)``   multiply-adds of the weighted sums; ``bias=True``
                           adds one addition per output element of a layer
                           with a bias
``children()``             the contained descriptions (containers only)
=========================  ====================================================

Bad hyperparameters raise :class:`refconv.params.ConvParamError` at
construction, naming the class and the field; bad shapes raise it when a shape
is computed (the summary prefixes the layer's path).

Examples
--------
>>> conv1 = Conv(96, 11, stride=4)               # AlexNet's first layer
>>> conv1.output_shape((3, 227, 227))
(96, 55, 55)
>>> conv1.num_params((3, 227, 227))             # 96*3*11*11 weights + 96 biases
34944
>>> conv1.macs((3, 227, 227))                   # 96*55*55 outputs x 3*11*11 products
105415200
>>> net = Sequential([Conv(6, 5), ReLU(), MaxPool(2), Flatten(), Linear(10)])
>>> net.output_shape((1, 32, 32)), net.num_params((1, 32, 32))
((10,), 11926)
>>> Conv(0, 3)
Traceback (most recent call last):
    ...
refconv.params.ConvParamError: Conv.out_channels=0: must be an integer >= 1
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Optional, Sequence

from .. import shapes
from ..params import PADDING_FORM_RULE, ConvParamError, normalize_padding, padding_form, per_axis, pool_params

__all__ = [
    "Layer",
    "Conv",
    "MaxPool",
    "AvgPool",
    "AdaptiveAvgPool",
    "GlobalAvgPool",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LRN",
    "BatchNorm",
    "Dropout",
    "Flatten",
    "Linear",
    "Concat",
    "Residual",
    "Sequential",
    "SideOutput",
    "LAYER_TYPES",
    "is_symbolic",
]

Shape = tuple[Any, ...]


def is_symbolic(v: Any) -> bool:
    """True for a size that is not a plain integer (a sympy expression).

    >>> is_symbolic(3), is_symbolic(__import__('sympy').Symbol('H'))
    (False, True)
    """
    return not (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def _symbolic() -> Any:
    # imported on demand: sympy is heavy and only the symbolic mode needs it
    from .. import symbolic

    return symbolic


def _prod(values: Any) -> Any:
    out: Any = 1
    for v in values:
        out = out * v
    return out


# ---- field validation: messages read "Class.field=value: rule" -------------------------


def _bad(obj: Any, name: str, value: Any, rule: str) -> ConvParamError:
    return ConvParamError(f"{type(obj).__name__}.{name}={value!r}: {rule}")


def _check_int(obj: Any, name: str, minimum: int, *, optional: bool = False) -> None:
    v = getattr(obj, name)
    if optional and v is None:
        return
    if is_symbolic(v) or v < minimum:
        raise _bad(obj, name, v, f"must be an integer >= {minimum}" + (" or None" if optional else ""))
    object.__setattr__(obj, name, int(v))  # numpy and sympy integers become plain ints


def _check_ints(obj: Any, name: str, minimum: int) -> None:
    """An int, or a tuple of ints (one per spatial axis); lists become tuples."""
    v = getattr(obj, name)
    if isinstance(v, list):
        v = tuple(v)
        object.__setattr__(obj, name, v)
    vals = v if isinstance(v, tuple) else (v,)
    if not vals or any(is_symbolic(x) or x < minimum for x in vals):
        raise _bad(obj, name, v, f"must be an integer >= {minimum} or one such integer per spatial axis")
    object.__setattr__(obj, name, tuple(int(x) for x in v) if isinstance(v, tuple) else int(v))


def _check_padding(obj: Any) -> None:
    """An int, a string, or per axis an int or a ``(lo, hi)`` pair (:func:`refconv.params.padding_form`)."""
    try:
        object.__setattr__(obj, "padding", padding_form(obj.padding))
    except ConvParamError:
        raise _bad(obj, "padding", obj.padding, PADDING_FORM_RULE) from None


def _check_bool(obj: Any, name: str) -> None:
    v = getattr(obj, name)
    if not isinstance(v, bool):
        raise _bad(obj, name, v, "must be True or False")


def _check_float(obj: Any, name: str, lo: float, hi: float = math.inf, *, open_lo: bool = False) -> None:
    v = getattr(obj, name)
    ok = (
        isinstance(v, numbers.Real) and not isinstance(v, bool)
        and (isinstance(v, numbers.Integral) or math.isfinite(v))  # math.isfinite overflows on a huge int
        and (v > lo if open_lo else v >= lo) and v <= hi  # type: ignore[operator]  # numbers.Real has no > or >=
    )
    if not ok:
        close = ")" if math.isinf(hi) else "]"
        raise _bad(obj, name, v, f"must be a finite number in {'(' if open_lo else '['}{lo}, {hi}{close}")


def _spatial(layer: "Layer", shape: Shape, *, min_ndim: int = 1) -> tuple[Any, list[Any]]:
    if len(shape) < 1 + min_ndim:
        raise ConvParamError(
            f"input shape {tuple(shape)}: {type(layer).__name__} needs (C, *spatial) with at least "
            f"{min_ndim} spatial axis"
        )
    return shape[0], list(shape[1:])


# ---- the base class ----------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer description.  ``name`` (keyword only) labels it in summaries and files."""

    name: str = field(default="", kw_only=True)

    #: the ``type`` key of this layer in TOML/JSON files
    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise _bad(self, "name", self.name, "must be a string")

    def output_shape(self, shape: Shape) -> Shape:
        """Output shape for an input of ``shape`` (per image, no batch axis)."""
        return tuple(shape)

    def num_params(self, shape: Shape) -> Any:
        """Trainable parameters (weights and biases) for an input of ``shape``."""
        return 0

    def num_buffers(self, shape: Shape) -> Any:
        """Non-trainable state (batch-norm running statistics)."""
        return 0

    def macs(self, shape: Shape, *, bias: bool = False) -> Any:
        """Multiply-adds of the weighted sums; ``bias=True`` counts the bias additions too."""
        return 0

    def children(self) -> tuple[tuple[str, "Layer"], ...]:
        """``(label, layer)`` of the contained descriptions; empty for a leaf."""
        return ()

    def expected_channels(self) -> Optional[int]:
        """The channel (or feature) count this layer declares for its input, if any."""
        return None

    def window(self, shape: Shape) -> Optional[tuple[tuple[int, int, int, int], ...]]:
        """Per spatial axis ``(k, stride, lo, dilation)`` of a sliding window, or None if pointwise."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """The file form of this description: ``type`` plus every field that differs from its default.

        >>> Conv(64, 3, padding=1).to_dict()
        {'type': 'conv', 'out_channels': 64, 'kernel_size': 3, 'padding': 1}
        """
        out: dict[str, Any] = {"type": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and v == f.default:
                continue
            if isinstance(v, Layer):
                v = v.to_dict()
            elif isinstance(v, tuple) and v and all(isinstance(x, Layer) for x in v):
                v = [x.to_dict() for x in v]
            elif isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        return out

    def label(self) -> str:
        """``name`` if given, else the type."""
        return self.name or self.kind


# ---- convolution and pooling --------------------------------------------------------


def _conv_sizes(spatial: list[Any], k: tuple[int, ...], s: tuple[int, ...], pad: Any, d: tuple[int, ...]) -> list[Any]:
    if any(is_symbolic(n) for n in spatial):
        sym = _symbolic()
        return [sym.conv_output_size(n, ki, si, p, di) for n, ki, si, p, di in zip(spatial, k, s, pad, d)]
    return [shapes.conv_output_size(n, ki, si, p, di) for n, ki, si, p, di in zip(spatial, k, s, pad, d)]


def _padding_pairs(padding: Any, spatial: list[Any], k: tuple[int, ...], s: tuple[int, ...], d: tuple[int, ...]) -> Any:
    """``(lo, hi)`` per axis; for symbolic sizes with ``'same'`` the pairs are expressions."""
    if isinstance(padding, str) and padding in ("same", "same_lower") and any(is_symbolic(n) for n in spatial):
        sym = _symbolic()
        return tuple(
            sym.same_padding(n, ki, si, di, lower=(padding == "same_lower")) for n, ki, si, di in zip(spatial, k, s, d)
        )
    sizes = [1 if is_symbolic(n) else n for n in spatial]  # only 'same' depends on the size
    return normalize_padding(padding, sizes, k, s, d)


def _check_fits(layer: Conv | _Pool, spatial: list[Any], k: tuple[int, ...], d: tuple[int, ...], pad: Any,
                what: str) -> None:
    for i, (n, ki, di, (lo, hi)) in enumerate(zip(spatial, k, d, pad)):
        if is_symbolic(n) or is_symbolic(lo) or is_symbolic(hi):
            continue
        span = di * (ki - 1) + 1
        if span > n + lo + hi:
            raise ConvParamError(
                f"{type(layer).__name__}.kernel_size={layer.kernel_size!r}: the {what} spans {span} on spatial "
                f"axis {i}, larger than the padded input {n + lo + hi} (input {n}, padding {(lo, hi)})"
            )


@dataclass(frozen=True)
class Conv(Layer):
    """Convolution (cross-correlation, as in DL frameworks) with every parameter of ``specs/convolution.md``.

    ``padding`` is an int, a string (``'valid'``, ``'same'``, ``'same_lower'``,
    ``'full'``), or per spatial axis an int or a ``(lo, hi)`` pair.
    ``in_channels`` is optional: when given, a summary warns if the input has
    another channel count.  Weights ``(out_channels, C_in/groups, *K)``.

    >>> Conv(64, 3, padding='same').output_shape((3, 224, 224))
    (64, 224, 224)
    >>> Conv(8, (3, 1), padding=((0, 2), 0), groups=2).output_shape((4, 5, 5))
    (8, 5, 5)
    >>> Conv(6, 3, groups=3).output_shape((4, 5, 5))
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: groups=3: groups must divide C_in=4
    """

    out_channels: int
    kernel_size: Any
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    bias: bool = True
    in_channels: Optional[int] = None

    kind: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "out_channels", 1)
        _check_ints(self, "kernel_size", 1)
        _check_ints(self, "stride", 1)
        _check_ints(self, "dilation", 1)
        _check_padding(self)
        _check_int(self, "groups", 1)
        _check_bool(self, "bias")
        _check_int(self, "in_channels", 1, optional=True)
        if self.out_channels % self.groups:
            raise _bad(self, "groups", self.groups, f"must divide out_channels={self.out_channels}")
        if self.in_channels is not None and self.in_channels % self.groups:
            raise _bad(self, "groups", self.groups, f"must divide in_channels={self.in_channels}")

    def _axes(self, shape: Shape) -> tuple[Any, list[Any], tuple[int, ...], tuple[int, ...], tuple[int, ...], Any]:
        c, sp = _spatial(self, shape)
        nd = len(sp)
        k = per_axis("kernel_size", self.kernel_size, nd, minimum=1)
        s = per_axis("stride", self.stride, nd, minimum=1)
        d = per_axis("dilation", self.dilation, nd, minimum=1)
        if not is_symbolic(c) and c % self.groups:
            raise ConvParamError(f"groups={self.groups}: groups must divide C_in={c}")
        pad = _padding_pairs(self.padding, sp, k, s, d)
        _check_fits(self, sp, k, d, pad, "dilated kernel")
        return c, sp, k, s, d, pad

    def output_shape(self, shape: Shape) -> Shape:
        _, sp, k, s, d, pad = self._axes(shape)
        return (self.out_channels, *_conv_sizes(sp, k, s, pad, d))

    def weight_shape(self, shape: Shape) -> Shape:
        """``(out_channels, C_in / groups, *K)``, ``C_in`` as declared or else from ``shape``."""
        c, sp, k, *_ = self._axes(shape)
        cin = self.in_channels if self.in_channels is not None else c
        return (self.out_channels, cin // self.groups, *k)

    def num_params(self, shape: Shape) -> Any:
        return _prod(self.weight_shape(shape)) + (self.out_channels if self.bias else 0)

    def macs(self, shape: Shape, *, bias: bool = False) -> Any:
        # each output element: C_in/groups * prod(K) products summed (+ 1 bias addition)
        out = _prod(self.output_shape(shape))
        per = _prod(self.weight_shape(shape)[1:])
        return out * per + (out if bias and self.bias else 0)

    def expected_channels(self) -> Optional[int]:
        return self.in_channels

    def window(self, shape: Shape) -> tuple[tuple[int, int, int, int], ...]:
        _, sp, k, s, d, pad = self._axes(shape)
        return tuple((ki, si, p[0], di) for ki, si, p, di in zip(k, s, pad, d))


@dataclass(frozen=True)
class _Pool(Layer):
    kernel_size: Any
    stride: Any = None
    padding: Any = 0
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_ints(self, "kernel_size", 1)
        if self.stride is not None:
            _check_ints(self, "stride", 1)
        _check_padding(self)
        _check_bool(self, "ceil_mode")

    def _dil(self) -> Any:
        return 1

    def _axes(self, shape: Shape) -> tuple[list[Any], tuple[int, ...], tuple[int, ...], tuple[int, ...], Any]:
        c, sp = _spatial(self, shape)
        nd = len(sp)
        k = per_axis("kernel_size", self.kernel_size, nd, minimum=1)
        s = k if self.stride is None else per_axis("stride", self.stride, nd, minimum=1)
        d = per_axis("dilation", self._dil(), nd, minimum=1)
        pad = _padding_pairs(self.padding, sp, k, s, d)
        if all(not is_symbolic(n) for n in sp):
            # the shared validation path: the window fits the padded input
            pool_params((1, 1, *sp), k, stride=s, padding=pad, dilation=d, ceil_mode=self.ceil_mode)
        else:
            _check_fits(self, sp, k, d, pad, "window")
            if not any(is_symbolic(v) for p in pad for v in p):
                # the padding rule does not depend on the size: check it on a size every window fits
                big = [sum(ki * di for ki, di in zip(k, d)) + 1] * len(sp)
                pool_params((1, 1, *big), k, stride=s, padding=pad, dilation=d, ceil_mode=self.ceil_mode)
        return sp, k, s, d, pad

    def output_shape(self, shape: Shape) -> Shape:
        sp, k, s, d, pad = self._axes(shape)
        if any(is_symbolic(n) for n in sp):
            sym = _symbolic()
            out = [sym.pool_output_size(n, ki, si, p, di, self.ceil_mode) for n, ki, si, p, di in zip(sp, k, s, pad, d)]
        else:
            out = [shapes.pool_output_size(n, ki, si, p, di, self.ceil_mode) for n, ki, si, p, di in zip(sp, k, s, pad, d)]
        return (shape[0], *out)

    def window(self, shape: Shape) -> tuple[tuple[int, int, int, int], ...]:
        sp, k, s, d, pad = self._axes(shape)
        return tuple((ki, si, p[0], di) for ki, si, p, di in zip(k, s, pad, d))


@dataclass(frozen=True)
class MaxPool(_Pool):
    """Max pooling; ``stride=None`` means ``stride = kernel_size``; PyTorch's ``ceil_mode`` rule.

    >>> MaxPool(3, 2).output_shape((96, 55, 55))
    (96, 27, 27)
    >>> MaxPool(2, ceil_mode=True).output_shape((480, 7, 7))
    (480, 4, 4)
    """

    dilation: Any = 1

    kind: ClassVar[str] = "maxpool"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_ints(self, "dilation", 1)

    def _dil(self) -> Any:
        return self.dilation


@dataclass(frozen=True)
class AvgPool(_Pool):
    """Average pooling; ``count_include_pad`` chooses the divisor (the shape does not depend on it).

    >>> AvgPool(5, 3).output_shape((512, 14, 14))
    (512, 4, 4)
    """

    count_include_pad: bool = True

    kind: ClassVar[str] = "avgpool"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_bool(self, "count_include_pad")


@dataclass(frozen=True)
class AdaptiveAvgPool(Layer):
    """Average pooling to a fixed ``output_size`` (PyTorch ``AdaptiveAvgPool``).

    Output bin ``i`` of an axis of length ``n`` averages input rows
    ``floor(i*n/o)`` to ``ceil((i+1)*n/o) - 1``.

    >>> AdaptiveAvgPool((6, 6)).output_shape((256, 13, 13))
    (256, 6, 6)
    """

    output_size: Any

    kind: ClassVar[str] = "adaptiveavgpool"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_ints(self, "output_size", 1)

    def output_shape(self, shape: Shape) -> Shape:
        c, sp = _spatial(self, shape)
        return (c, *per_axis("output_size", self.output_size, len(sp), minimum=1))

    def window(self, shape: Shape) -> Optional[tuple[tuple[int, int, int, int], ...]]:
        c, sp = _spatial(self, shape)
        o = per_axis("output_size", self.output_size, len(sp), minimum=1)
        if any(is_symbolic(n) or n % oi for n, oi in zip(sp, o)):
            return None  # bins of unequal width: not one sliding window
        # o divides n: bins are windows of n/o rows, n/o apart
        return tuple((n // oi, n // oi, 0, 1) for n, oi in zip(sp, o))


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over every spatial position: ``(C, *S) -> (C, 1, ..., 1)`` (flatten afterwards).

    >>> GlobalAvgPool().output_shape((2048, 7, 7))
    (2048, 1, 1)
    """

    kind: ClassVar[str] = "globalavgpool"

    def output_shape(self, shape: Shape) -> Shape:
        c, sp = _spatial(self, shape)
        return (c, *([1] * len(sp)))

    def window(self, shape: Shape) -> Optional[tuple[tuple[int, int, int, int], ...]]:
        c, sp = _spatial(self, shape)
        if any(is_symbolic(n) for n in sp):
            return None
        return tuple((n, n, 0, 1) for n in sp)


# ---- element-wise layers ------------------------------------------------------------


@dataclass(frozen=True)
class ReLU(Layer):
    """``max(x, 0)``, element-wise."""

    kind: ClassVar[str] = "relu"


@dataclass(frozen=True)
class LeakyReLU(Layer):
    """``x if x > 0 else negative_slope * x``, element-wise."""

    negative_slope: float = 0.01

    kind: ClassVar[str] = "leakyrelu"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_float(self, "negative_slope", 0.0)


@dataclass(frozen=True)
class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, element-wise."""

    kind: ClassVar[str] = "sigmoid"


@dataclass(frozen=True)
class Tanh(Layer):
    """``tanh(x)``, element-wise."""

    kind: ClassVar[str] = "tanh"


@dataclass(frozen=True)
class Softmax(Layer):
    """``exp(x_i) / sum_j exp(x_j)`` over the channel (feature) axis."""

    kind: ClassVar[str] = "softmax"


@dataclass(frozen=True)
class LRN(Layer):
    """Local response normalization across channels (AlexNet):
    ``b_c = a_c / (k + alpha/size * sum_{|c'-c| <= size//2} a_{c'}^2) ** beta``
    (PyTorch's ``LocalResponseNorm``, which divides ``alpha`` by ``size``)."""

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    kind: ClassVar[str] = "lrn"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "size", 1)
        _check_float(self, "alpha", 0.0)
        _check_float(self, "beta", 0.0)
        _check_float(self, "k", 0.0)


@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalization over the channel axis.

    Trainable: ``gamma`` and ``beta`` (``2C`` if ``affine``).  Non-trainable
    buffers: running mean and variance (``2C`` if ``track_running_stats``);
    PyTorch's scalar ``num_batches_tracked`` counter is not counted.

    >>> bn = BatchNorm()
    >>> bn.num_params((64, 56, 56)), bn.num_buffers((64, 56, 56))
    (128, 128)
    """

    num_features: Optional[int] = None
    eps: float = 1e-5
    momentum: float = 0.1
    affine: bool = True
    track_running_stats: bool = True

    kind: ClassVar[str] = "batchnorm"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "num_features", 1, optional=True)
        _check_float(self, "eps", 0.0, open_lo=True)
        _check_float(self, "momentum", 0.0, 1.0)
        _check_bool(self, "affine")
        _check_bool(self, "track_running_stats")

    def _c(self, shape: Shape) -> Any:
        if len(shape) < 1:
            raise ConvParamError(f"input shape {tuple(shape)}: BatchNorm needs at least a channel axis")
        return self.num_features if self.num_features is not None else shape[0]

    def num_params(self, shape: Shape) -> Any:
        return 2 * self._c(shape) if self.affine else 0

    def num_buffers(self, shape: Shape) -> Any:
        return 2 * self._c(shape) if self.track_running_stats else 0

    def expected_channels(self) -> Optional[int]:
        return self.num_features


@dataclass(frozen=True)
class Dropout(Layer):
    """Zero each element with probability ``p`` in training, scale the rest by ``1/(1-p)``."""

    p: float = 0.5

    kind: ClassVar[str] = "dropout"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_float(self, "p", 0.0, 1.0)


@dataclass(frozen=True)
class Flatten(Layer):
    """``(C, *S) -> (C * prod(S),)``, C-order (channel slowest), as ``torch.flatten(x, 1)``.

    >>> Flatten().output_shape((256, 6, 6))
    (9216,)
    """

    kind: ClassVar[str] = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (_prod(shape),)


@dataclass(frozen=True)
class Linear(Layer):
    """Fully connected ``y = W x + b`` on a flat input ``(F,)``; ``W`` is ``(out_features, F)``.

    >>> Linear(4096).num_params((9216,))
    37752832
    >>> Linear(10).output_shape((256, 6, 6))
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: input shape (256, 6, 6): Linear needs a flat input (F,); put a Flatten before it
    """

    out_features: int
    bias: bool = True
    in_features: Optional[int] = None

    kind: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "out_features", 1)
        _check_bool(self, "bias")
        _check_int(self, "in_features", 1, optional=True)

    def _f(self, shape: Shape) -> Any:
        if len(shape) != 1:
            raise ConvParamError(f"input shape {tuple(shape)}: Linear needs a flat input (F,); put a Flatten before it")
        return self.in_features if self.in_features is not None else shape[0]

    def output_shape(self, shape: Shape) -> Shape:
        self._f(shape)
        return (self.out_features,)

    def num_params(self, shape: Shape) -> Any:
        return self.out_features * self._f(shape) + (self.out_features if self.bias else 0)

    def macs(self, shape: Shape, *, bias: bool = False) -> Any:
        return self.out_features * self._f(shape) + (self.out_features if bias and self.bias else 0)

    def expected_channels(self) -> Optional[int]:
        return self.in_features


# ---- containers ---------------------------------------------------------------------


def _as_layers(obj: Any, name: str, value: Any, *, min_len: int) -> tuple[Layer, ...]:
    if isinstance(value, Layer) or not isinstance(value, (tuple, list)):
        raise _bad(obj, name, value, "must be a list of layer descriptions")
    if len(value) < min_len or not all(isinstance(v, Layer) for v in value):
        raise _bad(obj, name, value, f"must be a list of at least {min_len} layer description(s)")
    return tuple(value)


def _sum(values: Iterator[Any]) -> Any:
    out: Any = 0
    for v in values:
        out = out + v
    return out


class _Container(Layer):
    def num_params(self, shape: Shape) -> Any:
        return _sum(layer.num_params(s) for layer, s in self._inputs(shape))

    def num_buffers(self, shape: Shape) -> Any:
        return _sum(layer.num_buffers(s) for layer, s in self._inputs(shape))

    def macs(self, shape: Shape, *, bias: bool = False) -> Any:
        return _sum(layer.macs(s, bias=bias) for layer, s in self._inputs(shape))

    def _inputs(self, shape: Shape) -> Iterator[tuple[Layer, Shape]]:
        raise NotImplementedError


@dataclass(frozen=True)
class Sequential(_Container):
    """Layers applied one after another.

    >>> Sequential([Conv(8, 3, padding=1), ReLU(), MaxPool(2)]).output_shape((3, 32, 32))
    (8, 16, 16)
    """

    layers: Sequence[Layer]  # a list or a tuple; __post_init__ stores a tuple

    kind: ClassVar[str] = "sequential"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "layers", _as_layers(self, "layers", self.layers, min_len=0))

    def children(self) -> tuple[tuple[str, Layer], ...]:
        return tuple((layer.name or str(i), layer) for i, layer in enumerate(self.layers))

    def _inputs(self, shape: Shape) -> Iterator[tuple[Layer, Shape]]:
        for layer in self.layers:
            yield layer, shape
            shape = layer.output_shape(shape)

    def output_shape(self, shape: Shape) -> Shape:
        shape = tuple(shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape


def _same_spatial(a: Shape, b: Shape) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if is_symbolic(x) or is_symbolic(y):
            import sympy

            if sympy.simplify(sympy.sympify(x) - sympy.sympify(y)) != 0:
                return False
        elif x != y:
            return False
    return True


@dataclass(frozen=True)
class Concat(_Container):
    """Parallel branches on the same input, outputs concatenated along channels (inception module).

    Every branch must give the same spatial shape.

    >>> inc = Concat([Conv(64, 1), Sequential([Conv(96, 1), Conv(128, 3, padding=1)]), MaxPool(3, 1, padding=1)])
    >>> inc.output_shape((192, 28, 28))
    (384, 28, 28)
    """

    branches: Sequence[Layer]  # a list or a tuple; __post_init__ stores a tuple

    kind: ClassVar[str] = "concat"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "branches", _as_layers(self, "branches", self.branches, min_len=1))

    def children(self) -> tuple[tuple[str, Layer], ...]:
        return tuple((b.name or f"b{i}", b) for i, b in enumerate(self.branches))

    def _inputs(self, shape: Shape) -> Iterator[tuple[Layer, Shape]]:
        for b in self.branches:
            yield b, shape

    def output_shape(self, shape: Shape) -> Shape:
        outs = [b.output_shape(shape) for b in self.branches]
        for i, o in enumerate(outs[1:], 1):
            if len(o) < 1 or not _same_spatial(o[1:], outs[0][1:]):
                raise ConvParamError(
                    f"Concat.branches[{i}]: output shape {o} does not match branch 0's spatial shape "
                    f"{outs[0][1:]}; only channels may differ"
                )
        return (_sum(iter(o[0] for o in outs)), *outs[0][1:])


@dataclass(frozen=True)
class Residual(_Container):
    """``body(x) + shortcut(x)``; ``shortcut=None`` is the identity (ResNet's block, before its final ReLU).

    >>> block = Residual(Sequential([Conv(128, 3, stride=2, padding=1), Conv(128, 3, padding=1)]),
    ...                  shortcut=Conv(128, 1, stride=2))
    >>> block.output_shape((64, 56, 56))
    (128, 28, 28)
    >>> Residual(Conv(128, 3, padding=1)).output_shape((64, 56, 56))
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: Residual: body output (128, 56, 56) and shortcut output (64, 56, 56) differ; add a projection shortcut
    """

    body: Layer
    shortcut: Optional[Layer] = None

    kind: ClassVar[str] = "residual"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.body, (tuple, list)):
            object.__setattr__(self, "body", Sequential(self.body))
        if isinstance(self.shortcut, (tuple, list)):
            object.__setattr__(self, "shortcut", Sequential(self.shortcut))
        if not isinstance(self.body, Layer):
            raise _bad(self, "body", self.body, "must be a layer description")
        if self.shortcut is not None and not isinstance(self.shortcut, Layer):
            raise _bad(self, "shortcut", self.shortcut, "must be a layer description or None (identity)")

    def children(self) -> tuple[tuple[str, Layer], ...]:
        out: tuple[tuple[str, Layer], ...] = ((self.body.name or "body", self.body),)
        if self.shortcut is not None:
            out += ((self.shortcut.name or "shortcut", self.shortcut),)
        return out

    def _inputs(self, shape: Shape) -> Iterator[tuple[Layer, Shape]]:
        for _, layer in self.children():
            yield layer, shape

    def output_shape(self, shape: Shape) -> Shape:
        shape = tuple(shape)
        a = self.body.output_shape(shape)
        b = self.shortcut.output_shape(shape) if self.shortcut is not None else shape
        if not _same_spatial(a, b):
            raise ConvParamError(
                f"Residual: body output {a} and shortcut output {b} differ; add a projection shortcut"
            )
        return a


@dataclass(frozen=True)
class SideOutput(_Container):
    """An extra network output: ``head`` reads the input, the main path passes it on unchanged.

    GoogLeNet's auxiliary classifiers.  ``output_shape`` is the input shape (the
    main path); ``head.output_shape`` is the side output's shape.

    >>> aux = SideOutput(Sequential([AdaptiveAvgPool(4), Conv(128, 1), Flatten(), Linear(1000)]))
    >>> aux.output_shape((512, 14, 14)), aux.head.output_shape((512, 14, 14))
    ((512, 14, 14), (1000,))
    """

    head: Layer

    kind: ClassVar[str] = "side_output"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.head, (tuple, list)):
            object.__setattr__(self, "head", Sequential(self.head))
        if not isinstance(self.head, Layer):
            raise _bad(self, "head", self.head, "must be a layer description")

    def children(self) -> tuple[tuple[str, Layer], ...]:
        return ((self.head.name or "head", self.head),)

    def _inputs(self, shape: Shape) -> Iterator[tuple[Layer, Shape]]:
        yield self.head, shape

    def output_shape(self, shape: Shape) -> Shape:
        self.head.output_shape(shape)  # validates the head
        return tuple(shape)


#: ``type`` key in files -> class
LAYER_TYPES: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        Conv, MaxPool, AvgPool, AdaptiveAvgPool, GlobalAvgPool, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax,
        LRN, BatchNorm, Dropout, Flatten, Linear, Concat, Residual, Sequential, SideOutput,
    )
}
