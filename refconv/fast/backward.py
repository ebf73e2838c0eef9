"""All gradients of one convolution at once: :func:`conv_backward`.

A training step needs both gradients of a layer, ``dx`` and ``dw`` (and
``db``), from the same ``dy``; they do not depend on each other.  This runs
the weight gradient on a worker thread while the calling thread computes the
input gradient, so two cores work on one layer's backward pass however small
its kernels are; a caller done first takes the weight gradient's remaining
tasks (:func:`~refconv.fast.parallel.help_until`).  Each gradient is the very
function :func:`conv_grad_input` / :func:`conv_grad_weight` /
:func:`conv_grad_bias` computes, with the same
summation order (fixed by the shapes and the memory cap), so the results are
those of the separate calls with ``max_memory`` set to the cap each ran under.

Memory: the two gradients in flight share the cap (``max_memory`` or the cap
in effect), half each; where one of them needs more than half, they run one
after the other under the whole cap.

Examples
--------
>>> import numpy as np
>>> x = np.arange(8.).reshape(1, 1, 8); w = np.array([[[1., 2., 3.]]])
>>> dy = np.ones((1, 1, 6))
>>> dx, dw, db = conv_backward(dy, x, w)
>>> dx.tolist(), dw.tolist(), db.tolist()
([[[1.0, 3.0, 6.0, 6.0, 6.0, 6.0, 5.0, 3.0]]], [[[15.0, 21.0, 27.0]]], [6.0])
>>> conv_backward(dy, x, w, bias=False, input_grad=False)[::2]
(None, None)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .memory import MemoryCapError, resolve_cap
from .parallel import _executor, help_until, inline, serial_here, single_threaded_blas, workers

__all__ = ["conv_backward"]


def conv_backward(
    dy: Any,
    x: Any,
    w: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    flip: Any = False,
    bias: bool = True,
    input_grad: bool = True,
    algorithm: str = "auto",
    max_memory: int | None = None,
    padding_mode: str = "zeros",
    layout: Any = None,
    weight_layout: Any = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)`` of ``y = conv(x, w, b, ...)`` for the upstream gradient ``dy``.

    ``dx`` is :func:`conv_grad_input` (``None`` with ``input_grad=False``: a
    first layer needs none), ``dw`` :func:`conv_grad_weight`, ``db``
    :func:`conv_grad_bias` (``None`` with ``bias=False``); the keywords are
    those of :func:`conv`, ``layout`` and ``weight_layout`` included.  The two
    gradients run at once (see the module docstring).
    """
    from . import conv_grad_bias, conv_grad_input, conv_grad_weight  # the public functions (layout keywords)

    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip, algorithm=algorithm,
              padding_mode=padding_mode, layout=layout, weight_layout=weight_layout)
    x_shape, w_shape = np.shape(x), np.shape(w)
    cap = resolve_cap(max_memory)
    act: dict[str, Any] = {"layout": layout}  # (the public function's layout keyword)
    db = conv_grad_bias(dy, **act) if bias else None
    if not input_grad:
        return None, conv_grad_weight(x, dy, w_shape, max_memory=cap, **kw), db
    if workers() < 2 or serial_here():
        return (conv_grad_input(dy, w, x_shape, max_memory=cap, **kw), conv_grad_weight(x, dy, w_shape, max_memory=cap, **kw), db)
    half = cap // 2
    with single_threaded_blas():
        # dw on a worker thread and dx here, each running its own tasks on its own thread
        pending = _executor().submit(conv_grad_weight, x, dy, w_shape, max_memory=half, **kw)
        try:
            try:
                with inline():
                    dx = conv_grad_input(dy, w, x_shape, max_memory=half, **kw)
            except MemoryCapError:
                dx = None
            # dx done: take tasks of dw's partition while the worker still runs them (the same bits)
            help_until(pending)
        except BaseException:
            pending.exception()  # wait: no work of this call outlives it
            raise
        try:
            dw = pending.result()
        except MemoryCapError:
            dw = None
    # a gradient over half the cap: that one again, alone, under the whole cap
    if dx is None:
        dx = conv_grad_input(dy, w, x_shape, max_memory=cap, **kw)
    if dw is None:
        dw = conv_grad_weight(x, dy, w_shape, max_memory=cap, **kw)
    return dx, dw, db
