"""An example adapter a kernel library ships for refconv: a direct (loop-free, numpy) convolution.

The package registers ``make`` under the entry-point group ``refconv.adapters``
(see its pyproject.toml); ``refconv check example-direct`` then checks it.  A
``Target`` gives, per op, a callable with the canonical signature of
:mod:`refconv.conformance.ops`, the capabilities it declares, and the source
lines that rebuild it in a reproduction.
"""

from __future__ import annotations

import numpy as np

from refconv.conformance.cases import ALL, Capabilities
from refconv.conformance.targets import Target

OPS = ("conv",)


def conv(x, w, b, *, stride, padding, dilation, groups):
    """Cross-correlation by explicit sums over the kernel taps (``w`` is ``(C_out, C_in // groups, *K)``)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim != w.ndim or groups < 1 or x.shape[1] % groups or w.shape[0] % groups or x.shape[1] // groups != w.shape[1]:
        raise ValueError(f"x{x.shape}, w{w.shape}, groups={groups}: the channels do not fit")
    d = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0), *padding])
    span = [dl * (k - 1) + 1 for dl, k in zip(dilation, w.shape[2:])]
    out = [(n - s_) // st + 1 for n, s_, st in zip(xp.shape[2:], span, stride)]
    if any(o < 1 for o in out):
        raise ValueError(f"kernel span {span} wider than the padded input {xp.shape[2:]}")
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    y = np.zeros((x.shape[0], w.shape[0], *out))
    for tap in np.ndindex(*w.shape[2:]):
        # y[n, o, i] += sum_c x[n, c, i*s + tap*d] * w[o, c, tap]
        sl = tuple(slice(t * dl, t * dl + (o - 1) * st + 1, st) for t, dl, o, st in zip(tap, dilation, out, stride))
        patch = xp[(slice(None), slice(None)) + sl]
        for g in range(groups):
            xs = patch[:, g * cg:(g + 1) * cg]
            ws = w[g * og:(g + 1) * og, :, *tap] if d else w[g * og:(g + 1) * og]
            y[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...", xs, ws)
    if b is not None:
        y += np.asarray(b, dtype=np.float64).reshape((1, -1) + (1,) * d)
    return y


def _capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    # float64 only: the sums are float64 whatever the inputs
    return ALL.replace(ops=OPS, dtypes=("float64",))


def make(name: str) -> Target:
    """The adapter as a :class:`~refconv.conformance.targets.Target` (``name`` as registered)."""
    def functions(op: str):
        if op not in OPS:
            raise ValueError(f"op={op!r}: {name} offers {', '.join(OPS)}")
        return conv

    # a reproduction (and an isolated worker) rebuilds the target by its registered name
    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({name!r}).function({{op!r}})"
    return Target(name, functions, _capabilities, setup, spec=name)
