"""Symbolic layer: sympy twins of the shape formulas, gradients derived and proved, the matrix form.

Submodules:

* :mod:`refconv.symbolic.formulas`: output sizes, paddings, receptive fields,
  network-level shape formulas and the inverse questions, as sympy expressions;
* :mod:`refconv.symbolic.gradients`: backprop derived with sympy on symbolic
  arrays through the oracle, and the closed-form rules it equals;
* :mod:`refconv.symbolic.pooling`: max and average pooling gradients;
* :mod:`refconv.symbolic.matrix`: the convolution as a matrix with tied and zero weights;
* :mod:`refconv.symbolic.index`: the general-size 1-D derivation in index notation.

>>> from refconv.symbolic import conv_output_size, size_symbols
>>> n, k = size_symbols('n k')
>>> conv_output_size(n, k)
-k + n + 1
"""

from __future__ import annotations

import importlib
from typing import Any

from .formulas import (
    SymbolicRF,
    conv_input_size_range,
    conv_output_size,
    conv_transpose_output_size,
    conv_transpose_reachable_range,
    full_padding,
    padding_for_output,
    pool_output_size,
    receptive_field,
    same_padding,
    size_symbols,
    stack_output_size,
    stack_output_sizes,
)

__all__ = [
    "SymbolicRF",
    "conv_input_size_range",
    "conv_output_size",
    "conv_transpose_output_size",
    "conv_transpose_reachable_range",
    "full_padding",
    "padding_for_output",
    "pool_output_size",
    "receptive_field",
    "same_padding",
    "size_symbols",
    "stack_output_size",
    "stack_output_sizes",
]

#: names provided by submodules that need the oracle, imported on first use
_LAZY: dict[str, str] = {}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
