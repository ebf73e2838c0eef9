"""refconv report html: one self-contained page; JSON reports validate against specs/report.schema.json."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from refconv.cli import main
from refconv.conformance import check
from refconv.conformance.html_report import entries, render, schema, validate
from refconv.conformance.network import check_network

pytest.importorskip("jsonschema")

FLIPPED = '''
from refconv import oracle

def conv(x, w, b, *, stride, padding, dilation, groups):
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)
'''


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    d = tmp_path_factory.mktemp("reports")
    impl = d / "flipped.py"
    impl.write_text(FLIPPED)
    good = check("refconv.fast", op="conv", dims=1, max_examples=2, seed=0)
    bad = check(f"{impl}:conv", dims=1, max_examples=2, seed=0)
    pool = check("refconv.fast", op="max_pool", dims=2, max_examples=1, seed=0)
    net = check_network("refconv.fast", "lenet5", random=2)
    paths = {}
    for name, r in (("good", good), ("bad", bad), ("pool", pool), ("net", net)):
        paths[name] = d / f"{name}.json"
        r.save_json(paths[name])
    return d, paths, bad


def test_every_report_kind_validates_against_the_published_schema(reports):
    d, paths, _ = reports
    for p in paths.values():
        doc = json.loads(p.read_text())
        assert doc["schema_version"] == 1
        assert validate(doc) == [], p
    assert validate([json.loads(paths["good"].read_text()), json.loads(paths["bad"].read_text())]) == []
    # a report missing its schema version, or with a verdict that is not one, is invalid
    doc = json.loads(paths["good"].read_text())
    assert validate({k: v for k, v in doc.items() if k != "schema_version"})
    assert validate({**doc, "verdict": "MOSTLY"})
    assert schema()["$defs"]["version"] == {"const": 1}
    assert main(["report", "validate", str(paths["net"])]) == 0
    bad = d / "bad_doc.json"
    bad.write_text(json.dumps({**doc, "verdict": "MOSTLY"}))
    assert main(["report", "validate", str(bad)]) == 1


def test_check_reports_carry_each_cases_error_and_bound(reports):
    _, paths, bad = reports
    good = json.loads(paths["good"].read_text())
    pts = good["case_errors"]
    # one point per case with values (a configuration that must be refused has none)
    assert 0 < len(pts) <= good["catalogue_cases"] + good["explored_cases"]
    assert all(0 <= p["error"] <= p["bound"] for p in pts)
    # the failing case's point is past its bound
    assert bad.case_errors[-1]["error"] > bad.case_errors[-1]["bound"]


def test_the_page_has_the_matrix_failures_with_reproductions_and_plots(reports, tmp_path):
    _, paths, bad = reports
    out = tmp_path / "report.html"
    assert main(["report", "html", *map(str, paths.values()), "-o", str(out), "--title", "nightly"]) == 0
    page = out.read_text()
    assert "<title>nightly</title>" in page
    # the matrix: targets down, ops and dtypes across
    assert re.search(r'<table id="matrix"', page) and "flipped.py:conv" in page
    assert page.count('data-verdict="FAIL"') == 1 and 'data-verdict="PASS"' in page
    # the failure: its diagnosis and its reproduction, escaped, ready to copy
    assert "kernel flipped" in page or any(d in page for d in bad.failure.diagnosis)
    assert 'id="repro-0"' in page and "oracle.conv(x.astype(np.float64)" in page
    # one plot per op judged, log axes, no external asset
    assert page.count("<svg") == len({e["op"] for p in paths.values() for e in entries(json.loads(p.read_text()))})
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_a_file_that_is_not_a_report_is_a_usage_error(tmp_path, capsys):
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    assert main(["report", "html", str(p), "-o", str(tmp_path / "r.html")]) == 2
    assert "not a refconv report" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
    assert render([]).startswith("<!DOCTYPE html>")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no chromium here (Debian: apt-get install chromium; .ci/setup installs it)")


def test_the_page_renders_in_headless_chromium(reports, tmp_path):
    browser = _chromium()
    _, paths, bad = reports
    page = tmp_path / "report.html"
    assert main(["report", "html", *map(str, paths.values()), "-o", str(page)]) == 0
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert '<table id="matrix"' in html and 'data-verdict="FAIL"' in html
    first_line = bad.failure.repro.splitlines()[0]
    assert 'id="repro-0"' in html and first_line in html
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
