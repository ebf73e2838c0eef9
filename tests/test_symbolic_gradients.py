"""Backprop derived by sympy equals the closed-form rules (evaluated by the oracle's general
operation) and the oracle's own gradient functions, over a grid of layer configurations."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv import oracle
from refconv.params import ConvParamError, conv_params
from refconv.symbolic import gradients as G

# (input_shape, weight_shape, keywords): 1-D and 2-D, stride, dilation, asymmetric padding,
# groups > 1 with several channels per group, r > 0 (unread rows), flipped kernels, batch > 1,
# and lo > d*(K-1) (the rule's left padding is negative: it crops)
GRID = [
    ((1, 1, 4), (1, 1, 3), {}),
    ((1, 1, 7), (1, 1, 3), dict(stride=2, padding=[(1, 0)])),  # r = 1
    ((1, 1, 7), (1, 1, 2), dict(stride=3)),  # r = 2 (unread input rows)
    ((1, 1, 9), (1, 1, 3), dict(dilation=2, stride=2, padding=[(0, 3)])),  # r = 2 with right padding
    ((1, 1, 10), (1, 1, 3), dict(stride=3, dilation=2)),  # s != d; r = 2 >= d: the correlation has K + 1 taps
    ((2, 4, 6), (4, 2, 2), dict(stride=2, padding=[(0, 2)], dilation=2, groups=2)),
    ((1, 6, 5), (4, 3, 3), dict(groups=2, padding=[(2, 1)], stride=2)),  # 3 input, 2 output channels per group
    ((1, 1, 5), (1, 1, 2), dict(padding=[(3, 0)])),  # lo = 3 > d*(K-1) = 1
    ((1, 2, 6), (2, 2, 3), dict(stride=3, flip=True)),
    ((1, 1, 4, 4), (1, 1, 2, 2), {}),
    ((1, 4, 5, 4), (6, 2, 2, 3), dict(stride=(2, 1), padding=[(1, 0), (0, 2)], dilation=(1, 2), groups=2)),
    ((1, 2, 5, 5), (2, 1, 3, 2), dict(stride=(2, 3), padding=[(0, 1), (1, 1)], groups=2, flip=True)),  # r > 0 on both axes
]


def _ids(case):
    x, w, kw = case
    return f"x{x}-w{w}-" + ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.fixture(scope="module", params=GRID, ids=[_ids(c) for c in GRID])
def derivation(request):
    x_shape, w_shape, kw = request.param
    return G.derive_conv(x_shape, w_shape, **kw)


def test_grid_covers_unread_rows_and_negative_rule_padding():
    unread = [conv_params(x, w, **kw).unread for x, w, kw in GRID]
    assert any(r > 0 for rs in unread for r in rs)
    # stride and dilation differ (so trading them matters) and r >= d (so the weight rule crops)
    assert any(
        s != d and s > 1 and d > 1 and r >= d
        for x, w, kw in GRID
        for s, d, r in zip(conv_params(x, w, **kw).stride, conv_params(x, w, **kw).dilation, conv_params(x, w, **kw).unread)
    )
    assert any(lo < 0 for x, w, kw in GRID for lo, _ in G.grad_input_padding(conv_params(x, w, **kw)))
    assert any(conv_params(x, w, **kw).groups > 1 and w[1] > 1 and w[0] // conv_params(x, w, **kw).groups > 1
               for x, w, kw in GRID)


def test_sympy_gradients_equal_closed_form_rules(derivation):
    assert derivation.mismatches() == []


def test_sympy_gradients_equal_oracle_gradients(derivation):
    p = derivation.params
    kw = dict(stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups, flip=p.flip)
    dx = oracle.conv_grad_input(derivation.g, derivation.w, p.input_shape, **kw)
    dw = oracle.conv_grad_weight(derivation.x, derivation.g, p.weight_shape, **kw)
    db = oracle.conv_grad_bias(derivation.g)
    for got, want in ((derivation.dx, dx), (derivation.dw, dw), (derivation.db, db)):
        assert got.shape == want.shape
        assert all(sp.expand(a - b) == 0 for a, b in zip(got.flat, want.flat))


def test_unread_rows_get_exact_zero_gradient():
    d = G.derive_conv((1, 1, 8), (1, 1, 2), stride=3)  # windows [0, 1], [3, 4], [6, 7]
    assert d.params.unread == (0,)
    assert d.dx[0, 0, 7] != 0
    d = G.derive_conv((1, 1, 7), (1, 1, 2), stride=3)  # O = 2: rows 5 and 6 are never read
    assert d.params.unread == (2,)
    assert d.dx[0, 0].tolist()[-2:] == [0, 0]
    assert d.dx[0, 0, 2] == 0  # between windows [0, 1] and [3, 4]
    assert d.mismatches() == []


def test_seed_chain_rule_and_update():
    # x = [1, 2, 3, 4], W = [5, 6, 7], full convolution (the seed's x * W)
    d = G.derive_conv((1, 1, 4), (1, 1, 3), padding=2, flip=True, bias=False)
    values = {s: v for s, v in zip(d.x.flat, [1, 2, 3, 4])}
    values.update({s: v for s, v in zip(d.w.flat, [5, 6, 7])})
    assert [e.xreplace(values) for e in d.y.flat] == [5, 16, 34, 52, 45, 28]
    # with L = sum(y) (g = 1): dL/dW_k = sum(x) for every k, since every x meets every tap
    ones = {s: 1 for s in d.g.flat}
    grad = [e.xreplace({**values, **ones}) for e in d.dw.flat]
    assert grad == [10, 10, 10]
    lr = sp.Rational(1, 10)
    assert [wv - lr * gv for wv, gv in zip([5, 6, 7], grad)] == [4, 5, 6]


def test_transposed_kernel_layout():
    w = np.arange(4 * 3 * 2).reshape(4, 3, 2)
    wt = G.transposed_kernel(w, groups=2)
    assert wt.shape == (6, 2, 2)
    # wt[g*Cg + c, j] = w[g*Og + j, c] with Cg = 3, Og = 2
    for g in range(2):
        for c in range(3):
            for j in range(2):
                assert np.array_equal(wt[g * 3 + c, j], w[g * 2 + j, c])


def test_rules_on_integers_against_oracle_gradients():
    rng = np.random.default_rng(7)
    for x_shape, w_shape, kw in GRID:
        p = conv_params(x_shape, w_shape, **kw)
        x = rng.integers(-5, 6, size=x_shape)
        w = rng.integers(-5, 6, size=w_shape)
        g = rng.integers(-5, 6, size=p.output_shape)
        okw = dict(stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups, flip=p.flip)
        assert np.array_equal(G.grad_input_rule(g, w, p), oracle.conv_grad_input(g, w, x_shape, **okw))
        assert np.array_equal(G.grad_weight_rule(x, g, p), oracle.conv_grad_weight(x, g, w_shape, **okw))
        assert np.array_equal(G.grad_bias_rule(g), oracle.conv_grad_bias(g))


@st.composite
def small_1d_layers(draw):
    k = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    s = draw(st.integers(1, 3))
    lo, hi = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    groups = draw(st.sampled_from([1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    n = draw(st.integers(max(1, d * (k - 1) + 1 - lo - hi), 6))
    flip = draw(st.booleans())
    return (1, cin, n), (cout, cin // groups, k), dict(stride=s, padding=[(lo, hi)], dilation=d, groups=groups, flip=flip)


@settings(max_examples=15)
@given(small_1d_layers())
def test_random_1d_layers_sympy_equals_rules(case):
    x_shape, w_shape, kw = case
    assert G.derive_conv(x_shape, w_shape, **kw).mismatches() == []


def test_size_limit_is_immediate_and_states_the_limit():
    with pytest.raises(ConvParamError, match=f"limit of {G.MAX_SYMBOLS}"):
        G.derive_conv((1, 3, 32, 32), (6, 3, 5, 5))


def test_bad_parameters_are_reported_by_the_parameter_model():
    with pytest.raises(ConvParamError, match="stride=0"):
        G.derive_conv((1, 1, 4), (1, 1, 3), stride=0)


@pytest.mark.parametrize(
    "x_shape, w_shape, kw",
    [
        ((1, 1, 3), (1, 1, 3), dict(stride=2, padding=1, output_padding=1)),
        ((1, 4, 2), (4, 2, 2), dict(stride=3, groups=2, dilation=2, padding=[(1, 0)])),
        ((1, 2, 2, 2), (2, 1, 2, 3), dict(stride=(2, 1), output_padding=(1, 0))),
    ],
)
def test_transposed_convolution_gradients_are_the_forward_pass(x_shape, w_shape, kw):
    d = G.derive_conv_transpose(x_shape, w_shape, **kw)
    assert d.mismatches() == []
    assert d.dx.shape == x_shape and d.dw.shape == w_shape
