"""refconv check TARGET --network: every distinct layer of a real network at its real size."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from refconv import oracle
from refconv.cli import main
from refconv.conformance import network as nw
from refconv.conformance.cases import Case
from refconv.conformance.html_report import validate

BROKEN = '''
import numpy as np
from refconv import fast

def conv(x, w, b, *, stride, padding, dilation, groups):
    """Computes the last axis in tiles of 16 outputs and forgets a partial last tile."""
    y = fast.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    n = y.shape[-1]
    if n > 16 and n % 16:
        y[..., (n // 16) * 16:] = 0
    return y

def conv_border(x, w, b, *, stride, padding, dilation, groups):
    """Forgets the bias on the first output row."""
    y = fast.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if b is not None:
        y[..., 0, :] -= b.reshape((1, -1, 1))
    return y
'''

NET = '''
name = "small"
input = [3, 20, 21]

[[layers]]
type = "conv"
out_channels = 6
kernel_size = 3
padding = 1

[[layers]]
type = "relu"

[[layers]]
type = "conv"
out_channels = 6
kernel_size = 3
padding = 1

[[layers]]
type = "maxpool"
kernel_size = 2
ceil_mode = true
'''


def test_layer_configurations_once_each_in_the_networks_order():
    cases = nw.layer_cases("resnet50")
    assert len(cases) == 25  # 53 convolutions and 2 poolings, 25 of them distinct
    assert [c.op for c, _, _ in cases][:2] == ["conv", "max_pool"]
    assert cases[-1][0].op == "adaptive_avg_pool"
    assert sum(len(paths) for c, paths, _ in cases if c.op == "conv") == 53
    first = cases[0][0]
    assert (first.cin, first.cout, first.spatial, first.kernel, first.stride, first.padding) == (
        3, 64, (224, 224), (7, 7), (2, 2), ((3, 3), (3, 3)))
    # a distinct input shape is a distinct configuration
    small = nw.layer_cases("resnet50", (3, 64, 64), batch=2)
    assert small[0][0].spatial == (64, 64) and small[0][0].n == 2


@pytest.mark.parametrize("kw", [
    dict(spatial=(9, 8), kernel=(3, 2), stride=(2, 3), padding=((2, 0), (1, 3)), dilation=(2, 1), groups=1, bias=True),
    dict(spatial=(5, 7), kernel=(3, 3), stride=(1, 1), padding=((4, 4), (0, 1)), dilation=(1, 3), groups=2, bias=False),
    dict(spatial=(4, 4), kernel=(1, 1), stride=(3, 1), padding=((2, 3), (2, 2)), dilation=(1, 1), groups=1, bias=True),
])
def test_exact_at_is_the_oracle_at_every_position(kw):
    # small integers: the exact result, compared exactly; windows of padding only give the bias alone
    c = Case("conv", n=2, cin=4, cout=4, values="small", seed=3, **kw)
    a = {k: v.astype(np.float64) for k, v in c.arrays("float64").items()}
    full = oracle.conv(a["x"], a["w"], a.get("b"), stride=c.stride, padding=c.padding, dilation=c.dilation,
                       groups=c.groups)
    pts = [tuple(int(i) for i in p) for p in np.ndindex(*full.shape)]
    assert np.array_equal(nw.exact_at(c, a, pts), full.ravel())
    mags = oracle.conv(np.abs(a["x"]), np.abs(a["w"]), None if "b" not in a else np.abs(a["b"]), stride=c.stride,
                       padding=c.padding, dilation=c.dilation, groups=c.groups)
    assert np.array_equal(nw.exact_at(c, a, pts, magnitudes=True), mags.ravel())


def test_positions_cover_corners_borders_tile_remainders_and_random_interior():
    c = Case("conv", n=1, cin=3, cout=40, spatial=(37, 37), kernel=(3, 3), padding=((1, 1), (1, 1)))
    ps = dict(nw.positions(c, (1, 40, 37, 37), random=10, seed=1))
    spatial = {p[2:] for p in ps}
    for corner in ((0, 0), (0, 36), (36, 0), (36, 36)):
        assert corner in spatial
    # the last full and the first partial tile (of 8, 16 and 32: 31 | 32; of 2 and 4: 35 | 36) on each axis
    assert {31, 32, 35} <= {p[2] for p, k in ps.items() if k == "tile"}
    assert {31, 32, 35} <= {p[3] for p, k in ps.items() if k == "tile"}
    # corners in every sampled channel, the last channel and the channel tile remainder of 32 among them
    assert {0, 39, 31, 32} <= {p[1] for p, k in ps.items() if k == "corner"}
    randoms = [p for p, k in ps.items() if k == "random"]
    assert 0 < len(randoms) <= 10 and all(1 <= q <= 35 for p in randoms for q in p[2:])
    assert nw.positions(c, (1, 40, 37, 37), random=10, seed=1) == nw.positions(c, (1, 40, 37, 37), random=10, seed=1)


def test_resnet50_against_torch_every_layer_judged(capsys, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "r50.json"
    code = main(["check", "torch", "--network", "resnet50", "--input", "3x32x32", "--random-positions", "2",
                 "--quiet", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert text.startswith("PASS  torch  network resnet50 input 3x32x32") and "25 distinct layer configurations" in text
    doc = json.loads(out.read_text())
    assert validate(doc) == []
    assert doc["verdict"] == "PASS" and len(doc["layers"]) == 25
    for layer in doc["layers"]:
        assert layer["verdict"] == "PASS" and layer["exact_positions"] > 0
        if layer["op"] == "conv":
            assert layer["exact_scope"] == "sampled positions" and layer["bound_elements"] == np.prod(layer["output_shape"])
        else:
            assert layer["exact_scope"] == "every element" and layer["exact_positions"] == np.prod(layer["output_shape"])
        assert 0 <= layer["worst_ratio"] <= 1


def test_vgg16_against_torch(capsys):
    pytest.importorskip("torch")
    code = main(["check", "torch", "--network", "vgg16", "--input", "3x32x32", "--random-positions", "0", "--quiet"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "PASS  torch  network vgg16" in text and "features.0" in text and "max_pool" in text


def test_a_tile_remainder_bug_fails_at_its_layer_with_a_reproduction(tmp_path, capsys):
    impl = tmp_path / "impl.py"
    impl.write_text(BROKEN)
    net = tmp_path / "small.toml"
    net.write_text(NET.replace("input = [3, 20, 21]", "input = [3, 20, 37]"))
    code = main(["check", f"{impl}:conv", "--network", str(net), "--random-positions", "4", "--quiet"])
    text = capsys.readouterr().out
    assert code == 1, text
    r = nw.check_network(f"{impl}:conv", str(net), random=4)
    assert r.verdict == "FAIL" and [layer.verdict for layer in r.layers] == ["FAIL", "FAIL"]
    assert r.not_selected == ["3 (max_pool)"]  # a conv function: the pooling layer is listed, not judged
    bad = r.layers[0]
    assert bad.failed_classes.get("tile") and not bad.failed_classes.get("random")
    assert bad.bound_violations > 0 and bad.worst["error"] > bad.worst["bound"]
    assert any("tile" in d for d in bad.diagnosis)
    # the reproduction runs on its own and shows the error at the worst element
    import os

    import refconv

    root = os.path.dirname(os.path.dirname(os.path.abspath(refconv.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    run = subprocess.run([sys.executable, "-c", bad.repro], capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert float(run.stdout.split("error")[-1]) == pytest.approx(bad.worst["error"], rel=1e-12)


def test_a_border_bug_is_found_exactly_and_diagnosed_as_border():
    impl_src = BROKEN
    ns: dict = {}
    exec(compile(impl_src, "impl", "exec"), ns)
    r = nw.check_network(ns["conv_border"], nw.load_network("lenet5"), random=2, ops=["conv"])
    assert r.verdict == "FAIL"
    c1 = r.layers[0]
    assert c1.exact_violations > 0 and set(c1.failed_classes) <= {"corner", "border"}
    assert any("padding / border" in d for d in c1.diagnosis)


def test_a_layer_refconv_cannot_judge_is_an_error_never_a_pass(monkeypatch):
    def broken_exact_at(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(nw, "exact_at", broken_exact_at)
    r = nw.check_network("refconv.fast", "lenet5", random=0)
    assert r.verdict == "ERROR"
    assert {layer.verdict for layer in r.layers if layer.op == "conv"} == {"ERROR"}
    assert all(layer.verdict == "PASS" for layer in r.layers if layer.op != "conv")
    assert "boom" in r.layers[0].traceback


def test_a_layer_the_target_does_not_support_is_inconclusive():
    from refconv.conformance.targets import resolve

    def conv(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    conv.refconv_capabilities = {"bias": False}
    assert resolve(conv).capabilities("conv", 2, "float32").bias is False
    r = nw.check_network(conv, "lenet5", random=0)
    assert r.verdict == "INCONCLUSIVE"
    assert all(layer.verdict == "SKIPPED" and "unsupported" in layer.message for layer in r.layers)


@pytest.mark.parametrize("argv, needle", [
    (["--input", "3x32x32"], "apply with --network only"),
    (["--network", "resnet5"], "network='resnet5'"),
    (["--network", "lenet5", "--max-examples", "3"], "--max-examples=3"),
    (["--network", "lenet5", "--random-positions", "-1"], "--random-positions=-1"),
    (["--network", "lenet5", "--input", "1xHxW"], "--input='1xHxW'"),
    (["--network", "lenet5", "--batch", "0"], "--batch=0"),
])
def test_usage_errors_name_the_argument(argv, needle, capsys):
    code = main(["check", "refconv.fast", *argv])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_the_report_states_what_was_judged_exactly_and_by_bound():
    r = nw.check_network("refconv.fast", "lenet5", random=3, seed=5)
    text = str(r)
    assert "judged exactly" in text and "Judged by bound" in text and "seed 5" in text
    assert r.to_dict()["schema_version"] == 1 and validate(json.loads(r.to_json())) == []
    again = nw.check_network("refconv.fast", "lenet5", random=3, seed=5)
    assert [replace(layer.case) for layer in again.layers] == [layer.case for layer in r.layers]
    assert [layer.exact_positions for layer in again.layers] == [layer.exact_positions for layer in r.layers]


EVERY = """
name = "every"
input = [4, 23, 19]

[[layers]]
type = "conv"
out_channels = 8
kernel_size = [3, 2]
stride = [2, 1]
padding = "same"
dilation = [1, 2]
groups = 2

[[layers]]
type = "maxpool"
kernel_size = 3
stride = 2
padding = 1
ceil_mode = true

[[layers]]
type = "avgpool"
kernel_size = 3
stride = 2
padding = 1
ceil_mode = true
count_include_pad = false

[[layers]]
type = "conv"
out_channels = 8
kernel_size = 1
bias = false

[[layers]]
type = "adaptiveavgpool"
output_size = [2, 3]
"""


def test_every_layer_parameter_reaches_the_target_as_the_network_means_it(tmp_path):
    pytest.importorskip("torch")
    net = tmp_path / "every.toml"
    net.write_text(EVERY)
    r = nw.check_network("torch", str(net), random=2)
    assert r.verdict == "PASS", str(r)
    conv, mp, ap, _, ad = (layer.case for layer in r.layers)
    assert (conv.stride, conv.padding, conv.dilation, conv.groups, conv.bias) == (
        (2, 1), ((1, 1), (1, 1)), (1, 2), 2, True)
    assert mp.ceil_mode and ap.ceil_mode and not ap.count_include_pad and ad.output_size == (2, 3)
    assert [layer.params_text() for layer in r.layers][:3] == [
        "k3x2 s2x1 p1 d1x2 g2 bias", "k3x3 s2 p1 ceil", "k3x3 s2 p1 ceil exclude-pad"]


def test_three_dimensional_layers_keep_their_sample_bounded():
    c = Case("conv", n=1, cin=2, cout=4, spatial=(40, 40, 40), kernel=(3, 3, 3), padding=((1, 1),) * 3)
    ps = nw.positions(c, (1, 4, 40, 40, 40), random=5, seed=0)
    assert len(ps) <= nw.MAX_STRUCTURED * 2 + 5
    assert {(0, 0, 0), (39, 39, 39), (0, 39, 0)} <= {p[2:] for p, _ in ps}
