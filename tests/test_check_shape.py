"""check-shape: exhaustive shape checks proved for every size; built-in shape adapters; divergences pinned."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from refconv.conformance import shape_adapters
from refconv.conformance.shapecheck import MODES, Box, check_shape
from refconv.conformance.shapecheck.box import OPS, cases, order_key
from refconv.conformance.shapecheck.definition import call_arguments, definition_message, expected
from refconv.params import ConvParamError

from broken import shapes as broken

HERE = os.path.dirname(os.path.abspath(__file__))
#: a small box that still covers every configuration in it (needed_size 5)
TINY = Box(max_size=5, max_kernel=2, max_stride=2, max_dilation=2, max_padding=1)
#: the box of the self-test: strides and kernels up to 3
SMALL = Box(max_size=11, max_kernel=3, max_stride=3, max_dilation=2, max_padding=1)


def brief(c):
    """A counterexample as plain data: what it is and where."""
    return (c.kind, c.op, c.mode, c.input_shape, c.weight_shape, c.params, c.expected, c.got)


def proved_everywhere(report):
    """Every configuration run that the definition accepts somewhere is proved for every size."""
    return all(g.proved == g.configs - g.not_run - g.refused_everywhere for g in report.groups)


# ---- the definition, vectorized ---------------------------------------------------------------------


def test_vectorized_definition_is_the_scalar_definition():
    box = Box(max_size=7, max_kernel=3, max_stride=3, max_dilation=2, max_padding=2)
    checked = 0
    for op in OPS:
        for mode in MODES:
            for dims in (1, 2):
                t = cases(box, op, dims, mode)
                shapes, ok = expected(t)
                for i in range(len(t)):
                    shape, why = definition_message(op, *call_arguments(t, i))
                    assert (shape is not None) == bool(ok[i]), (op, mode, call_arguments(t, i), why)
                    if shape is not None:
                        assert tuple(shape) == tuple(shapes[i])
                    checked += 1
    assert checked == 40320  # every case of the box, refused ones included


def test_box_covers_what_the_proof_needs():
    assert Box().max_size >= Box().needed_size()
    assert TINY.max_size >= TINY.needed_size()
    with pytest.raises(ConvParamError, match="max_stride=0"):
        Box(max_stride=0)


def test_order_is_total_size_then_lexicographic():
    t = cases(TINY, "conv", 1, "explicit")
    order = order_key(t)
    total = (t.n + t.k + t.s - 1 + t.d - 1 + t.lo + t.hi).sum(axis=1)
    assert np.all(np.diff(total[order]) >= 0)
    first = order[0]
    assert (t.n[first, 0], t.k[first, 0], t.s[first, 0], t.d[first, 0], t.lo[first, 0], t.hi[first, 0]) == (1, 1, 1, 1, 0, 0)


# ---- the self-test: classic mistakes caught at their smallest case, correct forms proved -------------


@pytest.mark.parametrize("name", broken.CORRECT)
def test_correct_forms_are_proved_for_every_size(name):
    report = check_shape(getattr(broken, name), dims=(1, 2), padding=MODES, box=SMALL)
    assert report.ok, str(report)
    assert proved_everywhere(report)
    assert "for all n >= 1 in every configuration run" in report.claim()


EXPECTED = {
    # a window of 1 at stride 1 over 1 sample, right padding 1: L = 1, the ceiling gives 1 + 1 = 2 windows, the
    # second starting at 1 = n + lo, in the right padding, which the rule drops (total size 4; the one case of
    # size 3 with ceil_mode, n = K = s = 1 unpadded, has a single window)
    "ceil_no_last_window": ("wrong shape", "max_pool", "explicit", (2, 3, 1), (1,),
                            {"stride": (1,), "padding": ((0, 1),), "dilation": (1,), "ceil_mode": True},
                            (2, 3, 1), (2, 3, 2)),
    # n = 2, s = 2, k = 1: the unclamped total is (1 - 1)*2 + 1 - 2 = -1
    "same_not_clamped": ("refuses a valid configuration", "conv", "same", (2, 3, 2), (4, 3, 1),
                         {"stride": (2,), "padding": "same", "dilation": (1,), "groups": 1}, (2, 4, 1), None),
    # dilation 1 read as one hole: a 2-tap kernel spans 3, so one input scatters to 3 outputs, not 2
    "dilation_from_zero": ("wrong shape", "conv_transpose", "explicit", (2, 3, 1), (3, 2, 2),
                           {"stride": (1,), "padding": ((0, 0),), "output_padding": (0,), "dilation": (1,),
                            "groups": 1}, (2, 2, 2), (2, 2, 3)),
    # output_padding 1 is legal below the dilation 2 (stride 1): ties with stride 2, dilation 1, and wins on s
    "output_padding_twice": ("wrong shape", "conv_transpose", "explicit", (2, 3, 1), (3, 2, 1),
                             {"stride": (1,), "padding": ((0, 0),), "output_padding": (1,), "dilation": (2,),
                              "groups": 1}, (2, 2, 2), (2, 2, 3)),
    # groups > 1 only in the all-axes cases
    "transposed_channels_per_group": ("wrong shape", "conv_transpose", "explicit", (2, 3, 2, 2), (3, 2, 1, 2),
                                      {"stride": (1, 1), "padding": ((0, 0), (0, 0)), "output_padding": (0, 0),
                                       "dilation": (1, 1), "groups": 3}, (2, 6, 2, 3), (2, 2, 2, 3)),
    "spatial_axes_swapped": ("wrong shape", "conv_transpose", "explicit", (2, 3, 1, 1), (3, 2, 1, 2),
                             {"stride": (1, 1), "padding": ((0, 0), (0, 0)), "output_padding": (0, 0),
                              "dilation": (1, 1), "groups": 1}, (2, 2, 1, 2), (2, 2, 2, 1)),
}


@pytest.mark.parametrize("name", broken.BROKEN)
def test_classic_mistakes_caught_at_the_smallest_case(name):
    modes = ("explicit",) if name != "same_not_clamped" else MODES
    report = check_shape(getattr(broken, name), dims=(1, 2), padding=modes, box=SMALL)
    assert not report.ok
    assert brief(report.counterexample) == EXPECTED[name]


def test_the_reported_counterexample_is_the_smallest_failing_case():
    # independently of order_key: every case of the box through the scalar definition, sorted by the stated order
    fn = broken.ceil_no_last_window
    failing = []
    for dims in (1, 2):
        t = cases(TINY, "max_pool", dims, "explicit")
        for i in range(len(t)):
            x, w, p = call_arguments(t, i)
            want, _ = definition_message("max_pool", x, w, p)
            try:
                got = fn("max_pool", x, w, **p)
            except ValueError:
                got = None
            if want != got:
                fields = [(int(t.n[i, a]), int(t.k[i, a]), int(t.s[i, a]), int(t.d[i, a]), int(t.lo[i, a]),
                           int(t.hi[i, a])) for a in range(dims)]
                total = sum(n + k + (s - 1) + (d - 1) + lo + hi for n, k, s, d, lo, hi in fields) + int(t.ceil[i])
                lex = tuple(v for f in fields for v in f) + (int(t.ceil[i]),)
                failing.append(((total, dims, lex), x, w, p))
    assert len(failing) > 10
    smallest = min(failing, key=lambda f: f[0])
    c = check_shape(fn, op="max_pool", dims=(1, 2), box=TINY).counterexample
    assert (c.input_shape, c.weight_shape, c.params) == smallest[1:]


def test_a_box_too_small_for_the_period_is_not_claimed_for_every_size():
    report = check_shape(broken.plain, op="conv", dims=1, box=Box(max_size=3, max_kernel=2, max_stride=3,
                                                                      max_dilation=1, max_padding=0))
    assert report.ok
    g = report.groups[0]
    assert 0 < g.proved < g.configs
    assert "the box too small" in report.claim()


def test_declared_limits_are_not_run_and_not_passed():
    report = check_shape("torch", op="max_pool", dims=1, box=TINY)
    g = report.groups[0]
    assert g.run + sum(g.excluded.values()) == g.cases
    assert "one padding per axis (both sides)" in g.excluded
    assert str(g.excluded["one padding per axis (both sides)"]) + " not run" in str(report)


def test_refusals_must_match_both_ways():
    def accepts_everything(op, x, w, **p):
        return broken.plain(op, x, w, **p) if _accepted(op, x, w, p) else (x[0], 1, *([1] * (len(x) - 2)))

    def refuses_everything(op, x, w, **p):
        raise ValueError("no")

    c = check_shape(accepts_everything, op="conv", dims=1, box=TINY).counterexample
    assert c.kind == "accepts a configuration the definition refuses" and c.expected is None
    assert "larger than the padded input" in c.refusal
    c = check_shape(refuses_everything, op="conv", dims=1, box=TINY).counterexample
    assert c.kind == "refuses a valid configuration" and c.error == "ValueError: no"


def _accepted(op, x, w, p):
    return definition_message(op, x, w, p)[0] is not None


def test_a_non_shape_answer_is_a_counterexample():
    c = check_shape(lambda op, x, w, **p: "oops", op="avg_pool", dims=1, box=TINY).counterexample
    assert c.kind == "not a shape" and c.got == "oops"


def test_usage_errors_name_the_argument():
    with pytest.raises(ConvParamError, match="dims=4"):
        check_shape(broken.plain, dims=4)
    with pytest.raises(ConvParamError, match="op='conv_transpose'"):
        check_shape("refconv.summary", op="conv_transpose")
    with pytest.raises(ConvParamError, match="padding='same_upper'"):
        check_shape(broken.plain, padding="same_upper")
    with pytest.raises(ConvParamError, match="padding='explicit'"):
        check_shape("keras", op="conv", padding="explicit")
    from refconv.conformance.shapecheck import Limit, ShapeTarget

    nothing = ShapeTarget("nothing", broken.plain, limits=[Limit("never", lambda t: np.ones(len(t), bool))])
    with pytest.raises(ConvParamError, match="nothing to check"):
        check_shape(nothing, dims=1, box=TINY)
    from refconv.conformance.targets import TargetError

    with pytest.raises(TargetError, match="not a built-in shape adapter"):
        check_shape("onnx.opset2")


# ---- the built-in adapters --------------------------------------------------------------------------


def test_summary_agrees_everywhere():
    report = check_shape("refconv.summary", box=TINY)
    assert report.ok and proved_everywhere(report)
    assert {g.op for g in report.groups} == {"conv", "max_pool", "avg_pool"}
    assert {g.mode for g in report.groups} == set(MODES)
    assert report.not_offered == ["conv_transpose"]


def test_torch_meta_agrees_within_its_declared_limits():
    report = check_shape("torch", op=["conv", "max_pool", "avg_pool"], box=TINY)
    assert report.ok, str(report)
    assert {(g.op, g.mode) for g in report.groups} >= {("conv", "same"), ("conv", "valid"), ("avg_pool", "explicit")}
    assert "avg_pool3d: no input smaller than the kernel, even padded" in report.groups[-1].excluded
    shapes_only = check_shape("torch", op="conv_transpose", box=TINY, refusals=False)
    assert shapes_only.ok, str(shapes_only)


def test_torch_meta_accepts_output_padding_its_kernel_refuses():
    torch = pytest.importorskip("torch")
    c = check_shape("torch", op="conv_transpose", dims=1, box=TINY).counterexample
    assert brief(c) == ("accepts a configuration the definition refuses", "conv_transpose", "explicit", (2, 3, 1),
                        (3, 2, 1), {"stride": (1,), "padding": ((0, 0),), "output_padding": (1,), "dilation": (1,),
                                    "groups": 1}, None, (2, 2, 2))
    meta = torch.nn.functional.conv_transpose1d(torch.empty(2, 3, 1, device="meta"), torch.empty(3, 2, 1, device="meta"),
                                                stride=1, output_padding=1)
    assert tuple(meta.shape) == (2, 2, 2)
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        torch.nn.functional.conv_transpose1d(torch.zeros(2, 3, 1), torch.zeros(3, 2, 1), stride=1, output_padding=1)


@pytest.mark.parametrize("opset", shape_adapters.ONNX_OPSETS)
def test_onnx_shape_inference_every_opset(opset):
    pytest.importorskip("onnx")
    name, dims = f"onnx.opset{opset}", ((1, 2, 3) if opset == shape_adapters.DEFAULT_OPSET else (1, 2))
    conv = check_shape(name, op=["conv", "conv_transpose"], dims=dims, padding=("explicit", "valid"), box=TINY,
                       refusals=False)
    assert conv.ok, str(conv)
    same = check_shape(name, op="conv", dims=dims, padding=("same", "same_lower"), box=TINY)
    assert same.ok, str(same)
    pools = check_shape(name, op=["max_pool", "avg_pool"], dims=dims, box=TINY, refusals=False)
    if opset < 10:  # no ceil_mode yet: the floor rule agrees
        assert pools.ok, str(pools)
        assert "no ceil_mode" in pools.groups[0].excluded
    elif opset < 22:  # ceil_mode without the last-window rule: a second window entirely in the right padding
        assert brief(pools.counterexample) == ("wrong shape", "max_pool", "explicit", (2, 3, 1), (1,),
                                               {"stride": (1,), "padding": ((0, 1),), "dilation": (1,),
                                                "ceil_mode": True}, (2, 3, 1), (2, 3, 2))
    else:  # MaxPool-22 and AveragePool-22 infer the last-window rule
        assert pools.ok, str(pools)


def test_onnx_shape_inference_drops_no_ceil_window_but_its_runtime_does():
    pytest.importorskip("onnxruntime")
    call = ("max_pool", (2, 3, 2), (1,))
    params = {"stride": (2,), "padding": ((0, 0),), "dilation": (1,), "ceil_mode": True}
    assert definition_message(*call, params)[0] == (2, 3, 1)
    assert shape_adapters.get("onnx").fn(*call, **params) == (2, 3, 2)
    assert shape_adapters.get("onnxruntime").fn(*call, **params) == (2, 3, 1)
    c = check_shape("onnx", op="avg_pool", padding="same", dims=1, box=TINY).counterexample
    assert (c.input_shape, c.weight_shape, c.params["stride"], c.params["ceil_mode"], c.expected, c.got) == \
        ((2, 3, 2), (1,), (2,), True, (2, 3, 1), (2, 3, 2))


def test_onnx_conv_transpose_same_is_not_n_times_stride_below_the_stride():
    pytest.importorskip("onnxruntime")
    for name in ("onnx", "onnxruntime"):
        c = check_shape(name, op="conv_transpose", padding=("same", "same_lower"), dims=1, box=TINY).counterexample
        assert brief(c) == ("wrong shape", "conv_transpose", "same", (2, 3, 1), (3, 2, 1),
                            {"stride": (2,), "padding": "same", "output_padding": (0,), "dilation": (1,), "groups": 1},
                            (2, 2, 2), (2, 2, 1))


def test_onnx_shape_inference_refuses_nothing():
    pytest.importorskip("onnx")
    f = shape_adapters.get("onnx").fn
    # a kernel longer than the input: an empty or a negative dimension instead of an error
    assert f("conv", (2, 3, 1), (4, 3, 2), stride=(1,), padding="valid", dilation=(1,), groups=1) == (2, 4, 0)
    assert f("conv", (2, 3, 1), (4, 3, 3), stride=(1,), padding="valid", dilation=(1,), groups=1) == (2, 4, -1)
    # C++ division truncates toward zero: floor(-1/2) + 1 = 0 outputs read as 1
    assert f("conv", (2, 3, 1), (4, 3, 3), stride=(2,), padding=((1, 0),), dilation=(1,), groups=1) == (2, 4, 1)
    kinds = {g.counterexample.kind for g in check_shape("onnx", dims=1, padding=("explicit", "valid"),
                                                          box=TINY).groups}
    assert kinds == {"accepts a configuration the definition refuses"}
    # where its runtime refuses (a single call raises: the shape function's contract)
    pytest.importorskip("onnxruntime")
    with pytest.raises(Exception, match="Invalid input shape"):
        shape_adapters.get("onnxruntime").fn("conv", (2, 3, 1), (4, 3, 3), stride=(2,), padding=((1, 0),),
                                             dilation=(1,), groups=1)


def test_onnxruntime_reproductions_at_the_runtime_level():
    pytest.importorskip("onnxruntime")
    from refconv.conformance.adapters.onnx_adapter import run_node

    one = np.ones((1, 1, 1), np.float32)
    # ConvTranspose SAME_UPPER at stride 2 with a 1-tap kernel: 5 samples, not 3 * 2
    assert run_node("ConvTranspose", [np.ones((1, 1, 3), np.float32), one], kernel_shape=[1], strides=[2],
                    auto_pad="SAME_UPPER").shape == (1, 1, 5)
    # a window longer than the input: an empty axis
    assert run_node("MaxPool", [np.ones((2, 3, 1), np.float32)], kernel_shape=[2], strides=[1]).shape == (2, 3, 0)
    assert run_node("AveragePool", [np.ones((2, 3, 1), np.float32)], kernel_shape=[2], strides=[1]).shape == (2, 3, 0)


def test_onnxruntime_agrees_on_conv_in_every_mode_and_dimension():
    pytest.importorskip("onnxruntime")
    report = check_shape("onnxruntime", op="conv", box=TINY)
    assert report.ok, str(report)
    assert {(g.dims, g.mode) for g in report.groups} == {(d, m) for d in (1, 2, 3) for m in MODES}
    transposed = check_shape("onnxruntime", op="conv_transpose", padding=("explicit", "valid"), box=TINY)
    assert transposed.ok, str(transposed)


@pytest.mark.parametrize("opset", shape_adapters.ORT_OPSETS)
def test_onnxruntime_every_opset(opset):
    pytest.importorskip("onnxruntime")
    box = Box(max_size=4, max_kernel=2, max_stride=2, max_dilation=2, max_padding=1)
    report = check_shape(f"onnxruntime.opset{opset}", dims=1, padding=("explicit", "valid"), box=box, refusals=False)
    assert report.ok, str(report)
    pools = [g for g in report.groups if g.op in ("max_pool", "avg_pool") and g.mode == "explicit"]
    assert len(pools) == 2 and all(g.excluded[shape_adapters.ORT_POOL_PADDING.reason] > 0 for g in pools)


def test_onnxruntime_pooling_padding_below_the_kernel_is_a_declared_limit():
    pytest.importorskip("onnxruntime")
    # a right padding of 1 for a window of 1: the second window lies entirely in the padding (-inf for max)
    call = ("max_pool", (2, 3, 1), (1,))
    params = {"stride": (1,), "padding": ((0, 1),), "dilation": (1,), "ceil_mode": False}
    assert definition_message(*call, params)[0] == (2, 3, 2)
    assert shape_adapters.get("onnx").fn(*call, **params) == (2, 3, 2)  # shape inference agrees
    limit = shape_adapters.ORT_POOL_PADDING.applies
    for opset in shape_adapters.ORT_OPSETS:  # every opset's kernels: each side below kernel_shape
        with pytest.raises(Exception, match="Pad should be smaller than kernel"):
            shape_adapters.get(f"onnxruntime.opset{opset}").fn(*call, **params)
    # the kernel size, not the dilated window: side 1 < K = 2 runs although the window (d = 2) spans 3
    wide = {"stride": (1,), "padding": ((1, 1),), "dilation": (2,), "ceil_mode": False}
    assert shape_adapters.get("onnxruntime").fn("max_pool", (2, 3, 1), (2,), **wide) == (2, 3, 1)
    t = cases(TINY, "avg_pool", 1, "explicit")
    assert np.array_equal(limit(t), (np.maximum(t.lo, t.hi) >= t.k)[:, 0])
    assert not limit(cases(TINY, "avg_pool", 1, "valid")).any()


def test_onnxruntime_pooling_gives_empty_outputs_and_ignores_dilation_under_same():
    pytest.importorskip("onnxruntime")
    c = check_shape("onnxruntime", op="max_pool", padding="valid", dims=1, box=TINY).counterexample
    assert brief(c) == ("accepts a configuration the definition refuses", "max_pool", "valid", (2, 3, 1), (2,),
                        {"stride": (1,), "padding": "valid", "dilation": (1,), "ceil_mode": False}, None, (2, 3, 0))
    shapes_only = check_shape("onnxruntime", op=["max_pool", "avg_pool"], padding=("explicit", "valid"), box=TINY,
                              refusals=False)
    assert shapes_only.ok, str(shapes_only)
    # ort-maxpool-same-dilation (specs/conventions.md), seen in the shape
    c = check_shape("onnxruntime", op="max_pool", padding="same", dims=1, box=TINY).counterexample
    assert brief(c) == ("wrong shape", "max_pool", "same", (2, 3, 1), (2,),
                        {"stride": (1,), "padding": "same", "dilation": (2,), "ceil_mode": False}, (2, 3, 1), (2, 3, 0))
    assert check_shape("onnxruntime", op="avg_pool", padding=("same", "same_lower"), box=TINY).ok


def test_keras_agrees_within_its_declared_limits():
    pytest.importorskip("keras")
    report = check_shape("keras", box=Box(max_size=4, max_kernel=2, max_stride=2, max_dilation=2, max_padding=0))
    assert report.ok, str(report)
    assert {g.op for g in report.groups} == set(OPS)
    assert {g.mode for g in report.groups} == {"valid", "same"}


def test_tensorflow_traced_shapes():
    pytest.importorskip("tensorflow")
    box = Box(max_size=4, max_kernel=2, max_stride=2, max_dilation=2, max_padding=1)
    report = check_shape("tensorflow", box=box, refusals=False)
    assert report.ok, str(report)
    assert report.not_offered == ["conv_transpose"]
    # explicit max_pool padding, refusals checked too: a side over half the window agrees with the definition
    pools = check_shape("tensorflow", op="max_pool", padding="explicit", dims=1, box=box)
    assert pools.ok and proved_everywhere(pools), str(pools)
    params = {"stride": (1,), "padding": ((0, 1),), "dilation": (1,), "ceil_mode": False}
    assert shape_adapters.get("tensorflow").fn("max_pool", (2, 3, 1), (1,), **params) == (2, 3, 2)
    assert definition_message("max_pool", (2, 3, 1), (1,), params)[0] == (2, 3, 2)


def test_a_missing_library_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "keras" else real(name, *a))
    monkeypatch.setattr(shape_adapters, "_cache", {})
    from refconv.conformance.targets import TargetError

    with pytest.raises(TargetError, match=r"needs keras: pip install 'refconv\[keras\]'"):
        shape_adapters.get("keras")


# ---- the command ----------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, capsys):
    """``refconv check-shape ...`` through cli.main; returns (status, stdout, stderr)."""
    from refconv import cli as cli_module
    from refconv.commands import check_shape as command

    monkeypatch.setitem(cli_module.COMMANDS, "check-shape", "verify a shape function for every size")
    monkeypatch.setitem(sys.modules, "refconv.commands.check-shape", command)

    def run(*argv):
        code = cli_module.main(["check-shape", *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_agrees(cli, tmp_path):
    report = tmp_path / "r.json"
    code, out, err = cli("refconv.summary", "--op", "max_pool", "--dims", "1,2", "--max-size", "5",
                         "--max-kernel", "2", "--max-stride", "2", "--max-dilation", "2", "--max-padding-side", "1",
                         "--json", str(report))
    assert code == 0, err
    assert out.startswith("check-shape refconv.summary: AGREES")
    assert "for rules of that form, for all n >= 1" in out
    data = json.loads(report.read_text())
    assert data["ok"] is True and data["counterexample"] is None
    assert sorted(os.listdir(tmp_path)) == ["r.json"]  # no temporary file left


def test_cli_counterexample(cli):
    target = os.path.join(HERE, "broken", "shapes.py") + ":output_padding_twice"
    code, out, _ = cli(target, "--op", "conv_transpose", "--dims", "1", "--padding", "explicit")
    assert code == 1
    assert "COUNTEREXAMPLE" in out and "wrong shape" in out
    assert ("shape_fn('conv_transpose', (2, 3, 1), (3, 2, 1), stride=(1,), padding=((0, 0),), output_padding=(1,), "
            "dilation=(2,), groups=1)") in out
    assert "reproduce:" in out and "spec_from_file_location" in out


@pytest.mark.parametrize("argv, message", [
    (("refconv.summary", "--dims", "4"), "--dims='4': each must be 1, 2 or 3"),
    (("refconv.summary", "--max-size", "0"), "--max-size=0: must be an integer from 1 to 64"),
    (("nonexistent",), "target='nonexistent': not a built-in shape adapter"),
    (("refconv.summary", "--op", "conv_transpose"), "op='conv_transpose': refconv.summary does not offer it"),
    (("refconv.summary", "--padding", "bogus"), "--padding='bogus': modes are explicit, valid, same, same_lower"),
])
def test_cli_usage_errors(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_refconv_failure_is_exit_3(cli, monkeypatch):
    from refconv.conformance import shapecheck

    def fail(*a, **k):
        raise RuntimeError("internal")

    monkeypatch.setattr(shapecheck, "check_shape", fail)
    code, _, err = cli("refconv.summary")
    assert code == 3
    assert "internal error: RuntimeError: internal (a bug in refconv, not in the target; please report it" in err
    assert "Traceback" in err


def test_a_shape_function_that_exits_or_hangs_is_a_counterexample_not_a_pass():
    import sys
    import time

    def exits(op, input_shape, weight_shape, **params):
        sys.exit(0)

    def hangs(op, input_shape, weight_shape, **params):
        while True:
            time.sleep(0.01)

    r = check_shape(exits, op="conv", dims=1)
    assert not r.ok and "raised SystemExit" in str(r)
    r = check_shape(hangs, op="all", dims=(1, 2), timeout=0.2)
    assert not r.ok and "hung: no result after 0.2 s" in str(r)
    with pytest.raises(ConvParamError, match="timeout=nan"):
        check_shape(exits, op="conv", dims=1, timeout=float("nan"))
