"""specs/conventions.md, 'TensorFlow, tinygrad and OpenVINO': the generated fingerprints, and each finding pinned
for the library versions it was found with (a test fails when a library changes the behaviour recorded)."""

import json
import os
import pathlib
import re

import numpy as np
import pytest

from refconv import oracle
from refconv.conformance import divergences
from refconv.conformance.cases import Case

SPEC = pathlib.Path(__file__).resolve().parent.parent / "specs" / "conventions.md"
FRAMEWORKS = ("tensorflow", "tinygrad", "openvino", "openvino.f32")


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow")


def _ov():
    pytest.importorskip("openvino")
    import openvino as ov
    import openvino.opset14 as ops

    return ov, ops


def _ov_run(build, x, hint="f32"):
    ov, ops = _ov()
    p = ops.parameter(list(x.shape), x.dtype)
    model = ov.Core().compile_model(ov.Model([build(p).output(0)], [p]), "CPU", {"INFERENCE_PRECISION_HINT": hint})
    return model.create_infer_request().infer({0: x})[model.outputs[0]]


def test_regenerating_the_framework_fingerprints_gives_the_committed_table():
    _tf()
    pytest.importorskip("tinygrad")
    _ov()
    from refconv.conformance.adapters import tinygrad_adapter
    from refconv.conformance.identify import identify, table

    if tinygrad_adapter.device_ready():
        pytest.skip(f"tinygrad's CPU device does not open: {tinygrad_adapter.device_ready()}")
    text = SPEC.read_text()
    committed = re.search(r"<!-- identify-frameworks:begin -->\n(.*?)\n<!-- identify-frameworks:end -->", text, re.S)
    assert table({name: identify(name, timeout=120) for name in FRAMEWORKS}) == committed.group(1)


def _known(name):
    return next(d for d in divergences.load() if d.id == name)


# ----------------------------------------------------------------------------- TensorFlow


def test_tensorflow_cpu_flushes_subnormals():
    tf = _tf()
    x = np.array([[[[-(2.0**-140)]]]], np.float32)
    assert float(tf.nn.conv2d(x, np.ones((1, 1, 1, 1), np.float32), 1, "VALID")[0, 0, 0, 0]) == 0.0
    assert oracle.conv(x, np.ones((1, 1, 1, 1), np.float32))[0, 0, 0, 0] == np.float32(-(2.0**-140))
    assert _known("tf-cpu-flushes-subnormals").explains("tensorflow", Case("conv", values="subnormal"))


def test_tensorflow_max_pool_of_minus_infinity_is_the_lowest_finite_value():
    tf = _tf()
    for dtype in (np.float32, np.float64):
        y = tf.nn.max_pool(tf.constant(np.full((1, 1, 1, 1), -np.inf, dtype)), 1, 1, "VALID")
        assert float(y[0, 0, 0, 0]) == -np.finfo(dtype).max
    case = Case("max_pool", spatial=(1,), kernel=(1,), padding=((0, 1),))
    assert _known("tf-maxpool-window-in-padding").explains("tensorflow", case)


def test_tensorflow_valid_window_longer_than_the_input_gives_an_empty_axis():
    tf = _tf()
    assert tuple(tf.nn.avg_pool(tf.constant(np.ones((1, 4, 1), np.float32)), 5, 1, "VALID").shape) == (1, 0, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="would be negative"):
        tf.nn.avg_pool(tf.constant(np.ones((1, 3, 1), np.float32)), 5, 1, "VALID")
    case = Case("avg_pool", spatial=(4,), kernel=(5,), expect_refusal=True)
    assert _known("tf-window-beyond-input").explains("tensorflow", case)


def test_tensorflow_conv3d_float64_same_with_a_stride_beyond_the_window_shifts_the_windows():
    tf = _tf()
    x = np.arange(7.0).reshape(1, 1, 7, 1, 1)
    w = np.ones((1, 1, 1, 1, 1))
    assert np.asarray(tf.nn.conv3d(x, w, [1, 1, 4, 1, 1], "SAME")).ravel().tolist() == [1.0, 5.0]
    assert np.asarray(tf.nn.conv3d(x.astype(np.float32), w.astype(np.float32), [1, 1, 4, 1, 1],
                                   "SAME")).ravel().tolist() == [0.0, 4.0]
    assert oracle.conv(x.reshape(1, 1, 7, 1, 1), w, stride=(4, 1, 1), padding="same").ravel().tolist() == [0.0, 4.0]


def test_tensorflow_float32_convolution_with_an_empty_output_has_the_input_shape():
    tf = _tf()
    x, w = np.ones((0, 5, 5, 4)), np.ones((3, 3, 4, 6))
    assert tuple(tf.nn.conv2d(tf.constant(x, tf.float32), w.astype(np.float32), 1, "VALID").shape) == (0, 5, 5, 4)
    assert tuple(tf.nn.conv2d(tf.constant(x), w, 1, "VALID").shape) == (0, 3, 3, 6)
    x1, w1 = np.ones((1, 4, 1)), np.ones((5, 1, 1))
    assert tuple(tf.nn.conv1d(tf.constant(x1, tf.float32), w1.astype(np.float32), 1, "VALID").shape) == (1, 4, 1)
    assert tuple(tf.nn.conv1d(tf.constant(x1), w1, 1, "VALID").shape) == (1, 0, 1)


def test_tensorflow_float32_max_pool_with_an_output_length_0_is_killed_by_sigfpe():
    import signal
    import subprocess
    import sys

    _tf()
    # float64 (Eigen) returns the empty axis; float32 (oneDNN) divides by the output width 0 while building its kernel
    code = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
            "import tensorflow as tf\n"
            "print(tuple(tf.nn.max_pool1d(tf.ones((1, 4, 2), tf.float64), 5, 1, 'VALID').shape), flush=True)\n"
            "tf.nn.max_pool1d(tf.ones((1, 4, 2)), 5, 1, 'VALID')\n"
            "print('returned', flush=True)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stdout.split("\n")[0] == "(1, 0, 2)" and "returned" not in run.stdout
    assert run.returncode == -signal.SIGFPE, (run.returncode, run.stderr[-2000:])
    # the catalogue's invalid case: the crash entry explains it in float32 (first), the empty axis in float64
    case = Case("max_pool", spatial=(3,), kernel=(5,), padding=((0, 1),), expect_refusal=True)
    assert [d.id for d in divergences.find("tensorflow", case, divergences.load(), "float32")] == [
        "tf-maxpool-float32-sigfpe", "tf-window-beyond-input"]
    assert [d.id for d in divergences.find("tensorflow", case, divergences.load(), "float64")] == [
        "tf-window-beyond-input"]


# ----------------------------------------------------------------------------- tinygrad


def test_tinygrad_conv_transpose_computes_an_output_padding_no_convolution_produces():
    pytest.importorskip("tinygrad")
    from refconv.conformance.adapters import tinygrad_adapter
    from refconv.params import ConvParamError

    if tinygrad_adapter.device_ready():
        pytest.skip(f"tinygrad's CPU device does not open: {tinygrad_adapter.device_ready()}")
    from tinygrad import Tensor

    x, w = np.ones((1, 1, 3), np.float32), np.ones((1, 1, 2), np.float32)
    y = Tensor(x).conv_transpose2d(Tensor(w), stride=2, output_padding=2).numpy()
    assert y.shape == (1, 1, 8)
    with pytest.raises(ConvParamError, match="output_padding"):
        oracle.conv_transpose(x, w, stride=2, output_padding=2)
    assert not tinygrad_adapter.capabilities("conv_transpose", 1, "float32").refuses_invalid


# ----------------------------------------------------------------------------- OpenVINO


def test_openvino_cpu_default_precision_is_named_and_f32_is_exact():
    ov, _ = _ov()
    hint = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    from refconv.conformance import adapters

    assert f"INFERENCE_PRECISION_HINT={hint} (the device's default)" in adapters.get("openvino").environment()[0]
    x = np.array([[[1.0 + 2.0**-12]]], np.float32)  # not a bfloat16 value
    conv = adapters.get("openvino").function("conv")
    got = conv(x, np.ones((1, 1, 1), np.float32), None, stride=(1,), padding=((0, 0),), dilation=(1,), groups=1)
    assert (got[0, 0, 0] == x[0, 0, 0]) == (hint != "bf16")
    f32 = adapters.get("openvino.f32").function("conv")
    assert f32(x, np.ones((1, 1, 1), np.float32), None, stride=(1,), padding=((0, 0),), dilation=(1,),
               groups=1)[0, 0, 0] == x[0, 0, 0]


def test_openvino_backprop_data_auto_pad_same_without_output_shape_does_not_crop():
    _, ops = _ov()
    x, w = np.array([[[1.0, 2.0, 3.0]]], np.float32), np.ones((1, 1, 3), np.float32)
    y = _ov_run(lambda p: ops.convolution_backprop_data(p, w, [1], pads_begin=[0], pads_end=[0], dilations=[1],
                                                        auto_pad="same_upper"), x)
    assert y.tolist() == [[[1.0, 3.0, 6.0, 5.0, 3.0]]]
    assert oracle.conv_transpose(x, w, padding=((1, 1),)).tolist() == [[[3.0, 6.0, 5.0]]]


def test_openvino_avg_pool_ceil_torch_divides_a_short_window_by_the_kernel_size():
    _, ops = _ov()
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0, -6.0]]], np.float32)
    y = _ov_run(lambda p: ops.avg_pool(p, [2], [1], [1], [3], exclude_pad=False, rounding_type="ceil_torch"), x)
    assert y.tolist() == [[[1.0, 3.0, 1.0, -2.0]]]
    assert oracle.avg_pool(x, 3, stride=2, padding=1, ceil_mode=True).tolist() == [[[1.0, 3.0, 1.0, -3.0]]]


def test_openvino_max_pool_window_in_padding_is_a_known_divergence():
    _, ops = _ov()
    y = _ov_run(lambda p: ops.max_pool(p, [1], [1], [0], [1], [1]), np.array([[[1.0]]], np.float32))
    assert y.tolist() == [[[1.0, -float(np.finfo(np.float32).max)]]]
    case = Case("max_pool", spatial=(1,), kernel=(1,), padding=((0, 1),))
    assert _known("openvino-maxpool-window-in-padding").explains("openvino.f32", case)
    json.loads(pathlib.Path(divergences.PACKAGED).read_text())  # the packaged file stays valid JSON
