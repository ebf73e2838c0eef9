"""refconv: the convolution reference and test oracle.

Exact definitions (:mod:`refconv.oracle`), shape formulas (:mod:`refconv.shapes`),
a fast numpy engine (:mod:`refconv.fast`), symbolic proofs (:mod:`refconv.symbolic`),
network summaries (:mod:`refconv.summary`), a conformance suite
(:mod:`refconv.conformance`) and a small trainable CNN (:mod:`refconv.nn`).
Submodules are imported on first use.

>>> import refconv
>>> refconv.oracle.convolve([1, 2, 3, 4], [5, 6, 7]).tolist()
[5, 16, 34, 52, 45, 28]
"""

import importlib
from typing import Any

from .params import ConvParamError

__version__ = "0.1.0"
_SUBMODULES = ("oracle", "params", "shapes", "fast", "symbolic", "summary", "conformance", "nn", "cli")
__all__ = ["ConvParamError", "__version__", "oracle", "params", "shapes", "fast", "symbolic", "summary", "conformance",
           "nn", "cli"]


def __getattr__(name: str) -> Any:
    # lazy submodules: `import refconv` stays cheap (sympy, scipy load on demand)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'refconv' has no attribute {name!r}")
