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


@pytest.mark.parametrize("name", ["conv.json", "conv_transpose.json", "pool.json", "signal.json"])
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
