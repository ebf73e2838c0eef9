"""Pooling whose windows share no element and read no padding (2x2 stride 2, stride past the window, dilated
windows): the gradients assigned per tap equal the oracle bit for bit, ties, signed zeros, NaN and infinities
included."""

import numpy as np
import pytest

from refconv import fast, oracle

SHAPES = [
    ((3, 2, 8, 8), dict(kernel_size=2)),
    ((2, 3, 9, 7), dict(kernel_size=2)),          # trailing rows no window reads
    ((2, 2, 9, 12), dict(kernel_size=(3, 4))),
    ((4, 3, 10), dict(kernel_size=5)),
    ((1, 2, 4, 6, 4), dict(kernel_size=2)),
    ((2, 2, 11, 11), dict(kernel_size=2, stride=3)),  # elements between the windows
    ((2, 2, 12, 12), dict(kernel_size=2, stride=4, dilation=2)),
]


def _values(rng, shape, kind):
    if kind == "ties":  # ReLU-like: many zeros, small integers
        return np.maximum(rng.integers(-2, 3, shape), 0).astype(np.float64)
    if kind == "zeros":  # signed zeros only: the first of equal maxima must win
        return np.where(rng.random(shape) < 0.5, -0.0, 0.0)
    a = rng.integers(-3, 4, shape).astype(np.float64)
    flat = a.reshape(-1)
    flat[rng.integers(a.size, size=3)] = np.nan
    flat[rng.integers(a.size, size=3)] = np.inf
    flat[rng.integers(a.size, size=3)] = -np.inf
    return a


def _same_bits(a, b):
    """The same values, the same signs of zero, NaN in the same places."""
    assert a.dtype == b.dtype and a.shape == b.shape
    nan = np.isnan(a)
    assert np.array_equal(nan, np.isnan(b))
    assert np.array_equal(a[~nan], b[~nan]) and np.array_equal(np.signbit(a[~nan]), np.signbit(b[~nan]))


@pytest.mark.parametrize("shape,kw", SHAPES)
@pytest.mark.parametrize("kind", ["ties", "zeros", "special"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_and_its_gradient_equal_the_oracle(shape, kw, kind, dtype):
    rng = np.random.default_rng(0)
    x = _values(rng, shape, kind).astype(dtype)
    y = oracle.max_pool(x, **kw)
    _same_bits(fast.max_pool(x, **kw), y)
    dy = rng.integers(-3, 4, y.shape).astype(dtype)
    if kind == "special":
        dy.reshape(-1)[:2] = (np.inf, np.nan)  # a selection keeps them where they go
    _same_bits(fast.max_pool_grad(dy, x, **kw), oracle.max_pool_grad(dy, x, **kw))


@pytest.mark.parametrize("shape,kw", SHAPES)
def test_average_pooling_gradient_equals_the_oracle(shape, kw):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    kw = {k: v for k, v in kw.items() if k != "dilation"}  # (fast.avg_pool_grad takes no dilation)
    dy = rng.integers(-3, 4, oracle.avg_pool(x, **kw).shape).astype(np.float64)
    dy.reshape(-1)[0] = -0.0
    _same_bits(fast.avg_pool_grad(dy, shape, **kw), oracle.avg_pool_grad(dy, shape, **kw))


def test_integers_stay_exact():
    rng = np.random.default_rng(2)
    x = rng.integers(-5, 6, (2, 3, 8, 8))
    dy = rng.integers(-5, 6, (2, 3, 4, 4))
    assert np.array_equal(fast.max_pool(x, 2), oracle.max_pool(x, 2))
    assert np.array_equal(fast.max_pool_grad(dy, x, 2), oracle.max_pool_grad(dy, x, 2))
    assert fast.max_pool_grad(dy, x, 2).dtype == oracle.max_pool_grad(dy, x, 2).dtype
