"""Internal geometry of the general operation, and the padded/dilated input buffer.

:class:`Geometry` is the already-validated general operation of specs/convolution.md with
one relaxation used inside the engine: padding may be negative (a crop), which
expresses the input gradient of a convolution whose padding exceeds the kernel
span.  Public functions validate with :mod:`refconv.params` first; nothing here
checks user input.

Examples
--------
>>> g = Geometry(stride=(2,), padding=((1, -1),), dilation=(1,), input_dilation=(1,), groups=1)
>>> g.output_spatial((6,), (3,))
(2,)
>>> import numpy as np
>>> pad_dilate(np.arange(1., 4.).reshape(1, 1, 3), ((2, 1),), (2,)).tolist()
[[[0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0]]]
>>> Geometry((2**62,), ((0, 0),), (1,), (1,), 1).bounded((6,), (3,)).stride   # one output: any stride reads it
(4,)
>>> is_depthwise(1, 4), is_depthwise(1, 5), is_depthwise(2, 1)
(True, False, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["Geometry", "pad_dilate", "windows", "prod", "is_depthwise", "DEPTHWISE_MAX_MULTIPLIER"]

#: at most this many output channels per group of one input channel: a depthwise convolution
#: (per-tap kernels in :mod:`refconv.fast.direct`, the per-tap rate in the cost model of :mod:`refconv.fast.fft`)
DEPTHWISE_MAX_MULTIPLIER = 4


def prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def is_depthwise(cg: int, mg: int) -> bool:
    """One input channel (``cg``) per group and at most :data:`DEPTHWISE_MAX_MULTIPLIER` outputs (``mg``) per group."""
    return cg == 1 and mg <= DEPTHWISE_MAX_MULTIPLIER


@dataclass(frozen=True)
class Geometry:
    """Stride, ``(lo, hi)`` padding (may be negative), dilation, input dilation, groups."""

    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    input_dilation: tuple[int, ...]
    groups: int

    def padded_spatial(self, input_spatial) -> tuple[int, ...]:
        """``a*(n-1) + 1 + lo + hi`` per axis (0-length input stays 0 before padding)."""
        return tuple(
            (a * (n - 1) + 1 if n > 0 else 0) + lo + hi
            for n, a, (lo, hi) in zip(input_spatial, self.input_dilation, self.padding)
        )

    def output_spatial(self, input_spatial, kernel_spatial) -> tuple[int, ...]:
        """``floor((P - d*(K-1) - 1) / s) + 1`` per axis, 0 when negative."""
        out = []
        for P, k, s, d in zip(self.padded_spatial(input_spatial), kernel_spatial, self.stride, self.dilation):
            span = P - d * (k - 1) - 1
            out.append(span // s + 1 if span >= 0 else 0)
        return tuple(out)

    def bounded(self, input_spatial, kernel_spatial) -> "Geometry":
        """The same operation with every stride at most ``P - span + 1`` and dilation 1 on one-tap axes.

        An axis with one output reads one window whatever its stride, and a
        one-tap kernel axis one position whatever its dilation: the output and
        every value are unchanged, and no stride of a strided view exceeds the
        padded length (a stride of ``2**62`` would overflow the byte strides).
        """
        P = self.padded_spatial(input_spatial)
        stride = tuple(
            min(s, max(Pi - (d * (k - 1) + 1) + 1, 1)) for s, Pi, k, d in zip(self.stride, P, kernel_spatial, self.dilation)
        )
        dilation = tuple(d if k > 1 else 1 for d, k in zip(self.dilation, kernel_spatial))
        return Geometry(stride, self.padding, dilation, self.input_dilation, self.groups)


def pad_dilate(x: np.ndarray, padding, input_dilation, *, fill=0) -> np.ndarray:
    """``xp``: ``a - 1`` zeros between samples, then ``lo`` / ``hi`` zeros (negative: crop).

    Returns ``x`` itself (a view, no copy) when there is nothing to do.
    """
    nsp = len(padding)
    if all(a == 1 for a in input_dilation) and all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    spatial = x.shape[-nsp:]
    lead = x.shape[:-nsp]
    sizes: list[int] = []
    src: list[Any] = []  # the index of each axis: (Ellipsis, *src) and (Ellipsis, *dst) index the arrays
    dst: list[Any] = []
    for n, a, (lo, hi) in zip(spatial, input_dilation, padding):
        D = a * (n - 1) + 1 if n > 0 else 0
        P = max(D + lo + hi, 0)
        sizes.append(P)
        # source sample i lands at lo + a*i; keep those inside [0, P)
        i0 = 0 if lo >= 0 else (-lo + a - 1) // a  # first i with lo + a*i >= 0
        i1 = min(n, (P - 1 - lo) // a + 1) if P - 1 - lo >= 0 else 0  # past the last i with lo + a*i < P
        if i1 <= i0:
            src.append(slice(0, 0))
            dst.append(slice(0, 0))
        else:
            src.append(slice(i0, i1))
            dst.append(slice(lo + a * i0, lo + a * (i1 - 1) + 1, a))
    if all(a == 1 for a in input_dilation) and all(lo <= 0 and hi <= 0 for lo, hi in padding):
        return x[(Ellipsis, *src)]  # a pure crop is a view
    xp = np.full((*lead, *sizes), fill, dtype=x.dtype) if fill != 0 else np.zeros((*lead, *sizes), dtype=x.dtype)
    xp[(Ellipsis, *dst)] = x[(Ellipsis, *src)]
    return xp


def windows(xp: np.ndarray, kernel_spatial, stride, dilation, out_spatial) -> np.ndarray:
    """Read-only view ``v[..., *p, *k] = xp[..., *(p*s + k*d)]`` of shape ``(..., *O, *K)``."""
    nsp = len(kernel_spatial)
    st = xp.strides
    lead_shape, lead_st = xp.shape[:-nsp], st[:-nsp]
    sp_st = st[-nsp:]
    shape = (*lead_shape, *out_spatial, *kernel_spatial)
    strides = (*lead_st, *(t * s for t, s in zip(sp_st, stride)), *(t * d for t, d in zip(sp_st, dilation)))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)
