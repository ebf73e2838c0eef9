"""refconv.fast's Winograd path: within the Winograd bound of refconv.tolerance, its domain, the 'auto' choice.

Winograd's transforms are not exact on integer data in general (``F(4, 3)``
multiplies by ``1/6``), so the reference is the oracle within
:func:`refconv.tolerance.winograd_conv_error_bound`, and the conformance
checker with ``bound='winograd'``; ``F(2, 3)`` (entries ``0, +-1, +-1/2``) is
exact on small integer-valued floats.
"""

from __future__ import annotations

import numpy as np
import pytest

from refconv import fast, oracle, tolerance
from refconv.conformance import check
from refconv.fast import parallel, winograd
from refconv.fast.conv import _geometry
from refconv.fast.memory import Budget
from refconv.params import ConvParamError, conv_params

SHAPES = [
    # (x shape, w shape, padding): 1-D, 2-D and 3-D; outputs that tiles of 4 do not divide; crops; one tile
    ((2, 3, 11), (4, 3, 3), 1),
    ((2, 3, 7, 9), (5, 3, 3, 3), 1),
    ((1, 4, 10, 6), (3, 4, 3, 3), 0),
    ((3, 2, 5, 5), (2, 2, 3, 3), ((2, 1), (0, 3))),
    ((1, 2, 3, 3), (1, 2, 3, 3), 0),
    ((1, 2, 6, 5, 7), (2, 2, 3, 3, 3), 1),
]


@pytest.mark.parametrize("x_shape, w_shape, padding", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_within_the_winograd_bound(x_shape, w_shape, padding, dtype):
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    got = fast.conv(x, w, b, padding=padding, algorithm="winograd")
    want = oracle.conv(x, w, b, padding=padding)
    assert got.dtype == dtype and got.shape == want.shape
    bound = tolerance.winograd_conv_error_bound(x, w, b, padding=padding)
    assert tolerance.within_bound(got, want, bound).all()
    # the Winograd result is not the direct one bit for bit (it really took the other path)
    assert not np.array_equal(got, fast.conv(x, w, b, padding=padding, algorithm="direct")) or x.size < 50


@pytest.mark.parametrize("x_shape, w_shape, padding", SHAPES)
def test_tiles_of_two_are_exact_on_small_integers(x_shape, w_shape, padding):
    rng = np.random.default_rng(1)
    x = rng.integers(-4, 5, x_shape).astype(np.float32)
    w = rng.integers(-4, 5, w_shape).astype(np.float32)
    p = conv_params(x_shape, w_shape, padding=padding)
    got = winograd.forward(x, w, _geometry(p), Budget(1 << 30), m=2)
    assert np.array_equal(got, oracle.conv(x, w, padding=padding))


@pytest.mark.parametrize("op", ["conv", "conv_transpose", "conv_grad_input"])
@pytest.mark.parametrize("dims", [1, 2])
def test_conformance_with_the_winograd_bound(op, dims):
    """The checker runs every case: Winograd where it applies (3-tap, stride 1, ...), direct elsewhere."""

    def algorithm(kernel, stride, dilation, groups):
        ok = all(k == 3 for k in kernel) and all(s == 1 for s in stride) and all(d == 1 for d in dilation) and groups == 1
        return "winograd" if ok else "direct"

    def conv(x, w, b, *, stride, padding, dilation, groups):
        return fast.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,
                         algorithm=algorithm(w.shape[2:], stride, dilation, groups))

    def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
        return fast.conv_transpose(x, w, b, stride=stride, padding=padding, output_padding=output_padding,
                                   dilation=dilation, groups=groups, algorithm=algorithm(w.shape[2:], stride, dilation, groups))

    def conv_grad_input(dy, w, input_shape, *, stride, padding, dilation, groups):
        return fast.conv_grad_input(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                                    algorithm=algorithm(w.shape[2:], stride, dilation, groups))

    fn = {"conv": conv, "conv_transpose": conv_transpose, "conv_grad_input": conv_grad_input}[op]
    report = check(fn, op=op, dims=dims, dtype="float32", bound="winograd", max_examples=40, seed=0, timeout=None)
    assert report.ok, str(report)
    assert report.cases > 40


def test_auto_picks_winograd_for_wide_3x3_layers():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    auto = fast.conv(x, w, padding=1)
    assert np.array_equal(auto, fast.conv(x, w, padding=1, algorithm="winograd"))
    assert tolerance.within_bound(auto, oracle.conv(x, w, padding=1), tolerance.winograd_conv_error_bound(x, w, padding=1)).all()
    # the input gradient of a stride-1 wide layer is the forward problem again: Winograd too
    dy = rng.standard_normal(auto.shape).astype(np.float32)
    assert np.array_equal(fast.conv_grad_input(dy, w, x.shape, padding=1),
                          fast.conv_grad_input(dy, w, x.shape, padding=1, algorithm="winograd"))
    # narrow layers, strided layers and integer inputs stay direct (exact on integers)
    xi, wi = rng.integers(-3, 4, (2, 16, 20, 20)), rng.integers(-3, 4, (16, 16, 3, 3))
    assert np.array_equal(fast.conv(xi, wi, padding=1), oracle.conv(xi, wi, padding=1))
    xs, ws = x[:, :3], w[:, :3]
    assert np.array_equal(fast.conv(xs, ws, padding=1), fast.conv(xs, ws, padding=1, algorithm="direct"))


def test_auto_falls_back_to_direct_under_a_small_cap():
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, (2, 16, 24, 24)).astype(np.float64)
    w = rng.integers(-3, 4, (16, 16, 3, 3)).astype(np.float64)
    want = oracle.conv(x, w, padding=1)
    one = winograd.per_sample_bytes(16, 16, (26, 26), 4, 8)
    cap = want.nbytes + 16 * 16 * 36 * 8 + one // 2  # the output fits, one Winograd sample does not
    assert np.array_equal(fast.conv(x, w, padding=1, max_memory=cap), want)
    with pytest.raises(fast.MemoryCapError):
        fast.conv(x, w, padding=1, max_memory=cap, algorithm="winograd")


def test_results_do_not_depend_on_the_number_of_worker_threads(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 16, 30, 30)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    monkeypatch.setattr(parallel, "SERIAL_BELOW_MACS", 0)  # run the tasks on the worker threads
    monkeypatch.setattr(winograd, "TARGET_TILES", 300)  # several tasks
    ref = fast.conv(x, w, padding=1, algorithm="winograd")
    for n in (1, 3):
        monkeypatch.setattr(parallel, "workers", lambda n=n: n)
        assert np.array_equal(fast.conv(x, w, padding=1, algorithm="winograd"), ref), n


@pytest.mark.parametrize("call", [
    lambda x, w: fast.conv(x, w, stride=2, algorithm="winograd"),
    lambda x, w: fast.conv(x, w, dilation=2, algorithm="winograd"),
    lambda x, w: fast.conv(x, w[:, :1], groups=2, algorithm="winograd"),
    lambda x, w: fast.conv(x, w[..., :2], algorithm="winograd"),
    lambda x, w: fast.conv_transpose(x, w, stride=2, algorithm="winograd"),
    lambda x, w: fast.conv_grad_input(np.ones((1, 2, 3, 3)), w, (1, 2, 8, 8), stride=2, algorithm="winograd"),
    lambda x, w: fast.conv_grad_weight(x, np.ones((1, 2, 6, 6)), w.shape, algorithm="winograd"),
])
def test_outside_its_domain_winograd_is_refused(call):
    x, w = np.ones((1, 2, 8, 8)), np.ones((2, 2, 3, 3))
    with pytest.raises(ConvParamError, match="algorithm='winograd'"):
        call(x, w)


def test_unknown_algorithm_lists_winograd():
    with pytest.raises(ConvParamError, match="'winograd'"):
        fast.conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), algorithm="strassen")


def test_everything_a_winograd_call_allocates_stays_under_the_cap():
    import tracemalloc

    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 16, 40, 40))
    w = rng.standard_normal((16, 16, 3, 3))
    want = fast.conv(x, w, padding=1, algorithm="winograd")
    one = winograd.per_sample_bytes(16, 16, (42, 42), 4, 8)
    for cap in (want.nbytes + 16 * 16 * 36 * 8 + one, 4 << 20):  # one sample at a time; a few at a time
        tracemalloc.start()
        try:
            got = fast.conv(x, w, padding=1, algorithm="winograd", max_memory=cap)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak <= cap, (peak, cap)
        # blocks of other sizes: still within the bound
        bound = tolerance.winograd_conv_error_bound(x, w, padding=1)
        assert tolerance.within_bound(got, oracle.conv(x, w, padding=1), bound).all()
