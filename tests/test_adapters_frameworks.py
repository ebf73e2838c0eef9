"""The TensorFlow, tinygrad and OpenVINO adapters: exact on integer cases, their declarations, devices, a missing library."""

import sys

import numpy as np
import pytest

from refconv import oracle
from refconv.conformance import adapters, check
from refconv.conformance.cases import Case
from refconv.conformance.targets import TargetError, resolve

FAMILIES = {"tensorflow": "tensorflow", "tinygrad": "tinygrad", "openvino": "openvino"}


def _ints(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).integers(-3, 4, size=shape).astype(dtype)


# ----------------------------------------------------------------------------- names, extras, devices (no library needed)


def test_the_framework_adapters_are_listed_with_their_extras():
    for family in FAMILIES:
        assert family in adapters.FAMILIES and family in adapters.ADAPTERS
        assert adapters.LIBRARIES[family] == ((FAMILIES[family],), family)
    assert "openvino.f32" in adapters.ADAPTERS


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_missing_framework_is_a_usage_error_naming_its_pip_command(monkeypatch, family):
    from refconv.cli import main

    monkeypatch.setitem(sys.modules, FAMILIES[family], None)
    monkeypatch.setattr(adapters, "_cache", {})
    with pytest.raises(TargetError, match=rf"^{family} is not installed: pip install 'refconv\[{family}\]'$"):
        resolve(family)
    assert main(["check", family, "--quiet"]) == 2


def test_a_device_after_the_colon_is_checked_against_the_family():
    assert adapters.split_device("torch:cuda") == ("torch", "cuda")
    assert adapters.split_device("mymod:conv") == ("mymod:conv", None)
    pytest.importorskip("torch")
    with pytest.raises(TargetError, match=r"device 'tpu' is not one of 'cpu', 'cuda' for torch"):
        resolve("torch:tpu")
    assert adapters.split_device("tinygrad:gpu") == ("tinygrad:gpu", None)  # its CPU device only: no device suffix


def test_a_device_the_library_does_not_see_is_refused_not_run_on_the_cpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(TargetError, match="PyTorch sees no CUDA device"):
        resolve("torch:cuda")
    from refconv.cli import main

    assert main(["check", "torch:cuda", "--op", "conv", "--quiet"]) == 2


def test_torch_cuda_float32_fails_with_the_tf32_diagnosis_and_passes_as_tf32():
    """PyTorch enables TF32 for cuDNN convolutions by default on Ampere and later GPUs."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("needs a CUDA GPU with TF32 (compute capability >= 8)")
    assert "allow_tf32=True" in adapters.get("torch:cuda").environment()[0]
    r = check("torch:cuda", op="conv", dims=2, max_examples=20, seed=0, timeout=120)
    assert r.verdict == "FAIL" and any("tf32" in d for d in r.failure.diagnosis), str(r)
    assert check("torch:cuda", op="conv", dims=2, max_examples=20, seed=0, timeout=120, precision="tf32").ok


# ----------------------------------------------------------------------------- TensorFlow


def _tf():
    pytest.importorskip("tensorflow")
    return adapters.get("tensorflow")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tensorflow_conv_is_exact_through_each_padding_path(dtype):
    t = _tf().function("conv")
    cases = [
        # 2-D: SAME, VALID, explicit pairs; grouped; depthwise (groups == C_in, HWIM weights)
        ((1, 4, 6, 5), (6, 2, 3, 2), dict(stride=(2, 1), padding=((1, 0), (0, 2)), dilation=(1, 2), groups=2)),
        ((2, 2, 5, 5), (3, 2, 3, 3), dict(stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)),
        ((1, 2, 5, 4), (3, 2, 2, 2), dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)),
        ((1, 3, 6, 5), (6, 1, 2, 3), dict(stride=(2, 2), padding=((1, 0), (2, 1)), dilation=(1, 1), groups=3)),
        # 1-D and 3-D: tf.pad then VALID for pairs no mode computes
        ((1, 2, 7), (3, 2, 3), dict(stride=(2,), padding=((2, 0),), dilation=(2,), groups=1)),
        ((1, 2, 4, 3, 5), (2, 2, 2, 1, 2), dict(stride=(1, 2, 1), padding=((1, 0), (0, 0), (0, 1)), dilation=(1, 1, 1),
                                                groups=1)),
    ]
    for i, (xs, ws, kw) in enumerate(cases):
        x, w, b = _ints(xs, i, dtype), _ints(ws, i + 10, dtype), _ints((ws[0],), i + 20, dtype)
        got = t(x, w, b, **kw)
        want = oracle.conv(x, w, b, **kw)
        assert got.dtype == dtype and got.shape == want.shape and np.array_equal(got, want), (xs, ws, kw)


def test_tensorflow_transposed_convolution_gradients_and_pooling_are_exact():
    tf = _tf()
    x, wt = _ints((1, 4, 3, 4)), _ints((4, 3, 3, 2), 1)
    for pad, op in ((((1, 0), (0, 1)), (1, 0)), (((0, 0), (0, 0)), (0, 0)), (((1, 1), (0, 1)), (0, 1))):
        kw = dict(stride=(2, 2), padding=pad, output_padding=op, dilation=(1, 1), groups=1)
        want = oracle.conv_transpose(x, wt, **kw)
        got = tf.function("conv_transpose")(x, wt, None, **kw)
        assert got.shape == want.shape and np.array_equal(got, want)
    x1, w1 = _ints((1, 2, 3)), _ints((2, 3, 3), 2)  # 1-D: SAME computes ((1, 1),) with stride 2 and output 5
    kw = dict(stride=(2,), padding=((1, 1),), output_padding=(0,), dilation=(1,), groups=1)
    assert np.array_equal(tf.function("conv_transpose")(x1, w1, None, **kw), oracle.conv_transpose(x1, w1, **kw))
    x, w = _ints((2, 4, 6, 5)), _ints((4, 1, 3, 2), 3)  # depthwise gradients go through the depthwise kernels
    kw = dict(stride=(2, 2), padding=((1, 0), (0, 1)), dilation=(1, 1), groups=4)
    dy = _ints(oracle.conv(x, w, **kw).shape, 4)
    assert np.array_equal(tf.function("conv_grad_input")(dy, w, x.shape, **kw), oracle.conv_grad_input(dy, w, x.shape, **kw))
    assert np.array_equal(tf.function("conv_grad_weight")(x, dy, w.shape, **kw),
                          oracle.conv_grad_weight(x, dy, w.shape, **kw))
    xp = _ints((1, 2, 5, 6), 5)
    for pad, dil, stride in ((((1, 1), (0, 1)), (1, 1), (2, 2)), (((0, 1), (1, 1)), (2, 1), (1, 1))):
        kw = dict(stride=stride, padding=pad, dilation=dil, ceil_mode=False)
        assert np.array_equal(tf.function("max_pool")(xp, (2, 2), **kw), oracle.max_pool(xp, (2, 2), **kw))
    # SAME excludes the padding from the divisor; explicit pairs count it (tf.pad with zeros, then VALID)
    # (divisors 1, 2 and 4: the means of integers are exact)
    for pad, include in ((((0, 1), (0, 0)), False), (((1, 0), (1, 1)), True)):
        kw = dict(stride=(2, 2), padding=pad, ceil_mode=False, count_include_pad=include)
        got, want = tf.function("avg_pool")(xp, (2, 2), **kw), oracle.avg_pool(xp, (2, 2), **kw)
        assert got.shape == want.shape and np.array_equal(got, want)
    with pytest.raises(ValueError, match="excludes padding only under 'SAME'"):
        tf.function("avg_pool")(xp, (2, 2), stride=(2, 2), padding=((1, 0), (0, 0)), ceil_mode=False,
                                count_include_pad=False)


def test_tensorflow_declares_what_its_cpu_kernels_cannot_do():
    caps = _tf().capabilities
    avg = caps("avg_pool", 2, "float32")
    same = Case("avg_pool", spatial=(5,), kernel=(2,), padding=((0, 1),), stride=(2,), count_include_pad=False)
    other = Case("avg_pool", spatial=(5,), kernel=(2,), padding=((1, 0),), stride=(2,), count_include_pad=False)
    assert caps("avg_pool", 1, "float32").supports(same) and not caps("avg_pool", 1, "float32").supports(other)
    assert not avg.ceil_mode and not avg.dilation and not avg.divisor_override
    assert not caps("conv_transpose", 2, "float32").groups
    assert caps("max_pool", 3, "float64").dtypes == ("float32",)  # no float64 MaxPool3D / AvgPool3D kernels
    grouped3d = Case("conv", cin=2, cout=2, spatial=(2, 2, 2), kernel=(1, 1, 1), groups=2)
    assert grouped3d.is_valid() and not caps("conv", 3, "float32").supports(grouped3d)
    dilated = Case("conv", spatial=(6,), kernel=(2,), dilation=(2,))
    assert caps("conv", 1, "float32").supports(dilated) and not caps("conv_grad_input", 1, "float32").supports(dilated)


def test_tensorflow_checks_pass_where_its_kernels_conform():
    _tf()
    # subnormals are flushed (a recorded known divergence): claimed, the rest is checked strictly
    for op, dims in (("conv_grad_input", 3), ("conv_transpose", 3), ("conv_grad_weight", 2)):
        r = check("tensorflow", op=op, dims=dims, max_examples=5, seed=0, timeout=120, precision="float32-ftz")
        assert r.ok, str(r)


def test_tensorflow_float32_max_pool_runs_in_a_worker_where_its_sigfpe_is_a_crash():
    _tf()
    from refconv.conformance.adapters import tensorflow_adapter

    assert tensorflow_adapter.isolated("max_pool", "float64") == "" and tensorflow_adapter.isolated("conv", "float32") == ""
    r = check("tensorflow", op="max_pool", dims=1, max_examples=0, seed=0, timeout=120, allow_known=True)
    assert r.verdict == "PASS", str(r)
    assert any(n.startswith("the target ran in a worker process: float32 MaxPool") for n in r.notes)
    assert r.accepted_known["tf-maxpool-float32-sigfpe"]["cases"] == 2  # the catalogue's two invalid windows
    from refconv.conformance import bounds
    from refconv.conformance.engine import Runner
    from refconv.conformance.targets import resolve

    # the catalogue's "window larger than the padded input", judged alone: the worker's SIGFPE is the case's crash
    runner = Runner(resolve("tensorflow"), "max_pool", "float32", bounds.profile("float32", "float32"), timeout=120)
    try:
        out = runner.evaluate(Case("max_pool", cin=2, spatial=(3,), kernel=(5,), padding=((0, 1),), expect_refusal=True))
    finally:
        runner.close()
    assert out.kind == "crash" and "killed by SIGFPE" in out.message, out.message


# ----------------------------------------------------------------------------- tinygrad


def test_tinygrad_every_function_is_exact_on_integers():
    pytest.importorskip("tinygrad")
    from refconv.conformance.adapters import tinygrad_adapter

    if tinygrad_adapter.device_ready():
        pytest.skip(f"tinygrad's CPU device does not open here: {tinygrad_adapter.device_ready()}")
    t = adapters.get("tinygrad")
    x, w, b = _ints((1, 4, 5, 4)), _ints((4, 2, 3, 2), 1), _ints((4,), 2)
    kw = dict(stride=(2, 1), padding=((1, 0), (0, 2)), dilation=(1, 2), groups=2)
    assert np.array_equal(t.function("conv")(x, w, b, **kw), oracle.conv(x, w, b, **kw))
    dy = _ints(oracle.conv(x, w, **kw).shape, 3)
    assert np.array_equal(t.function("conv_grad_input")(dy, w, x.shape, **kw), oracle.conv_grad_input(dy, w, x.shape, **kw))
    assert np.array_equal(t.function("conv_grad_weight")(x, dy, w.shape, **kw), oracle.conv_grad_weight(x, dy, w.shape, **kw))
    wt = _ints((4, 3, 2, 3), 4, np.float64)
    kt = dict(stride=(2, 1), padding=((1, 0), (0, 1)), output_padding=(1, 0), dilation=(1, 1), groups=1)
    got = t.function("conv_transpose")(x.astype(np.float64), wt, None, **kt)
    assert got.dtype == np.float64 and np.array_equal(got, oracle.conv_transpose(x.astype(np.float64), wt, **kt))
    kp = dict(stride=(2, 1), padding=((1, 0), (0, 1)), dilation=(1, 2), ceil_mode=True)
    assert np.array_equal(t.function("max_pool")(x, (2, 2), **kp), oracle.max_pool(x, (2, 2), **kp))


def test_tinygrad_without_a_compiler_is_a_usage_error_naming_clang(monkeypatch):
    pytest.importorskip("tinygrad")
    from refconv.conformance.adapters import tinygrad_adapter

    monkeypatch.setattr(tinygrad_adapter, "device_ready", lambda: "FileNotFoundError: 'clang'")
    with pytest.raises(TargetError, match="apt-get install clang"):
        tinygrad_adapter.make("tinygrad")


# ----------------------------------------------------------------------------- OpenVINO


def _ov(name="openvino.f32"):
    pytest.importorskip("openvino")
    return adapters.get(name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_openvino_every_op_is_exact_on_integers_at_f32(dtype):
    t = _ov()
    x, w, b = _ints((2, 4, 5, 4), 0, dtype), _ints((6, 2, 3, 2), 1, dtype), _ints((6,), 2, dtype)
    for kw in (dict(stride=(2, 1), padding=((1, 0), (0, 2)), dilation=(1, 2), groups=2),
               dict(stride=(1, 1), padding=((1, 1), (0, 1)), dilation=(1, 1), groups=1)):
        w_ = w if kw["groups"] == 2 else _ints((6, 4, 3, 2), 3, dtype)
        assert np.array_equal(t.function("conv")(x, w_, b, **kw), oracle.conv(x, w_, b, **kw))
    wt = _ints((4, 3, 3, 2), 4, dtype)
    for groups in (1, 2):
        kt = dict(stride=(2, 1), padding=((1, 0), (0, 1)), output_padding=(1, 0), dilation=(1, 1), groups=groups)
        w_ = wt if groups == 1 else _ints((4, 2, 3, 2), 5, dtype)
        assert np.array_equal(t.function("conv_transpose")(x, w_, None, **kt), oracle.conv_transpose(x, w_, **kt))
    kp = dict(stride=(2, 1), padding=((1, 0), (0, 1)), dilation=(1, 2), ceil_mode=True)
    assert np.array_equal(t.function("max_pool")(x, (2, 2), **kp), oracle.max_pool(x, (2, 2), **kp))
    y, i = t.function("max_pool_indices")(x, (2, 2), **kp)
    from refconv.conformance.ops import max_pool_indices

    wy, wi = max_pool_indices(x, (2, 2), **kp)
    assert np.array_equal(y, wy) and np.array_equal(i, wi)
    ka = dict(stride=(2, 2), padding=((1, 0), (0, 1)), ceil_mode=False, count_include_pad=False)
    # (divisors 1, 2 and 4: the means of integers are exact)
    assert np.array_equal(t.function("avg_pool")(x, (2, 2), **ka), oracle.avg_pool(x, (2, 2), **ka))


def test_openvino_names_the_inference_precision_it_ran_with():
    default = _ov("openvino").environment()[0]
    assert "INFERENCE_PRECISION_HINT=" in default and "(the device's default)" in default
    assert "INFERENCE_PRECISION_HINT=f32" in _ov("openvino.f32").environment()[0]


def test_a_declared_budget_is_what_a_whole_library_run_does_and_its_report_says(tmp_path, monkeypatch):
    import argparse
    import json

    from refconv.commands import check as cmd

    monkeypatch.setattr(cmd, "_declared", lambda target: {"catalogue_shapes": 2, "max_examples": 1, "why": "a cost"})
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    out = tmp_path / "r.json"
    assert cmd.run(p.parse_args(["refconv.oracle", "--op", "all", "--dims", "1", "--seed", "0", "--quiet",
                                 "--json", str(out)])) == 0
    reports = {r["op"]: r for r in json.loads(out.read_text())}
    conv = reports["conv"]
    assert conv["explored_cases"] == 1
    assert any(n.startswith("a declared budget (a cost): ") and n.endswith("--op conv --dims 1") for n in conv["notes"])
    assert cmd.run(p.parse_args(["refconv.oracle", "--op", "conv", "--dims", "1", "--max-examples", "0", "--seed", "0",
                                 "--quiet", "--json", str(out)])) == 0  # one op: the whole catalogue, no note
    one = json.loads(out.read_text())
    assert one["catalogue_cases"] > conv["catalogue_cases"] and not any("budget" in n for n in one["notes"])
