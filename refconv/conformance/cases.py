"""Conformance cases: one frozen description per call, the edge-case catalogue, and strategies.

A :class:`Case` holds every parameter of one call in canonical form (per-axis
tuples, padding as ``(lo, hi)`` pairs), how to fill the inputs (``values``,
see :data:`VALUES`) and the memory layout the target receives them in
(``layout``, see :data:`LAYOUTS`).  Inputs are a pure function of the case and
the dtype.  A case with ``expect_refusal=True`` is a configuration the
definition rejects: a correct target raises on it (specs/conformance.md).

:class:`Capabilities` says which parameters a target supports; the catalogue
is projected onto them and the strategies draw only inside them.
:func:`coverage` summarizes what a set of cases reached.

Examples
--------
>>> c = Case('conv', n=1, cin=1, cout=1, spatial=(5,), kernel=(3,), padding=((0, 1),))
>>> c.output_shape
(1, 1, 4)
>>> sorted(c.arrays('float32'))
['w', 'x']
>>> [k.label for k in catalogue('conv', 1)][:3]
['plain', 'bias and channels', 'symmetric padding']
>>> f = replace(c, n=2, layout='fortran', values='subnormal').arrays('float32')['x']
>>> f.flags.c_contiguous, bool(0 < abs(f).max() < np.finfo(np.float32).tiny)
(False, True)
>>> bad = Case('conv', spatial=(2,), kernel=(4,), expect_refusal=True)
>>> bad.is_valid(), bad.output_shape, bad.describe()
(False, None, 'conv(x(1, 1, 2), w(1, 1, 4); stride=(1,), padding=((0, 0),), dilation=(1,), groups=1) values=normal (invalid: must be refused)')
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np

from .. import params as P
from .. import shapes
from . import registry

__all__ = [
    "OPS",
    "VALUES",
    "LAYOUTS",
    "Case",
    "Capabilities",
    "catalogue",
    "cases",
    "coverage",
    "in_layout",
    "padding_kinds",
    "dtype_of",
]

#: every checked op (the registry's names, in registration order)
OPS = registry.names()
#: the window reductions among them
POOLS = tuple(r.name for r in registry.records() if r.window)
DTYPES = ("float64", "float32", "float16", "bfloat16")

#: how a case fills its inputs (see :meth:`Case.arrays`)
VALUES = (
    "normal",              # standard normal samples rounded to the dtype: full significands, for precision
    "small",               # integers in [-3, 3]: every format computes them exactly, for conventions
    "negative",            # integers in [-9, -1]: max-pooling windows that reach the padding must not see a zero
    "unit",                # {-1, 0, 1}: every partial sum is an integer of at most n
    "sparse",              # unit values, mostly zero: about 100 nonzero products per output, far below 256
    "positive",            # integers in [1, 9]
    "dyadic",              # multiples of 2**-12 times +-1: every float32 summation order is exact
    "subnormal",           # subnormal inputs (the first array and the bias), the others +-1
    "subnormal_products",  # normal inputs whose products (and sums) lie in the subnormal range
    "overflow",            # values near the overflow threshold whose exact sums stay finite
    "cancel",              # paired terms that cancel exactly: the exact result is the bias (or 0)
)

#: memory layouts of the arrays a target receives (values always identical)
LAYOUTS = ("contiguous", "fortran", "strided", "channels_last", "negative", "misaligned", "readonly")


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


# --------------------------------------------------------------------------- layouts


def in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """``a``'s values in memory laid out as ``layout`` (one of :data:`LAYOUTS`).

    ``'fortran'``: column-major; ``'strided'``: a view with steps 2 (channels,
    last axis) into a larger buffer whose gaps hold NaN; ``'channels_last'``:
    axis 1 stored last (shape unchanged); ``'negative'``: negative strides on
    every axis; ``'misaligned'``: a data pointer that is not a multiple of the
    itemsize; ``'readonly'``: not writeable.

    >>> a = np.arange(6.0).reshape(1, 2, 3)
    >>> [bool(np.array_equal(in_layout(a, k), a)) for k in LAYOUTS]
    [True, True, True, True, True, True, True]
    >>> in_layout(a, 'negative').strides, in_layout(a, 'misaligned').flags.aligned
    ((-48, -24, -8), False)
    """
    if layout == "contiguous":
        return np.ascontiguousarray(a)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        # steps (1, 2, 1, ..., 2) starting one element in: the view skips every other channel and column
        steps = [1] * a.ndim
        if a.ndim:
            steps[-1] = 2
        if a.ndim > 2:
            steps[1] = 2
        # the gaps hold NaN (an integer array, e.g. indices: -1), so a kernel reading them shows it
        gap = np.nan if a.dtype.kind in "fc" else -1
        buf = np.full([max(1, s * n + 1) for s, n in zip(steps, a.shape)], gap, dtype=a.dtype)
        view = buf[tuple(slice(1, 1 + s * n, s) for s, n in zip(steps, a.shape))]
        view[...] = a
        return view
    if layout == "channels_last":
        if a.ndim < 3:
            return np.ascontiguousarray(a)
        # memory order (N, *S, C); the view's axes are (N, C, *S)
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)
    if layout == "negative":
        rev = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[rev])[rev]
    if layout == "misaligned":
        raw = np.zeros(a.nbytes + 2 * a.itemsize, dtype=np.uint8)
        # start 1 (or 2) bytes past an address that is a multiple of the itemsize: never itself aligned
        off = (-raw.ctypes.data) % a.itemsize + 1
        out = np.ndarray(a.shape, dtype=a.dtype, buffer=raw, offset=off)
        out[...] = a
        return out
    if layout == "readonly":
        out = np.array(a, copy=True)
        out.flags.writeable = False
        return out
    raise P.ConvParamError(f"layout={layout!r}: layouts are " + ", ".join(repr(k) for k in LAYOUTS))


# --------------------------------------------------------------------------- value classes


def _format(dt: np.dtype) -> tuple[int, int, int]:
    """``(p, emin, emax)`` of a float dtype: significand bits, smallest normal and largest exponents."""
    import ml_dtypes

    fi = ml_dtypes.finfo(dt)
    return fi.nmant + 1, fi.minexp, fi.maxexp - 1


def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=shape)


def _dyadic(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # multiples of 2**-12 in [-1, 1): at most 12 significant bits
    return rng.integers(-4096, 4096, size=shape).astype(np.float64) * 2.0**-12


def _fill(case: "Case", rng: np.random.Generator, index: int, name: str, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    """Values of the ``index``-th input array (``name``) of ``case``, exact in ``dt``."""
    v = case.values
    lead = index == 0 or name == "b"  # the first array and the bias carry the magnitudes; the others are signs
    if v == "small":
        return rng.integers(-3, 4, size=shape).astype(np.float64)
    if v == "negative":
        return rng.integers(-9, 0, size=shape).astype(np.float64)
    if v == "unit":
        # products in {-1, 0, 1}: every partial sum is an integer of at most n, exact in every format
        return rng.integers(-1, 2, size=shape).astype(np.float64)
    if v == "positive":
        return rng.integers(1, 10, size=shape).astype(np.float64)
    if v == "sparse":
        # partial sums are integers no larger than the count of nonzero products (about 100, below 256 with
        # overwhelming probability): exact even in bfloat16's 8 bits
        if not lead or name == "b":
            return _signs(rng, shape)
        q = min(1.0, 100.0 / max(1, case.terms()))
        return _signs(rng, shape) * (rng.random(size=shape) < q)
    if v in ("dyadic", "cancel"):
        # products of a multiple of 2**-12 and +-1 are exact, every partial sum is a multiple of 2**-12 no
        # larger than S = |b| + sum |x_i w_i|: exact in a format of p bits while S * 2**12 < 2**p
        if not lead:
            return _signs(rng, shape)
        a = _dyadic(rng, shape)
        if v == "cancel":
            # magnitudes spread over 2**0 .. 2**k: large partial sums on the way to an exact zero
            p, emin, emax = _format(dt)
            k = max(1, min(16, emax - 4 - math.ceil(math.log2(case.terms() + 2))))
            a = a * 2.0 ** rng.integers(0, k, size=shape)
        return a
    if v in ("subnormal", "subnormal_products", "overflow"):
        p, emin, emax = _format(dt)
        if v == "subnormal" or (v == "subnormal_products" and case.record.window):
            if not lead:
                return _signs(rng, shape)
            # m * 2**(emin - p + 1) with |m| < 2**(p - 1): every nonzero value subnormal
            top = 2 ** (p - 1)
            return rng.integers(-top + 1, top, size=shape).astype(np.float64) * 2.0 ** (emin - p + 1)
        if v == "subnormal_products":
            # inputs m * 2**e (normal) with |m| < 2**h; products m1*m2 * 2**(2e) lie below 2**emin (subnormal),
            # on the subnormal grid (exact), 2**5 times the smallest subnormal or more; sums exact below 2**(2e+p)
            e = (emin - p + 1 + 5) // 2
            h = max(1, (emin - 2 * e) // 2 - 1)
            if name == "b":
                return rng.integers(-(2 ** (2 * h)) + 1, 2 ** (2 * h), size=shape).astype(np.float64) * 2.0 ** (2 * e)
            return rng.integers(-(2**h) + 1, 2**h, size=shape).astype(np.float64) * 2.0**e
        # overflow: S <= (terms + 1) * 2**E <= 2**(emax + 1 - headroom), headroom 2**10 (2**3 for float16's
        # narrow range): any summation order stays finite, far above where any product of two inputs is finite
        if not lead:
            return _signs(rng, shape)
        headroom = 3 if emax < 100 else 10
        e = emax + 1 - headroom - math.ceil(math.log2(case.terms() + 2))
        a = _dyadic(rng, shape) * 2.0**e
        if case.record.bound == "max":
            a = -np.abs(a) - 2.0**e  # all negative, near -max: a finite sentinel (-1e30, -65504) shows
        return a
    return rng.standard_normal(size=shape)


def _cancel_pairs(case: "Case", a: dict[str, np.ndarray]) -> None:
    """Make the reduction's terms cancel in pairs: term ``j + m/2`` equals minus term ``j`` in every block.

    The first array is duplicated and the second negated along the reduction axis of each op (the input
    channels of a group for conv, the input channels for the transposed op, the output channels of a group
    for the input gradient, the batch for the weight gradient); pooling pairs neighbours on the last axis.
    """
    spec = case.record.cancel(case)
    if spec is None:
        # a window reduction: neighbours on the last axis cancel
        x = a["x"]
        n = x.shape[-1] // 2 * 2
        x[..., 1:n:2] = -x[..., 0:n:2]
        return
    names = list(a)[:len(spec)]  # the factors of each term (one for a plain sum)
    first = names[0]
    # two factors: the first duplicated and the second negated; one factor (a plain sum): negated itself
    signs = (1.0, -1.0) if len(names) > 1 else (-1.0,)
    for (axis, m, blocks), name, sign in zip(spec, names, signs):
        arr = np.moveaxis(a[name], axis, 0)  # a view: writes go to a[name]
        half = m // 2
        for blk in range(blocks):
            base = blk * m
            for j in range(half):
                arr[base + half + j] = sign * arr[base + j]
            if m % 2 and name == first:
                arr[base + m - 1] = 0.0  # an unpaired term contributes nothing


# The default of ``stride``, ``padding``, ``dilation`` and ``output_padding``: ``None``, which
# ``Case.__post_init__`` replaces with the per-axis default, so that these fields are never ``None`` once a
# case is built.  Typed ``Any`` so the fields can carry their filled-in types.
_PER_AXIS: Any = None


@dataclass(frozen=True)
class Case:
    """One call of an operation, all parameters explicit.

    For ``conv``, ``conv_grad_input`` and ``conv_grad_weight`` the parameters
    are those of the forward convolution (``spatial`` is its input size);
    for ``conv_transpose`` ``cin``/``cout`` are the transposed op's own
    channels and ``spatial`` its input size; for pooling ``cin == cout``.
    ``values`` is one of :data:`VALUES`, ``layout`` one of :data:`LAYOUTS`;
    ``expect_refusal`` marks a configuration the definition rejects.
    ``unbatched`` (``n == 1``, an op whose record names ``unbatched`` arrays)
    passes those arrays without the batch axis, as PyTorch accepts them, and
    expects the result without it.
    """

    op: str
    n: int = 1
    cin: int = 1
    cout: int = 1
    spatial: tuple[int, ...] = (5,)
    kernel: tuple[int, ...] = (3,)
    stride: tuple[int, ...] = _PER_AXIS
    padding: tuple[tuple[int, int], ...] = _PER_AXIS
    dilation: tuple[int, ...] = _PER_AXIS
    groups: int = 1
    bias: bool = False
    output_padding: tuple[int, ...] = _PER_AXIS
    ceil_mode: bool = False
    count_include_pad: bool = True
    values: str = "normal"
    seed: int = 0
    layout: str = "contiguous"
    expect_refusal: bool = False
    divisor_override: int | None = None           # average pooling: the divisor of every window (PyTorch)
    output_size: tuple[int, ...] | None = None     # adaptive pooling: the output's spatial sizes
    norm: int = 2                                  # L_p pooling: p
    padding_mode: str = "zeros"                    # convolution: what the padding holds (PyTorch's modules)
    quant: Any = None                              # quantized ops: a refconv.conformance.quantized_ops.Quant (None: drawn)
    # fractional pooling and deformable convolution (refconv.conformance.extra_ops): the samples (one per axis,
    # 'top' = the largest below 1; None: drawn per plane), how the offsets are filled, offset groups and mask
    # (None: drawn from the seed)
    samples: Any = None
    offsets: str = "grid"
    offset_groups: int | None = None
    mask: bool | None = None
    unbatched: bool = False                        # N = 1 left out: the arrays of record.unbatched are (C, *S)
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        d = len(self.spatial)
        for name, default in (("stride", 1), ("dilation", 1), ("output_padding", 0)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, (default,) * d)
        if self.padding is None:
            object.__setattr__(self, "padding", ((0, 0),) * d)
        rec = registry.get(self.op)
        if rec.window:
            object.__setattr__(self, "cout", self.cin)  # pooling keeps the channels
        if rec.adaptive:
            if self.output_size is None:
                object.__setattr__(self, "output_size", (1,) * d)  # global pooling
            # no window: a unit kernel, stride and no padding on every axis (what the geometry helpers read)
            for name, v in (("kernel", (1,) * d), ("stride", (1,) * d), ("dilation", (1,) * d), ("padding", ((0, 0),) * d)):
                object.__setattr__(self, name, v)
        if rec.takes("samples"):
            from .extra_ops import fractional_defaults

            fractional_defaults(self)  # no stride, padding or dilation; output_size drawn when not given
        if not rec.takes("count_include_pad"):
            object.__setattr__(self, "count_include_pad", True)  # not a parameter of the op: one canonical case
        if rec.window and not rec.takes("ceil_mode"):
            object.__setattr__(self, "ceil_mode", False)  # likewise
        if self.values not in VALUES:
            raise P.ConvParamError(f"values={self.values!r}: value classes are " + ", ".join(repr(v) for v in VALUES))
        if self.layout not in LAYOUTS:
            raise P.ConvParamError(f"layout={self.layout!r}: layouts are " + ", ".join(repr(k) for k in LAYOUTS))

    # ------------------------------------------------------------ geometry
    @property
    def dims(self) -> int:
        return len(self.spatial)

    @property
    def record(self) -> Any:
        """The :class:`~refconv.conformance.registry.OpRecord` of ``op``."""
        return registry.get(self.op)

    def validate(self) -> Any:
        """The normalized parameters from :mod:`refconv.params` (raises ``ConvParamError`` if invalid)."""
        if self.unbatched and (self.n != 1 or not self.record.unbatched):
            raise P.ConvParamError(f"unbatched=True: needs N = 1 (got {self.n}) and an op that takes unbatched "
                                   f"inputs ({self.op} {'does' if self.record.unbatched else 'does not'})")
        return self.record.normalize(self)

    def is_valid(self) -> bool:
        try:
            self.validate()
        except P.ConvParamError:
            return False
        return all(s >= 1 for s in self.spatial) and self.n >= 0

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return self.record.weight(self)

    @property
    def forward_output_shape(self) -> tuple[int, ...]:
        """Output of the forward convolution (the shape of ``dy`` for the gradients).

        For a case the definition rejects, the output-size formula per axis, at least 1.
        """
        if self.expect_refusal and not self.is_valid():
            sizes = (shapes.conv_output_size(n, k, s, p, d)
                     for n, k, s, p, d in zip(self.spatial, self.kernel, self.stride, self.padding, self.dilation))
            return (self.n, self.cout, *(max(1, o) for o in sizes))
        return self.validate().output_shape

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The shape the target must return (None for a case the definition rejects)."""
        if self.expect_refusal and not self.is_valid():
            return None
        out = tuple(self.record.output(self))
        return out[1:] if self.unbatched else out  # an unbatched result has no N either

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Array arguments in call order, with their shapes (without N where the case is unbatched)."""
        return self._unbatch(self.record.arrays(self), lambda shape: shape[1:])

    def _unbatch(self, named: dict[str, Any], drop: Any) -> dict[str, Any]:
        """``named`` with ``drop`` applied to the arrays (or shapes) that lose N in an unbatched call."""
        if not self.unbatched:
            return named
        return {k: drop(v) if k in self.record.unbatched else v for k, v in named.items()}

    def batched(self, arrays: dict[str, np.ndarray]) -> tuple["Case", dict[str, np.ndarray]]:
        """The same call with its batch axis: the case with ``unbatched=False``, ``arrays`` with ``N = 1`` put back.

        >>> c = Case('conv', spatial=(4,), kernel=(2,), unbatched=True)
        >>> b, a = c.batched(c.arrays())
        >>> c.input_shapes()['x'], a['x'].shape, c.output_shape, b.output_shape
        ((1, 4), (1, 1, 4), (1, 3), (1, 1, 3))
        """
        if not self.unbatched:
            return self, arrays
        return replace(self, unbatched=False), {
            k: np.asarray(v)[None] if k in self.record.unbatched else v for k, v in arrays.items()}

    def terms(self) -> int:
        """Products summed per output element, at most (the ``n`` of ``gamma_n``)."""
        return self.record.terms(self)

    # ------------------------------------------------------------ data
    def arrays(self, dtype: str | np.dtype = "float32") -> dict[str, np.ndarray]:
        """The inputs in ``layout``, deterministic in (case, dtype): a fresh generator seeded by ``seed``."""
        if self.record.family == "quantized":  # integer inputs whatever the dtype (refconv.conformance.quantized_ops)
            from .quantized_ops import case_arrays, in_int_layout

            return {k: in_int_layout(v, self.layout) for k, v in case_arrays(self).items()}
        dt = dtype_of(dtype) if isinstance(dtype, str) else np.dtype(dtype)
        rng = np.random.default_rng([self.seed, len(self.values)])
        out: dict[str, np.ndarray] = {}
        # drawn (and derived) with N = 1 even when unbatched: the values of the batched case
        for i, (name, shape) in enumerate(self.record.arrays(self).items()):
            out[name] = _fill(self, rng, i, name, shape, dt)
        if self.values == "cancel":
            _cancel_pairs(self, out)
        out = self._unbatch(self.record.derive(self, {k: v.astype(dt) for k, v in out.items()}), lambda a: a[0])
        # integer arrays (indices) keep their int64
        return {k: in_layout(v if v.dtype.kind in "iu" else v.astype(dt), self.layout) for k, v in out.items()}

    # ------------------------------------------------------------ text
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the canonical call (see :mod:`refconv.conformance.ops`)."""
        return self.record.keywords(self)

    def describe(self) -> str:
        """One line: shapes, every non-default parameter, the value class and any non-default layout."""
        shp = ", ".join(f"{k}{v}" for k, v in self.input_shapes().items())
        rec = self.record
        # optional keywords (registry.OpRecord.optional) at their default are not named
        kw = {k: v for k, v in self.kwargs().items() if not rec.at_default(k, v)}
        # sizes the canonical call passes positionally (fractional pooling) are named too
        kw = {**{k: getattr(self, a) for k, a in (("kernel_size", "kernel"), ("output_size", "output_size"))
                 if rec.takes(k) and k not in kw}, **kw}
        parts = [f"{k}={v}" for k, v in kw.items()]
        text = f"{self.op}({shp}; {', '.join(parts)}) values={self.values}"
        if self.layout != "contiguous":
            text += f" layout={self.layout}"
        if self.quant is not None:
            text += f" quant=({self.quant.describe()})"
        if self.unbatched:
            text += " unbatched (no N axis)"
        if rec.takes("samples") or rec.takes("offset_groups"):
            from .extra_ops import describe_inputs

            text += describe_inputs(self)
        if self.expect_refusal:
            text += " (invalid: must be refused)"
        return text


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
    modes = case.record.padding_modes
    if "full" in modes:
        if all((lo, hi) == shapes.full_padding(k, d) for (lo, hi), k, d in zip(pads, case.kernel, case.dilation)):
            kinds.add("full")
    n_in = case.spatial
    for name, lower in (("same", False), ("same_lower", True)):
        if name not in modes:
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
    ``refuses_invalid=False`` declares a target that does not validate its
    arguments: the catalogue then leaves out the configurations the definition
    rejects (which a correct target must refuse with an exception).
    ``full_range=False`` declares a target that computes in a format with less
    exponent range than its arrays (a float16 accumulator for float32 inputs):
    the catalogue then leaves out the values near the overflow threshold.
    ``unbatched=True`` declares a target that takes PyTorch's unbatched
    inputs ``(C, *S)`` (and returns its result without N) for the ops whose
    record names ``unbatched`` arrays; the canonical signature is batched,
    so the default is False: a target opts in.
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
    divisor_override: bool = True  # average pooling with divisor_override
    padding_mode: bool = True      # convolution with padding_mode 'reflect', 'replicate', 'circular'
    refuses_invalid: bool = True  # raises on configurations the definition rejects
    full_range: bool = True       # values near the dtype's overflow threshold
    unbatched: bool = False       # inputs without the batch axis, (C, *S), where the op takes them (PyTorch)
    #: extra rule: a function (case) -> True when supported
    rule: Any = None
    notes: tuple[str, ...] = ()

    def replace(self, **kw: Any) -> "Capabilities":
        return dataclasses.replace(self, **kw)

    def admits(self, case: Case) -> bool:
        """Whether every feature ``case`` uses is supported (validity aside)."""
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
        if case.record.takes("count_include_pad") and case.count_include_pad not in self.count_include_pad:
            return False
        if not self.divisor_override and case.divisor_override is not None:
            return False
        if not self.padding_mode and case.padding_mode != "zeros":
            return False
        if not self.full_range and case.values == "overflow":
            return False
        if case.unbatched and not self.unbatched:
            return False
        if self.rule is not None:
            try:
                return bool(self.rule(case))
            except Exception:  # noqa: BLE001 - a rule written for valid cases, asked about an invalid one
                return False
        return True

    def supports(self, case: Case) -> bool:
        """Valid and admitted; for ``expect_refusal`` cases: invalid, admitted, and the target refuses."""
        if case.expect_refusal:
            return self.refuses_invalid and not case.is_valid() and self.admits(case)
        return case.is_valid() and self.admits(case)

    def project(self, case: Case) -> Case | None:
        """The nearest supported case: unsupported features set to their defaults, or None.

        A case the definition rejects is never projected: it is kept as it is, or dropped.
        """
        if case.expect_refusal:
            return case if self.supports(case) else None
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
        if c.record.takes("count_include_pad") and c.count_include_pad not in self.count_include_pad:
            c = replace(c, count_include_pad=self.count_include_pad[0])
        if not self.divisor_override:
            c = replace(c, divisor_override=None)
        if not self.padding_mode:
            c = replace(c, padding_mode="zeros")
        if not self.unbatched:
            c = replace(c, unbatched=False)
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
    c: list[Case] = []
    add = c.append
    add(Case("conv", 1, 1, 1, S(5, 4, 3), S(3, 2, 2), label="plain"))
    add(Case("conv", 2, 3, 2, S(5, 4, 3), S(3, 3, 2), bias=True, seed=1, label="bias and channels"))
    add(Case("conv", 1, 2, 2, S(5, 4, 3), S(3, 3, 2), padding=S((1, 1), (2, 2), (1, 1)), seed=2, label="symmetric padding"))
    add(Case("conv", 1, 2, 2, S(5, 4, 3), S(3, 3, 2), padding=S((0, 2), (1, 0), (2, 1)), seed=3, label="asymmetric padding"))
    add(Case("conv", 1, 1, 2, S(5, 5, 3), S(2, 4, 2), padding=S((0, 1), (1, 2), (0, 1)), seed=4, label="odd same padding, extra zero at the end"))
    add(Case("conv", 1, 1, 2, S(5, 5, 3), S(2, 4, 2), padding=S((1, 0), (2, 1), (1, 0)), seed=5, label="odd same padding, extra zero at the start"))
    add(Case("conv", 1, 2, 2, S(8, 7, 5), S(3, 2, 2), stride=S(2, 2, 2), seed=6, label="stride 2 with an unread tail"))
    add(Case("conv", 1, 1, 2, S(9, 8, 5), S(2, 1, 2), stride=S(3, 4, 3), seed=7, label="stride larger than the kernel"))
    # ceil(8/4) windows and no padding: 'same' by the definition while ONNX's unclamped formula is negative
    add(Case("conv", 1, 1, 2, S(8, 8, 8), S(1, 1, 1), stride=S(4, 4, 4), seed=11,
             label="stride beyond the window, no padding: also 'same'"))
    add(Case("conv", 1, 2, 2, S(7, 7, 5), S(3, 2, 2), dilation=S(2, 3, 2), seed=8, label="dilation"))
    add(Case("conv", 1, 1, 2, S(7, 3, 3), S(3, 2, 2), dilation=S(3, 2, 2), seed=9, label="dilation making the kernel span the input"))
    add(Case("conv", 1, 2, 2, S(3, 2, 2), S(5, 4, 3), padding=S((1, 1), (1, 1), (0, 1)), seed=10, label="kernel as large as the padded input"))
    add(Case("conv", 1, 2, 1, S(4, 6, 2), S(3, 3, 2), stride=S(3, 2, 2), seed=11, label="output of size 1 on an axis"))
    add(Case("conv", 1, 4, 6, S(5, 4, 3), S(3, 2, 2), groups=2, bias=True, seed=12, label="groups with several channels per group"))
    add(Case("conv", 1, 6, 3, S(5, 4, 3), S(2, 3, 2), groups=3, seed=13, label="groups, one output per group"))
    add(Case("conv", 2, 3, 3, S(6, 5, 3), S(3, 3, 2), groups=3, bias=True, padding=S((1, 1), (1, 1), (0, 0)), seed=14, label="depthwise"))
    add(Case("conv", 1, 2, 4, S(5, 4, 3), S(2, 2, 2), groups=2, seed=15, label="depthwise with multiplier 2"))
    add(Case("conv", 0, 2, 3, S(5, 4, 3), S(3, 2, 2), bias=True, seed=16, label="empty batch"))
    return c + _conv_modes(dims) + _conv_sizes(dims) + _conv_layers(dims)


def _conv_modes(dims: int) -> list[Case]:
    """Padding modes (PyTorch's padding_mode): each with asymmetric pads, with stride, dilation and groups, and at
    their limits (reflect: pads of n - 1; circular: pads of n)."""
    S = lambda *v: _ax(v, dims)  # noqa: E731 - per-axis values, first `dims` of them
    c = []
    for i, mode in enumerate(("reflect", "replicate", "circular")):
        c.append(Case("conv", 1, 2, 2, S(5, 4, 3), S(3, 2, 2), padding=S((2, 1), (1, 0), (0, 2)), padding_mode=mode,
                      bias=True, seed=50 + i, label=f"padding_mode={mode!r}, asymmetric"))
        c.append(Case("conv", 2, 4, 4, S(7, 6, 5), S(3, 2, 2), stride=S(2, 3, 1), dilation=S(2, 1, 2),
                      padding=S((2, 2), (1, 1), (1, 2)), groups=2, padding_mode=mode, bias=True, seed=53 + i,
                      label=f"padding_mode={mode!r} with stride, dilation and groups"))
    c.append(Case("conv", 1, 2, 2, S(4, 3, 3), S(3, 3, 2), padding=S((3, 3), (2, 2), (2, 1)), padding_mode="reflect",
                  seed=56, label="padding_mode='reflect', pads of n - 1 (its limit)"))
    c.append(Case("conv", 1, 2, 2, S(3, 2, 2), S(3, 3, 2), padding=S((3, 3), (2, 1), (2, 2)), padding_mode="circular",
                  seed=57, label="padding_mode='circular', pads of n (its limit)"))
    return c


def _conv_sizes(dims: int) -> list[Case]:
    """Everything at once, reduction lengths, 1x1 kernels, and sizes past tile and block boundaries."""
    S = lambda *v: _ax(v, dims)  # noqa: E731 - per-axis values, first `dims` of them
    c: list[Case] = []
    add = c.append
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
    return c


def _conv_layers(dims: int) -> list[Case]:
    """The layer shapes fast paths are written for, small and large, and reductions of a thousand terms."""
    S = lambda *v: _ax(v, dims)  # noqa: E731 - per-axis values, first `dims` of them
    c: list[Case] = []
    add = c.append
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
    c: list[Case] = []
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
    rec = registry.get(op)
    mx = rec.bound == "max"  # max pooling: no count_include_pad to vary
    c: list[Case] = []
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
    add(Case(op, 1, 1, 1, S(8, 8, 8), S(1, 1, 1), stride=S(4, 4, 4), seed=9,
             label="stride beyond the window, no padding: also 'same'"))
    add(Case(op, 1, 2, 2, S(7, 8, 5), S(4, 2, 2), stride=S(1, 3, 2), padding=S((2, 2), (1, 1), (1, 1)), values="negative",
             seed=8, label="even window with padding"))
    add(Case(op, 1, 2, 2, S(5, 4, 3), S(3, 2, 2), stride=S(1, 1, 1), padding=S((0, 1), (1, 0), (1, 0)), values="negative",
             seed=9, label="asymmetric padding"))
    add(Case(op, 0, 2, 2, S(5, 4, 4), S(2, 2, 2), seed=10, label="empty batch"))
    add(Case(op, 1, 2, 2, S(3, 2, 2), S(3, 2, 2), stride=S(1, 1, 1), seed=11, label="window as large as the input"))
    add(Case(op, 2, 3, 3, {1: (101,), 2: (37, 29), 3: (13, 11, 9)}[dims], S(3, 2, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), ceil_mode=True,
             count_include_pad=mx, seed=15, label="large odd sizes (tiling remainders)"))
    # SIMD blocks over channels and chunks over the batch, with remainders; row tiles on a long last axis
    add(Case(op, 5, 19, 19, S(7, 6, 5), S(3, 2, 2), stride=S(2, 2, 2), padding=S((1, 1), (1, 0), (1, 1)), ceil_mode=True,
             count_include_pad=mx, seed=16, label="many channels and samples (block remainders)"))
    add(Case(op, 1, 2, 2, {1: (70,), 2: (5, 53), 3: (3, 4, 37)}[dims], S(3, 3, 3), stride=S(1, 2, 1),
             padding=S((1, 1), (1, 1), (1, 1)), seed=17, label="long last axis (row tiles)"))
    if rec.has_dilation:
        add(Case(op, 1, 2, 2, S(8, 7, 5), S(3, 2, 2), stride=S(2, 1, 1), dilation=S(2, 3, 2), padding=S((1, 1), (1, 1), (1, 1)),
                 values="negative", seed=12, label="dilation"))
        add(Case(op, 1, 2, 2, S(9, 7, 6), S(2, 3, 2), stride=S(3, 2, 2), dilation=S(3, 2, 2), padding=S((1, 1), (1, 1), (1, 1)),
                 ceil_mode=True, seed=13, label="dilation and ceil_mode"))
        add(Case(op, 1, 2, 2, S(2, 2, 2), S(2, 2, 2), stride=S(1, 1, 1), dilation=S(3, 3, 3), padding=S((1, 1), (1, 1), (1, 1)),
                 seed=14, label="a dilated window lying entirely in the padding (-inf)"))
    if not mx and rec.takes("count_include_pad"):
        add(Case(op, 1, 2, 2, S(7, 6, 5), S(3, 3, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)),
                 count_include_pad=False, seed=12, label="count_include_pad=False"))
        add(Case(op, 1, 2, 2, S(6, 5, 5), S(3, 2, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), ceil_mode=True,
                 count_include_pad=False, seed=13, label="count_include_pad=False with ceil_mode"))
        add(Case(op, 2, 3, 3, S(9, 8, 6), S(4, 4, 3), stride=S(2, 2, 2), padding=S((2, 2), (1, 1), (1, 1)), ceil_mode=True,
                 seed=14, label="long windows (precision)"))
    return c + _pool_extras(op, dims)


def _pool_extras(op: str, dims: int) -> list[Case]:
    """Cases of the optional parameters: divisor_override, padding over half the window, ties of the maximum."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    rec = registry.get(op)
    c = [Case(op, 1, 2, 2, S(6, 5, 4), S(2, 3, 2), stride=S(1, 2, 1), padding=S((1, 2), (2, 2), (1, 1)), values="negative",
              seed=18, label="padding over half the window (windows of padding only)")]
    if rec.takes("divisor_override"):
        c.append(Case(op, 1, 2, 2, S(7, 6, 5), S(3, 3, 2), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)),
                      divisor_override=5, seed=19, label="divisor_override"))
        c.append(Case(op, 2, 2, 2, S(7, 6, 5), S(3, 2, 2), stride=S(2, 2, 1), padding=S((1, 1), (1, 0), (0, 1)),
                      ceil_mode=True, divisor_override=1, values="small", seed=20, label="divisor_override=1 (window sums)"))
        c.append(Case(op, 1, 2, 2, S(9, 7, 6), S(2, 3, 2), stride=S(3, 2, 2), dilation=S(3, 2, 2),
                      padding=S((1, 1), (1, 1), (1, 1)), ceil_mode=True, count_include_pad=False, divisor_override=3,
                      seed=21, label="dilation with divisor_override and ceil_mode"))
    if len(rec.outputs) > 1:
        c.append(Case(op, 2, 2, 2, S(7, 6, 5), S(3, 2, 2), stride=S(1, 1, 1), padding=S((1, 1), (1, 0), (1, 1)),
                      values="unit", seed=22, label="ties: the first maximum in window order"))
    return c




# --------------------------------------------------------------------------- tiles: a covering array
#
# Blocked kernels tile the batch, the output channels, the input channels of a group, the output rows and
# columns and the reduction (C_in/groups * prod(K)), often in a separate code path per feature set (bias,
# groups, strided or dilated windows).  A remainder or second-tile bug shows only when one dimension passes a
# tile boundary (8, 16, 32, 64, 128) while every feature is on: each row below makes one dimension large
# (2**k + 1 or 2**k + 3) and keeps bias, a kernel > 1, asymmetric padding, stride 2, dilation 2 and groups
# on every axis; values are dyadic, so every float32 summation order is exact and the judge compares exactly.

#: per-axis geometry of the tile rows: kernel, asymmetric (lo, hi) padding, base output size
_TK = (3, 3, 2)
_TPAD = ((2, 1), (1, 2), (0, 1))
_TOUT = {1: (4,), 2: (3, 4), 3: (2, 3, 3)}
#: (dimension, size) of the rows: two sizes per dimension, past different tile boundaries
_TAXES = {1: ((0, 33), (0, 129)), 2: ((0, 17), (0, 35), (1, 33), (1, 67)), 3: ((0, 17), (1, 19), (2, 33), (2, 67))}
_TRED = {1: ((15, (9,)), (29, (9,))), 2: ((11, (4, 3)), (29, (3, 3))), 3: ((5, (3, 3, 3)), (10, (3, 3, 3)))}


def _tile_rows(dims: int, pool: bool = False) -> list[tuple[str, dict]]:
    """``(label, overrides)`` per row: ``n``, ``g``, ``cg`` (channels per group), ``og``, ``out`` (axis, size), ``k``."""
    rows: list[tuple[str, dict]] = [
        ("N = 9", dict(n=9)), ("N = 35", dict(n=35, g=3)),
    ]
    if pool:
        rows += [("C = 17", dict(cg=17)), ("C = 65", dict(cg=65))]
    else:
        rows += [
            ("C_out = 34 (17 per group)", dict(og=17)), ("C_out = 195 (65 per group)", dict(og=65, g=3)),
            ("C_in/groups = 9", dict(cg=9)), ("C_in/groups = 35", dict(cg=35, g=3)),
            ("groups = 33 (depthwise)", dict(g=33, cg=1, og=1)),
        ]
    for axis, size in _TAXES[dims]:
        rows.append((f"output axis {axis} = {size}", dict(out=(axis, size))))
    if pool:
        rows.append(("window of 35 or more taps", dict(k={1: (35,), 2: (5, 7), 3: (3, 3, 4)}[dims])))
    else:
        for cg, k in _TRED[dims]:
            rows.append((f"reduction C_in/groups * prod(K) = {cg * math.prod(k)}", dict(cg=cg, k=k)))
    return rows


def _tile_case(op: str, dims: int, what: str, o: dict, seed: int, *, fast: bool = False) -> Case:
    """One row of the covering array for ``op``: everything on, one dimension past a tile boundary.

    ``fast=True``: the stride-1 layer shape fast paths are written for (3x3, padding 1, no dilation).
    """
    n, g, cg, og = o.get("n", 2), o.get("g", 2), o.get("cg", 2), o.get("og", 2)
    k = tuple(o.get("k", _TK[:dims])) if not fast else (3,) * dims
    out = list(_TOUT[dims])
    if "out" in o:
        out[o["out"][0]] = o["out"][1]
    s = (1 if fast else 2,) * dims
    d = (1 if fast else 2,) * dims
    pads = ((1, 1),) * dims if fast else _TPAD[:dims]
    label = f"past a tile: {what}, every feature on" if not fast else f"past a tile: {what}, stride-1 3x3 fast path"
    rec = registry.get(op)
    if rec.window:
        # a dilation the op always takes; an optional one (avg_pool's) is left to the other cases
        dilated = rec.has_dilation and "dilation" not in rec.optional
        d = d if dilated else (1,) * dims
        if not dilated and not fast:
            pads = ((1, 0), (0, 1), (1, 0))[:dims]  # at most half the (undilated) window
        spans = [di * (ki - 1) + 1 for di, ki in zip(d, k)]
        # one sample past an exact fit: with ceil_mode a partial last window
        sp = tuple((oo - 1) * si + sn - lo - hi + 1 for oo, si, sn, (lo, hi) in zip(out, s, spans, pads))
        return Case(op, n, cg, cg, sp, k, stride=s, padding=pads, dilation=d, ceil_mode=not fast,
                    count_include_pad=bool(seed % 2), values="dyadic", seed=seed, label=label)
    if rec.transposed:
        opad = (0,) * dims if fast else (1,) * dims
        # (n - 1)*s - lo - hi + d*(k - 1) + op + 1 >= out
        sp = tuple(max(1, -(-(oo - 1 + lo + hi - di * (ki - 1) - op_) // si) + 1)
                   for oo, si, di, ki, (lo, hi), op_ in zip(out, s, d, k, pads, opad))
        return Case(op, n, g * cg, g * og, sp, k, stride=s, padding=pads, dilation=d, output_padding=opad,
                    groups=g, bias=True, values="dyadic", seed=seed, label=label)
    spans = [di * (ki - 1) + 1 for di, ki in zip(d, k)]
    # (o - 1)*s + span - lo - hi, plus an unread tail of s - 1 samples
    sp = tuple(max(1, (oo - 1) * si + sn - lo - hi + si - 1) for oo, si, sn, (lo, hi) in zip(out, s, spans, pads))
    return Case(op, n, g * cg, g * og, sp, k, stride=s, padding=pads, dilation=d, groups=g,
                bias=rec.has_bias, values="dyadic", seed=seed, label=label)


def _tiles(op: str, dims: int) -> list[Case]:
    """The covering array, then the stride-1 fast-path shapes past a tile."""
    rec = registry.get(op)
    base = rec.grad_of or op  # a gradient tiles the geometry of its forward op
    rows = _tile_rows(dims, pool=rec.window)
    out = [_tile_case(base, dims, what, o, 100 + i) for i, (what, o) in enumerate(rows)]
    fast: list[tuple[str, dict]] = [("N = 17", dict(n=17)), ("last output axis = 35", dict(out=(dims - 1, 35)))]
    fast += [("C = 33", dict(cg=33))] if rec.window else [
        ("C_out = 66 (33 per group)", dict(og=33)), ("C_in/groups = 17", dict(cg=17))]
    out += [_tile_case(base, dims, what, o, 150 + i, fast=True) for i, (what, o) in enumerate(fast)]
    if base != op:
        out = [replace(c, op=op, bias=False) for c in out]
    return out


# --------------------------------------------------------------------------- degenerate geometry


def _conv_degenerate(op: str, dims: int) -> list[Case]:
    """Windows of padding only, outputs of size one, dilated kernels as wide as the padded input, strides
    larger than the window, each with groups > 1 (a convolution or its gradients)."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    b = registry.get(op).has_bias
    return [
        Case(op, 2, 4, 6, S(2, 2, 2), S(2, 2, 2), stride=S(2, 1, 2), padding=S((3, 4), (4, 3), (3, 3)), groups=2, bias=b,
             seed=60, label="windows entirely in the padding, groups"),
        Case(op, 2, 4, 4, S(3, 2, 2), S(4, 3, 3), stride=S(2, 3, 2), padding=S((0, 1), (1, 0), (0, 1)), groups=2, bias=b,
             seed=61, label="output of size one on every axis, groups"),
        Case(op, 1, 6, 3, S(4, 3, 2), S(3, 2, 2), stride=S(2, 3, 2), dilation=S(3, 4, 3), padding=S((2, 1), (1, 1), (1, 1)),
             groups=3, bias=b, seed=62, label="dilated kernel exactly as wide as the padded input, groups"),
        Case(op, 2, 4, 4, S(11, 10, 7), S(2, 2, 2), stride=S(4, 5, 3), dilation=S(1, 2, 1), padding=S((1, 0), (0, 1), (1, 1)),
             groups=2, bias=b, seed=63, label="stride larger than the window, groups"),
    ]


def _transpose_degenerate(op: str, dims: int) -> list[Case]:
    """Outputs no tap reaches, outputs of size one, a dilated kernel as wide as the output, with groups."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    return [
        Case(op, 2, 4, 4, S(3, 3, 2), S(2, 2, 2), stride=S(4, 3, 5), dilation=S(2, 1, 2), padding=S((1, 0), (0, 1), (0, 0)),
             output_padding=S(1, 2, 1), groups=2, bias=True, seed=60,
             label="stride larger than the window (outputs no tap reaches), groups"),
        Case(op, 2, 4, 4, S(2, 1, 1), S(2, 3, 2), stride=S(2, 2, 2), padding=S((2, 1), (1, 1), (0, 1)), groups=2, bias=True,
             seed=61, label="output of size one on every axis, groups"),
        Case(op, 1, 6, 3, S(1, 1, 1), S(3, 2, 3), dilation=S(2, 3, 2), padding=S((2, 2), (2, 1), (1, 3)), groups=3, bias=True,
             seed=62, label="dilated kernel exactly as wide as the output, groups"),
    ]


def _pool_degenerate(op: str, dims: int) -> list[Case]:
    """Windows of padding only (dilated), outputs of size one, strides larger than the window."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    c: list[Case] = []
    if registry.get(op).has_dilation:
        c.append(Case(op, 2, 3, 3, S(2, 2, 2), S(2, 2, 2), stride=S(1, 1, 1), dilation=S(3, 3, 3),
                      padding=S((2, 2), (2, 2), (2, 2)), seed=60,
                      label="windows entirely in the padding next to windows that are not (-inf)"))
        c.append(Case(op, 2, 3, 3, S(2, 2, 2), S(2, 2, 2), dilation=S(3, 3, 3), padding=S((1, 1), (1, 1), (1, 1)),
                      values="negative", seed=62, label="dilated window exactly as wide as the padded input"))
    c.append(Case(op, 2, 3, 3, S(2, 2, 1), S(3, 3, 2), stride=S(2, 2, 2), padding=S((1, 0), (0, 1), (1, 0)), values="negative",
                  seed=61, label="output of size one on every axis, padding"))
    c.append(Case(op, 2, 3, 3, S(11, 10, 7), S(2, 2, 2), stride=S(3, 4, 3), padding=S((1, 0), (0, 1), (1, 1)), ceil_mode=True,
                  count_include_pad=False, seed=63, label="stride larger than the window, padding and ceil_mode"))
    return c


# --------------------------------------------------------------------------- ends of the range, layouts


def _conv_everything(op: str, dims: int) -> Case:
    """A small case with every feature of a convolution (or its gradients) on: 'everything at once'."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    return Case(op, 2, 4, 4, S(9, 7, 5), S(3, 2, 2), stride=S(2, 3, 1), padding=S((1, 2), (0, 1), (1, 0)),
                dilation=S(2, 1, 2), groups=2, bias=registry.get(op).has_bias)


def _transpose_everything(op: str, dims: int) -> Case:
    S = lambda *v: _ax(v, dims)  # noqa: E731
    return Case(op, 2, 4, 6, S(4, 3, 2), S(3, 2, 2), stride=S(2, 3, 1), padding=S((1, 2), (0, 1), (1, 0)),
                output_padding=S(1, 0, 0), dilation=S(1, 2, 2), groups=2, bias=True)


def _pool_everything(op: str, dims: int) -> Case:
    S = lambda *v: _ax(v, dims)  # noqa: E731
    return Case(op, 2, 3, 3, S(7, 6, 5), S(3, 3, 2), stride=S(2, 2, 2), padding=S((1, 0), (0, 1), (1, 0)),
                dilation=S(2, 1, 2) if registry.get(op).has_dilation else _PER_AXIS, ceil_mode=True, count_include_pad=False)


def _range(e: Case) -> list[Case]:
    """Subnormal inputs and products, values near the overflow threshold, exact cancellation (on ``e``)."""
    skip = e.record.values
    out = []
    if "subnormal" not in skip:
        out.append(replace(e, values="subnormal", seed=70, label="subnormal inputs (gradual underflow, no flushing)"))
    if "subnormal_products" not in skip:
        out.append(replace(e, values="subnormal_products", seed=71,
                           label="normal inputs with subnormal products (gradual underflow, no flushing)"))
    if "overflow" not in skip:
        out.append(replace(e, values="overflow", seed=72, label="values near the overflow threshold, finite exact sums"))
    if "cancel" not in skip:
        c = e
        if e.record.adaptive:
            # bins [2i, 2i + 2) on the last axis: each holds one cancelling pair
            assert e.output_size is not None  # an adaptive op's case: __post_init__ fills it in
            c = replace(e, spatial=e.spatial[:-1] + (2 * e.output_size[-1],))
        out.append(replace(c, values="cancel", seed=73, label="terms that cancel exactly (large partial sums)"))
    return out


def _layouts(e: Case, tiles: list[Case]) -> list[Case]:
    """Every non-contiguous layout on the small everything-on case; the layouts a blocked kernel is most
    likely to handle in its own code (column-major, channels-last, strided views) on tiled cases too."""
    out = []
    for i, layout in enumerate(LAYOUTS[1:]):
        out.append(replace(e, layout=layout, seed=80 + i, label=f"{layout} inputs"))
    for i, layout in enumerate(("fortran", "channels_last", "strided")):
        t = tiles[(3 * i + 2) % len(tiles)]
        out.append(replace(t, layout=layout, label=f"{layout} inputs, {t.label}"))
    return out


# --------------------------------------------------------------------------- invalid configurations


def _conv_invalid(op: str, dims: int) -> list[Case]:
    """Configurations the definition rejects and the canonical signature can still carry: a correct target
    raises on each (``expect_refusal``); the oracle itself refuses them.  A convolution or its gradients."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    b = registry.get(op).has_bias
    return [
        Case(op, 1, 2, 2, S(3, 3, 2), S(5, 4, 3), padding=S((0, 1), (0, 0), (0, 0)), bias=b, seed=90,
             expect_refusal=True, label="kernel wider than the padded input"),
        Case(op, 1, 2, 2, S(5, 4, 3), S(3, 2, 2), dilation=S(3, 4, 3), padding=S((1, 0), (0, 0), (0, 0)), bias=b, seed=91,
             expect_refusal=True, label="dilated kernel wider than the padded input"),
        Case(op, 1, 5, 4, S(5, 4, 3), S(2, 2, 2), groups=2, bias=b, seed=92, expect_refusal=True,
             label="groups do not divide C_in (the weight cannot fit)"),
        Case(op, 1, 4, 3, S(5, 4, 3), S(2, 2, 2), groups=2, bias=b, seed=93, expect_refusal=True,
             label="groups do not divide C_out"),
    ] + ([Case(op, 1, 2, 2, S(3, 3, 2), S(2, 2, 2), padding=S((3, 0), (1, 1), (0, 0)), padding_mode="reflect", bias=b,
               seed=94, expect_refusal=True, label="padding_mode='reflect' with a pad as long as the input")]
         if registry.get(op).takes("padding_mode") else [])


def _transpose_invalid(op: str, dims: int) -> list[Case]:
    """The configurations a transposed convolution rejects (see :func:`_conv_invalid`)."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    return [
        Case(op, 1, 2, 2, S(3, 3, 2), S(2, 2, 2), stride=S(2, 2, 2), output_padding=S(2, 0, 0), bias=True, seed=90,
             expect_refusal=True, label="output_padding not smaller than the stride or the dilation"),
        Case(op, 1, 2, 2, S(2, 2, 1), S(2, 2, 2), padding=S((2, 2), (1, 1), (0, 0)), bias=True, seed=91,
             expect_refusal=True, label="crop larger than the output"),
        Case(op, 1, 5, 4, S(3, 3, 2), S(2, 2, 2), groups=2, bias=True, seed=92, expect_refusal=True,
             label="groups do not divide C_in"),
        Case(op, 1, 4, 3, S(3, 3, 2), S(2, 2, 2), groups=2, bias=True, seed=93, expect_refusal=True,
             label="groups do not divide C_out (the bias does not fit)"),
    ]


def _pool_invalid(op: str, dims: int) -> list[Case]:
    """The configurations a pooling op rejects (see :func:`_conv_invalid`)."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    c = [Case(op, 1, 2, 2, S(3, 3, 2), S(5, 4, 3), padding=S((0, 1), (0, 0), (0, 0)), seed=90, expect_refusal=True,
              label="window larger than the padded input")]
    # (a padding side over half the window is not sent: only PyTorch's pooling limits it; reduce_window and
    # explicit-pad runtimes define it, with windows that hold only padding)
    if registry.get(op).has_dilation:
        c.append(Case(op, 1, 2, 2, S(4, 3, 2), S(3, 2, 2), dilation=S(3, 4, 3), seed=92, expect_refusal=True,
                      label="dilated window wider than the padded input"))
    return c


@dataclass(frozen=True)
class Parts:
    """An op's own catalogue cases, as its record's catalogue builder returns them."""

    conventions: list[Case]
    everything: Case            # every feature on: the base of the range and layout cases
    degenerate: list[Case]
    invalid: list[Case]


def conv_catalogue(op: str, dims: int) -> Parts:
    return Parts(_conv_catalogue(dims), _conv_everything(op, dims), _conv_degenerate(op, dims), _conv_invalid(op, dims))


def grad_catalogue(op: str, dims: int) -> Parts:
    return Parts(_grad_catalogue(op, dims), _conv_everything(op, dims), _conv_degenerate(op, dims), _conv_invalid(op, dims))


def transpose_catalogue(op: str, dims: int) -> Parts:
    return Parts(_transpose_catalogue(dims), _transpose_everything(op, dims), _transpose_degenerate(op, dims),
                 _transpose_invalid(op, dims))


def pool_catalogue(op: str, dims: int) -> Parts:
    parts = Parts(_pool_catalogue(op, dims), _pool_everything(op, dims), _pool_degenerate(op, dims), _pool_invalid(op, dims))
    if op == "lp_pool":
        # p = 1, 2 and 4 in turn (1/p exact: the root's exponent is not rounded), p = 4 on the everything case
        norms = lambda cs: [replace(k, norm=(1, 2, 4)[i % 3]) for i, k in enumerate(cs)]  # noqa: E731
        parts = Parts(norms(parts.conventions), replace(parts.everything, norm=4), norms(parts.degenerate),
                      norms(parts.invalid) + [replace(parts.conventions[0], norm=0, expect_refusal=True, label="p = 0")])
    return parts


def bias_grad_catalogue(op: str, dims: int) -> Parts:
    """The bias gradient: the forward convolution's geometry (dy's shape); nothing to refuse in dy alone."""
    g = grad_catalogue(op, dims)
    return Parts(g.conventions, g.everything, g.degenerate, [])


def transpose_grad_catalogue(op: str, dims: int) -> Parts:
    """The transposed convolution's gradients: its catalogue, plus output_padding at least the stride."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    t = transpose_catalogue("conv_transpose", dims)
    move = lambda cs: [replace(c, op=op, bias=False) for c in cs]  # noqa: E731
    conv = move(t.conventions) + [
        Case(op, 2, 2, 3, S(4, 3, 3), S(2, 3, 2), stride=S(1, 2, 1), dilation=S(2, 3, 3), output_padding=S(1, 2, 2),
             seed=30, label="output_padding at least the stride (below the dilation): trailing outputs")]
    # dy alone cannot show a crop larger than the output (only its shape would): the other rejections remain
    invalid = [c for c in t.invalid if not c.label.startswith("crop larger")]
    return Parts(conv, replace(t.everything, op=op, bias=False), move(t.degenerate), move(invalid))


def unpool_catalogue(op: str, dims: int) -> Parts:
    """Max unpooling of max-pooled values and their indices: overlapping windows, padding, output_size."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    conv = [
        Case(op, 1, 1, 1, S(6, 4, 4), S(2, 2, 2), label="plain"),
        Case(op, 2, 3, 3, S(7, 5, 4), S(3, 2, 2), stride=S(2, 1, 2), seed=1, label="overlapping windows"),
        Case(op, 1, 2, 2, S(7, 6, 5), S(3, 3, 3), stride=S(2, 2, 2), padding=S((1, 1), (1, 1), (1, 1)), seed=2,
             label="padding"),
        Case(op, 1, 2, 2, S(7, 6, 5), S(2, 3, 2), stride=S(2, 2, 2), seed=3,
             label="an unread tail: output_size past the default size"),
        Case(op, 2, 2, 2, S(7, 6, 5), S(3, 2, 2), stride=S(1, 1, 1), values="unit", seed=4,
             label="ties: one index written by several windows"),
        Case(op, 1, 1, 1, S(7, 6, 4), S(2, 3, 2), stride=S(3, 1, 2), seed=5, label="stride larger than the window"),
        Case(op, 0, 2, 2, S(5, 4, 4), S(2, 2, 2), seed=6, label="empty batch"),
        Case(op, 5, 19, 19, {1: (101,), 2: (37, 29), 3: (13, 11, 9)}[dims], S(3, 2, 3), stride=S(2, 2, 2),
             padding=S((1, 1), (1, 1), (1, 1)), seed=7, label="large odd sizes, many channels and samples"),
        Case(op, 1, 2, 2, S(8, 7, 5), S(3, 2, 2), stride=S(2, 3, 2), padding=S((1, 1), (1, 0), (0, 1)), values="negative",
             seed=8, label="asymmetric padding, negative values"),
    ]
    every = Case(op, 2, 3, 3, S(9, 7, 6), S(3, 2, 2), stride=S(2, 2, 1), padding=S((1, 1), (1, 1), (0, 1)))
    invalid = [
        Case(op, 1, 2, 2, S(6, 4, 4), S(2, 2, 2), output_size=S(9, 7, 7), seed=90, expect_refusal=True,
             label="output_size more than a stride past the default size"),
        Case(op, 1, 2, 2, S(6, 4, 4), S(2, 2, 2), output_size=S(3, 2, 2), seed=91, expect_refusal=True,
             label="output_size smaller than the indices' windows"),
    ]
    degenerate = [Case(op, 2, 3, 3, S(1, 1, 1), S(1, 1, 1), seed=60, label="input of size one"),
                  Case(op, 2, 3, 3, S(11, 10, 7), S(2, 2, 2), stride=S(3, 4, 3), padding=S((1, 0), (0, 1), (1, 1)),
                       seed=63, label="stride larger than the window, padding")]
    return Parts(conv, every, degenerate, invalid)


def unpool_inputs(case: Case, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``y`` and ``indices`` of max-pooling an ``x`` of the case's value class: indices a library returns.

    Where windows overlap an index repeats, always with the same value, so no write order matters.
    """
    from .. import fast

    dt = next(iter(arrays.values())).dtype
    rng = np.random.default_rng([case.seed, len(case.values), 7])
    x = _fill(case, rng, 0, "x", (case.n, case.cin, *case.spatial), dt).astype(dt).astype(np.float64)
    y, idx = fast.max_pool_indices(x, case.kernel, stride=case.stride, padding=case.padding)
    return {"y": y.astype(dt), "indices": idx.astype(np.int64)}


#: the adaptive ops whose exact oracle takes an empty batch (N = 0)
EMPTY_BATCH = ("adaptive_avg_pool", "adaptive_max_pool")


def adaptive_catalogue(op: str, dims: int) -> Parts:
    """Adaptive pooling: even and uneven bins, overlapping bins, outputs larger than the input, global pooling."""
    S = lambda *v: _ax(v, dims)  # noqa: E731
    conv = [
        Case(op, 1, 1, 1, S(6, 4, 4), output_size=S(3, 2, 2), label="even bins"),
        Case(op, 2, 3, 3, S(7, 5, 4), output_size=S(3, 2, 3), seed=1, label="uneven, overlapping bins"),
        Case(op, 1, 2, 2, S(5, 4, 3), output_size=S(5, 4, 3), seed=2, label="output as large as the input (identity)"),
        Case(op, 1, 2, 2, S(3, 2, 2), output_size=S(5, 3, 3), seed=3, label="output larger than the input (repeated samples)"),
        Case(op, 2, 3, 3, S(7, 6, 5), seed=4, label="global pooling (output 1)"),
        Case(op, 1, 2, 2, S(7, 6, 5), output_size=S(2, 4, 3), values="unit", seed=5, label="ties"),
        Case(op, 5, 19, 19, {1: (101,), 2: (37, 29), 3: (13, 11, 9)}[dims], output_size=S(7, 6, 4), seed=7,
             label="large odd sizes, many channels and samples"),
        Case(op, 1, 2, 2, S(9, 8, 7), output_size=S(4, 3, 5), values="negative", seed=8, label="negative values"),
    ]
    if op in EMPTY_BATCH:
        conv.append(Case(op, 0, 2, 2, S(5, 4, 4), output_size=S(2, 2, 2), seed=6, label="empty batch"))
    every = Case(op, 2, 3, 3, S(9, 7, 6), output_size=S(4, 3, 4))
    invalid = [Case(op, 1, 2, 2, S(4, 3, 3), output_size=S(0, 2, 2), seed=90, expect_refusal=True, label="output size 0")]
    return Parts(conv, every, [Case(op, 2, 3, 3, S(1, 1, 1), output_size=S(3, 2, 2), seed=60, label="input of size one")],
                 invalid)


def _unbatched(parts: Parts, invalid: bool = False) -> list[Case]:
    """PyTorch's unbatched inputs (no N axis) for an op that takes them: the first plain case, the first with
    padding and a stride, the first padding_mode case, every feature on (N = 1); ``invalid``: the first rejected
    configuration, unbatched (it must be refused as well)."""
    if not parts.everything.record.unbatched:
        return []
    single = [c for c in (parts.invalid if invalid else parts.conventions) if c.n == 1]
    if invalid:
        picks = single[:1]
    else:
        picks = [single[0]] if single else []
        picks += [c for c in single if any(s > 1 for s in c.stride) and any(map(any, c.padding))][:1]
        picks += [c for c in single if c.padding_mode != "zeros"][:1]
        picks.append(replace(parts.everything, n=1, label="every feature on"))
    return [replace(c, unbatched=True, label=f"unbatched (no N axis): {c.label}") for c in picks]


def catalogue(op: str, dims: int, caps: Capabilities = ALL) -> list[Case]:
    """The deterministic edge cases for ``op`` in ``dims`` spatial axes, projected onto ``caps``.

    Conventions first, then the ends of the range, degenerate geometry, memory
    layouts, the tile covering array, and last the configurations the
    definition rejects (``expect_refusal``, only if ``caps.refuses_invalid``
    and the features they use are supported).  Every other case is valid;
    duplicates created by the projection are dropped.
    """
    parts = registry.get(op).build_catalogue(dims)
    tiles = _tiles(op, dims)
    raw = (parts.conventions + _unbatched(parts) + _range(parts.everything) + parts.degenerate
           + _layouts(parts.everything, tiles) + tiles + parts.invalid + _unbatched(parts, invalid=True))
    seen, out = set(), []
    for c in raw:
        if not c.expect_refusal and not c.is_valid():
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


# --------------------------------------------------------------------------- coverage

#: tile boundaries a size is compared with
TILES = (8, 16, 32, 64, 128)


def _reduction(c: Case) -> int:
    # the terms of the reduction, the bias left out
    return c.terms() - int(c.bias and c.record.has_bias)


def coverage(cases: Iterable[Case]) -> dict[str, Any]:
    """What ``cases`` reached: the largest size per dimension (and the tile boundaries it passes), how many
    cases use each feature, all of them at once, each layout and each value class.

    >>> cov = coverage(catalogue('conv', 2))
    >>> cov['sizes']['C_out']['past'], cov['features']['all at once'] > 10
    ([8, 16, 32, 64, 128], True)
    >>> sorted(cov['layouts']) == sorted(LAYOUTS), cov['invalid'] > 0
    (True, True)
    """
    sizes: dict[str, int] = {}
    feats = {k: 0 for k in _FEATURES + ("all at once",)}
    layouts: dict[str, int] = {}
    values: dict[str, int] = {}
    total = invalid = 0
    for c in cases:
        total += 1
        layouts[c.layout] = layouts.get(c.layout, 0) + 1
        values[c.values] = values.get(c.values, 0) + 1
        if c.expect_refusal:
            invalid += 1
            continue
        for name, v in _sizes_of(c).items():
            sizes[name] = max(sizes.get(name, 0), int(v))
        on = _features_of(c)
        for k, v in on.items():
            feats[k] += bool(v)
        feats["all at once"] += _all_at_once(c, on)
    return {
        "cases": total,
        "sizes": {k: {"max": v, "past": [t for t in TILES if v > t]} for k, v in sizes.items()},
        "features": feats,
        "layouts": layouts,
        "values": values,
        "invalid": invalid,
    }


#: the features coverage counts (besides all of an op's at once)
_FEATURES = ("bias", "kernel > 1", "asymmetric padding", "stride > 1", "dilation > 1", "groups > 1", "output_padding",
             "ceil_mode", "count_include_pad=False", "empty batch", "unbatched")


def _sizes_of(c: Case) -> dict[str, int]:
    """The sizes of one valid case per dimension (a gradient: its forward op's output axes)."""
    out = c.forward_output_shape if c.record.grad_of else c.output_shape
    assert out is not None  # a valid case
    sizes = {"N": c.n, "C_in": c.cin, "C_out": c.cout, "C_in/groups": c.cin // c.groups,
             "C_out/groups": c.cout // c.groups, "groups": c.groups, "input spatial": max(c.spatial)}
    sizes.update({f"output axis {i}": o for i, o in enumerate(out[len(out) - c.dims:])})  # N, C (or C) first
    sizes["reduction"] = _reduction(c)
    return sizes


def _features_of(c: Case) -> dict[str, bool]:
    """Which of :data:`_FEATURES` one valid case uses."""
    return {
        "bias": c.bias,
        "kernel > 1": all(k > 1 for k in c.kernel),
        "asymmetric padding": any(lo != hi for lo, hi in c.padding),
        "stride > 1": any(s > 1 for s in c.stride),
        "dilation > 1": any(d > 1 for d in c.dilation),
        "groups > 1": c.groups > 1,
        "output_padding": any(c.output_padding),
        "ceil_mode": c.ceil_mode,
        "count_include_pad=False": c.record.takes("count_include_pad") and not c.count_include_pad,
        "empty batch": c.n == 0,
        "unbatched": c.unbatched,
    }


def _all_at_once(c: Case, on: dict[str, bool]) -> bool:
    """Every feature the op has, in one case."""
    rec = c.record
    need = ["kernel > 1", "asymmetric padding", "stride > 1"]
    need += [k for k, has in (("dilation > 1", rec.has_dilation), ("groups > 1", rec.has_groups),
                              ("bias", rec.has_bias)) if has]
    return all(on[k] for k in need)


# --------------------------------------------------------------------------- exploration: one case model
#
# draw_case describes every choice of an explored case through a chooser: integer(lo, hi), choice(seq),
# weighted({option: weight}) and boolean(p).  RandomChooser makes them with a random.Random (random_case),
# Draws with hypothesis (cases, the strategy the engine explores with), where each shrinks to its simplest.


class RandomChooser:
    """The choices of :func:`draw_case` made with a :class:`random.Random` ``rng``.

    Each is one call of ``rng``: ``randint``, ``choice``, ``choices`` and
    ``random() < p``.

    >>> import random
    >>> ch = RandomChooser(random.Random(0))
    >>> ch.integer(1, 6), ch.choice('abc'), ch.weighted({'x': 1, 'y': 3}), ch.boolean(0.5)
    (4, 'b', 'x', False)
    """

    def __init__(self, rng: Any) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, seq: Sequence[Any]) -> Any:
        return self.rng.choice(seq)

    def weighted(self, weights: dict) -> Any:
        keys = list(weights)
        return self.rng.choices(keys, weights=[weights[k] for k in keys])[0]

    def boolean(self, p: float) -> bool:
        return self.rng.random() < p


def _units(weights: Sequence[float]) -> list[int]:
    """Whole numbers in the ratios of ``weights`` (exact where a multiplier up to 100 makes them whole), sum <= 255.

    >>> _units([14, 2 / 6, 2 / 6]), _units([3, 2, 0.3, 0.2]), _units([0.8, 0.2])
    ([42, 1, 1], [30, 20, 3, 2], [4, 1])
    """
    for m in range(1, 101):
        units = [round(w * m) for w in weights]
        if all(abs(w * m - u) < 1e-9 for w, u in zip(weights, units)) and sum(units) <= 255:
            return units
    total = sum(weights)
    return [max(1, round(w * 200 / total)) if w > 0 else 0 for w in weights]


class Draws:
    """The choices of :func:`draw_case`, each a hypothesis draw that shrinks towards the simplest.

    ``integer(lo, hi)`` shrinks towards ``lo``; ``choice`` and ``weighted``
    towards their first option (kernel 1, no large dimension, contiguous
    memory); ``boolean(p)`` towards False.  A weighted choice is one integer
    below the sum of the weights in whole units (at most 255, a range that
    hypothesis draws nearly uniformly), so the strategy keeps the weights that
    :class:`RandomChooser` draws with.

    >>> from hypothesis import find, settings, strategies as st
    >>> weighted = st.composite(lambda draw: Draws(draw).weighted({'a': 1, 'b': 5, 'c': 1}))()
    >>> find(weighted, lambda v: v != 'a', settings=settings(database=None))
    'b'
    """

    def __init__(self, draw: Any) -> None:
        from hypothesis import strategies as st

        self._draw, self._st = draw, st

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(self._st.integers(lo, hi))

    def choice(self, seq: Sequence[Any]) -> Any:
        seq = list(seq)
        return seq[self.integer(0, len(seq) - 1)]

    def weighted(self, weights: dict) -> Any:
        keys = list(weights)
        units = _units([weights[k] for k in keys])
        u = self.integer(0, sum(units) - 1)
        # the key whose cumulative units first pass u: u = 0 (the shrunk draw) is the first key of positive weight
        for key, w in zip(keys, units):
            if u < w:
                return key
            u -= w
        raise AssertionError("unreachable: u < sum(units)")

    def boolean(self, p: float) -> bool:
        return bool(self.weighted({False: 1 - p, True: p}))


def _long_tail(ch: Any, small: bool) -> int:
    """A size past a tile boundary: 2**k + r, k from 3 (most often) to 7, r in {-1, 1, 3}."""
    k = ch.weighted({3: 4, 4: 3, 5: 2} if small else {3: 4, 4: 3, 5: 2, 6: 1, 7: 0.5})
    return 2**k + ch.choice((-1, 1, 1, 3))


def _pads(ch: Any, rec: Any, kind: str, span: int) -> tuple[int, int]:
    """``(lo, hi)`` of one axis in the padding form ``kind``.

    Both sides are drawn whatever the form (a form uses what it needs), so that a
    change of form does not shift the choices after it: hypothesis can shrink
    the form alone.
    """
    # pooling: mostly at most half the window on a side (PyTorch's limit); padding over it is defined (up to
    # span - 1: the first and last windows still reach the input); convolution: up to 3 on a side
    top = (span - 1 if ch.boolean(0.2) else span // 2) if rec.window else 3
    lo, hi = ch.integer(0, top), ch.integer(0, top)
    if kind == "asymmetric":
        return lo, hi
    if kind == "valid" or not rec.window and kind != "symmetric":
        return 0, 0  # the modes' pairs ('same', 'full') are computed once the sizes are known
    return lo, lo


def _axis(ch: Any, rec: Any, caps: Capabilities, kind: str, small: bool, big: bool) -> tuple:
    """``(k, s, d, (lo, hi), n, output_padding)`` of one spatial axis; ``big``: an output size past a tile."""
    k = ch.weighted({1: 2, 2: 3, 3: 3, 4: 2} if not small else {1: 2, 2: 3, 3: 2})
    s = ch.weighted({1: 3, 2: 3, 3: 2}) if caps.stride else 1
    d = ch.weighted({1: 4, 2: 2, 3: 2}) if caps.dilation and rec.has_dilation else 1
    span = d * (k - 1) + 1
    lo, hi = _pads(ch, rec, kind, span)
    out = ch.integer(1, 3 if small else 5) if not big else _long_tail(ch, small)
    if rec.transposed:
        n = out if not big else max(1, out // s)
        opad = ch.integer(0, max(s, d) - 1) if caps.output_padding else 0
        # the padding crops at most all but one sample of the full output (n - 1)*s + span + output_padding
        full = (n - 1) * s + span + opad
        if lo == hi:
            lo = hi = min(lo, (full - 1) // 2)  # a symmetric pair stays symmetric
        else:
            lo = min(lo, full - 1)
            hi = min(hi, full - 1 - lo)
    else:
        # (out - 1)*s + span - lo - hi input samples, plus an unread tail of up to s - 1
        n = max(1, (out - 1) * s + span - lo - hi + ch.integer(0, s - 1))
        opad = 0
    return k, s, d, (lo, hi), n, opad


def _big(ch: Any, rec: Any, caps: Capabilities) -> str | None:
    """Which dimension is large (None: none): the batch, channels per group, outputs per group, groups, an axis."""
    big = ch.weighted({None: 16, "n": 1, "cg": 1, "og": 1, "groups": 1, "out": 1})
    if big == "n" and not caps.batch or big in ("cg", "og", "groups") and not caps.channels:
        big = None
    if big in ("og", "groups") and rec.window or big == "groups" and not caps.groups:
        big = None
    return big


def _channels(ch: Any, rec: Any, caps: Capabilities, small: bool, big: str | None) -> tuple[int, int, int, int]:
    """``(N, groups, C_in per group, C_out per group)``."""
    groups = ch.weighted({1: 4, 2: 3, 3: 2, 4: 1}) if caps.groups and rec.has_groups else 1
    cg = ch.integer(1, 3) if caps.channels else 1
    og = ch.integer(1, 3) if caps.channels and not rec.window else 1
    batch: dict[int, float] = {1: 5, 2: 3, 3: 1} if caps.batch else {1: 1}
    if caps.empty_batch:
        batch[0] = 0.5
    nb = ch.weighted(batch)
    if big == "n":
        nb = _long_tail(ch, small)
    elif big == "cg":
        cg = _long_tail(ch, small)
    elif big == "og":
        og = _long_tail(ch, small)
    elif big == "groups":
        groups = _long_tail(ch, True)
    return nb, groups, cg, og


def _value_class(ch: Any, rec: Any, caps: Capabilities, big: str | None, nb: int) -> str:
    values: dict[str, float] = {"normal": 3, "small": 2, "negative": 1} if rec.bound == "max" else {"normal": 3, "small": 2}
    values.update({"dyadic": 1, "subnormal": 0.3, "overflow": 0.2} if caps.full_range else {"dyadic": 1, "subnormal": 0.3})
    if rec.family == "conv":
        values.update({"subnormal_products": 0.3, "cancel": 0.2})
    values = {k: v for k, v in values.items() if k not in rec.values}  # the classes the op's bound leaves out
    val = ch.weighted(values) if big is None else "dyadic"
    return "normal" if nb == 0 else val  # an empty batch has no values to speak of


def draw_case(op: str, dims: int, caps: Capabilities, ch: Any) -> Case:
    """One explored case of ``op``, every choice made by the chooser ``ch`` (:class:`RandomChooser` or
    :class:`Draws`), every parameter within ``caps``.

    Weights favour the interesting values evenly (several groups and channels
    per group, strides and dilations up to 3, every padding form) instead of
    the smallest ones, so that combinations appear within a small budget.
    Sizes have a long tail: about one case in five makes one dimension (the
    batch, the channels of a group, the groups or an output axis) large, from
    7 to 131, with dyadic values (exact to judge, cheap for the oracle); one in
    eight passes its inputs in a non-contiguous layout.  The first option of
    every choice is the simplest (what hypothesis shrinks to).
    """
    rec = registry.get(op)
    small = dims >= 3
    kinds = sorted(set(caps.padding))
    if "asymmetric" in kinds:
        # arbitrary pairs express every mode; draw the modes' own pairs too, they meet special code paths
        kinds += ["asymmetric", "asymmetric", "same", "same_lower", "valid"] + (["full"] if rec.family == "conv" else [])
    kind = ch.choice(kinds)
    big = _big(ch, rec, caps)
    big_axis = ch.integer(0, dims - 1) if big == "out" else -1
    axes = [_axis(ch, rec, caps, kind, small, axis == big_axis) for axis in range(dims)]
    ks, ss, ds, lohi, ns, opads = (tuple(v) for v in zip(*axes))
    nb, groups, cg, og = _channels(ch, rec, caps, small, big)
    val = _value_class(ch, rec, caps, big, nb)
    layout = ch.weighted({"contiguous": 14, **{k: 2 / 6 for k in LAYOUTS[1:]}})
    c = Case(
        op, n=nb, cin=cg * groups, cout=og * groups, spatial=ns, kernel=ks, stride=ss, padding=lohi, dilation=ds,
        groups=groups, bias=caps.bias and rec.has_bias and ch.boolean(0.5), output_padding=opads,
        ceil_mode=caps.ceil_mode and rec.takes("ceil_mode") and ch.boolean(0.5),
        count_include_pad=ch.choice(caps.count_include_pad) if rec.takes("count_include_pad") else True,
        values=val, seed=ch.integer(0, 2**16), layout=layout, label="explored",
    )
    c = _draw_extras(c, rec, caps, ch)
    if kind in ("same", "same_lower", "full"):
        try:
            cand = replace(c, padding=tuple(P.normalize_padding(kind, c.spatial, c.kernel, c.stride, c.dilation)))
            c = cand if cand.is_valid() else c  # a mode's pairs that crop a transposed output away: the drawn ones
        except P.ConvParamError:
            pass
    return c


def random_case(op: str, dims: int, caps: Capabilities, rng: Any) -> Case:
    """:func:`draw_case` with a :class:`random.Random` ``rng`` (or any chooser, used as it is).

    >>> import random
    >>> c = random_case('conv', 2, ALL, random.Random(0))
    >>> c.label, c.dims, ALL.supports(c)
    ('explored', 2, True)
    """
    return draw_case(op, dims, caps, rng if hasattr(rng, "weighted") else RandomChooser(rng))


def _draw_extras(c: Case, rec: Any, caps: Capabilities, ch: Any) -> Case:
    """The parameters only some ops have: divisor_override, the norm p, adaptive output sizes."""
    if rec.takes("divisor_override") and caps.divisor_override and ch.boolean(0.2):
        c = replace(c, divisor_override=ch.integer(1, 9))
    if rec.takes("p"):
        c = replace(c, norm=ch.choice((1, 2, 4)))  # 1/p exact
    if rec.takes("padding_mode") and caps.padding_mode and ch.boolean(0.25):
        mode = ch.choice(("reflect", "replicate", "circular"))
        cand = replace(c, padding_mode=mode)
        c = cand if cand.is_valid() else c  # reflect needs each side below the input length
    if rec.adaptive:
        # from global pooling to more outputs than inputs (repeated samples)
        c = replace(c, output_size=tuple(ch.integer(1, n + 1) for n in c.spatial), n=c.n or int(c.op not in EMPTY_BATCH))
    # unbatched inputs (PyTorch's (C, *S)): one sample in five passed without its batch axis, where declared
    if caps.unbatched and rec.unbatched and c.n == 1 and ch.boolean(0.2):
        c = replace(c, unbatched=True)
    return c


def cases(op: str, dims: int, caps: Capabilities = ALL) -> Any:
    """Strategy of valid, supported cases of ``op``: :func:`draw_case` with :class:`Draws`.

    Every choice is a hypothesis draw, so hypothesis replays and shrinks a
    case choice by choice: a failing case shrinks towards no large dimension,
    kernel 1, stride 1, no padding, one sample and channel, contiguous memory.
    This is the strategy the engine explores with (hypothesis shrinks its
    failures, then the engine's own shrinker) and the one
    :mod:`refconv.conformance.strategies` exports.

    >>> from hypothesis import find, settings
    >>> c = find(cases('conv', 1), lambda c: c.kernel[0] >= 2, settings=settings(database=None))
    >>> c.kernel, c.spatial, c.padding, c.stride, c.n, c.cin, c.bias, c.values, c.layout
    ((2,), (2,), ((0, 0),), (1,), 1, 1, False, 'normal', 'contiguous')
    """
    from hypothesis import assume
    from hypothesis import strategies as st

    @st.composite
    def draw(draw_: Any) -> Case:
        ch = Draws(draw_)
        for _ in range(25):  # a capability rule that rejects a case: draw again rather than discard the example
            c = draw_case(op, dims, caps, ch)
            if caps.supports(c):
                return c
        assume(False)
        raise AssertionError("unreachable: assume(False) raises")

    return draw()
