"""Subprocess isolation: run a native target where a crash or a hang cannot take the check down.

The worker process (``spawn``: no inherited threads or locks) loads the
target by its name (adapter or ``module:function``), then answers one call
per message on a pipe.  A call that outlives the timeout kills the worker;
a worker that dies (a segmentation fault in native code) is reported as
:class:`TargetCrashed` with its exit code.  Either way the next call starts
a fresh worker.  Arrays cross the pipe as plain numpy arrays (the pipe's own
serialization; nothing is stored on disk).
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from typing import Any

import numpy as np

from .cases import Case

__all__ = ["IsolatedTarget", "TargetCrashed"]


class TargetCrashed(RuntimeError):
    """The isolated target's process died during a call."""


class TargetRaised(RuntimeError):
    """An exception raised by the isolated target, re-raised here with its type name and traceback."""


def _worker(spec: str, op: str, conn: Any) -> None:  # pragma: no cover - runs in the child process
    from . import ops
    from .targets import resolve

    target = resolve(spec)
    fn = target.function(op)
    conn.send(("ready",))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        case, arrays = msg
        try:
            y = ops.call(fn, case, arrays, target.keywords)
            if hasattr(y, "detach"):
                y = y.detach().cpu().numpy()
            conn.send(("ok", np.asarray(y)))
        except BaseException as exc:  # noqa: BLE001 - sent back to the parent
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


class IsolatedTarget:
    """Calls ``op`` of a target by name in a worker process, with a timeout."""

    def __init__(self, target: Any, op: str, timeout: float | None) -> None:
        from .targets import TargetError

        if not target.spec:
            raise TargetError(
                f"target={target.name!r}: isolate=True needs a target given by adapter name or 'module:function'"
            )
        self.spec, self.op, self.timeout = target.spec, op, timeout
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_worker, args=(self.spec, self.op, child), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        # loading the target (importing its library) is not part of any call's time
        if not parent.poll(120.0):
            self.close()
            raise TargetCrashed(f"the worker could not load target {self.spec!r} within 120 s")
        try:
            parent.recv()
        except (EOFError, OSError):
            code = self._proc.exitcode
            self.close()
            raise TargetCrashed(f"the worker could not load target {self.spec!r} (exit code {code})") from None

    def call(self, case: Case, arrays: dict[str, np.ndarray]) -> np.ndarray:
        from .engine import TargetTimeout

        if self._proc is None or not self._proc.is_alive():
            self._start()
        try:
            self._conn.send((case, arrays))
        except OSError:
            code = self._proc.exitcode if self._proc is not None else None
            self.close()
            raise TargetCrashed(f"the target's process died (exit code {code})") from None
        # the first call also waits for the worker to import the target library
        if not self._conn.poll(self.timeout):
            self.close()
            raise TargetTimeout(f"no result after {self.timeout:g} s (worker killed)")
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):
            if self._proc is not None:
                self._proc.join(1.0)
            code = self._proc.exitcode if self._proc is not None else None
            self.close()
            raise TargetCrashed(f"the target's process died (exit code {code})") from None
        if reply[0] == "ok":
            return reply[1]
        raise TargetRaised(reply[1] + "\n" + reply[2])

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            self._conn.close()
        if self._proc is not None:
            self._proc.join(0.5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(1.0)
        self._proc = self._conn = None
