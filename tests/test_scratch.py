"""Scratch buffers of the fast engine: reuse per thread, one lease at a time, bounded, never in a result."""

import threading

import numpy as np

from refconv import fast, oracle, tolerance
from refconv.fast import scratch

BIG = scratch.MIN_BYTES // 4  # float32 elements of one buffer that is kept


def _kept_buffers():
    return [b for bufs in scratch._kept().values() for b in bufs]


def test_a_buffer_given_back_is_taken_again_on_the_same_thread():
    scratch.clear()
    with scratch.lease() as take:
        a = take((BIG,), np.float32)
    with scratch.lease() as take:
        b = take((2, BIG // 2), np.float32)  # same bytes, another shape
        c = take((BIG,), np.float32)  # same bytes again, while b is taken: a new buffer
    assert b.base is a.base
    assert not np.shares_memory(b, c)
    assert scratch.kept_bytes() == 2 * BIG * 4
    scratch.clear()
    assert scratch.kept_bytes() == 0


def test_nested_leases_never_share_a_buffer():
    scratch.clear()
    with scratch.lease() as outer:
        a = outer((BIG,), np.float64)
        with scratch.lease() as inner:
            b = inner((BIG,), np.float64)
            assert not np.shares_memory(a, b)
        with scratch.lease() as inner:
            c = inner((BIG,), np.float64)  # b was given back, a is still taken
            assert c.base is b.base and not np.shares_memory(a, c)
    scratch.clear()


def test_small_temporaries_are_plain_arrays_and_not_kept():
    scratch.clear()
    with scratch.lease() as take:
        small = take((4, 4), np.float32)
        assert small.shape == (4, 4) and small.dtype == np.float32 and small.flags.c_contiguous
    assert scratch.kept_bytes() == 0


def test_kept_bytes_stay_under_the_cap_least_recently_given_back_first(monkeypatch):
    scratch.clear()
    monkeypatch.setattr(scratch, "KEEP_BYTES", 3 * scratch.MIN_BYTES)
    sizes = [scratch.MIN_BYTES, 2 * scratch.MIN_BYTES, 3 * scratch.MIN_BYTES]
    for n in sizes:
        with scratch.lease() as take:
            take((n,), np.uint8)
    # the last one alone fills the cap: the two given back before it are gone
    assert scratch.kept_bytes() == 3 * scratch.MIN_BYTES
    assert sorted(scratch._kept()) == [3 * scratch.MIN_BYTES]
    # a call's memory cap bounds what is kept after it to an eighth of the cap
    with scratch.lease(cap=8 * scratch.MIN_BYTES) as take:
        take((scratch.MIN_BYTES,), np.uint8)
    assert sorted(scratch._kept()) == [scratch.MIN_BYTES]
    scratch.clear()


def test_each_thread_keeps_its_own_buffers():
    scratch.clear()
    seen = []

    def other():
        seen.append(scratch.kept_bytes())
        with scratch.lease() as take:
            take((BIG,), np.float32)
        seen.append(scratch.kept_bytes())

    with scratch.lease() as take:
        take((BIG,), np.float32)
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [0, BIG * 4]
    assert scratch.kept_bytes() == BIG * 4
    scratch.clear()


def test_clear_gives_up_the_buffers_of_every_thread():
    scratch.clear()
    ready, done = threading.Event(), threading.Event()
    seen = []

    def worker():
        with scratch.lease() as take:
            take((BIG,), np.float32)
        ready.set()
        done.wait(10)
        seen.append(scratch.kept_bytes())  # after the main thread's clear()

    t = threading.Thread(target=worker)
    t.start()
    assert ready.wait(10)
    with scratch.lease() as take:
        inflight = take((BIG,), np.float32)
        scratch.clear()  # another thread's kept buffer goes; this lease's buffer stays valid
        inflight[...] = 1
    done.set()
    t.join()
    assert seen == [0]
    assert scratch.kept_bytes() == BIG * 4  # the lease in flight gave its buffer back after the clear
    scratch.clear()


def test_winograd_results_ignore_what_the_kept_buffers_held_and_never_share_them():
    rng = np.random.default_rng(0)
    # a layer below the serial threshold: its tasks run on this thread, with this thread's buffers
    x = rng.integers(-3, 4, (2, 32, 20, 20)).astype(np.float64)
    w = rng.integers(-3, 4, (32, 32, 3, 3)).astype(np.float64)
    scratch.clear()
    first = fast.conv(x, w, padding=1, algorithm="winograd")
    kept = _kept_buffers()
    assert kept, "the Winograd temporaries are kept for the next call"
    for buf in kept:
        buf.view(np.float64)[...] = np.nan  # whatever a buffer holds is never read
        assert not np.shares_memory(buf, first)
    again = fast.conv(x, w, padding=1, algorithm="winograd")
    assert np.array_equal(again, first)
    assert all(not np.shares_memory(buf, again) for buf in _kept_buffers())
    want = oracle.conv(x, w, padding=1)
    assert tolerance.within_bound(again, want, tolerance.winograd_conv_error_bound(x, w, padding=1)).all()
    scratch.clear()
