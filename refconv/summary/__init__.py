"""Networks as layer descriptions: the vocabulary, the model zoo, and parameter/MAC/memory tables.

:mod:`refconv.summary.layers` holds the vocabulary (frozen dataclasses that
know their output shape and parameter count), :mod:`~refconv.summary.zoo` the
published architectures, :mod:`~refconv.summary.table` the per-layer summary
and :mod:`~refconv.summary.io` networks from TOML or JSON files.

>>> from refconv.summary import Conv, MaxPool, Sequential
>>> Sequential([Conv(96, 11, stride=4), MaxPool(3, 2)]).output_shape((3, 227, 227))
(96, 27, 27)
>>> from refconv.summary import zoo, summarize
>>> summarize(zoo.get("resnet18")).params
11689512
"""

from .layers import (
    LAYER_TYPES,
    LRN,
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    LeakyReLU,
    Linear,
    MaxPool,
    ReLU,
    Residual,
    Sequential,
    SideOutput,
    Sigmoid,
    Softmax,
    Tanh,
)
from .table import Summary, summarize
from .zoo import Network

__all__ = [
    "Network",
    "Summary",
    "summarize",
    "LAYER_TYPES",
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
]
