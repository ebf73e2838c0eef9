"""Infinities and NaNs stay where the definition puts them: the fast engine never multiplies one by a zero that
stands for no term (padding's zeros of an input gradient, the extended layouts' discarded positions)."""

import numpy as np
import pytest

from refconv import fast, oracle

GEOMETRIES = [
    # (x shape, w shape, keywords): small planes (flat taps), 1x1 outputs, wide channels (identity), strided,
    # depthwise, large kernels ('auto' may pick the FFT), 3x3 wide layers ('auto' may pick Winograd)
    ((3, 4, 10, 10), (5, 4, 3, 3), dict()),
    ((3, 4, 10, 10), (5, 4, 3, 3), dict(padding=1)),
    ((4, 16, 5, 5), (8, 16, 5, 5), dict()),
    ((2, 40, 12, 12), (40, 40, 3, 3), dict(padding=1)),
    ((2, 4, 11, 11), (6, 4, 3, 3), dict(stride=2, padding=1)),
    ((2, 8, 12, 12), (8, 1, 3, 3), dict(groups=8, padding=1)),
    ((1, 2, 40, 40), (2, 2, 15, 15), dict(padding=7)),
    ((2, 32, 24, 24), (32, 32, 3, 3), dict(padding=1)),
]


def _integer_valued(rng, shape):
    return rng.integers(-3, 4, shape).astype(np.float64)


def _same_classes(got, want):
    """NaN where NaN, the same infinities, and the finite values equal (integer-valued data: exact)."""
    assert np.array_equal(np.isnan(got), np.isnan(want))
    fin = ~np.isnan(want)
    assert np.array_equal(got[fin], want[fin])


@pytest.mark.parametrize("xs,ws,kw", GEOMETRIES)
@pytest.mark.parametrize("where", ["w", "x", "dy"])
@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_gradients_and_forward_keep_non_finite_values_in_place(xs, ws, kw, where, value):
    rng = np.random.default_rng(0)
    x, w = _integer_valued(rng, xs), _integer_valued(rng, ws)
    dy = _integer_valued(rng, oracle.conv(x, w, **kw).shape)
    arr = {"x": x, "w": w, "dy": dy}[where]
    arr.flat[rng.integers(arr.size)] = value
    arr.flat[-1] = -value
    # each function whose operands hold the value ('auto' then computes direct sums: exact on integers)
    with np.errstate(invalid="ignore", over="ignore"):
        if where in ("x", "w"):
            _same_classes(fast.conv(x, w, **kw), oracle.conv(x, w, **kw))
        if where in ("dy", "w"):
            _same_classes(fast.conv_grad_input(dy, w, xs, **kw), oracle.conv_grad_input(dy, w, xs, **kw))
        if where in ("x", "dy"):
            _same_classes(fast.conv_grad_weight(x, dy, ws, **kw), oracle.conv_grad_weight(x, dy, ws, **kw))


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding=1)])
@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_transposed_convolution_keeps_a_non_finite_weight_in_place(kw, value):
    rng = np.random.default_rng(1)
    x, w = _integer_valued(rng, (2, 4, 7, 7)), _integer_valued(rng, (4, 3, 3, 3))
    w[1, 2, 0, 0] = value
    with np.errstate(invalid="ignore"):
        _same_classes(fast.conv_transpose(x, w, **kw), oracle.conv_transpose(x, w, **kw))


def test_one_dimensional_and_three_dimensional_gradients_too():
    rng = np.random.default_rng(2)
    for xs, ws in (((2, 3, 12), (4, 3, 3)), ((1, 2, 5, 6, 5), (3, 2, 3, 3, 3))):
        x, w = _integer_valued(rng, xs), _integer_valued(rng, ws)
        dy = _integer_valued(rng, oracle.conv(x, w, padding=1).shape)
        w.flat[0] = np.inf
        with np.errstate(invalid="ignore"):
            _same_classes(fast.conv_grad_input(dy, w, xs, padding=1), oracle.conv_grad_input(dy, w, xs, padding=1))
