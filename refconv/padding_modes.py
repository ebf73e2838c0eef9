"""Convolution padding modes: what the padding holds (PyTorch's ``padding_mode``; ONNX ``Pad`` modes).

==============  ==========================  =====================================
mode            padded sample at ``-j``     ONNX ``Pad`` / numpy ``pad`` mode
==============  ==========================  =====================================
``zeros``       ``0``                       ``constant`` / ``constant``
``reflect``     ``x[j]`` (edge not repeated) ``reflect`` / ``reflect``
``replicate``   ``x[0]``                    ``edge`` / ``edge``
``circular``    ``x[n - j]``                ``wrap`` / ``wrap``
==============  ==========================  =====================================

The padded input is ``xp = x[src]`` with one source index per padded
position and axis; the gradient is its adjoint: ``dx[src[j]] += dxp[j]``, so a
reflected or replicated sample accumulates the gradients of its copies.

>>> pad_mode(np.array([[[1, 2, 3]]]), ((2, 1),), 'reflect').tolist()
[[[3, 2, 1, 2, 3, 2]]]
>>> pad_mode_adjoint(np.array([[[1, 1, 1, 1, 1, 1]]]), ((2, 1),), 'reflect', (1, 1, 3)).tolist()
[[[1, 3, 2]]]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .params import ConvParamError, padding_mode
from .layouts import accepts_layouts  # layout= on the padding and its adjoint

__all__ = ["pad_mode", "pad_mode_adjoint", "source_indices", "check_mode_padding"]


def check_mode_padding(mode: str, padding: Sequence[tuple[int, int]], spatial: Sequence[int]) -> None:
    """PyTorch's limits: ``reflect`` needs each side ``< n``, ``circular`` each side ``<= n``, ``replicate`` ``n >= 1``."""
    for i, ((lo, hi), n) in enumerate(zip(padding, spatial)):
        limit = {"reflect": n - 1, "circular": n, "replicate": 10**30 if n else -1, "zeros": 10**30}[mode]
        if max(lo, hi) > limit and (lo or hi):
            raise ConvParamError(
                f"padding={tuple(padding)}: padding_mode={mode!r} allows at most {max(limit, 0)} per side on axis {i} "
                f"(input length {n})"
            )


def source_indices(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For each padded position ``j - lo`` (``j < lo + n + hi``) the input index it copies (``-1``: a zero).

    >>> source_indices(3, 2, 2, 'circular').tolist(), source_indices(3, 1, 1, 'replicate').tolist()
    ([1, 2, 0, 1, 2, 0, 1], [0, 0, 1, 2, 2])
    """
    i = np.arange(-lo, n + hi)
    if mode == "zeros":
        return np.where((i >= 0) & (i < n), i, -1)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return np.mod(i, n)
    # reflect about the first and last sample (period 2(n - 1)); n = 1 has nothing to reflect
    if n == 1:
        return np.zeros_like(i)
    m = np.mod(i, 2 * (n - 1))
    return np.where(m < n, m, 2 * (n - 1) - m)


@accepts_layouts(x="activation")
def pad_mode(x: np.ndarray, padding: Sequence[tuple[int, int]], mode: Any) -> np.ndarray:
    """``x`` padded on its spatial axes (after ``N, C``) with ``(lo, hi)`` per axis, filled as ``mode`` says."""
    mode = padding_mode(mode)
    check_mode_padding(mode, padding, x.shape[2:])
    out = x
    for ax, (lo, hi) in enumerate(padding, start=2):
        src = source_indices(x.shape[ax], lo, hi, mode)
        taken = np.take(out, np.maximum(src, 0), axis=ax)
        if mode == "zeros":
            shape = [1] * out.ndim
            shape[ax] = -1
            taken = np.where((src >= 0).reshape(shape), taken, np.zeros((), dtype=taken.dtype))
        out = taken
    return out


@accepts_layouts(dxp="activation", shape="activation_shape")
def pad_mode_adjoint(dxp: np.ndarray, padding: Sequence[tuple[int, int]], mode: Any, shape: Sequence[int]) -> np.ndarray:
    """The adjoint of :func:`pad_mode`: each padded position's gradient added to the input sample it copies."""
    mode = padding_mode(mode)
    out = np.asarray(dxp)
    for ax, (lo, hi) in enumerate(padding, start=2):
        src = source_indices(shape[ax], lo, hi, mode)
        keep = src >= 0  # zeros padding: positions that copy nothing
        # axis `ax` first: padded position j adds its slice to the input slice src[j], in increasing j
        moved = np.moveaxis(out, ax, 0)[keep]
        acc = np.zeros((shape[ax],) + moved.shape[1:], dtype=out.dtype)
        np.add.at(acc, src[keep], moved)
        out = np.moveaxis(acc, 0, ax)
    return out
