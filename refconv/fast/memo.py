"""Memos of pure functions of plain arguments: validated parameters, ``'auto'`` choices and call plans, made once each.

A training loop calls the same few layers again and again; their validation
(:mod:`refconv.params`) and the engine's choice of algorithm depend on the
shapes and keywords only, so each is kept per typed key.  Keys tell types
apart, so a cached result never answers a call whose arguments differ in type
(``True``, ``1`` and ``1.0`` are three keys), and errors are never kept.

Examples
--------
>>> calls = []
>>> double = memoized(lambda v: calls.append(v) or 2 * v)
>>> double(3), double(3), double(3.0), calls
(6, 6, 6.0, [3, 3.0])
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from ..params import ConvParams
from .geometry import Geometry

__all__ = ["memoized", "MEMO_SIZE"]

#: entries of each memo of validated parameters and 'auto' choices (a training loop repeats a few geometries)
MEMO_SIZE = 512


_PLAIN_TYPES = frozenset((int, float, str, bool, type(None), Geometry, ConvParams))


def _frozen(v: Any) -> Any:
    """A hashable key that tells types apart (``True``, ``1`` and ``1.0`` are three keys); TypeError for a
    value that is not a plain int, float, str, bool, None, numpy scalar or dtype, or a tuple of them."""
    t = type(v)
    if t is tuple:
        if all(type(u) is int for u in v):
            return v  # shapes and per-axis ints: their own key (a tagged key starts with a type, never an int)
        return (tuple, *[_frozen(u) for u in v])
    if t in _PLAIN_TYPES or isinstance(v, (np.generic, np.dtype)):
        return (t, v)
    raise TypeError(t.__name__)


def memoized(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its results kept per typed argument key (at most :data:`MEMO_SIZE`, oldest dropped first).

    For pure functions of their arguments only: the validation of :mod:`refconv.params` (whose
    :class:`~refconv.params.ConvParams` are frozen), the ``'auto'`` choice, the plans of the convolutions and of pooling.  Arguments that
    are not plain values (lists, arrays) are never kept: ``fn`` runs.  Errors are never kept.
    """
    memo: dict[Any, Any] = {}
    lock = threading.Lock()

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            # keywords in the order given (a call site always gives the same order; another order only misses)
            key = (_frozen(args), *[(k, _frozen(v)) for k, v in kwargs.items()])
            hit = memo.get(key)
        except TypeError:  # an unhashable or non-plain argument
            return fn(*args, **kwargs)
        if hit is None:
            hit = fn(*args, **kwargs)
            with lock:  # two threads of conv_backward may add at once (iterating a dict another thread grows fails)
                while len(memo) >= MEMO_SIZE:
                    memo.pop(next(iter(memo)), None)
                memo[key] = hit
        return hit

    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call


