"""numpy adapter: ``numpy.correlate(a, v, mode)`` for 1-D, one channel.

Declared: dims 1, one batch element, one channel, stride 1, no dilation, no
bias, padding of the modes ``valid``, ``full`` and ``same`` (extra zero at
the start for an even kernel: refconv's ``'same_lower'``).
"""

from __future__ import annotations

import numpy as np

from ..cases import ALL, Capabilities, Case, padding_kinds
from ..targets import Target
from .scipy_adapter import mode_of

SETUP = "from refconv.conformance import adapters\ntarget = adapters.get('numpy').function({op!r})"


def conv(x, w, b, *, stride, padding, dilation, groups):
    case = Case("conv", n=1, cin=1, cout=1, spatial=x.shape[2:], kernel=w.shape[2:], padding=padding)
    return np.correlate(x[0, 0], w[0, 0], mode=mode_of(case))[None, None]


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    return ALL.replace(ops=("conv",), dims=(1,), dtypes=("float32", "float64"),
                       padding=frozenset({"valid", "full", "same_lower"}), stride=False, dilation=False, groups=False,
                       bias=False, batch=False, empty_batch=False, channels=False,
                       rule=_rule, notes=("mode 'same' with a kernel longer than the input (numpy returns max(M, N) samples)",))


def _rule(c: Case) -> bool:
    kinds = padding_kinds(c)
    # numpy.correlate(a, v, 'same') returns max(len(a), len(v)) samples: 'same' only when the kernel fits
    same_ok = "same_lower" in kinds and c.kernel[0] <= c.spatial[0]
    return bool(kinds & {"valid", "full"}) or same_ok


def make(name: str = "numpy") -> Target:
    return Target("numpy", lambda op: {"conv": conv}[op], capabilities, SETUP, spec="numpy")
