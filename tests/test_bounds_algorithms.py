"""Bounds of the fast algorithms (FFT, Winograd, prefix sums) and of flush-to-zero profiles.

Each correct float32 implementation of tests/broken/algorithms.py stays within
``case_bound`` of its algorithm on every case (the exact result from
refconv.oracle on the float32 inputs); each broken one exceeds it on some case;
the bounds are not vacuous (a modest multiple of the direct bound, and a
direct float32 computation passes them).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from broken import algorithms as A
from broken import base
from refconv import tolerance
from refconv.conformance import bounds, ops
from refconv.conformance.cases import Capabilities, Case, catalogue, random_case
from refconv.params import ConvParamError

F32 = bounds.profile("float32")


def _ratio(fn, case, arrays, prof, algorithm):
    """max |y - exact| / bound over the elements (0 for an empty output); the output shape must match."""
    exp = ops.expected(case, arrays)
    y = np.asarray(ops.call(fn, case, arrays), dtype=np.float64)
    assert y.shape == exp.shape, case.describe()
    bnd = bounds.case_bound(case, arrays, exp, prof, algorithm=algorithm, dtype="float32")
    err = np.abs(y - exp)
    assert np.isfinite(bnd).all()
    if not err.size:
        return 0.0
    return float(np.max(np.where(err > 0, err / np.where(bnd > 0, bnd, np.finfo(float).tiny), 0.0)))


def _random_cases(op, dims, count, seed):
    rng = random.Random(seed)
    # the implementations of tests/broken/algorithms.py take the canonical keywords of the first six ops only
    # (average pooling without dilation or divisor_override): the cases they can be called with
    caps = Capabilities(dilation=op != "avg_pool", padding_mode=False)
    out = []
    while len(out) < count:
        c = random_case(op, dims, caps, rng)
        if caps.supports(c) and getattr(c, "divisor_override", None) is None:
            out.append(c)
    return out


def _winograd_cases(op, count, seed, dims=(1, 2, 3)):
    """Stride-1, undilated 3x...x3 cases (some with groups, padding past the kernel, empty batches)."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        d = rng.choice(dims)
        g = rng.choice([1, 1, 2])
        c = Case(op, n=rng.choice([0, 1, 1, 2]), cin=g * rng.randint(1, 3), cout=g * rng.randint(1, 3), groups=g,
                 spatial=tuple(rng.randint(1, 11 if d < 3 else 6) for _ in range(d)), kernel=(3,) * d,
                 padding=tuple((rng.randint(0, 3), rng.randint(0, 3)) for _ in range(d)),
                 bias=op != "conv_grad_input" and rng.random() < 0.5, seed=rng.randint(0, 2**16))
        if c.is_valid():
            out.append(c)
    return out


def _subnormal_case():
    c = Case("conv", n=1, cin=3, cout=2, spatial=(6, 6), kernel=(3, 3), padding=((1, 1), (1, 1)), bias=True, seed=3)
    a = c.arrays("float32")
    # inputs below the smallest normal float32 (2**-126): products and sums in the subnormal range
    a["x"] = (a["x"] * np.float32(2.0**-128)).astype(np.float32)
    a["b"] = (a["b"] * np.float32(2.0**-130)).astype(np.float32)
    assert (np.abs(a["x"]) < 2.0**-126).all()
    return c, a


def _inputs_for(entry, count, seed):
    """``(case, arrays)`` pairs: cases of the entry's algorithm, random cases, and subnormal inputs for conv."""
    if entry["bound"] == "winograd":
        cases = _winograd_cases(entry["op"], count, seed, dims=(entry["dims"],)) + _random_cases(entry["op"], 2, 5, seed)
    else:
        cases = _random_cases(entry["op"], entry["dims"], count, seed)
    pairs = [(c, c.arrays("float32")) for c in cases]
    return pairs + ([_subnormal_case()] if entry["op"] == "conv" else [])


# ----------------------------------------------------------------------------- modes


def test_bound_modes_and_validation():
    assert bounds.bound_modes("conv") == ("direct", "fft", "winograd")
    assert bounds.bound_modes("conv_grad_weight") == ("direct", "fft")
    assert bounds.bound_modes("max_pool") == ("direct",)
    assert bounds.bound_modes("avg_pool") == ("direct", "prefix_sum")
    assert bounds.validate_bound("conv_transpose", "normwise") == "fft"
    assert bounds.validate_bound("max_pool", "elementwise") == "direct"
    with pytest.raises(ConvParamError, match=r"bound='winograd' does not apply to op='max_pool' \(applicable: 'direct'\)"):
        bounds.validate_bound("max_pool", "winograd")
    with pytest.raises(ConvParamError, match="bound='prefix_sum' does not apply to op='conv'"):
        bounds.validate_bound("conv", "prefix_sum")
    with pytest.raises(ConvParamError, match="bound='gemm': bound modes are 'direct', 'fft'"):
        bounds.validate_bound("conv", "gemm")
    with pytest.raises(ConvParamError, match="op='pool'"):
        bounds.bound_modes("pool")
    c = Case("max_pool", spatial=(5,), kernel=(2,))
    a = c.arrays("float32")
    with pytest.raises(ConvParamError, match="bound='fft'"):
        bounds.case_bound(c, a, ops.expected(c, a), F32, algorithm="fft", dtype="float32")


def test_winograd_applies_to_stride_one_three_by_three_only():
    assert bounds.winograd_applies(Case("conv_grad_input", spatial=(5, 5), kernel=(3, 3), padding=((1, 1), (0, 2))))
    assert not bounds.winograd_applies(Case("conv", spatial=(5, 5), kernel=(3, 2)))
    assert not bounds.winograd_applies(Case("conv", spatial=(9,), kernel=(3,), dilation=(2,)))
    assert not bounds.winograd_applies(Case("conv_grad_weight", spatial=(5,), kernel=(3,)))
    # elsewhere the Winograd bound is the direct one (libraries fall back to direct summation there)
    c = Case("conv", n=2, cin=3, cout=2, spatial=(9, 7), kernel=(2, 3), stride=(2, 1), bias=True, seed=4)
    a = c.arrays("float32")
    e = ops.expected(c, a)
    assert np.array_equal(bounds.case_bound(c, a, e, F32, algorithm="winograd", dtype="float32"),
                          bounds.case_bound(c, a, e, F32, dtype="float32"))


# ----------------------------------------------------------------------------- (a) correct pass, broken fail


@pytest.mark.parametrize("entry", A.ALGORITHM_CORRECT, ids=[e["name"] for e in A.ALGORITHM_CORRECT])
def test_correct_algorithm_within_its_bound(entry):
    prof = bounds.profile(entry.get("precision") or entry["dtype"], entry["dtype"])
    for case, arrays in _inputs_for(entry, 16, seed=11):
        assert _ratio(entry["fn"], case, arrays, prof, entry["bound"]) <= 1.0, case.describe()


@pytest.mark.parametrize("entry", A.ALGORITHM_BROKEN, ids=[e["name"] for e in A.ALGORITHM_BROKEN])
def test_broken_algorithm_exceeds_its_bound(entry):
    prof = bounds.profile(entry.get("precision") or entry["dtype"], entry["dtype"])
    ratios = [_ratio(entry["fn"], c, a, prof, entry["bound"]) for c, a in _inputs_for(entry, 16, seed=11)]
    assert max(ratios) > 1.0


@pytest.mark.parametrize("m, offset", [(2, 0), (2, 1), (4, 0), (4, 1), (4, 2), (4, 3)])
def test_winograd_any_tile_alignment_any_dims(m, offset):
    fn = A._conv(A.conv_winograd, m=m, offset=offset)
    for case in _winograd_cases("conv", 12, seed=m * 10 + offset):
        assert _ratio(fn, case, case.arrays("float32"), F32, "winograd") <= 1.0, case.describe()


def test_direct_float32_passes_every_algorithm_bound():
    # libraries fall back to direct summation per layer: each algorithm's bound contains the direct one
    def direct(x, w, b, *, stride, padding, dilation, groups):
        return base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, order="reverse")

    cases = _winograd_cases("conv", 10, seed=3, dims=(2,)) + _random_cases("conv", 2, 10, seed=3)
    for algorithm in ("direct", "fft", "winograd"):
        for c in cases:
            assert _ratio(direct, c, c.arrays("float32"), F32, algorithm) <= 1.0, (algorithm, c.describe())


def test_prefix_sums_pass_their_bound_where_the_direct_bound_fails():
    # the window sum is a difference of prefix sums over the whole image: their rounding is proportional to
    # the prefix magnitudes, not the window's (a correct summed-area table fails the direct bound)
    c = Case("avg_pool", n=1, cin=2, spatial=(40, 40), kernel=(2, 2), stride=(2, 2), seed=2)
    a = {"x": (c.arrays("float32")["x"] + np.float32(1000)).astype(np.float32)}  # prefix sums up to 1.6e6
    fn = A._avg()
    assert _ratio(fn, c, a, F32, "direct") > 1.0
    assert _ratio(fn, c, a, F32, "prefix_sum") <= 1.0


def test_fft_gradients_and_transposed_pass_the_fft_bound_and_not_the_direct_one():
    # FFT errors are norm-wise: an output near zero carries the error of the whole map
    found = {}
    for entry in A.ALGORITHM_CORRECT:
        if entry["bound"] != "fft":
            continue
        direct = [_ratio(entry["fn"], c, c.arrays("float32"), F32, "direct") for c in _random_cases(entry["op"], 2, 12, 5)]
        found[entry["op"]] = max(direct) > 1.0
    assert found == dict.fromkeys(("conv", "conv_transpose", "conv_grad_input", "conv_grad_weight"), True)


# ----------------------------------------------------------------------------- (b) not vacuous


@pytest.mark.parametrize("cin, median, largest, median23", [(1, 1100, 15000, 40), (8, 160, 600, 10)])
def test_winograd_bound_is_a_bounded_multiple_of_the_direct_bound(cin, median, largest, median23):
    """2-D 3x3, padding 1, standard normal data.  F(4x4, 3x3) dominates (transform entries up to 8 and 5 per
    axis, any tile position): about 1000x the direct bound with one input channel (k = 37 roundings against
    n = 9 products), 150x with eight (k = 44 against n = 72).  F(2x2, 3x3) alone: about 30x and 5x."""
    rng = random.Random(cin)
    ratios, f23 = [], []
    for i in range(6):
        c = Case("conv", n=1, cin=cin, cout=2, spatial=(rng.randint(3, 12), rng.randint(3, 12)), kernel=(3, 3),
                 padding=((1, 1), (1, 1)), bias=i % 2 == 1, seed=i)
        a = c.arrays("float32")
        e = ops.expected(c, a)
        d = bounds.case_bound(c, a, e, F32, dtype="float32")
        w = bounds.case_bound(c, a, e, F32, algorithm="winograd", dtype="float32")
        ratios.append((w / d).ravel())
        S = ops.magnitude(c, a)
        e23 = tolerance.winograd_error(np.pad(np.abs(a["x"]).astype(np.float64), [(0, 0), (0, 0), *c.padding]),
                                       np.abs(a["w"]), np.abs(a["b"]) if c.bias else 0.0, F32,
                                       variants=tolerance.WINOGRAD_VARIANTS[:1])
        f23.append((e23 / (tolerance.gamma(c.terms(), 2.0**-24) * S)).ravel())
    r = np.concatenate(ratios)
    assert (r >= 1).all()
    assert np.median(r) <= median and r.max() <= largest
    assert np.median(np.concatenate(f23)) <= median23


def test_fft_and_prefix_bounds_are_bounded_multiples():
    # FFT: eps * sum_c ||x_c||_2 ||w_c||_1 with eps ~ (levels + 3) u; prefix sums: the corners' regions / window
    c = Case("conv", n=1, cin=4, cout=2, spatial=(12, 12), kernel=(3, 3), padding=((1, 1), (1, 1)), seed=8)
    a = c.arrays("float32")
    e = ops.expected(c, a)
    r = bounds.case_bound(c, a, e, F32, algorithm="fft", dtype="float32") / bounds.case_bound(c, a, e, F32, dtype="float32")
    assert np.median(r) <= 200
    c = Case("avg_pool", n=1, cin=1, spatial=(16, 16), kernel=(2, 2), stride=(2, 2), values="positive", seed=1)
    a = c.arrays("float32")
    e = ops.expected(c, a)
    r = bounds.case_bound(c, a, e, F32, algorithm="prefix_sum", dtype="float32") / bounds.case_bound(c, a, e, F32, dtype="float32")
    # the last window's corners cover up to the whole 16x16 image (64 windows), with k = 75 roundings instead of 7
    assert r.min() <= 10 and np.median(r) <= 600 and r.max() <= 4000


# ----------------------------------------------------------------------------- (c) flush to zero


def test_ftz_profiles_exist():
    for name in ("float32", "float16", "bfloat16", "tf32", "float64"):
        p = bounds.profile(name + "-ftz")
        assert p.ftz and name + "-ftz" in bounds.PROFILES
        assert p.u_acc == bounds.profile(name).u_acc
        assert p.eta_acc == bounds.FORMATS[bounds.PROFILES[name][1]].tiny
    assert not bounds.profile("float32").ftz


def test_flushing_target_fails_float32_and_passes_float32_ftz():
    c, a = _subnormal_case()
    ieee = A._conv(base.conv)
    assert _ratio(A.conv_ftz, c, a, bounds.profile("float32"), "direct") > 1.0
    assert _ratio(A.conv_ftz, c, a, bounds.profile("float32-ftz"), "direct") <= 1.0
    assert _ratio(ieee, c, a, bounds.profile("float32"), "direct") <= 1.0
    assert _ratio(ieee, c, a, bounds.profile("float32-ftz"), "direct") <= 1.0
    # on normal values the flushing target is exact to float32 as usual
    c2 = Case("conv", n=1, cin=3, cout=2, spatial=(6, 6), kernel=(3, 3), bias=True, seed=3)
    assert _ratio(A.conv_ftz, c2, c2.arrays("float32"), bounds.profile("float32"), "direct") <= 1.0


def test_ftz_bounds_of_the_fast_algorithms_hold_on_subnormal_inputs():
    c, a = _subnormal_case()
    for algorithm, fn in (("fft", A._conv(A.conv_fft)), ("winograd", A._conv(A.conv_winograd, m=4))):
        assert _ratio(fn, c, a, bounds.profile("float32-ftz"), algorithm) <= 1.0
        assert _ratio(fn, c, a, F32, algorithm) <= 1.0


def test_inputs_rounded_in_the_subnormal_range_are_within_the_profile():
    # TF32 keeps float32's exponent range with 10 fraction bits: subnormals are multiples of 2**-136, so a
    # float32 subnormal input may move by 2**-137, far more than 2**-11 of itself (the relative allowance)
    def tf32(v):
        v = np.asarray(v, np.float64)
        return np.where(np.abs(v) < 2.0**-126, np.rint(v / 2.0**-136) * 2.0**-136,
                        bounds.round_significand(v, 11)).astype(np.float32)

    c = Case("conv", n=1, cin=2, cout=1, spatial=(8,), kernel=(3,), seed=1)
    a = c.arrays("float32")
    a["x"] = (np.rint(a["x"] * 2**12) * np.float32(2.0**-149)).astype(np.float32)
    y = base.conv(tf32(a["x"]), tf32(a["w"]), None, stride=(1,), padding=((0, 0),), dilation=(1,), groups=1)
    exp = ops.expected(c, a)
    prof = bounds.profile("tf32", "float32")
    err = np.abs(y - exp)
    relative_only = bounds.op_bound("conv", ops.magnitude(c, a), exp, c.terms(), prof)
    assert (err > relative_only).any()
    assert (err <= bounds.case_bound(c, a, exp, prof, dtype="float32")).all()


# ----------------------------------------------------------------------------- the direct bound is unchanged


def test_direct_case_bound_is_the_judges_bound():
    """case_bound('direct') = the engine's per-case bound: elementwise bound with the op's term count, dyadic
    elements exact, half an ulp of the float64 expectation (and nothing else for profiles without input rounding)."""
    for op in ("conv", "conv_transpose", "avg_pool", "max_pool", "conv_grad_weight"):
        for case in [c for c in catalogue(op, 2) if c.is_valid()][:12]:
            a = case.arrays("float32")
            e = ops.expected(case, a)
            S = ops.magnitude(case, a)
            n, f = {"max_pool": (0, 1), "avg_pool": (case.terms() + 3, 1)}.get(op, (case.terms(), 2))
            want = bounds.elementwise_bound(S, e, n, F32, input_factors=f)
            if case.values == "dyadic" and op not in ("max_pool", "avg_pool"):
                want = np.where(bounds.exact_in(case, S, F32, "float32"), 0.0, want)
            want = want + np.abs(e) * 2.0**-52
            assert np.array_equal(bounds.case_bound(case, a, e, F32, dtype="float32"), want, equal_nan=True), case.describe()
