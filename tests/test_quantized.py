"""Quantized convolution: the exact oracle (refconv.quantized), the fast engine, and ONNX's own node cases."""

import functools
import math
import pathlib
import warnings
from fractions import Fraction

import numpy as np
import pytest

from refconv import fast
from refconv import quantized as Q
from refconv.params import ConvParamError


# --------------------------------------------------------------------------- ONNX node cases


def _onnx_node_cases(op_type):
    """(name, node, inputs, outputs) of ONNX's backend node cases for ``op_type``.

    The .pb tensors under onnx/backend/test/data/node when the installed package ships them, else the same
    cases from the generators they are written by (onnx.backend.test.case.node.collect_testcases).
    """
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    root = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    prefix = {"ConvInteger": "test_convinteger", "QLinearConv": "test_qlinearconv"}[op_type]
    dirs = sorted(d for d in root.glob(prefix + "*") if "expanded" not in d.name) if root.is_dir() else []
    out = []
    for d in dirs:
        model = onnx.load(str(d / "model.onnx"))
        for ds in sorted(d.glob("test_data_set_*")):
            out.append((d.name, model.graph.node[0], _tensors(numpy_helper, onnx, ds, "input"),
                        _tensors(numpy_helper, onnx, ds, "output")))
    if out:
        return out
    for tc in _generated_node_cases():
        node = tc.model.graph.node[0]
        if node.op_type != op_type:
            continue
        for inputs, outputs in tc.data_sets:
            out.append((tc.name, node, list(inputs), list(outputs)))
    return out


def _tensors(numpy_helper, onnx, folder, kind):
    """The ``{kind}_<i>.pb`` tensors of a test data set, in order."""
    files = sorted(folder.glob(f"{kind}_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
    return [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in files]


@functools.lru_cache(maxsize=1)
def _generated_node_cases():
    # every generator once (the collection is module state: a second call with another op_type adds nothing)
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return tuple(collect_testcases())


def _geometry(node, spatial):
    """The oracle's keywords from an ONNX node's attributes (pads: all begins, then all ends)."""
    from onnx import helper

    a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
    d = len(spatial)
    pads = a.get("pads", [0] * 2 * d)
    padding = tuple((pads[i], pads[i + d]) for i in range(d))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        padding = "same" if auto == "SAME_UPPER" else "same_lower"
    elif auto == "VALID":
        padding = "valid"
    return dict(stride=tuple(a.get("strides", [1] * d)), padding=padding, dilation=tuple(a.get("dilations", [1] * d)),
                groups=a.get("group", 1))


@pytest.mark.parametrize("op_type", ["ConvInteger", "QLinearConv"])
def test_onnx_node_cases_pass_through_the_oracle_call(op_type):
    cases = _onnx_node_cases(op_type)
    assert cases, f"no ONNX node case for {op_type}"
    for name, node, inputs, (expected,) in cases:
        kw = _geometry(node, inputs[0].shape[2:])
        if op_type == "ConvInteger":
            y = Q.conv_integer(*inputs, **kw)
            yf = fast.conv_integer(*inputs, **kw)
        else:
            y = Q.qlinear_conv(*inputs, **kw)
            yf = fast.qlinear_conv(*inputs, **kw)
        assert y.shape == expected.shape, name
        assert np.array_equal(y, expected) and np.array_equal(yf, expected), name
        if op_type == "QLinearConv":
            assert y.dtype == expected.dtype, name


# --------------------------------------------------------------------------- definitions


def test_padding_holds_the_zero_point():
    x = np.full((1, 1, 3), 7, np.uint8)
    w = np.ones((1, 1, 3), np.int8)
    # x == zx everywhere: every tap, padded or not, dequantizes to 0
    assert np.array_equal(Q.conv_integer(x, w, 7, 0, padding=2), np.zeros((1, 1, 5), np.int64))
    # with the zero point ignored in the padding the border would differ
    assert Q.conv_integer(x, w, 3, 0, padding=1).tolist() == [[[8, 12, 8]]]


def test_per_channel_weight_zero_point_and_scale():
    x = np.array([[[1, 2]]], np.int8)
    w = np.array([[[1, 1]], [[5, 5]]], np.int8)
    assert Q.conv_integer(x, w, 0, [1, 5]).tolist() == [[[0], [0]]]
    assert Q.conv_integer(x, w, 0, [0, 1]).tolist() == [[[3], [12]]]
    y = Q.qlinear_conv(x, 1.0, 0, w, [1.0, 0.25], 0, 1.0, 0)  # acc [3, 15] times [1, 1/4]: 3, 3.75 -> 4
    assert y.tolist() == [[[3], [4]]] and y.dtype == np.int8


@pytest.mark.parametrize("mode, expected", [
    ("half_even", [-2, -2, -0, 0, 2, 2]),
    ("half_away", [-3, -2, -1, 1, 2, 3]),
    ("half_up", [-2, -1, 0, 1, 2, 3]),
])
def test_ties_per_rounding_mode(mode, expected):
    acc = [-5, -3, -1, 1, 3, 5]                      # times 1/2: -2.5, -1.5, -0.5, 0.5, 1.5, 2.5
    assert Q.requantize(acc, Fraction(1, 2), 0, rounding=mode).tolist() == expected
    assert fast.requantize(acc, Fraction(1, 2), 0, rounding=mode).tolist() == expected


def test_gemmlowp_matches_its_definition():
    # SaturatingRoundingDoublingHighMul: the single overflow saturates; ties of the high mul go up
    assert Q.saturating_rounding_doubling_high_mul(Q.INT32_MIN, Q.INT32_MIN) == Q.INT32_MAX
    assert Q.saturating_rounding_doubling_high_mul(Q.INT32_MIN, Q.INT32_MAX) == -Q.INT32_MAX
    assert fast.quantized._srdhm(np.array([Q.INT32_MIN]), np.array([Q.INT32_MIN])).tolist() == [Q.INT32_MAX]
    # RoundingDivideByPOT: ties away from zero
    assert [Q.rounding_divide_by_pot(v, 2) for v in (6, -6, 5, -5, 7, -7)] == [2, -2, 1, -1, 2, -2]
    # QuantizeMultiplier: q in [2**30, 2**31), the round-up to 2**31 renormalized
    assert Q.quantize_multiplier(1 - 2.0**-40) == (2**30, 1)
    for real in (0.1, 0.5, 0.75, 1e-5, 0.3333):
        q, shift = Q.quantize_multiplier(real)
        assert 2**30 <= q < 2**31 and abs(Fraction(q, 2**31) * Fraction(2) ** shift - Fraction(real)) <= Fraction(2) ** (shift - 32)
    assert Q.quantize_multiplier(2.0**-40) == (0, 0)
    acc = np.arange(-300, 301)
    for real in (0.1, 0.37, 2.0**-7):
        q, shift = Q.quantize_multiplier(real)
        want = [Q.rounding_divide_by_pot(Q.saturating_rounding_doubling_high_mul(int(a), q), -shift) for a in acc]
        got = fast.requantize(acc, real, 0, rounding="gemmlowp", out_dtype="int8")
        assert np.array_equal(got, np.clip(want, -128, 127))
        assert np.array_equal(Q.requantize(acc, real, 0, rounding="gemmlowp"), got)


def test_float32_path_is_not_exact():
    # 5 * 0.1: float32(0.1) < 0.1 and the product rounds to 0.5 exactly -> 0 (ties to even); exact: 0.5000000000000000277 -> 1
    assert Q.requantize([5], 0.1, 0, rounding="float32").tolist() == [0]
    assert Q.requantize([5], 0.1, 0, rounding="half_even").tolist() == [1]
    # float32(acc) itself rounds above 2**24
    assert Q.requantize([2**24 + 1], Fraction(1, 2**24), 0, rounding="float32").tolist() == [1]


def test_saturation_at_both_ends():
    for mod in (Q, fast):
        assert mod.requantize([10**6, -10**6], 1, 0, out_dtype="int8").tolist() == [127, -128]
        assert mod.requantize([10**6, -10**6], 1, 0, out_dtype="uint8").tolist() == [255, 0]
        assert mod.requantize([2**70, -2**70], Fraction(1, 3), 5, out_dtype="uint8").tolist() == [255, 0]


def test_int32_overflow_report():
    # 255 * 127 * 70000 > 2**31: a long reduction leaves int32
    x = np.full((1, 70000, 1), 255, np.uint8)
    w = np.full((1, 70000, 1), 127, np.int8)
    acc = Q.conv_integer(x, w)
    assert acc.tolist() == [[[255 * 127 * 70000]]] and acc.dtype == np.int64
    rep = Q.int32_overflow(acc)
    assert not rep.fits and rep.count == 1 and rep.index == (0, 0, 0) and "do not fit int32" in str(rep)
    assert np.array_equal(fast.conv_integer(x, w), acc)
    assert Q.int32_overflow([2**31 - 1, -2**31]).fits
    assert Q.wrap_int32(2**31) == -2**31


def test_bias_is_in_the_accumulator_scale():
    x = np.array([[[2]]], np.int8)
    w = np.array([[[3]]], np.int8)
    # (6 + 10) * 0.5 * 0.25 / 1 = 2
    assert Q.qlinear_conv(x, 0.5, 0, w, 0.25, 0, 1.0, 0, [10]).tolist() == [[[2]]]


def test_out_dtype_follows_y_zero_point_like_onnx():
    x = np.array([[[2]]], np.uint8)
    w = np.array([[[3]]], np.int8)
    assert Q.qlinear_conv(x, 1.0, 0, w, 1.0, 0, 1.0, np.uint8(0)).dtype == np.uint8
    assert Q.qlinear_conv(x, 1.0, 0, w, 1.0, 0, 1.0, np.int8(0)).dtype == np.int8
    with pytest.raises(ConvParamError, match="out_dtype=None"):
        Q.qlinear_conv([[[2]]], 1.0, 0, [[[3]]], 1.0, 0, 1.0, 0)


@pytest.mark.parametrize("call, match", [
    (lambda m: m.conv_integer([[[1.5]]], [[[1]]]), r"x: every value must be an integer, got 1.5"),
    (lambda m: m.conv_integer([[[1]]], [[[1]], [[1]]], 0, [1, 2, 3]), r"w_zero_point=\[1, 2, 3\]"),
    (lambda m: m.conv_integer([[[1]]], [[[1]]], [1, 2]), r"x_zero_point=\[1, 2\]"),
    (lambda m: m.conv_integer([[[1]]], [[[1]]], stride=0), r"stride=0"),
    (lambda m: m.qlinear_conv([[[1]]], -1.0, 0, [[[1]]], 1.0, 0, 1.0, 0, out_dtype="int8"), r"x_scale=-1.0"),
    (lambda m: m.qlinear_conv([[[1]]], 1.0, 0, [[[1]]], float("nan"), 0, 1.0, 0, out_dtype="int8"), r"w_scale=nan"),
    (lambda m: m.qlinear_conv([[[1]]], 1.0, 0, [[[1]]], 1.0, 0, 1.0, 0, out_dtype="int4"), r"out_dtype='int4'"),
    (lambda m: m.qlinear_conv([[[1]]], 1.0, 0, [[[1]]], 1.0, 0, 1.0, 300, out_dtype="uint8"), r"y_zero_point=300"),
    (lambda m: m.qlinear_conv([[[1]]], 1.0, 0, [[[1]]], 1.0, 0, 1.0, 0, [2**31], out_dtype="int8"), r"b"),
    (lambda m: m.qlinear_conv([[[1]]], 1.0, 0, [[[1]]], 1.0, 0, 1.0, 0, rounding="nearest", out_dtype="int8"),
     r"rounding='nearest'"),
    (lambda m: m.requantize([2**31], 0.5, 0, rounding="gemmlowp"), r"acc"),
])
@pytest.mark.parametrize("mod", [Q, fast], ids=["oracle", "fast"])
def test_bad_arguments_are_named(mod, call, match):
    with pytest.raises(ConvParamError, match=match):
        call(mod)


def test_quantize_multiplier_refuses_bad_reals():
    for bad in (-1.0, float("inf"), float("nan"), True, 2.0**40):
        with pytest.raises(ConvParamError, match="real="):
            Q.quantize_multiplier(bad)


# --------------------------------------------------------------------------- the fast engine is the oracle


def test_fast_equals_oracle_on_random_cases():
    rng = np.random.default_rng(14)
    for t in range(40):
        g = int(rng.integers(1, 3))
        cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        d = int(rng.integers(1, 3))
        odt = "uint8" if t % 2 else "int8"
        lo, hi = Q.OUT_DTYPES[odt]
        x = rng.integers(lo, hi + 1, size=(2, cin) + (5,) * d).astype(odt)
        w = rng.integers(-128, 128, size=(cout, cin // g) + (2,) * d).astype(np.int8)
        zx = int(rng.integers(lo, hi + 1))
        zw = rng.integers(-128, 128, size=cout) if t % 3 else int(rng.integers(-128, 128))
        kw = dict(stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 3)), dilation=int(rng.integers(1, 3)),
                  groups=g)
        assert np.array_equal(Q.conv_integer(x, w, zx, zw, **kw), fast.conv_integer(x, w, zx, zw, **kw))
        sw = (rng.random(cout) * 10.0 ** rng.integers(-5, 0, size=cout)).astype(np.float32) + np.float32(1e-7)
        b = rng.integers(-2**20, 2**20, size=cout)
        for r in Q.ROUNDINGS:
            args = (x, np.float32(0.03), zx, w, sw, zw, np.float32(0.2), int(rng.integers(lo, hi + 1)), b)
            y, yf = Q.qlinear_conv(*args, rounding=r, out_dtype=odt, **kw), fast.qlinear_conv(*args, rounding=r, out_dtype=odt, **kw)
            assert y.dtype == yf.dtype == np.dtype(odt) and np.array_equal(y, yf), (t, r)


def test_fast_requantize_on_exact_ties_and_huge_accumulators():
    acc = np.arange(-64, 65) * 8 + 4                  # times 1/8: every value a tie k + 1/2
    for r in ("half_even", "half_away", "half_up"):
        assert np.array_equal(Q.requantize(acc, Fraction(1, 8), 0, rounding=r),
                              fast.requantize(acc, Fraction(1, 8), 0, rounding=r))
    big = np.array([2**40 + 1, -(2**40) - 1], dtype=np.int64)
    m = Fraction(3, 2**41)                            # (2**40+1) * 3 / 2**41 = 1.5 + tiny
    assert Q.requantize(big, m, 0).tolist() == fast.requantize(big, m, 0).tolist() == [2, -2]
    assert math.isclose(float(m * (2**40 + 1)), 1.5, rel_tol=1e-9)
