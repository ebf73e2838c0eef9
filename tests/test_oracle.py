"""Properties of the exact oracle, over all parameters, in exact integer arithmetic.

Witnesses: a literal per-element loop written here from the definition, the
matrix form, and (when installed) PyTorch on integer-valued float64 inputs,
which it computes exactly.
"""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv import oracle, shapes
from refconv.conformance.strategies import conv_cases, conv_transpose_cases, pool_cases

SEEDS = st.integers(0, 2**32 - 1)


def literal_conv(x, w, b, p):
    """The definition of specs/convolution.md, one output element at a time (pure Python ints)."""
    n_, cin = p.input_shape[:2]
    cout, cg = p.weight_shape[:2]
    og = cout // p.groups
    out = np.zeros(p.output_shape, dtype=object)
    for n, o in itertools.product(range(n_), range(cout)):
        g = o // og
        for pos in itertools.product(*map(range, p.output_spatial)):
            acc = int(b[o]) if b is not None else 0
            for c in range(cg):
                for k in itertools.product(*map(range, p.kernel_spatial)):
                    kw = tuple(K - 1 - ki for K, ki in zip(p.kernel_spatial, k)) if p.flip else k
                    idx = []
                    for pi, ki, s, d, (lo, _), a, size in zip(pos, k, p.stride, p.dilation, p.padding, p.input_dilation, p.input_spatial):
                        j = pi * s + ki * d - lo  # position in the dilated input
                        if j < 0 or j % a or j // a >= size:
                            idx = None
                            break
                        idx.append(j // a)
                    if idx is not None:
                        acc += int(x[(n, g * cg + c, *idx)]) * int(w[(o, c, *kw)])
            out[(n, o, *pos)] = acc
    return out


def dot(a, b):
    return sum(int(u) * int(v) for u, v in zip(np.ravel(a), np.ravel(b)))


@given(conv_cases(flip=None), SEEDS)
def test_conv_matches_literal_definition_and_shape_formula(case, seed):
    x, w, b = case.arrays(np.random.default_rng(seed))
    y = oracle.conv(x, w, b, **case.kwargs)
    assert y.shape == case.output_shape
    for i, (n, k, s, pad, d) in enumerate(zip(case.x_shape[2:], case.w_shape[2:], case.params.stride, case.params.padding, case.params.dilation)):
        assert y.shape[2 + i] == shapes.conv_output_size(n, k, s, pad, d)
    assert np.array_equal(y, literal_conv(x, w, b, case.params))


@given(conv_cases(), SEEDS)
def test_convolution_is_correlation_with_flipped_kernel(case, seed):
    x, w, b = case.arrays(np.random.default_rng(seed))
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]
    kw = dict(case.kwargs, flip=True)
    assert np.array_equal(oracle.conv(x, w, b, **kw), oracle.conv(x, flipped, b, **case.kwargs))


@given(st.integers(1, 3).flatmap(lambda nd: st.tuples(*[st.tuples(st.integers(1, 5), st.integers(1, 5))] * nd)), SEEDS)
def test_full_convolution_commutes(dims, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-9, 10, [d[0] for d in dims])
    v = rng.integers(-9, 10, [d[1] for d in dims])
    assert np.array_equal(oracle.convolve(a, v), oracle.convolve(v, a))


@given(conv_cases(flip=None, bias=False), SEEDS, st.integers(-3, 3), st.integers(-3, 3))
def test_linearity_in_x_and_w(case, seed, alpha, beta):
    rng = np.random.default_rng(seed)
    x1, w1, _ = case.arrays(rng)
    x2, w2, _ = case.arrays(rng)
    kw = case.kwargs
    assert np.array_equal(oracle.conv(alpha * x1 + beta * x2, w1, **kw), alpha * oracle.conv(x1, w1, **kw) + beta * oracle.conv(x2, w1, **kw))
    assert np.array_equal(oracle.conv(x1, alpha * w1 + beta * w2, **kw), alpha * oracle.conv(x1, w1, **kw) + beta * oracle.conv(x1, w2, **kw))


@given(conv_cases(strings=False, max_stride=1, max_padding=0), SEEDS, st.integers(1, 3))
def test_translation_equivariance_at_stride_1(case, seed, shift):
    x, w, b = case.arrays(np.random.default_rng(seed))
    # shifting the input left by `shift` on the last axis shifts every output left by `shift`
    if x.shape[-1] <= shift or case.output_shape[-1] <= shift:
        return
    y = oracle.conv(x, w, b, **case.kwargs)
    ys = oracle.conv(x[..., shift:], w, b, **case.kwargs)
    assert np.array_equal(ys, y[..., shift:])


@given(conv_cases(flip=None, bias=False), SEEDS)
def test_adjoint_identity_exact(case, seed):
    rng = np.random.default_rng(seed)
    x, w, _ = case.arrays(rng)
    g = rng.integers(-8, 9, case.output_shape)
    y = oracle.conv(x, w, **case.kwargs)
    dx = oracle.conv_grad_input(g, w, case.x_shape, **case.kwargs)
    dw = oracle.conv_grad_weight(x, g, case.w_shape, **case.kwargs)
    assert dx.shape == x.shape and dw.shape == w.shape
    assert dot(y, g) == dot(x, dx) == dot(w, dw)


@given(conv_cases(flip=None, bias=False, max_batch=1), SEEDS)
def test_conv_matrix_agrees_with_conv(case, seed):
    x, w, _ = case.arrays(np.random.default_rng(seed))
    kw = case.kwargs
    m = oracle.conv_matrix(w, case.x_shape[1:], **kw)
    assert np.array_equal(m @ x[0].reshape(-1), oracle.conv(x, w, **kw)[0].reshape(-1))
    g = np.random.default_rng(seed + 1).integers(-5, 6, case.output_shape)
    assert np.array_equal(m.T @ g[0].reshape(-1), oracle.conv_grad_input(g, w, case.x_shape, **kw)[0].reshape(-1))


@given(conv_cases(bias=False), SEEDS)
def test_transposed_convolution_is_the_input_gradient(case, seed):
    rng = np.random.default_rng(seed)
    _, w, _ = case.arrays(rng)
    g = rng.integers(-8, 9, case.output_shape)
    p = case.params
    # the rows the forward pass never reads are exactly the output_padding
    y = oracle.conv_transpose(g, w, stride=p.stride, padding=p.padding, output_padding=p.unread, dilation=p.dilation, groups=p.groups)
    assert np.array_equal(y, oracle.conv_grad_input(g, w, case.x_shape, **case.kwargs))


@given(conv_cases(flip=None, bias=False), SEEDS)
def test_gradients_by_general_operation(case, seed):
    """dL/dx is the general op on dy (input dilation = stride) with the flipped, channel-transposed kernel."""
    rng = np.random.default_rng(seed)
    _, w, _ = case.arrays(rng)
    g = rng.integers(-8, 9, case.output_shape)
    p = case.params
    G, og = p.groups, p.weight_shape[0] // p.groups
    cg = p.weight_shape[1]
    # (C_out, Cg, K) -> per group transpose to (C_in, Og, K)
    wt = np.concatenate([np.swapaxes(w[i * og:(i + 1) * og], 0, 1) for i in range(G)], axis=0)
    assert wt.shape == (G * cg, og, *p.kernel_spatial)
    pads = tuple((d * (k - 1) - lo, d * (k - 1) - hi + r) for d, k, (lo, hi), r in zip(p.dilation, p.kernel_spatial, p.padding, p.unread))
    dx = oracle.general_conv(g, wt, stride=1, padding=pads, dilation=p.dilation, input_dilation=p.stride, groups=G, flip=not p.flip)
    assert np.array_equal(dx, oracle.conv_grad_input(g, w, case.x_shape, **case.kwargs))


@given(conv_transpose_cases(), SEEDS)
def test_conv_transpose_shape_and_adjointness(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 9, case.x_shape)
    w = rng.integers(-8, 9, case.w_shape)
    y = oracle.conv_transpose(x, w, **case.kwargs)
    assert y.shape == case.output_shape
    kw = case.kwargs
    for i, n in enumerate(case.x_shape[2:]):
        assert y.shape[2 + i] == shapes.conv_transpose_output_size(n, case.w_shape[2 + i], kw["stride"][i], kw["padding"][i], kw["output_padding"][i], kw["dilation"][i])
    # <conv_transpose(x), g> == <x, conv(g)>: the forward convolution is its adjoint
    g = rng.integers(-8, 9, y.shape)
    fy = oracle.conv(g, w, stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"], groups=kw["groups"])
    fy = fy[(slice(None), slice(None)) + tuple(slice(0, n) for n in case.x_shape[2:])]
    assert dot(y, g) == dot(x, fy)


def literal_pool(x, p, how):
    out = np.zeros(p.output_shape, dtype=object)
    for n, c in itertools.product(*map(range, x.shape[:2])):
        for pos in itertools.product(*map(range, p.output_spatial)):
            vals, count_pad = [], 0
            for k in itertools.product(*map(range, p.kernel_size)):
                idx = [pi * s + ki * d - lo for pi, ki, s, d, (lo, _) in zip(pos, k, p.stride, p.dilation, p.padding)]
                inside = all(0 <= j < size for j, size in zip(idx, x.shape[2:]))
                in_pad = all(-lo <= j < size + hi for j, size, (lo, hi) in zip(idx, x.shape[2:], p.padding))
                if inside:
                    vals.append(int(x[(n, c, *idx)]))
                if in_pad:
                    count_pad += 1
            out[(n, c, *pos)] = max(vals, default=-math.inf) if how == "max" else Fraction(sum(vals), count_pad if p.count_include_pad else len(vals))
    return out


@given(pool_cases(), SEEDS)
def test_max_pool_matches_literal_definition(case, seed):
    x = np.random.default_rng(seed).integers(-20, 21, case.x_shape).astype(np.float64)
    y = oracle.max_pool(x, **case.max_kwargs)
    assert np.array_equal(y, literal_pool(x, case.params, "max"))


@given(pool_cases(dilation=False), SEEDS)
def test_avg_pool_matches_literal_definition(case, seed):
    x = np.random.default_rng(seed).integers(-20, 21, case.x_shape)
    y = oracle.avg_pool(x, **case.avg_kwargs, exact=True)
    assert np.array_equal(y, literal_pool(x, case.params, "avg"))
    # the default float64 result is the exact value correctly rounded
    assert np.array_equal(oracle.avg_pool(x, **case.avg_kwargs), np.vectorize(float)(y).astype(np.float64))


@given(pool_cases(dilation=False), SEEDS)
def test_avg_pool_gradient_is_the_adjoint(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-20, 21, case.x_shape)
    g = rng.integers(-20, 21, case.output_shape)
    y = oracle.avg_pool(x, **case.avg_kwargs, exact=True)
    dx = oracle.avg_pool_grad(g, case.x_shape, **case.avg_kwargs, exact=True)
    assert sum(np.ravel(y * g)) == sum(np.ravel(dx * x))


@given(pool_cases(), SEEDS)
def test_max_pool_gradient_goes_to_first_maximum(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, case.x_shape).astype(np.float64)  # few values: many ties
    g = rng.integers(-9, 10, case.output_shape)
    dx = oracle.max_pool_grad(g, x, **case.max_kwargs)
    p = case.params
    expected = np.zeros(x.shape, dtype=np.int64)
    for n, c in itertools.product(*map(range, x.shape[:2])):
        for pos in itertools.product(*map(range, p.output_spatial)):
            best = None
            for k in itertools.product(*map(range, p.kernel_size)):
                idx = tuple(pi * s + ki * d - lo for pi, ki, s, d, (lo, _) in zip(pos, k, p.stride, p.dilation, p.padding))
                if all(0 <= j < size for j, size in zip(idx, x.shape[2:])) and (best is None or x[(n, c) + idx] > x[(n, c) + best]):
                    best = idx
            if best is not None:  # a dilated window of padding only has no input to credit
                expected[(n, c) + best] += g[(n, c) + pos]
    assert np.array_equal(dx, expected)


# ---------------------------------------------------------------- exactness of floats


def correctly_rounded(value: Fraction, got, dtype) -> bool:
    """``got`` is a nearest float of ``dtype`` to ``value`` (ties: even significand)."""
    got = dtype(got)
    if not np.isfinite(got):
        return False
    lo_n, hi_n = np.nextafter(got, dtype(-np.inf)), np.nextafter(got, dtype(np.inf))
    err = abs(Fraction(float(got)) - value)
    ok = err <= abs(Fraction(float(lo_n)) - value) and err <= abs(Fraction(float(hi_n)) - value)
    if ok and (err == abs(Fraction(float(lo_n)) - value) or err == abs(Fraction(float(hi_n)) - value)):
        uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
        ok = int(np.array(got, dtype=dtype).view(uint)) & 1 == 0  # ties go to the even significand
    return ok


@settings(max_examples=60)
@given(conv_cases(max_dims=2, max_batch=1), SEEDS, st.sampled_from([np.float16, np.float32, np.float64]))
def test_float_results_are_correctly_rounded(case, seed, dtype):
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-3, 4, size=1)[0]
    x = (rng.standard_normal(case.x_shape) * scale).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    b = rng.standard_normal(case.w_shape[0]).astype(dtype) if case.bias else None
    y = oracle.conv(x, w, b, **case.kwargs)
    ex = oracle.conv(x, w, b, **case.kwargs, exact=True)
    assert y.dtype == dtype
    # the exact value, recomputed independently from Fractions of the stored floats
    xf = np.vectorize(Fraction, otypes=[object])(x.astype(np.float64))
    wf = np.vectorize(Fraction, otypes=[object])(w.astype(np.float64))
    bf = None if b is None else np.vectorize(Fraction, otypes=[object])(b.astype(np.float64))
    assert np.array_equal(ex, literal_fraction_conv(xf, wf, bf, case))
    assert all(correctly_rounded(v, g, dtype) for v, g in zip(ex.flat, y.flat))


def literal_fraction_conv(x, w, b, case):
    common = math.lcm(*[v.denominator for v in x.flat], *[v.denominator for v in w.flat], *([] if b is None else [v.denominator for v in b.flat]))
    xi = np.vectorize(lambda v: int(v * common), otypes=[object])(x)
    wi = np.vectorize(lambda v: int(v * common), otypes=[object])(w)
    bi = None if b is None else np.vectorize(lambda v: int(v * common * common), otypes=[object])(b)
    y = literal_conv(xi, wi, bi, case.params)
    return np.vectorize(lambda v: Fraction(v, common * common), otypes=[object])(y)


def test_rational_and_symbolic_entries():
    import sympy

    x = np.array([[[Fraction(1, 2), Fraction(1, 3), 2]]], dtype=object)
    w = np.array([[[Fraction(3, 4), 5]]], dtype=object)
    assert oracle.conv(x, w).tolist() == [[[Fraction(1, 2) * Fraction(3, 4) + Fraction(5, 3), Fraction(1, 4) + 10]]]
    a, b, c, u, v = sympy.symbols("a b c u v")
    y = oracle.conv(np.array([[[a, b, c]]], dtype=object), np.array([[[u, v]]], dtype=object))
    assert [sympy.expand(e - t) for e, t in zip(y[0, 0], [a * u + b * v, b * u + c * v])] == [0, 0]


def test_ieee_specials():
    nan, inf = np.nan, np.inf
    x = np.array([[[1.0, nan, 2.0, 3.0, inf, 1.0]]])
    y = oracle.conv(x, np.array([[[1.0, 1.0]]]))
    assert np.isnan(y[0, 0, :2]).all() and y[0, 0, 2] == 5.0 and y[0, 0, 3] == inf and y[0, 0, 4] == inf
    # inf * 0 is NaN; opposite infinities give NaN
    assert np.isnan(oracle.conv(np.array([[[inf, 1.0]]]), np.array([[[0.0, 1.0]]])))[0, 0, 0]
    assert np.isnan(oracle.conv(np.array([[[inf, -inf]]]), np.array([[[1.0, 1.0]]])))[0, 0, 0]
    # overflow of the exact finite sum rounds to inf
    big = np.finfo(np.float32).max
    assert oracle.conv(np.array([[[big, big]]], dtype=np.float32), np.array([[[1, 1]]], dtype=np.float32))[0, 0, 0] == np.inf
    assert np.isnan(oracle.max_pool(x, 2)[0, 0, 0])
    # several outputs: 0 * inf must still be NaN (a BLAS product may skip zero factors)
    y = oracle.conv(np.array([[[inf, 1.0, 2.0]]]), np.array([[[0.0, 1.0]]]))
    assert np.isnan(y[0, 0, 0]) and y[0, 0, 1] == 2.0
    t = oracle.conv_transpose(np.array([[[inf, 1.0, 2.0]]]), np.array([[[0.0, 1.0]]]))
    assert np.isnan(t[0, 0, 0]) and t[0, 0, 1:].tolist() == [inf, 1.0, 2.0]
    g = oracle.conv_grad_input(np.array([[[inf, 1.0]]]), np.array([[[0.0, 1.0]]]), (1, 1, 3))
    assert np.isnan(g[0, 0, 0]) and g[0, 0, 1:].tolist() == [inf, 1.0]


def test_general_conv_pads_before_cropping():
    assert oracle.general_conv(np.array([[[5]]]), np.array([[[1]]]), padding=[(-2, 2)]).tolist() == [[[0]]]
    assert oracle.general_conv(np.array([[[1, 2, 3]]]), np.array([[[1]]]), padding=[(-1, 1)], input_dilation=2).tolist() == [[[0, 2, 0, 3, 0]]]


def test_max_pool_padding_never_takes_the_gradient():
    x = np.array([[[-np.inf, -np.inf]]])
    assert oracle.max_pool_grad(np.array([[[1.0, 10.0, 100.0]]]), x, 2, stride=1, padding=1).tolist() == [[[11.0, 100.0]]]


def test_ceil_mode_window_wider_than_input():
    # PyTorch: a 2-window with ceil_mode on a single sample gives one output
    assert oracle.max_pool(np.array([[[[7.0]]]]), 2, ceil_mode=True).tolist() == [[[[7.0]]]]
    assert oracle.avg_pool(np.array([[[[7.0]]]]), 2, ceil_mode=True).tolist() == [[[[7.0]]]]


def test_integer_overflow_promotes_to_python_ints():
    x = np.array([[[2**62, 2**62]]], dtype=np.int64)
    y = oracle.conv(x, np.array([[[4, 4]]]))
    assert y.dtype == object and y[0, 0, 0] == 2**65
    assert oracle.conv(np.array([[[1, 2]]]), np.array([[[3, 4]]])).dtype == np.int64


@pytest.mark.skipif(pytest.importorskip("torch") is None, reason="torch not installed")
@settings(max_examples=40)
@given(conv_cases(max_dims=3), SEEDS)
def test_agrees_with_torch_on_integer_inputs(case, seed):
    import torch
    import torch.nn.functional as F

    if isinstance(case.kwargs["padding"], str) or any(lo != hi for lo, hi in case.params.padding):
        return  # torch takes symmetric numeric padding; the normalized pairs are used below
    x, w, b = case.arrays(np.random.default_rng(seed))
    f = [F.conv1d, F.conv2d, F.conv3d][len(case.x_shape) - 3]
    p = case.params
    got = f(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), None if b is None else torch.tensor(b, dtype=torch.float64),
            stride=p.stride, padding=tuple(lo for lo, _ in p.padding), dilation=p.dilation, groups=p.groups).numpy()
    assert np.array_equal(oracle.conv(x, w, b, **case.kwargs), got)


@pytest.mark.parametrize("feature, strategy, predicate", [
    ("groups > 1 with several channels per group", conv_cases(), lambda c: c.params.groups > 1 and c.w_shape[1] > 1),
    ("asymmetric padding", conv_cases(), lambda c: any(lo != hi for lo, hi in c.params.padding)),
    ("stride larger than the kernel", conv_cases(), lambda c: any(s > k for s, k in zip(c.params.stride, c.w_shape[2:]))),
    ("kernel as large as the padded input", conv_cases(), lambda c: any(d * (k - 1) + 1 == n for d, k, n in zip(c.params.dilation, c.w_shape[2:], c.params.padded_spatial)) and max(c.w_shape[2:]) > 1),
    ("three spatial axes", conv_cases(), lambda c: len(c.x_shape) == 5),
    ("transposed with groups and output_padding", conv_transpose_cases(), lambda c: c.params.groups > 1 and any(c.params.output_padding)),
    ("pooling ceil_mode adding a window", pool_cases(), lambda c: c.params.ceil_mode and c.params.output_spatial != pool_params_floor(c)),
])
def test_strategies_cover(feature, strategy, predicate):
    from hypothesis import find

    assert predicate(find(strategy, predicate, settings=settings(max_examples=2000, database=None)))


def pool_params_floor(case):
    from refconv.params import pool_params

    kw = {k: v for k, v in case.kwargs.items() if k != "ceil_mode"}
    return pool_params(case.x_shape, **kw).output_spatial


def test_exact_sum_with_a_zero_bias_and_a_subnormal_input():
    # the common scale of 2**-149 and a zero bias makes the bias factor exceed int64: exact all the same
    x = np.array([[[2.0**-149, 1.0, 3.0]]])
    y = oracle.conv(x, np.ones((1, 1, 2)), np.zeros(1), exact=True)
    assert y.tolist() == [[[Fraction(1) + Fraction(1, 2**149), Fraction(4)]]]
