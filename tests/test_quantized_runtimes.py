"""The quantized runtimes (ONNX Runtime, PyTorch's CPU engines): what they compute, pinned on minimal cases.

Each divergence of specs/conventions.md ("Quantized convolution") is reproduced here on today's libraries:
when a library changes, the test says so.
"""

import warnings

import numpy as np
import pytest

from refconv import quantized as Q
from refconv.conformance import adapters, check

KW = dict(stride=(1,), padding=((0, 0),), dilation=(1,), groups=1)
S16 = float(np.float32(1 / 6))  # 1/6 + 3.0e-9


def _near_tie():
    """acc = 3 (x - zx = 3, w = 1): exactly 3 * fl32(1/6) = 0.50000001 -> 1; the float32 path rounds onto 0.5 -> 0."""
    x = np.array([[[131]]], np.uint8)
    w = np.array([[[1]]], np.int8)
    return (x, np.float32(S16), np.uint8(128), w, np.float32(1.0), np.int8(0), np.float32(1.0), np.uint8(128), None)


def _beyond_int32():
    """33100 products of 255 * 255: 2152327500 > 2**31 - 1; / 2**24 = 128.29 -> 128 exactly; wrapped -> 0."""
    x = np.full((1, 33100, 1), 255, np.uint8)
    w = np.full((1, 33100, 1), 127, np.int8)
    return (x, np.float32(1.0), np.uint8(0), w, np.float32(1.0), np.int8(-128), np.float32(2.0**24), np.uint8(0), None)


def _runtimes():
    names = []
    if _importable("onnxruntime") and _importable("onnx"):
        names.append("onnxruntime.quantized")
    if _importable("torch"):
        import torch

        names += [f"torch.quantized.{e}" for e in ("x86", "fbgemm", "qnnpack", "onednn")
                  if e in torch.backends.quantized.supported_engines]
    return names


def _importable(mod):
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def _run(name, args):
    fn = adapters.get(name).function("qlinear_conv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(fn(*args, **KW, out_dtype="uint8"))


def test_the_reproductions_are_what_the_definition_says():
    assert Q.qlinear_conv(*_near_tie(), **KW).tolist() == [[[129]]]
    assert Q.qlinear_conv(*_near_tie(), **KW, rounding="float32").tolist() == [[[128]]]
    assert Q.qlinear_conv(*_beyond_int32(), **KW).tolist() == [[[128]]]


@pytest.mark.parametrize("name", _runtimes())
def test_requantization_through_float32(name):
    # every runtime here requantizes with a float32 scale: the near-tie rounds onto the tie, then to even
    assert _run(name, _near_tie()).tolist() == [[[128]]]


@pytest.mark.parametrize("name", [n for n in _runtimes() if not n.endswith("onednn")])
def test_the_int32_accumulator_wraps(name):
    # 2152327500 wraps to -2142639796: requantized to -128, clamped to 0 (the exact result is 128)
    assert _run(name, _beyond_int32()).tolist() == [[[0]]]


@pytest.mark.parametrize("name", _runtimes())
def test_ties_are_to_even(name):
    # x - zx = -128 .. 127, M = 1/8: every tie k + 1/2 rounds to even, as the definition
    x = np.arange(256, dtype=np.uint8).reshape(1, 1, 256)
    args = (x, np.float32(0.5), np.uint8(128), np.ones((1, 1, 1), np.int8), np.float32(0.25), np.int8(0),
            np.float32(1.0), np.uint8(128), None)
    assert np.array_equal(_run(name, args), Q.qlinear_conv(*args, **KW))


@pytest.mark.parametrize("name", _runtimes())
def test_the_check_finds_a_documented_divergence(name):
    # the first failing catalogue case is one of the two divergences, and its diagnosis names it
    r = check(name, op="qlinear_conv", dims=1, max_examples=0, seed=0, timeout=120)
    assert r.verdict == "FAIL"
    assert any("rounding float32" in d or "int32 wrap" in d for d in r.failure.diagnosis), str(r)


def test_onnxruntime_conv_integer_conforms():
    pytest.importorskip("onnxruntime")
    r = check("onnxruntime.quantized", op="conv_integer", dims=2, max_examples=10, seed=0, timeout=120)
    assert r.verdict == "PASS", str(r)


def test_tflite_requantizes_with_gemmlowp_fixed_point():
    pytest.importorskip("tensorflow")
    pytest.importorskip("flatbuffers")
    fn = adapters.get("tflite.quantized").function("qlinear_conv")
    # x = -128 .. 127 (int8, zx = 0), w = 1, M = 0.5 * 0.25 / 1 = 1/8: ties and gemmlowp's double rounding
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16)
    args = (x, np.float32(0.5), np.int8(0), np.ones((1, 1, 1, 1), np.int8), np.float32(0.25), np.int8(0),
            np.float32(1.0), np.int8(0), None)
    kw = dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1, out_dtype="int8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = np.asarray(fn(*args, **kw))
    assert np.array_equal(y, Q.qlinear_conv(*args, **kw, rounding="gemmlowp"))
    assert not np.array_equal(y, Q.qlinear_conv(*args, **kw))  # 3/8 -> 1 (double rounding), exactly 0
    assert int(y.reshape(-1)[128 + 3]) == 1  # x = 3: 3/8 rounds to 0, gemmlowp gives 1
