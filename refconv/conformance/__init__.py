"""Conformance suite: check other implementations against the oracle.

``check(target, op=..., dims=..., dtype=..., precision=...)`` runs a
deterministic catalogue of edge cases, then hypothesis exploration, compares
every element with the exact result within a rigorous error bound
(:mod:`refconv.conformance.bounds`), and returns a :class:`Report` whose
``verdict`` is PASS, FAIL (with a shrunk counterexample, a diagnosis and a
reproduction), ERROR (refconv itself failed) or INCONCLUSIVE (too few cases
had an error bound).  How the target is called, in process or in a worker
process, is in :mod:`refconv.conformance.isolation`.  Canonical signatures
of the checked callables are in :mod:`refconv.conformance.ops`; built-in
adapters in :mod:`refconv.conformance.adapters`.

Submodules load on first use, so importing this package stays cheap.

>>> from refconv.conformance import check
>>> check('refconv.oracle', op='max_pool', dims=1, max_examples=0).ok
True
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["check", "check_shape", "Report", "Failure", "Capabilities", "Case", "SIGNATURES", "identify", "check_specials"]

_LAZY = {
    "check": ("targets", "check"),  # the engine's check, with layout= and weight_layout= (refconv.layouts)
    "check_shape": ("shapecheck", "check_shape"),
    "Report": ("report", "Report"),
    "Failure": ("report", "Failure"),
    "Capabilities": ("cases", "Capabilities"),
    "Case": ("cases", "Case"),
    "SIGNATURES": ("ops", "SIGNATURES"),
    "identify": ("identify", "identify"),
    "check_specials": ("specials", "check_specials"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    raise AttributeError(f"module 'refconv.conformance' has no attribute {name!r}")
