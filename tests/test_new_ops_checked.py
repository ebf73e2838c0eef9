"""The pooling semantics added as checked ops: max_pool_indices, lp_pool, adaptive_avg_pool, adaptive_max_pool,
avg_pool's dilation and divisor_override, pooling padding over half the window; their fast versions and adapters."""

import random

import numpy as np
import pytest

from refconv import fast, oracle
from refconv.conformance import check, ops, registry
from refconv.conformance.cases import ALL, Case, catalogue, random_case
from refconv.params import ConvParamError

NEW = ("max_pool_indices", "lp_pool", "adaptive_avg_pool", "adaptive_max_pool")
U = 2.0**-53


def _integer_cases(op):
    # every catalogue case of the op with small integer inputs (exact sums in float64)
    for dims in (1, 2, 3):
        for c in catalogue(op, dims):
            if not c.expect_refusal:
                yield c, {k: np.rint(v * 3) for k, v in c.arrays("float64").items()}


@pytest.mark.parametrize("op", ["max_pool_indices", "adaptive_max_pool", "adaptive_avg_pool"])
def test_fast_is_exact_on_integers(op):
    for c, a in _integer_cases(op):
        want = ops.expected(c, a)
        got = ops.expected(c, a, approximate=True)  # the fast engine, through the record
        for w, g in zip(*(v if isinstance(v, tuple) else (v,) for v in (want, got))):
            assert g.shape == w.shape and np.array_equal(g, w, equal_nan=True), c.describe()


def test_fast_adaptive_max_pool_indices_are_the_oracle_s():
    x = np.array([[[[1, 5, 5, 2], [6, 0, 6, 1], [3, 3, 3, 3]]]])
    for out in [(2, 3), (1, 1), (3, 4), (4, 5)]:
        y, i = fast.adaptive_max_pool(x, out, return_indices=True)
        ye, ie = oracle.adaptive_max_pool(x, out, return_indices=True)
        assert np.array_equal(y, ye) and np.array_equal(i, ie)


def test_fast_lp_pool_on_integers():
    for c, a in _integer_cases("lp_pool"):
        want, got = ops.expected(c, a), ops.expected(c, a, approximate=True)
        if c.norm in (1, 2):
            # an exact sum and one correctly rounded root (or none)
            assert np.array_equal(got, want), c.describe()
        else:
            # sqrt(sqrt(s)) of an exact s: two correct roundings, the first halved by the outer root (1.5u of the
            # exact root r), and want = r(1 + d), |d| <= u: |got - want| <= 2.5u r <= 2.5u |want| / (1 - u)
            assert np.all(np.abs(got - want) <= 2.5 * U / (1 - U) * np.abs(want)), c.describe()


def test_max_pool_indices_windows_of_padding_only():
    y, i = fast.max_pool_indices(np.array([[[1.0, 2.0]]]), 2, stride=1, padding=1, dilation=3)
    assert y.tolist() == [[[-np.inf]]] and i.tolist() == [[[-1]]]
    with pytest.raises(ConvParamError, match="only padding"):
        fast.max_pool_indices(np.array([[[1, 2]]]), 2, stride=1, padding=1, dilation=3)


# --------------------------------------------------------------------------- the case model


def test_optional_keywords_are_named_only_when_set():
    c = Case("avg_pool", spatial=(5,), kernel=(2,))
    assert "dilation" not in c.describe() and "divisor_override" not in c.describe()
    d = Case("avg_pool", spatial=(7,), kernel=(2,), dilation=(2,), divisor_override=3)
    assert "dilation=(2,)" in d.describe() and "divisor_override=3" in ops.repro_call(d)
    assert ops.expected(d, {"x": np.arange(7.0)[None, None]}).tolist() == [[[2 / 3, 4 / 3, 2.0, 8 / 3, 10 / 3]]]


def test_the_strategies_draw_the_new_parameters():
    rng = random.Random(0)
    drawn = [random_case("max_pool", 1, ALL, rng) for _ in range(400)]
    assert any(max(c.padding[0]) > (c.dilation[0] * (c.kernel[0] - 1) + 1) // 2 for c in drawn if c.is_valid())
    avg = [random_case("avg_pool", 2, ALL, rng) for _ in range(200)]
    assert any(c.divisor_override for c in avg) and any(max(c.dilation) > 1 for c in avg)
    lp = {random_case("lp_pool", 1, ALL, rng).norm for _ in range(50)}
    assert lp == {1, 2, 4}
    ad = [random_case("adaptive_avg_pool", 2, ALL, rng) for _ in range(50)]
    assert all(len(c.output_size) == 2 and c.is_valid() for c in ad if c.n)
    assert any(o > n for c in ad for o, n in zip(c.output_size, c.spatial))  # more outputs than inputs


def test_the_bound_is_borrowed_and_only_the_direct_one():
    assert registry.get("lp_pool").bound_modes() == ("direct",)
    assert registry.get("adaptive_avg_pool").bound_as == "avg_pool"
    assert registry.get("max_pool_indices").bound_as == "max_pool"
    with pytest.raises(ConvParamError, match="bound='prefix_sum' does not apply to op='lp_pool'"):
        check("refconv.fast", op="lp_pool", bound="prefix_sum", max_examples=0)


# --------------------------------------------------------------------------- the engine judges indices exactly


def _mpi(**change):
    def fn(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        y, i = fast.max_pool_indices(x, kernel_size, stride=stride, padding=padding, dilation=dilation,
                                     ceil_mode=ceil_mode)
        if change.get("shift"):
            i = np.where(i > 0, i - 1, i)
        if change.get("values_only"):
            return y
        return y, i

    return fn


def test_indices_are_judged_exactly():
    assert check(_mpi(), op="max_pool_indices", dims=2, max_examples=5, seed=0).ok
    r = check(_mpi(shift=True), op="max_pool_indices", dims=1, max_examples=5, seed=0)
    assert not r.ok and r.failure.kind == "indices"
    r = check(_mpi(values_only=True), op="max_pool_indices", dims=1, max_examples=5, seed=0)
    assert not r.ok and r.failure.kind == "type" and "pair (y, indices)" in r.failure.message


def test_a_function_without_divisor_override_is_checked_at_its_default():
    def avg(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
        return fast.avg_pool(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                             count_include_pad=count_include_pad)

    r = check(avg, op="avg_pool", dims=2, max_examples=10, seed=0)
    assert r.ok and r.capabilities["divisor_override"] is False and r.capabilities["dilation"] is False


# --------------------------------------------------------------------------- adapters


def test_onnx_indices_come_back_to_planes():
    pytest.importorskip("onnxruntime")
    from refconv.conformance.adapters.onnx_adapter import plane_indices, run_node
    from refconv.pooling import onnx_indices

    x = np.random.default_rng(0).permutation(2 * 3 * 5 * 4).reshape(2, 3, 5, 4).astype(np.float32)  # no ties
    _, want = oracle.max_pool(x, (2, 3), stride=(2, 1), padding=((1, 1), (1, 1)), return_indices=True)
    for order in (0, 1):
        _, got = run_node("MaxPool", [x], outputs=2, kernel_shape=[2, 3], strides=[2, 1], pads=[1, 1, 1, 1],
                          storage_order=order)
        assert np.array_equal(got, onnx_indices(want, x.shape, order))
        assert np.array_equal(plane_indices(got, x.shape, order), want)


@pytest.mark.parametrize("op", NEW)
def test_torch_passes_the_new_ops_within_its_declared_limits(op):
    pytest.importorskip("torch")
    r = check("torch", op=op, dims=2, max_examples=10, seed=1)
    if op == "max_pool_indices":
        # PyTorch gives a window of padding only (a dilated one) the index of a tap past the input, not -1
        assert not r.ok and r.failure.kind == "indices", str(r)
        x = np.array([[[1.0, 2.0]]], dtype=np.float32)
        y, i = registry.get(op).oracle_function()(x, (2,), stride=(1,), padding=((1, 1),), dilation=(3,))
        import torch
        ty, ti = torch.nn.functional.max_pool1d(torch.from_numpy(x), 2, 1, 1, 3, return_indices=True)
        assert y.tolist() == ty.tolist() == [[[-np.inf]]] and i.tolist() == [[[-1]]] and ti.tolist() != [[[-1]]]
    else:
        assert r.ok, str(r)


@pytest.mark.parametrize("op", ["adaptive_avg_pool", "adaptive_max_pool"])
def test_onnx_global_pooling_is_adaptive_pooling_to_one(op):
    pytest.importorskip("onnxruntime")
    r = check("onnxruntime", op=op, dims=2, max_examples=5, seed=0)
    assert r.ok, str(r)
    assert any("other than global" in s for s in r.skipped)


def test_onnx_lp_pool_accepts_p_0():
    # a finding: ONNX Runtime's LpPool returns a result for p = 0 (the definition needs p >= 1)
    pytest.importorskip("onnxruntime")
    from refconv.conformance.adapters.onnx_adapter import run_node

    y = run_node("LpPool", [np.ones((1, 1, 4), np.float32)], kernel_shape=[2], strides=[2], p=0, pads=[0, 0])
    assert y.shape == (1, 1, 2)
    with pytest.raises(ConvParamError, match="p=0"):
        oracle.lp_pool(np.ones((1, 1, 4)), 0, 2)
