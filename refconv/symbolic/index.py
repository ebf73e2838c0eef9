r"""The general-size 1-D derivation in index notation: sums and Kronecker deltas.

Sizes are symbols: kernel ``K``, outputs ``O``, stride ``s``, dilation ``d``,
left padding ``lo`` (``x`` is zero outside ``[0, n)``):

.. math::

    y_p = \sum_{k=0}^{K-1} w_k\, x_{ps + kd - lo}, \qquad L = \sum_{p=0}^{O-1} g_p\, y_p

sympy differentiates the sums (``diff(x[j], x[i]) = KroneckerDelta(i, j)``):

.. math::

    \frac{\partial L}{\partial x_i} = \sum_{p}\sum_{k} g_p\, w_k\, \delta_{i,\; ps + kd - lo}

The index substitution that turns this into the rule, step by step:

1. ``δ(i, ps + kd - lo) = δ(i + lo - kd, ps)``: the inner sum over ``p`` is
   ``gd[i + lo - kd]``, where ``gd[j] = Σ_p g_p δ(j, ps)`` is ``g`` with ``s - 1``
   zeros between samples (input dilation = stride);
2. ``k = K - 1 - k'``: ``Σ_{k'} w_{K-1-k'} gd[i + lo - d(K-1) + k'd]``, the
   kernel flipped;
3. ``gp[j] = gd[j - (d(K-1) - lo)]``: ``Σ_{k'} w_{K-1-k'} gp[i + k'd]``, a
   correlation with dilation ``d`` and stride 1 of ``gd`` padded by
   ``d(K-1) - lo`` on the left (and ``d(K-1) - hi + r`` on the right, so that
   ``i`` reaches ``n - 1``).

The weight gradient needs one step: ``∂L/∂w_j = Σ_p g_p x_{jd + ps - lo}``, the
forward index with ``j`` in the place of ``p``: the output index now moves by
``d`` and the tap (``p``) by ``s``, stride and dilation trading places.

Each step is a sympy expression; :func:`verify_index_derivation` checks them
against each other and against :func:`refconv.symbolic.gradients.derive_conv`
for concrete sizes, the sums written out term by term (sympy's delta
summation, ``Sum.doit``, solves ``δ(j, ps)`` for ``p`` without checking that
``s`` divides ``j``, and would give ``g[j/s]`` for every ``j``).

>>> D = index_derivation_1d()
>>> D.dx
Sum(g[p]*Sum(KroneckerDelta(i, d*k - lo + p*s)*w[k], (k, 0, K - 1)), (p, 0, O - 1))
>>> D.dx_rule
Sum(w[K - k' - 1]*Sum(KroneckerDelta(p*s, d*k' - d*(K - 1) + i + lo)*g[p], (p, 0, O - 1)), (k', 0, K - 1))
>>> verify_index_derivation(7, 3, stride=2, padding=(1, 0))
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from .. import shapes
from .gradients import derive_conv

__all__ = ["IndexDerivation", "index_derivation_1d", "verify_index_derivation", "same_summand"]

i, j, p, k = sp.symbols("i j p k", integer=True)
kp = sp.Symbol("k'", integer=True)
K, O, s, d = sp.symbols("K O s d", integer=True, positive=True)
lo = sp.Symbol("lo", integer=True, nonnegative=True)
x, w, g = sp.IndexedBase("x"), sp.IndexedBase("w"), sp.IndexedBase("g")


@dataclass(frozen=True)
class IndexDerivation:
    """The 1-D derivation's expressions, from the forward sum to the rules."""

    y: sp.Expr
    loss: sp.Expr
    dx: sp.Expr
    dx_dilated: sp.Expr
    dx_rule: sp.Expr
    dw: sp.Expr
    dw_rule: sp.Expr

    def steps(self) -> list[tuple[str, sp.Expr]]:
        """``(label, expression)`` pairs in the order of the derivation."""
        return [
            ("y_p", self.y),
            ("L", self.loss),
            ("dL/dx_i (sympy)", self.dx),
            ("dL/dx_i, g dilated by s", self.dx_dilated),
            ("dL/dx_i, k = K-1-k' (the rule)", self.dx_rule),
            ("dL/dw_j (sympy)", self.dw),
            ("dL/dw_j (the rule)", self.dw_rule),
        ]


def index_derivation_1d() -> IndexDerivation:
    """Build the expressions of the module docstring (derivatives by :func:`sympy.diff`)."""
    y = sp.Sum(w[k] * x[p * s + k * d - lo], (k, 0, K - 1))
    loss = sp.Sum(g[p] * y, (p, 0, O - 1))
    dx = sp.diff(loss, x[i])
    dx_dilated = sp.Sum(w[k] * sp.Sum(g[p] * sp.KroneckerDelta(i + lo - k * d, p * s), (p, 0, O - 1)), (k, 0, K - 1))
    dx_rule = sp.Sum(
        w[K - 1 - kp] * sp.Sum(g[p] * sp.KroneckerDelta(i + lo - d * (K - 1) + kp * d, p * s), (p, 0, O - 1)),
        (kp, 0, K - 1),
    )
    dw = sp.diff(loss, w[j])
    dw_rule = sp.Sum(g[p] * x[j * d + p * s - lo], (p, 0, O - 1))
    return IndexDerivation(y, loss, dx, dx_dilated, dx_rule, dw, dw_rule)


def _canonical_delta(e: sp.Expr) -> sp.Expr:
    # δ(a, b) depends on a - b only, up to sign
    def canon(a: sp.Expr, b: sp.Expr) -> sp.Expr:
        diff = sp.expand(a - b)
        return sp.KroneckerDelta(min(diff, -diff, key=sp.default_sort_key), 0)

    return e.replace(sp.KroneckerDelta, canon)


def _flatten(e: sp.Expr) -> tuple[sp.Expr, list]:
    """Nested sums -> (summand, limits); finite sums commute, so the order of the limits is free."""
    if isinstance(e, sp.Sum):
        inner, lims = _flatten(e.function)
        return inner, list(e.limits) + lims
    if isinstance(e, sp.Mul):
        parts = [_flatten(f) for f in e.args]
        return sp.Mul(*[q for q, _ in parts]), [lim for _, ls in parts for lim in ls]
    return e, []


def same_summand(a: sp.Expr, b: sp.Expr, change: tuple | None = None) -> bool:
    """Whether two nested sums have the same summand over the same limits.

    ``change = (k', expr, k)``: first change ``b``'s summation variable ``k'``
    to ``k`` by ``k' = expr``; the caller states that ``expr`` maps the range
    of ``k`` onto that of ``k'`` (``k' = K - 1 - k`` maps ``[0, K - 1]`` onto itself).

    >>> D = index_derivation_1d()
    >>> same_summand(D.dx, D.dx_dilated)
    True
    >>> same_summand(D.dx_dilated, D.dx_rule, change=(kp, K - 1 - k, k))
    True
    >>> same_summand(D.dx, D.dx_rule)
    False
    """
    fa, la = _flatten(a)
    fb, lb = _flatten(b)
    if change is not None:
        old, expr, new = change
        fb = fb.xreplace({old: expr})
        lb = [(new, first, last) if v == old else (v, first, last) for v, first, last in lb]
    if sorted(la, key=sp.default_sort_key) != sorted(lb, key=sp.default_sort_key):
        return False
    return sp.expand(_canonical_delta(fa) - _canonical_delta(fb)) == 0


def _unroll(e: sp.Expr) -> sp.Expr:
    """Write out every sum with numeric limits term by term (no delta solving)."""
    if isinstance(e, sp.Sum):
        body = e.function
        for var, first, last in e.limits:
            body = sp.Add(*[body.xreplace({var: sp.Integer(v)}) for v in range(int(first), int(last) + 1)])
        return _unroll(body)
    if e.args:
        return e.func(*[_unroll(a) for a in e.args])
    return e


def _concrete(e: sp.Expr, sizes: dict, n: int) -> sp.Expr:
    """Numbers for the sizes and the free index, sums written out, x zero outside [0, n), indexed -> plain symbols."""
    v = _unroll(e.xreplace({key: sp.Integer(val) for key, val in sizes.items()}))
    table = {}
    for a in v.atoms(sp.Indexed):
        idx = int(a.indices[0])
        name = str(a.base)
        if name == "x" and not 0 <= idx < n:
            table[a] = sp.Integer(0)
        else:
            table[a] = sp.Symbol(f"{name}{idx}", real=True)
    return v.xreplace(table)


def verify_index_derivation(n: int, kernel: int, *, stride: int = 1, padding: Any = 0, dilation: int = 1) -> list[str]:
    """Evaluate every step for concrete sizes and compare with :func:`derive_conv`; returns the disagreements.

    >>> verify_index_derivation(5, 2, stride=3, dilation=2)
    []
    """
    pad = tuple(padding) if isinstance(padding, (tuple, list)) else (padding, padding)
    out = shapes.conv_output_size(n, kernel, stride, pad, dilation)
    ref = derive_conv((1, 1, n), (1, 1, kernel), stride=stride, padding=[pad], dilation=dilation, bias=False)
    D = index_derivation_1d()
    sizes = {K: kernel, O: out, s: stride, d: dilation, lo: pad[0]}
    bad = []
    for pos in range(out):
        got = _concrete(D.y.subs(p, pos), sizes, n)
        if sp.expand(got - ref.y[0, 0, pos]) != 0:
            bad.append(f"y[{pos}]: {got} != {ref.y[0, 0, pos]}")
    for name, expr in (("dx", D.dx), ("dx_dilated", D.dx_dilated), ("dx_rule", D.dx_rule)):
        for at in range(n):
            got = _concrete(expr.subs(i, at), sizes, n)
            if sp.expand(got - ref.dx[0, 0, at]) != 0:
                bad.append(f"{name}[{at}]: {got} != {ref.dx[0, 0, at]}")
    for name, expr in (("dw", D.dw), ("dw_rule", D.dw_rule)):
        for at in range(kernel):
            got = _concrete(expr.subs(j, at), sizes, n)
            if sp.expand(got - ref.dw[0, 0, at]) != 0:
                bad.append(f"{name}[{at}]: {got} != {ref.dw[0, 0, at]}")
    return bad
