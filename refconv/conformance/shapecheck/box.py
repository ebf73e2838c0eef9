"""The box of shape cases: every combination of small parameters, as numpy columns.

A *configuration* of one axis is ``(k, s, d, lo, hi, op)``: kernel, stride,
dilation, the padding pair (zero under a padding mode) and ``output_padding``
(transposed convolution only); a *case* adds the input length ``n`` and the
call-wide ``ceil_mode`` (pooling) and ``groups`` (convolutions).  One
dimension takes every combination in the box.  In ``D`` dimensions each axis
in turn runs through the whole one-dimensional box while the other axes hold
a fixed background configuration, and then every one-dimensional case runs on
all axes at once, axis ``j`` shifted ``j`` thirds of the way through the box
(so that parameters reaching the wrong axis show).

Examples
--------
>>> box = Box(max_size=4, max_kernel=2, max_stride=2, max_dilation=1, max_padding=1)
>>> t = cases(box, 'conv', 1, 'explicit')
>>> len(t), t.n[:3, 0].tolist()
(64, [1, 2, 3])
>>> len(cases(box, 'conv', 2, 'explicit')) == 3 * 64
True
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...params import ConvParamError

__all__ = ["Box", "Cases", "cases", "OPS", "MODES", "order_key", "AXIS_FIELDS"]

OPS = ("conv", "conv_transpose", "max_pool", "avg_pool")
#: padding modes: explicit (lo, hi) pairs, or one of refconv's padding strings
MODES = ("explicit", "valid", "same", "same_lower")
#: the per-axis integer columns of a case, in the order of the lexicographic tie-break
AXIS_FIELDS = ("n", "k", "s", "d", "lo", "hi", "op")

#: the background configuration of the axes that do not vary: (n, k, s, d, lo, hi, op)
BACKGROUND = ((5, 3, 1, 1, 1, 1, 0), (6, 3, 1, 1, 1, 1, 0), (7, 3, 1, 1, 1, 1, 0))
BATCH, CHANNELS = 2, 3
#: output channels of a convolution with groups 1, and per group of a transposed convolution
CONV_OUT, TRANSPOSE_OUT_PER_GROUP = 4, 2
#: the groups of the shifted all-axes cases alternate between 1 and this (it divides CHANNELS)
GROUPS = 3


@dataclass(frozen=True)
class Box:
    """The sides of the box: every parameter from its smallest value up to these.

    ``n`` runs over ``1..max_size``, ``k`` over ``1..max_kernel``, ``s`` over
    ``1..max_stride``, ``d`` over ``1..max_dilation`` (max pooling and the
    convolutions), each padding side over ``0..max_padding`` (explicit
    padding), ``output_padding`` over ``0..max(max_stride, max_dilation) - 1``
    and ``ceil_mode`` over both values.  The default box holds, for every
    configuration, its first accepted size and ``lcm(s, d)`` more
    (:meth:`needed_size`), which is what the proof needs.
    """

    max_size: int = 12
    max_kernel: int = 3
    max_stride: int = 3
    max_dilation: int = 2
    max_padding: int = 2

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            low = 0 if f.name == "max_padding" else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < low or v > 64:
                raise ConvParamError(f"{f.name}={v!r}: must be an integer from {low} to 64")

    def needed_size(self) -> int:
        """A ``max_size`` that covers every configuration: a bound on the first accepted size, plus the largest
        ``lcm(s, d)``.

        The first accepted size is at most the widest window ``d*(k-1) + 1``
        (convolution and pooling) or ``1 + lo + hi`` (transposed convolution).

        >>> Box().needed_size()
        11
        """
        period = max(math.lcm(s, d) for s in range(1, self.max_stride + 1) for d in range(1, self.max_dilation + 1))
        first = max(self.max_dilation * (self.max_kernel - 1) + 1, 1 + 2 * self.max_padding)
        return first + period

    def describe(self, op: str, mode: str) -> str:
        parts = [f"n 1..{self.max_size}", f"k 1..{self.max_kernel}", f"s 1..{self.max_stride}"]
        if op != "avg_pool":
            parts.append(f"d 1..{self.max_dilation}")
        if mode == "explicit":
            parts.append(f"padding 0..{self.max_padding} each side")
        if op == "conv_transpose" and mode in ("explicit", "valid"):
            parts.append(f"output_padding 0..{max(self.max_stride, self.max_dilation) - 1}")
        if op in ("max_pool", "avg_pool"):
            parts.append("ceil_mode both")
        return ", ".join(parts)


@dataclass
class Cases:
    """A table of cases of one op, dimension count and padding mode: one row per case.

    Per-axis columns ``n, k, s, d, lo, hi, op`` have shape ``(M, dims)``;
    ``ceil``, ``groups`` and ``axis`` (the axis that runs through the box, or
    ``-1`` for an all-axes case) have shape ``(M,)``; ``config`` numbers the
    one-dimensional configuration of the varying axis (``-1`` for all-axes rows).
    """

    op: str
    dims: int
    mode: str
    n: np.ndarray
    k: np.ndarray
    s: np.ndarray
    d: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    op_pad: np.ndarray
    ceil: np.ndarray
    groups: np.ndarray
    axis: np.ndarray
    config: np.ndarray

    def __len__(self) -> int:
        return len(self.ceil)

    def take(self, idx: Any) -> "Cases":
        """The rows ``idx`` (an index array or a mask)."""
        kw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return Cases(**{k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in kw.items()})

    def column(self, name: str) -> np.ndarray:
        return self.op_pad if name == "op" else getattr(self, name)


def _one_dim(box: Box, op: str, mode: str) -> dict[str, np.ndarray]:
    """Every one-dimensional case as columns of equal length (``n`` varies fastest)."""
    pools = op in ("max_pool", "avg_pool")
    pads = range(box.max_padding + 1) if mode == "explicit" else (0,)
    ops = range(max(box.max_stride, box.max_dilation)) if op == "conv_transpose" and mode in ("explicit", "valid") else (0,)
    dil = (1,) if op == "avg_pool" else range(1, box.max_dilation + 1)
    ceil = (False, True) if pools else (False,)
    grid = itertools.product(ceil, range(1, box.max_kernel + 1), range(1, box.max_stride + 1), dil, pads, pads, ops)
    configs = np.array(list(grid), dtype=np.int64).reshape(-1, 7)
    sizes = np.arange(1, box.max_size + 1, dtype=np.int64)
    rep = np.repeat(configs, len(sizes), axis=0)
    names = ("ceil", "k", "s", "d", "lo", "hi", "op")
    cols = {name: rep[:, i] for i, name in enumerate(names)}
    cols["n"] = np.tile(sizes, len(configs))
    cols["config"] = np.repeat(np.arange(len(configs), dtype=np.int64), len(sizes))
    return cols


def cases(box: Box, op: str, dims: int, mode: str) -> Cases:
    """The cases of ``op`` in ``dims`` dimensions under padding ``mode`` (see the module docstring)."""
    one = _one_dim(box, op, mode)
    m = len(one["n"])
    bg = np.array(BACKGROUND[:dims], dtype=np.int64)
    if mode != "explicit":
        bg[:, 4:6] = 0  # a padding mode leaves no pair to give
    blocks: list[dict[str, np.ndarray]] = []
    for axis in range(dims):
        cols = {}
        for i, f in enumerate(AXIS_FIELDS):
            c = np.repeat(bg[None, :, i], m, axis=0)
            c[:, axis] = one[f]
            cols[f] = c
        cols.update(ceil=one["ceil"].astype(bool), groups=np.ones(m, np.int64), axis=np.full(m, axis, np.int64),
                    config=one["config"])
        blocks.append(cols)
    if dims > 1:
        cols = {}
        for f in AXIS_FIELDS:
            # axis j takes the one-dimensional case j*m/3 rows further on
            cols[f] = np.stack([np.roll(one[f], -(j * m) // 3) for j in range(dims)], axis=1)
        groups = np.where(np.arange(m) % 2 == 1, GROUPS, 1) if op in ("conv", "conv_transpose") else np.ones(m, np.int64)
        cols.update(ceil=one["ceil"].astype(bool), groups=groups.astype(np.int64), axis=np.full(m, -1, np.int64),
                    config=np.full(m, -1, np.int64))
        blocks.append(cols)
    cat = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    return Cases(op, dims, mode, cat["n"], cat["k"], cat["s"], cat["d"], cat["lo"], cat["hi"], cat["op"],
                 cat["ceil"], cat["groups"], cat["axis"], cat["config"])


def order_key(t: Cases) -> np.ndarray:
    """Row indices from the smallest case to the largest: total size, then lexicographic.

    The total size of a case is the sum of every input length, kernel size and
    padding side, the strides and dilations above 1, every ``output_padding``,
    ``ceil_mode`` and ``groups - 1``; ties go to the lexicographically smaller
    ``(n, k, s, d, lo, hi, output_padding)`` per axis in axis order, then
    ``ceil_mode``, then ``groups``.
    """
    total = (t.n + t.k + (t.s - 1) + (t.d - 1) + t.lo + t.hi + t.op_pad).sum(axis=1) + t.ceil + (t.groups - 1)
    keys = [t.column(f)[:, a] for a in range(t.dims) for f in AXIS_FIELDS] + [t.ceil.astype(np.int64), t.groups]
    # np.lexsort sorts by its last key first
    return np.lexsort(tuple(reversed([total] + keys)))
