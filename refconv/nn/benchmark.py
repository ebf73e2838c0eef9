"""One training step of the default network, in refconv and in PyTorch on the CPU.

:func:`training_step_case` is what ``refconv bench`` times side by side, for
the default network of ``refconv train`` on the digits and for LeNet-5 on
Fashion-MNIST (``refconv train --arch lenet5``): the same description, the same initial weights
(copied from the refconv model into PyTorch), the same batch of images, the
same step (forward in training mode, softmax cross-entropy, backward, Adam
update), float32 in both.  The refconv side runs as training does: BLAS
single-threaded, the convolutions on the fast engine's worker threads;
PyTorch uses its own intra-op threads as configured by the caller.

``flop`` counts ``6 * MACs * batch``: the forward pass costs ``2 * MACs``
per image (a multiply and an add per multiply-add), the backward pass twice
that (gradient of the input and gradient of the weights); the MACs are the
summary's count of the weighted sums (batch norm, pooling, activations and the
optimizer are not counted).

Examples
--------
>>> lenet(8).macs((1, 8, 8))          # 32*8*8*9 + 64*4*4*32*9 + 256*128 + 128*10
347392
>>> step_flop(lenet(8), (1, 8, 8), batch=64)
133398528

``training_step_case(batch=64)`` returns that figure with the two callables
(building the PyTorch side imports torch, which takes seconds).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import summary as S
from ..fast.parallel import single_threaded_blas
from .data import load_digits_split
from .losses import softmax_cross_entropy
from .model import Model, lenet
from .optim import Adam

__all__ = ["training_step_case", "to_torch", "step_flop", "NETWORKS", "FASHION_MNIST"]


def _torch_padding(p: Any) -> Any:
    if isinstance(p, (int, np.integer)):
        return int(p)
    if isinstance(p, tuple) and all(isinstance(v, (int, np.integer)) for v in p):
        return tuple(int(v) for v in p)
    raise ValueError(f"padding={p!r}: only symmetric int padding has a direct PyTorch layer here")


def to_torch(model: Model) -> Any:
    """A ``torch.nn.Sequential`` equal to ``model``, with its weights copied (2-D images only).

    Raises ``ImportError`` without torch and ``ValueError`` for a layer
    PyTorch cannot express directly.
    """
    import torch
    from torch import nn

    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[model.dtype]
    mods = []
    m: Any  # the torch module of each layer
    for desc, layer, shape in zip(model.descriptions, model.layers, model.shapes):
        if isinstance(desc, S.Conv):
            w = layer.params["weight"]
            if w.ndim != 4:
                raise ValueError(f"{desc.label()}: only 2-D convolutions are converted")
            m = nn.Conv2d(shape[0], w.shape[0], w.shape[2:], stride=desc.stride, padding=_torch_padding(desc.padding),
                          dilation=desc.dilation, groups=desc.groups, bias=desc.bias)
        elif isinstance(desc, S.MaxPool):
            m = nn.MaxPool2d(desc.kernel_size, desc.stride, _torch_padding(desc.padding), desc.dilation, ceil_mode=desc.ceil_mode)
        elif isinstance(desc, S.AvgPool):
            m = nn.AvgPool2d(desc.kernel_size, desc.stride, _torch_padding(desc.padding), desc.ceil_mode, desc.count_include_pad)
        elif isinstance(desc, S.BatchNorm):
            cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            m = cls(shape[0], eps=desc.eps, momentum=desc.momentum)
            m.running_mean.copy_(torch.from_numpy(np.array(layer.buffers["running_mean"])))
            m.running_var.copy_(torch.from_numpy(np.array(layer.buffers["running_var"])))
        elif isinstance(desc, S.Linear):
            m = nn.Linear(shape[0], desc.out_features, bias=desc.bias)
        elif isinstance(desc, S.Dropout):
            m = nn.Dropout(desc.p)
        elif isinstance(desc, S.LeakyReLU):
            m = nn.LeakyReLU(desc.negative_slope)
        elif type(desc) in (S.ReLU, S.Tanh, S.Sigmoid, S.Flatten):
            m = {S.ReLU: nn.ReLU, S.Tanh: nn.Tanh, S.Sigmoid: nn.Sigmoid, S.Flatten: nn.Flatten}[type(desc)]()
        else:
            raise ValueError(f"{desc.label()}: no PyTorch counterpart for {type(desc).__name__}")
        m = m.to(dtype)
        with torch.no_grad():
            for name, value in layer.params.items():
                getattr(m, name).copy_(torch.from_numpy(np.array(value)))
        mods.append(m)
    return nn.Sequential(*mods)


def step_flop(description: S.Layer, input_shape: tuple[int, ...], *, batch: int) -> int:
    """``6 * MACs * batch``: floating-point operations of one training step (see the module docstring)."""
    return int(6 * batch * description.macs(tuple(input_shape)))


#: where Debian's ``dataset-fashion-mnist`` package puts the Fashion-MNIST IDX files
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

#: the networks :func:`training_step_case` times: the ``refconv train`` default on the digits, and the zoo's
#: LeNet-5 on Fashion-MNIST padded to 32x32 (``refconv train --arch lenet5``)
NETWORKS = ("digits", "lenet5")


def _lenet5_batch(batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """A batch of Fashion-MNIST training images padded to 32x32, or uniform random images of that shape (same
    cost) when the data set is not installed."""
    from .data import DataError, load_mnist, pad_images

    try:
        ds = pad_images(load_mnist(FASHION_MNIST), 32)
    except DataError:
        return rng.random((batch, 1, 32, 32)).astype(np.float32), rng.integers(0, 10, batch), "random 32x32 images"
    idx = rng.choice(len(ds.x_train), size=batch, replace=False)
    return ds.x_train[idx].astype(np.float32), ds.y_train[idx], "fashion-mnist 32x32"


def training_step_case(batch: int = 64, seed: int = 0, network: str = "digits") -> dict[str, Any]:
    """``dict(name, refconv, torch, flop)``: no-argument callables running one training step each.

    ``network``: ``'digits'`` (the default network of ``refconv train`` on the
    8x8 digits) or ``'lenet5'`` (LeNet-5 from the zoo on Fashion-MNIST padded
    to 32x32, random images of that size when the data set is absent).
    ``torch`` is None when PyTorch is not installed.  Each call updates its own
    copy of the weights, as a training loop would.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch={batch!r}: must be an integer >= 1")
    if network not in NETWORKS:
        raise ValueError(f"network={network!r}: expected one of {', '.join(map(repr, NETWORKS))}")
    rng = np.random.default_rng(seed)
    if network == "lenet5":
        from .model import architecture

        x, y, data = _lenet5_batch(batch, rng)
        desc, shape = architecture("lenet5", (1, 32, 32))
        name = f"train step lenet5 {data} batch {batch}"
    else:
        ds = load_digits_split()
        idx = rng.choice(len(ds.x_train), size=batch, replace=batch > len(ds.x_train))
        x, y = ds.x_train[idx].astype(np.float32), ds.y_train[idx]
        desc, shape = lenet(8, ds.num_classes), ds.image_shape
        name = f"train step lenet digits 8x8 batch {batch}"
    model = Model(desc, shape, rng=np.random.default_rng(seed), dtype=np.float32)
    opt = Adam(lr=3e-3)
    params = model.parameters()

    def refconv_step() -> None:
        # BLAS single-threaded, as in training (refconv.nn.train.train)
        with single_threaded_blas():
            out = model.forward(x, training=True, rng=rng)
            _, dout = softmax_cross_entropy(out, y)
            model.backward(dout, input_grad=False)
            opt.step(params, model.gradients())

    return {
        "name": name,
        "refconv": refconv_step,
        "torch": _torch_step(model, x, y),
        "flop": step_flop(desc, shape, batch=batch),
    }


def _torch_step(model: Model, x: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    net = to_torch(model)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(tx), ty)
        loss.backward()
        opt.step()

    return torch_step
