"""The memory cap of the fast engine, and the chunk planner.

Everything one call allocates -- its result, converted copies of its inputs,
and the temporaries in flight (padded inputs, im2col buffers, FFT planes,
scatter buffers, partial sums) -- stays under a cap, by default 256 MiB.  The
cap is set per call with the ``max_memory`` keyword, or for a block of code
with :func:`memory_cap`; the setting lives in a :mod:`contextvars` variable, so
threads and async tasks do not see each other's setting.  A call whose result,
or whose smallest chunk next to what the call already holds, does not fit
raises :class:`MemoryCapError` before allocating it.

One function decides: :func:`plan_chunks` (how many items of a chunk fit next
to the bytes already held), through a :class:`Budget` that the public
functions open with their result and pass down to the kernels.  numpy's own
iteration buffers of ufuncs on strided views count too (:func:`ufunc_buffers`);
Python objects (a few kB per call) do not.

Examples
--------
>>> get_memory_cap()
268435456
>>> with memory_cap(1 << 20):
...     get_memory_cap()
1048576
>>> plan_chunks(10, 300, 1000)        # 10 items of 300 bytes, 1000 bytes allowed
3
>>> plan_chunks(10, 3000, 1000, what='one batch sample of conv')
Traceback (most recent call last):
    ...
refconv.fast.memory.MemoryCapError: max_memory=1000: one batch sample of conv needs 3000 bytes; raise the cap (max_memory=... or refconv.fast.memory_cap(...))
>>> b = Budget(1000).hold(600, 'the result of conv')
>>> b.chunks(10, 300, what='one batch sample of conv')
1
>>> b.hold(500, 'the result of conv_grad_bias')
Traceback (most recent call last):
    ...
refconv.fast.memory.MemoryCapError: max_memory=1000: the result of conv_grad_bias needs 500 bytes next to 600 bytes already held; raise the cap (max_memory=... or refconv.fast.memory_cap(...))
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from ..params import ConvParamError

__all__ = ["DEFAULT_MEMORY_CAP", "MemoryCapError", "get_memory_cap", "memory_cap", "resolve_cap", "plan_chunks", "Budget", "nbytes", "ufunc_buffers"]

#: 256 MiB
DEFAULT_MEMORY_CAP = 256 * 1024 * 1024

_CAP: contextvars.ContextVar[int] = contextvars.ContextVar("refconv_fast_memory_cap", default=DEFAULT_MEMORY_CAP)


class MemoryCapError(ConvParamError, MemoryError):
    """The result of a call, or its smallest chunk next to what it holds, needs more memory than the cap allows."""


def _check_cap(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConvParamError(f"max_memory={value!r}: the memory cap must be an integer number of bytes >= 1")
    return int(value)


def get_memory_cap() -> int:
    """The cap in bytes in effect here (the innermost :func:`memory_cap`, else 256 MiB)."""
    return _CAP.get()


@contextlib.contextmanager
def memory_cap(nbytes: int) -> Iterator[int]:
    """Set the cap for temporaries to ``nbytes`` inside a ``with`` block."""
    token = _CAP.set(_check_cap(nbytes))
    try:
        yield nbytes
    finally:
        _CAP.reset(token)


def resolve_cap(max_memory: Any = None) -> int:
    """``max_memory`` if given (validated), else the cap in effect."""
    return _CAP.get() if max_memory is None else _check_cap(max_memory)


def plan_chunks(count: int, bytes_per_item: int, cap: int, *, fixed: int = 0, what: str = "one item") -> int:
    """How many of ``count`` items fit in ``cap`` bytes at once, next to ``fixed`` bytes (at least 1, at most ``count``).

    Raises :class:`MemoryCapError` when not even one item fits.
    """
    if fixed + bytes_per_item > cap:
        beside = f" next to {fixed} bytes already held" if fixed else ""
        raise MemoryCapError(
            f"max_memory={cap}: {what} needs {bytes_per_item} bytes{beside}; "
            "raise the cap (max_memory=... or refconv.fast.memory_cap(...))"
        )
    if count <= 0:
        return 1
    return max(1, min(count, (cap - fixed) // max(bytes_per_item, 1)))


@dataclass(frozen=True)
class Budget:
    """The cap of one call and the bytes held for the rest of it (its result, converted inputs, ...).

    Public functions open one with :meth:`hold` of their result; kernels plan
    their chunks with :meth:`chunks` next to what is held.
    """

    cap: int
    held: int = 0

    @property
    def left(self) -> int:
        """Bytes still free under the cap."""
        return self.cap - self.held

    def hold(self, nbytes: int, what: "str | Callable[[], str]") -> "Budget":
        """This budget with ``nbytes`` more held; :class:`MemoryCapError` (before allocating) when they do not fit.

        ``what`` names them in the error: a string, or a function returning one (formatted only for the error).
        """
        if self.held + nbytes > self.cap:
            plan_chunks(1, nbytes, self.cap, fixed=self.held, what=what() if callable(what) else what)
        return Budget(self.cap, self.held + nbytes)

    def chunks(self, count: int, bytes_per_item: int, *, fixed: int = 0, what: str = "one item") -> int:
        """:func:`plan_chunks` next to the held bytes and ``fixed`` more."""
        return plan_chunks(count, bytes_per_item, self.cap, fixed=self.held + fixed, what=what)


def nbytes(shape, dtype: Any) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (Python ints: no overflow for absurd shapes)."""
    out = np.dtype(dtype).itemsize
    for n in shape:
        out *= int(n)
    return out


def ufunc_buffers(elements: int, itemsize: int) -> int:
    """Bytes numpy may buffer inside one ufunc call on strided operands of ``elements`` items.

    numpy iterates such operands through buffers of at most
    ``np.getbufsize()`` items each, for up to three operands (two inputs and
    the output); a task that runs ufuncs on strided views holds this much more.
    """
    return 3 * min(int(elements), np.getbufsize()) * int(itemsize)
