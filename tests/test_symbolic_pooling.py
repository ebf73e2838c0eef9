"""Pooling gradients derived by sympy (max: piecewise with the tie rule; average: linear) agree with
the oracle's forward values and its gradient functions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv import oracle
from refconv.params import ConvParamError
from refconv.symbolic import pooling as P


def _rat(v):
    return sp.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else sp.sympify(v)


@st.composite
def pool_cases(draw, *, dims=1):
    k = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    s = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    pad = tuple((draw(st.integers(0, ki // 2)), draw(st.integers(0, ki // 2))) for ki in k)
    n = tuple(draw(st.integers(max(1, ki - lo - hi), 5 if dims == 1 else 3)) for ki, (lo, hi) in zip(k, pad))
    ceil_mode = draw(st.booleans())
    return (1, draw(st.integers(1, 2)), *n), dict(kernel_size=k, stride=s, padding=list(pad), ceil_mode=ceil_mode)


@settings(max_examples=25)
@given(pool_cases(dims=1) | pool_cases(dims=2), st.data())
def test_max_pool_piecewise_gradient_equals_oracle(case, data):
    shape, kw = case
    k = kw.pop("kernel_size")
    d = P.derive_max_pool(shape, k, **kw)
    # values from a tiny range: ties inside windows are common
    x = np.array(data.draw(st.lists(st.integers(0, 2), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))).reshape(shape)
    g = np.arange(1, d.g.size + 1).reshape(d.g.shape) * 10
    y, dx = d.at(x, g)
    assert np.array_equal(y.astype(np.int64), oracle.max_pool(x, k, **kw))
    assert np.array_equal(dx.astype(np.int64), oracle.max_pool_grad(g, x, k, **kw))


def test_max_pool_tie_goes_to_first_element_in_row_major_order():
    d = P.derive_max_pool((1, 1, 2, 2), 2)
    x = np.array([[[[3, 5], [5, 1]]]])  # the two 5s tie; (0, 1) comes first in row-major order
    y, dx = d.at(x, [[[[7]]]])
    assert y.tolist() == [[[[5]]]]
    assert dx.tolist() == [[[[0, 7], [0, 0]]]]


def test_piecewise_agrees_with_sympy_max_away_from_ties():
    a, b, c = sp.symbols("a b c", real=True)
    pw = P.first_max_piecewise([a, b, c])
    mx = sp.Max(a, b, c)
    for vals in ([1, 2, 3], [3, 1, 2], [2, 3, 1], [-1, -5, 0]):
        table = dict(zip((a, b, c), vals))
        assert pw.xreplace(table) == mx.xreplace(table)
        for var in (a, b, c):
            # d Max / d var is a Heaviside product; at distinct values it is 0 or 1, as the Piecewise's
            assert sp.diff(pw, var).xreplace(table) == sp.diff(mx, var).xreplace(table)


@settings(max_examples=25)
@given(pool_cases(dims=1) | pool_cases(dims=2), st.booleans())
def test_avg_pool_gradient_equals_oracle(case, count_include_pad):
    shape, kw = case
    k = kw.pop("kernel_size")
    d = P.derive_avg_pool(shape, k, count_include_pad=count_include_pad, **kw)
    rng = np.random.default_rng(0)
    x = rng.integers(-9, 10, size=shape)
    g = rng.integers(-9, 10, size=d.g.shape)
    y, dx = d.at(x, g)
    want_y = oracle.avg_pool(x, k, count_include_pad=count_include_pad, exact=True, **kw)
    want_dx = oracle.avg_pool_grad(g, shape, k, count_include_pad=count_include_pad, exact=True, **kw)
    assert [sp.sympify(v) for v in y.flat] == [_rat(v) for v in want_y.flat]
    assert [sp.sympify(v) for v in dx.flat] == [_rat(v) for v in want_dx.flat]


def test_avg_pool_gradient_formula_by_hand():
    # 4 inputs, window 2, stride 1: x1 and x2 are in two windows
    d = P.derive_avg_pool((1, 1, 4), 2, stride=1)
    g0, g1, g2 = d.g.flat
    assert d.dx[0, 0].tolist() == [g0 / 2, g0 / 2 + g1 / 2, g1 / 2 + g2 / 2, g2 / 2]


def test_pool_size_limit():
    with pytest.raises(ConvParamError, match="limit of"):
        P.derive_max_pool((1, 3, 32, 32), 2)


def test_indicator_form_is_the_first_max_piecewise():
    import itertools

    xs = sp.symbols("a b c", real=True)
    pw = P.first_max_piecewise(xs)
    ind = P.first_max_indicators(xs)
    for vals in itertools.product(range(3), repeat=3):
        table = dict(zip(xs, vals))
        chosen = [int(i.xreplace(table)) for i in ind]
        assert sum(chosen) == 1
        first = vals.index(max(vals))
        assert chosen[first] == 1
        assert pw.xreplace(table) == sum(x * c for x, c in zip(vals, chosen)) == max(vals)
