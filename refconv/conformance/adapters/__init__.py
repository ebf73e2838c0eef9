"""Built-in adapters: thin argument translators from the canonical signatures to other libraries.

Each adapter module defines ``make() -> Target``; it imports its library only
when a function is first requested, so listing adapters costs nothing.

>>> sorted(ADAPTERS)
['jax', 'numpy', 'onnxruntime', 'refconv.fast', 'refconv.oracle', 'scipy', 'torch']
"""

from __future__ import annotations

import importlib

from ..targets import Target

ADAPTERS = {
    "torch": "torch_adapter",
    "onnxruntime": "onnx_adapter",
    "jax": "jax_adapter",
    "scipy": "scipy_adapter",
    "numpy": "numpy_adapter",
    "refconv.fast": "refconv_adapter",
    "refconv.oracle": "refconv_adapter",
}

_cache: dict[str, Target] = {}


def get(name: str) -> Target:
    """The adapter ``name`` as a :class:`~refconv.conformance.targets.Target`."""
    if name not in _cache:
        mod = importlib.import_module(f".{ADAPTERS[name]}", __name__)
        _cache[name] = mod.make(name)
    return _cache[name]
