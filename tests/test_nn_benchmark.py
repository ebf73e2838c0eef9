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
