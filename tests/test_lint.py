"""The linters the project is held to, run as the suite runs: ruff (errors, pyflakes, bugbear) and mypy.

Their configuration is in pyproject.toml (``[tool.ruff]``, ``[tool.mypy]``); the test fails with
their report, so a newcomer's ``pytest`` shows what CI shows.
"""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing():
    if shutil.which("ruff") is None and _run("ruff", "--version").returncode != 0:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    r = _run("ruff", "check", "refconv", "tests", "--output-format", "concise")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_finds_nothing():
    pytest.importorskip("mypy")
    r = _run("mypy")  # the files and options of pyproject.toml's [tool.mypy]
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
