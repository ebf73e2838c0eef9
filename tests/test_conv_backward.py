"""conv_backward: both gradients of a convolution from one call (fast: at once on two threads; oracle: in turn)."""

import numpy as np
import pytest

from refconv import fast, oracle
from refconv.fast.memory import MemoryCapError
from refconv.params import ConvParamError

KW = [
    dict(),
    dict(stride=2, padding=1),
    dict(padding=(1, 2), dilation=2),
    dict(groups=2, padding=1),
    dict(groups=4, padding=1),  # depthwise
    dict(padding=1, padding_mode="reflect"),
    dict(stride=2, flip=True),
]


def _arrays(seed, n=3, c=4, m=4, k=3, size=9, groups=1, integer=False):
    rng = np.random.default_rng(seed)
    draw = (lambda *s: rng.integers(-4, 5, s).astype(np.float32)) if integer else (
        lambda *s: rng.standard_normal(s).astype(np.float32))
    return draw(n, c, size, size), draw(m, c // groups, k, k)


@pytest.mark.parametrize("kw", KW)
def test_fast_equals_the_separate_calls_bit_for_bit(kw):
    x, w = _arrays(0, groups=kw.get("groups", 1))
    y = fast.conv(x, w, **kw)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    dx, dw, db = fast.conv_backward(dy, x, w, **kw)
    assert np.array_equal(dx, fast.conv_grad_input(dy, w, x.shape, **kw))
    assert np.array_equal(dw, fast.conv_grad_weight(x, dy, w.shape, **kw))
    assert np.array_equal(db, fast.conv_grad_bias(dy))


@pytest.mark.parametrize("kw", KW)
def test_fast_and_oracle_agree_exactly_on_integers(kw):
    x, w = _arrays(2, groups=kw.get("groups", 1), integer=True)
    dy = np.rint(4 * np.random.default_rng(3).standard_normal(oracle.conv(x, w, **kw).shape)).astype(np.float32)
    got = fast.conv_backward(dy, x, w, algorithm="direct", **kw)
    want = oracle.conv_backward(dy, x, w, **kw)
    for g, r in zip(got, want):
        assert np.array_equal(g, r)


def test_flags_leave_out_what_is_not_asked_for():
    x, w = _arrays(4)
    dy = np.ones((3, 4, 7, 7), np.float32)
    dx, dw, db = fast.conv_backward(dy, x, w, bias=False, input_grad=False)
    assert dx is None and db is None
    assert np.array_equal(dw, fast.conv_grad_weight(x, dy, w.shape))
    assert oracle.conv_backward(dy, x, w, bias=False, input_grad=False)[::2] == (None, None)


def test_layout_keywords_reach_every_gradient():
    x, w = _arrays(5)
    dy = np.random.default_rng(6).standard_normal((3, 4, 9, 9)).astype(np.float32)
    ref = fast.conv_backward(dy, x, w, padding=1)
    nhwc = fast.conv_backward(dy.transpose(0, 2, 3, 1), x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), padding=1,
                              layout="NHWC", weight_layout="HWIO")
    assert np.array_equal(nhwc[0], ref[0].transpose(0, 2, 3, 1))
    assert np.array_equal(nhwc[1], ref[1].transpose(2, 3, 1, 0))
    assert np.array_equal(nhwc[2], ref[2])


def test_a_gradient_over_half_the_cap_runs_alone_under_the_whole_cap():
    x, w = _arrays(7, n=4, size=24)
    dy = np.random.default_rng(8).standard_normal((4, 4, 22, 22)).astype(np.float32)
    def gi(cap):
        return fast.conv_grad_input(dy, w, x.shape, max_memory=cap)

    def gw(cap):
        return fast.conv_grad_weight(x, dy, w.shape, max_memory=cap)

    # a cap that fits each gradient whole, where one of them does not fit in half of it
    cap = next(c for c in range(4096, 1 << 22, 4096)
               if _fits(gi, c) and _fits(gw, c) and not (_fits(gi, c // 2) and _fits(gw, c // 2)))
    dx, dw, _ = fast.conv_backward(dy, x, w, max_memory=cap)
    # each equals the separate call under the cap it ran under: half where it fit there, else the whole
    assert np.array_equal(dx, gi(cap // 2) if _fits(gi, cap // 2) else gi(cap))
    assert np.array_equal(dw, gw(cap // 2) if _fits(gw, cap // 2) else gw(cap))
    with pytest.raises(MemoryCapError, match="max_memory=64"):
        fast.conv_backward(dy, x, w, max_memory=64)


def _fits(call, cap):
    try:
        call(cap)
    except MemoryCapError:
        return False
    return True


def test_bad_arguments_are_named():
    x, w = _arrays(9)
    dy = np.ones((3, 4, 7, 7), np.float32)
    with pytest.raises(ConvParamError, match="stride"):
        fast.conv_backward(dy, x, w, stride=0)
    with pytest.raises(ConvParamError, match="dy"):
        fast.conv_backward(np.ones((3, 4, 5, 5), np.float32), x, w)


def test_called_from_a_worker_thread_it_runs_in_turn():
    from refconv.fast.parallel import run_tasks

    x, w = _arrays(10)
    dy = np.random.default_rng(11).standard_normal((3, 4, 7, 7)).astype(np.float32)
    ref = fast.conv_backward(dy, x, w)
    got = run_tasks(lambda _: fast.conv_backward(dy, x, w), [0, 1])
    for g in got:
        assert all(np.array_equal(a, b) for a, b in zip(g, ref))


def test_many_geometries_at_once_through_a_full_memo(monkeypatch):
    # the validation memo evicts while the two threads of each call add to it
    import importlib
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(importlib.import_module("refconv.fast.memo"), "MEMO_SIZE", 2)
    rng = np.random.default_rng(12)
    cases = []
    for size in range(5, 13):
        x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        dy = rng.standard_normal((2, 4, size - 2, size - 2)).astype(np.float32)
        cases.append((dy, x, w))
    want = [fast.conv_backward(*c) for c in cases]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda c: fast.conv_backward(*c), cases * 3))
    for g, r in zip(got, want * 3):
        assert all(np.array_equal(a, b) for a, b in zip(g, r))


def test_callers_on_several_threads_help_each_others_weight_gradients(monkeypatch):
    # every gradient split into tasks (no serial threshold): the caller of each conv_backward, done with
    # dx, takes tasks of whichever weight gradient is open, its own or another caller's
    from concurrent.futures import ThreadPoolExecutor

    from refconv.fast import parallel

    monkeypatch.setattr(parallel, "SERIAL_BELOW_MACS", 0)
    rng = np.random.default_rng(13)
    cases = []
    for size in (9, 12, 16, 20):
        x = rng.integers(-4, 5, (6, 3, size, size)).astype(np.float32)
        w = rng.integers(-4, 5, (5, 3, 3, 3)).astype(np.float32)
        dy = rng.integers(-4, 5, (6, 5, size - 2, size - 2)).astype(np.float32)
        cases.append((dy, x, w))
    want = [(oracle.conv_grad_input(dy, w, x.shape), oracle.conv_grad_weight(x, dy, w.shape)) for dy, x, w in cases]
    with ThreadPoolExecutor(4) as users:  # the users' own threads, not the engine's
        got = list(users.map(lambda c: fast.conv_backward(*c, bias=False), cases * 3))
    for (dx, dw, db), (wx, ww) in zip(got, want * 3):
        assert db is None
        assert np.array_equal(dx, wx) and np.array_equal(dw, ww)
