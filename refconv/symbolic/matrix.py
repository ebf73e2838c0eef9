r"""The convolution as a matrix: a fully connected layer with tied and zero weights.

For one sample, :math:`\mathrm{vec}(y) = M\,\mathrm{vec}(x)` with ``M`` from
:func:`refconv.oracle.conv_matrix`.  With a symbol for every weight:

* the distinct non-zero entries of ``M`` are the kernel's symbols (all
  ``C_out * C_in/G * prod(K)`` of them whenever every tap reads the input for
  some output, always the case without padding), each repeated along the rows:
  the weights are *tied*;
* row ``(o, p)`` is the kernel of output channel ``o`` placed at column
  ``p*s - lo`` (dilated by ``d``, cut at the borders), and every other entry is
  zero;
* :math:`M^T` is the input-gradient operator: :math:`\partial L/\partial x = M^T g`.

>>> m = conv_matrix_symbolic((1, 1, 3), (1, 4))
>>> m.matrix
Matrix([
[w0, w1, w2,  0],
[ 0, w0, w1, w2]])
>>> sorted(m.distinct_weights(), key=str)
[w0, w1, w2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import sympy as sp

from .. import oracle
from ..params import ConvParams, conv_params
from .formulas import conv_output_size
from .gradients import symbolic_array

__all__ = ["MatrixForm", "conv_matrix_symbolic", "shifted_kernel_row", "parameter_savings"]


@dataclass
class MatrixForm:
    """A symbolic weight array and the matrix of its convolution."""

    params: ConvParams
    w: np.ndarray
    dense: np.ndarray

    @property
    def matrix(self) -> sp.Matrix:
        return sp.Matrix(self.dense)

    def distinct_weights(self) -> set:
        """The distinct non-zero entries of the matrix."""
        return {v for v in self.dense.flat if v != 0}

    def nonzeros(self) -> int:
        """How many entries of the matrix are not zero (the connections a dense layer would make free)."""
        return sum(1 for v in self.dense.flat if v != 0)

    def input_gradient(self, g: Any) -> np.ndarray:
        """``M^T vec(g)``, reshaped to the input: the gradient of ``sum(g * y)`` with respect to ``x``."""
        g = np.asarray(g, dtype=object).reshape(-1)
        return (self.dense.T.dot(g)).reshape(self.params.input_shape[1:])


def conv_matrix_symbolic(
    weight_shape: Sequence[int], input_shape: Sequence[int], *, stride: Any = 1, padding: Any = 0,
    dilation: Any = 1, groups: int = 1, flip: bool = False,
) -> MatrixForm:
    """The matrix of a convolution whose weights are symbols; ``input_shape`` is ``(C_in, *S)``.

    The seed's full convolution of a length-4 input with a length-3 kernel:

    >>> conv_matrix_symbolic((1, 1, 3), (1, 4), padding=2, flip=True).matrix
    Matrix([
    [w0,  0,  0,  0],
    [w1, w0,  0,  0],
    [w2, w1, w0,  0],
    [ 0, w2, w1, w0],
    [ 0,  0, w2, w1],
    [ 0,  0,  0, w2]])
    """
    p = conv_params((1, *input_shape), weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    w = symbolic_array("w", p.weight_shape)
    dense = oracle.conv_matrix(w, input_shape, stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups, flip=p.flip)
    return MatrixForm(p, w, dense)


def shifted_kernel_row(kernel: Sequence[Any], position: int, n: int, *, stride: int = 1, padding: int = 0, dilation: int = 1) -> list:
    """Row ``position`` of a 1-D single-channel matrix, built from its description: the kernel shifted.

    Tap ``j`` sits in column ``position*stride + j*dilation - padding``; taps
    falling outside ``[0, n)`` are cut, every other column is 0.

    >>> shifted_kernel_row(['a', 'b'], 1, 5, stride=2)
    [0, 0, 'a', 'b', 0]
    """
    row: list = [0] * n
    for j, v in enumerate(kernel):
        col = position * stride + j * dilation - padding
        if 0 <= col < n:
            row[col] = v
    return row


def parameter_savings(
    n: Any, k: Any, *, c_in: Any = 1, c_out: Any = 1, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: Any = 1
) -> dict[str, Any]:
    """Weights of a dense layer between the same input and output versus the convolution (no biases).

    ``n`` and ``k`` are one size or one per axis; ``stride``, ``dilation`` and
    ``padding`` are one value for every axis or a tuple with one per axis
    (each padding entry an int or a ``(lo, hi)`` pair).  ``dense = C_in*prod(n) * C_out*prod(O)``, ``conv = C_out*(C_in/G)*prod(k)``,
    ``ratio = dense / conv = G * prod(n) * prod(O) / prod(k)``.

    >>> from refconv.symbolic import size_symbols
    >>> n, k = size_symbols('n k')
    >>> s = parameter_savings(n, k)
    >>> s['dense'], s['conv'], s['ratio']
    (n*(-k + n + 1), k, n*(-k + n + 1)/k)
    >>> s = parameter_savings((32, 32), (5, 5), c_in=3, c_out=6)       # the seed's 32x32x3 input, 5x5x3 filters
    >>> s['dense'], s['conv'], s['ratio']
    (14450688, 450, 802816/25)
    """
    ns = tuple(n) if isinstance(n, (tuple, list)) else (n,)
    ks = tuple(k) if isinstance(k, (tuple, list)) else (k,) * len(ns)

    def per_axis(v: Any) -> tuple:
        return tuple(v) if isinstance(v, (tuple, list)) and len(v) == len(ns) else (v,) * len(ns)

    outs = [
        conv_output_size(ni, ki, si, pi, di)
        for ni, ki, si, pi, di in zip(ns, ks, per_axis(stride), per_axis(padding), per_axis(dilation))
    ]
    dense = sp.sympify(c_in) * sp.Mul(*ns) * sp.sympify(c_out) * sp.Mul(*outs)
    conv = sp.sympify(c_out) * (sp.sympify(c_in) / sp.sympify(groups)) * sp.Mul(*ks)
    return {"dense": dense, "conv": conv, "ratio": sp.simplify(dense / conv)}
