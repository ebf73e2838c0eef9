"""A small trainable CNN on the fast engine.

A network is described once in the :mod:`refconv.summary` vocabulary; the
same description gives the summary table and, through
:class:`~refconv.nn.model.Model`, trainable layers whose convolution and
pooling run on :mod:`refconv.fast` (every backward pass is checked against
:mod:`refconv.oracle` and central differences in the tests).

=====================  ====================================================
:mod:`.layers`         Linear, Flatten, ReLU, LeakyReLU, Tanh, Sigmoid,
                       Dropout, BatchNorm (forward and backward)
:mod:`.conv`           Conv, MaxPool, AvgPool, GlobalAvgPool on refconv.fast
:mod:`.losses`         softmax cross-entropy, 1/2 (t - y)^2
:mod:`.optim`          SGD, momentum, Adam, weight decay, clipping by norm
:mod:`.init`           He and Xavier initialization
:mod:`.data`           scikit-learn digits (fixed split), MNIST IDX files
:mod:`.model`          Model from a description; the default ``lenet``
:mod:`.train`          the training loop, evaluation, confusion matrix
:mod:`.checkpoint`     atomic ``.npz`` checkpoints, read without pickle
:mod:`.images`         digit images (PNG, ``.npy``) for prediction
:mod:`.plots`          curves, first-layer filters, feature maps (matplotlib)
:mod:`.benchmark`      one training step, refconv and PyTorch side by side
=====================  ====================================================

Submodules load on first use.

Examples
--------
>>> import numpy as np
>>> from refconv import nn, summary as S
>>> net = S.Sequential([S.Conv(4, 3, padding=1), S.ReLU(), S.MaxPool(2), S.Flatten(), S.Linear(10)])
>>> model = nn.Model(net, (1, 8, 8), rng=np.random.default_rng(0))
>>> logits = model.forward(np.zeros((2, 1, 8, 8)), training=True)
>>> loss, dlogits = nn.losses.softmax_cross_entropy(logits, np.array([3, 7]))
>>> dx = model.backward(dlogits)
>>> nn.optim.Adam(lr=1e-3).step(model.parameters(), model.gradients())
>>> dx.shape, sorted(model.gradients())[:2]
((2, 1, 8, 8), ['0.bias', '0.weight'])
"""

import importlib
from typing import Any

_SUBMODULES = (
    "layers", "conv", "losses", "optim", "init", "data", "model", "train", "checkpoint", "images", "plots", "benchmark",
)
_NAMES = {"Model": "model", "lenet": "model", "TrainConfig": "train", "load_dataset": "data"}
__all__ = list(_SUBMODULES) + list(_NAMES)  # noqa: PLE0604 - names, built from the two tables


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'refconv.nn' has no attribute {name!r}")
