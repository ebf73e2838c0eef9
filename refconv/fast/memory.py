"""The memory cap for temporaries of the fast engine, and the chunk planner.

Temporaries (padded inputs, im2col buffers, FFT planes, scatter buffers) of one
call stay under a cap, by default 256 MiB.  The cap is set per call with the
``max_memory`` keyword, or for a block of code with :func:`memory_cap`; the
setting lives in a :mod:`contextvars` variable, so threads and async tasks do
not see each other's setting.  A call whose smallest chunk does not fit raises
:class:`MemoryCapError` before anything is allocated.

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
refconv.fast.memory.MemoryCapError: max_memory=1000: one batch sample of conv needs 3000 bytes of temporaries; raise the cap (max_memory=... or refconv.fast.memory_cap(...))
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

from ..params import ConvParamError

__all__ = ["DEFAULT_MEMORY_CAP", "MemoryCapError", "get_memory_cap", "memory_cap", "resolve_cap", "plan_chunks"]

#: 256 MiB
DEFAULT_MEMORY_CAP = 256 * 1024 * 1024

_CAP: contextvars.ContextVar[int] = contextvars.ContextVar("refconv_fast_memory_cap", default=DEFAULT_MEMORY_CAP)


class MemoryCapError(ConvParamError, MemoryError):
    """The smallest chunk of a computation needs more temporary memory than the cap allows."""


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
        raise MemoryCapError(
            f"max_memory={cap}: {what} needs {fixed + bytes_per_item} bytes of temporaries; "
            "raise the cap (max_memory=... or refconv.fast.memory_cap(...))"
        )
    if count <= 0:
        return 1
    return max(1, min(count, (cap - fixed) // max(bytes_per_item, 1)))
