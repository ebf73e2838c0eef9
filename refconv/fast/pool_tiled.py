"""Average-pooling gradients whose windows tile the input: stride equal to the kernel, dilation 1, no padding.

Each input element then lies in at most one window, at tap ``t`` (row-major)
of window ``p``: ``x[n, c, p*K + k_t]``.  The taps are strided views
``x[..., k_0::K_0, k_1::K_1, ...]`` (cropped to the windows), whose inner loops
run over whole output rows (one strided pass per tap, no padded copy, no scatter-add):

* average pooling: ``dx[n, c, p*K + k] = dy / divisor + 0.0`` for every tap
  (``+ 0.0``: a sum into zeros, as the tap-by-tap scatter, gives ``+0.0`` for ``-0.0``).

Elements past the last window get zero.

Examples
--------
>>> import numpy as np
>>> from refconv.params import pool_params
>>> tiled_avg_grad(np.array([[[[-0.0, 1.0]]]]), pool_params((1, 1, 2, 4), 2), np.dtype(np.float64))[0, 0].tolist()
[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["tiles", "tiled_avg_grad"]


def tiles(pp, pads) -> bool:
    """Whether the windows of ``pp`` tile the input: stride == kernel, dilation 1, no padding (``pads`` from
    the ceil-mode extent included)."""
    return (tuple(pp.stride) == tuple(pp.kernel_size) and all(d == 1 for d in pp.dilation)
            and all(lo == 0 and hi == 0 for lo, hi in pads))


def _taps(pp):
    """The strided view of each tap, row-major: ``(slice(None), slice(None), k_0::K_0, ...)`` up to the last window."""
    K, O = pp.kernel_size, pp.output_spatial
    for k in itertools.product(*(range(v) for v in K)):
        yield (slice(None), slice(None), *(slice(ki, o * kk, kk) for ki, kk, o in zip(k, K, O)))


def tiled_avg_grad(g: np.ndarray, pp, dtype) -> np.ndarray:
    """``dx[n, c, p*K + k] = g[n, c, p] + 0.0`` (``g = dy / divisor``), zero outside the windows."""
    dx = np.zeros(pp.input_shape, dtype=dtype)
    zero = dtype.type(0)
    for sl in _taps(pp):
        np.add(g, zero, out=dx[sl])
    return dx
