"""Deterministic parallelism: a fixed partition into tasks, run on a few threads, BLAS single-threaded.

OpenBLAS returns different bits for the same product when its thread count or
the matrix shape changes (it picks kernels and partitions per call).  So the
engine never lets BLAS thread: every GEMM runs single-threaded, on operands
whose shapes are fixed by the problem (per sample, or per fixed block of
samples), and the parallelism comes from running independent tasks of that
fixed partition on :data:`workers` threads (numpy releases the GIL in copies,
ufuncs and BLAS).  Which thread runs a task never changes its result, so
results do not depend on the thread count or the run.

BLAS threads are limited with threadpoolctl when it is installed (the
``bench`` extra); without it, BLAS keeps its own threads and bit-for-bit
independence of the thread count is not guaranteed.

Examples
--------
>>> run_tasks(lambda t: t * t, [1, 2, 3])
[1, 4, 9]
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

__all__ = ["workers", "run_tasks", "single_threaded_blas", "inline", "serial_here"]

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_blas: Any = None


def workers() -> int:
    """Threads used for tasks: the CPUs this process may use, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _controller() -> Any:
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController().select(user_api="blas")
        except ImportError:  # pragma: no cover - threadpoolctl missing
            _blas = False
    return _blas


_depth = 0
_limiter: Any = None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS limited to one thread inside the block (when threadpoolctl is available).

    Reference-counted: with several threads inside at once, the first to enter
    limits BLAS and the last to leave restores it.
    """
    global _depth, _limiter
    ctl = _controller()
    if not ctl:
        yield
        return
    with _lock:
        if _depth == 0:
            # each BLAS library's thread count, set to one where it is not (restored on the way out)
            _limiter = [(lib, n) for lib in ctl.lib_controllers if (n := lib.num_threads) != 1]
            for lib, _ in _limiter:
                lib.set_num_threads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, n in _limiter:
                    lib.set_num_threads(n)
                _limiter = None


_local = threading.local()


@contextmanager
def inline() -> Iterator[None]:
    """Inside the block, :func:`run_tasks` runs its tasks on the calling thread (the same partition, so
    the same bits): for a caller whose other work already holds the worker threads."""
    before = getattr(_local, "inline", False)
    _local.inline = True
    try:
        yield
    finally:
        _local.inline = before


def serial_here() -> bool:
    """Whether work started on this thread stays on it: a worker thread, or inside :func:`inline`."""
    return getattr(_local, "inline", False) or threading.current_thread().name.startswith("refconv-fast")


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="refconv-fast")
        return _pool


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], *, max_parallel: int | None = None) -> list[Any]:
    """``[fn(t) for t in tasks]``, at most ``max_parallel`` at a time, BLAS single-threaded.

    The calling thread takes tasks too, next to ``max_parallel - 1`` helpers
    on the worker threads; each thread takes the next task not yet taken
    until none is left (no waves: a thread that wakes late, or a task that
    runs long, leaves no other thread waiting).  ``max_parallel`` keeps the
    temporaries of the tasks in flight under the memory cap.  The first
    exception a task raises is raised here once every thread has stopped,
    and no task starts after it.
    """
    tasks = list(tasks)
    par = workers() if max_parallel is None else max(1, min(workers(), max_parallel))
    with single_threaded_blas():
        if len(tasks) <= 1 or par == 1 or serial_here():
            return [fn(t) for t in tasks]
        n = len(tasks)
        out: list[Any] = [None] * n
        taken = itertools.count()  # next() is atomic: each index goes to exactly one thread
        failed: list[BaseException] = []

        def take() -> None:
            while not failed and (i := next(taken)) < n:
                try:
                    out[i] = fn(tasks[i])
                except BaseException as e:
                    failed.append(e)

        helpers = [_executor().submit(take) for _ in range(min(par, n) - 1)]
        with inline():  # the caller's tasks run their own work serially, as a worker's do
            take()
        for h in helpers:
            h.result()
        if failed:
            raise failed[0]
        return out
