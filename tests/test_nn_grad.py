"""Gradients of every nn layer: against the exact oracle and against central finite differences.

Finite differences, float64.  For a scalar ``f`` and step ``h`` the central
difference ``D = (f(x + h) - f(x - h)) / (2h)`` differs from ``f'(x)`` by at
most

    |D - f'(x)| <= h**2 / 6 * M3  +  (e+ + e-) / (2h)

where ``M3`` bounds ``|f'''|`` on ``[x - h, x + h]`` (Taylor with remainder) and
``e+-`` bound the rounding errors of the two evaluations of ``f``.

* Piecewise-linear layers (convolution, pooling, ReLU, linear, flatten,
  dropout with a fixed mask) and the quadratic loss have ``M3 = 0`` as long as
  no kink lies within ``h`` of ``x``: the inputs are distinct integers (gaps
  >= 1 > 2h, and no zero input to ReLU).  With integer weights, integer
  projections ``g``, ``h = 2**-8`` and window divisors that are powers of two,
  every value is a dyadic rational with few bits, so ``f(x +- h)`` is computed
  exactly (``math.fsum`` sums exactly, then rounds once to a value with few
  bits) and ``D == f'(x)`` holds with ``==``.
* Smooth layers use ``h = 2**-14`` and the bound above with ``M3`` from
  calculus (``|tanh'''| <= 2``, ``|sigmoid'''| <= 1/8``, the third derivative
  of ``logsumexp`` along one coordinate is ``p(1 - p)(1 - 2p)``, at most
  ``1/(6 sqrt 3) < 0.1``) and ``e = C * u * S``: ``u = 2**-53``, ``S`` the sum
  of the magnitudes entering ``f`` and ``C`` the number of roundings on the
  longest path of the computation (``C = 16`` covers an elementwise map with a
  libm call of a few ulps and the exact final sum).  For batch normalization
  ``M3`` has no simple closed form; it is estimated by a third difference at
  the much larger step ``H = 2**-5`` and multiplied by 10, and ``C`` counts
  the two reductions over the ``M`` values of a channel (``C = 2M + 16``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from refconv import fast, oracle
from refconv.conformance.strategies import conv_cases, pool_cases
from refconv.nn import conv as C
from refconv.nn import layers as L
from refconv.nn.losses import mean_squared_error, softmax_cross_entropy

U = 2.0**-53
H_EXACT = 2.0**-8
H_SMOOTH = 2.0**-14


def _distinct_ints(rng: np.random.Generator, shape: tuple[int, ...], *, nonzero: bool = True) -> np.ndarray:
    """Distinct integers (a permutation) centred on 0, as float64; 0 left out if ``nonzero``."""
    n = int(np.prod(shape))
    vals = np.arange(-n, n + 1, dtype=np.float64)
    if nonzero:
        vals = vals[vals != 0]
    return rng.permutation(vals)[:n].reshape(shape)


def _project(g: np.ndarray, y: np.ndarray) -> float:
    # exact sum of the products (each product is exact for the small dyadic values used)
    return math.fsum((g * y).ravel().tolist())


def _fd(f, arr: np.ndarray, h: float) -> np.ndarray:
    """Central differences of scalar ``f()`` with respect to every element of ``arr`` (changed in place, restored)."""
    out = np.empty_like(arr)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + h
        fp = f()
        arr[i] = old - h
        fm = f()
        arr[i] = old
        out[i] = (fp - fm) / (2 * h)
    return out


def _check_exact(layer: L.Layer, x: np.ndarray, g: np.ndarray, *, forward_kw=None) -> None:
    """Backward of ``layer`` equals central differences exactly, for the input and every parameter."""
    kw = forward_kw or {}

    def f() -> float:
        return _project(g, layer.forward(x, **kw))

    layer.forward(x, **kw)
    dx = layer.backward(g.copy())
    grads = {k: v.copy() for k, v in layer.grads.items()}
    fd_x = _fd(f, x, H_EXACT)
    assert np.array_equal(dx, fd_x), f"{layer!r}: dx differs from central differences\n{dx}\n{fd_x}"
    for name, p in layer.params.items():
        fd_p = _fd(f, p, H_EXACT)
        assert np.array_equal(grads[name], fd_p), f"{layer!r}: d{name} differs from central differences"


# ---- convolution: oracle (exact) and finite differences (exact) ------------------------

CONV_CASES = [
    # (x shape, out channels, kernel, keywords)
    ((2, 2, 5, 5), 3, 3, dict()),
    ((1, 2, 6, 5), 2, (2, 3), dict(stride=2, padding=1)),
    ((2, 4, 5, 6), 4, 3, dict(stride=(2, 1), padding=((1, 0), (0, 2)), dilation=(1, 2), groups=2)),
    ((1, 3, 7), 6, 3, dict(stride=3, padding="same", groups=3)),  # 1-D, depthwise, stride > 1 leaves unread rows
    ((1, 2, 3, 4, 3), 2, 2, dict(padding=(1, 0, 1))),  # 3-D
    ((2, 1, 4, 4), 2, 4, dict(padding="full", dilation=1)),  # kernel as large as the input
]


@pytest.mark.parametrize("shape,cout,k,kw", CONV_CASES)
def test_conv_layer_matches_oracle_exactly(shape, cout, k, kw):
    rng = np.random.default_rng(1)
    nd = len(shape) - 2
    layer = C.Conv(shape[1], cout, k, ndim=nd, rng=rng, **kw)
    w = layer.params["weight"]
    w[...] = rng.integers(-3, 4, w.shape)
    layer.params["bias"][...] = rng.integers(-3, 4, cout)
    x = rng.integers(-4, 5, shape).astype(np.float64)
    y = layer.forward(x)
    okw = {k2: v for k2, v in kw.items()}
    assert np.array_equal(y, oracle.conv(x, w, layer.params["bias"], **okw))
    dy = rng.integers(-3, 4, y.shape).astype(np.float64)
    dx = layer.backward(dy)
    assert np.array_equal(dx, oracle.conv_grad_input(dy, w, x.shape, **okw))
    assert np.array_equal(layer.grads["weight"], oracle.conv_grad_weight(x, dy, w.shape, **okw))
    assert np.array_equal(layer.grads["bias"], oracle.conv_grad_bias(dy))


@pytest.mark.parametrize("shape,cout,k,kw", CONV_CASES[:4])
def test_conv_layer_matches_central_differences_exactly(shape, cout, k, kw):
    rng = np.random.default_rng(2)
    layer = C.Conv(shape[1], cout, k, ndim=len(shape) - 2, rng=rng, **kw)
    layer.params["weight"][...] = rng.integers(-3, 4, layer.params["weight"].shape)
    layer.params["bias"][...] = rng.integers(-3, 4, cout)
    x = rng.integers(-4, 5, shape).astype(np.float64)
    g = rng.integers(-3, 4, layer.forward(x).shape).astype(np.float64)
    _check_exact(layer, x, g)


@settings(max_examples=100)
@given(conv_cases(max_dims=2, flip=False))
def test_conv_layer_matches_oracle_for_any_parameters(case):
    rng = np.random.default_rng(0)
    kw = {k: v for k, v in case.kwargs.items() if k != "flip"}
    layer = C.Conv(case.x_shape[1], case.w_shape[0], case.w_shape[2:], ndim=len(case.w_shape) - 2,
                   bias=case.bias, rng=rng, **kw)
    x, w, b = (a if a is None else a.astype(np.float64) for a in case.arrays(rng, -4, 4))
    layer.params["weight"][...] = w
    if case.bias:
        layer.params["bias"][...] = b
    y = layer.forward(x)
    assert np.array_equal(y, oracle.conv(x, w, b, **kw))
    dy = rng.integers(-4, 5, y.shape).astype(np.float64)
    assert np.array_equal(layer.backward(dy), oracle.conv_grad_input(dy, w, x.shape, **kw))
    assert np.array_equal(layer.grads["weight"], oracle.conv_grad_weight(x, dy, w.shape, **kw))


@settings(max_examples=100)
@given(pool_cases(max_dims=2))
def test_max_pool_layer_matches_oracle_for_any_parameters(case):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, case.x_shape).astype(np.float64)  # ties: the first maximum wins
    kw = dict(case.max_kwargs)
    k = kw.pop("kernel_size")
    layer = C.MaxPool(k, **kw)
    y = layer.forward(x)
    assert np.array_equal(y, oracle.max_pool(x, k, **kw))
    dy = rng.integers(-3, 4, y.shape).astype(np.float64)
    assert np.array_equal(layer.backward(dy), oracle.max_pool_grad(dy, x, k, **kw))


def test_conv_layer_float32_stays_float32():
    rng = np.random.default_rng(0)
    layer = C.Conv(1, 2, 3, padding=1, rng=rng, dtype=np.float32)
    y = layer.forward(np.ones((2, 1, 4, 4), np.float32))
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == layer.grads["weight"].dtype == np.float32


# ---- pooling ----------------------------------------------------------------------------

POOL_CASES = [
    ("max", (2, 2, 6, 6), 2, dict()),
    ("max", (1, 2, 7, 6), 3, dict(stride=2, padding=1, ceil_mode=True)),
    ("max", (1, 1, 9, 8), (3, 2), dict(stride=(2, 3), dilation=(2, 1), padding=((2, 1), 0))),
    ("max", (2, 3, 9), 4, dict(stride=2, padding=2)),  # 1-D, overlapping windows
    ("avg", (2, 2, 6, 6), 2, dict()),
    ("avg", (1, 2, 6, 8), (2, 4), dict(stride=(2, 2))),
    ("avg", (1, 2, 7, 7), 3, dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg", (1, 1, 5, 6), 3, dict(stride=2, padding=1, count_include_pad=True)),
]


def _pool(kind, k, kw):
    return C.MaxPool(k, **kw) if kind == "max" else C.AvgPool(k, **kw)


@pytest.mark.parametrize("kind,shape,k,kw", POOL_CASES)
def test_pool_layer_matches_oracle_exactly(kind, shape, k, kw):
    rng = np.random.default_rng(3)
    # ties inside a window exercise the first-maximum rule
    x = rng.integers(-3, 4, shape).astype(np.float64)
    layer = _pool(kind, k, kw)
    y = layer.forward(x)
    dy = rng.integers(-3, 4, y.shape).astype(np.float64)
    dx = layer.backward(dy)
    if kind == "max":
        assert np.array_equal(y, oracle.max_pool(x, k, **kw))
        assert np.array_equal(dx, oracle.max_pool_grad(dy, x, k, **kw))
    else:
        # the divisor (9, 6, ...) rounds: the oracle's correctly rounded value is the reference.  Each value
        # is a sum of at most K terms (K = window size; at most K windows cover an input element when
        # stride >= 1), each term at most one rounding (a quotient) away from exact: the sum of the
        # magnitudes times (K + 1) u bounds any order of evaluation (Higham ch. 3)
        ref_y, ref_dx = oracle.avg_pool(x, k, **kw), oracle.avg_pool_grad(dy, x.shape, k, **kw)
        mag_y, mag_dx = oracle.avg_pool(np.abs(x), k, **kw), oracle.avg_pool_grad(np.abs(dy), x.shape, k, **kw)
        window = int(np.prod(np.broadcast_to(np.asarray(k), (len(shape) - 2,))))
        for got, ref, mag in ((y, ref_y, mag_y), (dx, ref_dx, mag_dx)):
            assert np.all(np.abs(got - ref) <= (window + 1) * U * mag), (got - ref)


@pytest.mark.parametrize("kind,shape,k,kw", [c for c in POOL_CASES if c[0] == "max" or c[2] in (2, (2, 4))])
def test_pool_layer_matches_central_differences_exactly(kind, shape, k, kw):
    # max pooling: distinct inputs (no tie, no kink within h); average pooling: divisors 4 and 8, exact
    rng = np.random.default_rng(4)
    x = _distinct_ints(rng, shape)
    layer = _pool(kind, k, kw)
    g = rng.integers(-3, 4, layer.forward(x).shape).astype(np.float64)
    _check_exact(layer, x, g)


@pytest.mark.parametrize("kind,shape,k,kw", [c for c in POOL_CASES if c[0] == "avg" and c[2] == 3])
def test_avg_pool_other_divisors_central_differences_within_bound(kind, shape, k, kw):
    # f = sum g * avg_pool(x) is linear (M3 = 0); dividing by 9 or 6 rounds, so f(x +- h) carries an
    # error of at most (K + 2) u sum |g| avg_pool(|x| + h) (K = 9 terms per window, the quotient, the sum
    # is exact); the difference quotient then errs by at most twice that over 2h
    rng = np.random.default_rng(4)
    x = _distinct_ints(rng, shape)
    layer = _pool(kind, k, kw)
    g = rng.integers(-3, 4, layer.forward(x).shape).astype(np.float64)
    dx = layer.backward(g.copy())
    h = H_EXACT
    fd = _fd(lambda: _project(g, layer.forward(x)), x, h)
    e = (9 + 2) * U * _project(np.abs(g), oracle.avg_pool(np.abs(x) + h, k, **kw))
    assert np.all(np.abs(dx - fd) <= e / h)


def test_global_avg_pool_central_differences_exact():
    rng = np.random.default_rng(5)
    x = _distinct_ints(rng, (2, 3, 4, 2))
    layer = C.GlobalAvgPool()
    g = rng.integers(-3, 4, (2, 3, 1, 1)).astype(np.float64)
    _check_exact(layer, x, g)
    assert np.array_equal(layer.forward(x), oracle.avg_pool(x, (4, 2)))


# ---- piecewise-linear and linear layers: exact -----------------------------------------


def test_linear_central_differences_exact():
    rng = np.random.default_rng(6)
    layer = L.Linear(5, 3, rng=rng)
    layer.params["weight"][...] = rng.integers(-4, 5, (3, 5))
    layer.params["bias"][...] = rng.integers(-4, 5, 3)
    x = rng.integers(-4, 5, (4, 5)).astype(np.float64)
    _check_exact(layer, x, rng.integers(-3, 4, (4, 3)).astype(np.float64))


@pytest.mark.parametrize("layer", [L.ReLU(), L.LeakyReLU(0.25), L.Flatten()], ids=repr)
def test_elementwise_piecewise_linear_exact(layer):
    rng = np.random.default_rng(7)
    x = _distinct_ints(rng, (2, 3, 2, 2))
    g = rng.integers(-3, 4, layer.forward(x).shape).astype(np.float64)
    _check_exact(layer, x, g)


@pytest.mark.parametrize("p", [0.5, 0.75])
def test_dropout_with_fixed_mask_exact(p):
    # a fresh generator with the same seed on every call draws the same mask; 1/(1-p) is 2 or 4: exact
    rng = np.random.default_rng(8)
    x = _distinct_ints(rng, (3, 8))
    g = rng.integers(-3, 4, (3, 8)).astype(np.float64)
    layer = L.Dropout(p)

    def f() -> float:
        return _project(g, layer.forward(x, training=True, rng=np.random.default_rng(99)))

    y = layer.forward(x, training=True, rng=np.random.default_rng(99))
    dx = layer.backward(g.copy())
    assert np.array_equal(dx, _fd(f, x, H_EXACT))
    scale = y / x
    assert set(np.unique(scale).tolist()) <= {0.0, 1 / (1 - p)}
    assert 0 < np.count_nonzero(scale) < scale.size


def test_mse_loss_central_differences_exact():
    rng = np.random.default_rng(9)
    y = rng.integers(-4, 5, (4, 3)).astype(np.float64)  # N = 4: dividing by N is exact
    t = np.array([0, 2, 1, 1])
    _, dy = mean_squared_error(y, t)
    fd = _fd(lambda: mean_squared_error(y, t)[0], y, H_EXACT)
    assert np.array_equal(dy, fd)


# ---- smooth layers: bounded ---------------------------------------------------------


def _check_bounded(forward, backward, x, g, m3, c_round, s_mag):
    """``|dx - D| <= h^2/6 * m3 + 2 * c_round * u * s_mag / (2h)`` elementwise."""
    h = H_SMOOTH
    y = forward(x)
    dx = backward(g)
    fd = _fd(lambda: _project(g, forward(x)), x, h)
    bound = h * h / 6 * m3 + c_round * U * s_mag / h
    err = np.abs(dx - fd)
    assert np.all(err <= bound), f"max error {err.max():.3e} > bound {np.max(bound):.3e}"
    assert y is not None
    return err, bound


def test_tanh_central_differences_within_bound():
    rng = np.random.default_rng(10)
    x = rng.uniform(-3, 3, (3, 4))
    g = rng.integers(-3, 4, x.shape).astype(np.float64)
    layer = L.Tanh()
    s = np.sum(np.abs(g))
    _check_bounded(layer.forward, layer.backward, x, g, m3=2 * np.abs(g), c_round=16, s_mag=s)


def test_sigmoid_central_differences_within_bound():
    rng = np.random.default_rng(11)
    x = rng.uniform(-6, 6, (3, 4))
    g = rng.integers(-3, 4, x.shape).astype(np.float64)
    layer = L.Sigmoid()
    _check_bounded(layer.forward, layer.backward, x, g, m3=np.abs(g) / 8, c_round=16, s_mag=np.sum(np.abs(g)))


def test_softmax_cross_entropy_central_differences_within_bound():
    rng = np.random.default_rng(12)
    n, k = 4, 5
    z = rng.uniform(-4, 4, (n, k))
    t = rng.integers(0, k, n)
    _, dz = softmax_cross_entropy(z, t)
    h = H_SMOOTH
    fd = _fd(lambda: softmax_cross_entropy(z, t)[0], z, h)
    # f = mean of n terms, each log(sum of k exps) - z: about (k + 8) roundings per term, n to add
    s = np.sum(np.abs(z)) / n + np.log(k) + 1
    bound = h * h / 6 * (0.1 / n) + (k + n + 16) * U * s / h
    assert np.all(np.abs(dz - fd) <= bound), np.abs(dz - fd).max()


def _third_difference_bound(f, arr, H):
    """10 x |third central difference| per element: the estimate of ``M3`` for batch norm."""
    out = np.empty_like(arr)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        vals = []
        for s in (2, 1, -1, -2):
            arr[i] = old + s * H
            vals.append(f())
        arr[i] = old
        out[i] = 10 * abs(vals[0] - 2 * vals[1] + 2 * vals[2] - vals[3]) / (2 * H**3)
    return out


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 2)])
def test_batchnorm_training_central_differences_within_bound(shape):
    rng = np.random.default_rng(13)
    c = shape[1]
    layer = L.BatchNorm(c)
    layer.params["weight"][...] = rng.uniform(0.5, 2, c)
    layer.params["bias"][...] = rng.uniform(-1, 1, c)
    x = rng.uniform(-2, 2, shape)
    g = rng.integers(-3, 4, shape).astype(np.float64)

    def f() -> float:
        return _project(g, layer.forward(x, training=True))

    m = x.size // c
    m3 = _third_difference_bound(f, x, 2.0**-5)
    s = np.sum(np.abs(g)) * (np.max(np.abs(layer.params["weight"])) * np.sqrt(m) + 1)  # |xh| <= sqrt(M)
    layer.forward(x, training=True)
    dx = layer.backward(g.copy())
    dgamma, dbeta = layer.grads["weight"].copy(), layer.grads["bias"].copy()
    h = H_SMOOTH
    fd = _fd(f, x, h)
    bound = h * h / 6 * m3 + (2 * m + 16) * U * s / h
    assert np.all(np.abs(dx - fd) <= bound), (np.abs(dx - fd).max(), bound.max())
    # gamma and beta enter linearly: M3 = 0
    for name, grad in (("weight", dgamma), ("bias", dbeta)):
        fd_p = _fd(f, layer.params[name], h)
        assert np.all(np.abs(grad - fd_p) <= (2 * m + 16) * U * s / h)


def test_batchnorm_evaluation_mode_is_affine_and_exact():
    layer = L.BatchNorm(2)
    layer.buffers["running_mean"][...] = [1.0, -2.0]
    layer.buffers["running_var"][...] = [4.0 - 1e-5, 0.25 - 1e-5]  # sqrt(var + eps) = 2 and 0.5 (up to rounding)
    layer.params["weight"][...] = [3.0, 1.0]
    x = np.array([[5.0, 0.0], [1.0, -2.0]])
    # a handful of roundings (eps added and removed, sqrt, divide, multiply): 8 u relative
    y = layer.forward(x)
    want = np.array([[6.0, 4.0], [0.0, 0.0]])
    assert np.all(np.abs(y - want) <= 8 * U * np.abs(want))
    dx = layer.backward(np.ones((2, 2)))
    want = np.array([[1.5, 2.0], [1.5, 2.0]])
    assert np.all(np.abs(dx - want) <= 8 * U * np.abs(want))


def test_batchnorm_running_statistics_follow_pytorch_convention():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    x = rng.normal(size=(6, 3, 2, 2))
    ours = L.BatchNorm(3, momentum=0.3)
    ref = torch.nn.BatchNorm2d(3, momentum=0.3).double()
    for _ in range(2):
        y = ours.forward(x, training=True)
        yt = ref(torch.from_numpy(x))
    # same formulas, other summation order: two reductions of M = 24 terms (gamma_M each), then
    # O(1) roundings; |x| < 6 here, so 8 M u (1 + |value|) covers both sides
    m = 6 * 2 * 2
    for ours_v, ref_v in ((y, yt.detach().numpy()), (ours.buffers["running_mean"], ref.running_mean.numpy()),
                          (ours.buffers["running_var"], ref.running_var.numpy())):
        assert np.all(np.abs(ours_v - ref_v) <= 8 * m * U * (1 + np.abs(ref_v)) * 6)


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        L.ReLU().backward(np.ones(2))


def test_dropout_needs_a_generator_in_training():
    with pytest.raises(TypeError, match="rng=None"):
        L.Dropout(0.5).forward(np.ones((1, 2)), training=True)
    assert np.array_equal(L.Dropout(0.5).forward(np.ones((1, 2))), np.ones((1, 2)))


def test_fast_engine_is_what_conv_layers_call(monkeypatch):
    calls = []
    real = fast.conv

    def spy(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(fast, "conv", spy)
    C.Conv(1, 1, 2, stride=2, rng=np.random.default_rng(0)).forward(np.ones((1, 1, 4, 4)))
    assert calls and calls[0]["stride"] == 2


def test_whole_model_backward_equals_central_differences_exactly():
    """Model.backward chains the layers correctly: every parameter and input gradient, exactly.

    Inputs are integers and weights multiples of 2**-6, so every intermediate value is a multiple of a
    power of two with well under 53 significant bits; a ReLU input is at least 2**-7 away from 0, and
    the step h = 2**-12 moves a convolution output by at most 2**-12 * max(|w|, |x|) <= 2**-10: no ReLU
    kink or max-pool choice changes (checked below), so f is linear near x and the difference is exact.
    """
    from refconv import summary as S
    from refconv.nn.model import Model

    desc = S.Sequential([S.Conv(3, 3, padding=1), S.ReLU(), S.MaxPool(2), S.Conv(2, 1), S.AvgPool(2), S.Flatten(), S.Linear(3)])
    rng = np.random.default_rng(21)
    model = Model(desc, (1, 8, 8), rng=rng)
    for p in model.parameters().values():
        p[...] = rng.integers(-96, 97, p.shape) / 64.0
    # an odd multiple of 2**-7 as the first bias: every first convolution output is (even + odd) / 128, never 0
    model.parameters()["0.bias"][...] = (2 * rng.integers(-8, 8, 3) + 1) / 128.0
    x = rng.integers(-4, 5, (2, 1, 8, 8)).astype(np.float64)
    conv1 = model.trace(x)[0][1]
    assert np.all(np.abs(conv1) >= 2.0**-7), "a ReLU input near its kink"
    relu = np.maximum(conv1, 0).reshape(2, 3, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 4, 4, 4)
    top2 = np.sort(relu, axis=-1)[..., -2:]
    assert np.all((top2[..., 1] > top2[..., 0]) | (top2[..., 1] == 0)), "a tie for a positive window maximum"
    g = rng.integers(-3, 4, (2, 3)).astype(np.float64)
    model.forward(x)
    dx = model.backward(g.copy())
    grads = {k: v.copy() for k, v in model.gradients().items()}

    def f() -> float:
        return _project(g, model.forward(x))

    h = 2.0**-12
    assert np.array_equal(dx, _fd(f, x, h))
    for key, p in model.parameters().items():
        assert np.array_equal(grads[key], _fd(f, p, h)), key
