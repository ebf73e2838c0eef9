"""What the case generator reaches: tiles with every feature on, memory layouts, subnormals and the ends of the
range, degenerate and invalid geometry, the long tail of exploration, and the diagnoses built on them."""

import math
import random
from dataclasses import replace

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings

from refconv import oracle
from refconv import pooling
from refconv.conformance import check, ops, registry
from refconv.conformance.cases import (ALL, EMPTY_BATCH, LAYOUTS, OPS, POOLS, VALUES, Case, cases, catalogue, coverage,
                                       in_layout, random_case)
from refconv.params import ConvParamError

DIMS = (1, 2, 3)

#: the ops with a window (kernel, stride, padding): every op but adaptive and fractional pooling (no stride)
WINDOWED = tuple(o for o in OPS if not registry.get(o).adaptive and registry.get(o).takes("stride"))
#: the ops adaptive pooling (output_size instead of a window)
ADAPTIVE = tuple(o for o in OPS if registry.get(o).adaptive)


def _with(value_class):
    """The ops whose record does not leave ``value_class`` out of its catalogue."""
    return [o for o in OPS if value_class not in registry.get(o).values]


def _like(op):
    """The op whose error bound ``op`` borrows (its record's ``bound_as``), else ``op`` itself."""
    return registry.get(op).bound_as or op


def _dilated(op):
    """Whether ``op`` always takes a dilation (an optional one, avg_pool's, is left out of its tiles)."""
    rec = registry.get(op)
    return rec.has_dilation and "dilation" not in rec.optional


def _features_on(c):
    """Every feature of the op on: kernel > 1, asymmetric padding, stride > 1 and dilation > 1 on an axis, and
    groups > 1 and bias where the op has them."""
    rec = c.record
    on = (all(k > 1 for k in c.kernel) and any(lo != hi for lo, hi in c.padding) and any(s > 1 for s in c.stride))
    if _dilated(c.op):
        on = on and any(d > 1 for d in c.dilation)
    if rec.has_groups:
        on = on and c.groups > 1
    if rec.has_bias:
        on = on and c.bias
    return on


def _sizes(c):
    """The tiled dimensions of a case: batch, channels, channels per group, output axes, reduction length."""
    fwd = c.forward_output_shape if c.record.grad_of else c.output_shape
    red = math.prod(c.kernel) if c.op in POOLS else (c.cin // c.groups) * math.prod(c.kernel)
    d = {"N": c.n, "C_out": c.cout, "C_in/groups": c.cin // c.groups, "reduction": red}
    d.update({f"output axis {i}": o for i, o in enumerate(fwd[2:])})
    return d


# ----------------------------------------------------------------------------- tiles: the covering array


@pytest.mark.parametrize("op", WINDOWED)
@pytest.mark.parametrize("dims", DIMS)
def test_every_tiled_dimension_passes_a_tile_with_every_feature_on(op, dims):
    cat = [c for c in catalogue(op, dims) if not c.expect_refusal]
    big = {}
    for c in cat:
        if _features_on(c) and c.values == "dyadic":
            for k, v in _sizes(c).items():
                big.setdefault(k, set()).add(v)
    wanted = ["N", "reduction"] + [f"output axis {i}" for i in range(dims)]
    wanted += ["C_out"] if op in POOLS else ["C_out", "C_in/groups"]
    for k in wanted:
        assert max(big.get(k, {0})) > 16, (op, dims, k, sorted(big.get(k, ())))
    # two tile boundaries for the dimensions with two rows, and remainders other than zero
    for k in ("N", "C_out"):
        assert len({v for v in big[k] if v > 8}) >= 2 and all(v % 8 for v in big[k] if v > 8), (k, big[k])


def test_conv_2d_has_many_output_channels_with_every_feature_on():
    hits = [c for c in catalogue("conv", 2) if c.cout >= 17 and c.bias and c.groups > 1 and _features_on(c)
            and all(s > 1 for s in c.stride) and all(d > 1 for d in c.dilation)]
    assert hits and all(c.is_valid() for c in hits)


def test_tiles_are_projected_onto_capabilities():
    caps = ALL.replace(dilation=False, groups=False, bias=False)
    cat = catalogue("conv", 2, caps)
    assert all(caps.supports(c) for c in cat if not c.expect_refusal)
    tiled = [c for c in cat if "past a tile" in c.label]
    assert tiled and all(c.dilation == (1, 1) and c.groups == 1 and not c.bias for c in tiled)
    assert max(c.cout for c in tiled) > 16


def test_dyadic_tiles_are_exact_in_float32():
    """The tile cases are judged exactly: every float32 summation order gives the oracle's value."""
    c = next(c for c in catalogue("conv", 1) if "reduction" in c.label and "past a tile" in c.label)
    a = c.arrays("float32")
    exp = ops.expected(c, a)
    rng = np.random.default_rng(0)
    xp = np.pad(a["x"], [(0, 0), (0, 0), c.padding[0]])
    k, s, d, g = c.kernel[0], c.stride[0], c.dilation[0], c.groups
    cg, og = c.cin // g, c.cout // g
    terms = []
    for o in range(c.cout):
        for ci in range(cg):
            for t in range(k):
                sl = xp[:, (o // og) * cg + ci, t * d: t * d + s * (exp.shape[2] - 1) + 1: s]
                terms.append((o, sl * a["w"][o, ci, t]))
    y = np.zeros(exp.shape, np.float32)
    for i in rng.permutation(len(terms)):
        o, v = terms[i]
        y[:, o] = y[:, o] + v
    y = y + a["b"][None, :, None]
    assert y.dtype == np.float32 and np.array_equal(y.astype(np.float64), exp)


# ----------------------------------------------------------------------------- memory layouts


def _claims(a, layout):
    big = sum(n > 1 for n in a.shape) >= 2
    if layout == "contiguous":
        return a.flags.c_contiguous
    if layout == "fortran":
        return a.flags.f_contiguous and (not a.flags.c_contiguous or not big)
    if layout == "strided":
        return not a.flags.c_contiguous and a.strides[-1] == 2 * a.itemsize and a.base is not None
    if layout == "channels_last":
        if a.ndim < 3 or a.shape[1] == 1 or math.prod(a.shape[2:]) == 1:
            return True
        return a.strides[1] == a.itemsize and not a.flags.c_contiguous
    if layout == "negative":
        return all(s < 0 for s, n in zip(a.strides, a.shape) if n > 1)
    if layout == "misaligned":
        return not a.flags.aligned and a.ctypes.data % a.itemsize != 0
    return not a.flags.writeable


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_every_layout_gives_the_same_values_and_its_flags(layout, dtype):
    for op in OPS:
        c = replace(next(c for c in catalogue(op, 2) if c.label == "fortran inputs"), layout=layout)
        plain = replace(c, layout="contiguous").arrays(dtype)
        got = c.arrays(dtype)
        assert list(got) == list(plain)
        for k in got:
            assert got[k].shape == plain[k].shape and got[k].dtype == plain[k].dtype
            assert np.array_equal(got[k].astype(np.float64), plain[k].astype(np.float64)), (op, k)
            # (a one-byte item, as the quantized ops' uint8, is aligned at any address)
            if not (layout == "misaligned" and got[k].itemsize == 1):
                assert _claims(got[k], layout), (op, k, layout, got[k].strides, got[k].flags)


def test_in_layout_refuses_an_unknown_layout():
    with pytest.raises(ConvParamError, match="layout='diagonal'"):
        in_layout(np.zeros(3), "diagonal")
    with pytest.raises(ConvParamError, match="layout='nhwc'"):
        Case("conv", layout="nhwc")
    with pytest.raises(ConvParamError, match="values='gaussian'"):
        Case("conv", values="gaussian")


@pytest.mark.parametrize("op", OPS)
def test_the_catalogue_passes_every_layout_including_a_tiled_case(op):
    cat = catalogue(op, 2)
    seen = {c.layout for c in cat}
    assert seen == set(LAYOUTS)
    assert {c.layout for c in cat if "past a tile" in c.label} == {"contiguous", "fortran", "channels_last", "strided"}


def test_layout_travels_with_the_description_and_the_repr():
    c = next(c for c in catalogue("conv", 2) if c.layout == "channels_last")
    assert "layout=channels_last" in c.describe()
    again = eval(repr(replace(c, label="")), {"Case": Case})  # the reproduction's form
    assert again == c and again.layout == "channels_last"
    a, b = again.arrays("float32"), c.arrays("float32")
    assert all(np.array_equal(a[k], b[k]) and a[k].strides == b[k].strides for k in a)


# ----------------------------------------------------------------------------- subnormals, overflow, cancellation


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_subnormal_values(dtype):
    dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    tiny = float(ml_dtypes.finfo(dt).tiny)
    c = next(c for c in catalogue("conv", 2) if c.values == "subnormal")
    a = {k: v.astype(np.float64) for k, v in c.arrays(dtype).items()}
    nz = a["x"][a["x"] != 0]
    assert nz.size > 0.9 * a["x"].size and np.all(np.abs(nz) < tiny)
    assert np.all(np.abs(a["w"]) == 1) and np.all(np.abs(a["b"]) < tiny)
    # products with +-1 are exact: the exact output is itself in the subnormal range or just above
    assert np.any((ops.expected(c, a) != 0) & (np.abs(ops.expected(c, a)) < tiny))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_subnormal_products_of_normal_inputs(dtype):
    dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    tiny = float(ml_dtypes.finfo(dt).tiny)
    smallest = float(ml_dtypes.finfo(dt).smallest_subnormal)
    c = next(c for c in catalogue("conv", 1) if c.values == "subnormal_products")
    a = {k: v.astype(np.float64) for k, v in c.arrays(dtype).items()}
    x, w = a["x"][a["x"] != 0], a["w"][a["w"] != 0]
    assert np.all(np.abs(x) >= tiny) and np.all(np.abs(w) >= tiny)  # normal inputs
    p = np.multiply.outer(x, w)
    assert np.all(np.abs(p) < tiny) and np.all(np.abs(p) >= smallest)  # subnormal products
    assert np.array_equal(p.astype(dt).astype(np.float64), p)  # each exact in the dtype


@pytest.mark.parametrize("op", _with("overflow"))
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_overflow_values_are_near_the_threshold_with_finite_sums(op, dtype):
    top = float(np.finfo(dtype).max)
    c = next(c for c in catalogue(op, 2) if c.values == "overflow")
    a = c.arrays(dtype)
    assert all(np.isfinite(v).all() for v in a.values())
    S = ops.magnitude(c, a)
    exp = ops.expected(c, a)
    assert np.isfinite(exp).all() and float(np.max(S)) < top / 4
    first = np.abs(next(iter(a.values())).astype(np.float64)).max()
    assert first > top * 2.0 ** (-24 if dtype != "float16" else -10)  # near the threshold, not merely large
    if _like(op) == "max_pool":
        assert np.all(next(iter(a.values())) < 0)  # x, or the max-pooled y of max_unpool


def test_the_range_tests_reach_every_op_that_has_the_value_class():
    """max_pool's record leaves cancellation out (a maximum does not cancel); every other of the six has both."""
    assert "max_pool" not in _with("cancel") and set(OPS[:6]) <= set(_with("overflow"))
    assert set(OPS[:6]) - {"max_pool"} <= set(_with("cancel"))


@pytest.mark.parametrize("op", _with("cancel"))
def test_cancellation_to_the_bias(op):
    c = next(c for c in catalogue(op, 2) if c.values == "cancel")
    a = c.arrays("float32")
    exp = ops.values_of(c, ops.expected(c, a))
    S = ops.magnitude(c, a)
    if registry.get(op).has_bias:
        b = a["b"].astype(np.float64).reshape((1, -1) + (1,) * c.dims)
        assert np.array_equal(exp, np.broadcast_to(b, exp.shape))
    elif _like(op) != "avg_pool":
        assert not exp.any()
    else:
        assert (exp == 0).mean() > 0.2
    assert float(np.max(S)) > 100  # large partial sums on the way to the exact result


def _conv32(x, w, b, *, stride, padding, dilation, groups, padding_mode="zeros"):
    """numpy in float32 (gradual underflow, as IEEE 754 requires); PyTorch's padding modes by np.pad's names."""
    mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[padding_mode]
    if padding_mode == "reflect" and any(max(p) >= n for p, n in zip(padding, x.shape[2:])):
        raise ValueError("reflect padding as long as the input")
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding], mode=mode)
    K = w.shape[2:]
    outs = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(xp.shape[2:], K, stride, dilation)]
    cout, cg = w.shape[:2]
    og = cout // groups
    y = np.zeros((x.shape[0], cout, *outs), dtype=x.dtype)
    for o in range(cout):
        g = o // og
        for c in range(cg):
            for t in np.ndindex(*K):
                sl = tuple(slice(ti * d, ti * d + s * (q - 1) + 1, s) for ti, d, s, q in zip(t, dilation, stride, outs))
                y[:, o] += xp[(slice(None), g * cg + c) + sl] * w[(o, c) + t]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(K))
    if x.shape[1] % groups or cout % groups or cg != x.shape[1] // groups or min(outs, default=1) < 1:
        raise ValueError("invalid configuration")
    return y


def test_the_judge_passes_gradual_underflow_and_fails_flushing_with_the_ftz_diagnosis():
    r = check(_conv32, op="conv", dims=1, max_examples=0, seed=0)
    assert r.ok, str(r)

    def ftz(x, w, b, **kw):
        y = _conv32(x, w, b, **kw)
        return np.where(np.abs(y) < np.finfo(np.float32).tiny, np.float32(0), y)

    r = check(ftz, op="conv", dims=1, max_examples=0, seed=0)
    assert not r.ok and r.failure.case.values.startswith("subnormal")
    assert any("flushes subnormals to zero (FTZ/DAZ); if that is intended, claim precision 'float32-ftz'" in d
               for d in r.failure.diagnosis), r.failure.diagnosis


# ----------------------------------------------------------------------------- degenerate geometry


def _padding_only_windows(c):
    ones = np.ones((1, 1) + c.spatial)
    w = np.ones((1, 1) + c.kernel)
    return oracle.conv(ones, w, stride=c.stride, padding=c.padding, dilation=c.dilation) == 0


@pytest.mark.parametrize("op", WINDOWED)
@pytest.mark.parametrize("dims", DIMS)
def test_degenerate_geometry_with_groups(op, dims):
    cat = [c for c in catalogue(op, dims) if not c.expect_refusal]
    grouped = [c for c in cat if c.groups > 1 or c.op in POOLS]
    kinds = set()
    for c in grouped:
        spans = [d * (k - 1) + 1 for k, d in zip(c.kernel, c.dilation)]
        if c.record.transposed:
            out = (c.forward_output_shape if c.record.grad_of else c.output_shape)[2:]
            if all(o == 1 for o in out):
                kinds.add("output one")
                if any(d > 1 for d in c.dilation):
                    kinds.add("dilated as wide")
            if any(s > sp for s, sp in zip(c.stride, spans)):
                kinds.add("stride > window")
                kinds.add("no input")  # output positions no tap reaches
            continue
        padded = [n + lo + hi for n, (lo, hi) in zip(c.spatial, c.padding)]
        fwd = c.forward_output_shape if c.record.grad_of else c.input_shapes()["y"] if c.op == "max_unpool" else c.output_shape
        if all(o == 1 for o in fwd[2:]):
            kinds.add("output one")
        if any(d > 1 and sp == p for d, sp, p in zip(c.dilation, spans, padded)):
            kinds.add("dilated as wide")
        if all(s > sp for s, sp in zip(c.stride, spans)):
            kinds.add("stride > window")
        if _dilated(c.op) and _padding_only_windows(c).any():
            kinds.add("no input")
    need = {"output one", "stride > window"}
    if _dilated(op):  # (without a dilation a window holds at least one input sample)
        need |= {"no input", "dilated as wide"}
    assert need <= kinds, (op, dims, kinds)


# ----------------------------------------------------------------------------- invalid configurations


def _refusals(op):
    """How many configurations ``op`` rejects in its catalogue at least: four for a convolution or its gradients;
    for pooling an output size 0 (adaptive) or a window wider than the padded input, a dilated one, and p = 0."""
    rec = registry.get(op)
    if not rec.refuses:
        return 0  # (the bias gradient: dy alone cannot carry a rejected configuration)
    if rec.transposed and rec.grad_of:
        return 3  # (dy cannot show a crop larger than the output)
    if op == "max_unpool":
        return 2  # output_size out of range, either way
    if not rec.window:
        return 4
    if rec.adaptive:
        return 1
    return 1 + _dilated(op) + rec.takes("p")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dims", DIMS)
def test_invalid_cases_are_refused_by_the_oracle_itself(op, dims):
    bad = [c for c in catalogue(op, dims) if c.expect_refusal]
    assert len(bad) >= _refusals(op) and bool(bad) == registry.get(op).refuses
    if op in ("avg_pool", "max_pool"):
        assert _refusals(op) == {"avg_pool": 1, "max_pool": 2}[op]  # the counts the six were first held to
    for c in bad:
        assert not c.is_valid() and c.output_shape is None
        assert "(invalid: must be refused)" in c.describe()
        a = c.arrays("float32")  # inputs build without an exception
        with pytest.raises(ConvParamError):
            ops.expected(c, a)


def test_invalid_cases_only_where_the_features_and_the_target_allow():
    labels = {c.label for c in catalogue("conv", 2) if c.expect_refusal}
    assert {"groups do not divide C_in (the weight cannot fit)", "dilated kernel wider than the padded input"} <= labels
    assert not [c for c in catalogue("conv", 2, ALL.replace(refuses_invalid=False)) if c.expect_refusal]
    no_groups = [c.label for c in catalogue("conv", 2, ALL.replace(groups=False, dilation=False)) if c.expect_refusal]
    assert no_groups == ["kernel wider than the padded input", "padding_mode='reflect' with a pad as long as the input"]
    no_modes = ALL.replace(groups=False, dilation=False, padding_mode=False)
    assert [c.label for c in catalogue("conv", 2, no_modes) if c.expect_refusal] == ["kernel wider than the padded input"]
    ct = [c.label for c in catalogue("conv_transpose", 1, ALL.replace(output_padding=False)) if c.expect_refusal]
    assert ct and not any("output_padding" in k for k in ct)


def test_a_target_that_accepts_invalid_configurations_fails():
    def lenient(x, w, b, *, stride, padding, dilation, groups):
        try:
            return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)
        except ConvParamError:
            return np.zeros((x.shape[0], w.shape[0], 1), dtype=x.dtype)

    r = check(lenient, op="conv", dims=1, max_examples=0, seed=0)
    assert not r.ok and r.failure.kind == "accepted-invalid" and r.failure.case.expect_refusal
    lenient.refconv_capabilities = {"refuses_invalid": False}
    assert check(lenient, op="conv", dims=1, max_examples=0, seed=0).ok


# ----------------------------------------------------------------------------- exploration


@pytest.mark.parametrize("op", OPS)
def test_exploration_has_a_long_tail_of_sizes_and_draws_layouts_and_value_classes(op):
    rng = random.Random(0)
    drawn = [random_case(op, 2, ALL, rng) for _ in range(600)]
    valid = [c for c in drawn if ALL.supports(c)]
    assert len(valid) > 300
    def largest(c):  # the drawn sizes: batch, channels per group, groups, and outputs (inputs when transposed)
        rec = c.record
        if rec.transposed:
            axes = c.spatial
        elif rec.window and not rec.adaptive:
            axes = registry._pooled(c)[2:]  # the pooling's output (a pooling gradient's dy, max_unpool's y)
        else:
            axes = c.forward_output_shape[2:] if not rec.window else c.output_shape[2:]
        return max(c.n, c.cin // c.groups, c.cout // c.groups, c.groups, *axes)

    big = [c for c in valid if largest(c) > 8]
    assert 0.05 < len(big) / len(valid) < 0.4  # mostly small, sometimes past a tile
    assert max(max(c.n, c.cin, c.cout) for c in valid) > 32
    assert len({c.layout for c in valid}) == len(LAYOUTS)
    assert 0.6 < sum(c.layout == "contiguous" for c in valid) / len(valid) < 0.95
    assert {"normal", "small", "dyadic", "subnormal"} - set(registry.get(op).values) <= {c.values for c in valid}
    assert all(c.values in VALUES and c.values not in registry.get(op).values for c in valid)


def test_the_strategy_draws_supported_cases():
    caps = ALL.replace(dilation=False, groups=False)

    @settings(max_examples=40, database=None, deadline=None)
    @given(cases("conv", 2, caps))
    def run(c):
        assert caps.supports(c) and c.dilation == (1, 1) and c.groups == 1 and not c.expect_refusal

    run()


def test_coverage_summarizes_the_regions_reached():
    cov = coverage(catalogue("conv_transpose", 3))
    assert cov["cases"] == len(catalogue("conv_transpose", 3))
    assert cov["sizes"]["C_out"]["max"] > 128 and 128 in cov["sizes"]["C_out"]["past"]
    assert cov["sizes"]["N"]["past"] == [8, 16, 32]
    assert cov["features"]["all at once"] >= 15 and cov["features"]["output_padding"] > 0
    assert set(cov["layouts"]) == set(LAYOUTS) and cov["values"]["subnormal"] >= 1 and cov["invalid"] >= 4
    rng = random.Random(1)
    small = coverage([random_case("conv", 1, ALL, rng) for _ in range(5)])
    assert small["cases"] == 5 and set(small) == set(cov)


# ----------------------------------------------------------------------------- empty batch


@pytest.mark.parametrize("fn", [pooling.adaptive_avg_pool, pooling.adaptive_max_pool])
@pytest.mark.parametrize("dims", DIMS)
def test_adaptive_pooling_of_an_empty_batch_or_no_channels(fn, dims):
    out = (2, 3, 1)[:dims]
    for lead in ((0, 3), (0, 0), (2, 0)):
        x = np.zeros(lead + (5, 4, 3)[:dims], np.float32)
        y = fn(x, out)
        assert y.shape == lead + out and y.dtype == np.float32, (fn.__name__, lead, y.shape, y.dtype)
    if fn is pooling.adaptive_max_pool:
        y, i = fn(np.zeros((0, 3) + (5, 4, 3)[:dims], np.int16), out, return_indices=True)
        assert y.shape == i.shape == (0, 3) + out and y.dtype == np.int16 and i.dtype == np.int64
        y, i = fn(np.empty((0, 2) + (4,) * dims, dtype=object), out, return_indices=True)  # exact numbers
        assert y.shape == i.shape == (0, 2) + out and i.dtype == np.int64


def test_every_adaptive_op_has_an_empty_batch_case_and_draws_one():
    assert set(EMPTY_BATCH) == set(ADAPTIVE)
    for op in ADAPTIVE:
        for dims in DIMS:
            empty = [c for c in catalogue(op, dims) if c.n == 0]
            assert empty and all(c.is_valid() for c in empty), (op, dims)
            for c in empty:
                exp = ops.values_of(c, ops.expected(c, c.arrays("float32")))
                assert exp.shape == c.output_shape and exp.shape[0] == 0
        rng = random.Random(3)
        assert any(random_case(op, 2, ALL, rng).n == 0 for _ in range(200)), op


@pytest.mark.parametrize("op", ADAPTIVE)
def test_a_target_failing_only_on_an_empty_batch_fails(op):
    exact = registry.get(op).oracle_function()

    def pool(x, output_size):
        if x.shape[0] == 0:
            raise ValueError("cannot reshape array of size 0")
        return exact(x, output_size).astype(x.dtype)

    r = check(pool, op=op, dims=1, max_examples=0, seed=0)
    assert not r.ok and r.failure.kind == "exception" and r.failure.case.n == 0, str(r)
    assert check(lambda x, output_size: exact(x, output_size).astype(x.dtype), op=op, dims=1, max_examples=0,
                 seed=0).ok


# ----------------------------------------------------------------------------- diagnoses


def _good(x, w, b, *, stride, padding, dilation, groups, padding_mode="zeros"):
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,
                       padding_mode=padding_mode).astype(x.dtype)


def test_a_shape_wrong_only_for_an_empty_batch_is_called_that():
    def empty_wrong(x, w, b, **kw):
        y = _good(x, w, b, **kw)
        return np.zeros(y.shape[:2] + tuple(s + 1 for s in y.shape[2:]), y.dtype) if x.shape[0] == 0 else y

    r = check(empty_wrong, op="conv", dims=2, max_examples=0, seed=0)
    assert r.failure.kind == "shape" and r.failure.case.n == 0
    text = " ".join(r.failure.diagnosis)
    assert text.startswith("empty batch") and "dilation" not in text and "padding" not in text


def test_a_layout_dependent_failure_says_so_first():
    def needs_c_order(x, w, b, **kw):
        return _good(np.frombuffer(x.tobytes(order="A"), x.dtype).reshape(x.shape), w, b, **kw)

    r = check(needs_c_order, op="conv", dims=2, max_examples=0, seed=0)
    assert r.failure.case.layout == "fortran"
    assert r.failure.diagnosis[0] == ("depends on memory layout: passes with C-contiguous inputs, fails with fortran "
                                      "inputs")


def test_the_float64_screen_keeps_true_matches():
    """Candidates are screened in float64 first; a true match survives even under the float64 profile."""
    def flipped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)

    r = check(flipped, op="conv", dims=2, dtype="float64", max_examples=0, seed=0)
    assert any("kernel flipped" in d and "reproduces" in d for d in r.failure.diagnosis)
