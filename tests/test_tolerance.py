"""refconv.tolerance: the bound is rigorous (never exceeded by correct float code) and sharp enough to catch
a computation done in a narrower format."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from refconv import fast, oracle, tolerance
from refconv.conformance.strategies import conv_cases

SETTINGS = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def test_unit_roundoff_and_gamma_are_exact_upper_bounds():
    assert tolerance.unit_roundoff("float32") == 2.0**-24
    assert tolerance.unit_roundoff(np.float64) == 2.0**-53
    assert tolerance.unit_roundoff("bfloat16") == 2.0**-8
    assert tolerance.unit_roundoff("tf32") == tolerance.unit_roundoff("float16") == 2.0**-11
    for n in (1, 2, 3, 7, 100, 1234):
        for u in (2.0**-24, 2.0**-53, 2.0**-11):
            exact = Fraction(n) * Fraction(u) / (1 - Fraction(n) * Fraction(u))
            g = tolerance.gamma(n, u)
            assert Fraction(g) >= exact  # an upper bound ...
            assert Fraction(float(np.nextafter(g, 0))) < exact  # ... and the smallest float64 one
    with pytest.raises(ValueError, match="n\\*u >= 1"):
        tolerance.gamma(2**11, 2.0**-11)


def _sequential(x, w, dtype):
    """conv in ``dtype``: products then a left-to-right sum, one term at a time."""
    v = sliding_window_view(x[0, 0], w.shape[-1])
    acc = np.zeros(v.shape[0], dtype=dtype)
    for k in range(w.shape[-1]):
        acc = (acc + (v[:, k] * w[0, 0, k]).astype(dtype)).astype(dtype)
    return acc[None, None]


def _reverse_pairwise(x, w, dtype):
    """conv in ``dtype``: products summed by numpy's pairwise sum, in reverse order."""
    v = sliding_window_view(x[0, 0], w.shape[-1])
    prods = (v * w[0, 0]).astype(dtype)[:, ::-1]
    return prods.sum(axis=1, dtype=dtype)[None, None]


@SETTINGS
@given(n=st.integers(1, 300), k=st.integers(1, 60), scale=st.sampled_from([1.0, 1e-30, 1e30]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_no_correct_summation_order_exceeds_the_bound(n, k, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((1, 1, n + k - 1)) * scale).astype(dtype)
    w = rng.standard_normal((1, 1, k)).astype(dtype)
    want = oracle.conv(x, w)  # the exact value, correctly rounded to the dtype
    bound = tolerance.conv_error_bound(x, w)
    for got in (fast.conv(x, w, algorithm="direct"), _sequential(x, w, dtype), _reverse_pairwise(x, w, dtype)):
        assert got.dtype == dtype
        assert tolerance.within_bound(got, want, bound).all()
    # against the exact value (Fractions) the bound without the final rounding holds too
    exact = oracle.conv(x, w, exact=True)
    bound_exact = tolerance.conv_error_bound(x, w, against="exact")
    got = fast.conv(x, w, algorithm="direct")
    assert all(abs(Fraction(float(g)) - e) <= Fraction(float(b)) for g, e, b in zip(got.ravel(), exact.ravel(), bound_exact.ravel()))


@SETTINGS
@given(case=conv_cases(flip=None), seed=st.integers(0, 2**16))
def test_abs_sums_never_underestimate_the_exact_sums(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape)
    w = rng.standard_normal(case.w_shape)
    n = int(np.prod(case.w_shape[1:]))
    S = tolerance.abs_sums("conv", x, w, n_terms=n, **case.kwargs)
    exact = oracle.conv(np.abs(x), np.abs(w), exact=True, **case.kwargs)
    assert all(Fraction(float(s)) >= e for s, e in zip(S.ravel(), exact.ravel()))


def test_a_narrower_format_is_caught():
    # inputs 1 + 3 * 2**-12: exact in float32, rounded to 1 + 2**-10 in float16 (an error of 2**-12 each,
    # 64 * 2**-12 in all), while the float32 bound is about 65 * 2**-24 * 64
    x = np.full((1, 1, 64), 1 + 3 * 2.0**-12, dtype=np.float32)
    w = np.ones((1, 1, 64), dtype=np.float32)
    want = oracle.conv(x, w)
    honest = fast.conv(x, w)
    narrow = fast.conv(x.astype(np.float16).astype(np.float32), w)
    bound = tolerance.conv_error_bound(x, w)
    assert tolerance.within_bound(honest, want, bound).all()
    assert not tolerance.within_bound(narrow, want, bound).any()
    # the same inputs judged against a float16 profile pass
    assert tolerance.within_bound(narrow, want, tolerance.conv_error_bound(x, w, dtype="float16")).all()


def _to_bfloat16(a):
    """Round float32 to the nearest bfloat16 (ties to even), kept as float32."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32)


def test_bfloat16_input_profile_accepts_rounded_inputs_and_float32_does_not():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 4, 16, 16)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    want = oracle.conv(x, w)
    got = fast.conv(_to_bfloat16(x), _to_bfloat16(w))  # bfloat16 inputs, float32 accumulation
    profile = tolerance.conv_error_bound(x, w, dtype="float32", input_format="bfloat16")
    assert tolerance.within_bound(got, want, profile).all()
    assert not tolerance.within_bound(got, want, tolerance.conv_error_bound(x, w)).all()


def test_bfloat16_profile_is_wider_than_float32():
    x = np.ones((1, 1, 10))
    w = np.ones((1, 1, 3))
    b32 = tolerance.conv_error_bound(x, w, dtype="float32")
    b16 = tolerance.conv_error_bound(x, w, dtype="bfloat16")
    assert (b16 > b32).all()


@SETTINGS
@given(case=conv_cases(flip=None), seed=st.integers(0, 2**16))
def test_gradient_bounds_hold_for_numpy_float32(case, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(case.w_shape).astype(np.float32)
    dy = rng.standard_normal(case.output_shape).astype(np.float32)
    gi = fast.conv_grad_input(dy, w, case.x_shape, **case.kwargs)
    assert tolerance.within_bound(
        gi, oracle.conv_grad_input(dy, w, case.x_shape, **case.kwargs),
        tolerance.conv_grad_input_error_bound(dy, w, case.x_shape, **case.kwargs),
    ).all()
    # the bias gradient summed left to right in float32, as a naive loop would
    seq = np.zeros(dy.shape[1], np.float32)
    for v in np.moveaxis(dy, 1, -1).reshape(-1, dy.shape[1]):
        seq = (seq + v).astype(np.float32)
    assert tolerance.within_bound(seq, oracle.conv_grad_bias(dy), tolerance.conv_grad_bias_error_bound(dy)).all()


def test_within_bound_compares_exactly():
    a = np.array([1.0 + 2.0**-52])
    e = np.array([1.0])
    assert tolerance.within_bound(a, e, 2.0**-52).all()
    assert not tolerance.within_bound(a, e, np.nextafter(2.0**-52, 0)).any()
    # NaN matches only NaN, infinities match by sign
    assert tolerance.within_bound(np.array([np.nan, np.inf]), np.array([np.nan, np.inf]), 0.0).all()
    assert not tolerance.within_bound(np.array([np.inf]), np.array([-np.inf]), np.inf).any()


def test_avg_pool_bounds():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    kw = dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    got = fast.avg_pool(x, 3, **kw)
    assert tolerance.within_bound(got, oracle.avg_pool(x, 3, **kw), tolerance.avg_pool_error_bound(x, 3, **kw)).all()
    dy = rng.standard_normal(got.shape).astype(np.float32)
    g = fast.avg_pool_grad(dy, x.shape, 3, **kw)
    bound = tolerance.avg_pool_grad_error_bound(dy, x.shape, 3, **kw)
    assert tolerance.within_bound(g, oracle.avg_pool_grad(dy, x.shape, 3, **kw), bound).all()


# ----------------------------------------------------------------------------- one bound module


def test_one_table_of_formats_and_profiles():
    from refconv.conformance import bounds

    # the conformance judge re-exports refconv.tolerance: one set of formats, profiles and formulas
    for name in ("FORMATS", "PROFILES", "Format", "Profile", "profile", "elementwise_bound", "normwise_fft_bound",
                 "round_significand", "round_to"):
        assert getattr(bounds, name) is getattr(tolerance, name)
    # eta: half the smallest subnormal (the largest error of one rounding below the smallest normal)
    for name, p, emin in (("float64", 53, -1022), ("float32", 24, -126), ("tf32", 11, -126), ("bfloat16", 8, -126),
                          ("float16", 11, -14)):
        f = tolerance.FORMATS[name]
        assert (f.p, f.emin, f.u, f.tiny) == (p, emin, 2.0**-p, 2.0**emin)
        assert tolerance.smallest_subnormal(name) == 2.0 ** (emin - p + 1)
        # eta = 2**(emin - p), rounded up to a float64 (float64's own 2**-1075 is not one)
        assert Fraction(f.eta) == (Fraction(2) ** (emin - p) if name != "float64" else Fraction(2) ** -1074)
    assert tolerance.smallest_subnormal("tf32") == 2.0**-136  # 10 fraction bits below 2**-126
    z = 3 * 2.0**-150  # halfway between float32 subnormals: rounding loses exactly eta
    assert abs(float(np.float32(z)) - z) == tolerance.FORMATS["float32"].eta
    # gamma: an exception for the public helpers, inf for the judge (unjudged elements)
    assert tolerance.gamma(2**24, 2.0**-24, undefined="inf") == bounds.gamma(2**24, 2.0**-24) == np.inf
    with pytest.raises(ValueError, match="undefined='nan'"):
        tolerance.gamma(1, 2.0**-24, undefined="nan")


def test_avg_pool_counts_the_reciprocal_and_the_border_rescaling():
    # k - 1 additions, a reciprocal, its product, a rescaling k / count and its product: gamma_{k+3}, as the judge
    x = np.ones((1, 1, 4), np.float32)
    assert tolerance.op_terms("avg_pool", 2) == (5, 1)
    assert (tolerance.avg_pool_error_bound(x, 2, against="exact") >= tolerance.gamma(5, 2.0**-24)).all()


def test_rounded_inputs_need_the_sums_of_their_factors():
    with pytest.raises(ValueError, match="factor_sums=None: input_format='tf32'"):
        tolerance.dot_bound(3, 1.0, "float32", input_format="tf32")
    # TF32 subnormals are multiples of 2**-136: a float32 subnormal input moves by up to 2**-137
    rng = np.random.default_rng(3)
    x = (rng.integers(-2**12, 2**12, (1, 1, 12)) * 2.0**-149).astype(np.float32)
    w = rng.standard_normal((1, 1, 3)).astype(np.float32)

    def tf32(v):
        v = np.asarray(v, np.float64)
        return np.where(np.abs(v) < 2.0**-126, np.rint(v / 2.0**-136) * 2.0**-136, tolerance.round_significand(v, 11))

    got = oracle.conv(tf32(x), tf32(w))  # exact products and sums of the rounded inputs, rounded to float64
    want = oracle.conv(x, w)
    S = tolerance.abs_sums("conv", x, w, n_terms=3)
    relative_only = tolerance.elementwise_bound(S, S, 3, tolerance.Profile("tf32", 2.0**-11, 2.0**-24, 2.0**-24,
                                                                             2.0**-150, 2.0**-150))
    assert not tolerance.within_bound(got, want, relative_only + 2.0**-150).all()
    assert tolerance.within_bound(got, want, tolerance.conv_error_bound(x, w, input_format="tf32")).all()


def test_fast_algorithm_bounds_on_arrays():
    from broken import algorithms

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    want = oracle.conv(x, w, b, padding=1)  # exact, rounded to float32
    for m in (2, 4):
        got = algorithms.conv_winograd(x, w, b, stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1, m=m)
        assert tolerance.within_bound(got, want, tolerance.winograd_conv_error_bound(x, w, b, padding=1)).all()
    kw = dict(stride=(2, 2), padding=((1, 1), (0, 1)), ceil_mode=True, count_include_pad=False)
    a = (x + np.float32(100)).astype(np.float32)
    got = algorithms.avg_pool_prefix_sum(a, (3, 2), **kw)
    ref = oracle.avg_pool(a, (3, 2), **kw)
    assert tolerance.within_bound(got, ref, tolerance.prefix_sum_avg_pool_error_bound(a, (3, 2), **kw)).all()
