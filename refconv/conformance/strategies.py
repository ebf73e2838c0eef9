"""Hypothesis strategies for convolution, transposed-convolution and pooling cases.

:func:`cases` is the strategy the conformance engine explores with: whole
:class:`~refconv.conformance.cases.Case` objects of any registered op, every
choice a hypothesis draw (so hypothesis shrinks them), inside a target's
capabilities.  The composites below draw the arguments as a user passes them
(padding strings, keyword forms) for properties of the library's own functions.

Each strategy draws a whole case (shapes plus keyword arguments in the form a
user would pass them) that is valid by construction, covering: any number of
spatial axes, asymmetric ``(lo, hi)`` padding and the padding strings, stride
larger than the kernel, dilation, groups with several channels per group,
and kernels exactly as large as the padded input.  Everything shrinks towards
the smallest case: one spatial axis, batch 1, one channel, kernel 1, stride 1,
no padding.

>>> from hypothesis import given, settings
>>> @settings(max_examples=20, database=None)
... @given(conv_cases())
... def check(case):
...     assert case.params.output_spatial == case.output_shape[2:]
>>> check()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .cases import Draws, cases
from ..params import ConvParams, ConvTransposeParams, PoolParams, conv_params, conv_transpose_params, pool_params

__all__ = [
    "cases",
    "Draws",
    "ConvCase",
    "ConvTransposeCase",
    "PoolCase",
    "conv_cases",
    "conv_transpose_cases",
    "pool_cases",
    "int_arrays",
    "padding_args",
]


def _check_bound(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")


@dataclass(frozen=True)
class ConvCase:
    """A convolution case: shapes, the keyword arguments as passed, and the normalized params."""

    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    bias: bool
    kwargs: dict[str, Any] = field(hash=False)
    params: ConvParams = field(hash=False)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.params.output_shape

    def arrays(self, rng: np.random.Generator, low: int = -8, high: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Integer-valued ``x, w, b`` (int64) drawn from ``rng``."""
        x = rng.integers(low, high + 1, self.x_shape)
        w = rng.integers(low, high + 1, self.w_shape)
        b = rng.integers(low, high + 1, self.w_shape[0]) if self.bias else None
        return x, w, b


@dataclass(frozen=True)
class ConvTransposeCase:
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    bias: bool
    kwargs: dict[str, Any] = field(hash=False)
    params: ConvTransposeParams = field(hash=False)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.params.output_shape


@dataclass(frozen=True)
class PoolCase:
    """A pooling case: ``kwargs`` hold ``kernel_size, stride, padding, ceil_mode`` (and ``dilation`` if drawn)."""

    x_shape: tuple[int, ...]
    kwargs: dict[str, Any] = field(hash=False)
    count_include_pad: bool
    params: PoolParams = field(hash=False)

    @property
    def max_kwargs(self) -> dict[str, Any]:
        """Keywords for ``max_pool``."""
        return dict(self.kwargs)

    @property
    def avg_kwargs(self) -> dict[str, Any]:
        """Keywords for ``avg_pool`` (no dilation; with ``count_include_pad``): draw with ``pool_cases(dilation=False)``."""
        if any(d != 1 for d in self.kwargs.get("dilation", ())):
            raise ValueError(f"dilation={self.kwargs['dilation']}: average pooling has none; draw with pool_cases(dilation=False)")
        kw = {k: v for k, v in self.kwargs.items() if k != "dilation"}
        kw["count_include_pad"] = self.count_include_pad
        return kw

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.params.output_shape


def int_arrays(shape: tuple[int, ...], *, min_value: int = -8, max_value: int = 8) -> st.SearchStrategy[np.ndarray]:
    """int64 arrays of ``shape`` with entries in ``[min_value, max_value]``; shrinks towards zeros.

    >>> from hypothesis import find
    >>> find(int_arrays((2, 3)), lambda a: True).tolist()   # the simplest example
    [[0, 0, 0], [0, 0, 0]]
    """
    if min_value > max_value:
        raise ValueError(f"min_value={min_value}, max_value={max_value}: min_value must be <= max_value")
    size = int(np.prod(shape, dtype=np.int64))
    return st.lists(st.integers(min_value, max_value), min_size=size, max_size=size).map(
        lambda v: np.array(v, dtype=np.int64).reshape(shape)
    )


@st.composite
def padding_args(draw: Any, ndim: int, *, max_padding: int = 3, strings: bool = True) -> Any:
    """``padding`` in one of the accepted user forms: int, per-axis ints, ``(lo, hi)`` pairs, or a string."""
    pairs = [(draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding))) for _ in range(ndim)]
    forms = [st.just(pairs[0][0]), st.just(tuple(p[0] for p in pairs)), st.just(tuple(pairs))]
    if strings:
        forms.append(st.sampled_from(["valid", "same", "same_lower", "full"]))
    return draw(st.one_of(*forms))


def _draw_layer(draw: Any, min_dims: int, max_dims: int, max_groups: int, max_cpg: int, max_kernel: int,
                max_stride: int, max_dilation: int) -> tuple:
    """Spatial rank, groups, input and output channels per group, and per-axis kernel, stride, dilation."""
    nd = draw(st.integers(min_dims, max_dims))
    groups = draw(st.integers(1, max_groups))
    cg = draw(st.integers(1, max_cpg))
    og = draw(st.integers(1, max_cpg))
    k = tuple(draw(st.integers(1, max_kernel)) for _ in range(nd))
    s = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    d = tuple(draw(st.integers(1, max_dilation)) for _ in range(nd))
    return nd, groups, cg, og, k, s, d


@st.composite
def conv_cases(
    draw: Any,
    *,
    min_dims: int = 1,
    max_dims: int = 3,
    max_batch: int = 2,
    max_groups: int = 3,
    max_channels_per_group: int = 3,
    max_kernel: int = 4,
    max_stride: int = 3,
    max_dilation: int = 3,
    max_padding: int = 3,
    max_extra: int = 4,
    strings: bool = True,
    flip: bool | None = False,
    bias: bool | None = None,
) -> ConvCase:
    """Valid convolution cases; ``max_extra`` bounds how much longer than the kernel span an input is.

    An extra length of 0 makes the dilated kernel exactly as large as the
    padded input (output size 1 at any stride).  ``flip=None`` draws it.
    """
    for name, v, lo in (
        ("min_dims", min_dims, 1), ("max_dims", max_dims, min_dims), ("max_batch", max_batch, 0),
        ("max_groups", max_groups, 1), ("max_channels_per_group", max_channels_per_group, 1),
        ("max_kernel", max_kernel, 1), ("max_stride", max_stride, 1), ("max_dilation", max_dilation, 1),
        ("max_padding", max_padding, 0), ("max_extra", max_extra, 0),
    ):
        _check_bound(name, v, lo)
    nd, groups, cg, og, k, s, d = _draw_layer(
        draw, min_dims, max_dims, max_groups, max_channels_per_group, max_kernel, max_stride, max_dilation
    )
    pad = draw(padding_args(nd, max_padding=max_padding, strings=strings))
    # input length: at least what the numeric padding leaves for the dilated kernel, then some extra
    if isinstance(pad, str):
        lohi = [(0, 0)] * nd
    elif isinstance(pad, int):
        lohi = [(pad, pad)] * nd
    else:
        lohi = [(p, p) if isinstance(p, int) else p for p in pad]
    n = tuple(
        max(di * (ki - 1) + 1 - lo - hi, 1) + draw(st.integers(0, max_extra))
        for ki, di, (lo, hi) in zip(k, d, lohi)
    )
    batch = draw(st.integers(1, max_batch)) if max_batch >= 1 else 0
    x_shape = (batch, groups * cg, *n)
    w_shape = (groups * og, cg, *k)
    fl = draw(st.booleans()) if flip is None else flip
    has_b = draw(st.booleans()) if bias is None else bias
    kwargs = dict(stride=s, padding=pad, dilation=d, groups=groups, flip=fl)
    params = conv_params(x_shape, w_shape, (w_shape[0],) if has_b else None, **kwargs)
    return ConvCase(x_shape, w_shape, has_b, kwargs, params)


@st.composite
def conv_transpose_cases(
    draw: Any,
    *,
    min_dims: int = 1,
    max_dims: int = 3,
    max_batch: int = 2,
    max_groups: int = 3,
    max_channels_per_group: int = 3,
    max_kernel: int = 4,
    max_stride: int = 3,
    max_dilation: int = 3,
    max_padding: int = 3,
    max_input: int = 4,
    bias: bool | None = None,
) -> ConvTransposeCase:
    """Valid transposed-convolution cases (weight ``(C_in, C_out // groups, *K)``), with ``output_padding``."""
    nd, groups, cg, og, k, s, d = _draw_layer(
        draw, min_dims, max_dims, max_groups, max_channels_per_group, max_kernel, max_stride, max_dilation
    )
    n = tuple(draw(st.integers(1, max_input)) for _ in range(nd))
    op = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    pads = []
    for ni, ki, si, di, o in zip(n, k, s, d, op):
        full = (ni - 1) * si + di * (ki - 1) + 1 + o  # the output before cropping
        lo = draw(st.integers(0, min(max_padding, full - 1)))
        hi = draw(st.integers(0, min(max_padding, full - 1 - lo)))
        pads.append((lo, hi))
    batch = draw(st.integers(1, max_batch)) if max_batch >= 1 else 0
    x_shape = (batch, groups * cg, *n)
    w_shape = (groups * cg, og, *k)
    has_b = draw(st.booleans()) if bias is None else bias
    kwargs = dict(stride=s, padding=tuple(pads), output_padding=op, dilation=d, groups=groups)
    params = conv_transpose_params(x_shape, w_shape, (og * groups,) if has_b else None, **kwargs)
    return ConvTransposeCase(x_shape, w_shape, has_b, kwargs, params)


@st.composite
def pool_cases(
    draw: Any,
    *,
    min_dims: int = 1,
    max_dims: int = 3,
    max_batch: int = 2,
    max_channels: int = 3,
    max_kernel: int = 4,
    max_stride: int = 4,
    max_dilation: int = 2,
    max_extra: int = 4,
    dilation: bool = True,
) -> PoolCase:
    """Valid pooling cases: padding up to half the window, ``ceil_mode`` and ``count_include_pad`` drawn.

    ``dilation=False`` leaves it out (average pooling has none).
    """
    nd = draw(st.integers(min_dims, max_dims))
    k = tuple(draw(st.integers(1, max_kernel)) for _ in range(nd))
    s = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    d = tuple(draw(st.integers(1, max_dilation)) if dilation else 1 for _ in range(nd))
    pads = tuple(
        (draw(st.integers(0, (di * (ki - 1) + 1) // 2)), draw(st.integers(0, (di * (ki - 1) + 1) // 2)))
        for ki, di in zip(k, d)
    )
    symmetric = draw(st.booleans())
    if symmetric:
        pads = tuple((lo, lo) for lo, _ in pads)
    n = tuple(
        max(di * (ki - 1) + 1 - lo - hi, 1) + draw(st.integers(0, max_extra))
        for ki, di, (lo, hi) in zip(k, d, pads)
    )
    x_shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), *n)
    kwargs: dict[str, Any] = dict(stride=s, padding=tuple(p[0] for p in pads) if symmetric else pads, ceil_mode=draw(st.booleans()))
    if dilation:
        kwargs["dilation"] = d
    cip = draw(st.booleans())
    params = pool_params(x_shape, k, count_include_pad=cip, **kwargs)
    return PoolCase(x_shape, dict(kernel_size=k, **kwargs), cip, params)
