"""The task runner of the fast engine: order, who runs tasks, and failures."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from refconv.fast import parallel
from refconv.fast.parallel import run_tasks, workers


def test_results_come_in_task_order():
    assert run_tasks(lambda t: t * t, list(range(50))) == [t * t for t in range(50)]


def test_the_caller_takes_tasks_and_nothing_runs_twice():
    seen = []
    lock = threading.Lock()

    def task(t):
        with lock:
            seen.append((t, threading.current_thread().name))
        return t

    assert run_tasks(task, list(range(40)), max_parallel=2) == list(range(40))
    assert sorted(t for t, _ in seen) == list(range(40))
    names = {name for _, name in seen}
    me = threading.current_thread().name
    # the caller starts on the tasks at once (it needs no wake-up); every other taker is a worker
    assert me in names
    assert all(n == me or n.startswith("refconv-fast") for n in names)


def test_the_caller_runs_its_tasks_serially_inside():
    inner = []

    def task(t):
        inner.append(parallel.serial_here())
        return t

    run_tasks(task, [0, 1, 2, 3], max_parallel=2)
    assert all(inner)


@pytest.mark.parametrize("bad", [0, 3, 9])
def test_the_first_failure_is_raised_and_no_task_starts_after_it(bad):
    started = []

    def task(t):
        started.append(t)
        if t == bad:
            raise ValueError(f"task {t}")
        return t

    with pytest.raises(ValueError, match=f"task {bad}"):
        run_tasks(task, list(range(10)), max_parallel=2)
    # at most one task per other thread may have started after the failing one was taken
    assert max(started) <= bad + workers()
    assert bad in started
    # the runner is usable afterwards
    assert run_tasks(lambda t: -t, [1, 2, 3]) == [-1, -2, -3]


def _on_worker(fn):
    return parallel._executor().submit(fn)


@pytest.mark.skipif(workers() < 2, reason="one worker thread: run_tasks runs every task on it")
def test_an_idle_thread_helps_a_worker_job_and_the_results_stay_in_order():
    me = threading.current_thread().name
    names = []
    helped = threading.Event()

    def task(t):
        name = threading.current_thread().name
        names.append(name)
        if name == me:
            helped.set()
        if t == 0:
            # the worker's first task waits until another thread has taken one (or gives up)
            assert helped.wait(10), "no thread joined the worker's tasks"
        return t * 10

    fut = _on_worker(lambda: run_tasks(task, list(range(12)), max_parallel=2))
    parallel.help_until(fut)
    assert fut.result() == [t * 10 for t in range(12)]
    assert me in names and any(n.startswith("refconv-fast") for n in names)
    assert len(names) == 12


def test_a_job_limited_to_one_task_in_flight_is_not_joined():
    me = threading.current_thread().name
    names = []

    def task(t):
        names.append(threading.current_thread().name)
        return t

    fut = _on_worker(lambda: run_tasks(task, list(range(6)), max_parallel=1))
    parallel.help_until(fut)
    assert fut.result() == list(range(6))
    assert me not in names


def test_a_failure_in_a_helped_job_reaches_its_owner():
    def task(t):
        if t == 4:
            raise ValueError("task 4")
        return t

    fut = _on_worker(lambda: run_tasks(task, list(range(10)), max_parallel=2))
    parallel.help_until(fut)  # returns: the failure belongs to the worker's call
    with pytest.raises(ValueError, match="task 4"):
        fut.result()


@pytest.fixture
def openblas():
    """threadpoolctl's view of a pthreads OpenBLAS set to two threads (restored after the test)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    libs = [lib for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
            if lib.internal_api == "openblas" and lib.threading_layer != "openmp"]
    if not libs or parallel._openblas_calls(libs[0]) is None:
        pytest.skip("numpy's BLAS is not a pthreads OpenBLAS")
    get, put = parallel._openblas_calls(libs[0])
    before = get()
    put(2)
    yield libs[0]
    put(before)


def test_blas_is_limited_on_the_main_thread_after_another_thread_used_the_engine_first(openblas):
    # threadpoolctl lets only the first thread that set a pthreads OpenBLAS set it again while that thread lives;
    # the engine's limit must hold on every thread (else its GEMMs thread, and their bits change)
    with ThreadPoolExecutor(1) as user_thread:
        def engine_call():
            with parallel.single_threaded_blas():
                return openblas.num_threads

        assert user_thread.submit(engine_call).result() == 1
        with parallel.single_threaded_blas():
            assert openblas.num_threads == 1
    assert openblas.num_threads == 2


def test_blas_is_restored_when_another_thread_leaves_the_engine_last(openblas):
    inside, release = threading.Event(), threading.Event()

    def engine_call():
        with parallel.single_threaded_blas():
            inside.set()
            release.wait()

    with parallel.single_threaded_blas():
        t = threading.Thread(target=engine_call)
        t.start()
        inside.wait()
    assert openblas.num_threads == 1  # the other thread is still inside
    release.set()
    t.join()
    assert openblas.num_threads == 2  # the user's numpy gets its threads back
