"""The task runner of the fast engine: order, who runs tasks, and failures."""

import threading

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
