"""Signal-style ``convolve`` and ``correlate`` of plain N-D arrays (scipy.signal's modes).

Modes, for ``a`` of length ``n`` and ``v`` of length ``m`` per axis:

=========  ================================  ==========================================
``full``   ``n + m - 1``                     every partial overlap: padding ``(m-1, m-1)``
``valid``  ``max(n, m) - min(n, m) + 1``     full overlaps only; when ``v`` is at least as
                                             large as ``a`` in every axis the inputs swap,
                                             as in numpy and scipy
``same``   ``n``                             the centre of ``full``; for even ``m`` the
                                             extra zero goes at the start (``odd_zero=
                                             'start'``, numpy/scipy) or the end (``'end'``)
=========  ================================  ==========================================

``convolve(a, v)[j] = sum_k a[j - k] * v[k]`` (full mode indices), and
``correlate(a, v) = convolve(a, reverse(v))``, so a swapped ``valid``
correlation is the reverse of the unswapped one (numpy and scipy).  As the
oracle, ``correlate`` does not conjugate complex ``v`` (scipy.signal and
numpy do: pass ``v.conj()`` for their result).

Examples
--------
>>> convolve([1., 2., 3., 4.], [5., 6., 7.]).tolist()
[5.0, 16.0, 34.0, 52.0, 45.0, 28.0]
>>> convolve([1, 2, 3, 4], [5, 6, 7]).tolist()
[5, 16, 34, 52, 45, 28]
>>> correlate([1., 2., 3., 4.], [1., 10.], 'same').tolist()
[10.0, 21.0, 32.0, 43.0]
>>> correlate([1., 2., 3., 4.], [1., 10.], 'same', odd_zero='end').tolist()
[21.0, 32.0, 43.0, 4.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..params import SIGNAL_MODES, ConvParamError, signal_mode
from .conv import conv
from .dtypes import as_array

__all__ = ["convolve", "correlate", "MODES"]

MODES = SIGNAL_MODES  # the one list, in params


def _pads(mode: str, odd_zero: str, m_shape) -> tuple[tuple[int, int], ...]:
    if mode == "full":
        return tuple((m - 1, m - 1) for m in m_shape)
    if mode == "valid":
        return tuple((0, 0) for _ in m_shape)
    # same: the centre of full, which starts at (m - 1) // 2; padding lo = m - 1 - start
    if odd_zero == "start":
        return tuple((m - 1 - (m - 1) // 2, (m - 1) // 2) for m in m_shape)
    return tuple(((m - 1) // 2, m - 1 - (m - 1) // 2) for m in m_shape)


def _signal(a: Any, v: Any, mode: Any, odd_zero: Any, name: str, algorithm: str, max_memory) -> tuple:
    """Validate (the oracle's messages) and return ``a, v, padding``; ``valid`` swaps when ``v`` is larger."""
    a, v = as_array("a", a), as_array("v", v)
    mode, odd_zero = signal_mode(mode, odd_zero, name)  # the one check, shared with the oracle
    if a.ndim != v.ndim or a.ndim == 0:
        raise ConvParamError(f"a.ndim={a.ndim}, v.ndim={v.ndim}: a and v must have the same number (>= 1) of axes")
    if a.size == 0 or v.size == 0:
        raise ConvParamError(f"a.shape={a.shape}, v.shape={v.shape}: a and v must not be empty")
    swapped = False
    if mode == "valid" and not all(m <= n for n, m in zip(a.shape, v.shape)):
        if not all(m >= n for n, m in zip(a.shape, v.shape)):
            raise ConvParamError(
                f"mode='valid' with a.shape={a.shape}, v.shape={v.shape}: one input must be at least as large "
                "as the other on every axis"
            )
        a, v, swapped = v, a, True
    return a, v, _pads(mode, odd_zero, v.shape), swapped


def convolve(a: Any, v: Any, mode: str = "full", *, odd_zero: str = "start", algorithm: str = "auto",
             max_memory: int | None = None) -> np.ndarray:
    """N-D convolution of ``a`` with ``v``: ``z[j] = sum_k a[j - k] * v[k]`` over the mode's range.

    Parameters
    ----------
    a, v : array_like
        Arrays of the same number of dimensions (at least 1), non-empty.
    mode : {'full', 'valid', 'same'}
    odd_zero : {'start', 'end'}
        Side of the extra padding zero of ``'same'`` with an even kernel length.
    algorithm, max_memory
        As :func:`refconv.fast.conv`.

    Examples
    --------
    >>> convolve([1., 2., 3.], [0., 1., 0.5], 'same').tolist()
    [1.0, 2.5, 4.0]
    >>> convolve([1., 2.], [1., 1., 1.], 'valid').tolist()    # v larger: the inputs swap
    [3.0, 3.0]
    """
    a, v, pads, _ = _signal(a, v, mode, odd_zero, "convolve", algorithm, max_memory)
    # convolution commutes, so a swapped 'valid' needs nothing more
    return conv(a[None, None], v[None, None], padding=pads, flip=True, algorithm=algorithm, max_memory=max_memory)[0, 0]


def correlate(a: Any, v: Any, mode: str = "full", *, odd_zero: str = "start", algorithm: str = "auto",
              max_memory: int | None = None) -> np.ndarray:
    """N-D cross-correlation: ``convolve(a, reverse(v), mode)`` (no conjugation).

    In full-mode indices ``z[j] = sum_k a[j + k - (m - 1)] * v[k]``.

    Examples
    --------
    >>> correlate([1., 2., 3.], [1., 10., 100., 1000., 10000.], 'valid').tolist()
    [32100.0, 3210.0, 321.0]
    """
    a, v, pads, swapped = _signal(a, v, mode, odd_zero, "correlate", algorithm, max_memory)
    z = conv(a[None, None], v[None, None], padding=pads, flip=False, algorithm=algorithm, max_memory=max_memory)[0, 0]
    # correlate(a, v) with v the larger input is correlate(v, a) reversed
    return z[(slice(None, None, -1),) * z.ndim] if swapped else z
