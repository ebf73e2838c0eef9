"""Conformance cases: one frozen description per call, the edge-case catalogue, and strategies.

A :class:`Case` holds every parameter of one call in canonical form (per-axis
tuples, padding as ``(lo, hi)`` pairs) plus how to fill the inputs: ``values``
is ``'normal'`` (standard normal samples rounded to the dtype: full
significands, for precision), ``'small'`` (integers in ``[-3, 3]``: every
format computes them exactly, for conventions) or ``'negative'`` (integers in
``[-9, -1]``: windows of max pooling that reach into the padding must not see
a zero).  Inputs are a pure function of the case and the dtype.

:class:`Capabilities` says which parameters a target supports; the catalogue
is projected onto them and the strategies draw only inside them.

Examples
--------
>>> c = Case('conv', n=1, cin=1, cout=1, spatial=(5,), kernel=(3,), padding=((0, 1),))
>>> c.output_shape
(1, 1, 4)
>>> sorted(c.arrays('float32'))
['w', 'x']
>>> [k.label for k in catalogue('conv', 1)][:3]
['plain', 'bias and channels', 'symmetric padding']
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import numpy as np

from .. import params as P
from .. import shapes

__all__ = [
    "OPS",
    "Case",
    "Capabilities",
    "catalogue",
    "cases",
    "padding_kinds",
    "dtype_of",
]

OPS = ("conv", "conv_transpose", "max_pool", "avg_pool", "conv_grad_input", "conv_grad_weight")
CONV_LIKE = ("conv", "conv_transpose", "conv_grad_input", "conv_grad_weight")
POOLS = ("max_pool", "avg_pool")
DTYPES = ("float64", "float32", "float16", "bfloat16")


def dtype_of(name: str) -> np.dtype:
    """The numpy dtype for a dtype name; ``bfloat16`` needs the optional ``ml_dtypes`` package.

    >>> dtype_of('float32')
    dtype('float32')
    """
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:  # pragma: no cover - optional
            raise ValueError("dtype='bfloat16' needs the ml_dtypes package (pip install ml_dtypes)") from None
        return np.dtype(ml_dtypes.bfloat16)
    if name not in DTYPES:
        raise ValueError(f"dtype={name!r}: dtypes are " + ", ".join(repr(d) for d in DTYPES))
    return np.dtype(name)


@dataclass(frozen=True)
class Case:
    """One call of an operation, all parameters explicit.

    For ``conv``, ``conv_grad_input`` and ``conv_grad_weight`` the parameters
    are those of the forward convolution (``spatial`` is its input size);
    for ``conv_transpose`` ``cin``/``cout`` are the transposed op's own
    channels and ``spatial`` its input size; for pooling ``cin == cout``.
    """

    op: str
    n: int = 1
    cin: int = 1
    cout: int = 1
    spatial: tuple[int, ...] = (5,)
    kernel: tuple[int, ...] = (3,)
    stride: tuple[int, ...] | None = None
    padding: tuple[tuple[int, int], ...] | None = None
    dilation: tuple[int, ...] | None = None
    groups: int = 1
    bias: bool = False
    output_padding: tuple[int, ...] | None = None
    ceil_mode: bool = False
    count_include_pad: bool = True
    values: str = "normal"
    seed: int = 0
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        d = len(self.spatial)
        for name, default in (("stride", 1), ("dilation", 1), ("output_padding", 0)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, (default,) * d)
        if self.padding is None:
            object.__setattr__(self, "padding", ((0, 0),) * d)
        if self.op in POOLS:
            object.__setattr__(self, "cout", self.cin)

    # ------------------------------------------------------------ geometry
    @property
    def dims(self) -> int:
        return len(self.spatial)

    def validate(self) -> Any:
        """The normalized parameters from :mod:`refconv.params` (raises ``ConvParamError`` if invalid)."""
        if self.op in ("conv", "conv_grad_input", "conv_grad_weight"):
            return P.conv_params(
                (self.n, self.cin, *self.spatial), self.weight_shape, (self.cout,) if self.bias else None,
                stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
            )
        if self.op == "conv_transpose":
            if self.cout % self.groups:
                raise P.ConvParamError(f"groups={self.groups}: groups must divide C_out={self.cout}")
            return P.conv_transpose_params(
                (self.n, self.cin, *self.spatial), self.weight_shape, (self.cout,) if self.bias else None,
                stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                dilation=self.dilation, groups=self.groups,
            )
        if self.op in POOLS:
            if self.op == "avg_pool" and any(d != 1 for d in self.dilation):
                raise P.ConvParamError(f"dilation={self.dilation}: average pooling has no dilation")
            return P.pool_params(
                (self.n, self.cin, *self.spatial), self.kernel, stride=self.stride, padding=self.padding,
                dilation=self.dilation, ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
            )
        raise P.ConvParamError(f"op={self.op!r}: ops are " + ", ".join(repr(o) for o in OPS))

    def is_valid(self) -> bool:
        try:
            self.validate()
        except P.ConvParamError:
            return False
        return all(s >= 1 for s in self.spatial) and self.n >= 0

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.op == "conv_transpose":
            return (self.cin, self.cout // self.groups, *self.kernel)
        return (self.cout, self.cin // self.groups, *self.kernel)

    @property
    def forward_output_shape(self) -> tuple[int, ...]:
        """Output of the forward convolution (the shape of ``dy`` for the gradients)."""
        return self.validate().output_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The shape the target must return."""
        if self.op == "conv_grad_input":
            return (self.n, self.cin, *self.spatial)
        if self.op == "conv_grad_weight":
            return self.weight_shape
        return tuple(self.validate().output_shape)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Array arguments in call order, with their shapes."""
        x = (self.n, self.cin, *self.spatial)
        if self.op in ("conv", "conv_transpose"):
            out = {"x": x, "w": self.weight_shape}
            if self.bias:
                out["b"] = (self.cout,)
            return out
        if self.op == "conv_grad_input":
            return {"dy": self.forward_output_shape, "w": self.weight_shape}
        if self.op == "conv_grad_weight":
            return {"x": x, "dy": self.forward_output_shape}
        return {"x": x}

    def terms(self) -> int:
        """Products summed per output element, at most (the ``n`` of ``gamma_n``)."""
        k = math.prod(self.kernel)
        if self.op == "conv":
            return (self.cin // self.groups) * k + int(self.bias)
        if self.op == "conv_transpose":
            return (self.cin // self.groups) * k + int(self.bias)
        if self.op == "conv_grad_input":
            return (self.cout // self.groups) * k
        if self.op == "conv_grad_weight":
            return max(1, self.n * math.prod(self.forward_output_shape[2:]))
        return k

    # ------------------------------------------------------------ data
    def arrays(self, dtype: str | np.dtype = "float32") -> dict[str, np.ndarray]:
        """The inputs, deterministic in (case, dtype): a fresh generator seeded by ``seed``."""
        dt = dtype_of(dtype) if isinstance(dtype, str) else np.dtype(dtype)
        rng = np.random.default_rng([self.seed, len(self.values)])
        out = {}
        for name, shape in self.input_shapes().items():
            if self.values == "small":
                a = rng.integers(-3, 4, size=shape).astype(np.float64)
            elif self.values == "negative":
                a = rng.integers(-9, 0, size=shape).astype(np.float64)
            elif self.values == "unit":
                # products in {-1, 0, 1}: every partial sum is an integer of at most n, exact in every format
                a = rng.integers(-1, 2, size=shape).astype(np.float64)
            elif self.values == "positive":
                a = rng.integers(1, 10, size=shape).astype(np.float64)
            elif self.values == "dyadic":
                # the first array: multiples of 2**-12 in [-1, 1) (up to 12 significant bits, more than TF32's 11);
                # the others in {-1, 0, 1}: every product is exact and every partial sum a multiple of 2**-12
                # no larger than S = |b| + sum |x_i w_i|, exact in a format of p bits while S * 2**12 < 2**p
                if not out:
                    a = rng.integers(-4096, 4096, size=shape).astype(np.float64) * 2.0**-12
                else:
                    a = rng.integers(-1, 2, size=shape).astype(np.float64)
            else:
                a = rng.standard_normal(size=shape)
            out[name] = a.astype(dt)
        return out

    # ------------------------------------------------------------ text
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the canonical call (see :mod:`refconv.conformance.ops`)."""
        if self.op in POOLS:
            kw: dict[str, Any] = {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding}
            if self.op == "max_pool":
                kw.update(dilation=self.dilation, ceil_mode=self.ceil_mode)
            else:
                kw.update(ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)
            return kw
        kw = {"stride": self.stride, "padding": self.padding}
        if self.op == "conv_transpose":
            kw["output_padding"] = self.output_padding
        kw.update(dilation=self.dilation, groups=self.groups)
        return kw

    def describe(self) -> str:
        """One line: shapes and every non-default parameter."""
        shp = ", ".join(f"{k}{v}" for k, v in self.input_shapes().items())
        kw = self.kwargs()
        parts = [f"{k}={v}" for k, v in kw.items()]
        return f"{self.op}({shp}; {', '.join(parts)}) values={self.values}"


def padding_kinds(case: Case) -> set[str]:
    """The padding forms that express ``case.padding``: subsets of
    ``{'asymmetric', 'symmetric', 'valid', 'full', 'same', 'same_lower'}``.

    >>> sorted(padding_kinds(Case('conv', spatial=(4,), kernel=(2,), padding=((0, 1),))))
    ['asymmetric', 'same']
    """
    pads = case.padding
    kinds = {"asymmetric"}
    if all(lo == hi for lo, hi in pads):
        kinds.add("symmetric")
    if all(lo == hi == 0 for lo, hi in pads):
        kinds.add("valid")
    if case.op not in POOLS and case.op != "conv_transpose":
        if all((lo, hi) == shapes.full_padding(k, d) for (lo, hi), k, d in zip(pads, case.kernel, case.dilation)):
            kinds.add("full")
    n_in = case.spatial
    for name, lower in (("same", False), ("same_lower", True)):
        if case.op == "conv_transpose":
            continue
        if all(
            (lo, hi) == shapes.same_padding(n, k, s, d, lower=lower)
            for (lo, hi), n, k, s, d in zip(pads, n_in, case.kernel, case.stride, case.dilation)
        ):
            kinds.add(name)
    return kinds


@dataclass(frozen=True)
class Capabilities:
    """What a target supports; cases outside are projected inward or skipped.

    ``padding`` lists accepted forms (see :func:`padding_kinds`); the defaults
    are a target that supports everything its canonical signature can express.
    """

    ops: tuple[str, ...] = OPS
    dims: tuple[int, ...] = (1, 2, 3)
    dtypes: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
    padding: frozenset[str] = frozenset({"asymmetric"})
    stride: bool = True
    dilation: bool = True
    groups: bool = True
    bias: bool = True
    batch: bool = True          # N > 1
    empty_batch: bool = True    # N == 0
    channels: bool = True       # C > 1
    output_padding: bool = True
    ceil_mode: bool = True
    count_include_pad: tuple[bool, ...] = (True, False)
    #: extra rule: a function (case) -> True when supported
    rule: Any = None
    notes: tuple[str, ...] = ()

    def replace(self, **kw: Any) -> "Capabilities":
        return dataclasses.replace(self, **kw)

    def supports(self, case: Case) -> bool:
        if case.op not in self.ops or case.dims not in self.dims:
            return False
        if not (padding_kinds(case) & set(self.padding)):
            return False
        if not self.stride and any(s != 1 for s in case.stride):
            return False
        if not self.dilation and any(d != 1 for d in case.dilation):
            return False
        if not self.groups and case.groups != 1:
            return False
        if not self.bias and case.bias:
            return False
        if not self.batch and case.n > 1 or not self.empty_batch and case.n == 0:
            return False
        if not self.channels and (case.cin > 1 or case.cout > 1):
            return False
        if not self.output_padding and any(case.output_padding):
            return False
        if not self.ceil_mode and case.ceil_mode:
            return False
        if case.op == "avg_pool" and case.count_include_pad not in self.count_include_pad:
            return False
        if self.rule is not None and not self.rule(case):
            return False
        return case.is_valid()

    def project(self, case: Case) -> Case | None:
        """The nearest supported case: unsupported features set to their defaults, or None."""
        if case.op not in self.ops or case.dims not in self.dims:
            return None
        c = case
        d = c.dims
        if not self.stride:
            c = replace(c, stride=(1,) * d)
        if not self.dilation:
            c = replace(c, dilation=(1,) * d)
        if not self.groups and c.groups != 1:
            c = replace(c, groups=1, cin=c.cin // c.groups, cout=max(1, c.cout // c.groups))
        if not self.bias:
            c = replace(c, bias=False)
        if not self.batch and c.n > 1:
            c = replace(c, n=1)
        if not self.empty_batch and c.n == 0:
            c = replace(c, n=1)
        if not self.channels:
            c = replace(c, cin=1, cout=1, groups=1)
        if not self.output_padding:
            c = replace(c, output_padding=(0,) * d)
        if not self.ceil_mode:
            c = replace(c, ceil_mode=False)
        if c.op == "avg_pool" and c.count_include_pad not in self.count_include_pad:
            c = replace(c, count_include_pad=self.count_include_pad[0])
        if not (padding_kinds(c) & set(self.padding)):
            alts = []
            if "symmetric" in self.padding:
                alts.append(tuple((max(p), max(p)) for p in c.padding))
                alts.append(tuple((min(p), min(p)) for p in c.padding))
            for mode in ("same", "same_lower", "full", "valid"):
                if mode in self.padding:
                    try:
                        alts.append(P.normalize_padding(mode if mode != "same_lower" else "same_lower", c.spatial, c.kernel, c.stride, c.dilation))
                    except P.ConvParamError:
                        pass
            for pads in alts:
                cand = replace(c, padding=tuple(pads))
                if self.supports(cand):
                    c = cand
                    break
        return c if self.supports(c) else None


ALL = Capabilities()


def _ax(vals: Iterable[Any], dims: int) -> tuple:
    return tuple(vals)[:dims]


def _conv_catalogue(dims: int) -> list[Case]:
    S = lambda *v: _ax(v, dims)  # noqa: E731 - per-axis values, first `dims` of them
    c = []
    add = c.append
    add(Case("conv", 1, 1, 1, S(5, 4, 3), S(3, 2, 2), label="plain"))
    add(Case("conv", 2, 3, 2, S(5, 4, 3), S(3, 3, 2), bias=True, seed=1, label="bias and channels"))
    add(Case("conv", 1, 2, 2, S(5, 4, 3), S(3, 3, 2), padding=S((1, 1), (2, 2), (1, 1)), seed=2, label="symmetric padding"))
    add(Case("conv", 1, 2, 2, S(5, 4, 3), S(3, 3, 2), padding=S((0, 2), (1, 0), (2, 1)), seed=3, label="asymmetric padding"))
    add(Case("conv", 1, 1, 2, S(5, 5, 3), S(2, 4, 2), padding=S((0, 1), (1, 2), (0, 1)), seed=4, label="odd same padding, extra zero at the end"))
    add(Case("conv", 1, 1, 2, S(5, 5, 3), S(2, 4, 2), padding=S((1, 0), (2, 1), (1, 0)), seed=5, label="odd same padding, extra zero at the start"))
    add(Case("conv", 1, 2, 2, S(8, 7, 5), S(3, 2, 2), stride=S(2, 2, 2), seed=6, label="stride 2 with an unread tail"))
    add(Case("conv", 1, 1, 2, S(9, 8, 5), S(2, 1, 2), stride=S(3, 4, 3), seed=7, label="stride larger than the kernel"))
    add(Case("conv", 1, 2, 2, S(7, 7, 5), S(3, 2, 2), dilation=S(2, 3, 2), seed=8, label="dilation"))
    add(Case("conv", 1, 1, 2, S(7, 3, 3), S(3, 2, 2), dilation=S(3, 2, 2), seed=9, label="dilation making the kernel span the input"))
    add(Case("conv", 1, 2, 2, S(3, 2, 2), S(5, 4, 3), padding=S((1, 1), (1, 1), (0, 1)), seed=10, label="kernel as large as the padded input"))
    add(Case("conv", 1, 2, 1, S(4, 6, 2), S(3, 3, 2), stride=S(3, 2, 2), seed=11, label="output of size 1 on an axis"))
    add(Case("conv", 1, 4, 6, S(5, 4, 3), S(3, 2, 2), groups=2, bias=True, seed=12, label="groups with several channels per group"))
    add(Case("conv", 1, 6, 3, S(5, 4, 3), S(2, 3, 2), groups=3, seed=13, label="groups, one output per group"))
    add(Case("conv", 2, 3, 3, S(6, 5, 3), S(3, 3, 2), groups=3, bias=True, padding=S((1, 1), (1, 1), (0, 0)), seed=14, label="depthwise"))
    add(Case("conv", 1, 2, 4, S(5, 4, 3), S(2, 2, 2), groups=2, seed=15, label="depthwise with multiplier 2"))
    add(Case("conv", 0, 2, 3, S(5, 4, 3), S(3, 2, 2), bias=True, seed=16, label="empty batch"))
    add(Case("conv", 2, 4, 4, S(9, 7, 5), S(3, 2, 2), stride=S(2, 3, 1), padding=S((1, 2), (0, 1), (1, 0)),
             dilation=S(2, 1, 2), groups=2, bias=True, seed=17, label="everything at once"))
    add(Case("conv", 2, 4, 4, S(9, 7, 5), S(3, 2, 2), stride=S(2, 3, 1), padding=S((1, 2), (0, 1), (1, 0)),
             dilation=S(2, 1, 2), groups=2, bias=True, values="small", seed=18, label="everything at once, small integers"))
    add(Case("conv", 1, 16, 2, S(6, 5, 4), S(3, 3, 2), bias=True, seed=19, label="long reduction"))
    add(Case("conv", 2, 3, 3, S(6, 6, 4), S(2, 2, 2), seed=20, label="short reduction (precision)"))
    add(Case("conv", 1, 2, 3, S(6, 5, 4), S(1, 1, 1), stride=S(2, 2, 2), bias=True, seed=21, label="1x1 kernel with stride"))
    # in-place friendly shape: an aliased output buffer overwrites inputs that later channels still read
    add(Case("conv", 2, 6, 6, S(7, 6, 4), S(1, 1, 1), bias=True, seed=34, label="square 1x1, stride 1, no padding"))
    # one product per output: y = fl(x*w) exactly, the rounding of a single operation is visible
    add(Case("conv", 2, 4, 4, S(9, 8, 5), S(1, 1, 1), groups=4, seed=35, label="one product per output (rounding mode)"))
    # depthwise and grouped layers with many channels (MobileNet, ResNeXt): channel blocks and their remainders
    add(Case("conv", 2, 19, 19, S(7, 6, 4), S(3, 3, 2), padding=S((1, 1), (1, 1), (1, 0)), groups=19, bias=True, seed=43,
             label="depthwise, many channels (channel-block remainders)"))
    add(Case("conv", 1, 26, 13, S(6, 5, 4), S(3, 2, 2), stride=S(2, 1, 1), groups=13, bias=True, seed=44,
             label="many groups (group-block remainders)"))
    # a long last axis in every dimensionality: row tiles of 16 or 32 outputs and their remainders
    add(Case("conv", 1, 3, 4, {1: (70,), 2: (5, 53), 3: (3, 4, 37)}[dims], S(3, 3, 3), padding=S((1, 1), (1, 1), (1, 1)),
             bias=True, seed=36, label="long last axis (row tiles)"))
    # sizes that are not multiples of any tile or vector width: remainder loops of blocked kernels
    big = {1: (203,), 2: (41, 23), 3: (13, 11, 7)}[dims]
    add(Case("conv", 2, 5, 3, big, S(3, 3, 3), padding=S((1, 1), (1, 1), (1, 1)), bias=True, seed=22,
             label="large odd sizes (tiling remainders)"))
    add(Case("conv", 5, 17, 19, S(6, 5, 4), S(2, 2, 2), bias=True, seed=24, label="many channels (channel-block remainders)"))
    # the layer shapes fast paths are written for (3x3 same, strided 3x3, the 7x7 stem, 1x1 projections)
    add(Case("conv", 2, 4, 8, S(9, 8, 5), S(3, 3, 3), padding=S((1, 1), (1, 1), (1, 1)), bias=True, seed=26,
             label="classic 3x3, stride 1, padding 1"))
    add(Case("conv", 2, 4, 8, S(9, 8, 5), S(3, 3, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), bias=True, seed=27,
             label="classic 3x3, stride 2, padding 1"))
    add(Case("conv", 1, 3, 4, S(15, 13, 9), S(7, 7, 7), stride=S(2, 2, 2), padding=S((3, 3), (3, 3), (3, 3)), bias=True,
             seed=28, label="classic 7x7 stem, stride 2, padding 3"))
    add(Case("conv", 2, 8, 5, S(7, 6, 4), S(1, 1, 1), bias=True, seed=29, label="classic 1x1 projection"))
    add(Case("conv", 1, 3, 2, S(5, 4, 3), S(1, 1, 1), padding=S((1, 0), (0, 2), (1, 1)), bias=True, seed=30,
             label="1x1 kernel with padding"))
    add(Case("conv", 1, 3, 4, S(31, 27, 13), S(11, 7, 5), stride=S(4, 3, 2), padding=S((2, 2), (1, 2), (0, 1)), bias=True,
             seed=25, label="large kernel with large stride"))
    add(Case("conv", 2, 6, 10, S(37, 29, 9), S(5, 3, 2), stride=S(2, 3, 1), padding=S((2, 1), (0, 2), (1, 0)), dilation=S(1, 2, 2),
             groups=2, bias=True, seed=23, label="large odd sizes with every parameter"))
    # the classic layers again at sizes past 32 on the last two axes: fast paths for them tile rows and columns
    L = {1: (67,), 2: (35, 34), 3: (5, 18, 21)}[dims]
    add(Case("conv", 1, 3, 4, L, S(3, 3, 3), padding=S((1, 1), (1, 1), (1, 1)), bias=True, seed=37,
             label="classic 3x3, stride 1, padding 1, large"))
    add(Case("conv", 1, 3, 4, L, S(3, 3, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), bias=True, seed=38,
             label="classic 3x3, stride 2, padding 1, large"))
    add(Case("conv", 1, 3, 4, {1: (69,), 2: (39, 37), 3: (7, 18, 21)}[dims], S(7, 7, 7), stride=S(2, 2, 2),
             padding=S((3, 3), (3, 3), (3, 3)), bias=True, seed=39, label="classic 7x7 stem, stride 2, padding 3, large"))
    add(Case("conv", 2, 4, 6, L, S(1, 1, 1), stride=S(2, 2, 2), bias=True, seed=40, label="classic 1x1 projection, stride 2, large"))
    # reductions of about a thousand terms: kernels that switch to a narrow accumulator only on long sums
    add(Case("conv", 1, {1: 128, 2: 64, 3: 48}[dims], 4, S(7, 6, 4), {1: (9,), 2: (5, 5), 3: (3, 3, 3)}[dims],
             padding=S((1, 1), (2, 2), (1, 1)), bias=True, seed=32, label="very long reduction (accumulator precision)"))
    # the same reduction with values whose every partial sum is exact in float32: any summation order gives
    # the exact result, so inputs narrowed (TF32, bfloat16) only on long reductions show as a nonzero error
    add(Case("conv", 1, {1: 128, 2: 64, 3: 48}[dims], 4, S(7, 6, 4), {1: (9,), 2: (5, 5), 3: (3, 3, 3)}[dims],
             padding=S((1, 1), (2, 2), (1, 1)), bias=True, values="dyadic", seed=41,
             label="very long reduction, exact in float32 (narrowed inputs)"))
    return c


def _transpose_catalogue(dims: int) -> list[Case]:
    S = lambda *v: _ax(v, dims)  # noqa: E731
    c = []
    add = c.append
    add(Case("conv_transpose", 1, 1, 1, S(3, 3, 2), S(3, 2, 2), label="plain"))
    add(Case("conv_transpose", 2, 3, 2, S(3, 3, 2), S(3, 2, 2), bias=True, seed=1, label="bias and channels"))
    add(Case("conv_transpose", 1, 2, 3, S(4, 3, 2), S(3, 3, 2), stride=S(2, 3, 2), seed=2, label="stride"))
    add(Case("conv_transpose", 1, 2, 2, S(4, 3, 2), S(3, 2, 2), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (0, 0)),
             output_padding=S(1, 1, 1), seed=3, label="output_padding"))
    add(Case("conv_transpose", 1, 2, 2, S(4, 3, 2), S(4, 3, 2), stride=S(2, 2, 2), padding=S((0, 2), (1, 0), (1, 0)), seed=4,
             label="asymmetric crop"))
    add(Case("conv_transpose", 1, 2, 2, S(3, 3, 2), S(2, 3, 2), dilation=S(2, 3, 2), seed=5, label="dilation"))
    add(Case("conv_transpose", 1, 2, 2, S(3, 3, 2), S(2, 3, 2), stride=S(3, 2, 2), dilation=S(2, 2, 1), output_padding=S(2, 1, 1),
             seed=6, label="output_padding below the dilation"))
    add(Case("conv_transpose", 1, 4, 6, S(3, 3, 2), S(3, 2, 2), groups=2, bias=True, seed=7, label="groups"))
    add(Case("conv_transpose", 1, 3, 3, S(4, 3, 2), S(3, 3, 2), groups=3, stride=S(2, 2, 1), seed=8, label="depthwise"))
    add(Case("conv_transpose", 1, 2, 3, S(3, 2, 2), S(2, 3, 2), seed=9, label="non-square weight layout"))
    add(Case("conv_transpose", 0, 2, 3, S(3, 3, 2), S(2, 2, 2), bias=True, seed=10, label="empty batch"))
    add(Case("conv_transpose", 2, 4, 6, S(4, 3, 2), S(3, 2, 2), stride=S(2, 3, 1), padding=S((1, 2), (0, 1), (1, 0)),
             output_padding=S(1, 0, 0), dilation=S(1, 2, 2), groups=2, bias=True, seed=11, label="everything at once"))
    add(Case("conv_transpose", 2, 4, 6, S(4, 3, 2), S(3, 2, 2), stride=S(2, 3, 1), padding=S((1, 2), (0, 1), (1, 0)),
             output_padding=S(1, 0, 0), dilation=S(1, 2, 2), groups=2, bias=True, values="small", seed=12,
             label="everything at once, small integers"))
    add(Case("conv_transpose", 1, 3, 2, S(4, 4, 3), S(2, 2, 2), stride=S(2, 2, 2), seed=13, label="short reduction (precision)"))
    add(Case("conv_transpose", 2, 6, 4, {1: (67,), 2: (19, 13), 3: (9, 7, 5)}[dims], S(3, 4, 2), stride=S(2, 3, 2), padding=S((1, 2), (2, 1), (0, 1)),
             output_padding=S(1, 2, 1), groups=2, bias=True, seed=14, label="large odd sizes (tiling remainders)"))
    add(Case("conv_transpose", 1, 2, 3, S(4, 3, 2), S(2, 1, 2), stride=S(3, 2, 3), bias=True, seed=21,
             label="stride larger than the kernel (output positions no tap reaches)"))
    add(Case("conv_transpose", 5, 3, 19, S(3, 3, 2), S(3, 2, 2), stride=S(2, 1, 2), padding=S((1, 1), (0, 1), (1, 0)),
             output_padding=S(1, 0, 1), bias=True, seed=16, label="many channels and samples (block remainders)"))
    add(Case("conv_transpose", 2, 19, 19, S(4, 3, 2), S(3, 2, 2), stride=S(2, 2, 1), groups=19, bias=True, seed=19,
             label="depthwise, many channels (channel-block remainders)"))
    add(Case("conv_transpose", 1, 26, 13, S(3, 3, 2), S(2, 3, 2), stride=S(1, 2, 1), groups=13, bias=True, seed=20,
             label="many groups (group-block remainders)"))
    add(Case("conv_transpose", 1, 2, 3, {1: (30,), 2: (3, 12), 3: (2, 3, 12)}[dims], S(3, 3, 3), stride=S(2, 1, 2),
             padding=S((1, 1), (1, 1), (1, 0)), output_padding=S(1, 0, 1), bias=True, seed=17, label="long last axis (row tiles)"))
    add(Case("conv_transpose", 2, {1: 128, 2: 64, 3: 48}[dims], 4, S(6, 5, 3), {1: (9,), 2: (5, 5), 3: (3, 3, 3)}[dims],
             stride=S(2, 1, 1), padding=S((1, 1), (2, 2), (1, 1)), bias=True, seed=15,
             label="very long reduction (accumulator precision)"))
    add(Case("conv_transpose", 1, {1: 128, 2: 64, 3: 48}[dims], 4, S(6, 5, 3), {1: (9,), 2: (5, 5), 3: (3, 3, 3)}[dims],
             stride=S(2, 1, 1), padding=S((1, 1), (2, 2), (1, 1)), bias=True, values="dyadic", seed=18,
             label="very long reduction, exact in float32 (narrowed inputs)"))
    return c


def _grad_catalogue(op: str, dims: int) -> list[Case]:
    S = lambda *v: _ax(v, dims)  # noqa: E731
    out = [replace(c, op=op, bias=False) for c in _conv_catalogue(dims) if c.is_valid()]
    # the input gradient sums over output channels: a long reduction needs many of them
    out.append(Case(op, 2, 4, {1: 128, 2: 64, 3: 48}[dims], S(7, 6, 4), {1: (9,), 2: (5, 5), 3: (3, 3, 3)}[dims],
                    padding=S((1, 1), (2, 2), (1, 1)), seed=33, label="very long reduction over output channels"))
    out.append(Case(op, 2, 4, {1: 128, 2: 64, 3: 48}[dims], S(7, 6, 4), {1: (9,), 2: (5, 5), 3: (3, 3, 3)}[dims],
                    padding=S((1, 1), (2, 2), (1, 1)), values="dyadic", seed=42,
                    label="very long reduction over output channels, exact in float32 (narrowed inputs)"))
    return out


def _pool_catalogue(op: str, dims: int) -> list[Case]:
    S = lambda *v: _ax(v, dims)  # noqa: E731
    c = []
    add = c.append
    add(Case(op, 1, 1, 1, S(6, 4, 4), S(2, 2, 2), label="plain"))
    add(Case(op, 2, 3, 3, S(7, 5, 4), S(3, 2, 2), stride=S(2, 1, 2), seed=1, label="overlapping windows"))
    add(Case(op, 1, 2, 2, S(7, 6, 5), S(3, 3, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), values="negative",
             seed=2, label="windows that start in the padding (negative values)"))
    add(Case(op, 1, 2, 2, S(7, 6, 5), S(3, 3, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), values="positive",
             seed=3, label="windows that start in the padding"))
    add(Case(op, 1, 2, 2, S(5, 6, 5), S(2, 3, 2), stride=S(2, 2, 2), ceil_mode=True, seed=4, label="ceil_mode with a partial last window"))
    add(Case(op, 1, 2, 2, S(6, 5, 5), S(3, 2, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), ceil_mode=True,
             seed=5, label="ceil_mode where a last window would start in the padding"))
    add(Case(op, 1, 2, 2, S(7, 7, 5), S(3, 3, 3), stride=S(3, 3, 3), padding=S((1, 1), (1, 1), (1, 1)), ceil_mode=True,
             values="positive", seed=6, label="ceil_mode, padding and partial windows"))
    add(Case(op, 1, 1, 1, S(7, 6, 4), S(2, 3, 2), stride=S(3, 1, 2), seed=7, label="stride larger than the window"))
    add(Case(op, 1, 2, 2, S(7, 8, 5), S(4, 2, 2), stride=S(1, 3, 2), padding=S((2, 2), (1, 1), (1, 1)), values="negative",
             seed=8, label="even window with padding"))
    add(Case(op, 1, 2, 2, S(5, 4, 3), S(3, 2, 2), stride=S(1, 1, 1), padding=S((0, 1), (1, 0), (1, 0)), values="negative",
             seed=9, label="asymmetric padding"))
    add(Case(op, 0, 2, 2, S(5, 4, 4), S(2, 2, 2), seed=10, label="empty batch"))
    add(Case(op, 1, 2, 2, S(3, 2, 2), S(3, 2, 2), stride=S(1, 1, 1), seed=11, label="window as large as the input"))
    add(Case(op, 2, 3, 3, {1: (101,), 2: (37, 29), 3: (13, 11, 9)}[dims], S(3, 2, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), ceil_mode=True,
             count_include_pad=op == "max_pool", seed=15, label="large odd sizes (tiling remainders)"))
    # SIMD blocks over channels and chunks over the batch, with remainders; row tiles on a long last axis
    add(Case(op, 5, 19, 19, S(7, 6, 5), S(3, 2, 2), stride=S(2, 2, 2), padding=S((1, 1), (1, 0), (1, 1)), ceil_mode=True,
             count_include_pad=op == "max_pool", seed=16, label="many channels and samples (block remainders)"))
    add(Case(op, 1, 2, 2, {1: (70,), 2: (5, 53), 3: (3, 4, 37)}[dims], S(3, 3, 3), stride=S(1, 2, 1),
             padding=S((1, 1), (1, 1), (1, 1)), seed=17, label="long last axis (row tiles)"))
    if op == "max_pool":
        add(Case(op, 1, 2, 2, S(8, 7, 5), S(3, 2, 2), stride=S(2, 1, 1), dilation=S(2, 3, 2), padding=S((1, 1), (1, 1), (1, 1)),
                 values="negative", seed=12, label="dilation"))
        add(Case(op, 1, 2, 2, S(9, 7, 6), S(2, 3, 2), stride=S(3, 2, 2), dilation=S(3, 2, 2), padding=S((1, 1), (1, 1), (1, 1)),
                 ceil_mode=True, seed=13, label="dilation and ceil_mode"))
        add(Case(op, 1, 2, 2, S(2, 2, 2), S(2, 2, 2), stride=S(1, 1, 1), dilation=S(3, 3, 3), padding=S((1, 1), (1, 1), (1, 1)),
                 seed=14, label="a dilated window lying entirely in the padding (-inf)"))
    else:
        add(Case(op, 1, 2, 2, S(7, 6, 5), S(3, 3, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)),
                 count_include_pad=False, seed=12, label="count_include_pad=False"))
        add(Case(op, 1, 2, 2, S(6, 5, 5), S(3, 2, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), ceil_mode=True,
                 count_include_pad=False, seed=13, label="count_include_pad=False with ceil_mode"))
        add(Case(op, 2, 3, 3, S(9, 8, 6), S(4, 4, 3), stride=S(2, 2, 2), padding=S((2, 2), (1, 1), (1, 1)), ceil_mode=True,
                 seed=14, label="long windows (precision)"))
    return c


def catalogue(op: str, dims: int, caps: Capabilities = ALL) -> list[Case]:
    """The deterministic edge cases for ``op`` in ``dims`` spatial axes, projected onto ``caps``.

    Every case is valid; duplicates created by the projection are dropped.
    """
    if op == "conv":
        raw = _conv_catalogue(dims)
    elif op == "conv_transpose":
        raw = _transpose_catalogue(dims)
    elif op in ("conv_grad_input", "conv_grad_weight"):
        raw = _grad_catalogue(op, dims)
    elif op in POOLS:
        raw = _pool_catalogue(op, dims)
    else:
        raise P.ConvParamError(f"op={op!r}: ops are " + ", ".join(repr(o) for o in OPS))
    seen, out = set(), []
    for c in raw:
        if not c.is_valid():
            continue
        p = caps.project(c)
        if p is None:
            continue
        key = replace(p, label="")
        if key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out


# --------------------------------------------------------------------------- hypothesis


def _pick(rng: Any, weighted: dict) -> Any:
    keys = list(weighted)
    return rng.choices(keys, weights=[weighted[k] for k in keys])[0]


def random_case(op: str, dims: int, caps: Capabilities, rng: Any) -> Case:
    """One case drawn with ``rng`` (a :class:`random.Random`), every parameter within ``caps``.

    Weights favour the interesting values evenly (several groups and channels
    per group, strides and dilations up to 3, every padding form) instead of
    the smallest ones, so that combinations appear within a small budget.
    """
    small = dims >= 3
    kinds = sorted(set(caps.padding))
    if "asymmetric" in kinds:
        # arbitrary pairs express every mode; draw the modes' own pairs too, they meet special code paths
        kinds += ["asymmetric", "asymmetric", "same", "same_lower", "valid"] + (["full"] if op not in POOLS else [])
    kind = rng.choice(kinds)
    ks, ss, ds, lohi, ns, opads = [], [], [], [], [], []
    for _ in range(dims):
        k = _pick(rng, {1: 2, 2: 3, 3: 3, 4: 2} if not small else {1: 2, 2: 3, 3: 2})
        s = _pick(rng, {1: 3, 2: 3, 3: 2}) if caps.stride else 1
        d = _pick(rng, {1: 4, 2: 2, 3: 2}) if caps.dilation and op != "avg_pool" else 1
        span = d * (k - 1) + 1
        if op in POOLS:
            half = span // 2
            lo = rng.randint(0, half) if kind != "valid" else 0
            hi = lo if kind != "asymmetric" else rng.randint(0, half)
        elif kind == "asymmetric":
            lo, hi = rng.randint(0, 3), rng.randint(0, 3)
        elif kind == "symmetric":
            lo = hi = rng.randint(0, 2)
        else:
            lo = hi = 0
        out = rng.randint(1, 3 if small else 5)
        if op == "conv_transpose":
            n = out
            opad = rng.randint(0, max(s, d) - 1) if caps.output_padding else 0
        else:
            n = max(1, (out - 1) * s + span - lo - hi + rng.randint(0, s - 1))
            opad = 0
        ks.append(k), ss.append(s), ds.append(d), lohi.append((lo, hi)), ns.append(n), opads.append(opad)
    groups = _pick(rng, {1: 4, 2: 3, 3: 2, 4: 1}) if caps.groups and op not in POOLS else 1
    cg = rng.randint(1, 3) if caps.channels else 1
    og = rng.randint(1, 3) if caps.channels and op not in POOLS else 1
    batch = {1: 5, 2: 3, 3: 1} if caps.batch else {1: 1}
    if caps.empty_batch:
        batch[0] = 0.5
    values = {"normal": 3, "small": 2, "negative": 1} if op == "max_pool" else {"normal": 3, "small": 2}
    c = Case(
        op, n=_pick(rng, batch), cin=cg * groups, cout=og * groups, spatial=tuple(ns), kernel=tuple(ks), stride=tuple(ss),
        padding=tuple(lohi), dilation=tuple(ds), groups=groups,
        bias=caps.bias and op in ("conv", "conv_transpose") and rng.random() < 0.5, output_padding=tuple(opads),
        ceil_mode=caps.ceil_mode and op in POOLS and rng.random() < 0.5,
        count_include_pad=rng.choice(caps.count_include_pad) if op == "avg_pool" else True,
        values=_pick(rng, values), seed=rng.randint(0, 2**16), label="explored",
    )
    if kind in ("same", "same_lower", "full"):
        try:
            c = replace(c, padding=tuple(P.normalize_padding(kind, c.spatial, c.kernel, c.stride, c.dilation)))
        except P.ConvParamError:
            pass
    return c


def cases(op: str, dims: int, caps: Capabilities = ALL):
    """Strategy of valid, supported cases of ``op`` (see :func:`random_case`).

    Hypothesis draws the seed of each case; the case's parameters are spread
    evenly by :func:`random_case` (the engine shrinks failures itself, towards
    one of everything, no padding and small integer inputs).
    """
    import random

    from hypothesis import assume
    from hypothesis import strategies as st

    def build(seed: int) -> Case | None:
        rng = random.Random(seed)
        for _ in range(25):  # restrictive targets: draw again rather than discard the example
            c = random_case(op, dims, caps, rng)
            if caps.supports(c):
                return c
        return None

    @st.composite
    def draw_case(draw):
        c = build(draw(st.integers(0, 2**63 - 1)))
        assume(c is not None)
        return c

    return draw_case()
