"""Weight initialization: He (Kaiming) and Xavier (Glorot), normal and uniform.

Fans of a weight of shape ``(C_out, C_in // groups, *K)`` (convolution) or
``(out_features, in_features)`` (linear):

    fan_in  = (C_in // groups) * prod(K)        fan_out = C_out * prod(K)

=====================  =====================================================
``he_normal``          ``N(0, 2 / fan_in)``  (for ReLU networks)
``he_uniform``         ``U(-a, a)``, ``a = sqrt(6 / fan_in)``
``xavier_normal``      ``N(0, 2 / (fan_in + fan_out))``  (for tanh, sigmoid)
``xavier_uniform``     ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``
=====================  =====================================================

Every function draws from an explicit :class:`numpy.random.Generator`; none
touches numpy's global random state.

Examples
--------
>>> import numpy as np
>>> fans((6, 1, 5, 5))
(25, 150)
>>> w = he_normal((4000, 50), np.random.default_rng(0))
>>> round(float(w.var() * 50 / 2), 1)      # variance 2 / fan_in
1.0
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

__all__ = ["fans", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "INITIALIZERS", "get_initializer"]


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (linear or convolution layout).

    >>> fans((10, 64))
    (64, 10)
    >>> fans((16, 3, 3, 3))
    (27, 144)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"shape={shape!r}: a weight needs at least 2 axes (out, in, *kernel)")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _check_rng(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng={rng!r}: expected a numpy.random.Generator (no global random state)")
    return rng


def he_normal(shape: Sequence[int], rng: np.random.Generator, dtype: type = np.float64) -> np.ndarray:
    """Normal with standard deviation ``sqrt(2 / fan_in)``."""
    fan_in, _ = fans(shape)
    return (_check_rng(rng).standard_normal(tuple(shape)) * math.sqrt(2.0 / fan_in)).astype(dtype)


def he_uniform(shape: Sequence[int], rng: np.random.Generator, dtype: type = np.float64) -> np.ndarray:
    """Uniform on ``[-a, a]``, ``a = sqrt(6 / fan_in)``.

    >>> import numpy as np
    >>> w = he_uniform((3, 2, 2, 2), np.random.default_rng(1))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 8))
    True
    """
    fan_in, _ = fans(shape)
    a = math.sqrt(6.0 / fan_in)
    return _check_rng(rng).uniform(-a, a, tuple(shape)).astype(dtype)


def xavier_normal(shape: Sequence[int], rng: np.random.Generator, dtype: type = np.float64) -> np.ndarray:
    """Normal with standard deviation ``sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    return (_check_rng(rng).standard_normal(tuple(shape)) * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def xavier_uniform(shape: Sequence[int], rng: np.random.Generator, dtype: type = np.float64) -> np.ndarray:
    """Uniform on ``[-a, a]``, ``a = sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return _check_rng(rng).uniform(-a, a, tuple(shape)).astype(dtype)


Initializer = Callable[..., np.ndarray]

#: name -> initializer, as accepted by :func:`get_initializer`
INITIALIZERS: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
}


def get_initializer(name: str) -> Initializer:
    """Look an initializer up by name.

    >>> get_initializer('he_normal').__name__
    'he_normal'
    >>> get_initializer('glorot')
    Traceback (most recent call last):
        ...
    ValueError: init='glorot': expected one of 'he_normal', 'he_uniform', 'xavier_normal', 'xavier_uniform'
    """
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        names = ", ".join(repr(n) for n in INITIALIZERS)
        raise ValueError(f"init={name!r}: expected one of {names}") from None
