"""Hostile targets (tests/faults/) cannot end, hang, blind or fool the checker: each gets a verdict and an exit status.

The command runs in a subprocess with a wall-clock limit: a checker that hangs or dies fails the test
instead of taking the suite down.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from refconv import oracle
from refconv.conformance import check
from refconv.conformance.engine import open_target
from refconv.conformance.isolation import TargetRaised, TargetTimeout, call_in_process
from refconv.conformance.targets import TargetError

FAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faults")


def fault(name):
    return os.path.join(FAULTS, name)


def cli(*args, cwd=None, limit=60):
    """``refconv check`` on one case set (1-D, catalogue only): (exit status, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", "refconv", "check", *args, "--dims", "1", "--max-examples", "0",
                        "--seed", "0", "--quiet"], capture_output=True, text=True, timeout=limit, cwd=cwd)
    return r.returncode, r.stdout, r.stderr


# ----------------------------------------------------------------------------- exits and exceptions


@pytest.mark.parametrize("isolate", [False, True])
def test_sys_exit_in_the_target_is_a_failed_case_not_a_passing_checker(isolate):
    code, out, err = cli(fault("exits.py:sys_exit"), *(["--isolate"] if isolate else []))
    assert code == 1, (out, err)
    assert out.startswith("FAIL") and "the target raised SystemExit" in out


def test_generator_exit_and_keyboard_interrupt():
    r = check(fault("exits.py:generator_exit"), dims=1, max_examples=0)
    assert r.verdict == "FAIL" and r.failure.kind == "exception" and "GeneratorExit" in r.failure.message

    def interrupted(x, w, b, *, stride, padding, dilation, groups):
        raise KeyboardInterrupt  # raised by the target itself: no Ctrl-C reached the checker

    r = check(interrupted, dims=1, max_examples=0)
    assert r.verdict == "FAIL" and r.failure.kind == "exception" and "KeyboardInterrupt" in r.failure.message

    def pressed(x, w, b, *, stride, padding, dilation, groups):
        os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT: the person running the check pressed Ctrl-C
        time.sleep(1)

    with pytest.raises(KeyboardInterrupt):
        check(pressed, dims=1, max_examples=0)


def test_a_target_that_disables_the_alarm_is_still_stopped():
    def no_alarm(x, w, b, *, stride, padding, dilation, groups):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 0)
        while True:
            time.sleep(0.01)

    r = check(no_alarm, dims=1, max_examples=0, timeout=0.5)
    assert r.verdict == "FAIL" and r.failure.kind == "timeout" and "watchdog" in r.failure.message
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


@pytest.mark.parametrize("target,said", [("exits.py:os_exit", "exited with code 7"),
                                         ("segfault.py:conv", "SIGSEGV")])
def test_a_process_ending_call_is_a_crash_with_isolation(target, said):
    r = check(fault(target), dims=1, max_examples=0, isolate=True)
    assert r.verdict == "FAIL" and r.failure.kind == "crash" and said in r.failure.message


# ----------------------------------------------------------------------------- loading in the worker


@pytest.mark.parametrize("module,said", [
    ("exit_at_import.py", "it exited with code 3 during import"),
    ("raise_exit_at_import.py", "SystemExit: 3"),
    ("segfault_at_import.py", "killed by SIGSEGV"),
    ("hang_at_import.py", "did not finish importing within 2 s"),
])
def test_a_target_that_cannot_be_imported_is_refused_by_name(module, said):
    t0 = time.monotonic()
    code, out, err = cli(fault(module + ":conv"), "--isolate", "--load-timeout", "2", limit=30)
    assert code == 2 and not out, (out, err)
    assert err.startswith(f"refconv check: error: target '{fault(module)}:conv' could not be loaded in the isolated "
                          "worker: ") and said in err and "Traceback" not in err
    assert time.monotonic() - t0 < 25


def test_isolation_never_imports_the_target_in_the_checking_process():
    before = oracle.conv
    tgt, worker = open_target(fault("patches_at_import.py:conv"), isolate=True)
    try:
        assert not any("patches_at_import" in name for name in sys.modules)
        assert oracle.conv is before and tgt.signature[0][0] == "x"
    finally:
        worker.close()
    r = check(fault("patches_at_import.py:conv"), dims=1, max_examples=0, isolate=True)
    assert r.verdict == "FAIL" and r.failure.kind == "value" and oracle.conv is before


# ----------------------------------------------------------------------------- hangs


def test_a_hang_is_interrupted_on_the_calling_thread():
    threads = threading.active_count()
    t0 = time.monotonic()
    r = check(fault("hangs.py:sleeps"), dims=1, max_examples=0, timeout=0.3)
    assert r.failure.kind == "timeout" and "0.3 s" in r.failure.message
    assert time.monotonic() - t0 < 10
    assert threading.active_count() == threads  # interrupted, not abandoned in a thread
    r = check(fault("hangs.py:swallows_the_alarm"), dims=1, max_examples=0, timeout=0.3)
    assert r.failure.kind == "timeout" and "caught the alarm" in r.failure.message
    r = check(fault("hangs.py:sleeps"), dims=1, max_examples=0, timeout=0.5, isolate=True)
    assert r.failure.kind == "timeout" and "worker killed" in r.failure.message


def test_the_alarm_gives_back_the_previous_handler_and_timer():
    fired = []

    def mine(*args):
        fired.append(1)

    old = signal.signal(signal.SIGALRM, mine)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert call_in_process(lambda: 42, 5.0) == 42
        with pytest.raises(TargetTimeout):
            call_in_process(lambda: time.sleep(5), 0.05)
        with pytest.raises(TargetRaised, match="SystemExit: 2"):
            call_in_process(lambda: sys.exit(2), 5.0)
        assert 20.0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30.0
        assert signal.getsignal(signal.SIGALRM) is mine and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert call_in_process(lambda: 1, None) == 1


# ----------------------------------------------------------------------------- what the target does to the process


@pytest.mark.parametrize("isolate", [False, True])
def test_input_mutation_is_found_in_and_out_of_process(isolate):
    r = check(fault("mutates.py:conv"), dims=1, max_examples=0, isolate=isolate)
    assert r.failure.kind == "mutation" and "x" in r.failure.message


@pytest.mark.parametrize("isolate", [False, True])
def test_a_leftover_thread_does_not_keep_the_checker_alive(isolate):
    code, out, err = cli(fault("leaves_thread.py:conv"), *(["--isolate"] if isolate else []), limit=40)
    assert code == 0 and out.startswith("PASS"), (out, err)


@pytest.mark.parametrize("target", ["closes_stdout.py:closes_object", "closes_stdout.py:closes_fd"])
def test_the_report_is_printed_when_the_target_closes_stdout(target):
    code, out, err = cli(fault(target))
    assert code == 0 and out.startswith("PASS  " + fault(target)), (out, err)


def test_the_working_directory_is_restored_after_every_call(tmp_path):
    code, out, err = cli(fault("chdir.py:conv"), "--json", "report.json", cwd=tmp_path)
    assert code == 0, (out, err)
    assert (tmp_path / "report.json").exists()  # written where the command was started, not where the target went
    cwd = os.getcwd()
    assert check(fault("chdir.py:conv"), dims=1, max_examples=0).ok and os.getcwd() == cwd


def test_a_thread_affine_library_is_called_on_the_thread_that_made_it():
    r = check(fault("thread_affine.py:conv"), dims=1, max_examples=3, seed=0)
    assert r.verdict == "PASS", str(r)


# ----------------------------------------------------------------------------- the judge cannot be replaced


def test_a_target_that_replaces_the_oracle_fails(monkeypatch):
    real = oracle.conv
    r = check(fault("patches_oracle.py:in_call"), dims=1, max_examples=0)
    assert r.verdict == "FAIL" and r.failure.kind == "tampering" and "refconv.oracle.conv" in r.failure.message
    assert oracle.conv is real  # put back
    monkeypatch.delitem(sys.modules, "refconv_target_patches_at_import", raising=False)
    r = check(fault("patches_at_import.py:conv"), dims=1, max_examples=0)
    assert r.verdict == "FAIL" and r.failure.kind == "tampering" and oracle.conv is real


def test_load_errors_name_the_target():
    with pytest.raises(TargetError, match="SystemExit: 3"):
        check(fault("raise_exit_at_import.py:conv"), dims=1, max_examples=0)


def test_identify_survives_a_target_that_exits_or_hangs():
    from refconv.conformance.identify import identify

    fp = identify(fault("exits.py:sys_exit"), ops=("conv",), dims=1)
    assert fp and all(v.startswith("raises SystemExit") or v.startswith("not offered") for v in fp.values())
    fp = identify(fault("hangs.py:sleeps"), ops=("conv",), dims=1, timeout=0.3)
    rows = list(fp.values())
    assert rows[0].startswith("hangs: no result after 0.3 s")
    assert all(v.startswith("not probed: the target hung") for v in rows[1:])


# ----------------------------------------------------------------------------- results of several arrays


_MAX_POOL_INDICES = '''
import numpy as np
from refconv import oracle


def exact(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    y, i = oracle.max_pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                           return_indices=True)
    return y.astype(x.dtype), i


def as_list(x, kernel_size, **kw):
    return list(exact(x, kernel_size, **kw))


def shifted(x, kernel_size, **kw):
    y, i = exact(x, kernel_size, **kw)
    return y, np.where(i > 0, i - 1, i)  # values right, indices one to the left


def values_only(x, kernel_size, **kw):
    return exact(x, kernel_size, **kw)[0]
'''


@pytest.mark.parametrize("isolate", [False, True])
def test_values_and_indices_come_back_from_a_worker_as_from_the_process(tmp_path, isolate):
    """max_pool_indices returns (values, indices): both travel across the worker's pipe and are judged."""
    path = tmp_path / "max_pool_indices_target.py"
    path.write_text(_MAX_POOL_INDICES)
    spec = lambda name: f"{path}:{name}"  # noqa: E731
    for name in ("exact", "as_list"):
        r = check(spec(name), op="max_pool_indices", dims=1, max_examples=3, seed=0, isolate=isolate)
        assert r.verdict == "PASS" and r.cases > 0, str(r)
    r = check(spec("shifted"), op="max_pool_indices", dims=1, max_examples=0, seed=0, isolate=isolate)
    assert r.verdict == "FAIL" and r.failure.kind == "indices", str(r)
    r = check(spec("values_only"), op="max_pool_indices", dims=1, max_examples=0, seed=0, isolate=isolate)
    assert r.verdict == "FAIL" and r.failure.kind == "type" and "pair (y, indices)" in r.failure.message, str(r)


def test_a_reply_whose_bytes_disagree_with_its_header_is_refused():
    import numpy as np

    from refconv.conformance.isolation import _results

    y, i = np.arange(6, dtype=np.float32).reshape(1, 2, 3), np.arange(6, dtype=np.int64).reshape(1, 2, 3)
    head = {"sequence": "tuple", "results": [{"dtype": "float32", "shape": [1, 2, 3], "nbytes": 24},
                                             {"dtype": "int64", "shape": [1, 2, 3], "nbytes": 48}]}
    got = _results(head, y.tobytes() + i.tobytes())
    assert type(got) is tuple and np.array_equal(got[0], y) and np.array_equal(got[1], i)
    assert got[1].dtype == np.int64 and got[0].flags.writeable
    for bad in (y.tobytes() + i.tobytes()[:-8], y.tobytes() + i.tobytes() + b"\0"):
        with pytest.raises(ValueError):
            _results(head, bad)
    with pytest.raises(ValueError):
        _results({**head, "sequence": None}, y.tobytes() + i.tobytes())  # two results need a sequence
    with pytest.raises(ValueError):
        _results({"sequence": None, "results": [{"dtype": "object", "shape": [1], "nbytes": 8}]}, b"\0" * 8)
