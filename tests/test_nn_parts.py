"""nn building blocks: initialization, losses, optimizers, clipping, the model built from summary descriptions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from refconv import summary as S
from refconv.nn import init as I
from refconv.nn.losses import mean_squared_error, one_hot, softmax, softmax_cross_entropy
from refconv.nn.model import Model, ModelError, description_from_json, description_to_json, lenet
from refconv.nn.optim import SGD, Adam, clip_grad_norm, make_optimizer

U = 2.0**-53


# ---- initialization ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn,shape,var",
    [
        (I.he_normal, (400, 50, 3, 3), 2 / 450),
        (I.he_uniform, (400, 50, 3, 3), 2 / 450),  # U(-a, a) has variance a^2 / 3 = 2 / fan_in
        (I.xavier_normal, (500, 300), 2 / 800),
        (I.xavier_uniform, (500, 300), 2 / 800),
    ],
)
def test_initializers_have_their_variance(fn, shape, var):
    w = fn(shape, np.random.default_rng(0))
    n = w.size
    # the sample variance of n draws has relative standard deviation <= sqrt(2 / n) * 1.2 (normal: sqrt(2/n),
    # uniform: sqrt(0.8/n)); 6 of those is far in the tail for any seed
    assert abs(w.var() / var - 1) <= 6 * 1.2 * math.sqrt(2 / n)
    assert abs(w.mean()) <= 6 * math.sqrt(var / n)
    if "uniform" in fn.__name__:
        assert np.abs(w).max() <= math.sqrt(3 * var)


def test_initializers_use_only_the_given_generator():
    before = np.random.get_state()[1].copy()
    a = I.he_normal((3, 4), np.random.default_rng(5))
    b = I.he_normal((3, 4), np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert np.array_equal(np.random.get_state()[1], before)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        I.he_normal((3, 4), 5)  # type: ignore[arg-type]


# ---- losses ---------------------------------------------------------------------------


def test_softmax_cross_entropy_value_against_logsumexp():
    from scipy.special import logsumexp

    rng = np.random.default_rng(0)
    z = rng.normal(scale=3, size=(6, 10))
    t = rng.integers(0, 10, 6)
    loss, dz = softmax_cross_entropy(z, t)
    ref = np.mean(logsumexp(z, axis=1) - z[np.arange(6), t])
    # both sides: about k + 8 roundings on values of size <= max|z| + log k
    assert abs(loss - ref) <= 2 * (10 + 8) * U * (np.abs(z).max() + math.log(10))
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    assert np.all(np.abs(dz - (p - one_hot(t, 10)) / 6) <= 32 * U)
    assert np.all(np.abs(dz.sum(axis=1)) <= 32 * U)  # rows of p - onehot sum to 0


def test_softmax_cross_entropy_huge_logits_do_not_overflow():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 1e300, 0.0]])
    loss, dz = softmax_cross_entropy(z, np.array([0, 1]))
    assert loss == 0.0 and np.all(np.isfinite(dz))
    assert softmax(z)[1].tolist() == [0.0, 1.0, 0.0]


def test_mse_is_half_squared_error_summed_over_outputs_and_averaged_over_batch():
    y = np.array([[0.5, 0.25], [1.0, 0.0]])
    loss, dy = mean_squared_error(y, np.array([0, 0]))
    # sample 0: ((1 - .5)^2 + (0 - .25)^2) / 2 = 0.15625; sample 1: (0 + 0) / 2 = 0
    assert loss == (0.15625 + 0.0) / 2
    assert dy.tolist() == [[-0.25, 0.125], [0.0, 0.0]]


@pytest.mark.parametrize(
    "labels,match",
    [(np.array([0, 10]), r"\[0, 9\]"), (np.array([0.0, 1.0]), "integer labels"), (np.array([1]), "2 integer labels")],
)
def test_losses_reject_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        softmax_cross_entropy(np.zeros((2, 10)), labels)


# ---- optimizers -------------------------------------------------------------------------


def test_sgd_momentum_weight_decay_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    g = {"w": np.array([0.5, 0.5])}
    opt = SGD(lr=0.5, momentum=0.5, weight_decay=0.25)
    opt.step(p, g)  # g' = g + p/4 = [0.75, 0]; v = g'; p -= v/2 -> [0.625, -2]
    assert p["w"].tolist() == [0.625, -2.0]
    opt.step(p, g)  # g' = [0.5 + 0.15625, 0]; v = v/2 + g' = [1.03125, 0]; p -= v/2
    assert p["w"].tolist() == [0.625 - 0.515625, -2.0]


def test_adam_matches_pytorch_over_steps():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]
    ours = {"w": p0.copy()}
    opt = Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1)
    tp = torch.tensor(p0.copy(), requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1)
    for g in grads:
        opt.step(ours, {"w": g})
        tp.grad = torch.tensor(g)
        topt.step()
    # the same formulas in another order: each step about 12 roundings on values of size <= |p| + lr;
    # the division by sqrt(v) + eps can amplify a relative error of v by 1/2: 5 steps x 32 u x scale
    scale = np.abs(p0) + 0.01 * 5 + 1
    assert np.all(np.abs(ours["w"] - tp.detach().numpy()) <= 5 * 32 * U * scale)


def test_optimizer_state_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    g = [{"w": rng.normal(size=3)} for _ in range(4)]
    a = {"w": np.ones(3)}
    opt = Adam(lr=0.1)
    for gi in g[:2]:
        opt.step(a, gi)
    b = {"w": a["w"].copy()}
    opt2 = Adam(lr=0.1)
    opt2.load_state_dict({k: v.copy() for k, v in opt.state_dict().items()})
    for gi in g[2:]:
        opt.step(a, gi)
        opt2.step(b, gi)
    assert np.array_equal(a["w"], b["w"])


def test_clip_grad_norm_against_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    gs = {"a": rng.normal(size=(3, 3)), "b": rng.normal(size=5)}
    ts = [torch.zeros(3, 3, dtype=torch.float64, requires_grad=True), torch.zeros(5, dtype=torch.float64, requires_grad=True)]
    for t, g in zip(ts, gs.values()):
        t.grad = torch.tensor(g)
    norm = clip_grad_norm(gs, 1.0)
    tnorm = torch.nn.utils.clip_grad_norm_(ts, 1.0)
    # a sum of 14 squares then a square root: (14 + 2) u relative
    assert abs(norm - float(tnorm)) <= 16 * U * norm
    for t, g in zip(ts, gs.values()):
        assert np.all(np.abs(g - t.grad.numpy()) <= 32 * U * (np.abs(g) + 1e-300))
    after = math.sqrt(sum(float(np.sum(g * g)) for g in gs.values()))
    assert after <= 1.0
    small = {"a": np.array([0.3, 0.4])}
    assert clip_grad_norm(small, 1.0) == 0.5 and small["a"].tolist() == [0.3, 0.4]


@pytest.mark.parametrize("kw,match", [(dict(lr=0.0), "lr=0.0"), (dict(lr=1.0, weight_decay=-1.0), "weight_decay=-1.0")])
def test_optimizer_arguments_are_validated(kw, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer("sgd", **kw)


# ---- model from the summary vocabulary ----------------------------------------------------


@pytest.mark.parametrize("size", [8, 28])
def test_model_agrees_with_its_summary_description(size):
    desc = lenet(size)
    model = Model(desc, (1, size, size), rng=np.random.default_rng(0))
    assert model.num_params() == desc.num_params((1, size, size))
    assert sum(v.size for v in model.buffers().values()) == desc.num_buffers((1, size, size))
    y = model.forward(np.zeros((3, 1, size, size)))
    assert y.shape == (3, *desc.output_shape((1, size, size)))
    # every intermediate shape is the summary's
    shape = (1, size, size)
    for leaf, out_shape in zip(model.descriptions, model.shapes[1:]):
        shape = leaf.output_shape(shape)
        assert out_shape == shape


def test_nested_sequential_is_flattened_and_seeded():
    desc = S.Sequential([S.Sequential([S.Conv(2, 3, padding=1), S.Tanh()]), S.Flatten(), S.Linear(4)])
    a = Model(desc, (1, 4, 4), rng=np.random.default_rng(7))
    b = Model(desc, (1, 4, 4), rng=np.random.default_rng(7))
    c = Model(desc, (1, 4, 4), rng=np.random.default_rng(8))
    assert [type(layer).__name__ for layer in a.layers] == ["Conv", "Tanh", "Flatten", "Linear"]
    assert all(np.array_equal(a.parameters()[k], b.parameters()[k]) for k in a.parameters())
    assert not np.array_equal(a.parameters()["0.weight"], c.parameters()["0.weight"])


def test_unsupported_layer_is_named():
    with pytest.raises(ModelError, match="softmax.*Softmax"):
        Model(S.Sequential([S.Flatten(), S.Softmax()]), (1, 2, 2), rng=np.random.default_rng(0))


def test_wrong_input_shape_is_a_clear_error():
    model = Model(lenet(8), (1, 8, 8), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"x.shape=\(2, 1, 28, 28\).*\(N, 1, 8, 8\)"):
        model.forward(np.zeros((2, 1, 28, 28)))


def test_description_json_round_trip():
    for desc in (lenet(8), lenet(28), S.Sequential([S.Conv(4, (3, 1), stride=(2, 1), padding=((0, 1), 1), groups=1), S.MaxPool(2, 1, ceil_mode=True)])):
        text = description_to_json(desc)
        json.loads(text)
        assert description_from_json(text) == desc


def test_model_state_dict_round_trip():
    a = Model(lenet(8), (1, 8, 8), rng=np.random.default_rng(0))
    b = Model(lenet(8), (1, 8, 8), rng=np.random.default_rng(1))
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(2).random((4, 1, 8, 8))
    assert np.array_equal(a.forward(x), b.forward(x))
    with pytest.raises(ModelError, match="missing"):
        b.load_state_dict({})


def test_sigmoid_keeps_relative_accuracy_in_both_tails():
    from scipy.special import expit

    from refconv.nn.layers import Sigmoid

    x = np.linspace(-700, 700, 2801)
    y = Sigmoid().forward(x)
    ref = expit(x)
    # y = exp(-L), L = logaddexp(0, -x) with |error of L| <= 2 u max(|x|, 1); exp turns an absolute
    # error e of L into a relative error of about e, plus its own few ulps
    assert np.all(np.abs(y - ref) <= (2 * np.maximum(np.abs(x), 1) + 8) * U * ref)


def test_every_supported_description_builds_and_back_propagates():
    desc = S.Sequential([
        S.Conv(4, 3, padding="same", dilation=1, groups=1), S.BatchNorm(), S.LeakyReLU(0.1), S.AvgPool(2, count_include_pad=False),
        S.Conv(4, (2, 1), groups=2, stride=(1, 2)), S.Sigmoid(), S.MaxPool(2, stride=1, ceil_mode=True), S.GlobalAvgPool(),
        S.Flatten(), S.Dropout(0.5), S.Linear(6), S.Tanh(), S.Linear(3, bias=False),
    ])
    model = Model(desc, (2, 8, 8), rng=np.random.default_rng(0))
    assert model.num_params() == desc.num_params((2, 8, 8))
    x = np.random.default_rng(1).normal(size=(3, 2, 8, 8))
    y = model.forward(x, training=True, rng=np.random.default_rng(2))
    assert y.shape == (3, 3)
    dx = model.backward(np.ones_like(y))
    assert dx.shape == x.shape
    assert {k: v.shape for k, v in model.gradients().items()} == {k: v.shape for k, v in model.parameters().items()}


@pytest.mark.parametrize(
    "layer,match",
    [(S.Linear(4, in_features=5), "in_features=5 but the input has 4 features"),
     (S.BatchNorm(num_features=3), "num_features=3 but the input has 4 channels")],
)
def test_declared_sizes_must_match_the_input(layer, match):
    desc = S.Sequential([S.Flatten(), layer]) if isinstance(layer, S.Linear) else S.Sequential([layer])
    with pytest.raises(ModelError, match=match):
        Model(desc, (4,) if isinstance(layer, S.Linear) else (4, 2, 2), rng=np.random.default_rng(0))
