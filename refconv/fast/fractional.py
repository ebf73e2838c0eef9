"""Fractional max pooling, vectorized: every window of every plane gathered at once, one ``argmax`` per window.

The definition of ``specs/pooling.md`` §7.  The window starts are the exact ones of
:func:`refconv.params.fractional_pool_params` (PyTorch's interval formula in exact
arithmetic, the last window at ``n - k``); the values are gathered in the input's own dtype
(a maximum rounds nothing, so the result equals the oracle's bit for bit).  ``np.argmax``
over the taps in row-major window order returns the first maximum and the first NaN: the
tie rule of :func:`refconv.pooling.max_pool`.

Examples
--------
>>> import numpy as np
>>> x = np.array([[[5, 1, 2, 7, 3, 0, 4, 6, 9, 8]]])
>>> fractional_max_pool(x, 2, 4, [[[0.5]]], return_indices=True)   # windows start at 0, 3, 5, 8
(array([[[5, 7, 4, 9]]]), array([[[0, 3, 6, 8]]]))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..params import ConvParamError, fractional_pool_params
from .dtypes import as_array
from .memory import Budget, get_memory_cap, nbytes

__all__ = ["fractional_max_pool"]


def _windows(fp: Any, nc: int) -> tuple[np.ndarray, ...]:
    """Per axis, the input coordinate of every (plane, output position, tap): shape ``(NC, *O, prod(K))``."""
    d = len(fp.kernel_size)
    taps = np.array(list(np.ndindex(*fp.kernel_size)), dtype=np.int64).reshape(-1, d)  # row-major tap order
    out = []
    for i, st in enumerate(fp.starts):
        # the starts of axis i (NC, o_i) on output axis i, plus the tap's offset on that axis
        shape = (nc,) + tuple(fp.output_spatial[i] if j == i else 1 for j in range(d)) + (1,)
        out.append(st.reshape(shape) + taps[:, i])
    return tuple(out)


def fractional_max_pool(x: Any, kernel_size: Any, output_size: Any, samples: Any, *,
                        return_indices: bool = False) -> Any:
    """:func:`refconv.pooling.fractional_max_pool`, vectorized (same arguments, same exact result).

    Parameters
    ----------
    x : array_like, shape (N, C, *S)
        Integers or floats (kept in their dtype).
    kernel_size, output_size : int or tuple of int
    samples : array_like, shape (N, C, D)
        Plane ``(n, c)``'s sample for axis ``i`` in ``[0, 1)``, read exactly.
    return_indices : bool
        Also return the int64 index of each maximum, flat within its ``(n, c)`` plane.

    Examples
    --------
    >>> y, i = fractional_max_pool(np.arange(16.0).reshape(1, 1, 4, 4), (2, 2), (2, 2), [[[0.0, 0.75]]],
    ...                            return_indices=True)
    >>> y.tolist(), i.tolist()
    ([[[[5.0, 7.0], [13.0, 15.0]]]], [[[[5, 7], [13, 15]]]])
    """
    if not isinstance(return_indices, bool):
        raise ConvParamError(f"return_indices={return_indices!r}: must be True or False")
    xa = as_array("x", x)
    if xa.dtype.kind not in "fiub":
        raise ConvParamError(f"x.dtype={xa.dtype}: the fast engine pools real numbers (use refconv.oracle for "
                             "Fractions)")
    fp = fractional_pool_params(xa.shape, kernel_size, output_size, samples)
    nc, taps = math.prod(fp.input_shape[:2]), math.prod(fp.kernel_size)
    # the gathered windows (NC, *O, taps) and their coordinates, next to the result
    Budget(get_memory_cap()).hold(nbytes((nc, *fp.output_spatial, taps), np.float64) * (2 + len(fp.kernel_size)),
                                  "the windows of fractional_max_pool")
    coords = _windows(fp, nc)
    plane = np.arange(nc).reshape((nc,) + (1,) * (len(coords) + 1))
    vals = xa.reshape(nc, *fp.input_shape[2:])[(plane, *coords)]  # (NC, *O, taps)
    if vals.size == 0:
        y = np.zeros(fp.output_shape, xa.dtype)  # an empty batch or no channels
        return (y, np.zeros(fp.output_shape, np.int64)) if return_indices else y
    best = np.argmax(vals, axis=-1)[..., None]  # the first maximum (the first NaN) in row-major tap order
    y = np.take_along_axis(vals, best, axis=-1)[..., 0].reshape(fp.output_shape)
    if not return_indices:
        return y
    # C-order index within the plane: sum_i coord_i * prod(n_{i+1:})
    flat = np.zeros((), np.int64)
    for c, n in zip(coords, fp.input_shape[2:]):
        flat = flat * n + c
    idx = np.take_along_axis(np.broadcast_to(flat, vals.shape), best, axis=-1)[..., 0]
    return y, idx.astype(np.int64).reshape(fp.output_shape)
