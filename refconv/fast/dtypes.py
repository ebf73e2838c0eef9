"""Which dtypes the fast engine computes in, and the exact integer path.

* ``float32``, ``float64``, ``complex64``, ``complex128``: computed in that
  dtype (numpy's promotion of all the inputs); the result has it.  No float64
  round trip for float32 inputs.
* Integer inputs (any signed or unsigned numpy integer, Python ints) to the
  convolution family (``conv``, ``conv_transpose``, the gradients,
  ``convolve``, ``correlate``): the result is the **exact** ``int64`` result.
  It is computed in float64, which is exact while every product and partial
  sum is an integer of magnitude below ``2**53``; the engine checks this
  rigorously first (inputs below ``2**53`` and the computed ``b + sum |x||w|``
  below ``2**53``, a test that rounding cannot fool because every partial sum of
  non-negative terms rounds monotonically) and raises :class:`DTypeError`
  otherwise, pointing to :mod:`refconv.oracle` which is exact for any size.
* Pooling takes float and complex-free inputs only (``max_pool`` and
  ``avg_pool`` of integers raise :class:`DTypeError`).
* Everything else (bool, float16, longdouble, object, strings) raises
  :class:`DTypeError`, naming the argument and its dtype.

Examples
--------
>>> import numpy as np
>>> compute_dtype(('x', np.ones(2, np.float32)), ('w', np.ones(2, np.float32)))
dtype('float32')
>>> compute_dtype(('x', np.ones(2, np.float16)))
Traceback (most recent call last):
    ...
refconv.fast.dtypes.DTypeError: x.dtype=float16: the fast engine computes in float32, float64, complex64 or complex128 (or exactly in int64 for integer inputs of the convolution family); convert the input, or use refconv.oracle
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..params import ConvParamError

__all__ = ["DTypeError", "SUPPORTED", "as_array", "compute_dtype", "is_integer", "all_finite", "EXACT_INT_LIMIT"]

SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.complex64), np.dtype(np.complex128))

#: integers of magnitude below this are exact in float64, and so are their sums while below it
EXACT_INT_LIMIT = float(2**53)


class DTypeError(ConvParamError, TypeError):
    """An input dtype the fast engine does not compute in."""


def as_array(name: str, value: Any) -> np.ndarray:
    """``np.asarray(value)``, with a clear error for what is not a numeric array."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise DTypeError(f"{name}: not convertible to a numeric array ({exc})") from None
    return arr


def is_integer(dt: np.dtype) -> bool:
    return dt.kind in "iu"


def all_finite(a: np.ndarray) -> bool:
    """Whether every element of ``a`` is finite, by one sum (one pass, no temporary mask).

    An inf or NaN makes the sum inf or NaN, so a finite sum means every
    element is; a sum of finite values that overflows says no too, and the
    caller takes the path that is exact for non-finite values.

    >>> all_finite(np.array([1.0, 2.0])), all_finite(np.array([1.0, np.inf])), all_finite(np.array([1e308, 1e308]))
    (True, False, False)
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(a)))


def _reject(name: str, dt: np.dtype, *, integers: bool) -> DTypeError:
    tail = " (or exactly in int64 for integer inputs of the convolution family)" if integers else ""
    return DTypeError(
        f"{name}.dtype={dt}: the fast engine computes in float32, float64, complex64 or complex128"
        f"{tail}; convert the input, or use refconv.oracle"
    )


def compute_dtype(*named: tuple[str, Any], integers: bool = True, complex_ok: bool = True) -> np.dtype:
    """The dtype the computation runs in, or ``int64`` for the exact integer path.

    ``named`` pairs each argument name with its array, or anything with its
    ``dtype`` (``None`` is skipped).
    """
    arrays = [(n, a) for n, a in named if a is not None]
    all_int = True
    for name, a in arrays:
        dt = a.dtype
        if dt.kind in "iu":
            if not integers:
                raise _reject(name, dt, integers=False)
            continue
        all_int = False
        if dt not in SUPPORTED or (dt.kind == "c" and not complex_ok):
            raise _reject(name, dt, integers=integers)
    if all_int:
        return np.dtype(np.int64)
    dt = np.result_type(*[a.dtype for _, a in arrays])
    if dt not in SUPPORTED:  # e.g. int64 with float32 promotes to float64; anything odd is refused
        raise _reject(arrays[0][0], dt, integers=integers)
    return dt


def check_exact_ints(name: str, a: np.ndarray) -> np.ndarray:
    """``a`` as float64 (the one copy), after checking every value is below ``2**53`` in magnitude."""
    # extremes as Python ints: no temporary array, and no overflow of abs(int64 min)
    if a.size and max(-int(a.min()), int(a.max())) >= EXACT_INT_LIMIT:
        raise DTypeError(
            f"{name}: integer values of magnitude >= 2**53 are beyond the exact int64 path of the "
            "fast engine; use refconv.oracle (exact for any integer size)"
        )
    return a.astype(np.float64)


def check_exact_bound(bound: np.ndarray, op: str) -> None:
    """Raise unless the float64-computed ``|b| + sum |x||w|`` is below ``2**53`` everywhere."""
    if bound.size and not np.max(bound) < EXACT_INT_LIMIT:
        raise DTypeError(
            f"{op} of these integers may reach 2**53 in magnitude (sum of |products| up to {np.max(bound):.6g}), "
            "beyond the exact int64 path of the fast engine; use refconv.oracle (exact for any integer size)"
        )
