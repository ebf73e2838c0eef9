"""refconv bench: structure of the report and the JSON (quick sizes; no timing asserts)."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

from refconv import bench
from refconv.commands import bench as bench_cmd


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_suite_is_the_issue_suite():
    cases = {c.name: c for c in bench.suite()}
    assert sorted(cases) == list("abcdefghij")
    assert cases["a"].x_shape == (64, 1, 28, 28) and cases["a"].w_shape == (6, 1, 5, 5) and cases["a"].kwargs == {"padding": 2}
    assert cases["d"].x_shape == (8, 64, 56, 56) and cases["d"].w_shape == (64, 64, 3, 3)
    assert cases["e"].kwargs == {"stride": 2, "dilation": 2, "padding": 2}
    assert cases["f"].w_shape == (64, 1, 3, 3) and cases["f"].kwargs["groups"] == 64
    assert cases["g"].x_shape == (32, 16, 4096) and cases["g"].w_shape == (32, 16, 9)
    assert cases["h"].kwargs == {"padding": "same"} and cases["h"].w_shape == (8, 8, 15, 15)
    assert cases["i"].x_shape == (1, 1, 512, 512) and set(cases["i"].scipy) == {"fftconvolve", "oaconvolve"}
    assert cases["j"].op == "max_pool" and cases["j"].x_shape == (32, 64, 56, 56)
    # forward flop of case d: 2 * N * C_out * C_in * 9 * 56 * 56
    assert cases["d"].flop() == 2 * 8 * 64 * 64 * 9 * 56 * 56


def test_quick_run_writes_a_complete_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert bench_cmd.run(_args("--quick", "--repeats", "1", "--json", str(path))) == 0
    out = capsys.readouterr().out
    data = json.loads(path.read_text())
    assert [f for f in os.listdir(tmp_path) if f != "bench.json"] == []  # no temporary file left behind
    rows = data["rows"]
    conv_rows = [r for r in rows if r["case"] in "abcdefghi"]
    assert {r["case"] for r in rows} >= set("abcdefghij")
    assert {(r["dtype"], r["mode"]) for r in conv_rows} == {
        (d, m) for d in ("float32", "float64") for m in ("forward", "forward+gradients")
    }
    for r in rows:
        assert r["times"]["refconv"] > 0 and r["gflops"] > 0
        assert set(r["times_min"]) == set(r["times"]) and all(r["times_min"][k] <= r["times"][k] for k in r["times"])
        # GFLOP/s and the percentage of the measured GEMM speed, per row
        assert r["pct_gemm"] == pytest.approx(100 * r["gflops"] / data["machine"]["gemm_gflops"][r["dtype"]])
        if "torch" in r["times"]:
            assert r["ratio_torch"] == pytest.approx(r["times"]["refconv"] / r["times"]["torch"])
            assert r["ratio_torch_min"] == pytest.approx(r["times_min"]["refconv"] / r["times_min"]["torch"])
    la = data["machine"]["load_average"]
    assert len(la["start"]) == 3 and len(la["end"]) == 3 and "load average (1, 5, 15 min)" in out
    assert {r["case"] for r in rows if r["mode"] == "training step"} == {"train", "lenet5"}
    i_fwd = [r for r in rows if r["case"] == "i" and r["mode"] == "forward"]
    assert all(set(r["ratio_scipy"]) == {"scipy.signal.fftconvolve", "scipy.signal.oaconvolve"} for r in i_fwd)
    assert data["machine"]["gemm_gflops"]["float32"] > 0
    assert any(b.get("user_api") == "blas" for b in data["machine"]["blas"])
    assert data["memory"]["within"] in (True, False) and data["memory"]["peak_traced_bytes"] > 0
    assert "BLAS:" in out and "ratio" in out
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    summary = data["summary"]
    assert summary["float32 forward"]["n"] == 10 and summary["float64 all"]["n"] == 20
    assert set(summary["targets"]) >= {
        "float32 forward a-g geomean <= 1.0", "float32 forward a-g max <= 2.0",
        "float32 forward+gradients a-g geomean <= 1.0", "float32 forward+gradients a-g max <= 2.0",
        "float64 geomean <= 0.5", "training step <= 1.5", "training step lenet5 <= 1.5",
    }
    assert "peak memory of conv (4, 8, 14, 14)" in out
    assert summary["float32 forward a-g"]["n"] == 7 and summary["float32 forward+gradients a-g"]["n"] == 7
    assert summary["fastest rounds: float32 forward a-g"]["n"] == 7
    assert summary["fastest rounds: float32 training step (train, lenet5)"]["n"] == 2
    assert "fastest rounds: float32 forward a-g: geomean ratio to torch" in out
    train = [r for r in rows if r["case"] == "train"]
    assert len(train) == 1 and train[0]["ratio_torch"] > 0


def test_environment_warnings_follow_the_environment():
    warned = {w.split("=")[0] for w in bench.env_warnings()}
    assert warned == {v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ}
    for w in bench.env_warnings():
        assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE refconv bench" in w


def test_usage_errors():
    from refconv.cli import UsageError

    with pytest.raises(UsageError, match="--cases=a,z"):
        bench_cmd.run(_args("--cases", "a,z"))
    with pytest.raises(UsageError, match="--repeats=0"):
        bench_cmd.run(_args("--repeats", "0"))
    with pytest.raises(UsageError, match="--threads=0"):
        bench_cmd.run(_args("--threads", "0"))
    with pytest.raises(UsageError, match="--threads=9999"):
        bench_cmd.run(_args("--threads", "9999"))


def test_threads_pins_the_run_and_restores_the_process(capsys):
    before = os.sched_getaffinity(0)
    try:
        import torch

        torch_before = torch.get_num_threads()
    except ImportError:
        torch_before = None
    result = bench.run_suite(quick=True, repeats=1, dtypes=("float32",), modes=("forward",), cases=("a",),
                             training=False, memory=False, threads=1)
    assert result["machine"]["threads"] == 1 and os.sched_getaffinity(0) == before
    if torch_before is not None:
        assert result["machine"]["torch"]["threads"] == 1 and torch.get_num_threads() == torch_before
    assert "--threads 1" in bench.format_report(result)
    with pytest.raises(ValueError, match="threads=0"):
        bench.run_suite(quick=True, threads=0)


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")

    class Unserializable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        bench.write_json(str(path), {"x": Unserializable()})
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]
    bench.write_json(str(path), {"x": [1, 2]})
    assert json.loads(path.read_text()) == {"x": [1, 2]}


def test_geomean():
    assert bench.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert np.isnan(bench.geomean([]))


def test_targets_are_judged_on_the_classic_layers_and_the_training_step():
    def row(case, dtype, mode, ratio):
        return {"case": case, "dtype": dtype, "mode": mode, "ratio_torch": ratio, "ratio_scipy": {}}

    rows = [row(c, "float32", m, 0.9) for c in "abcdefg" for m in ("forward", "forward+gradients")]
    rows += [row("h", "float32", "forward", 50.0), row("d", "float64", "forward", 0.4), row("train", "float32", "training step", 1.4)]
    checks = bench.summarize(rows)["targets"]
    # case h is not a classic layer: its ratio does not count against the a-g targets
    assert checks["float32 forward a-g geomean <= 1.0"] and checks["float32 forward a-g max <= 2.0"]
    assert checks["float64 geomean <= 0.5"] and checks["training step <= 1.5"]
    rows[0]["ratio_torch"] = 2.5
    rows[-1]["ratio_torch"] = 1.6
    checks = bench.summarize(rows)["targets"]
    assert not checks["float32 forward a-g max <= 2.0"] and checks["float32 forward+gradients a-g max <= 2.0"]
    assert not checks["training step <= 1.5"]
    # the LeNet-5 step is held to the same target, in its own line
    rows.append(row("lenet5", "float32", "training step", 1.7))
    checks = bench.summarize(rows)["targets"]
    assert checks["training step lenet5 <= 1.5"] is False and "training step lenet5 <= 1.5" in checks
    rows[-1]["ratio_torch"] = 1.2
    assert bench.summarize(rows)["targets"]["training step lenet5 <= 1.5"] is True


def test_a_busy_machine_is_named_in_the_report():
    assert bench.load_warning({"start": [0.3, 0.2, 0.1], "end": [2.0, 1.0, 0.5]}) is None
    assert bench.load_warning(None) is None
    w = bench.load_warning({"start": [2.5, 2.0, 1.0], "end": [3.0, 2.0, 1.0]})
    assert w.startswith("load average 2.50 at the start") and "not figures" in w
