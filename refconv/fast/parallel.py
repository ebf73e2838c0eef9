"""Deterministic parallelism: a fixed partition into tasks, run on a few threads, BLAS single-threaded.

A BLAS may return different bits for the same product when its thread count
changes (MKL does outside its reproducibility mode) or when the matrix shape
changes (OpenBLAS picks kernels and blocking per call).  So the engine never
lets BLAS thread: every GEMM runs single-threaded, on operands
whose shapes are fixed by the problem (per sample, or per fixed block of
samples), and the parallelism comes from running independent tasks of that
fixed partition on :data:`workers` threads (numpy releases the GIL in copies,
ufuncs and BLAS).  Which thread runs a task never changes its result, so
results do not depend on the thread count or the run.

BLAS threads are limited with threadpoolctl when it is installed (the
``bench`` extra); without it, BLAS keeps its own threads and bit-for-bit
independence of the thread count is not guaranteed.  threadpoolctl finds the
libraries; a pthreads OpenBLAS (numpy's wheels) is set through its own C
calls, so the limit holds whichever thread enters the engine first and is
restored whichever thread leaves it last.

Examples
--------
>>> run_tasks(lambda t: t * t, [1, 2, 3])
[1, 4, 9]
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

__all__ = ["workers", "run_tasks", "single_threaded_blas", "inline", "serial_here", "help_until", "small", "SERIAL_BELOW_MACS"]

#: below this many multiply-adds a call runs on the calling thread alone: waking a worker, and two threads
#: handing the GIL to each other between short numpy calls, cost more than the second core saves
SERIAL_BELOW_MACS = 20_000_000

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_blas: Any = None


def small(macs: float) -> bool:
    """Whether a call of ``macs`` multiply-adds runs its tasks on the calling thread (:data:`SERIAL_BELOW_MACS`).

    The partition into tasks, and so every bit, is the same either way.

    >>> small(10_000), small(10**9)
    (True, False)
    """
    return macs < SERIAL_BELOW_MACS


def workers() -> int:
    """Threads used for tasks: the CPUs this process may use, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _openblas_calls(lib: Any) -> tuple[Callable[[], int], Callable[[int], Any]] | None:
    """The C functions ``openblas_get_num_threads`` and ``openblas_set_num_threads`` of a pthreads OpenBLAS.

    Its thread count is one process-wide setting, so any thread may set it
    (threadpoolctl lets only the first thread that ever set it do so, and
    silently ignores the others: the engine's limit, and its restore, must
    hold whichever thread enters or leaves).  ``None`` for another library or
    threading layer, and for a library without these symbols.
    """
    if getattr(lib, "internal_api", None) != "openblas" or getattr(lib, "threading_layer", None) == "openmp":
        return None
    dynlib: Any = getattr(lib, "dynlib", None)
    for prefix in ("", "scipy_"):
        for suffix in ("", "64_", "_64"):
            names = (f"{prefix}openblas_get_num_threads{suffix}", f"{prefix}openblas_set_num_threads{suffix}")
            if all(hasattr(dynlib, n) for n in names):
                # calls that keep the GIL (they only read or write one int): releasing it for them would hand
                # it to a waiting thread, and this one would wait to get it back
                get = ctypes.PYFUNCTYPE(ctypes.c_int)((names[0], dynlib))
                put = ctypes.PYFUNCTYPE(None, ctypes.c_int)((names[1], dynlib))
                return get, put
    return None


def _blas_limits() -> list[tuple[Callable[[], Any], Callable[[int], Any]]]:
    """``(get, set)`` of the thread count of each BLAS library numpy may call (empty without threadpoolctl)."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            libs = ThreadpoolController().select(user_api="blas").lib_controllers
        except ImportError:  # pragma: no cover - threadpoolctl missing
            libs = []
        found = []
        for lib in libs:
            calls = _openblas_calls(lib)
            # another library (MKL, BLIS, an OpenMP OpenBLAS): threadpoolctl's own calls
            found.append(calls if calls is not None else (lambda lib=lib: lib.num_threads, lib.set_num_threads))
        _blas = found
    return _blas


_depth = 0
_limiter: Any = None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS limited to one thread inside the block (when threadpoolctl is available).

    Reference-counted: with several threads inside at once, the first to enter
    limits BLAS and the last to leave restores it, whichever threads they are.
    """
    global _depth, _limiter
    limits = _blas_limits()
    if not limits:
        yield
        return
    with _lock:
        if _depth == 0:
            # each BLAS library's thread count, set to one where it is not (restored on the way out)
            _limiter = [(put, n) for get, put in limits if (n := get()) != 1]
            for put, _ in _limiter:
                put(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for put, n in _limiter:
                    put(n)
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


class _Job:
    """The tasks of one :func:`run_tasks` call: each index is handed out once, to whichever thread asks."""

    def __init__(self, fn: Callable[[Any], Any], tasks: list[Any], par: int) -> None:
        self.fn, self.tasks, self.par = fn, tasks, par
        self.out: list[Any] = [None] * len(tasks)
        self.failed: list[BaseException] = []
        self.next = 0
        self.takers = 1  # threads taking tasks now (the owner counts from the start)
        self.lock = threading.Lock()

    def open_to_more(self) -> bool:
        """Tasks are left and one more thread may take them (``par`` in flight at most: the memory cap)."""
        return not self.failed and self.next < len(self.tasks) and self.takers < self.par

    def take(self) -> None:
        """Run the next task not yet taken until none is left (or one has failed); tasks run serially inside."""
        with inline():
            while True:
                with self.lock:
                    if self.failed or self.next >= len(self.tasks):
                        return
                    i = self.next
                    self.next += 1
                try:
                    self.out[i] = self.fn(self.tasks[i])
                except BaseException as e:
                    self.failed.append(e)

    def result(self) -> list[Any]:
        if self.failed:
            raise self.failed[0]
        return self.out


# jobs of worker threads that an idle thread may join (help_until); guarded by _jobs_changed's lock
_jobs: list[_Job] = []
_jobs_changed = threading.Condition()


def _shared(job: _Job) -> list[Any]:
    """A worker thread's job, run here and open to a thread that calls :func:`help_until` meanwhile."""
    with _jobs_changed:
        _jobs.append(job)
        _jobs_changed.notify_all()
    try:
        job.take()
    finally:
        with _jobs_changed:
            _jobs.remove(job)
            job.takers -= 1
            # a task a helper took is finished before the results are read
            _jobs_changed.wait_for(lambda: job.takers == 0)
    return job.result()


def help_until(done: Any) -> None:
    """Take tasks of the worker threads' open jobs until the future ``done`` is done.

    For a thread whose own work is finished while a worker still runs
    tasks of the same call (:func:`refconv.fast.conv_backward`): the tasks
    are the worker's partition, so its results are the same bits.
    """
    def wake(_: Any) -> None:
        with _jobs_changed:
            _jobs_changed.notify_all()

    done.add_done_callback(wake)
    while True:
        with _jobs_changed:
            job = next((j for j in _jobs if j.open_to_more()), None)
            while job is None and not done.done():
                _jobs_changed.wait()
                job = next((j for j in _jobs if j.open_to_more()), None)
            if job is None:
                return
            job.takers += 1
        try:
            job.take()
        finally:
            with _jobs_changed:
                job.takers -= 1
                _jobs_changed.notify_all()


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], *, max_parallel: int | None = None) -> list[Any]:
    """``[fn(t) for t in tasks]``, at most ``max_parallel`` at a time, BLAS single-threaded.

    The calling thread takes tasks too, next to ``max_parallel - 1`` helpers
    on the worker threads; each thread takes the next task not yet taken
    until none is left (no waves: a thread that wakes late, or a task that
    runs long, leaves no other thread waiting).  On a worker thread the
    tasks run there, open to a thread that calls :func:`help_until`.
    ``max_parallel`` keeps the temporaries of the tasks in flight under the
    memory cap.  The first exception a task raises is raised here once
    every thread has stopped, and no task starts after it.
    """
    tasks = list(tasks)
    par = workers() if max_parallel is None else max(1, min(workers(), max_parallel))
    with single_threaded_blas():
        if len(tasks) <= 1 or par == 1 or getattr(_local, "inline", False):
            return [fn(t) for t in tasks]
        job = _Job(fn, tasks, par)
        if serial_here():  # a worker thread: no helpers of its own (the pool is the callers')
            return _shared(job)
        job.takers = min(par, len(tasks))  # the owner and its helpers (this job is not shared)
        helpers = [_executor().submit(job.take) for _ in range(job.takers - 1)]
        job.take()
        for h in helpers:
            h.result()
        return job.result()
