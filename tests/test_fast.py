"""refconv.fast against refconv.oracle: exact on integer-valued inputs, bounded on random floats.

Every property draws a whole case from :mod:`refconv.conformance.strategies`
(N-D, stride, asymmetric padding and the presets, dilation, groups, flip,
kernels as large as the padded input, stride larger than the kernel).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from refconv import fast, oracle, tolerance
from refconv.conformance.strategies import conv_cases, conv_transpose_cases, pool_cases
from refconv.params import ConvParamError

EXAMPLES = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
FEW = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _msg(case) -> str:
    return f"x{case.x_shape} w{case.w_shape} {case.kwargs}"


# ----------------------------------------------------------------------------- exact, integer-valued


@EXAMPLES
@given(case=conv_cases(flip=None), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_conv_and_gradients_exact_on_integer_valued_floats(case, dtype, seed):
    rng = _rng(seed)
    x, w, b = case.arrays(rng, -4, 4)
    xf, wf = x.astype(dtype), w.astype(dtype)
    bf = None if b is None else b.astype(dtype)
    want = oracle.conv(xf, wf, bf, **case.kwargs)
    got = fast.conv(xf, wf, bf, algorithm="direct", **case.kwargs)
    assert got.dtype == dtype and want.dtype == dtype
    assert np.array_equal(got, want), _msg(case)
    dy = rng.integers(-4, 5, case.output_shape).astype(dtype)
    gi = fast.conv_grad_input(dy, wf, case.x_shape, **case.kwargs)
    assert gi.dtype == dtype
    assert np.array_equal(gi, oracle.conv_grad_input(dy, wf, case.x_shape, **case.kwargs)), _msg(case)
    gw = fast.conv_grad_weight(xf, dy, case.w_shape, **case.kwargs)
    assert gw.dtype == dtype
    assert np.array_equal(gw, oracle.conv_grad_weight(xf, dy, case.w_shape, **case.kwargs)), _msg(case)
    assert np.array_equal(fast.conv_grad_bias(dy), oracle.conv_grad_bias(dy))


@FEW
@given(case=conv_cases(flip=None), seed=st.integers(0, 2**16))
def test_integer_inputs_give_the_exact_int64_result(case, seed):
    rng = _rng(seed)
    x, w, b = case.arrays(rng, -50, 50)
    got = fast.conv(x, w, b, **case.kwargs)
    want = oracle.conv(x, w, b, **case.kwargs)
    assert got.dtype == np.int64
    assert np.array_equal(got, want), _msg(case)
    dy = rng.integers(-50, 51, case.output_shape)
    assert np.array_equal(fast.conv_grad_input(dy, w, case.x_shape, **case.kwargs),
                          oracle.conv_grad_input(dy, w, case.x_shape, **case.kwargs))
    assert np.array_equal(fast.conv_grad_weight(x, dy, case.w_shape, **case.kwargs),
                          oracle.conv_grad_weight(x, dy, case.w_shape, **case.kwargs))


@EXAMPLES
@given(
    nd=st.integers(1, 2),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_general_conv_with_input_dilation_and_negative_padding_exact(nd, data, seed):
    rng = _rng(seed)
    n = [data.draw(st.integers(1, 5)) for _ in range(nd)]
    k = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    a = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    pads = tuple((data.draw(st.integers(-2, 3)), data.draw(st.integers(-2, 3))) for _ in range(nd))
    # a crop never removes more than the dilated input plus its padding on the other side
    for ni, ai, (lo, hi) in zip(n, a, pads):
        assume(ai * (ni - 1) + 1 + max(lo, 0) + min(hi, 0) >= 0 and ai * (ni - 1) + 1 + min(lo, 0) + max(hi, 0) >= 0)
    kw = dict(input_dilation=a, padding=pads, stride=data.draw(st.integers(1, 2)), flip=data.draw(st.booleans()))
    x = rng.integers(-4, 5, (2, 2, *n)).astype(np.float64)
    w = rng.integers(-4, 5, (3, 2, *k)).astype(np.float64)
    try:
        want = oracle.general_conv(x, w, **kw)
    except ConvParamError as exc:
        with pytest.raises(ConvParamError) as info:
            fast.general_conv(x, w, **kw)
        assert str(info.value) == str(exc)
        return
    assert np.array_equal(fast.general_conv(x, w, **kw), want), kw


@EXAMPLES
@given(case=conv_transpose_cases(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_conv_transpose_exact(case, dtype, seed):
    rng = _rng(seed)
    x = rng.integers(-4, 5, case.x_shape).astype(dtype)
    w = rng.integers(-4, 5, case.w_shape).astype(dtype)
    b = rng.integers(-4, 5, case.output_shape[1]).astype(dtype) if case.bias else None
    got = fast.conv_transpose(x, w, b, **case.kwargs)
    assert got.dtype == dtype
    assert np.array_equal(got, oracle.conv_transpose(x, w, b, **case.kwargs)), f"{case.x_shape} {case.w_shape} {case.kwargs}"


@EXAMPLES
@given(case=pool_cases(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_max_pooling_and_gradient_exact(case, dtype, seed):
    rng = _rng(seed)
    # few distinct values: many ties, so the first-maximum rule is exercised
    x = rng.integers(-2, 3, case.x_shape).astype(dtype)
    got = fast.max_pool(x, **case.max_kwargs)
    assert got.dtype == dtype
    assert np.array_equal(got, oracle.max_pool(x, **case.max_kwargs))
    dy = rng.integers(-4, 5, case.output_shape).astype(dtype)
    assert np.array_equal(fast.max_pool_grad(dy, x, **case.max_kwargs), oracle.max_pool_grad(dy, x, **case.max_kwargs))


@EXAMPLES
@given(case=pool_cases(dilation=False), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_avg_pooling_and_gradient_exact(case, dtype, seed):
    rng = _rng(seed)
    x = rng.integers(-4, 5, case.x_shape).astype(dtype)
    # integer-valued windows sum exactly, so one division rounds as the oracle does
    ap = fast.avg_pool(x, **case.avg_kwargs)
    assert ap.dtype == dtype
    assert np.array_equal(ap, oracle.avg_pool(x, **case.avg_kwargs))
    dya = rng.integers(-4, 5, fast.avg_pool(x, **case.avg_kwargs).shape)
    # integer dy: exact sums over a common denominator, one rounding (float64), as the oracle
    assert np.array_equal(fast.avg_pool_grad(dya, case.x_shape, **case.avg_kwargs),
                          oracle.avg_pool_grad(dya, case.x_shape, **case.avg_kwargs))


@FEW
@given(case=pool_cases(), seed=st.integers(0, 2**16))
def test_max_pool_nan_and_ties_follow_the_first_maximum_rule(case, seed):
    rng = _rng(seed)
    # few distinct values, infinities and NaN: ties, -inf windows next to padding, NaN windows
    x = rng.choice(np.array([-np.inf, -1.0, 0.0, 1.0, np.inf, np.nan]), size=case.x_shape, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    got = fast.max_pool(x, **case.max_kwargs)
    want = oracle.max_pool(x, **case.max_kwargs)
    assert np.array_equal(got, want, equal_nan=True)
    dy = rng.integers(1, 5, case.output_shape).astype(np.float64)
    assert np.array_equal(fast.max_pool_grad(dy, x, **case.max_kwargs), oracle.max_pool_grad(dy, x, **case.max_kwargs))
    # infinite and NaN gradients reach only their own window's winner
    dy[rng.random(dy.shape) < 0.3] = np.inf
    dy[rng.random(dy.shape) < 0.1] = np.nan
    assert np.array_equal(fast.max_pool_grad(dy, x, **case.max_kwargs), oracle.max_pool_grad(dy, x, **case.max_kwargs), equal_nan=True)


@EXAMPLES
@given(
    shapes=st.integers(1, 3).flatmap(
        lambda nd: st.tuples(st.lists(st.integers(1, 6), min_size=nd, max_size=nd), st.lists(st.integers(1, 6), min_size=nd, max_size=nd))
    ),
    mode=st.sampled_from(["full", "valid", "same"]),
    odd_zero=st.sampled_from(["start", "end"]),
    seed=st.integers(0, 2**16),
)
def test_signal_modes_exact(shapes, mode, odd_zero, seed):
    rng = _rng(seed)
    a = rng.integers(-5, 6, shapes[0]).astype(np.float64)
    v = rng.integers(-5, 6, shapes[1]).astype(np.float64)
    for name in ("convolve", "correlate"):
        try:
            want = getattr(oracle, name)(a, v, mode, odd_zero=odd_zero)
        except ConvParamError as exc:
            with pytest.raises(ConvParamError) as info:
                getattr(fast, name)(a, v, mode, odd_zero=odd_zero)
            assert str(info.value) == str(exc)
            continue
        got = getattr(fast, name)(a, v, mode, odd_zero=odd_zero, algorithm="direct")
        assert got.shape == want.shape and np.array_equal(got, want), (name, a.shape, v.shape, mode, odd_zero)


def test_signal_modes_match_scipy_and_numpy():
    import scipy.signal

    rng = _rng(5)
    for n, m in [(7, 3), (7, 4), (3, 7), (4, 4), (1, 5)]:
        a, v = rng.integers(-5, 6, n).astype(float), rng.integers(-5, 6, m).astype(float)
        for mode in ("full", "valid", "same"):
            assert np.array_equal(fast.convolve(a, v, mode), scipy.signal.convolve(a, v, mode, method="direct"))
            assert np.array_equal(fast.correlate(a, v, mode), scipy.signal.correlate(a, v, mode, method="direct"))
            if mode != "same" or n >= m:  # numpy's 'same' returns max(n, m) samples
                assert np.array_equal(fast.convolve(a, v, mode), np.convolve(a, v, mode))
    # the seed example
    assert fast.convolve([1, 2, 3, 4], [5, 6, 7]).tolist() == [5, 16, 34, 52, 45, 28]


# ----------------------------------------------------------------------------- bounded, random floats


@EXAMPLES
@given(case=conv_cases(flip=None), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_random_floats_within_the_rigorous_bound(case, dtype, seed):
    rng = _rng(seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    b = rng.standard_normal(case.w_shape[0]).astype(dtype) if case.bias else None
    got = fast.conv(x, w, b, algorithm="direct", **case.kwargs)
    want = oracle.conv(x, w, b, **case.kwargs)
    assert tolerance.within_bound(got, want, tolerance.conv_error_bound(x, w, b, **case.kwargs)).all(), _msg(case)
    dy = rng.standard_normal(case.output_shape).astype(dtype)
    gi = fast.conv_grad_input(dy, w, case.x_shape, **case.kwargs)
    bi = tolerance.conv_grad_input_error_bound(dy, w, case.x_shape, **case.kwargs)
    assert tolerance.within_bound(gi, oracle.conv_grad_input(dy, w, case.x_shape, **case.kwargs), bi).all()
    gw = fast.conv_grad_weight(x, dy, case.w_shape, **case.kwargs)
    bw = tolerance.conv_grad_weight_error_bound(x, dy, case.w_shape, **case.kwargs)
    assert tolerance.within_bound(gw, oracle.conv_grad_weight(x, dy, case.w_shape, **case.kwargs), bw).all()
    gb = fast.conv_grad_bias(dy)
    assert tolerance.within_bound(gb, oracle.conv_grad_bias(dy), tolerance.conv_grad_bias_error_bound(dy)).all()


@FEW
@given(case=conv_transpose_cases(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_random_float_conv_transpose_within_bound(case, dtype, seed):
    rng = _rng(seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    b = rng.standard_normal(case.output_shape[1]).astype(dtype) if case.bias else None
    got = fast.conv_transpose(x, w, b, **case.kwargs)
    bound = tolerance.conv_transpose_error_bound(x, w, b, **case.kwargs)
    assert tolerance.within_bound(got, oracle.conv_transpose(x, w, b, **case.kwargs), bound).all()


@FEW
@given(case=pool_cases(dilation=False), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_random_float_pooling_within_bound(case, dtype, seed):
    rng = _rng(seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    assert np.array_equal(fast.max_pool(x, **case.max_kwargs), oracle.max_pool(x, **case.max_kwargs))
    ap = fast.avg_pool(x, **case.avg_kwargs)
    assert tolerance.within_bound(ap, oracle.avg_pool(x, **case.avg_kwargs),
                                  tolerance.avg_pool_error_bound(x, **case.avg_kwargs)).all()
    dy = rng.standard_normal(ap.shape).astype(dtype)
    g = fast.avg_pool_grad(dy, case.x_shape, **case.avg_kwargs)
    assert g.dtype == dtype
    assert tolerance.within_bound(g, oracle.avg_pool_grad(dy, case.x_shape, **case.avg_kwargs),
                                  tolerance.avg_pool_grad_error_bound(dy, case.x_shape, **case.avg_kwargs)).all()


@FEW
@given(case=conv_cases(max_dims=2, strings=True, flip=None), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_fft_path_within_its_normwise_bound(case, dtype, seed):
    rng = _rng(seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    got = fast.conv(x, w, algorithm="fft", **case.kwargs)
    assert got.dtype == dtype
    want = oracle.conv(x, w, **case.kwargs)
    assert tolerance.within_bound(got, want, tolerance.fft_conv_error_bound(x, w, **case.kwargs)).all(), _msg(case)


@FEW
@given(case=conv_cases(max_dims=2, max_groups=1, max_stride=1, strings=False), seed=st.integers(0, 2**16))
def test_fft_gradients_within_the_bound_of_their_forward_problems(case, seed):
    rng = _rng(seed)
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal(case.w_shape)
    dy = rng.standard_normal(case.output_shape)
    kw, p = case.kwargs, case.params
    nsp = p.ndim
    wf = w[(slice(None), slice(None), *([slice(None, None, -1)] * nsp))] if p.flip else w
    # dx = conv(dy, w^T flipped, padding d*(K-1) - lo, d*(K-1) - hi + unread, dilation d)
    pads = tuple(
        (d * (k - 1) - lo, d * (k - 1) - hi + r) for k, d, (lo, hi), r in zip(p.kernel_spatial, p.dilation, p.padding, p.unread)
    )
    assume(all(lo >= 0 and hi >= 0 for lo, hi in pads))
    wt = np.swapaxes(wf, 0, 1)[(slice(None), slice(None), *([slice(None, None, -1)] * nsp))]
    bound = tolerance.fft_conv_error_bound(dy, wt, padding=pads, dilation=p.dilation)
    gi = fast.conv_grad_input(dy, w, case.x_shape, algorithm="fft", **kw)
    assert tolerance.within_bound(gi, oracle.conv_grad_input(dy, w, case.x_shape, **kw), bound).all()
    # dw[o, c] = conv(xp^T, dy^T, stride d, dilation 1)[c, o], cropped to K
    xp = np.pad(x, ((0, 0), (0, 0), *p.padding))
    bw = tolerance.fft_conv_error_bound(np.swapaxes(xp, 0, 1), np.swapaxes(dy, 0, 1), stride=p.dilation)
    bw = np.swapaxes(bw, 0, 1)[(slice(None), slice(None), *(slice(0, k) for k in p.kernel_spatial))]
    bw = bw[(slice(None), slice(None), *([slice(None, None, -1)] * nsp))] if p.flip else bw
    gw = fast.conv_grad_weight(x, dy, case.w_shape, algorithm="fft", **kw)
    assert tolerance.within_bound(gw, oracle.conv_grad_weight(x, dy, case.w_shape, **kw), bw).all()


@FEW
@given(case=conv_transpose_cases(max_dims=2), seed=st.integers(0, 2**16))
def test_fft_conv_transpose_within_the_bound_of_its_forward_problem(case, seed):
    rng = _rng(seed)
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal(case.w_shape)
    got = fast.conv_transpose(x, w, algorithm="fft", **case.kwargs)
    want = oracle.conv_transpose(x, w, **case.kwargs)
    p = case.params
    nsp = p.ndim
    # y = conv(x dilated by s, w^T flipped, padding d*(K-1) - lo, d*(K-1) - hi + output_padding, dilation d)
    xd = np.zeros((*x.shape[:2], *((n - 1) * s + 1 for n, s in zip(x.shape[2:], p.stride))))
    xd[(slice(None), slice(None), *(slice(None, None, s) for s in p.stride))] = x
    G = p.groups
    wt = w.reshape(G, w.shape[0] // G, w.shape[1], *w.shape[2:]).swapaxes(1, 2).reshape(G * w.shape[1], -1, *w.shape[2:])
    wt = wt[(slice(None), slice(None), *([slice(None, None, -1)] * nsp))]
    pads = [(d * (k - 1) - lo, d * (k - 1) - hi + op) for k, d, (lo, hi), op in zip(w.shape[2:], p.dilation, p.padding, p.output_padding)]
    assume(all(lo >= 0 and hi >= 0 for lo, hi in pads))
    bound = tolerance.fft_conv_error_bound(xd, wt, padding=pads, dilation=p.dilation, groups=G)
    assert got.shape == want.shape
    assert tolerance.within_bound(got, want, bound).all()


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 3, 5, 5), (4, 3, 5, 5), {}),  # kernel equal to the input: output 1x1
        ((2, 3, 3, 3), (4, 3, 5, 5), dict(padding=1)),  # kernel equal to the padded input
        ((2, 2, 9, 7), (2, 2, 2, 2), dict(stride=(4, 3))),  # stride larger than the kernel
        ((0, 2, 6, 6), (3, 2, 3, 3), dict(padding=1)),  # empty batch
        ((2, 4, 6, 6), (4, 1, 3, 3), dict(groups=4, padding="same")),  # depthwise: groups == channels
        ((2, 4, 6, 6), (12, 1, 3, 3), dict(groups=4, stride=2, padding=((1, 0), (0, 2)))),  # channel multiplier 3
        ((1, 1, 2, 3, 4), (1, 1, 2, 3, 4), dict(flip=True)),  # 3-D, output 1
        ((2, 6, 11), (6, 2, 3), dict(groups=3, dilation=4, padding="full")),
    ],
)
def test_edge_cases_exact(x_shape, w_shape, kwargs):
    rng = _rng(1)
    x = rng.integers(-3, 4, x_shape).astype(np.float32)
    w = rng.integers(-3, 4, w_shape).astype(np.float32)
    want = oracle.conv(x, w, **kwargs)
    got = fast.conv(x, w, **kwargs)
    assert got.shape == want.shape and np.array_equal(got, want)
    dy = rng.integers(-3, 4, want.shape).astype(np.float32)
    assert np.array_equal(fast.conv_grad_input(dy, w, x_shape, **kwargs), oracle.conv_grad_input(dy, w, x_shape, **kwargs))
    assert np.array_equal(fast.conv_grad_weight(x, dy, w_shape, **kwargs), oracle.conv_grad_weight(x, dy, w_shape, **kwargs))


def test_unread_rows_get_an_exact_zero_gradient():
    w = np.ones((1, 1, 11, 11))
    # AlexNet conv1 at 224: 54 outputs read rows 0 .. 53*4 + 10 = 222, row 223 is never read
    dx = fast.conv_grad_input(np.ones((1, 1, 54, 54)), w, (1, 1, 224, 224), stride=4)
    assert (dx[..., -1, :] == 0).all() and (dx[..., :, -1] == 0).all()
    assert (dx[..., :-1, :-1] > 0).all()


def test_max_pool_gradient_with_infinities_and_nan_matches_the_oracle():
    # the first window is (padding, -inf): padding never wins, the -inf input gets the gradient (as PyTorch)
    x = np.array([[[-np.inf, 1.0, 2.0]]])
    dy = np.array([[[5.0, 7.0]]])
    g = fast.max_pool_grad(dy, x, 2, stride=2, padding=1)
    assert g.tolist() == [[[5.0, 0.0, 7.0]]]
    assert np.array_equal(g, oracle.max_pool_grad(dy, x, 2, stride=2, padding=1))
    rng = _rng(11)
    x = rng.choice(np.array([-np.inf, np.inf, np.nan, 0.0, 1.0]), size=(2, 3, 7, 6))
    dy = rng.integers(1, 9, (2, 3, 4, 4)).astype(np.float64)
    kw = dict(stride=2, padding=1, ceil_mode=True)
    assert np.array_equal(fast.max_pool(x, 3, **kw), oracle.max_pool(x, 3, **kw), equal_nan=True)
    assert np.array_equal(fast.max_pool_grad(dy, x, 3, **kw), oracle.max_pool_grad(dy, x, 3, **kw))


# ----------------------------------------------------------------------------- errors and dtypes


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.conv(np.ones((1, 4, 8)), np.ones((6, 4, 3)), groups=2),
        lambda m: m.conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), stride=0),
        lambda m: m.conv(np.ones((1, 1, 3)), np.ones((1, 1, 3)), dilation=2),
        lambda m: m.conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), padding="SAME"),
        lambda m: m.conv_transpose(np.ones((1, 1, 4)), np.ones((1, 1, 3)), stride=2, output_padding=2),
        lambda m: m.max_pool(np.ones((1, 1, 2, 2)), 3, padding=0),
        lambda m: m.conv_grad_input(np.ones((1, 1, 2)), np.ones((1, 1, 3)), (1, 1, 5)),
        lambda m: m.max_pool_grad(np.ones((1, 1, 2)), np.ones((1, 1, 4)), 2, stride=1),
        lambda m: m.avg_pool_grad(np.ones((1, 1, 3)), (1, 1, 4), 2),
        lambda m: m.convolve(np.ones((2, 5)), np.ones((3, 2)), "valid"),
        lambda m: m.correlate(np.ones(3), np.ones(2), "middle"),
    ],
)
def test_same_parameter_errors_as_the_oracle(call):
    with pytest.raises(ConvParamError) as want:
        call(oracle)
    with pytest.raises(ConvParamError) as got:
        call(fast)
    assert str(got.value) == str(want.value)


def test_dtype_policy():
    x32 = np.ones((1, 1, 4), np.float32)
    assert fast.conv(x32, x32[..., :2]).dtype == np.float32
    assert fast.conv(x32.astype(np.complex64), x32[..., :2]).dtype == np.complex64
    for bad in (np.float16, bool):
        with pytest.raises(fast.DTypeError, match=r"x\.dtype="):
            fast.conv(np.ones((1, 1, 4), bad), x32[..., :2])
    with pytest.raises(fast.DTypeError, match="2\\*\\*53"):
        fast.conv(np.full((1, 1, 4), 2**40), np.full((1, 1, 2), 2**20))
    with pytest.raises(fast.DTypeError, match="x.dtype=complex"):
        fast.max_pool(np.ones((1, 1, 4), np.complex128), 2)
    # a DTypeError is a ConvParamError: the command line reports it with exit status 2
    assert issubclass(fast.DTypeError, ConvParamError)


def test_complex_fft_path():
    rng = _rng(9)
    xr, xi = rng.integers(-3, 4, (1, 2, 12, 12)), rng.integers(-3, 4, (1, 2, 12, 12))
    wr, wi = rng.integers(-3, 4, (2, 2, 9, 9)), rng.integers(-3, 4, (2, 2, 9, 9))
    x, w = xr + 1j * xi, wr + 1j * wi
    got = fast.conv(x.astype(np.complex64), w.astype(np.complex64), padding="same", algorithm="fft")
    assert got.dtype == np.complex64
    # (xr + i xi) * (wr + i wi), each real part exact from the oracle
    kw = dict(padding="same")
    want = (oracle.conv(xr, wr, **kw) - oracle.conv(xi, wi, **kw)) + 1j * (oracle.conv(xr, wi, **kw) + oracle.conv(xi, wr, **kw))
    bound = tolerance.fft_conv_error_bound(x.astype(np.complex64), w.astype(np.complex64), padding="same")
    assert tolerance.within_bound(got, want, bound).all()


def test_complex_inputs_agree_with_real_parts():
    rng = _rng(3)
    xr, xi = rng.integers(-3, 4, (2, 2, 6, 6)), rng.integers(-3, 4, (2, 2, 6, 6))
    wr, wi = rng.integers(-3, 4, (3, 2, 3, 3)), rng.integers(-3, 4, (3, 2, 3, 3))
    got = fast.conv((xr + 1j * xi).astype(np.complex128), (wr + 1j * wi).astype(np.complex128), stride=2, padding=1)
    re = oracle.conv(xr, wr, stride=2, padding=1) - oracle.conv(xi, wi, stride=2, padding=1)
    im = oracle.conv(xr, wi, stride=2, padding=1) + oracle.conv(xi, wr, stride=2, padding=1)
    assert np.array_equal(got, re + 1j * im)


# ----------------------------------------------------------------------------- memory cap and determinism


def test_memory_cap_chunks_give_the_same_bits():
    rng = _rng(4)
    # 24x24 outputs: the per-sample layout, one GEMM per sample whatever the chunk
    x = rng.standard_normal((5, 3, 24, 24)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    ref = fast.conv(x, w, padding=1, algorithm="direct")
    sample = 3 * 26 * 26 * 4 + 3 * 9 * 576 * 4
    got = fast.conv(x, w, padding=1, algorithm="direct", max_memory=2 * sample + 1000)
    assert np.array_equal(got, ref)
    # the input gradient's flat-tap GEMMs cover blocks of samples: a cap that forces smaller blocks may change
    # the summation order (fixed by the shapes and the cap), so integer-valued operands show it still sums right
    dy = np.rint(4 * rng.standard_normal(ref.shape)).astype(np.float32)
    wi32 = np.rint(4 * w)
    with fast.memory_cap(x.nbytes + 2 * sample):  # the result (x's shape) counts under the cap
        gi = fast.conv_grad_input(dy, wi32, x.shape, padding=1)
    assert np.array_equal(gi, oracle.conv_grad_input(dy, wi32, x.shape, padding=1))
    # below one sample next to the result (the cap counts it): chunks of output rows; integer-valued inputs stay exact
    xi, wi = np.rint(4 * x), np.rint(4 * w)
    rows = fast.conv(xi, wi, padding=1, algorithm="direct", max_memory=ref.nbytes + sample // 3)
    assert np.array_equal(rows, oracle.conv(xi, wi, padding=1))


def test_gradients_under_a_cap_below_one_sample_use_row_chunks_and_stay_exact():
    rng = _rng(8)
    x = rng.integers(-3, 4, (2, 3, 24, 24)).astype(np.float64)
    w = rng.integers(-3, 4, (4, 3, 3, 3)).astype(np.float64)
    dy = rng.integers(-3, 4, (2, 4, 24, 24)).astype(np.float64)
    # 130 kB: less than one sample's col2im / im2col buffer (over 140 kB) next to the result, so both fall back
    gi = fast.conv_grad_input(dy, w, x.shape, padding=1, algorithm="direct", max_memory=130_000)
    assert np.array_equal(gi, oracle.conv_grad_input(dy, w, x.shape, padding=1))
    gw = fast.conv_grad_weight(x, dy, w.shape, padding=1, algorithm="direct", max_memory=130_000)
    assert np.array_equal(gw, oracle.conv_grad_weight(x, dy, w.shape, padding=1))


@pytest.mark.parametrize("kwargs", [dict(padding=3), dict(stride=2, dilation=2, padding=4), dict(padding=((5, 1), (2, 0)), flip=True)])
def test_fft_under_a_cap_below_one_sample_uses_row_slabs_within_the_bound(kwargs):
    rng = _rng(13)
    x = rng.standard_normal((2, 3, 40, 30))
    w = rng.standard_normal((4, 3, 9, 7))
    want = oracle.conv(x, w, **kwargs)
    bound = tolerance.fft_conv_error_bound(x, w, **kwargs)
    # the result and 400 kB: less than one sample's spectra (640 to 830 kB), more than one slab of output rows
    got = fast.conv(x, w, algorithm="fft", max_memory=want.nbytes + 400_000, **kwargs)
    assert tolerance.within_bound(got, want, bound).all()
    with pytest.raises(fast.MemoryCapError, match="one output row of one sample of the FFT conv"):
        fast.conv(x, w, algorithm="fft", max_memory=want.nbytes + 30_000, **kwargs)


@pytest.mark.parametrize("tile", [1, 2000, 20000])
def test_small_cache_tiles_give_the_exact_result(monkeypatch, tile):
    # large planes are processed in tiles of output rows (and col2im in steps of samples): force many tiles
    from refconv.fast import direct

    monkeypatch.setattr(direct, "TILE_BYTES", tile)
    monkeypatch.setattr(direct, "DEPTHWISE_BLOCK_BYTES", tile)
    rng = _rng(14)
    x = rng.integers(-3, 4, (3, 4, 40, 36)).astype(np.float32)  # at least 512 outputs per sample
    for w_shape, kw in [((6, 4, 3, 2), dict(padding=(1, 2), stride=(1, 2))), ((4, 2, 3, 3), dict(groups=2, dilation=2)),
                        ((8, 1, 3, 3), dict(groups=4, padding=1))]:
        w = rng.integers(-3, 4, w_shape).astype(np.float32)
        want = oracle.conv(x, w, **kw)
        assert np.array_equal(fast.conv(x, w, algorithm="direct", **kw), want), kw
        dy = rng.integers(-3, 4, want.shape).astype(np.float32)
        assert np.array_equal(fast.conv_grad_input(dy, w, x.shape, **kw), oracle.conv_grad_input(dy, w, x.shape, **kw)), kw
        assert np.array_equal(fast.conv_grad_weight(x, dy, w.shape, **kw), oracle.conv_grad_weight(x, dy, w.shape, **kw)), kw


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 4, 50, 50), (4, 1, 3, 3), dict(groups=4, padding=1)),  # depthwise, large planes
        ((1, 32, 48, 48), (8, 32, 3, 3), dict(padding=(1, 2), dilation=(1, 2), flip=True)),  # 32 channels per group
        ((1, 4, 30, 100), (6, 2, 2, 3), dict(groups=2, padding="same")),  # col2im on large planes
    ],
)
def test_input_gradient_routes_for_large_planes_exact(x_shape, w_shape, kwargs):
    rng = _rng(15)
    w = rng.integers(-3, 4, w_shape).astype(np.float64)
    out = oracle.conv(np.zeros(x_shape), w, **kwargs).shape
    dy = rng.integers(-3, 4, out).astype(np.float64)
    got = fast.conv_grad_input(dy, w, x_shape, **kwargs)
    assert np.array_equal(got, oracle.conv_grad_input(dy, w, x_shape, **kwargs))


@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(padding=((2, 0), (1, 3)), stride=2, dilation=(2, 1))])
def test_forward_of_large_padded_samples_exact(kwargs):
    # over 128 kB per padded sample: padded one sample at a time into a reused buffer
    rng = _rng(17)
    x = rng.integers(-3, 4, (3, 16, 48, 48)).astype(np.float64)
    w = rng.integers(-3, 4, (8, 16, 3, 3)).astype(np.float64)
    assert np.array_equal(fast.conv(x, w, **kwargs), oracle.conv(x, w, **kwargs))


def test_memory_cap_error_before_allocating():
    with pytest.raises(fast.MemoryCapError, match="max_memory=1000"):
        fast.conv(np.ones((1, 64, 100, 100), np.float32), np.ones((64, 64, 3, 3), np.float32), max_memory=1000)
    # the result (2*3*20*20 float64) counts, then one padded sample (3*40*40 float64 and more) next to it
    with fast.memory_cap(1000), pytest.raises(fast.MemoryCapError, match="the result of max_pool needs 19200 bytes"):
        fast.max_pool(np.ones((2, 3, 40, 40)), 2)
    with fast.memory_cap(40000), pytest.raises(
        fast.MemoryCapError, match=r"one batch sample of max_pool needs \d+ bytes next to 19200 bytes already held"
    ):
        fast.max_pool(np.ones((2, 3, 40, 40)), 2)
    with pytest.raises(ConvParamError, match="max_memory=0"):
        fast.conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), max_memory=0)


def test_results_do_not_depend_on_the_thread_count():
    from threadpoolctl import threadpool_limits

    rng = _rng(6)
    x = rng.standard_normal((4, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    ref = fast.conv(x, w, padding=1)
    dy = rng.standard_normal(ref.shape).astype(np.float32)
    refw = fast.conv_grad_weight(x, dy, w.shape, padding=1)
    with threadpool_limits(limits=1):
        assert np.array_equal(fast.conv(x, w, padding=1), ref)
        assert np.array_equal(fast.conv_grad_weight(x, dy, w.shape, padding=1), refw)


def test_blas_threads_are_restored_after_a_call():
    from threadpoolctl import threadpool_info

    before = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    fast.conv(np.ones((4, 3, 20, 20), np.float32), np.ones((4, 3, 3, 3), np.float32))
    assert [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"] == before


def test_results_do_not_depend_on_the_number_of_worker_threads(monkeypatch):
    from refconv.fast import direct, fft, parallel

    rng = _rng(10)
    x = rng.standard_normal((6, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    wd = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((6, 8, 20, 20)).astype(np.float32)
    # small planes over many samples: several flat-tap blocks, which tasks group by the worker count
    xs = rng.standard_normal((100, 6, 14, 14)).astype(np.float32)
    ws = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    dys = rng.standard_normal((100, 16, 10, 10)).astype(np.float32)

    def everything():
        return [
            fast.conv(xs, ws), fast.conv_grad_input(dys, ws, xs.shape), fast.conv_grad_weight(xs, dys, ws.shape),
            fast.conv(xs[:, :1], ws[:6, :1], padding=2),
            fast.conv(x, w, padding=1), fast.conv(x, wd, padding=1, groups=8),
            fast.conv_grad_input(dy, w, x.shape, padding=1), fast.conv_grad_weight(x, dy, w.shape, padding=1),
            fast.conv_grad_weight(x, dy, wd.shape, padding=1, groups=8), fast.max_pool_grad(dy[:, :, ::2, ::2], x, 3, stride=2, padding=1),
            fast.conv(x, w, padding=1, algorithm="fft"), fast.avg_pool(x, 3, stride=2, padding=1),
        ]

    ref = everything()
    for n in (1, 3):
        monkeypatch.setattr(parallel, "workers", lambda n=n: n)
        monkeypatch.setattr(direct, "workers", lambda n=n: n)
        monkeypatch.setattr(fft, "workers", lambda n=n: n)
        assert all(np.array_equal(a, b) for a, b in zip(everything(), ref)), n


def test_results_do_not_depend_on_memory_alignment():
    rng = _rng(16)

    def shifted(a, k):
        # the same values at an address k elements further into a fresh buffer
        buf = np.empty(a.size + 8, dtype=a.dtype)
        out = buf[k : k + a.size].reshape(a.shape)
        out[...] = a
        return out

    x = rng.standard_normal((3, 8, 17, 19)).astype(np.float32)
    wd = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    w = rng.standard_normal((5, 8, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((3, 8, 17, 19)).astype(np.float32)
    dyw = rng.standard_normal((3, 5, 17, 19)).astype(np.float32)

    def everything(k):
        xs, dys, dyws = shifted(x, k), shifted(dy, k), shifted(dyw, k)
        return [
            fast.conv_grad_bias(dys), fast.conv_grad_weight(xs, dys, wd.shape, padding=1, groups=8),
            fast.conv(xs, shifted(w, k), padding=1), fast.conv_grad_weight(xs, dyws, w.shape, padding=1),
        ]

    ref = everything(0)
    for k in (1, 3, 5):
        assert all(np.array_equal(a, b) for a, b in zip(everything(k), ref)), k


def test_backward_scatters_do_not_use_add_at():
    import inspect

    from refconv.fast import direct, pool

    for mod in (direct, pool):
        assert "np.add.at(" not in inspect.getsource(mod)


def test_auto_picks_fft_for_large_kernels_and_agrees():
    rng = _rng(7)
    a = rng.integers(-3, 4, (64, 64)).astype(np.float64)
    v = rng.integers(-3, 4, (21, 21)).astype(np.float64)
    from refconv.fast.fft import prefer_fft
    from refconv.params import conv_params

    assert prefer_fft((1, 1, 64, 64), (1, 1, 21, 21), conv_params((1, 1, 64, 64), (1, 1, 21, 21), padding="same"), np.float64)
    got = fast.convolve(a, v, "same")
    want = oracle.convolve(a, v, "same")
    # convolve(a, v, 'same') is conv with the flipped kernel and padding (10, 10)
    bound = tolerance.fft_conv_error_bound(a[None, None], v[None, None], padding=10, flip=True)[0, 0]
    assert tolerance.within_bound(got, want, bound).all()


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((3, 8, 5, 6), (5, 8, 3, 2), {"stride": (2, 1), "dilation": (2, 1), "padding": ((1, 0), (2, 1))}),
    ((2, 6, 14, 14), (16, 6, 5, 5), {}),
    ((4, 32, 4, 4), (8, 32, 3, 3), {"padding": 1, "flip": True}),
    ((4, 8, 5, 5), (32, 8, 3, 3), {"padding": 1}),
    ((2, 5, 9), (3, 5, 4), {"padding": ((2, 3),), "stride": 2}),
    ((2, 4, 4, 5, 6), (3, 4, 2, 3, 4), {"padding": 1, "dilation": (2, 1, 1)}),
])
def test_channels_last_small_planes_exact(monkeypatch, x_shape, w_shape, kwargs):
    """Small planes of one group with long window rows take the channels-last im2col (one GEMM per block):
    the forward pass, the weight gradient, and (stride 1, wide) the input gradient as its forward identity."""
    from refconv.fast import direct

    taken, weights = [], []
    real, real_w = direct._forward_channels_last, direct._grad_weight_channels_last
    monkeypatch.setattr(direct, "_forward_channels_last", lambda *a: taken.append(1) or real(*a))
    monkeypatch.setattr(direct, "_grad_weight_channels_last", lambda *a: weights.append(1) or real_w(*a))
    rng = _rng(12)
    for dtype in (np.float32, np.float64):
        x = rng.integers(-4, 5, x_shape).astype(dtype)
        w = rng.integers(-4, 5, w_shape).astype(dtype)
        b = rng.integers(-4, 5, w_shape[0]).astype(dtype)
        got = fast.conv(x, w, b, algorithm="direct", **kwargs)
        assert got.dtype == dtype and np.array_equal(got, oracle.conv(x, w, b, **kwargs))
        dy = rng.integers(-4, 5, got.shape).astype(dtype)
        gw = fast.conv_grad_weight(x, dy, w_shape, algorithm="direct", **kwargs)
        assert np.array_equal(gw, oracle.conv_grad_weight(x, dy, w_shape, **kwargs))
        gi = fast.conv_grad_input(dy, w, x_shape, algorithm="direct", **kwargs)
        assert np.array_equal(gi, oracle.conv_grad_input(dy, w, x_shape, **kwargs))
    assert taken and weights
    # blocks of one sample each: still exact
    taken.clear()
    monkeypatch.setattr(direct, "_block", lambda N, Op: 1)
    assert np.array_equal(fast.conv(x, w, b, algorithm="direct", **kwargs), oracle.conv(x, w, b, **kwargs)) and taken
    assert np.array_equal(fast.conv_grad_weight(x, dy, w_shape, algorithm="direct", **kwargs),
                          oracle.conv_grad_weight(x, dy, w_shape, **kwargs))


def test_input_gradient_of_a_one_pixel_output_takes_col2im_and_stays_exact(monkeypatch):
    """LeNet-5's C5 (a 5x5 input, a 5x5 kernel, a 1x1 output): the forward identity would read 25 times the
    padding's zeros; col2im runs instead (no channels-last forward), exact against the oracle."""
    from refconv.fast import direct

    identity = []
    real = direct._forward_channels_last
    monkeypatch.setattr(direct, "_forward_channels_last", lambda *a: identity.append(1) or real(*a))
    rng = _rng(5)
    w = rng.integers(-4, 5, (24, 16, 5, 5)).astype(np.float32)
    dy = rng.integers(-4, 5, (6, 24, 1, 1)).astype(np.float32)
    got = fast.conv_grad_input(dy, w, (6, 16, 5, 5))
    assert not identity and np.array_equal(got, oracle.conv_grad_input(dy, w, (6, 16, 5, 5)))
    # an output as large as the input (4x4, padding 1): the forward identity, exact too
    dy = rng.integers(-4, 5, (6, 24, 4, 4)).astype(np.float32)
    w3 = w[:, :, :3, :3].copy()
    got = fast.conv_grad_input(dy, w3, (6, 16, 4, 4), padding=1)
    assert identity and np.array_equal(got, oracle.conv_grad_input(dy, w3, (6, 16, 4, 4), padding=1))


def test_validation_is_kept_per_geometry_and_tells_types_apart(monkeypatch):
    """A repeated geometry is validated once and a repeated signature planned once; ``True`` is not taken for ``1``
    (nor a list for a tuple)."""
    import importlib

    fconv = importlib.import_module("refconv.fast.conv")
    fmemo = importlib.import_module("refconv.fast.memo")
    calls, plans = [], []
    real = fconv.conv_params
    monkeypatch.setattr(fconv, "_conv_params", fmemo.memoized(lambda *a, **k: calls.append(1) or real(*a, **k)))
    for name in ("_conv_plans", "_grad_input_plans", "_grad_weight_plans"):  # empty plan memos that count their plans
        make = getattr(fconv, name).__wrapped__
        monkeypatch.setattr(fconv, name, fmemo.memoized(lambda *a, make=make, **k: plans.append(1) or make(*a, **k)))
    x, w = np.ones((1, 2, 6, 6)), np.ones((3, 2, 3, 3))
    for _ in range(3):
        assert fast.conv(x, w, stride=1).shape == (1, 3, 4, 4)
    assert len(calls) == 1 and len(plans) == 1
    for _ in range(3):  # float32 operands: the same validation, another plan
        assert fast.conv(x.astype(np.float32), w, stride=1).dtype == np.float64
    assert len(calls) == 1 and len(plans) == 2
    with pytest.raises(ConvParamError) as cached:
        fast.conv(x, w, stride=True)
    with pytest.raises(ConvParamError) as fresh:
        oracle.conv(x, w, stride=True)
    assert str(cached.value) == str(fresh.value)
    # a list is not a plain value: validated each time, same result
    assert fast.conv_grad_input(np.ones((1, 3, 4, 4)), w, [1, 2, 6, 6]).shape == (1, 2, 6, 6)
    assert fast.conv_grad_input(np.ones((1, 3, 4, 4)), w, [1, 2, 6, 6]).shape == (1, 2, 6, 6)
    # the memo stays bounded: the oldest entries go first
    monkeypatch.setattr(fmemo, "MEMO_SIZE", 4)
    seen = []
    memo = fmemo.memoized(lambda v: seen.append(v) or v * 2)
    assert [memo(v) for v in (0, 1, 2, 3, 3, 4)] == [0, 2, 4, 6, 6, 8] and seen == [0, 1, 2, 3, 4]
    assert memo(4) == 8 and memo(0) == 0 and seen == [0, 1, 2, 3, 4, 0]  # 4 kept, 0 dropped for it


def _plan_arrays():
    return np.ones((2, 3, 16, 16), np.float32), np.ones((4, 3, 3, 3), np.float32), np.ones((2, 4, 14, 14), np.float32)


def _plan_calls(x, w, dy):
    """conv and both gradients on these arrays (each planned per signature)."""
    return (lambda: fast.conv(x, w), lambda: fast.conv_grad_input(dy, w, x.shape),
            lambda: fast.conv_grad_weight(x, dy, w.shape))


def test_a_kept_plan_follows_the_cap_in_effect_and_keeps_no_array():
    import gc
    import weakref

    for call in _plan_calls(*_plan_arrays()):
        call()  # planned under the default cap
        with fast.memory_cap(1024), pytest.raises(fast.MemoryCapError, match="max_memory=1024"):
            call()
        call()
    x, w, _ = _plan_arrays()
    with pytest.raises(fast.MemoryCapError, match="max_memory=2048"):
        fast.conv(x, w, max_memory=2048)
    # the plans of these signatures hold no operand: the arrays go when the caller drops them
    arrays = _plan_arrays()
    for call in _plan_calls(*arrays):
        call()
    refs = [weakref.ref(a) for a in arrays]
    del arrays, call
    gc.collect()
    assert all(r() is None for r in refs)


@pytest.mark.parametrize("xs,ws,kw", [
    ((4, 16, 5, 5), (12, 16, 5, 5), {}),                          # LeNet-5's C5: the window is the input
    ((3, 6, 7, 7), (4, 3, 3, 3), dict(groups=2, dilation=3)),     # a dilated window over the whole input
    ((2, 4, 3, 3), (6, 2, 5, 5), dict(groups=2, padding=1)),      # padding the window reads
    ((2, 3, 9), (5, 3, 5), dict(dilation=2)),
    ((1, 2, 3, 4, 3), (3, 2, 3, 4, 3), {}),
])
def test_single_window_input_gradient_is_exact(xs, ws, kw):
    # one output position: one GEMM per group, written to the window's input positions
    rng = _rng(21)
    x, w = rng.integers(-3, 4, xs).astype(np.float32), rng.integers(-3, 4, ws).astype(np.float32)
    dy = rng.integers(-3, 4, oracle.conv(x, w, **kw).shape).astype(np.float32)
    assert np.prod(dy.shape[2:]) == 1
    assert np.array_equal(fast.conv_grad_input(dy, w, xs, **kw), oracle.conv_grad_input(dy, w, xs, **kw))
