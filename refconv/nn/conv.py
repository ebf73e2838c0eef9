"""Convolution and pooling layers on the fast engine (:mod:`refconv.fast`).

Layouts: ``x`` is ``(N, C_in, *S)``, the convolution weight ``(C_out,
C_in // groups, *K)`` and the bias ``(C_out,)``; any number of spatial axes.
The forward pass is ``fast.conv`` (cross-correlation, as in DL frameworks);
the backward pass is the general operation again (specs/backprop.md):

    dx = conv_grad_input(dy, w, x.shape)     (input dilation = stride, kernel flipped and transposed)
    dw = conv_grad_weight(x, dy, w.shape)    (x correlated with dy; stride and dilation trade places)
    db = conv_grad_bias(dy) = sum of dy over every axis but 1

Pooling: ``max_pool``/``max_pool_grad`` (the gradient goes to the first
maximum of each window) and ``avg_pool``/``avg_pool_grad``.

Examples
--------
>>> import numpy as np
>>> conv = Conv(1, 1, 2, rng=np.random.default_rng(0), bias=False)
>>> conv.params['weight'][...] = [[[[1.0, 2.0], [3.0, 4.0]]]]
>>> conv.forward(np.arange(9.0).reshape(1, 1, 3, 3)).tolist()
[[[[27.0, 37.0], [57.0, 67.0]]]]
>>> pool = MaxPool(2)
>>> pool.forward(np.arange(16.0).reshape(1, 1, 4, 4)).tolist()
[[[[5.0, 7.0], [13.0, 15.0]]]]
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np

from .. import fast
from .init import get_initializer
from .layers import Layer

__all__ = ["Conv", "MaxPool", "AvgPool", "GlobalAvgPool"]


class Conv(Layer):
    """Convolution with stride, padding, dilation and groups (``fast.conv`` keywords).

    ``kernel_size`` is an int or one int per spatial axis; the number of
    spatial axes is ``ndim`` (2 by default).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        *,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        ndim: int = 2,
        rng: np.random.Generator,
        init: str = "he_normal",
        dtype: Any = np.float64,
    ) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}={v!r}: must be an integer >= 1")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups}: must divide in_channels={in_channels} and out_channels={out_channels}")
        k = (kernel_size,) * ndim if isinstance(kernel_size, (int, np.integer)) else tuple(kernel_size)
        if len(k) != ndim or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in k):
            raise ValueError(f"kernel_size={kernel_size!r}: expected one int >= 1 or {ndim} of them")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=int(groups))
        shape = (self.out_channels, self.in_channels // groups, *(int(v) for v in k))
        self.params["weight"] = get_initializer(init)(shape, rng, dtype)
        if bias:
            self.params["bias"] = np.zeros(self.out_channels, dtype=dtype)

    def forward(self, x: np.ndarray, *, training: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        self._cache = x
        return fast.conv(x, self.params["weight"], self.params.get("bias"), **self.kwargs)

    @overload
    def backward(self, dy: np.ndarray) -> np.ndarray: ...

    @overload
    def backward(self, dy: np.ndarray, *, input_grad: bool) -> np.ndarray | None: ...

    def backward(self, dy: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Fills ``grads``; returns ``dL/dx`` (``None`` with ``input_grad=False``: the first layer needs none)."""
        x = self._cached()
        # dx and dw at once (refconv.fast.conv_backward: two threads on one layer's backward pass)
        dx, self.grads["weight"], db = fast.conv_backward(dy, x, self.params["weight"], bias="bias" in self.params,
                                                           input_grad=input_grad, **self.kwargs)
        if db is not None:
            self.grads["bias"] = db
        return dx

    def __repr__(self) -> str:
        k = self.params["weight"].shape[2:]
        return f"Conv({self.in_channels}, {self.out_channels}, {k}, {self.kwargs})"


class MaxPool(Layer):
    """Max pooling (``fast.max_pool`` keywords; ``stride=None`` means the kernel size)."""

    def __init__(self, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.kwargs = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)

    def forward(self, x: np.ndarray, *, training: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        self._cache = x
        return fast.max_pool(x, self.kernel_size, **self.kwargs)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return fast.max_pool_grad(dy, self._cached(), self.kernel_size, **self.kwargs)

    def __repr__(self) -> str:
        return f"MaxPool({self.kernel_size}, {self.kwargs})"


class AvgPool(Layer):
    """Average pooling (``fast.avg_pool`` keywords)."""

    def __init__(
        self, kernel_size: Any, *, stride: Any = None, padding: Any = 0, ceil_mode: bool = False, count_include_pad: bool = True
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.kwargs = dict(stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)

    def forward(self, x: np.ndarray, *, training: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        self._cache = x.shape
        return fast.avg_pool(x, self.kernel_size, **self.kwargs)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return fast.avg_pool_grad(dy, self._cached(), self.kernel_size, **self.kwargs)

    def __repr__(self) -> str:
        return f"AvgPool({self.kernel_size}, {self.kwargs})"


class GlobalAvgPool(Layer):
    """``(N, C, *S) -> (N, C, 1, ..., 1)``, the mean over every spatial axis.

    >>> import numpy as np
    >>> g = GlobalAvgPool()
    >>> g.forward(np.arange(8.0).reshape(1, 2, 2, 2)).ravel().tolist()
    [1.5, 5.5]
    >>> g.backward(np.ones((1, 2, 1, 1))).ravel().tolist()
    [0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]
    """

    def forward(self, x: np.ndarray, *, training: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        self._cache = x.shape
        return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape = self._cached()
        count = int(np.prod(shape[2:]))
        return np.broadcast_to(dy / count, shape).copy()
