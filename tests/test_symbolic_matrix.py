"""The convolution matrix with symbolic weights (tied and zero weights, shifted kernels, the
transpose as the input gradient, parameter savings) and the 1-D index-notation derivation."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv import oracle
from refconv.symbolic import gradients as G
from refconv.symbolic import index as I
from refconv.symbolic import matrix as M
from refconv.symbolic import size_symbols

CASES = [
    ((1, 1, 3), (1, 6), {}),
    ((1, 1, 3), (1, 4), dict(padding=2, flip=True)),  # the seed's full convolution
    ((1, 1, 2), (1, 7), dict(stride=2, dilation=2)),
    ((2, 2, 2), (2, 5), dict(stride=2, padding=[(1, 0)])),
    ((4, 1, 2, 2), (2, 3, 3), dict(groups=2, stride=(1, 2))),
    ((2, 2, 2, 3), (2, 4, 4), dict(padding=[(1, 0), (0, 1)], dilation=(2, 1))),
]


@pytest.mark.parametrize("w_shape, in_shape, kw", CASES)
def test_tied_weights_shifted_rows_and_transpose(w_shape, in_shape, kw):
    m = M.conv_matrix_symbolic(w_shape, in_shape, **kw)
    # every weight symbol appears, and nothing else does: the rest of the matrix is zero
    assert m.distinct_weights() == set(m.w.flat)
    assert len(m.distinct_weights()) == int(np.prod(w_shape))
    # the matrix acts as the oracle's convolution
    x = G.symbolic_array("x", (1, *in_shape))
    y = oracle.conv(x, m.w, **kw)
    assert all(sp.expand(a - b) == 0 for a, b in zip(m.dense.dot(x.reshape(-1)), y.reshape(-1)))
    # the transpose is the input-gradient operator: sympy's dL/dx and the oracle's scatter
    d = G.derive_conv((1, *in_shape), w_shape, bias=False, **kw)
    assert list(d.w.flat) == list(m.w.flat)  # the same symbols
    g = d.g.reshape(-1)
    mt = m.input_gradient(g)
    assert all(sp.expand(a - b) == 0 for a, b in zip(mt.reshape(-1), d.dx.reshape(-1)))
    p = m.params
    okw = dict(stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups, flip=p.flip)
    scatter = oracle.conv_grad_input(g.reshape(p.output_shape), m.w, p.input_shape, **okw)
    assert all(sp.expand(a - b) == 0 for a, b in zip(mt.reshape(-1), scatter.reshape(-1)))


@settings(max_examples=40)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.booleans(), st.data())
def test_rows_are_shifted_kernels_1d(k, s, d, lo, flip, data):
    hi = data.draw(st.integers(0, 2))
    low = max(1, d * (k - 1) + 1 - lo - hi)
    n = data.draw(st.integers(low, low + 6))
    m = M.conv_matrix_symbolic((1, 1, k), (1, n), stride=s, padding=[(lo, hi)], dilation=d, flip=flip)
    kernel = list(m.w.flat)[::-1] if flip else list(m.w.flat)
    for pos in range(m.dense.shape[0]):
        assert list(m.dense[pos]) == M.shifted_kernel_row(kernel, pos, n, stride=s, padding=lo, dilation=d)


def test_seed_matrix_is_a_dense_layer_with_tied_and_zero_weights():
    m = M.conv_matrix_symbolic((1, 1, 3), (1, 4), padding=2, flip=True)
    values = dict(zip(m.w.flat, [5, 6, 7]))
    dense = np.array([[v.xreplace(values) if v != 0 else 0 for v in row] for row in m.dense])
    assert dense.dot([1, 2, 3, 4]).tolist() == [5, 16, 34, 52, 45, 28]
    assert m.nonzeros() == 12 and m.dense.size == 24 and len(m.distinct_weights()) == 3


@pytest.mark.parametrize("w_shape, in_shape, kw", [c for c in CASES if not c[2].get("flip")])
def test_parameter_savings_count_the_matrix(w_shape, in_shape, kw):
    m = M.conv_matrix_symbolic(w_shape, in_shape, **kw)
    p = m.params
    s = M.parameter_savings(
        in_shape[1:], w_shape[2:], c_in=in_shape[0], c_out=w_shape[0], stride=p.stride,
        padding=p.padding, dilation=p.dilation, groups=p.groups,
    )
    assert s["dense"] == m.dense.size
    assert s["conv"] == len(m.distinct_weights())
    assert s["ratio"] == sp.Rational(m.dense.size, len(m.distinct_weights()))


def test_parameter_savings_formula():
    n, k = size_symbols("n k")
    s = M.parameter_savings(n, k)
    assert sp.simplify(s["ratio"] - n * (n - k + 1) / k) == 0
    H, W, C, F = size_symbols("H W C F")
    s2 = M.parameter_savings((H, W), (3, 3), c_in=C, c_out=F, padding=1)
    # 'same' 3x3: dense C*H*W * F*H*W versus 9*C*F weights
    assert sp.simplify(s2["ratio"] - (H * W) ** 2 / 9) == 0


# ------------------------------------------------------------------ index notation


def test_index_substitution_steps_are_identities():
    D = I.index_derivation_1d()
    assert I.same_summand(D.dx, D.dx_dilated)
    assert I.same_summand(D.dx_dilated, D.dx_rule, change=(I.kp, I.K - 1 - I.k, I.k))
    assert not I.same_summand(D.dx_dilated, D.dx_rule, change=(I.kp, I.k, I.k))  # no flip: not the same


@settings(max_examples=25)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 4), st.integers(0, 3), st.data())
def test_index_derivation_matches_concrete_sizes(k, s, d, lo, hi, data):
    n = data.draw(st.integers(max(1, d * (k - 1) + 1 - lo - hi), 7))
    assert I.verify_index_derivation(n, k, stride=s, padding=(lo, hi), dilation=d) == []
