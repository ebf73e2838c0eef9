r"""Max and average pooling gradients, derived by sympy.

Window ``p`` of an axis reads positions ``p*s + j*d - lo`` for ``j < k`` (the
convolution windows); positions outside ``[0, n)`` are padding.

* Average pooling: :math:`y_p = \frac{1}{D_p}\sum_{i \in W_p} x_i`, linear, so
  :math:`\partial L/\partial x_i = \sum_{p : i \in W_p} g_p / D_p`; the divisor
  :math:`D_p` counts the window positions inside input and padding
  (``count_include_pad``, never past the padding) or inside the input only.
* Max pooling is piecewise linear: :math:`y_p = x_{m(p)}` with :math:`m(p)` the
  first maximal element of the window in row-major tap order (the tie rule), so
  :math:`\partial L/\partial x_i = \sum_{p : m(p) = i} g_p`.  Element ``j`` of
  a window is chosen when it is greater than every earlier element and at least
  every later one: :math:`y_p = \sum_j x_j I_j` with the indicator
  :math:`I_j = \prod_{i<j} [x_j > x_i] \prod_{i>j} [x_j \ge x_i]`
  (each bracket a two-branch ``Piecewise``; the same function as the
  many-branch ``Piecewise`` of :func:`first_max_piecewise`, which sympy
  handles slowly beyond a few elements).  The indicators are locally
  constant, so differentiating gives :math:`\partial y_p / \partial x_i = I_i`.
  At a tie the function is not differentiable; the tie rule names the
  one-sided derivative that every implementation must pick to agree.

>>> y = first_max_piecewise(sp.symbols('a b', real=True))
>>> y
Piecewise((a, a >= b), (b, True))
>>> sp.diff(y, sp.Symbol('a', real=True))
Piecewise((1, a >= b), (0, True))
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import sympy as sp
from sympy.printing.pretty.stringpict import prettyForm

from ..params import ConvParamError, PoolParams, pool_params
from .gradients import MAX_SYMBOLS, symbolic_array

__all__ = [
    "pool_windows",
    "pool_divisors",
    "first_max_piecewise",
    "first_max_indicators",
    "PoolDerivation",
    "derive_max_pool",
    "derive_avg_pool",
    "Iverson",
    "as_iverson",
]


def pool_windows(pp: PoolParams) -> dict[tuple[int, ...], list[tuple[int, ...]]]:
    """Output position -> the input positions of its window, in row-major tap order (padding left out).

    >>> pool_windows(pool_params((1, 1, 5), 2, ceil_mode=True))
    {(0,): [(0,), (1,)], (1,): [(2,), (3,)], (2,): [(4,)]}
    """
    spatial = pp.input_shape[2:]
    out = {}
    for pos in np.ndindex(*pp.output_spatial):
        members = []
        for taps in itertools.product(*(range(k) for k in pp.kernel_size)):
            idx = tuple(p * s + j * d - lo for p, s, j, d, (lo, _) in zip(pos, pp.stride, taps, pp.dilation, pp.padding))
            if all(0 <= i < n for i, n in zip(idx, spatial)):
                members.append(idx)
        out[tuple(int(v) for v in pos)] = members
    return out


def pool_divisors(pp: PoolParams) -> dict[tuple[int, ...], int]:
    """Average-pooling divisor per output position: window positions inside input and padding, or inside the input.

    >>> pool_divisors(pool_params((1, 1, 4), 3, stride=1, padding=1))
    {(0,): 3, (1,): 3, (2,): 3, (3,): 3}
    >>> pool_divisors(pool_params((1, 1, 4), 3, stride=1, padding=1, count_include_pad=False))
    {(0,): 2, (1,): 3, (2,): 3, (3,): 2}
    """
    spatial = pp.input_shape[2:]
    out = {}
    for pos in np.ndindex(*pp.output_spatial):
        count = 1
        for p, s, k, d, (lo, hi), n in zip(pos, pp.stride, pp.kernel_size, pp.dilation, pp.padding, spatial):
            first, last = (-lo, n + hi) if pp.count_include_pad else (0, n)
            count *= sum(1 for j in range(k) if first <= p * s + j * d - lo < last)
        out[tuple(int(v) for v in pos)] = count
    return out


def first_max_indicators(elements: Sequence[Any]) -> list[sp.Expr]:
    """``I_j = prod_{i<j} [x_j > x_i] * prod_{i>j} [x_j >= x_i]``: 1 exactly for the first maximal element.

    >>> a, b = sp.symbols('a b', real=True)
    >>> first_max_indicators([a, b])
    [Piecewise((1, a >= b), (0, True)), Piecewise((1, a < b), (0, True))]
    """
    elements = list(elements)
    if not elements:
        raise ConvParamError("elements=[]: a pooling window holds at least one input element")

    def bracket(cond: Any) -> sp.Expr:
        return sp.Piecewise((1, cond), (0, True))

    return [
        sp.Mul(
            *[bracket(e > elements[i]) for i in range(j)],
            *[bracket(e >= elements[i]) for i in range(j + 1, len(elements))],
        )
        for j, e in enumerate(elements)
    ]


def first_max_piecewise(elements: Sequence[Any]) -> sp.Expr:
    """The maximum as a ``Piecewise`` that names the chosen element: the first maximal one.

    >>> first_max_piecewise(sp.symbols('a b c', real=True))
    Piecewise((a, (a >= b) & (a >= c)), (b, (b >= c) & (a < b)), (c, True))
    """
    elements = list(elements)
    if not elements:
        raise ConvParamError("elements=[]: a pooling window holds at least one input element")
    branches = []
    for j, e in enumerate(elements[:-1]):
        cond = sp.And(*[e > elements[i] for i in range(j)], *[e >= elements[i] for i in range(j + 1, len(elements))])
        branches.append((e, cond))
    branches.append((elements[-1], True))
    return sp.Piecewise(*branches)


class Iverson(sp.Function):
    """``[cond]``: 1 where ``cond`` holds, else 0; a display form of ``Piecewise((1, cond), (0, True))``."""

    nargs = 1

    def _pretty(self, printer: Any) -> Any:
        return prettyForm(*printer._print(self.args[0]).parens("[", "]"))

    def _latex(self, printer: Any) -> str:
        return r"\left[" + printer._print(self.args[0]) + r"\right]"

    def _sympystr(self, printer: Any) -> str:
        return "[" + printer._print(self.args[0]) + "]"


def as_iverson(expr: Any) -> Any:
    """Write every indicator ``Piecewise((1, c), (0, True))`` as the bracket ``[c]`` (for printing).

    >>> a, b = sp.symbols('a b', real=True)
    >>> as_iverson(a * first_max_indicators([a, b])[0] + b * first_max_indicators([a, b])[1])
    a*[a >= b] + b*[a < b]
    """

    def is_indicator(t: Any) -> bool:
        return (
            isinstance(t, sp.Piecewise) and len(t.args) == 2 and t.args[0].expr == 1
            and t.args[1].expr == 0 and t.args[1].cond == sp.true
        )

    return sp.sympify(expr).replace(is_indicator, lambda t: Iverson(t.args[0].cond))


@dataclass
class PoolDerivation:
    """Pooling with symbolic ``x`` and upstream gradient ``g``; ``dx`` differentiated by sympy."""

    params: PoolParams
    op: str
    x: np.ndarray
    g: np.ndarray
    y: np.ndarray
    loss: sp.Expr
    dx: np.ndarray

    def at(self, x_values: Any, g_values: Any) -> tuple[np.ndarray, np.ndarray]:
        """``y`` and ``dx`` with numbers substituted (exact: ints and Rationals stay exact)."""
        xv, gv = np.asarray(x_values), np.asarray(g_values)
        if xv.shape != self.x.shape or gv.shape != self.g.shape:
            raise ConvParamError(
                f"x_values.shape={xv.shape}, g_values.shape={gv.shape}: expected {self.x.shape} and {self.g.shape}"
            )
        table = {s: sp.nsimplify(v) if isinstance(v, float) else sp.sympify(v) for s, v in zip(self.x.flat, xv.flat)}
        table.update({s: sp.sympify(v) for s, v in zip(self.g.flat, gv.flat)})

        def subs(a: np.ndarray) -> np.ndarray:
            out = np.empty(a.shape, dtype=object)
            for idx in np.ndindex(*a.shape):
                out[idx] = sp.sympify(a[idx]).xreplace(table)
            return out

        return subs(self.y), subs(self.dx)


def _derive(op: str, pp: PoolParams) -> PoolDerivation:
    count = 2 * int(np.prod(pp.input_shape)) + int(np.prod(pp.output_shape))
    if count > MAX_SYMBOLS:
        raise ConvParamError(
            f"x.shape={pp.input_shape}: {count} symbols exceed the limit of {MAX_SYMBOLS} for a symbolic derivation"
        )
    x = symbolic_array("x", pp.input_shape)
    g = symbolic_array("g", pp.output_shape)
    y = np.empty(pp.output_shape, dtype=object)
    windows = pool_windows(pp)
    divisors = pool_divisors(pp) if op == "avg" else None
    for n, c in itertools.product(range(pp.input_shape[0]), range(pp.input_shape[1])):
        for pos, members in windows.items():
            elems = [x[(n, c) + m] for m in members]
            if op == "max":
                y[(n, c) + pos] = sp.Add(*[e * ind for e, ind in zip(elems, first_max_indicators(elems))])
            else:
                assert divisors is not None  # op == "avg"
                y[(n, c) + pos] = sp.Add(*elems) / divisors[pos]
    loss = sp.Add(*[gi * yi for gi, yi in zip(g.flat, y.flat)])
    dx = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(*x.shape):
        dx[idx] = sp.diff(loss, x[idx])
    return PoolDerivation(pp, op, x, g, y, loss, dx)


def derive_max_pool(
    input_shape: Sequence[int], kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1,
    ceil_mode: bool = False,
) -> PoolDerivation:
    """Max pooling with symbolic entries; ``dx`` is piecewise (tie rule: first maximal element).

    >>> d = derive_max_pool((1, 1, 3), 2, stride=1)
    >>> d.y[0, 0, 0]
    x0*Piecewise((1, x0 >= x1), (0, True)) + x1*Piecewise((1, x0 < x1), (0, True))
    >>> d.dx[0, 0, 1]
    g0*Piecewise((1, x0 < x1), (0, True)) + g1*Piecewise((1, x1 >= x2), (0, True))
    >>> [v.tolist() for v in d.at([[[1, 7, 7]]], [[[10, 20]]])]
    [[[[7, 7]]], [[[0, 30, 0]]]]
    """
    pp = pool_params(input_shape, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    return _derive("max", pp)


def derive_avg_pool(
    input_shape: Sequence[int], kernel_size: Any, *, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> PoolDerivation:
    """Average pooling with symbolic entries; ``dx[i] = sum over windows holding i of g / divisor``.

    >>> d = derive_avg_pool((1, 1, 4), 3, stride=1, padding=1, count_include_pad=False)
    >>> d.y[0, 0].tolist()
    [x0/2 + x1/2, x0/3 + x1/3 + x2/3, x1/3 + x2/3 + x3/3, x2/2 + x3/2]
    >>> d.dx[0, 0].tolist()
    [g0/2 + g1/3, g0/2 + g1/3 + g2/3, g1/3 + g2/3 + g3/2, g2/3 + g3/2]
    """
    pp = pool_params(
        input_shape, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad
    )
    return _derive("avg", pp)
