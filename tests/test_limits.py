"""Absurd sizes get named errors, never a numpy traceback, a hang or a 40 GB allocation.

* integers beyond ``2**63 - 1`` are refused in :mod:`refconv.params`, for both engines;
* sizes within that range but too large: :class:`refconv.fast.MemoryCapError` (the fast
  engine's cap counts the result and every intermediate) or
  :class:`refconv.params.OracleSizeError` (the oracle's work limit);
* the fast engine's four convolution functions fall back from the FFT to the direct kernels
  when ``algorithm='auto'`` chose an FFT that does not fit the cap.
"""

from __future__ import annotations

import inspect
import re
import tracemalloc

import numpy as np
import pytest

from refconv import fast, oracle
from refconv.fast import MemoryCapError
from refconv.fast.fft import prefer_fft
from refconv.params import MAX_INDEX, ConvParamError, OracleSizeError, conv_params

X = np.ones((1, 1, 4, 4))
W = np.ones((1, 1, 2, 2))
ENGINES = [fast, oracle]

# (argument named in the message, the call with h in place of an integer, what an in-range huge h gives):
# 'size' -> MemoryCapError (fast) / OracleSizeError (oracle), 'rule' -> a plain ConvParamError of params,
# 'value' -> the result of the same call with h = 10 (every h past the padded input reads the same windows)
CALLS = [
    ("stride", lambda e, h: e.conv(X, W, stride=h), "value"),
    ("padding", lambda e, h: e.conv(X, W, padding=h), "size"),
    ("padding", lambda e, h: e.conv(X, W, padding=((h, 0), (0, 1))), "size"),
    ("dilation", lambda e, h: e.conv(X, W, dilation=h), "rule"),
    ("groups", lambda e, h: e.conv(X, W, groups=h), "rule"),
    ("input_dilation", lambda e, h: e.general_conv(X, W, input_dilation=h), "size"),
    ("padding", lambda e, h: e.general_conv(X, W, padding=((h, -1), (0, 0))), "size"),
    ("padding", lambda e, h: e.general_conv(X, W, padding=((-h, 0), (0, 0))), "rule"),
    ("stride", lambda e, h: e.general_conv(X, W, stride=h, input_dilation=2), "value"),
    ("stride", lambda e, h: e.conv_transpose(X, W, stride=h), "size"),
    ("padding", lambda e, h: e.conv_transpose(X, W, padding=h), "rule"),
    ("output_padding", lambda e, h: e.conv_transpose(X, W, stride=2, output_padding=h), "rule"),
    ("dilation", lambda e, h: e.conv_transpose(X, W, dilation=h), "size"),
    ("groups", lambda e, h: e.conv_transpose(X, W, groups=h), "rule"),
    ("x.shape", lambda e, h: e.conv_grad_input(np.ones((1, 1, 1, 3)), W, (1, 1, h, 4), stride=(h, 1)), "size"),
    ("stride", lambda e, h: e.conv_grad_input(np.ones((1, 1, 1, 1)), W, X.shape, stride=h), "value"),
    ("padding", lambda e, h: e.conv_grad_input(np.ones((1, 1, 3, 3)), W, X.shape, padding=h), "rule"),
    ("dilation", lambda e, h: e.conv_grad_input(np.ones((1, 1, 3, 3)), W, X.shape, dilation=h), "rule"),
    ("w.shape", lambda e, h: e.conv_grad_weight(X, np.ones((1, 1, 3, 3)), (1, 1, h, 2)), "rule"),
    ("stride", lambda e, h: e.conv_grad_weight(X, np.ones((1, 1, 1, 1)), W.shape, stride=h), "value"),
    ("stride", lambda e, h: e.conv_grad_weight(X, np.ones((1, 1, 3, 3)), W.shape, padding=h, stride=h), "size"),
    ("dilation", lambda e, h: e.conv_grad_weight(X, np.ones((1, 1, 3, 3)), W.shape, dilation=h), "rule"),
    ("kernel_size", lambda e, h: e.max_pool(X, h), "rule"),
    ("stride", lambda e, h: e.max_pool(X, 2, stride=h), "value"),
    ("padding", lambda e, h: e.max_pool(X, 2, padding=h), "size"),
    ("dilation", lambda e, h: e.max_pool(X, 2, dilation=h), "rule"),
    ("kernel_size", lambda e, h: e.avg_pool(X, (h, 2)), "rule"),
    ("stride", lambda e, h: e.avg_pool(X, 2, stride=h), "value"),
    ("padding", lambda e, h: e.avg_pool(X, 2, padding=h), "size"),
    ("stride", lambda e, h: e.max_pool_grad(np.ones((1, 1, 1, 1)), X, 2, stride=h), "value"),
    ("kernel_size", lambda e, h: e.max_pool_grad(np.ones((1, 1, 1, 1)), X, h), "rule"),
    ("x.shape", lambda e, h: e.avg_pool_grad(np.ones((1, 1, 1, 2)), (1, 1, h, 4), 2, stride=(h, 2)), "size"),
    ("stride", lambda e, h: e.avg_pool_grad(np.ones((1, 1, 1, 1)), X.shape, 2, stride=h), "value"),
]


def _id(call) -> str:
    name, fn, kind = call
    op = re.search(r"e\.(\w+)\(", inspect.getsource(fn)).group(1)
    return f"{op}-{name}-{kind}"


@pytest.mark.parametrize("engine", ENGINES, ids=["fast", "oracle"])
@pytest.mark.parametrize("h", [MAX_INDEX + 1, 10**30], ids=["2**63", "10**30"])
@pytest.mark.parametrize("call", CALLS, ids=[_id(c) for c in CALLS])
def test_integers_beyond_int64_are_refused_in_params(engine, h, call):
    name, fn, _ = call
    with pytest.raises(ConvParamError) as info:
        fn(engine, h)
    assert type(info.value) is ConvParamError
    assert f"{name}=" in str(info.value)
    assert "larger than any array axis can be (max 2**63-1)" in str(info.value)


@pytest.mark.parametrize("engine", ENGINES, ids=["fast", "oracle"])
@pytest.mark.parametrize("h", [10**10, 2**62, MAX_INDEX], ids=["10**10", "2**62", "2**63-1"])
@pytest.mark.parametrize("call", CALLS, ids=[_id(c) for c in CALLS])
def test_huge_sizes_within_int64_give_named_errors_or_the_right_value(engine, h, call):
    _, fn, kind = call
    if kind == "value":
        assert np.array_equal(fn(engine, h), fn(engine, 10))
        return
    with pytest.raises(ConvParamError) as info:
        fn(engine, h)
    if kind == "rule":
        assert type(info.value) is ConvParamError
    elif engine is fast:
        assert type(info.value) is MemoryCapError
    else:
        assert type(info.value) is OracleSizeError


def test_padding_of_ten_billion_names_the_limit():
    with pytest.raises(MemoryCapError, match=r"max_memory=268435456: the result of conv \(shape \(1, 1, 20000000003, 20000000003\)"):
        fast.conv(X, W, padding=10**10)
    with pytest.raises(OracleSizeError, match=r"oracle\.conv: .* over the oracle's work limit of 1,000,000,000; raise it"):
        oracle.conv(X, W, padding=10**10)


# ----------------------------------------------------------------------------- the fast engine's cap


def _peak(fn) -> tuple[int, BaseException | None]:
    """Peak bytes traced while ``fn()`` runs (numpy reports its allocations to tracemalloc), and its MemoryCapError."""
    tracemalloc.start()
    try:
        fn()
        err = None
    except MemoryCapError as exc:
        err = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, err


def test_conv_transpose_result_over_the_cap_is_refused_before_allocating():
    x, w = np.ones((1, 1, 1000, 1000), np.float32), np.ones((1, 1, 3, 3), np.float32)
    peak, err = _peak(lambda: fast.conv_transpose(x, w, stride=100))
    # the result would be (1, 1, 99903, 99903) float32: 40 GB
    assert isinstance(err, MemoryCapError) and "the result of conv_transpose" in str(err)
    assert "needs 39922437636 bytes" in str(err)
    assert peak < 1 << 20


def _int_valued(rng, *shape, dtype=np.float64):
    return rng.integers(-3, 4, shape).astype(dtype)


def _cap_cases():
    rng = np.random.default_rng(0)
    x, w = _int_valued(rng, 3, 8, 24, 20), _int_valued(rng, 6, 4, 3, 3)
    kw = dict(groups=2, padding=1)
    dy = _int_valued(rng, 3, 6, 24, 20)
    kws = dict(groups=2, padding=1, stride=2)
    dys = _int_valued(rng, 3, 6, 12, 10)
    xd, wd = _int_valued(rng, 2, 8, 30, 30), _int_valued(rng, 8, 1, 3, 3)
    kwd = dict(groups=8, padding=1, stride=(1, 2))
    dyd = _int_valued(rng, 2, 8, 30, 15)
    xf, wf = _int_valued(rng, 1, 2, 48, 48), _int_valued(rng, 2, 2, 13, 13)
    dyf = _int_valued(rng, 1, 2, 36, 36)
    xi, wi, dyi = x.astype(np.int64), w.astype(np.int64), dy.astype(np.int64)
    mp = np.ones((3, 8, 12, 10))
    return {
        "conv": lambda m: fast.conv(x, w, max_memory=m, **kw),
        "conv mixed dtypes": lambda m: fast.conv(x, w.astype(np.float32), max_memory=m, **kw),
        "conv int": lambda m: fast.conv(xi, wi, max_memory=m, **kw),
        "conv strided": lambda m: fast.conv(x, w, max_memory=m, **kws),
        "conv depthwise": lambda m: fast.conv(xd, wd, max_memory=m, **kwd),
        "conv fft": lambda m: fast.conv(xf, wf, algorithm="fft", max_memory=m),
        "general_conv crop": lambda m: fast.general_conv(x, w, padding=((3, -2), (-1, 2)), input_dilation=2, groups=2, max_memory=m),
        "conv_transpose": lambda m: fast.conv_transpose(dys, np.ones((6, 4, 3, 3)), stride=2, groups=2, max_memory=m),
        "conv_grad_input": lambda m: fast.conv_grad_input(dy, w, x.shape, max_memory=m, **kw),
        "conv_grad_input strided flip": lambda m: fast.conv_grad_input(dys, w, x.shape, flip=True, max_memory=m, **kws),
        "conv_grad_input depthwise": lambda m: fast.conv_grad_input(dyd, wd, xd.shape, max_memory=m, **kwd),
        "conv_grad_input fft": lambda m: fast.conv_grad_input(dyf, wf, xf.shape, algorithm="fft", max_memory=m),
        "conv_grad_weight": lambda m: fast.conv_grad_weight(x, dy, w.shape, max_memory=m, **kw),
        "conv_grad_weight int flip": lambda m: fast.conv_grad_weight(xi, dyi, w.shape, flip=True, max_memory=m, **kw),
        "conv_grad_weight depthwise": lambda m: fast.conv_grad_weight(xd, dyd, wd.shape, max_memory=m, **kwd),
        "conv_grad_weight fft": lambda m: fast.conv_grad_weight(xf, dyf, wf.shape, algorithm="fft", max_memory=m),
        "convolve": lambda m: fast.convolve(x[0, 0], w[0, 0], max_memory=m),
        "correlate valid": lambda m: fast.correlate(x[0, 0], w[0, 0], "valid", max_memory=m),
        "conv_grad_bias": lambda m: _capped(m, lambda: fast.conv_grad_bias(dy)),
        "conv_grad_bias int": lambda m: _capped(m, lambda: fast.conv_grad_bias(dyi)),
        "max_pool": lambda m: _capped(m, lambda: fast.max_pool(x, 3, stride=2, padding=1)),
        "max_pool_grad": lambda m: _capped(m, lambda: fast.max_pool_grad(mp, x, 3, stride=2, padding=1)),
        "max_pool_grad int": lambda m: _capped(m, lambda: fast.max_pool_grad(mp.astype(np.int64), x, 3, stride=2, padding=1)),
        "avg_pool": lambda m: _capped(m, lambda: fast.avg_pool(x, 3, stride=2, padding=1)),
        "avg_pool int": lambda m: _capped(m, lambda: fast.avg_pool(xi, 3, stride=2, padding=1)),
        "avg_pool_grad": lambda m: _capped(m, lambda: fast.avg_pool_grad(mp, x.shape, 3, stride=2, padding=1)),
        "avg_pool_grad int": lambda m: _capped(m, lambda: fast.avg_pool_grad(mp.astype(np.int64), x.shape, 3, stride=2, padding=1)),
    }


def _capped(cap, fn):
    with fast.memory_cap(cap):
        return fn()


CAP_CASES = _cap_cases()
#: Python objects of one call (frames, tuples, slices, the task list) are not counted under the cap
PYTHON_SLACK = 32 << 10
#: what cannot run in less than its unconstrained peak: the integer bias gradient holds float64 copies of dy
#: whole, and the FFT weight gradient holds conservative spectra of the whole kernel (dy) per group
UNCHUNKED = {"conv_grad_bias int", "conv_grad_weight fft"}


@pytest.mark.parametrize("name", list(CAP_CASES))
def test_every_allocation_of_a_call_stays_under_the_cap(name):
    fn = CAP_CASES[name]
    fn(1 << 30)  # warm up: one-time imports and thread pools are not the call's memory
    free_peak, err = _peak(lambda: fn(1 << 30))
    assert err is None
    caps = [free_peak * f // 8 for f in (1, 2, 3, 4, 5, 6, 7)] + [2 * free_peak]
    below = 0
    for cap in caps:
        peak, err = _peak(lambda cap=cap: fn(cap))
        # a refusal happens before the allocation that would pass the cap, and a result stays under it
        assert peak <= cap + PYTHON_SLACK, (cap, peak, err)
        below += err is None and cap < free_peak
    assert err is None  # twice the unconstrained peak always fits
    if name not in UNCHUNKED:
        assert below >= 1  # and at least one cap below it made the call chunk its work


# ----------------------------------------------------------------------------- FFT -> direct under 'auto'


def _fft_fallback_cases():
    rng = np.random.default_rng(1)
    x, w = _int_valued(rng, 1, 4, 64, 64), _int_valued(rng, 4, 4, 17, 17)
    dy = _int_valued(rng, 1, 4, 48, 48)
    xb, dyb = _int_valued(rng, 1, 1, 256, 256), _int_valued(rng, 1, 1, 226, 226)
    # (function, cap between the direct kernels' need and the FFT's, and the forward problem 'auto' judges)
    return {
        "conv": (lambda a, m: fast.conv(x, w, algorithm=a, max_memory=m), 640_000, x.shape, w.shape),
        "conv_grad_input": (lambda a, m: fast.conv_grad_input(dy, w, x.shape, algorithm=a, max_memory=m), 900_000, x.shape, w.shape),
        "conv_transpose": (lambda a, m: fast.conv_transpose(dy, w, algorithm=a, max_memory=m), 900_000, x.shape, w.shape),
        "conv_grad_weight": (lambda a, m: fast.conv_grad_weight(x, dy, w.shape, algorithm=a, max_memory=m), 700_000, x.shape, w.shape),
        "conv_grad_weight 256x256, 31x31, 1 MiB": (
            lambda a, m: fast.conv_grad_weight(xb, dyb, (1, 1, 31, 31), algorithm=a, max_memory=m), 1 << 20, xb.shape, (1, 1, 31, 31)
        ),
    }


@pytest.mark.parametrize("name", list(_fft_fallback_cases()))
def test_auto_falls_back_from_fft_to_direct_under_the_cap(name):
    fn, cap, x_shape, w_shape = _fft_fallback_cases()[name]
    assert prefer_fft(x_shape, w_shape, conv_params(x_shape, w_shape), np.float64)  # 'auto' picks the FFT
    with pytest.raises(MemoryCapError):
        fn("fft", cap)  # which does not fit
    # integer-valued inputs: the direct kernels are exact whatever their chunks
    assert np.array_equal(fn("auto", cap), fn("direct", None))


# ----------------------------------------------------------------------------- the oracle's work limit


def test_oracle_work_limit_counts_macs_elements_and_tap_steps():
    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 2))
    # 3 outputs x 2 taps = 6 multiply-adds; 4 padded input + 3 result elements; 2 tap steps x 100
    with oracle.work_limit(213):
        assert oracle.conv(x, w).tolist() == [[[2.0, 2.0, 2.0]]]
    with oracle.work_limit(212), pytest.raises(OracleSizeError) as info:
        oracle.conv(x, w)
    assert str(info.value) == (
        "oracle.conv: 213 operations (6 multiply-adds, 7 array elements, 2 tap steps x 100), over the oracle's "
        "work limit of 212; raise it with refconv.oracle.work_limit(n) (None: no limit), or use refconv.fast"
    )


def test_oracle_work_limit_default_none_and_validation():
    assert oracle.get_work_limit() == oracle.DEFAULT_WORK_LIMIT == 10**9
    # 50001 outputs x 50000 taps; 100000 + 50001 elements; 50000 tap steps x 100
    with pytest.raises(OracleSizeError, match=r"oracle\.conv: 2,505,200,001 operations \(2,500,050,000 multiply-adds"):
        oracle.conv(np.ones((1, 1, 100000)), np.ones((1, 1, 50000)))
    with oracle.work_limit(10):
        with pytest.raises(OracleSizeError, match="work limit of 10;"):
            oracle.conv(np.ones((1, 1, 3)), np.ones((1, 1, 2)))
        with oracle.work_limit(None):
            assert oracle.get_work_limit() is None
            assert oracle.conv(np.ones((1, 1, 3)), np.ones((1, 1, 2))).tolist() == [[[2.0, 2.0]]]
        assert oracle.get_work_limit() == 10
    assert oracle.get_work_limit() == 10**9
    for bad in (0, -1, 1.5, True, "1e9"):
        with pytest.raises(ConvParamError, match="limit="):
            with oracle.work_limit(bad):
                pass


@pytest.mark.parametrize(
    "call",
    [
        lambda: oracle.conv_transpose(np.ones((1, 1, 100, 100)), np.ones((1, 1, 3, 3)), stride=10**4),
        lambda: oracle.conv_grad_input(np.ones((1, 1, 1, 1)), np.ones((1, 1, 2, 2)), (1, 1, 10**5, 10**5), stride=10**5),
        lambda: oracle.conv_grad_weight(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), (1, 1, 2, 2), padding=10**5, stride=10**5),
        lambda: oracle.max_pool(np.ones((1, 1, 4, 4)), 2 * 10**4 + 1, padding=10**4),
        lambda: oracle.max_pool(np.ones((0, 1, 10**5, 10**5)), 10**5),  # an empty batch still loops over 1e10 taps
        lambda: oracle.avg_pool_grad(np.ones((1, 1, 1, 1)), (1, 1, 10**5, 10**5), 10**5),
        lambda: oracle.max_pool_grad(np.ones((1, 1, 1)), np.ones((1, 1, 4)), 2 * 10**9 + 1, padding=10**9),
        lambda: oracle.conv_matrix(np.ones((1, 1, 2, 2)), (1, 10**4, 10**4)),
        lambda: oracle.convolve(np.ones(10**5), np.ones(10**5)),
        lambda: oracle.correlate(np.ones(10**5), np.ones(10**5), "same"),
        lambda: oracle.general_conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), input_dilation=10**9),
        lambda: oracle.general_conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), padding=((2 * 10**9, -1),)),
    ],
)
def test_every_oracle_operation_refuses_work_over_the_limit(call):
    with pytest.raises(OracleSizeError, match=r"over the oracle's work limit of 1,000,000,000"):
        call()


# ----------------------------------------------------------------------------- named thresholds


def test_fast_engine_thresholds_are_named():
    from refconv.fast import conv, direct, fft, geometry, pool

    assert geometry.is_depthwise(1, geometry.DEPTHWISE_MAX_MULTIPLIER) and not geometry.is_depthwise(1, 5)
    for mod in (conv, direct, fft, pool):
        src = inspect.getsource(mod)
        assert "Mg <= 4" not in src and "Cg >= 32" not in src, mod.__name__
        # byte sizes are module constants, written once each
        lines = [ln for ln in src.splitlines() if ("<< 20" in ln or "<< 22" in ln or "<< 10" in ln) and ">>>" not in ln]
        assert all(ln.split("=")[0].strip().isupper() for ln in lines), lines


@pytest.mark.parametrize("engine", ["fast", "oracle"])
def test_depthwise_with_huge_dilation_and_padding_is_a_size_error(engine):
    # one channel: the depthwise path, whose flat tap offsets into the padded plane would exceed int64
    from refconv import fast, oracle
    from refconv.fast.memory import MemoryCapError
    from refconv.params import OracleSizeError

    e = fast if engine == "fast" else oracle
    with pytest.raises(MemoryCapError if engine == "fast" else OracleSizeError):
        e.conv(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), dilation=10**10, padding=10**10)
