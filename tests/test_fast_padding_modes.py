"""padding_mode in the fast engine: conv and both gradients equal the oracle exactly on integers, refusals alike."""

from __future__ import annotations

import numpy as np
import pytest

from refconv import fast, oracle
from refconv.params import ConvParamError

MODES = ("zeros", "reflect", "replicate", "circular")

# (spatial, kernel, stride, dilation, padding pairs, groups): asymmetric pads within every mode's limits
GEOMETRIES = {
    1: ((6,), (3,), (2,), (1,), ((2, 1),), 1),
    2: ((5, 4), (3, 2), (1, 2), (2, 1), ((1, 2), (3, 0)), 2),
    3: ((4, 3, 3), (2, 2, 2), (1, 1, 2), (1, 2, 1), ((1, 1), (0, 2), (2, 1)), 1),
}


def _operands(dims: int, seed: int):
    spatial, kernel, stride, dilation, pads, groups = GEOMETRIES[dims]
    rng = np.random.default_rng(seed)
    x = rng.integers(-5, 6, size=(2, 2 * groups, *spatial))
    w = rng.integers(-5, 6, size=(2 * groups, 2, *kernel))
    kw = dict(stride=stride, dilation=dilation, padding=pads, groups=groups)
    return x, w, kw


@pytest.mark.parametrize("dims", (1, 2, 3))
@pytest.mark.parametrize("mode", MODES)
def test_forward_and_gradients_equal_the_oracle_on_integers(dims, mode):
    x, w, kw = _operands(dims, 10 * dims + MODES.index(mode))
    b = np.arange(w.shape[0]) - 1
    y = oracle.conv(x, w, b, padding_mode=mode, **kw)
    assert np.array_equal(fast.conv(x, w, b, padding_mode=mode, **kw), y)
    dy = np.random.default_rng(dims).integers(-4, 5, size=y.shape)
    dx = oracle.conv_grad_input(dy, w, x.shape, padding_mode=mode, **kw)
    dw = oracle.conv_grad_weight(x, dy, w.shape, padding_mode=mode, **kw)
    got_dx = fast.conv_grad_input(dy, w, x.shape, padding_mode=mode, **kw)
    got_dw = fast.conv_grad_weight(x, dy, w.shape, padding_mode=mode, **kw)
    assert got_dx.dtype == np.int64 and np.array_equal(got_dx, dx)
    assert got_dw.dtype == np.int64 and np.array_equal(got_dw, dw)


@pytest.mark.parametrize("mode", ("reflect", "replicate", "circular"))
def test_integer_valued_floats_are_exact_with_the_direct_kernels(mode):
    # integer-valued float64 inputs whose partial sums are exact: the direct path gives the oracle's result
    x, w, kw = _operands(2, 3)
    y = oracle.conv(x, w, padding_mode=mode, **kw)
    got = fast.conv(x.astype(np.float64), w.astype(np.float64), padding_mode=mode, algorithm="direct", **kw)
    assert got.dtype == np.float64 and np.array_equal(got, y)
    dy = np.ones(y.shape)
    dx = fast.conv_grad_input(dy, w.astype(np.float64), x.shape, padding_mode=mode, algorithm="direct", **kw)
    assert np.array_equal(dx, oracle.conv_grad_input(dy.astype(np.int64), w, x.shape, padding_mode=mode, **kw))


def test_the_adjoint_accumulates_the_gradients_of_the_copies():
    # replicate with a pad of 2 on each side of a 3-sample axis: x[0] and x[2] are read 3 times each by a 1-tap kernel
    dx = fast.conv_grad_input(np.ones((1, 1, 7), np.int64), np.ones((1, 1, 1), np.int64), (1, 1, 3), padding=2,
                              padding_mode="replicate")
    assert dx.tolist() == [[[3, 1, 3]]]


@pytest.mark.parametrize("fn", ("conv", "conv_grad_input", "conv_grad_weight"))
@pytest.mark.parametrize("mode, pad", (("reflect", 3), ("circular", 4), ("mirror", 1)))
def test_refusals_match_the_oracle(fn, mode, pad):
    # reflect allows at most n - 1 = 2 per side, circular at most n = 3; 'mirror' is no mode
    x, w, dy = np.ones((1, 1, 3), np.int64), np.ones((1, 1, 2), np.int64), np.ones((1, 1, 3 + 2 * pad - 1), np.int64)
    args = {"conv": (x, w), "conv_grad_input": (dy, w, x.shape), "conv_grad_weight": (x, dy, w.shape)}[fn]
    messages = []
    for engine in (oracle, fast):
        with pytest.raises(ConvParamError) as info:
            getattr(engine, fn)(*args, padding=pad, padding_mode=mode)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert ("padding_mode=" + repr(mode)) in messages[1]


def test_unbatched_and_layouts_with_a_padding_mode():
    x, w, kw = _operands(2, 5)
    y = fast.conv(x[:1], w, padding_mode="reflect", **kw)
    assert np.array_equal(fast.conv(x[0], w, padding_mode="reflect", **kw), y[0])
    nhwc = fast.conv(np.moveaxis(x[:1], 1, -1), w, padding_mode="reflect", layout="NHWC", **kw)
    assert np.array_equal(nhwc, np.moveaxis(y, 1, -1))
