"""The pytest plugin under pytest-xdist: the same items, seeds and verdicts as a serial run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("xdist")

IMPL = '''
from refconv import fast

def good(x, w, b, *, stride, padding, dilation, groups):
    return fast.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

def tiles(x, w, b, *, stride, padding, dilation, groups):
    """Forgets a partial last tile of 4 outputs on the last axis."""
    y = fast.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    n = y.shape[-1]
    if n > 4 and n % 4:
        y[..., (n // 4) * 4:] = 0
    return y
'''


def _run(tmp_path, *extra: str) -> dict[str, tuple[str, str, int]]:
    """name -> (outcome, verdict, seed) of each item, read from the JUnit XML (the items' refconv_report property)."""
    xml = tmp_path / f"junit{len(extra)}.xml"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path),
            "--refconv-target=impl:good", "--refconv-target=impl:tiles", "--refconv-dims=1",
            "--refconv-max-examples=2", "--refconv-seed=3", f"--junitxml={xml}", *extra]
    import refconv

    # the target's folder, and the refconv this test imported (the workers must check with the same one)
    here = os.path.dirname(os.path.dirname(os.path.abspath(refconv.__file__)))
    path = os.pathsep.join(p for p in (str(tmp_path), here, os.environ.get("PYTHONPATH", "")) if p)
    run = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": path})
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # the tiles item fails
    out = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        report = json.loads(props["refconv_report"])
        outcome = "failed" if case.find("failure") is not None else "passed"
        out[case.get("name")] = (outcome, report["verdict"], report["seed"])
    return out


def test_an_xdist_run_gives_the_serial_verdicts_and_seeds(tmp_path):
    (tmp_path / "impl.py").write_text(IMPL)
    serial = _run(tmp_path)
    parallel = _run(tmp_path, "-n", "2")
    assert len(serial) == 2 and parallel == serial
    assert {v[:2] for v in serial.values()} == {("passed", "PASS"), ("failed", "FAIL")}
    # each item has its own seed, a function of --refconv-seed and its name only
    from refconv.conformance.plugin import item_seed

    assert {name: v[2] for name, v in serial.items()} == {name: item_seed(3, name) for name in serial}
    assert len({v[2] for v in serial.values()}) == 2
