"""scipy.signal adapter: ``correlate(in1, in2, mode, method='direct')`` on one channel.

scipy.signal works on plain N-D arrays: declared one batch element, one
channel, stride 1, no dilation, no bias, and the padding of its modes:
``valid`` (0, 0), ``full`` (K-1, K-1), and ``same`` (an odd total puts the
extra zero at the start, i.e. refconv's ``'same_lower'``).
"""

from __future__ import annotations

import numpy as np

from ..cases import ALL, Capabilities, Case, padding_kinds
from ..targets import Target

SETUP = "from refconv.conformance import adapters\ntarget = adapters.get('scipy').function({op!r})"


def mode_of(case_or_padding, spatial=None, kernel=None) -> str:
    kinds = padding_kinds(case_or_padding)
    for m, k in (("valid", "valid"), ("full", "full"), ("same", "same_lower")):
        if k in kinds:
            return m
    raise ValueError(f"padding={case_or_padding.padding}: not one of scipy.signal's modes")


def conv(x, w, b, *, stride, padding, dilation, groups):
    from scipy import signal

    case = Case("conv", n=1, cin=1, cout=1, spatial=x.shape[2:], kernel=w.shape[2:], padding=padding)
    y = signal.correlate(x[0, 0], w[0, 0], mode=mode_of(case), method="direct")
    return np.asarray(y)[None, None]


def _modes(case: Case) -> bool:
    return bool(padding_kinds(case) & {"valid", "full", "same_lower"})


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    return ALL.replace(ops=("conv",), dtypes=("float32", "float64"), padding=frozenset({"valid", "full", "same_lower"}),
                       stride=False, dilation=False, groups=False, bias=False, batch=False, empty_batch=False,
                       channels=False, rule=_modes)


def make(name: str = "scipy") -> Target:
    return Target("scipy", lambda op: {"conv": conv}[op], capabilities, SETUP, spec="scipy")
