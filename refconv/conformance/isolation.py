"""Calling the target: the boundary between what the target does and what refconv does.

Everything the target does during a call -- returning, raising any exception
(``SystemExit`` and ``GeneratorExit`` included), running past the timeout,
crashing its process -- is turned here into a value or a
:class:`TargetFailure`; anything else raised while checking is refconv's own
failure.  Only a ``KeyboardInterrupt`` (a Ctrl-C of the person running the
check) passes through.

**In process** (:func:`call_in_process`) the target runs on the calling
thread, as its users call it (thread-affine libraries keep working).  The
timeout is an ``ITIMER_REAL`` alarm whose handler raises in the target's
Python code; the previous handler and timer are restored after every call.
It needs the main thread and ``SIGALRM`` (not on Windows); elsewhere the
runner uses the worker process when the target can be loaded by name, or runs
without a timeout and says so.  Native code that never returns to the
interpreter cannot be interrupted by a signal handler: ``isolate=True`` is the
answer for such hangs.  The working directory is restored after every call.

**In a worker process** (:class:`IsolatedTarget`: a fresh interpreter, no
inherited threads or locks, the checking program's ``__main__`` not re-run) the target is imported in the child, never in the checking
process: a crash, ``os._exit``, ``SystemExit`` or a hang during the import is
a :class:`~refconv.conformance.targets.TargetError` naming what happened, and
the import has its own time limit (``load_timeout``, by default
``max(timeout, 60)`` seconds; none when ``timeout`` is None).  Inputs keep
their memory layout (strides, alignment, read-only flag) in the child; the
child compares them after each call with copies and reports the ones the
target modified.  Replies travel as a JSON header and raw array bytes (the
results of an op with several, such as values and indices, one after another
in the same form; nothing the target's process sends is unpickled), and the child ends with
``os._exit`` so that threads the target left running cannot keep it alive.
A call that outlives the timeout kills the worker; the next call starts a
fresh one.

>>> call_in_process(lambda: 1 + 1, timeout=1.0)
2
>>> import sys
>>> try:
...     call_in_process(lambda: sys.exit(3), timeout=None)
... except TargetRaised as exc:
...     print(exc)
SystemExit: 3
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import _thread
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

if TYPE_CHECKING:
    from .cases import Case
    from .targets import Target

__all__ = ["TargetFailure", "TargetTimeout", "TargetCrashed", "TargetRaised", "CallResult", "call_in_process",
           "alarm_usable", "IsolatedTarget", "default_load_timeout", "to_array"]

#: the words of an exception message by which a library refuses a feature it does not implement
UNSUPPORTED = re.compile(r"not supported|unsupported|not implemented", re.IGNORECASE)


class TargetFailure(Exception):
    """Something the target did during a call (raised, hung, crashed): never refconv's own failure."""


class TargetTimeout(TargetFailure):
    """The target did not return within the timeout."""


class TargetCrashed(TargetFailure):
    """The isolated target's process died during a call."""


class TargetRaised(TargetFailure):
    """An exception raised by the target (any ``BaseException`` but ``KeyboardInterrupt``), by type name."""

    def __init__(self, type_name: str, message: str, tb: str = "", original: BaseException | None = None) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name, self.message, self.traceback = type_name, message, tb
        self.original = original  # the exception object itself, for a call in this process

    @property
    def unsupported(self) -> bool:
        """Whether the target refused the call as a feature it does not implement."""
        return self.type_name == "NotImplementedError" or bool(UNSUPPORTED.search(self.message))


@dataclass
class CallResult:
    """What one call returned: ``value`` (an array for isolated calls), or ``not_array`` saying why it is not one."""

    value: Any = None
    mutated: list[str] = field(default_factory=list)
    not_array: str = ""


def to_array(v: Any) -> np.ndarray:
    """The target's result as a numpy array of numbers (torch tensors detached); TypeError otherwise."""
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu()
        if str(getattr(v, "dtype", "")) == "torch.bfloat16":
            v = v.float()
        v = v.numpy()
    a = np.asarray(v)
    if a.dtype.kind not in "fiu" and a.dtype.name != "bfloat16":
        raise TypeError(f"dtype {a.dtype}")
    return a


def modified(arrays: dict[str, np.ndarray], pristine: dict[str, np.ndarray]) -> list[str]:
    """Names of the arrays whose values differ from their copies (values, not memory layout)."""
    return [k for k, v in arrays.items() if not np.array_equal(v, pristine[k], equal_nan=True)]


# --------------------------------------------------------------------------- in process


#: times at which a call was interrupted in process: the target's library may be left in an inconsistent state
#: (a program that is about to end should then end without running its finalizers, see refconv.cli)
interrupted: list[float] = []


def alarm_usable() -> bool:
    """Whether a call on this thread can be interrupted by ``SIGALRM`` (POSIX, main thread)."""
    return (hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")
            and threading.current_thread() is threading.main_thread())


class _Alarm(BaseException):
    """Raised by the alarm handler inside the target's code (a BaseException: ``except Exception`` misses it)."""


class _Deadline:
    """An ``ITIMER_REAL`` alarm that raises :class:`_Alarm` every second past ``seconds`` until disarmed.

    A watchdog thread backs it up: a target that ignores ``SIGALRM`` or stops
    the timer is interrupted ``WATCHDOG_GRACE`` seconds later through the
    main thread's ``SIGINT`` handler (``_thread.interrupt_main``), which the
    :class:`_Interrupts` guard of the call turns into the same timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._armed = False
        self._watchdog: threading.Timer | None = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self._armed:
            self.expired = True
            raise _Alarm()

    def _bark(self) -> None:
        if self._armed:
            self.expired = True
            _thread.interrupt_main()

    def arm(self) -> None:
        self._t0 = time.monotonic()
        prev = signal.signal(signal.SIGALRM, self._handler)
        self._prev_handler = signal.SIG_DFL if prev is None else prev
        self._armed = True
        # first alarm at the deadline, then one per second: a target that swallows one still gets the next
        self._prev_timer = signal.setitimer(signal.ITIMER_REAL, self.seconds, min(self.seconds, 1.0))
        self._watchdog = threading.Timer(self.seconds + WATCHDOG_GRACE, self._bark)
        self._watchdog.daemon = True
        self._watchdog.start()

    def disarm(self) -> None:
        if not self._armed:
            return
        self._armed = False
        if self._watchdog is not None:
            self._watchdog.cancel()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._prev_handler)
        delay, interval = self._prev_timer
        if delay > 0:  # someone else's timer was running: give it back what is left of it
            left = delay - (time.monotonic() - self._t0)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), interval)
        if self._watchdog is not None:
            # the cancelled timer's thread ends at once: wait for it (last, the signals already given back), so
            # that no thread of the call outlives the call
            self._watchdog.join(1.0)


#: seconds past the deadline before the watchdog interrupts a target that disabled the alarm
WATCHDOG_GRACE = 2.0


class _Interrupts:
    """Tells a real Ctrl-C of the checker (``SIGINT`` delivered) from a ``KeyboardInterrupt`` the target raised."""

    def __init__(self) -> None:
        self.real = False
        self._prev: Any = None
        self._on = threading.current_thread() is threading.main_thread()

    def _handler(self, signum: int, frame: Any) -> None:
        self.real = True  # (the watchdog's interrupt_main arrives here too: the deadline says which)
        if callable(self._prev):
            self._prev(signum, frame)
        raise KeyboardInterrupt

    def __enter__(self) -> "_Interrupts":
        if self._on:
            self._prev = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._on:
            signal.signal(signal.SIGINT, self._prev if self._prev is not None else signal.default_int_handler)


def _getcwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None


def call_in_process(fn: Callable[[], Any], timeout: float | None) -> Any:
    """Call ``fn()`` (the target) on this thread: its value, or a :class:`TargetFailure`.

    ``timeout`` seconds (None: no limit) need :func:`alarm_usable`.  Every
    exception of the call becomes :class:`TargetRaised`, ``KeyboardInterrupt``
    too unless a real ``SIGINT`` reached the checker (then it propagates: the
    user pressed Ctrl-C); a call past its deadline becomes
    :class:`TargetTimeout` even when the target swallowed the alarm or
    disabled it (a watchdog interrupts it).  The working directory is
    restored afterwards.
    """
    cwd = _getcwd()
    deadline = _Deadline(timeout) if timeout is not None else None
    guard = _Interrupts()
    try:
        with guard:
            try:
                if deadline is not None:
                    deadline.arm()
                value = fn()
            finally:
                if deadline is not None:
                    deadline.disarm()
    except KeyboardInterrupt as exc:
        if deadline is not None and deadline.expired:
            interrupted.append(time.monotonic())
            raise TargetTimeout(f"no result after {timeout:g} s (the target disabled the alarm; the watchdog "
                                "interrupted it)") from None
        if guard.real:
            raise
        raise TargetRaised(type(exc).__name__, str(exc), traceback.format_exc(), exc) from None
    except _Alarm:
        interrupted.append(time.monotonic())
        raise TargetTimeout(f"no result after {timeout:g} s") from None
    except BaseException as exc:  # noqa: BLE001 - SystemExit, GeneratorExit...: all the target's own
        raise TargetRaised(type(exc).__name__, str(exc), traceback.format_exc(), exc) from None
    finally:
        if deadline is not None:
            deadline.disarm()
        if cwd is not None and _getcwd() != cwd:
            try:
                os.chdir(cwd)
            except OSError:  # the folder was removed by the target: nothing to go back to
                pass
    if deadline is not None and deadline.expired:
        raise TargetTimeout(f"no result after {timeout:g} s (the target caught the alarm and returned late)")
    return value


# --------------------------------------------------------------------------- worker process


def default_load_timeout(timeout: float | None) -> float | None:
    """Seconds the worker may take to import the target: ``max(timeout, 60)``, None when ``timeout`` is None."""
    return None if timeout is None else max(timeout, 60.0)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"it was killed by {name} (exit code {code})"
    return f"it exited with code {code}"


def _pack(a: np.ndarray) -> tuple[dict[str, Any], bytes]:
    """An array's values with its memory layout: strides, offset in the span, address modulo 64, read-only flag."""
    meta: dict[str, Any] = {"shape": a.shape, "dtype": a.dtype, "strides": a.strides,
                            "writeable": bool(a.flags.writeable)}
    if a.size == 0:
        return meta, b""
    addr = a.__array_interface__["data"][0]
    below = -sum(min(0, (n - 1) * s) for n, s in zip(a.shape, a.strides))  # bytes before the data pointer
    above = sum(max(0, (n - 1) * s) for n, s in zip(a.shape, a.strides)) + a.itemsize
    meta.update(offset=below, span=below + above, align=addr % 64)
    return meta, np.ascontiguousarray(a).tobytes()


def _unpack(meta: dict[str, Any], data: bytes) -> np.ndarray:
    """The array of :func:`_pack`: the same values at the same strides and address modulo 64."""
    dt = meta["dtype"]
    if not data:
        a = np.empty(meta["shape"], dt)
    else:
        raw = np.zeros(meta["span"] + 64, np.uint8)
        start = (meta["align"] - meta["offset"] - raw.__array_interface__["data"][0]) % 64
        a = np.ndarray(meta["shape"], dt, buffer=raw, offset=start + meta["offset"], strides=meta["strides"])
        a[...] = np.frombuffer(data, dt).reshape(meta["shape"])
    a.flags.writeable = meta["writeable"]
    return a


def _send(conn: Any, header: dict[str, Any], data: bytes = b"") -> None:  # pragma: no cover - in the child
    h = json.dumps(header).encode()
    conn.send_bytes(len(h).to_bytes(4, "big") + h + data)


def _receive(raw: bytes) -> tuple[dict[str, Any], bytes]:
    n = int.from_bytes(raw[:4], "big")
    header = json.loads(raw[4:4 + n].decode())
    if not isinstance(header, dict):
        raise ValueError("the header is not an object")
    return header, raw[4 + n:]


def _caps_json(declared: Any) -> dict[str, Any] | None:  # pragma: no cover - in the child
    """A declared ``Capabilities`` or dict of its fields as JSON (sets and tuples as lists; the rule by name)."""
    import dataclasses

    from .cases import Capabilities

    if declared is None:
        return None
    if isinstance(declared, Capabilities):
        fields = {f.name: getattr(declared, f.name) for f in dataclasses.fields(declared)}
        full = True
    elif isinstance(declared, dict):
        fields, full = dict(declared), False
    else:
        from .targets import TargetError

        raise TargetError(f"capabilities={declared!r}: expected a Capabilities or a dict of its fields")
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if k == "rule":
            out[k] = None if v is None else {"name": getattr(v, "__name__", repr(v)), "doc": (v.__doc__ or "").strip()}
        elif isinstance(v, (set, frozenset)):
            out[k] = sorted(v)
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return {"full": full, "fields": out}


def _worker(spec: str, conn: Any, path: list[str]) -> None:  # pragma: no cover - runs in the child process
    sys.path[:] = path  # the checking process's import path (test folders, the current directory...)
    try:
        _serve(spec, conn)
    finally:
        os._exit(0)  # threads the target left running cannot keep the worker alive


def _child(fd: int, spec: str, path: str) -> None:  # pragma: no cover - the worker's entry point (POSIX)
    from multiprocessing.connection import Connection

    _worker(spec, Connection(fd), json.loads(path))


class _Worker(Protocol):
    """A worker process as this module uses it: ``multiprocessing.Process`` and :class:`_Popen` both are one."""

    @property
    def exitcode(self) -> int | None: ...

    def is_alive(self) -> bool: ...

    def kill(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


class _Popen:
    """A worker started with ``subprocess`` (POSIX), seen through the ``multiprocessing.Process`` methods used here."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._p = popen

    def is_alive(self) -> bool:
        return self._p.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self._p.poll()

    def kill(self) -> None:
        self._p.kill()

    def join(self, timeout: float | None = None) -> None:
        try:
            self._p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass


def _launch(spec: str) -> tuple[_Worker, Connection]:
    """A worker process for ``spec`` and the parent's end of its pipe.

    On POSIX a fresh interpreter (``subprocess``) receives one end of a
    socket pair: unlike ``multiprocessing``'s spawn it never re-imports the
    checking program's ``__main__``.  Elsewhere, ``multiprocessing`` spawn.
    """
    proc: _Worker
    if os.name == "posix":
        parent, child = mp.Pipe()
        code = "import sys; from refconv.conformance.isolation import _child; _child(int(sys.argv[1]), *sys.argv[2:])"
        proc = _Popen(subprocess.Popen([sys.executable, "-c", code, str(child.fileno()), spec, json.dumps(sys.path)],
                                       pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL))
    else:  # pragma: no cover - Windows
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        spawned = ctx.Process(target=_worker, args=(spec, child, list(sys.path)), daemon=True, name="refconv-worker")
        spawned.start()
        proc = spawned
    child.close()
    return proc, parent


def _serve(spec: str, conn: Any) -> None:  # pragma: no cover - runs in the child process
    from . import ops, registry
    from .targets import resolve, signature_of

    _send(conn, {"status": "started"})
    try:
        target = resolve(spec)
        info: dict[str, Any] = {"status": "ready", "name": target.name}
        fn = getattr(target, "callable", None)
        if fn is not None:
            info["signature"] = signature_of(fn)
            info["keywords"] = ops.accepted_keywords(fn)[0]
            info["keywords"] = None if info["keywords"] is None else sorted(info["keywords"])
            info["declared"] = _caps_json(getattr(fn, "refconv_capabilities", None))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import is a failure to load, said as such
        _send(conn, {"status": "load-error", "type": type(exc).__name__, "message": str(exc),
                     "traceback": traceback.format_exc()})
        return
    _send(conn, info)
    rule: Callable[[Any], object] | None = None
    while True:
        msg = conn.recv()
        if msg is None:
            return
        if msg[0] == "rule":
            if rule is None:
                caps = getattr(fn, "refconv_capabilities", None)
                rule = caps.get("rule") if isinstance(caps, dict) else getattr(caps, "rule", None)
            try:
                if rule is None:
                    raise TypeError("the target declares no capability rule")
                _send(conn, {"status": "ok", "value": bool(rule(msg[1]))})
            except BaseException as exc:  # noqa: BLE001
                _send(conn, {"status": "raised", "type": type(exc).__name__, "message": str(exc),
                             "traceback": traceback.format_exc()})
            continue
        _, op, case, packed = msg
        arrays = {k: _unpack(meta, data) for k, (meta, data) in packed.items()}
        pristine = {k: v.copy() for k, v in arrays.items()}
        try:
            y = ops.call(target.function(op), case, arrays, target.keywords)
        except BaseException as exc:  # noqa: BLE001 - sent back to the parent, by type name
            _send(conn, {"status": "raised", "type": type(exc).__name__, "message": str(exc),
                         "traceback": traceback.format_exc()})
            continue
        # an op with several results (values, indices): a tuple or list travels element by element
        several = isinstance(y, (tuple, list)) and len(registry.get(op).outputs) > 1
        try:
            parts = [np.ascontiguousarray(to_array(v)) for v in (y if several else (y,))]
        except Exception as exc:  # noqa: BLE001
            _send(conn, {"status": "not-array", "message": f"{type(y).__name__} ({exc})"})
            continue
        _send(conn, {"status": "ok", "sequence": type(y).__name__ if several else None,
                     "results": [{"dtype": a.dtype.name, "shape": list(a.shape), "nbytes": a.nbytes} for a in parts],
                     "mutated": modified(arrays, pristine)}, b"".join(a.tobytes() for a in parts))


def _dtype(name: Any) -> np.dtype:
    """A numeric dtype by name (the only kinds a reply may carry)."""
    from .cases import dtype_of

    if name == "bfloat16":
        return dtype_of("bfloat16")
    dt = np.dtype(str(name))
    if dt.kind not in "fiu":
        raise ValueError(f"dtype {name!r}")
    return dt


def _results(header: dict[str, Any], data: bytes) -> Any:
    """The result of a reply: one array, or a tuple (list) of arrays when ``sequence`` names one.

    ``data`` is the results' C-order bytes one after another, ``nbytes`` each; KeyError, TypeError or
    ValueError when the header and the bytes disagree.
    """
    out, at = [], 0
    for meta in header["results"]:
        dt, shape, n = _dtype(meta["dtype"]), tuple(int(s) for s in meta["shape"]), int(meta["nbytes"])
        if n != dt.itemsize * int(np.prod(shape, dtype=np.int64)) or at + n > len(data):
            raise ValueError(f"{n} bytes for shape {shape} of dtype {dt.name} at byte {at} of {len(data)}")
        out.append(np.frombuffer(data[at:at + n], dt).reshape(shape).copy())
        at += n
    if at != len(data):
        raise ValueError(f"{len(data) - at} bytes past the results")
    kind = header.get("sequence")
    if kind is None:
        if len(out) != 1:
            raise ValueError(f"{len(out)} results without a sequence")
        return out[0]
    if kind not in ("tuple", "list"):
        raise ValueError(f"sequence {kind!r}")
    return tuple(out) if kind == "tuple" else out


class _Gone(Exception):
    """The worker's end of the pipe closed: the process ended."""


class IsolatedTarget:
    """A target loaded and called by name in a worker process, with a timeout."""

    def __init__(self, target: Target, timeout: float | None, load_timeout: float | None = None) -> None:
        from .targets import TargetError

        if not target.spec:
            raise TargetError(
                f"target={target.name!r}: isolate=True needs a target given by adapter name or 'module:function'"
            )
        self.spec, self.name, self.timeout = target.spec, target.name, timeout
        self.load_timeout = default_load_timeout(timeout) if load_timeout is None else load_timeout
        self.info: dict[str, Any] | None = None
        self._proc: _Worker | None = None
        self._conn: Connection | None = None

    # ---------------------------------------------------------------- loading
    def load(self) -> dict[str, Any]:
        """Start the worker and import the target there; TargetError naming what went wrong."""
        from .targets import TargetError

        problem = self._start()
        if problem:
            raise TargetError(f"target {self.name!r} could not be loaded in the isolated worker: {problem}")
        assert self.info is not None  # _start() returns '' only after storing the worker's 'ready' header
        return self.info

    def _start(self) -> str:
        """Start a worker; '' when the target is loaded, else what happened."""
        self.close()
        self._proc, self._conn = _launch(self.spec)
        try:
            started = self._reply(max(60.0, self.load_timeout or 0.0))
        except _Gone:
            started = None
        if started is None or started[0].get("status") != "started":
            problem = self._gone("before it started")
            raise RuntimeError(f"the isolated worker for {self.name!r} did not start: {problem}")
        try:
            reply = self._reply(self.load_timeout)
        except _Gone:
            return self._gone("during import")
        if reply is None:
            self.close()
            return f"it did not finish importing within {self.load_timeout:g} s"
        header, _ = reply
        if header.get("status") == "load-error":
            self.close()
            text = f"{header.get('type')}: {header.get('message')}"
            return f"it raised {text} during import" if header.get("type") != "TargetError" else str(header.get("message"))
        if header.get("status") != "ready":
            self.close()
            return f"it sent an unexpected reply {header.get('status')!r}"
        self.info = header
        return ""

    def _gone(self, when: str) -> str:
        code = None
        if self._proc is not None:
            self._proc.join(2.0)
            code = self._proc.exitcode
        self.close()
        return f"{_exit_text(code)} {when}"

    def _reply(self, timeout: float | None) -> tuple[dict[str, Any], bytes] | None:
        """The next reply; None when none came within ``timeout``; :class:`_Gone` when the worker died."""
        conn = self._conn
        if conn is None:  # closed after a failure: no worker is running
            raise _Gone()
        try:
            if not conn.poll(timeout):
                return None
            return _receive(conn.recv_bytes())
        except (EOFError, OSError):
            raise _Gone() from None
        except (ValueError, UnicodeDecodeError) as exc:  # the target's process wrote garbage on the pipe
            raise TargetCrashed(f"the target's process sent a malformed reply ({exc})") from None

    def _ensure(self) -> Connection:
        """The pipe to a running worker, started anew when the last one ended."""
        if self._proc is None or not self._proc.is_alive():
            problem = self._start()
            if problem:
                raise TargetCrashed(f"the worker could not be restarted: {problem}")
        assert self._conn is not None  # a worker is running, so its pipe is open (close() clears both)
        return self._conn

    # ---------------------------------------------------------------- calls
    def call(self, op: str, case: Case, arrays: dict[str, np.ndarray]) -> CallResult:
        """Call ``op`` on ``arrays``: the result, or a :class:`TargetFailure`."""
        conn = self._ensure()
        try:
            conn.send(("call", op, case, {k: _pack(v) for k, v in arrays.items()}))
        except OSError:
            raise TargetCrashed(f"the target's process died: {self._gone('before the call')}") from None
        try:
            reply = self._reply(self.timeout)
        except _Gone:
            raise TargetCrashed(f"the target's process died: {self._gone('during the call')}") from None
        if reply is None:
            self.close()
            raise TargetTimeout(f"no result after {self.timeout:g} s (worker killed)")
        header, data = reply
        status = header.get("status")
        if status == "raised":
            raise TargetRaised(str(header.get("type")), str(header.get("message")), str(header.get("traceback", "")))
        if status == "not-array":
            return CallResult(not_array=str(header.get("message")))
        if status != "ok":
            raise TargetCrashed(f"the target's process sent an unexpected reply {status!r}")
        try:
            value = _results(header, data)
            mutated = [str(m) for m in header.get("mutated", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise TargetCrashed(f"the target's process sent a malformed result ({exc})") from None
        return CallResult(value, mutated)

    def rule(self, case: Case) -> bool:
        """The target's own capability rule, evaluated in the worker."""
        from .targets import TargetError

        conn = self._ensure()
        try:
            conn.send(("rule", case))
            reply = self._reply(self.timeout)
        except (_Gone, OSError):
            reply = None
        if reply is None:
            raise TargetError(f"target {self.name!r}: its capability rule did not answer in the isolated worker "
                              f"({self._gone('while evaluating it')})")
        header, _ = reply
        if header.get("status") != "ok":
            raise TargetError(f"target {self.name!r}: its capability rule raised {header.get('type')}: "
                              f"{header.get('message')}")
        return bool(header.get("value"))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (OSError, ValueError):
                pass
            self._conn.close()
        if self._proc is not None:
            self._proc.join(0.5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(2.0)
        self._proc = self._conn = None
