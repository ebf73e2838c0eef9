"""The transposed convolution's gradients and max unpooling, vectorized (the oracle's definitions).

* ``conv_transpose_grad_input``: :func:`refconv.fast.conv` of ``dy`` with ``w``
  (the adjoint of the transposed convolution), the ``floor(output_padding / s)``
  outputs past the input's last sample cut off;
* ``conv_transpose_grad_weight``: :func:`refconv.fast.conv_grad_weight` with
  ``dy`` as the input and ``x`` (extended by those zero positions) as the
  output gradient;
* ``max_unpool``: zeros of the unpooled shape, ``y`` written at the flat
  indices of each ``(n, c)`` plane (the last write in row-major order of ``y``
  wins where an index repeats, as in the oracle).

Examples
--------
>>> import numpy as np
>>> conv_transpose_grad_input(np.ones((1, 1, 6)), np.ones((1, 1, 2)), dilation=2, output_padding=1).tolist()
[[[2.0, 2.0, 2.0]]]
>>> conv_transpose_grad_weight(np.ones((1, 1, 3)), np.ones((1, 1, 6)), (1, 1, 2), dilation=2, output_padding=1).tolist()
[[[3.0, 3.0]]]
>>> max_unpool(np.array([[[7., 9.]]]), np.array([[[1, 2]]]), 2).tolist()
[[[0.0, 7.0, 9.0, 0.0]]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..params import ConvParamError, per_axis, unpool_params
from .conv import conv, conv_grad_weight
from .dtypes import as_array

__all__ = ["conv_transpose_grad_input", "conv_transpose_grad_weight", "max_unpool"]


def _extra(d: int, stride: Any, output_padding: Any, dilation: Any) -> tuple[int, ...]:
    """``floor(op / s)`` per axis: outputs of the adjoint convolution past the transposed op's input
    (``output_padding`` below the stride or the dilation, as the transposed convolution requires)."""
    s, op = per_axis("stride", stride, d, minimum=1), per_axis("output_padding", output_padding, d, minimum=0)
    dl = per_axis("dilation", dilation, d, minimum=1)
    if any(o >= max(si, di) for o, si, di in zip(op, s, dl)):
        raise ConvParamError(f"output_padding={tuple(op)}: must be smaller than the stride {tuple(s)} or the "
                             f"dilation {tuple(dl)} on each axis")
    return tuple(o // si for o, si in zip(op, s))


def conv_transpose_grad_input(dy: Any, w: Any, *, stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                              dilation: Any = 1, groups: int = 1, **kw: Any) -> np.ndarray:
    """Gradient of ``conv_transpose`` with respect to ``x``; ``kw``: :func:`refconv.fast.conv`'s engine keywords."""
    out = conv(dy, w, stride=stride, padding=padding, dilation=dilation, groups=groups, **kw)
    extra = _extra(out.ndim - 2, stride, output_padding, dilation)
    return out[(slice(None), slice(None)) + tuple(slice(0, n - e) for n, e in zip(out.shape[2:], extra))]


def conv_transpose_grad_weight(x: Any, dy: Any, weight_shape: Any, *, stride: Any = 1, padding: Any = 0,
                               output_padding: Any = 0, dilation: Any = 1, groups: int = 1, **kw: Any) -> np.ndarray:
    """Gradient of ``conv_transpose`` with respect to ``w`` ``(C_in, C_out/groups, *K)``."""
    xa = np.asarray(x)
    if xa.ndim < 3:
        raise ConvParamError(f"x.ndim={xa.ndim}: x must have shape (N, C_in, *spatial)")
    extra = _extra(xa.ndim - 2, stride, output_padding, dilation)
    if any(extra):
        # positions past the input's last sample: zero output gradient of the adjoint convolution
        xa = np.pad(xa, [(0, 0), (0, 0)] + [(0, e) for e in extra])
    return conv_grad_weight(dy, xa, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, **kw)


def max_unpool(y: Any, indices: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0,
               output_size: Any = None) -> np.ndarray:
    """Max unpooling: ``out[n, c].flat[indices[n, c, p]] = y[n, c, p]`` in zeros of the unpooled shape."""
    ya, ia = as_array("y", y), np.asarray(indices)
    if ia.dtype.kind not in "iu":
        raise ConvParamError(f"indices.dtype={ia.dtype}: indices must be integers")
    up = unpool_params(ya.shape, ia.shape, kernel_size, stride=stride, padding=padding, output_size=output_size)
    plane = int(np.prod(up.output_shape[2:], dtype=np.int64))
    nc = up.output_shape[0] * up.output_shape[1]
    taps = int(np.prod(ia.shape[2:], dtype=np.int64))
    flat = ia.reshape(nc, taps).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= plane):
        where = tuple(int(v) for v in np.argwhere((ia < 0) | (ia >= plane))[0])
        raise ConvParamError(f"indices[{', '.join(map(str, where))}]={int(ia[where])}: outside the unpooled plane of "
                             f"{plane} elements (output shape {up.output_shape})")
    out = np.zeros((nc, plane), dtype=ya.dtype)
    # row r of the planes, column the flat index; repeated indices: the last in C order wins (numpy assignment)
    out[np.arange(nc)[:, None], flat] = ya.reshape(nc, taps)
    return out.reshape(up.output_shape)
