"""The README's first command, `refconv check torch`: a whole-library run ends in a verdict for every op.

Run here on 1-D and the catalogue only (the README's command explores too); with ``--allow-known``
PyTorch's recorded divergences are accepted, so anything but exit 0 is a new failure, a usage error
or refconv's own error.
"""

import subprocess
import sys

import pytest


def test_check_torch_on_every_op_ends_in_verdicts():
    pytest.importorskip("torch")
    r = subprocess.run([sys.executable, "-m", "refconv", "check", "torch", "--dims", "1", "--max-examples", "0",
                        "--allow-known", "--seed", "0", "--quiet"], capture_output=True, text=True, timeout=600)
    verdicts = [ln for ln in r.stdout.splitlines() if ln.startswith(("PASS ", "FAIL ", "ERROR ", "INCONCLUSIVE "))]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert len(verdicts) >= 15 and all(v.startswith("PASS ") for v in verdicts), "\n".join(verdicts)
