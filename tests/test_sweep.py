"""refconv sweep: plan expansion, disjoint balanced shards, streaming JSON, resume, merge."""

from __future__ import annotations

import json

import pytest

from refconv.cli import main
from refconv.conformance import sweep
from refconv.conformance.html_report import validate
from refconv.params import ConvParamError

IMPL = '''
from refconv import fast

def conv(x, w, b, *, stride, padding, dilation, groups):
    """Forgets a partial last tile of 4 outputs on the last axis."""
    y = fast.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    n = y.shape[-1]
    if n > 4 and n % 4:
        y[..., (n // 4) * 4:] = 0
    return y
'''

PLAN = '''
name = "tiny"
targets = ["refconv.fast", "{impl}:conv"]
ops = ["conv", "max_pool"]
dims = [1]
networks = ["{net}"]
max_examples = 1
random_positions = 2
'''

NET = '{"name": "two", "input": [2, 9, 7], "layers": [{"type": "conv", "out_channels": 3, "kernel_size": 3, "padding": 1}, {"type": "maxpool", "kernel_size": 2}]}'


@pytest.fixture
def plan_file(tmp_path):
    impl = tmp_path / "impl.py"
    impl.write_text(IMPL)
    net = tmp_path / "two.json"
    net.write_text(NET)
    p = tmp_path / "plan.toml"
    p.write_text(PLAN.format(impl=impl, net=net))
    return p


def test_expansion_is_the_full_matrix_in_a_fixed_order():
    plan = sweep.from_dict({"targets": ["a", "b"], "ops": ["conv"], "dims": [1, 2], "dtypes": ["float32", "float64"],
                            "precisions": [None, "float64"], "seeds": [0, 7], "networks": ["lenet5"]})
    cells = sweep.expand(plan)
    # 2 targets x 1 op x 2 dims x 3 (dtype, precision) x 2 seeds, then 2 targets x 1 network x 3 x 2: float64
    # with the dtype's own precision (None) is float64 with precision float64, one cell
    assert len(cells) == 24 + 12
    assert len({c.id for c in cells}) == len(cells)
    assert cells[0].id == "a conv 1-D float32 precision=float32 seed=0"
    assert cells[1].id == "a conv 1-D float32 precision=float32 seed=7"
    assert cells[24].id == "a network=lenet5 float32 precision=float32 seed=0"
    assert sweep.expand(sweep.from_dict(plan.to_dict())) == cells


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_shards_are_disjoint_complete_balanced_and_deterministic(n):
    plan = sweep.from_dict({"targets": ["a", "b", "c"], "ops": ["conv", "avg_pool"], "dims": [1, 2, 3],
                            "seeds": [0, 1], "networks": ["lenet5", "vgg11"]})
    cells = sweep.expand(plan)
    shards = [sweep.shard(cells, k, n) for k in range(1, n + 1)]
    ids = [c.id for s in shards for c in s]
    assert sorted(ids) == sorted(c.id for c in cells) and len(set(ids)) == len(ids)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    # the costly network cells are spread too
    nets = [sum(c.network is not None for c in s) for s in shards]
    assert max(nets) - min(nets) <= 1
    assert shards == [sweep.shard(sweep.expand(plan), k, n) for k in range(1, n + 1)]


@pytest.mark.parametrize("data, needle", [
    ({"targets": ["t"], "ops": ["conv"], "dimz": [1]}, "'dimz': unknown"),
    ({"ops": ["conv"]}, "'targets': required"),
    ({"targets": ["t"], "ops": ["conv"], "dims": [4]}, "'dims': 4"),
    ({"targets": ["t"], "ops": ["convolution"]}, "convolution"),
    ({"targets": ["t"]}, "nothing to run"),
    ({"targets": ["t"], "ops": ["conv"], "seeds": [0, 0]}, "listed twice"),
    ({"targets": ["t"], "networks": ["resnet5"]}, "resnet5"),
    ({"targets": ["t"], "ops": ["conv"], "precisions": ["float128"]}, "float128"),
])
def test_bad_plans_name_the_key(data, needle):
    with pytest.raises(ConvParamError, match=needle.replace("(", r"\(")):
        sweep.from_dict(data)


def test_three_shards_merged_into_one_html_report(plan_file, tmp_path, capsys):
    assert main(["sweep", str(plan_file), "--list"]) == 0
    listed = capsys.readouterr().out.split("\n")[:-1]
    assert len(listed) == 6
    codes = []
    for k in (1, 2, 3):
        codes.append(main(["sweep", str(plan_file), "--shard", f"{k}/3", "--json", str(tmp_path / f"s{k}.json"),
                           "--quiet"]))
    capsys.readouterr()
    assert 1 in codes  # the broken target's conv cell fails in one shard
    docs = [json.loads((tmp_path / f"s{k}.json").read_text()) for k in (1, 2, 3)]
    assert all(d["complete"] and validate(d) == [] for d in docs)
    assert sorted(r["cell"] for d in docs for r in d["results"]) == sorted(listed)
    merged = tmp_path / "merged.json"
    assert main(["report", "merge", *(str(tmp_path / f"s{k}.json") for k in (1, 2, 3)), "-o", str(merged)]) == 0
    m = json.loads(merged.read_text())
    assert validate(m) == [] and m["complete"] and [r["cell"] for r in m["results"]] == listed
    verdicts = {r["cell"].split(" ")[0].split("/")[-1] + " " + r["cell"].split(" ")[1]: r["verdict"] for r in m["results"]}
    assert verdicts["refconv.fast conv"] == "PASS" and verdicts["impl.py:conv conv"] == "FAIL"
    assert verdicts["impl.py:conv max_pool"] == "UNSUPPORTED"  # a conv function has no max_pool: listed, not passed
    assert verdicts["refconv.fast network=" + str(tmp_path / "two.json")] == "PASS"
    page = tmp_path / "report.html"
    assert main(["report", "html", str(merged), "-o", str(page)]) == 0
    text = page.read_text()
    assert 'id="matrix"' in text and "impl.py:conv" in text and "reproduce" in text
    assert "<svg" in text and "<script src" not in text and "<link" not in text


def test_merge_fails_on_a_missing_shard_or_a_duplicate_cell(plan_file, tmp_path, capsys):
    plan = sweep.load(plan_file)
    cells = sweep.expand(plan)
    fake = {"cell": "", "spec": {}, "verdict": "PASS", "report": None, "message": "", "elapsed_s": 0.0}
    docs = []
    for k in (1, 2, 3):
        part = sweep.shard(cells, k, 3)
        doc = sweep._document(plan, k, 3, part, [{**fake, "cell": c.id, "spec": c.to_dict()} for c in part])
        path = tmp_path / f"f{k}.json"
        path.write_text(json.dumps(doc))
        docs.append(str(path))
    out = str(tmp_path / "m.json")
    assert main(["report", "merge", *docs, "-o", out]) == 0
    assert main(["report", "merge", docs[0], docs[2], "-o", out]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["report", "merge", *docs, docs[1], "-o", out]) == 1
    assert "duplicate" in capsys.readouterr().err
    other = sweep.from_dict({**plan.to_dict(), "seeds": [1]})
    (tmp_path / "other.json").write_text(json.dumps(sweep._document(other, 1, 1, [], [])))
    assert main(["report", "merge", docs[0], str(tmp_path / "other.json"), "-o", out]) == 1
    assert "another plan" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{")
    assert main(["report", "merge", str(tmp_path / "junk.json"), "-o", out]) == 2


def test_a_killed_sweep_keeps_its_finished_cells_and_resume_skips_them(plan_file, tmp_path, capsys):
    plan = sweep.load(plan_file)
    cells = [c for c in sweep.expand(plan) if c.network is None][:3]
    out = str(tmp_path / "r.json")
    seen = []

    def killed_after_two(rec):
        seen.append(rec["cell"])
        on_disk = json.loads(open(out).read())  # written before the next cell starts
        assert [r["cell"] for r in on_disk["results"]] == seen and not on_disk["complete"] or len(seen) == 3
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run_cells(plan, cells, json_path=out, on_result=killed_after_two)
    kept = json.loads(open(out).read())
    assert [r["cell"] for r in kept["results"]] == [c.id for c in cells[:2]] and not kept["complete"]
    ran = []
    doc = sweep.run_cells(plan, cells, json_path=out, resume=True, on_result=lambda r: ran.append(r["cell"]))
    assert ran == [cells[2].id] and doc["complete"]
    assert [r["cell"] for r in json.loads(open(out).read())["results"]] == [c.id for c in cells]
    # resuming from another plan's results is refused
    other = sweep.from_dict({**plan.to_dict(), "max_examples": 2})
    with pytest.raises(ConvParamError, match="another plan"):
        sweep.run_cells(other, cells, json_path=out, resume=True)


def test_sweep_usage_errors(plan_file, tmp_path, capsys):
    assert main(["sweep", str(plan_file), "--shard", "4/3", "--list"]) == 2
    assert "--shard" not in capsys.readouterr().out
    assert main(["sweep", str(plan_file), "--resume"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "nope.toml")]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('targets = ["t"]\nops = ["conv"]\ndims = "2"\n')
    assert main(["sweep", str(bad)]) == 2
    assert "'dims'" in capsys.readouterr().err


NHWC = '''
import numpy as np
from refconv import fast

def conv(x, w, b, *, stride, padding, dilation, groups):
    """Takes and returns channels-last arrays (NHWC); weights OIHW."""
    y = fast.conv(np.moveaxis(x, -1, 1), w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return np.moveaxis(y, 1, -1)
'''


def test_layouts_are_a_dimension_of_the_matrix(tmp_path):
    pytest.importorskip("refconv.layouts")
    impl = tmp_path / "nhwc.py"
    impl.write_text(NHWC)
    plan = sweep.from_dict({"targets": [f"{impl}:conv"], "ops": ["conv"], "dims": [2], "layouts": ["NHWC", "NCHW"],
                            "max_examples": 1})
    doc = sweep.run_cells(plan, sweep.expand(plan))
    # the channels-last function passes in its own layout and fails when called channels-first
    assert [(r["cell"].split(" ")[-2], r["verdict"]) for r in doc["results"]] == [("layout=NHWC", "PASS"),
                                                                                 ("layout=NCHW", "FAIL")]
    with pytest.raises(ConvParamError, match="NHWQ"):
        sweep.from_dict({"targets": ["t"], "ops": ["conv"], "layouts": ["NHWQ"]})
