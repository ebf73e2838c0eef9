"""The per-layer summary: shapes, parameters, multiply-adds, activation memory, receptive field, warnings.

Conventions (specs/networks.md gives the reasons):

* **Parameters** are trainable weights and biases; **buffers** are
  non-trainable state (batch-norm running mean and variance, ``2C``).
* **Multiply-adds** count the products of the weighted sums of convolutions
  (``out_elements * C_in/groups * prod(K)``) and linear layers
  (``out * in``).  ``macs`` leaves the bias out, ``macs_bias`` adds one
  addition per output element of a layer with a bias.  Pooling, activations,
  batch norm and residual additions are element-wise and count 0.
* **Activations** of a row: the elements of the tensor it produces.
  ``Flatten`` is a view and produces none; with ``inplace=True`` neither do
  ReLU, LeakyReLU and Dropout (they overwrite their input).  Concatenations
  and residual additions produce their output.
* **Forward memory** per image: the input plus every produced tensor, all
  kept for the backward pass.  **Training memory**: twice that, one gradient
  of the same size per stored tensor.  Times ``batch`` for a batch, times the
  dtype's item size for bytes.
* **Receptive field** of a row: the input window (per spatial axis) that one
  output element sees, and the jump between neighbouring outputs, from
  :func:`refconv.shapes.receptive_field` along the widest path; ``None`` once
  the spatial axes are mixed (flatten, linear, uneven adaptive pooling).

Examples
--------
>>> from refconv.summary.layers import Conv, MaxPool, ReLU, Sequential
>>> s = summarize(Sequential([Conv(8, 3, padding=1), ReLU(), MaxPool(2)]), (3, 32, 32))
>>> [(r.path, r.output_shape, r.params, r.macs) for r in s.rows]
[('0', (8, 32, 32), 224, 221184), ('1', (8, 32, 32), 0, 0), ('2', (8, 16, 16), 0, 0)]
>>> s.params, s.macs, s.macs_bias
(224, 221184, 229376)
>>> s.forward_elements          # 3*32*32 input + 8192 + 8192 + 2048
21504
>>> s.rows[2].receptive_field, s.rows[2].jump
((4, 4), (2, 2))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .. import shapes
from ..params import ConvParamError
from .layers import (
    AdaptiveAvgPool,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    ReLU,
    Residual,
    Sequential,
    SideOutput,
    _Pool,
    is_symbolic,
)

__all__ = ["DTYPE_BYTES", "Row", "SummaryWarning", "Summary", "summarize", "LayerError"]

#: bytes per element of each dtype name accepted by ``--dtype``
DTYPE_BYTES: dict[str, int] = {
    "float64": 8,
    "float32": 4,
    "tf32": 4,  # stored as float32
    "bfloat16": 2,
    "float16": 2,
    "float8": 1,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
}

_INPLACE = (ReLU, LeakyReLU, Dropout)
#: 8-bit dtypes of a quantized network: its biases are int32 in the accumulator's scale
QUANTIZED = ("int8", "uint8")


class LayerError(ConvParamError):
    """A shape error inside a network; the message starts with the layer's path and type."""


@dataclass(frozen=True)
class SummaryWarning:
    """Something legal but probably unintended: ``category`` is ``'unread'``, ``'channels'`` or ``'window'``."""

    path: str
    category: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Row:
    """One line of the summary: a layer, or the merge of a concatenation or residual addition."""

    path: str
    kind: str
    description: str
    depth: int
    input_shape: tuple[Any, ...]
    output_shape: tuple[Any, ...]
    params: Any
    buffers: Any
    macs: Any
    macs_bias: Any
    activations: Any
    receptive_field: Optional[tuple[Any, ...]]
    jump: Optional[tuple[Any, ...]]
    biases: Any = 0             # of the parameters, the biases (int32 in an int8 network)


@dataclass(frozen=True)
class Summary:
    """The table and its totals for one input shape, batch size and dtype."""

    name: str
    input_shape: tuple[Any, ...]
    output_shape: tuple[Any, ...]
    rows: tuple[Row, ...]
    warnings: tuple[SummaryWarning, ...]
    batch: int = 1
    dtype: str = "float32"
    inplace: bool = False
    side_outputs: tuple[tuple[str, tuple[Any, ...]], ...] = field(default=())

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def symbolic(self) -> bool:
        """True when some size is a sympy expression."""
        return any(is_symbolic(v) for v in self.input_shape)

    @functools.cached_property  # a sum over every row: computed once
    def params(self) -> Any:
        """Trainable parameters."""
        return _total(r.params for r in self.rows)

    @functools.cached_property  # a sum over every row: computed once
    def buffers(self) -> Any:
        """Non-trainable buffers (batch-norm running statistics)."""
        return _total(r.buffers for r in self.rows)

    @functools.cached_property  # a sum over every row: computed once
    def macs(self) -> Any:
        """Multiply-adds without the bias additions."""
        return _total(r.macs for r in self.rows)

    @functools.cached_property  # a sum over every row: computed once
    def macs_bias(self) -> Any:
        """Multiply-adds with one bias addition per output element of a biased layer."""
        return _total(r.macs_bias for r in self.rows)

    @property
    def input_elements(self) -> Any:
        return _prod(self.input_shape)

    @functools.cached_property  # a sum over every row: computed once
    def forward_elements(self) -> Any:
        """Elements stored by a forward pass of one image: the input plus every produced tensor."""
        return self.input_elements + _total(r.activations for r in self.rows)

    @property
    def training_elements(self) -> Any:
        """Forward elements plus one gradient of each: ``2 * forward_elements`` per image."""
        return 2 * self.forward_elements

    @property
    def quantized(self) -> bool:
        """An int8 / uint8 network: weights and activations in 8 bits, biases in int32 (the accumulator's scale)."""
        return self.dtype in QUANTIZED

    @functools.cached_property  # a sum over every row: computed once
    def biases(self) -> Any:
        """The bias parameters of the convolution and linear layers."""
        return _total(r.biases for r in self.rows)

    @property
    def param_bytes(self) -> Any:
        """Bytes of parameters and buffers in ``dtype``; in an int8 network the biases take 4 bytes (int32)."""
        if self.quantized:
            return (self.params - self.biases + self.buffers) * self.itemsize + self.biases * DTYPE_BYTES["int32"]
        return (self.params + self.buffers) * self.itemsize

    def totals(self) -> dict[str, Any]:
        """Every total, per image and for the batch, counts and bytes."""
        b, item = self.batch, self.itemsize
        return {
            "params": self.params,
            "trainable_params": self.params,
            "non_trainable_buffers": self.buffers,
            "param_bytes": self.param_bytes,
            "macs": self.macs,
            "macs_with_bias": self.macs_bias,
            "macs_batch": self.macs * b,
            "forward_activations_per_image": self.forward_elements,
            "forward_bytes_per_image": self.forward_elements * item,
            "training_bytes_per_image": self.training_elements * item,
            "forward_bytes_batch": self.forward_elements * item * b,
            "training_bytes_batch": self.training_elements * item * b,
            **({"int32_bias_params": self.biases, "int8_weight_bytes": (self.params - self.biases) * item}
               if self.quantized else {}),
        }


def _prod(values: Sequence[Any]) -> Any:
    out: Any = 1
    for v in values:
        out = out * v
    return out


def _total(values: Any) -> Any:
    vals = list(values)
    if any(is_symbolic(v) for v in vals):
        import sympy

        return sympy.Add(*vals)  # one flattening of all the terms, not one per row
    return sum(vals)


def _join(path: str, label: str) -> str:
    return f"{path}.{label}" if path else label


_AXES = {1: "L", 2: "HW", 3: "DHW"}


def _axis_name(i: int, ndim: int) -> str:
    names = _AXES.get(ndim)
    return f"{names[i]} (axis {i})" if names else f"axis {i}"


def _fmt_tuple(v: Any) -> str:
    vals = v if isinstance(v, tuple) else (v,)
    return "x".join(str(x) for x in vals)


def describe(layer: Layer) -> str:
    """A short hyperparameter string for a table cell.

    >>> describe(Conv(96, 11, stride=4, groups=2))
    '96, 11/4, g2'
    >>> from refconv.summary.layers import MaxPool
    >>> describe(MaxPool(3, 2, padding=1, ceil_mode=True))
    '3/2, p1, ceil'
    """
    parts: list[str] = []
    if isinstance(layer, Conv):
        parts.append(str(layer.out_channels))
    if isinstance(layer, (Conv, _Pool)):
        k = _fmt_tuple(layer.kernel_size)
        stride = layer.stride
        parts.append(k + (f"/{_fmt_tuple(stride)}" if stride not in (None, 1) else ""))
        if layer.padding not in (0, "valid"):
            parts.append(f"p{layer.padding}" if not isinstance(layer.padding, tuple) else f"p{list(layer.padding)}")
        d = getattr(layer, "dilation", 1)
        if d != 1:
            parts.append(f"d{_fmt_tuple(d)}")
    if isinstance(layer, Conv):
        if layer.groups != 1:
            parts.append(f"g{layer.groups}")
        if not layer.bias:
            parts.append("no bias")
    if isinstance(layer, _Pool) and layer.ceil_mode:
        parts.append("ceil")
    if isinstance(layer, AdaptiveAvgPool):
        parts.append(_fmt_tuple(layer.output_size))
    if hasattr(layer, "out_features"):
        parts.append(str(layer.out_features))
    for name in ("p", "size", "negative_slope"):
        if hasattr(layer, name):
            parts.append(f"{name}={getattr(layer, name)}")
    return ", ".join(parts)


@dataclass
class _Walk:
    rows: list[Row]
    warnings: list[SummaryWarning]
    side: list[tuple[str, tuple[Any, ...]]]
    inplace: bool


# the receptive field so far, per spatial axis: (size, jump); None once the axes are mixed
Chain = Optional[tuple[tuple[Any, Any], ...]]


def _start(ndim: int) -> Chain:
    """The chain of the input itself: one element wide, jump 1, on every spatial axis."""
    return tuple((1, 1) for _ in range(ndim))


def _extend(chain: tuple[tuple[Any, Any], ...], window: tuple[tuple[Any, Any, Any, Any], ...]) -> Chain:
    """One more window ``(k, stride, lo, dilation)`` per axis: O(1) per layer.

    The recurrence of :func:`refconv.shapes.receptive_field`, one step:
    ``size_l = size_{l-1} + d_l*(k_l - 1)*jump_{l-1}``, ``jump_l = jump_{l-1}*s_l``;
    once a value is a formula, sympy keeps the sizes expanded as
    :func:`refconv.symbolic.receptive_field` does.
    """
    if any(is_symbolic(v) for step in window for v in step) or any(is_symbolic(v) for axis in chain for v in axis):
        import sympy

        return tuple(
            (sympy.expand(sympy.sympify(size) + d * (k - 1) * jump), sympy.sympify(jump) * s)
            for (size, jump), (k, s, _, d) in zip(chain, window)
        )
    return tuple((size + d * (k - 1) * jump, jump * s) for (size, jump), (k, s, _, d) in zip(chain, window))


def _rf(chain: Chain) -> tuple[Optional[tuple[Any, ...]], Optional[tuple[Any, ...]]]:
    """``(size, jump)`` per axis at the end of ``chain``."""
    if chain is None:
        return None, None
    return tuple(size for size, _ in chain), tuple(jump for _, jump in chain)


def _wider(a: Chain, b: Chain) -> Chain:
    """The chain with the larger receptive field on the first axis (None, the mixed one, wins)."""
    if a is None or b is None:
        return None
    ra, rb = _rf(a)[0], _rf(b)[0]
    if ra and rb and not is_symbolic(ra[0]) and not is_symbolic(rb[0]) and rb[0] > ra[0]:
        return b
    return a


def _guard(path: str, layer: Layer, fn: Any) -> Any:
    try:
        return fn()
    except LayerError:
        raise
    except ConvParamError as exc:
        raise LayerError(f"layer {path or '<network>'!r} ({layer.kind}): {exc}") from None


def _warn_leaf(w: _Walk, path: str, layer: Layer, shape: tuple[Any, ...]) -> None:
    expected = layer.expected_channels()
    if expected is not None and shape and not is_symbolic(shape[0]) and expected != shape[0]:
        field_name = {"conv": "in_channels", "batchnorm": "num_features", "linear": "in_features"}[layer.kind]
        w.warnings.append(SummaryWarning(
            path, "channels",
            f"{layer.kind}.{field_name}={expected} but the previous layer gives {shape[0]} "
            f"(parameters are counted for {expected})",
        ))
    elif expected is not None and shape and is_symbolic(shape[0]):
        import sympy

        if sympy.simplify(shape[0] - expected) != 0:
            w.warnings.append(SummaryWarning(
                path, "channels",
                f"{layer.kind} declares {expected} input channels/features: the input must satisfy "
                f"{shape[0]} = {expected}",
            ))
    spatial = shape[1:]
    if isinstance(layer, AdaptiveAvgPool):
        from ..params import per_axis

        out = per_axis("output_size", layer.output_size, len(spatial), minimum=1)
        for i, (n, o) in enumerate(zip(spatial, out)):
            if not is_symbolic(n) and o > n:
                w.warnings.append(SummaryWarning(
                    path, "window", f"output_size {o} is larger than its input {n} on {_axis_name(i, len(spatial))}: "
                    "bins repeat input rows",
                ))
        return
    if not isinstance(layer, (Conv, _Pool)):
        return
    window = layer.window(shape)
    for i, (n, (k, _s, lo, d)) in enumerate(zip(spatial, window)):
        if is_symbolic(n) or is_symbolic(lo):
            continue
        span = d * (k - 1) + 1
        if span > n:
            w.warnings.append(SummaryWarning(
                path, "window", f"the window spans {span} but the input is {n} on {_axis_name(i, len(spatial))}: "
                "it fits only thanks to the padding",
            ))
    if isinstance(layer, _Pool) and layer.ceil_mode:
        return  # ceil_mode exists to read the trailing rows
    pads = layer._axes(shape)[-1]
    for i, (n, (k, s, _, d), pad) in enumerate(zip(spatial, window, pads)):
        if is_symbolic(n) or any(is_symbolic(p) for p in pad):
            continue
        g = shapes.conv_geometry(n, k, s, pad, d)
        # a window narrower than its stride skips s - span rows between windows by design;
        # only a trailing remainder beyond that gap is an accident of the input size
        if g.unread_input > max(0, s - (d * (k - 1) + 1)):
            same = shapes.conv_input_sizes(g.output, k, s, pad, d)
            w.warnings.append(SummaryWarning(
                path, "unread",
                f"stride {s} leaves the last {g.unread_input} of {n} input rows unread on "
                f"{_axis_name(i, len(spatial))}: {g.formula}; inputs {same.start}..{same.stop - 1} "
                f"give the same output",
            ))


def _walk(w: _Walk, layer: Layer, shape: tuple[Any, ...], path: str, depth: int, chain: Chain) -> tuple[tuple[Any, ...], Chain]:
    if isinstance(layer, Sequential):
        for label, child in layer.children():
            shape, chain = _walk(w, child, shape, _join(path, label), depth + 1, chain)
        return shape, chain
    if isinstance(layer, SideOutput):
        label, head = layer.children()[0]
        out, _ = _walk(w, head, shape, _join(path, label), depth + 1, chain)
        w.side.append((path, out))
        return shape, chain
    if isinstance(layer, (Concat, Residual)):
        chains = []
        for label, child in layer.children():
            _, c = _walk(w, child, shape, _join(path, label), depth + 1, chain)
            chains.append(c)
        if isinstance(layer, Residual) and layer.shortcut is None:
            chains.append(chain)
        out = _guard(path, layer, lambda: layer.output_shape(shape))
        merged = chains[0]
        for c in chains[1:]:
            merged = _wider(merged, c)
        rf, jump = _rf(merged)
        desc = f"{len(layer.branches)} branches" if isinstance(layer, Concat) else (
            "identity shortcut" if layer.shortcut is None else "projection shortcut")
        w.rows.append(Row(
            path or layer.kind, "concat" if isinstance(layer, Concat) else "add", desc, depth, tuple(shape), out,
            0, 0, 0, 0, _prod(out), rf, jump,
        ))
        return out, merged
    out = _guard(path, layer, lambda: layer.output_shape(shape))
    params = _guard(path, layer, lambda: layer.num_params(shape))
    buffers = layer.num_buffers(shape)
    macs = layer.macs(shape)
    macs_bias = layer.macs(shape, bias=True)
    _guard(path, layer, lambda: _warn_leaf(w, path, layer, tuple(shape)))
    if chain is not None:
        win = layer.window(shape)
        if win is not None:
            chain = _extend(chain, win)
        elif len(out) != len(shape) or any(bool(a != b) for a, b in zip(out[1:], shape[1:])):
            chain = None  # spatial axes mixed or resized without a uniform window
    rf, jump = _rf(chain)
    stored = 0 if isinstance(layer, Flatten) or (w.inplace and isinstance(layer, _INPLACE)) else _prod(out)
    # a conv or linear layer's biases: one per output channel / feature
    biases = (getattr(layer, "out_channels", None) or getattr(layer, "out_features", 0)) if getattr(layer, "bias", False) is True else 0
    w.rows.append(Row(
        path, layer.kind, describe(layer), depth, tuple(shape), tuple(out),
        params, buffers, macs, macs_bias, stored, rf, jump, biases,
    ))
    return tuple(out), chain


def summarize(
    network: Any,
    input_shape: Optional[Sequence[Any]] = None,
    *,
    batch: int = 1,
    dtype: str = "float32",
    inplace: bool = False,
    name: Optional[str] = None,
) -> Summary:
    """Summarize ``network`` (a :class:`~refconv.summary.zoo.Network` or any layer) for one input shape.

    Parameters
    ----------
    network : Network or Layer
    input_shape : tuple, optional
        ``(C, *spatial)`` per image; ints, or sympy expressions for formulas.
        Defaults to the network's recorded input shape.
    batch : int
        Images per batch, for the batch memory totals.
    dtype : str
        A key of :data:`DTYPE_BYTES`.
    inplace : bool
        Count ReLU, LeakyReLU and Dropout as overwriting their input.

    Examples
    --------
    >>> from refconv.summary import zoo
    >>> s = summarize(zoo.get("alexnet_original"), (3, 224, 224))
    >>> [str(w) for w in s.warnings][:1]
    ['conv1: stride 4 leaves the last 1 of 224 input rows unread on H (axis 0): floor((224 + 0 + 0 - 1*(11 - 1) - 1) / 4) + 1 = 54; inputs 223..226 give the same output']
    >>> summarize(zoo.get("vgg16"), batch=0)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: batch=0: must be an integer >= 1
    """
    from .zoo import Network

    layer: Layer
    if isinstance(network, Network):
        layer, default, net_name = network.layers, network.input_shape, network.name
    elif isinstance(network, Layer):
        layer, default, net_name = network, None, network.name or network.kind
    else:
        raise ConvParamError(f"network={network!r}: expected a Network or a layer description")
    shape = default if input_shape is None else input_shape
    if shape is None:
        raise ConvParamError(f"input_shape=None: network {net_name!r} records no input shape; give one")
    try:
        shape = tuple(shape)
    except TypeError:
        raise ConvParamError(f"input_shape={shape!r}: expected a tuple (C, *spatial)") from None
    if any(is_symbolic(v) for v in shape):
        import sympy

        if not all(isinstance(v, sympy.Expr) or not is_symbolic(v) for v in shape) or any(isinstance(v, bool) for v in shape):
            raise ConvParamError(f"input_shape={shape!r}: every size must be an integer >= 1 or a sympy expression")
    if not shape or any((not is_symbolic(v) and v < 1) for v in shape):
        raise ConvParamError(f"input_shape={shape!r}: expected (C, *spatial) with every size >= 1")
    if is_symbolic(batch) or batch < 1:
        raise ConvParamError(f"batch={batch!r}: must be an integer >= 1")
    if dtype not in DTYPE_BYTES:
        raise ConvParamError(f"dtype={dtype!r}: dtypes are {', '.join(DTYPE_BYTES)}")
    w = _Walk([], [], [], bool(inplace))
    chain: Chain = _start(len(shape) - 1)
    out, _ = _walk(w, layer, shape, "", 0, chain)
    return Summary(
        name or net_name, shape, tuple(out), tuple(w.rows), tuple(w.warnings), batch, dtype, bool(inplace), tuple(w.side)
    )
