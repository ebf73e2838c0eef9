"""The training-step benchmark case and the PyTorch twin of a model."""

from __future__ import annotations

import numpy as np
import pytest

from refconv import summary as S
from refconv.nn.benchmark import step_flop, to_torch, training_step_case
from refconv.nn.model import Model, lenet


def test_flop_count_of_the_default_network():
    # multiply-adds per 8x8 image: conv1 32*8*8 outputs x 1*3*3, conv2 64*4*4 x 32*3*3, fc1 256*128, out 128*10
    macs = 32 * 8 * 8 * 9 + 64 * 4 * 4 * 32 * 9 + 256 * 128 + 128 * 10
    assert step_flop(lenet(8), (1, 8, 8), batch=64) == 6 * 64 * macs == 133_398_528


def test_training_step_case_runs_both_sides():
    case = training_step_case(batch=8, seed=1)
    assert set(case) == {"name", "refconv", "torch", "flop"}
    assert isinstance(case["name"], str) and case["flop"] == step_flop(lenet(8), (1, 8, 8), batch=8)
    assert case["refconv"]() is None
    pytest.importorskip("torch")
    assert callable(case["torch"]) and case["torch"]() is None
    with pytest.raises(ValueError, match="batch=0"):
        training_step_case(batch=0)


def test_torch_twin_is_exactly_the_same_network():
    """Integer weights, inputs and output gradients in float64: both sides compute exact integers (or
    quarters, after the 2x2 average), so forward and backward must agree with ``==``."""
    torch = pytest.importorskip("torch")
    desc = S.Sequential(
        [S.Conv(3, 3, padding=1, name="c1"), S.ReLU(), S.MaxPool(2), S.Conv(4, 2, stride=1, padding=(1, 0), groups=1),
         S.Tanh(), S.AvgPool(2), S.Flatten(), S.Linear(5)]
    )
    rng = np.random.default_rng(0)
    model = Model(desc, (2, 6, 6), rng=rng, dtype=np.float64)
    for p in model.parameters().values():
        p[...] = rng.integers(-2, 3, p.shape)
    # tanh would not be exact: replace it by its argument on both sides for this check
    model.layers[4].forward = lambda x, **k: x
    model.layers[4].backward = lambda dy: dy
    net = to_torch(model)
    net[4] = torch.nn.Identity()
    x = rng.integers(-3, 4, (2, 2, 6, 6)).astype(np.float64)
    y = model.forward(x)
    tx = torch.tensor(x, requires_grad=True)
    ty = net(tx)
    assert np.array_equal(y, ty.detach().numpy())
    dy = rng.integers(-3, 4, y.shape).astype(np.float64)
    dx = model.backward(dy)
    ty.backward(torch.tensor(dy))
    assert np.array_equal(dx, tx.grad.numpy())
    tparams = dict(net.named_parameters())
    for key, grad in model.gradients().items():
        i, name = key.split(".")
        assert np.array_equal(grad, tparams[f"{i}.{name}"].grad.numpy()), key


def test_torch_twin_refuses_what_it_cannot_express():
    pytest.importorskip("torch")
    model = Model(S.Sequential([S.Conv(2, 2, padding=((0, 1), (1, 0)))]), (1, 4, 4), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="only symmetric int padding"):
        to_torch(model)


@pytest.mark.parametrize("shape, k, kwargs", [
    ((4, 3, 8, 8), 2, {}), ((2, 3, 9, 7), 2, {}), ((2, 2, 9, 9), 3, {}), ((2, 2, 10), 2, {}), ((2, 2, 6, 6, 6), 2, {}),
    ((2, 3, 8, 8), 2, {"stride": 1}), ((2, 3, 8, 8), 2, {"padding": 1}),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_layer_keeps_the_first_maximum(shape, k, kwargs, dtype):
    """The values and signs of the oracle's maxima, and exactly ``fast.max_pool_grad``'s gradient
    (ties, NaN, -inf, signed zeros, infinite dy)."""
    from refconv import fast, oracle
    from refconv.nn.conv import MaxPool

    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-2, 3, shape).astype(dtype)
    x.flat[::7] = np.nan
    x.flat[3::11] = -np.inf
    x.flat[5::13] = -0.0
    layer = MaxPool(k, **kwargs)
    y = layer.forward(x, training=True)
    want = oracle.max_pool(x, k, **kwargs)
    assert y.dtype == dtype and np.array_equal(y, want, equal_nan=True)
    assert np.array_equal(np.signbit(y[~np.isnan(y)]), np.signbit(want[~np.isnan(want)]))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy.flat[::5] = np.inf
    assert np.array_equal(layer.backward(dy), fast.max_pool_grad(dy, x, k, **kwargs), equal_nan=True)


def test_engine_max_pool_keeps_the_sign_of_the_first_zero():
    from refconv import fast, oracle

    x = np.array([[[-0.0, 0.0, 0.0, -0.0]]] * 3, dtype=np.float32).reshape(1, 3, 4)
    for kw in ({}, {"stride": 1}):
        got, want = fast.max_pool(x, 2, **kw), oracle.max_pool(x, 2, **kw)
        assert np.array_equal(np.signbit(got), np.signbit(want)), kw


def test_a_training_step_skips_the_input_gradient_of_the_first_convolution():
    rng = np.random.default_rng(0)
    model = Model(lenet(8), (1, 8, 8), rng=rng, dtype=np.float64)
    x = rng.standard_normal((4, 1, 8, 8))
    dy = rng.standard_normal((4, 10))
    model.forward(x, training=True, rng=np.random.default_rng(1))
    dx = model.backward(dy)
    full = {k: v.copy() for k, v in model.gradients().items()}
    model.forward(x, training=True, rng=np.random.default_rng(1))
    assert dx.shape == x.shape and model.backward(dy, input_grad=False) is None
    assert all(np.array_equal(full[k], v) for k, v in model.gradients().items())


def test_lenet5_training_step_case_runs_both_sides():
    from refconv.nn.model import architecture

    case = training_step_case(batch=4, seed=0, network="lenet5")
    desc, shape = architecture("lenet5", (1, 32, 32))
    assert case["flop"] == step_flop(desc, shape, batch=4) and "lenet5" in case["name"]
    assert case["refconv"]() is None
    with pytest.raises(ValueError, match="network='vgg'"):
        training_step_case(batch=4, network="vgg")
    pytest.importorskip("torch")
    assert case["torch"]() is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_selects_bits_exactly_as_where(dtype):
    from refconv.nn.layers import ReLU, select

    special = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.5, -3.5], dtype=dtype)
    x = np.concatenate([special, np.random.default_rng(0).standard_normal(990).astype(dtype)]).reshape(10, 10, 10)
    it = np.dtype(f"i{np.dtype(dtype).itemsize}")
    zero = np.zeros((), dtype)
    relu = ReLU()
    y = relu.forward(x)
    assert y.dtype == x.dtype and np.array_equal(y.view(it), np.where(x > 0, x, zero).view(it))
    dy = x[::-1].copy()
    assert np.array_equal(relu.backward(dy).view(it), np.where(x > 0, dy, zero).view(it))
    xs = x[:, ::2]  # a strided view: selected from a contiguous copy
    assert np.array_equal(select(xs < 0, xs).view(it), np.where(xs < 0, xs, zero).view(it))
