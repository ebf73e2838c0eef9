"""A sequential model built from a network description in the summary vocabulary.

A network is described once, with :mod:`refconv.summary` (``Conv``,
``MaxPool``, ``ReLU``, ``Flatten``, ``Linear``, ...), and the same description
gives the summary table and, here, trainable layers.  Nested ``Sequential``
descriptions are flattened; parameter names are ``"<index>.<name>"`` over the
flattened list (``"0.weight"``, ``"0.bias"``, ...).

Initialization (``init='auto'``): a convolution or linear layer whose next
activation is ReLU or LeakyReLU gets He normal weights, any other (tanh,
sigmoid, or none, as for the output layer) Xavier normal; biases start at 0.

Examples
--------
>>> import numpy as np
>>> from refconv import summary as S
>>> net = S.Sequential([S.Flatten(), S.Linear(3), S.ReLU(), S.Linear(2)])
>>> model = Model(net, (1, 2, 2), rng=np.random.default_rng(0))
>>> model.forward(np.zeros((5, 1, 2, 2))).shape
(5, 2)
>>> sorted(model.parameters())
['1.bias', '1.weight', '3.bias', '3.weight']
>>> model.num_params() == net.num_params((1, 2, 2))
True
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np

from .. import summary as S
from . import conv as C
from . import layers as L

__all__ = ["Model", "lenet", "ARCHITECTURES", "architecture", "description_to_json", "description_from_json",
           "description_from_dict", "ModelError"]


class ModelError(ValueError):
    """A network description that cannot become a trainable model."""


def _leaves(desc: S.Layer) -> Iterator[S.Layer]:
    if isinstance(desc, S.Sequential):
        for child in desc.layers:
            yield from _leaves(child)
    else:
        yield desc


def _init_for(leaves: list[S.Layer], i: int) -> str:
    for nxt in leaves[i + 1 :]:
        if isinstance(nxt, (S.ReLU, S.LeakyReLU)):
            return "he_normal"
        if isinstance(nxt, (S.Tanh, S.Sigmoid, S.Conv, S.Linear, S.Softmax)):
            return "xavier_normal"
    return "xavier_normal"


def _build(desc: S.Layer, shape: tuple[int, ...], init: str, rng: np.random.Generator, dtype: Any) -> L.Layer:
    """One trainable layer for one leaf description on per-image input ``shape``."""
    if isinstance(desc, S.Conv):
        w = desc.weight_shape(shape)
        if w[1] * desc.groups != shape[0]:
            raise ModelError(f"{desc.label()}: in_channels={desc.in_channels} but the input has {shape[0]} channels")
        return C.Conv(
            shape[0], desc.out_channels, w[2:], stride=desc.stride, padding=desc.padding, dilation=desc.dilation,
            groups=desc.groups, bias=desc.bias, ndim=len(w) - 2, rng=rng, init=init, dtype=dtype,
        )
    if isinstance(desc, S.MaxPool):
        return C.MaxPool(desc.kernel_size, stride=desc.stride, padding=desc.padding, dilation=desc.dilation, ceil_mode=desc.ceil_mode)
    if isinstance(desc, S.AvgPool):
        return C.AvgPool(
            desc.kernel_size, stride=desc.stride, padding=desc.padding, ceil_mode=desc.ceil_mode,
            count_include_pad=desc.count_include_pad,
        )
    if isinstance(desc, S.GlobalAvgPool):
        return C.GlobalAvgPool()
    if isinstance(desc, S.Linear):
        f = desc.in_features if desc.in_features is not None else shape[0]
        if f != shape[0]:
            raise ModelError(f"{desc.label()}: in_features={f} but the input has {shape[0]} features")
        return L.Linear(f, desc.out_features, bias=desc.bias, rng=rng, init=init, dtype=dtype)
    if isinstance(desc, S.BatchNorm):
        c = shape[0]
        if desc.num_features is not None and desc.num_features != c:
            raise ModelError(f"{desc.label()}: num_features={desc.num_features} but the input has {c} channels")
        if not (desc.affine and desc.track_running_stats):
            raise ModelError(f"{desc.label()}: only affine=True, track_running_stats=True batch normalization is trainable here")
        return L.BatchNorm(c, eps=desc.eps, momentum=desc.momentum, dtype=dtype)
    if isinstance(desc, S.Dropout):
        return L.Dropout(desc.p)
    if isinstance(desc, S.LeakyReLU):
        return L.LeakyReLU(desc.negative_slope)
    simple = {S.ReLU: L.ReLU, S.Tanh: L.Tanh, S.Sigmoid: L.Sigmoid, S.Flatten: L.Flatten}
    if type(desc) in simple:
        return simple[type(desc)]()
    raise ModelError(
        f"{desc.label()}: layer type {type(desc).__name__!r} has no trainable counterpart; "
        "supported: Conv, MaxPool, AvgPool, GlobalAvgPool, Linear, BatchNorm, Dropout, ReLU, LeakyReLU, Tanh, Sigmoid, Flatten, Sequential"
    )


class Model:
    """Trainable layers for ``description`` on per-image inputs of ``input_shape`` ``(C, *S)``.

    Parameters
    ----------
    description : refconv.summary.Layer
        A ``Sequential`` (possibly nested) of supported leaf descriptions.
    input_shape : tuple of int
        Shape of one input image, without the batch axis.
    rng : numpy.random.Generator
        Source of the initial weights.
    dtype : numpy dtype
        Parameter and activation type (float32 for training, float64 for checks).
    init : str
        ``'auto'`` (see the module docstring) or an initializer name for every layer.
    """

    def __init__(
        self, description: S.Layer, input_shape: tuple[int, ...], *, rng: np.random.Generator, dtype: Any = np.float64, init: str = "auto"
    ) -> None:
        if not isinstance(description, S.Layer):
            raise ModelError(f"description={description!r}: expected a refconv.summary layer description")
        self.description = description
        self.input_shape = tuple(int(v) for v in input_shape)
        self.output_shape = tuple(description.output_shape(self.input_shape))  # validates every layer
        self.dtype = np.dtype(dtype)
        leaves = list(_leaves(description))
        self.descriptions = leaves
        self.layers: list[L.Layer] = []
        self.shapes: list[tuple[int, ...]] = [self.input_shape]
        shape = self.input_shape
        for i, leaf in enumerate(leaves):
            self.layers.append(_build(leaf, shape, _init_for(leaves, i) if init == "auto" else init, rng, self.dtype))
            shape = tuple(leaf.output_shape(shape))
            self.shapes.append(shape)

    # -- computation -----------------------------------------------------------------

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x.shape={x.shape}: the model expects (N, {', '.join(map(str, self.input_shape))})")
        return x.astype(self.dtype, copy=False)

    def forward(self, x: np.ndarray, *, training: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """Outputs (logits) for a batch ``x`` of shape ``(N, *input_shape)``."""
        x = self._check_input(x)
        for layer in self.layers:
            x = layer.forward(x, training=training, rng=rng)
        return x

    def trace(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """``(label, output)`` of every layer in evaluation mode: the activation maps."""
        x = self._check_input(x)
        out = []
        for desc, layer in zip(self.descriptions, self.layers):
            x = layer.forward(x)
            out.append((desc.label(), x))
        return out

    def backward(self, dy: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Back-propagate ``dL/d(output)``; fills every layer's ``grads``; returns ``dL/dx``.

        ``input_grad=False`` (a training step, which needs the parameter
        gradients only): a first convolution layer skips its input gradient
        and ``None`` is returned.
        """
        from .conv import Conv

        last = len(self.layers) - 1
        for i, layer in enumerate(reversed(self.layers)):
            if i == last and not input_grad and isinstance(layer, Conv):
                layer.backward(dy, input_grad=False)
                return None
            dy = layer.backward(dy)
        return dy

    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Class indices (argmax of the outputs) in evaluation mode."""
        x = self._check_input(x)
        out = [self.forward(x[i : i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    # -- named state -----------------------------------------------------------------

    def parameters(self) -> dict[str, np.ndarray]:
        """``"<i>.<name>" -> array`` (the arrays themselves, updated in place by optimizers)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    def gradients(self) -> dict[str, np.ndarray]:
        """Gradients from the last :meth:`backward`, with the keys of :meth:`parameters`."""
        return {f"{i}.{k}": layer.grads[k] for i, layer in enumerate(self.layers) for k in layer.params}

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state (batch-norm running statistics)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.buffers.items()}

    def num_params(self) -> int:
        return int(sum(v.size for v in self.parameters().values()))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers, as ``param/<key>`` and ``buffer/<key>``."""
        out = {f"param/{k}": v for k, v in self.parameters().items()}
        out.update({f"buffer/{k}": v for k, v in self.buffers().items()})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays from :meth:`state_dict`'s form into this model (shapes must match)."""
        for prefix, own in (("param/", self.parameters()), ("buffer/", self.buffers())):
            for k, v in own.items():
                key = prefix + k
                if key not in state:
                    raise ModelError(f"state: missing {key!r}")
                src = np.asarray(state[key])
                if src.shape != v.shape:
                    raise ModelError(f"state[{key!r}].shape={src.shape}: expected {v.shape}")
                v[...] = src

    def __repr__(self) -> str:
        return "Model([" + ", ".join(map(repr, self.layers)) + "])"


def lenet(image_size: int = 8, num_classes: int = 10) -> S.Sequential:
    """The default LeNet-style network for ``image_size`` x ``image_size`` digits.

    Two convolution / batch-norm / ReLU / max-pool stages, then fully
    connected layers.  For 8x8 (the digits) 3x3 'same' kernels keep the maps
    8 -> 4 -> 2, then dropout (p = 0.25), 128 hidden units, dropout, 10
    outputs; for 28x28 (MNIST) 5x5 kernels and 120, 84, 10 units as in
    LeNet-5: 28 -> 14 -> 10 -> 5.

    >>> lenet(8).output_shape((1, 8, 8)), lenet(8).num_params((1, 8, 8))
    ((10,), 53194)
    >>> lenet(28).output_shape((1, 28, 28))
    (10,)
    """
    if image_size == 28:
        c1, c2, k, pad2 = 6, 16, 5, 0
        head = [S.Linear(120, name="fc1"), S.ReLU(), S.Linear(84, name="fc2"), S.ReLU()]
    else:
        c1, c2, k, pad2 = 32, 64, 3, 1
        # dropout: over seeds 0-9 the test accuracy falls below 0.98 once instead of twice
        head = [S.Dropout(0.25, name="drop1"), S.Linear(128, name="fc1"), S.ReLU(), S.Dropout(0.25, name="drop2")]
    return S.Sequential(
        [
            S.Conv(c1, k, padding=k // 2, name="conv1"), S.BatchNorm(name="bn1"), S.ReLU(), S.MaxPool(2, name="pool1"),
            S.Conv(c2, k, padding=pad2, name="conv2"), S.BatchNorm(name="bn2"), S.ReLU(), S.MaxPool(2, name="pool2"),
            S.Flatten(), *head, S.Linear(num_classes, name="out"),
        ]
    )


#: the networks ``refconv train --arch`` builds by name: ``'default'`` is :func:`lenet` for the image size,
#: ``'lenet5'`` the zoo's LeNet-5 (:func:`refconv.summary.zoo.lenet5`) on 32x32 inputs
ARCHITECTURES = ("default", "lenet5")


def architecture(name: str, image_shape: tuple[int, ...], num_classes: int = 10) -> tuple[S.Layer, tuple[int, ...]]:
    """``(description, input_shape)`` of the network ``name`` for images of ``image_shape`` ``(C, H, W)``.

    ``'lenet5'`` takes one-channel images of at most 32x32 and declares the
    input 32x32 (as in the paper, smaller images are zero-padded to it, see
    :func:`refconv.nn.data.pad_images`).

    >>> desc, shape = architecture('lenet5', (1, 28, 28))
    >>> shape, desc.output_shape(shape), desc.num_params(shape)
    ((1, 32, 32), (10,), 61706)
    >>> architecture('lenet5', (3, 28, 28))
    Traceback (most recent call last):
        ...
    refconv.nn.model.ModelError: arch='lenet5': takes one-channel images of at most 32x32, not (3, 28, 28)
    """
    shape = tuple(int(v) for v in image_shape)
    if name == "default":
        return lenet(shape[-1], num_classes), shape
    if name == "lenet5":
        from ..summary.zoo import lenet5

        if len(shape) != 3 or shape[0] != 1 or shape[1] > 32 or shape[2] > 32:
            raise ModelError(f"arch='lenet5': takes one-channel images of at most 32x32, not {shape}")
        return lenet5(num_classes).layers, (1, 32, 32)
    raise ModelError(f"arch={name!r}: expected one of {', '.join(repr(a) for a in ARCHITECTURES)}")


def description_from_dict(d: dict[str, Any]) -> S.Layer:
    """Inverse of ``Layer.to_dict()``: the summary's own file-form reader."""
    from ..summary.io import layer_from_dict

    return layer_from_dict(d, "network")


def description_to_json(desc: S.Layer) -> str:
    """A network description as JSON text (what checkpoints store).

    >>> from refconv import summary as S
    >>> net = S.Sequential([S.Conv(4, 3, padding=((0, 1), 1)), S.ReLU()])
    >>> description_from_json(description_to_json(net)) == net
    True
    """
    return json.dumps(desc.to_dict(), sort_keys=True)


def description_from_json(text: str) -> S.Layer:
    """Inverse of :func:`description_to_json`."""
    try:
        return description_from_dict(json.loads(text))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ModelError(f"network description: not valid JSON ({exc})") from None
