"""The quantized ops of the registry: ``conv_integer`` (ONNX ConvInteger) and ``qlinear_conv`` (QLinearConv).

Their results are integers and are judged bit for bit (the error bound is 0).  A
:class:`~refconv.conformance.cases.Case` of them carries its quantization parameters in
``case.quant`` (a :class:`Quant`); a case drawn without one (the exploration) gets one drawn
from its seed.  This module holds the records, how the inputs are filled, the catalogue, the
diagnosis candidates (each convention a target may compute instead) and the reproduction.

The definition (``specs/quantized.md``): the exact accumulator with the input padded by its zero point,
an int32 bias in the accumulator's scale, the multiplier ``sx * sw[o] / sy`` taken exactly, rounding
half to even, saturation to the output type.

Examples
--------
>>> from refconv.conformance.cases import Case
>>> c = Case('qlinear_conv', spatial=(4,), kernel=(2,), quant=Quant(x_fill='ramp'))
>>> {k: (str(v.dtype), v.shape) for k, v in c.arrays().items()}
{'x': ('uint8', (1, 1, 4)), 'w': ('int8', (1, 1, 2))}
>>> [k.name for k in candidates(c)][:3]
['rounding half_away', 'rounding half_up', 'rounding gemmlowp']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from .. import params as P
from . import registry

__all__ = ["Quant", "quant_of", "case_arrays", "catalogue", "candidates", "diagnose", "repro", "QCandidate",
           "call_args"]

_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


@dataclass(frozen=True)
class Quant:
    """The quantization parameters of a case (hashable; per-channel values cycle over the output channels).

    ``x_fill`` / ``w_fill``: ``'random'`` (uniform over the range), ``'ends'`` (only the two ends of the
    range), ``'max'`` (the end farthest from the zero point), ``'ramp'`` (consecutive integers from the
    range's low end: every residue, exact ties), ``'one'`` (``zero point + 1``).
    """

    x_dtype: str = "uint8"
    w_dtype: str = "int8"
    out_dtype: str = "uint8"
    x_zero_point: int = 128
    w_zero_point: tuple[int, ...] = (0,)
    x_scale: float = 0.05
    w_scale: tuple[float, ...] = (0.01,)
    y_scale: float = 0.1
    y_zero_point: int = 128
    per_channel: bool = False
    rounding: str = "half_even"
    x_fill: str = "random"
    w_fill: str = "random"
    x_range: tuple[int, int] | None = None
    w_range: tuple[int, int] | None = None
    b_range: tuple[int, int] = (-1000, 1000)

    def w_zero_points(self, cout: int) -> np.ndarray:
        return np.array([self.w_zero_point[o % len(self.w_zero_point)] for o in range(cout)], dtype=self.w_dtype)

    def w_scales(self, cout: int) -> np.ndarray:
        return np.array([self.w_scale[o % len(self.w_scale)] for o in range(cout)], dtype=np.float32)

    def describe(self) -> str:
        wz = self.w_zero_point if self.per_channel else self.w_zero_point[0]
        ws = self.w_scale if self.per_channel else self.w_scale[0]
        return (f"x {self.x_dtype} zp={self.x_zero_point} scale={self.x_scale!r}, w {self.w_dtype} zp={wz} "
                f"scale={ws}, y {self.out_dtype} zp={self.y_zero_point} scale={self.y_scale!r}, "
                f"rounding={self.rounding}")


def _drawn(seed: int) -> Quant:
    """The parameters of an explored case: a pure function of its seed (zero points anywhere, scales spread)."""
    rng = np.random.default_rng([seed, 14])
    xd = ("uint8", "int8")[int(rng.integers(2))]
    od = ("uint8", "int8")[int(rng.integers(2))]
    lo, hi = _RANGES[xd]
    olo, ohi = _RANGES[od]
    per = bool(rng.integers(2))
    k = 4 if per else 1
    symmetric = bool(rng.integers(2))  # weight zero points 0 (what symmetric int8 kernels take)
    zw = (0,) * k if symmetric else tuple(int(v) for v in rng.integers(-128, 128, k))
    return Quant(xd, "int8", od, int(rng.integers(lo, hi + 1)), zw,
                 float(np.float32(2.0 ** rng.uniform(-9, -2))),
                 tuple(float(np.float32(2.0 ** v)) for v in rng.uniform(-12, -3, k)),
                 float(np.float32(2.0 ** rng.uniform(-8, 0))), int(rng.integers(olo, ohi + 1)), per,
                 b_range=(-(2**15), 2**15))


def quant_of(case: Any) -> Quant:
    q = getattr(case, "quant", None)
    return q if q is not None else _drawn(case.seed)


def _fill(rng: np.random.Generator, how: str, shape: tuple[int, ...], rng_lo: int, rng_hi: int, zp: int) -> np.ndarray:
    size = math.prod(shape)
    if how == "ends":
        v = np.where(rng.integers(0, 2, size) == 1, rng_hi, rng_lo)
    elif how == "max":
        v = np.full(size, rng_hi if rng_hi - zp >= zp - rng_lo else rng_lo)
    elif how == "ramp":
        v = rng_lo + np.arange(size) % (rng_hi - rng_lo + 1)
    elif how == "one":
        v = np.full(size, min(zp + 1, rng_hi))
    else:
        v = rng.integers(rng_lo, rng_hi + 1, size)
    return v.reshape(shape)


def case_arrays(case: Any) -> dict[str, np.ndarray]:
    """The integer inputs of ``case`` (x, w and the int32 bias), deterministic in the case."""
    q = quant_of(case)
    rng = np.random.default_rng([case.seed, 8])
    shapes = case.input_shapes()
    xlo, xhi = q.x_range or _RANGES[q.x_dtype]
    wlo, whi = q.w_range or _RANGES[q.w_dtype]
    zw = int(q.w_zero_point[0])
    out = {"x": _fill(rng, q.x_fill, shapes["x"], xlo, xhi, q.x_zero_point).astype(q.x_dtype),
           "w": _fill(rng, q.w_fill, shapes["w"], wlo, whi, zw).astype(q.w_dtype)}
    if "b" in shapes:
        out["b"] = rng.integers(q.b_range[0], q.b_range[1] + 1, shapes["b"]).astype(np.int32)
    return out


def _zero_points(case: Any, q: Quant) -> tuple[Any, Any]:
    zx = np.array(q.x_zero_point, dtype=q.x_dtype)[()]
    zw = q.w_zero_points(case.cout) if q.per_channel else np.array(q.w_zero_point[0], dtype=q.w_dtype)[()]
    return zx, zw


def call_args(case: Any, a: dict[str, Any]) -> list[Any]:
    """The positional arguments of the canonical call (ONNX's input order)."""
    q = quant_of(case)
    zx, zw = _zero_points(case, q)
    if case.op == "conv_integer":
        return [a["x"], a["w"], zx, zw]
    ws = q.w_scales(case.cout) if q.per_channel else np.float32(q.w_scale[0])
    return [a["x"], np.float32(q.x_scale), zx, a["w"], ws, zw, np.float32(q.y_scale),
            np.array(q.y_zero_point, dtype=q.out_dtype)[()], a.get("b")]


def _keywords(c: Any) -> dict[str, Any]:
    kw = {"stride": c.stride, "padding": c.padding, "dilation": c.dilation, "groups": c.groups}
    if c.op == "qlinear_conv":
        q = quant_of(c)
        kw.update(out_dtype=q.out_dtype, rounding=q.rounding)
    return kw


def _normalize(c: Any) -> Any:
    q = quant_of(c)
    for name, dt in (("x_dtype", q.x_dtype), ("w_dtype", q.w_dtype), ("out_dtype", q.out_dtype)):
        if dt not in _RANGES:
            raise P.ConvParamError(f"quant.{name}={dt!r}: int8 or uint8")
    return P.conv_params((c.n, c.cin, *c.spatial), c.weight_shape, (c.cout,) if c.bias else None, stride=c.stride,
                         padding=c.padding, dilation=c.dilation, groups=c.groups)


def _arrays(c: Any) -> dict[str, tuple[int, ...]]:
    out = {"x": (c.n, c.cin, *c.spatial), "w": c.weight_shape}
    if c.bias and c.op == "qlinear_conv":
        out["b"] = (c.cout,)
    return out


_COMMON: dict[str, Any] = dict(
    family="quantized", catalogue=".conformance.quantized_ops:catalogue",
    candidates=".conformance.quantized_ops:candidates", arrays=_arrays, positional=call_args,
    keywords=_keywords, normalize=_normalize, output=lambda c: tuple(c.validate().output_shape),
    terms=lambda c: (c.cin // c.groups) * math.prod(c.kernel), cancel=lambda c: None, bound_as="conv",
    has_groups=True, values=("subnormal", "subnormal_products", "overflow", "cancel"))
registry.register(registry.OpRecord(
    "conv_integer", "fn(x, w, x_zero_point, w_zero_point, *, stride, padding, dilation, groups)",
    oracle=".quantized:conv_integer", fast=".fast:conv_integer",
    adapters=("onnxruntime.quantized", "refconv.fast", "refconv.oracle"),
    doc="ONNX ConvInteger: the exact integer sum of (x - zx)(w - zw[o]), padded with zx; judged exactly",
    **_COMMON))
registry.register(registry.OpRecord(
    "qlinear_conv", "fn(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b, *, stride, "
    "padding, dilation, groups, out_dtype)",
    oracle=".quantized:qlinear_conv", fast=".fast:qlinear_conv", has_bias=True, optional=("rounding",),
    adapters=("onnxruntime.quantized", "torch.quantized", "tflite.quantized", "refconv.fast", "refconv.oracle"),
    doc="ONNX QLinearConv: requantized exactly, ties to even, saturated; judged exactly", **_COMMON))


# --------------------------------------------------------------------------- the catalogue


def _requantization_cases(op: str, dims: int) -> list:
    """QLinearConv's own: exact ties, near-ties, saturation, the accumulator beyond int32, the bias at its limits."""
    from .cases import Case

    S = lambda *v: v[:dims]  # noqa: E731 - per-axis values
    flat = {1: (256,), 2: (16, 16), 3: (4, 8, 8)}[dims]  # 256 samples: x - zx = -128 .. 127 once each
    c: list = []
    add = c.append
    # 33100 such products: 2152327500 > 2**31 - 1, requantized exactly (128); an int32 accumulator wraps to
    # -2142639796 (and gives 0)
    add(Case(op, 1, 33100, 1, S(1, 1, 1), S(1, 1, 1), seed=22,
             quant=Quant(x_zero_point=0, w_zero_point=(-128,), x_fill="max", w_fill="max",
                         x_scale=1.0, w_scale=(1.0,), y_scale=2.0**24, y_zero_point=0),
             label="accumulator beyond int32 (2152327500), requantized exactly"))
    # acc = x - 128 (1x1 kernel, w = 1) times M = 0.5 * 0.25 / 1 = 1/8: a tie at every acc = 4 + 8k;
    # odd acc show gemmlowp's double rounding
    ramp = Quant(w_zero_point=(0,), x_zero_point=128, y_zero_point=128, x_scale=0.5, w_scale=(0.25,), y_scale=1.0,
                 x_fill="ramp", w_fill="one")
    add(Case(op, 1, 1, 1, flat, S(1, 1, 1), seed=11, quant=ramp, label="exact ties in the requantization"))
    add(Case(op, 1, 1, 1, flat, S(1, 1, 1), seed=23, label="exact ties in the requantization (int8)",
             quant=replace(ramp, x_dtype="int8", out_dtype="int8", x_zero_point=0, y_zero_point=0)))
    # M = fl32(1/6) > 1/6: acc * M is just above k + 1/2 at acc = 3(2k + 1); in float32 the product rounds
    # onto the tie (and then to even)
    add(Case(op, 1, 1, 1, flat, S(1, 1, 1), seed=12, quant=replace(ramp, x_scale=float(np.float32(1 / 6)),
                                                                      w_scale=(1.0,)),
             label="near-ties that the float32 scale path rounds onto a tie"))
    add(Case(op, 1, 2, 2, S(6, 5, 4), S(3, 3, 2), bias=True, seed=13,
             quant=Quant(x_scale=1.0, w_scale=(1.0,), y_scale=0.5, y_zero_point=128, b_range=(-30000, 30000)),
             label="saturation at both ends (uint8)"))
    add(Case(op, 1, 2, 2, S(6, 5, 4), S(3, 3, 2), bias=True, seed=14,
             quant=Quant(out_dtype="int8", x_scale=1.0, w_scale=(1.0,), y_scale=0.5, y_zero_point=0,
                         b_range=(-30000, 30000)), label="saturation at both ends (int8)"))
    add(Case(op, 1, 2, 4, S(5, 4, 3), S(2, 2, 2), bias=True, seed=15,
             quant=Quant(b_range=(-(2**31) + 2**24, 2**31 - 1 - 2**24), y_scale=1e6),
             label="bias near int32's limits"))
    add(Case(op, 1, 1, 4, flat, S(1, 1, 1), seed=16,
             quant=replace(ramp, per_channel=True, w_scale=(0.25, 0.5, 0.125, 0.0625)),
             label="exact ties per channel (per-channel scales)"))
    return c


def catalogue(op: str, dims: int) -> Any:
    """Zero points at the range ends, per-channel scales decades apart, exact ties, near-ties through float32,
    saturation at both ends, reductions past int16 and up to int32's limit, padding with a non-zero zero point."""
    from .cases import Case, Parts, _conv_degenerate, _conv_invalid

    S = lambda *v: v[:dims]  # noqa: E731 - per-axis values
    qc = op == "qlinear_conv"
    c: list[Case] = []
    add = c.append
    add(Case(op, 1, 1, 1, S(5, 4, 3), S(3, 2, 2), quant=Quant(), label="plain"))
    add(Case(op, 2, 3, 4, S(6, 5, 4), S(3, 3, 2), bias=qc, seed=1, quant=Quant(x_dtype="int8", out_dtype="int8",
             x_zero_point=-5, y_zero_point=3), label="int8 input and output, bias"))
    add(Case(op, 1, 2, 3, S(6, 5, 4), S(3, 2, 2), padding=S((2, 1), (1, 2), (1, 1)), seed=2,
             quant=Quant(x_zero_point=200), label="padding with a non-zero zero point"))
    # every zero point at an end of its range, in both input types (the output type the input's)
    for i, (dt, zx, zw, zy) in enumerate((("uint8", 0, 127, 255), ("uint8", 255, -128, 0), ("int8", -128, 127, 127),
                                          ("int8", 127, -128, -128))):
        add(Case(op, 1, 2, 2, S(5, 4, 3), S(3, 3, 2), padding=S((1, 1), (1, 1), (1, 1)), seed=3 + 30 * i,
                 quant=Quant(x_dtype=dt, out_dtype=dt, x_zero_point=zx, w_zero_point=(zw,), y_zero_point=zy,
                             x_fill="ends", w_fill="ends"), label=f"zero points at the range ends ({dt} x {zx}, w {zw}, y {zy})"))
    add(Case(op, 1, 3, 4, S(6, 5, 4), S(3, 2, 2), padding=S((1, 1), (0, 1), (1, 0)), bias=qc, seed=5,
             quant=Quant(per_channel=True, w_zero_point=(0, -3, 7, 100), w_scale=(1e-4, 1e-2, 1.0, 3e-3),
                         y_scale=0.5, b_range=(-5000, 5000)),
             label="per-channel scales and zero points, scales decades apart"))
    add(Case(op, 2, 4, 4, S(7, 6, 4), S(3, 2, 2), stride=S(2, 1, 2), dilation=S(1, 2, 1), groups=2, bias=qc, seed=6,
             quant=Quant(per_channel=True, w_zero_point=(1, -1), w_scale=(0.02, 0.002)), label="groups, stride, dilation"))
    add(Case(op, 1, 3, 3, S(6, 5, 4), S(3, 3, 2), padding=S((1, 1), (1, 1), (1, 0)), groups=3, bias=qc, seed=7,
             quant=Quant(x_zero_point=7), label="depthwise, padded with the zero point"))
    add(Case(op, 0, 2, 2, S(5, 4, 3), S(2, 2, 2), bias=qc, seed=8, quant=Quant(), label="empty batch"))
    # products of 255 * 255 (x - zx and w - zw at their extremes) summed 33025 times: 2147450625, within
    # 2**31 - 1 by 32022; an int16 accumulator wraps at the second term, a float32 one rounds past 2**24
    add(Case(op, 1, 33025, 1, S(1, 1, 1), S(1, 1, 1), seed=9,
             quant=Quant(x_zero_point=0, w_zero_point=(-128,), x_fill="max", w_fill="max",
                         x_scale=1.0, w_scale=(1.0,), y_scale=2.0**24, y_zero_point=0),
             label="long reduction at int32's limit (2147450625)"))
    add(Case(op, 1, 160, 2, S(4, 3, 3), S(3, 3, 2), padding=S((1, 1), (1, 1), (1, 0)), seed=10,
             quant=Quant(x_scale=0.02, w_scale=(0.01,), y_scale=4.0), label="long reduction past int16 (random values)"))
    c += _requantization_cases(op, dims) if qc else []
    everything = Case(op, 2, 4, 4, S(9, 7, 5), S(3, 2, 2), stride=S(2, 3, 1), padding=S((1, 2), (0, 1), (1, 0)),
                      dilation=S(2, 1, 2), groups=2, bias=qc, seed=19,
                      quant=Quant(x_zero_point=77, per_channel=True, w_zero_point=(3, -9), w_scale=(0.004, 0.03)))
    # the convolution's degenerate geometry and rejected configurations (quantization drawn from the seed), then ours
    degenerate = _conv_degenerate(op, dims) + [
        Case(op, 1, 2, 2, S(2, 2, 2), S(2, 2, 2), stride=S(2, 1, 2), padding=S((3, 4), (4, 3), (3, 3)), bias=qc, seed=20,
             quant=Quant(x_zero_point=250), label="windows entirely in the padding (zero point 250)"),
        Case(op, 1, 2, 2, S(11, 10, 7), S(2, 2, 2), stride=S(4, 5, 3), seed=21, quant=Quant(),
             label="stride larger than the window"),
    ]
    # configurations the definition rejects: a correct target raises
    invalid = _conv_invalid(op, dims) + [
        Case(op, 1, 3, 2, S(5, 4, 3), S(3, 2, 2), groups=2, seed=17, quant=Quant(), expect_refusal=True,
             label="groups not dividing the input channels"),
        Case(op, 1, 1, 1, S(2, 2, 2), S(4, 3, 3), seed=18, quant=Quant(), expect_refusal=True,
             label="kernel wider than the input"),
    ]
    return Parts(c, everything, degenerate, invalid)


# --------------------------------------------------------------------------- diagnosis


@dataclass
class QCandidate:
    """One convention a target may compute instead: ``compute(case, arrays)`` gives its exact result."""

    name: str
    explanation: str
    compute: Callable[[Any, dict[str, np.ndarray]], np.ndarray]


def _acc(case: Any, a: dict[str, np.ndarray], *, pad_raw: bool = False, zx: Any = None, zw: Any = None,
         bias: bool = True) -> np.ndarray:
    """The exact accumulator (object ints), with conventions changed on request."""
    from .. import quantized as Q

    q = quant_of(case)
    x = a["x"]
    zx = q.x_zero_point if zx is None else zx
    zw = (q.w_zero_points(case.cout) if q.per_channel else q.w_zero_point[0]) if zw is None else zw
    padding = case.padding
    if pad_raw:
        # padded with the raw value 0 instead of the zero point
        x = np.pad(np.asarray(x, dtype=np.int64), [(0, 0), (0, 0)] + [tuple(p) for p in case.padding])
        padding = 0
    acc = Q.conv_integer(x, a["w"], zx, zw, stride=case.stride, padding=padding, dilation=case.dilation,
                         groups=case.groups).astype(object)
    if bias and a.get("b") is not None:
        acc = acc + np.asarray(a["b"]).astype(object).reshape((-1,) + (1,) * case.dims)
    return acc


def _requant(case: Any, acc: np.ndarray, *, rounding: str | None = None, scales: Any = None,
             saturate: bool = True, zy: bool = True) -> np.ndarray:
    """``clamp(R(acc * M) + zy)`` with conventions changed on request (``saturate=False``: the cast wraps)."""
    from .. import quantized as Q

    q = quant_of(case)
    r = rounding or q.rounding
    ws = (q.w_scales(case.cout) if q.per_channel else np.float32(q.w_scale[0])) if scales is None else scales
    ms = Q.real_multiplier(q.x_scale, ws, q.y_scale, case.cout, "half_even" if r in ("truncate", "floor") else r)
    v = _unclamped(acc, ms, r) + (q.y_zero_point if zy else 0)
    lo, hi = Q.OUT_DTYPES[q.out_dtype]
    if not saturate:
        return ((v - lo) % 256 + lo).astype(np.int64)  # the low 8 bits, read in the output type
    return np.clip(v, lo, hi).astype(np.int64)


def _unclamped(acc: np.ndarray, ms: list, rounding: str) -> np.ndarray:
    """``R(acc * M)`` per element (channel axis 1), before the zero point and the clamp; Python ints."""
    from .. import quantized as Q

    out = np.empty(acc.shape, dtype=object)
    for idx, v in np.ndenumerate(acc):
        m = ms[idx[1]]
        if rounding == "gemmlowp":
            out[idx] = Q.multiply_by_quantized_multiplier(int(v), *m)
        elif rounding == "float32":
            with np.errstate(over="ignore"):
                out[idx] = Q.round_half(Fraction(float(np.float32(int(v)) * m)), "half_even")
        elif rounding in ("truncate", "floor"):
            e = int(v) * m
            out[idx] = math.floor(e) if rounding == "floor" else math.trunc(e)
        else:
            out[idx] = Q.round_half(int(v) * m, rounding)
    return out


def _wrap(acc: np.ndarray, bits: int) -> np.ndarray:
    half = 2 ** (bits - 1)
    return np.array([(int(v) + half) % (2 * half) - half for v in acc.ravel()], dtype=object).reshape(acc.shape)


def differs_by_rounding(case: Any, rounding: str) -> bool:
    """True when requantizing ``case``'s exact accumulator by ``rounding`` changes some output element.

    The cases a runtime that rounds this way fails on (``'float32'``: the
    float32 multiplier path; ``'gemmlowp'``: TFLite's fixed point).

    >>> from refconv.conformance.cases import Case
    >>> c = Case('qlinear_conv', cin=1, cout=1, spatial=(1,), kernel=(1,), quant=Quant(x_fill='one'))
    >>> differs_by_rounding(c, 'half_even')
    False
    """
    if getattr(case, "op", None) != "qlinear_conv":
        return False
    a = {k: np.asarray(v) for k, v in case_arrays(case).items()}
    acc = _acc(case, a)
    try:
        return not np.array_equal(_requant(case, acc), _requant(case, acc, rounding=rounding))
    except P.ConvParamError:  # the rounding does not apply (gemmlowp beyond int32): it cannot reproduce it
        return False


def accumulator_beyond_int32(case: Any) -> bool:
    """True when some exact accumulator of ``case`` (bias included) lies outside int32."""
    from .. import quantized as Q

    if getattr(case, "op", None) not in ("qlinear_conv", "conv_integer"):
        return False
    acc = _acc(case, {k: np.asarray(v) for k, v in case_arrays(case).items()})
    return bool(acc.size) and any(not Q.INT32_MIN <= int(v) <= Q.INT32_MAX for v in acc.ravel())


def _rounded(rounding: str) -> Callable[[Any, dict[str, np.ndarray]], np.ndarray]:
    """The exact accumulator requantized with ``rounding``."""
    return lambda c, a: _requant(c, _acc(c, a), rounding=rounding)


def candidates(case: Any) -> list[QCandidate]:
    """Every convention a quantized target may compute instead of the definition, for ``case``."""
    from .. import quantized as Q

    q = quant_of(case)
    qc = case.op == "qlinear_conv"
    out: list[QCandidate] = []

    def add(name: str, why: str, acc: Callable, **req: Any) -> None:
        if qc:
            out.append(QCandidate(name, why, lambda c, a: _requant(c, acc(c, a), **req)))
        else:
            out.append(QCandidate(name, why, lambda c, a: acc(c, a).astype(np.int64)))

    if qc:
        why = {"half_even": "ties to even", "half_away": "ties away from zero (C round)",
               "half_up": "ties toward +inf (floor(v + 1/2))",
               "gemmlowp": "gemmlowp/TFLite fixed point: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT",
               "float32": "requantization through float32: fl32(fl32(acc) * fl32(fl32(sx*sw)/sy)), ties to even"}
        for r in Q.ROUNDINGS:
            if r != q.rounding:
                out.append(QCandidate(f"rounding {r}", why[r], _rounded(r)))
        for r in ("truncate", "floor"):
            out.append(QCandidate(f"rounding {r}", f"the requantized value rounded by {r} instead of to nearest",
                                  _rounded(r)))
    add("zero point ignored in the padding", "the input padded with the raw value 0, not with its zero point "
        "(the padding then dequantizes to -x_scale * x_zero_point)", lambda c, a: _acc(c, a, pad_raw=True))
    add("input zero point ignored", "x used without subtracting x_zero_point", lambda c, a: _acc(c, a, zx=0))
    add("weight zero point ignored", "w used without subtracting w_zero_point", lambda c, a: _acc(c, a, zw=0))
    if q.per_channel:
        add("per-tensor zero point used for per-channel", "w_zero_point[0] for every output channel",
            lambda c, a: _acc(c, a, zw=q.w_zero_point[0]))
        if qc:
            out.append(QCandidate("per-tensor scale used for per-channel", "w_scale[0] for every output channel",
                                  lambda c, a: _requant(c, _acc(c, a), scales=np.float32(q.w_scale[0]))))
    if qc:
        out.append(QCandidate("bias ignored", "the int32 bias not added to the accumulator",
                              lambda c, a: _requant(c, _acc(c, a, bias=False))))
        out.append(QCandidate("missing saturation", "the requantized value cast to the output type modulo 2**8 "
                              "instead of clamped to its range", lambda c, a: _requant(c, _acc(c, a), saturate=False)))
        out.append(QCandidate("output zero point not added", "R(acc * M) clamped without y_zero_point",
                              lambda c, a: _requant(c, _acc(c, a), zy=False)))
    add("accumulation overflow (int32 wrap)", "the accumulator wraps modulo 2**32 (int32 without overflow check)",
        lambda c, a: _wrap(_acc(c, a), 32))
    add("accumulation overflow (int16 wrap)", "the accumulator wraps modulo 2**16 (an int16 accumulator)",
        lambda c, a: _wrap(_acc(c, a), 16))
    add("accumulation saturates at int32", "the accumulator clamped to int32 (a saturating int32 accumulator)",
        lambda c, a: np.clip(_acc(c, a), Q.INT32_MIN, Q.INT32_MAX))
    return out


def diagnose(runner: Any, case: Any, outcome: Any) -> tuple[list[str], list[str]]:
    """``(findings, [])``: the candidates whose exact result equals the target's output bit for bit."""
    findings: list[str] = []
    if outcome.kind == "exception":
        return ["exception raised by the target on a valid case (the oracle accepts these parameters)"], []
    actual = np.asarray(outcome.actual)
    if outcome.kind == "shape" or actual.shape != tuple(case.output_shape):
        return [f"output shape {actual.shape} instead of {tuple(case.output_shape)}"], []
    arrays = case.arrays()
    hits = []
    for cand in candidates(case):
        try:
            y = cand.compute(case, {k: np.asarray(v) for k, v in arrays.items()})
        except P.ConvParamError:
            continue  # the convention does not apply to this case (an accumulator beyond int32 for gemmlowp)
        except Exception as exc:  # noqa: BLE001 - refconv's own failure: said, never silent
            findings.append(f"(refconv's diagnosis is incomplete: candidate {cand.name!r} failed: "
                            f"{type(exc).__name__}: {exc}; a bug in refconv, please report it)")
            continue
        if y.shape == actual.shape and y.size and np.array_equal(y, actual.astype(np.int64)):
            hits.append(cand)
    for cand in hits[:3]:
        findings.append(f"{cand.name}: {cand.explanation} (the oracle with this change reproduces the output)")
    if not hits:
        w = outcome.worst or {}
        findings.append("no single convention change reproduces the output bit for bit"
                        + (f"; at {w.get('index')}: {w.get('actual')} instead of {w.get('expected')}" if w else ""))
    return findings, []


# --------------------------------------------------------------------------- reproduction


def _src(v: Any) -> str:
    if v is None:
        return "None"
    a = np.asarray(v)
    if a.ndim == 0:
        return f"np.{a.dtype}({a.item()!r})"
    if a.size == 0:
        return f"np.zeros({a.shape!r}, dtype=np.{a.dtype})"
    return f"np.array({a.ravel().tolist()!r}, dtype=np.{a.dtype}).reshape({a.shape!r})"


def repro(target: Any, op: str, case: Any, max_literal: int = 300) -> str:
    """Python source that calls the target on ``case`` and prints the elements that differ from the exact result."""
    arrays = case.arrays()
    lines = ["import numpy as np", "from refconv import quantized", target.setup.format(op=op)]
    if sum(a.size for a in arrays.values()) <= max_literal and case.layout == "contiguous":
        for k, a in arrays.items():
            lines.append(f"{k} = {_src(a)}")
    else:
        lines.append("from refconv.conformance.cases import Case")
        lines.append("from refconv.conformance.quantized_ops import Quant")
        lines.append(f"case = {replace(case, label='')!r}")
        lines.append(f"{', '.join(arrays)} = case.arrays().values()")
    names = {id(v): k for k, v in arrays.items()}
    args = ", ".join(names.get(id(v), None) or _src(v) for v in call_args(case, arrays))
    kw = ", ".join(f"{k}={v!r}" for k, v in _keywords(case).items() if k != "rounding")
    lines.append(f"y = target({args}, {kw})")
    if case.expect_refusal:
        lines.append("print(np.shape(y))  # the definition rejects this configuration: the call should have raised")
        return "\n".join(lines)
    rnd = f", rounding={quant_of(case).rounding!r}" if op == "qlinear_conv" else ""
    lines.append(f"expected = quantized.{op}({args}, {kw}{rnd})")
    lines.append("print(np.argwhere(np.asarray(y) != expected)[:5], np.shape(y), expected.shape)")
    return "\n".join(lines)


def in_int_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """:func:`~refconv.conformance.cases.in_layout` for integer arrays (a strided view's gaps hold 0, not NaN)."""
    from .cases import in_layout

    if layout != "strided":
        return in_layout(a, layout)
    # steps (1, 2, 1, ..., 2) starting one element in, as in_layout
    steps = [1] * a.ndim
    if a.ndim:
        steps[-1] = 2
    if a.ndim > 2:
        steps[1] = 2
    buf = np.zeros([max(1, s * n + 1) for s, n in zip(steps, a.shape)], dtype=a.dtype)
    view = buf[tuple(slice(1, 1 + s * n, s) for s, n in zip(steps, a.shape))]
    view[...] = a
    return view
