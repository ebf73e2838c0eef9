"""The golden vectors: up to date, valid against their schema, and confirmed by independent witnesses."""

import json
from fractions import Fraction
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from test_oracle import literal_conv, literal_pool

from refconv import golden
from refconv.cli import main
from refconv.params import conv_params, pool_params

CASES = Path(__file__).resolve().parent.parent / "specs" / "cases"


def load(name):
    return json.loads((CASES / name).read_text())


def arr(v):
    return np.array(v, dtype=object) if v is not None else None


def test_committed_files_are_what_the_generator_writes():
    assert golden.check_cases(CASES) == []
    assert json.loads((CASES / "schema.json").read_text()) == golden.SCHEMA


@pytest.mark.parametrize("name", ["conv.json", "conv_transpose.json", "pool.json", "signal.json", "ops.json"])
def test_files_match_schema(name):
    jsonschema.validate(load(name), golden.SCHEMA)


def test_conv_cases_match_literal_definition_and_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    for case in load("conv.json")["cases"]:
        pr = case["params"]
        x = np.array(case["inputs"]["x"], dtype=np.int64)
        w = np.array(case["inputs"]["w"], dtype=np.int64)
        b = None if case["inputs"]["b"] is None else np.array(case["inputs"]["b"], dtype=np.int64)
        if x.size == 0:
            x = x.reshape(0, w.shape[1] * pr["groups"], *([4] * (w.ndim - 2)))
        p = conv_params(x.shape, w.shape, None if b is None else b.shape, stride=pr["stride"], padding=pr["padding"],
                        dilation=pr["dilation"], groups=pr["groups"], flip=pr["flip"])
        expected = np.array(case["expected"]["y"], dtype=object).reshape(p.output_shape)
        assert np.array_equal(literal_conv(x, w, b, p), expected), case["name"]
        # torch: the kernel flipped by hand when flip, asymmetric padding applied beforehand
        wt = w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)] if pr["flip"] else w
        xt = torch.tensor(x, dtype=torch.float64)
        xt = F.pad(xt, [v for lo_hi in reversed(pr["padding"]) for v in lo_hi])
        f = [F.conv1d, F.conv2d, F.conv3d][w.ndim - 3]
        y = f(xt, torch.tensor(wt.copy(), dtype=torch.float64), None if b is None else torch.tensor(b, dtype=torch.float64),
              stride=pr["stride"], dilation=pr["dilation"], groups=pr["groups"])
        assert np.array_equal(y.numpy(), expected.astype(np.float64)), case["name"]


def test_pool_cases_match_literal_definition():
    for case in load("pool.json")["cases"]:
        pr = case["params"]
        x = np.array(case["inputs"]["x"], dtype=np.int64)
        p = pool_params(x.shape, pr["kernel_size"], stride=pr["stride"], padding=pr["padding"], dilation=pr["dilation"], ceil_mode=pr["ceil_mode"])
        assert np.array_equal(literal_pool(x, p, "max"), np.array(case["expected"]["max"], dtype=object)), case["name"]
        for tag, cip in (("avg_include_pad", True), ("avg_exclude_pad", False)):
            if tag in case["expected"]:
                pa = pool_params(x.shape, pr["kernel_size"], stride=pr["stride"], padding=pr["padding"], ceil_mode=pr["ceil_mode"], count_include_pad=cip)
                got = np.vectorize(lambda v: Fraction(v), otypes=[object])(np.array(case["expected"][tag], dtype=object))
                assert np.array_equal(literal_pool(x, pa, "avg"), got), (case["name"], tag)


def test_seed_case_is_the_seed_answer():
    seed = load("conv.json")["cases"][0]
    assert seed["expected"]["y"] == [[[5, 16, 34, 52, 45, 28]]]


def test_command_writes_and_checks(tmp_path, capsys):
    assert main(["golden", "--out", str(tmp_path)]) == 0
    assert main(["golden", "--check", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "conv.json").read_text())
    doc["cases"][0]["expected"]["y"] = [[[0]]]
    (tmp_path / "conv.json").write_text(json.dumps(doc))
    assert main(["golden", "--check", "--out", str(tmp_path)]) == 1
    assert "conv.json" in capsys.readouterr().out
    assert main(["golden", "--check", "--out", str(tmp_path / "missing")]) == 2


# --------------------------------------------------------------------------- the operations added to the four


def _ops():
    return {c["name"]: c for c in load("ops.json")["cases"]}


def _t(v, torch):
    return torch.tensor(np.array(v, dtype=np.float64))


def test_ops_cases_cover_every_new_op_and_keyword():
    names = set(_ops())
    assert {c["op"] for c in _ops().values()} == {"max_pool", "max_unpool", "lp_pool", "adaptive_avg_pool",
                                                   "fractional_max_pool", "avg_pool", "conv", "deform_conv",
                                                   "conv_transpose"}
    assert {"conv_padding_mode_reflect", "conv_padding_mode_replicate", "conv_padding_mode_circular", "conv_unbatched",
            "conv_transpose_output_size", "conv_transpose_gradients_output_padding"} <= names


def test_ops_cases_match_pytorch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    c = _ops()
    mp = c["max_pool_indices_1d"]
    y, i = F.max_pool1d(_t(mp["inputs"]["x"], torch), 3, 2, 1, return_indices=True)
    assert y.tolist() == mp["expected"]["y"] and i.tolist() == mp["expected"]["indices"]
    up = c["max_unpool_1d"]
    assert F.max_unpool1d(y, i, 3, 2, 1, output_size=[7]).tolist() == up["expected"]["y"]
    ad = c["adaptive_pools_uneven_bins"]
    x = _t(ad["inputs"]["x"], torch)
    got = F.adaptive_avg_pool2d(x, (3, 4)).numpy()
    want = np.array([[float(Fraction(v)) for v in row] for row in np.array(ad["expected"]["y"], dtype=object)[0, 0]])
    assert np.allclose(got[0, 0], want, rtol=1e-15, atol=0)  # means rounded once in float64
    my, mi = F.adaptive_max_pool2d(x, (3, 4), return_indices=True)
    assert my.tolist() == ad["expected"]["y_max"] and mi.tolist() == ad["expected"]["indices"]
    fr = c["fractional_max_pool_2d"]
    s = torch.tensor(np.array([[[float(Fraction(v)) for v in p] for p in fr["inputs"]["samples"][0]]]))
    fy, fi = F.fractional_max_pool2d(_t(fr["inputs"]["x"], torch), (2, 3), output_size=(4, 3), return_indices=True,
                                     _random_samples=s.flip(-1))  # PyTorch lists the 2-D axes reversed
    assert fy.tolist() == fr["expected"]["y"] and fi.tolist() == fr["expected"]["indices"]
    for mode in ("reflect", "replicate", "circular"):
        pm = c[f"conv_padding_mode_{mode}"]
        xp = F.pad(_t(pm["inputs"]["x"], torch), [1, 1, 2, 1], mode=mode)
        assert F.conv2d(xp, _t(pm["inputs"]["w"], torch)).tolist() == pm["expected"]["y"], mode
    ub = c["conv_unbatched"]
    assert F.conv1d(_t(ub["inputs"]["x"], torch), _t(ub["inputs"]["w"], torch), stride=2).tolist() == ub["expected"]["y"]
    ct = c["conv_transpose_output_size"]
    y = torch.nn.ConvTranspose1d(2, 3, 2, stride=2, padding=1, bias=False).double()
    y.weight.data = _t(ct["inputs"]["w"], torch)
    assert y(_t(ct["inputs"]["x"], torch), output_size=[5]).tolist() == ct["expected"]["y"]


def test_ops_transposed_gradients_are_the_adjoints():
    g = _ops()["conv_transpose_gradients_output_padding"]
    x, w, dy = (np.array(g["inputs"][k], dtype=np.int64) for k in ("x", "w", "dy"))
    y, gi, gw = (np.array(g["expected"][k], dtype=np.int64) for k in ("y", "grad_input", "grad_weight"))
    assert gi.shape == x.shape and gw.shape == w.shape
    assert (y * dy).sum() == (x * gi).sum() == (w * gw).sum()
