"""Scratch buffers kept per thread and reused by the engine's temporaries, so that fresh memory is not faulted in.

An array of a few MiB that numpy allocates and frees is, with glibc's
allocator, often handed back to the system (memory mapped, or trimmed off the
top of a heap) and faulted in again, page by page and zero-filled, by the
next call: on a virtual machine a minor fault costs microseconds, and a layer
whose temporaries are tens of MiB spends milliseconds of each call in the
kernel.  The engine takes such temporaries from :func:`lease` instead: the
buffers given back are kept by the thread that used them (at most
:data:`KEEP_BYTES` per thread, and an eighth of the call's memory cap; the
least recently used are given up first) and handed out again for a temporary
of the same size.

A buffer is taken by one lease at a time (nested leases, and the tasks a
thread runs while it waits for others, get their own), holds no value
between leases (its contents are undefined when taken, like ``np.empty``),
and never leaves the engine: results are always fresh arrays.  Which buffer
a temporary gets never changes a bit of a result.

Examples
--------
>>> import numpy as np
>>> n = MIN_BYTES // 4                     # float32 elements of a buffer large enough to be kept
>>> with lease() as take:
...     a = take((n,), np.float32)
...     a[...] = 1
...     float(a.sum()) == n
True
>>> with lease() as take:                  # the same bytes again, on this thread, in another shape
...     b = take((2, n // 2), np.float32)
...     b.base is a.base, np.shares_memory(b, take((n,), np.float32))
(True, False)
>>> clear()
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["lease", "clear", "kept_bytes", "KEEP_BYTES", "MIN_BYTES"]

#: bytes of given-back buffers each thread keeps at most (the least recently given back go first)
KEEP_BYTES = 32 << 20
#: temporaries smaller than this are plain ``np.empty``: small arrays are recycled by the allocator itself
MIN_BYTES = 256 << 10

# each thread's given-back buffers by size in bytes, least recently given back first (a thread's go when it
# ends); one lock guards them all, so that clear() may empty another thread's while it takes or gives back
_lock = threading.Lock()
_by_thread: "weakref.WeakKeyDictionary[threading.Thread, OrderedDict[int, list[np.ndarray]]]" = weakref.WeakKeyDictionary()


def _kept() -> "OrderedDict[int, list[np.ndarray]]":
    """This thread's given-back buffers (the caller holds :data:`_lock`)."""
    return _by_thread.setdefault(threading.current_thread(), OrderedDict())


def kept_bytes() -> int:
    """Bytes this thread keeps for reuse.

    >>> clear(); kept_bytes()
    0
    """
    with _lock:
        return sum(n * len(bufs) for n, bufs in _kept().items())


def clear() -> None:
    """Give up every buffer that any thread keeps (the memory goes back to the allocator).

    Buffers taken by a lease in progress stay valid; they are kept again when it ends.
    """
    with _lock:
        for kept in _by_thread.values():
            kept.clear()


def _take(n: int) -> np.ndarray:
    with _lock:
        kept = _kept()
        bufs = kept.get(n)
        if bufs:
            buf = bufs.pop()
            if not bufs:
                del kept[n]
            return buf
    return np.empty(n, np.uint8)


def _give_back(bufs: list[np.ndarray], limit: int) -> None:
    with _lock:
        kept = _kept()
        for buf in bufs:
            kept.setdefault(buf.nbytes, []).append(buf)
            kept.move_to_end(buf.nbytes)
        total = sum(n * len(b) for n, b in kept.items())
        while total > limit and kept:
            n, old = next(iter(kept.items()))
            old.pop(0)
            total -= n
            if not old:
                del kept[n]


@contextmanager
def lease(cap: int | None = None) -> Iterator[Callable[[Any, Any], np.ndarray]]:
    """``take(shape, dtype)`` -> an uninitialised C-contiguous array, valid until the ``with`` block ends.

    Buffers of at least :data:`MIN_BYTES` come from this thread's kept ones
    when one of the same size is there, and are kept again at the end: at
    most :data:`KEEP_BYTES` per thread, and at most an eighth of ``cap``, the
    memory cap of the call (:mod:`refconv.fast.memory`), when it is given.
    """
    taken: list[np.ndarray] = []

    def take(shape: Any, dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        shape = tuple(shape) if isinstance(shape, tuple) else (shape,)
        n = math.prod(shape) * dtype.itemsize
        if n < MIN_BYTES:
            return np.empty(shape, dtype)
        buf = _take(n)
        taken.append(buf)
        return buf.view(dtype).reshape(shape)

    try:
        yield take
    finally:
        _give_back(taken, KEEP_BYTES if cap is None else min(KEEP_BYTES, cap // 8))
