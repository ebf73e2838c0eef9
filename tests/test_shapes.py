"""Shape formulas: checked against brute-force window counting, the oracle, and the seed figures."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refconv import oracle, shapes
from refconv.params import ConvParamError


def count_windows(n, k, s, lo, hi, d):
    """Brute force: window starts p*s with the dilated kernel inside the padded input."""
    total = n + lo + hi
    return sum(1 for start in range(0, total, s) if start + d * (k - 1) < total)


sizes = st.integers(0, 30)
small = st.integers(1, 6)


@given(sizes, small, small, st.integers(0, 5), st.integers(0, 5), small)
def test_conv_output_size_counts_windows(n, k, s, lo, hi, d):
    assert shapes.conv_output_size(n, k, s, (lo, hi), d) == count_windows(n, k, s, lo, hi, d)


def count_ceil_windows(n, k, s, lo, hi, d):
    """Brute force ceil_mode: windows at multiples of the stride that overhang the padded input by less
    than one stride (so the last partial window is kept) and do not start in the right padding."""
    span, total = d * (k - 1) + 1, n + lo + hi
    return sum(1 for start in range(0, total, s) if start + span - s < total and start < n + lo)


@given(st.integers(1, 30), small, small, small, st.data())
def test_pool_output_size_ceil_rule(n, k, s, d, data):
    span = d * (k - 1) + 1
    lo = data.draw(st.integers(0, span // 2))
    hi = data.draw(st.integers(0, span // 2))
    assert shapes.pool_output_size(n, k, s, (lo, hi), d) == count_windows(n, k, s, lo, hi, d)
    assert shapes.pool_output_size(n, k, s, (lo, hi), d, ceil_mode=True) == count_ceil_windows(n, k, s, lo, hi, d)


@given(st.integers(1, 12), small, small, st.integers(0, 3), st.integers(0, 3), small)
def test_transposed_size_inverts_conv(n, k, s, lo, hi, d):
    """Every size reachable by output_padding maps back to n under the forward convolution (s >= d)."""
    base = (n - 1) * s + d * (k - 1) + 1 - lo - hi
    if base < 1:
        return
    for m in shapes.conv_transpose_reachable_sizes(n, k, s, (lo, hi), d):
        op = shapes.output_padding_for(n, m, k, s, (lo, hi), d)
        assert shapes.conv_transpose_output_size(n, k, s, (lo, hi), op, d) == m
        if op < s:
            assert shapes.conv_output_size(m, k, s, (lo, hi), d) == n


@given(st.integers(1, 12), small, small, st.integers(0, 3), st.integers(0, 3), small)
def test_conv_input_sizes_are_exactly_the_preimage(out, k, s, lo, hi, d):
    pre = shapes.conv_input_sizes(out, k, s, (lo, hi), d)
    for n in range(0, pre.stop + 3 * s):
        assert (shapes.conv_output_size(n, k, s, (lo, hi), d) == out) == (n in pre)


@given(st.integers(1, 40), small, small, small, st.booleans())
def test_same_padding(n, k, s, d, lower):
    lo, hi = shapes.same_padding(n, k, s, d, lower)
    assert lo >= 0 and hi >= 0 and abs(lo - hi) <= 1
    assert (lo >= hi) if lower else (hi >= lo)
    assert shapes.conv_output_size(n, k, s, (lo, hi), d) == -(-n // s)


def test_seed_figures():
    assert shapes.conv_output_size(32, 5) == 28          # 32x32x3 input, 5x5x3 filter
    assert 28 * 28 == 784 and 5 * 5 * 3 == 75            # positions and multiplications each
    assert shapes.conv_output_size(227, 11, stride=4) == 55
    assert shapes.conv_output_size(4, 3, padding=2) == 6  # full 1-D example


def test_alexnet_224_warns_about_unread_columns():
    with pytest.warns(shapes.UnreadInputWarning, match="last 1 input row"):
        g = shapes.conv_geometry(224, 11, stride=4, warn=True)
    assert (g.output, g.unread_input) == (54, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert shapes.conv_geometry(227, 11, stride=4, warn=True).unread == 0


def test_receptive_field_by_impulse():
    """The receptive field equals the support of the input gradient of one output, by the oracle."""
    layers = [(3, 2, 1, 1), (3, 1, 1, 2), (2, 2, 0, 1)]
    rf = shapes.receptive_field(layers)
    n = 40
    sizes = [n]
    for k, s, p, d in layers:
        sizes.append(shapes.conv_output_size(sizes[-1], k, s, p, d))
    # backpropagate an impulse at an interior output through ones-kernels
    g = np.zeros((1, 1, sizes[-1]), dtype=np.int64)
    g[0, 0, sizes[-1] // 2] = 1
    for (k, s, p, d), m in zip(reversed(layers), reversed(sizes[:-1])):
        g = oracle.conv_grad_input(g, np.ones((1, 1, k), dtype=np.int64), (1, 1, m), stride=s, padding=p, dilation=d)
    support = np.flatnonzero(g[0, 0])
    assert support[-1] - support[0] + 1 == rf[-1].size
    assert rf[-1].jump == 2 * 1 * 2


@pytest.mark.parametrize("call", ["conv_output_size(-1, 3)", "conv_output_size(5, 0)", "pool_output_size(5, 2, 0)",
                                  "same_padding(5, 3, stride=True)", "conv_output_size(5, 3, padding=(1, -1))"])
def test_shape_errors(call):
    with pytest.raises(ConvParamError):
        eval(call, vars(shapes))
