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
    adaptive_bin,
    fractional_start,
    max_unpool_output_size,
    output_padding_for,
    conv_input_size_range,
    conv_output_size,
    conv_transpose_output_size,
    conv_transpose_reachable_range,
    full_padding,
    padding_for_output,
    pool_output_size,
    receptive_field,
    half_padding_agrees_with_same,
    same_alignment_gap,
    same_padding,
    size_symbols,
    stack_output_size,
    stack_output_sizes,
)

__all__ = [
    "SymbolicRF",
    "adaptive_bin",
    "fractional_start",
    "max_unpool_output_size",
    "output_padding_for",
    "conv_input_size_range",
    "conv_output_size",
    "conv_transpose_output_size",
    "conv_transpose_reachable_range",
    "full_padding",
    "padding_for_output",
    "pool_output_size",
    "receptive_field",
    "half_padding_agrees_with_same",
    "same_alignment_gap",
    "same_padding",
    "size_symbols",
    "stack_output_size",
    "stack_output_sizes",
]

#: names provided by submodules that need the oracle, imported on first use
_LAZY: dict[str, str] = {
    **{n: ".gradients" for n in (
        "symbolic_array", "transposed_kernel", "grad_input_padding", "grad_input_rule", "grad_weight_rule",
        "grad_bias_rule", "ConvDerivation", "derive_conv", "TransposeDerivation", "derive_conv_transpose",
        "MAX_SYMBOLS",
    )},
    **{n: ".pooling" for n in (
        "pool_windows", "pool_divisors", "first_max_piecewise", "first_max_indicators", "PoolDerivation", "derive_max_pool", "derive_avg_pool",
    )},
    **{n: ".matrix" for n in ("MatrixForm", "conv_matrix_symbolic", "shifted_kernel_row", "parameter_savings")},
    **{n: ".index" for n in ("IndexDerivation", "index_derivation_1d", "verify_index_derivation", "same_summand")},
}
__all__ += sorted(_LAZY)  # noqa: PLE0605 - the lazily loaded names


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
