"""Losses: each returns the mean loss over the batch and its gradient.

``softmax_cross_entropy(z, t)``, logits ``z`` of shape ``(N, K)`` and integer
labels ``t`` of shape ``(N,)``:

    p = softmax(z) = exp(z - max z) / sum exp(z - max z)
    L = (1/N) sum_n (logsumexp(z[n]) - z[n, t[n]])        dL/dz = (p - onehot(t)) / N

``mean_squared_error(y, t)``, the seed's ``1/2 (target - prediction)^2`` summed
over the ``K`` outputs and averaged over the batch (labels become one-hot
targets):

    L = (1/N) sum_n sum_k 1/2 (t[n, k] - y[n, k])^2        dL/dy = (y - t) / N

Examples
--------
>>> import numpy as np
>>> loss, dz = softmax_cross_entropy(np.zeros((1, 4)), np.array([2]))
>>> round(loss, 6) == round(float(np.log(4)), 6), dz.tolist()
(True, [[0.25, 0.25, -0.75, 0.25]])
>>> loss, dy = mean_squared_error(np.array([[0.5, 0.5]]), np.array([1]))
>>> loss, dy.tolist()
(0.25, [[0.5, -0.5]])
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["softmax", "softmax_cross_entropy", "mean_squared_error", "one_hot", "LOSSES"]


def _labels(t: np.ndarray, n: int, k: int) -> np.ndarray:
    t = np.asarray(t)
    if t.shape != (n,) or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"labels.shape={t.shape}, dtype={t.dtype}: expected {n} integer labels")
    if n and (t.min() < 0 or t.max() >= k):
        raise ValueError(f"labels range [{t.min()}, {t.max()}]: every label must be in [0, {k - 1}]")
    return t


def one_hot(t: np.ndarray, k: int, dtype: DTypeLike = np.float64) -> np.ndarray:
    """``(N,)`` integer labels to ``(N, k)`` one-hot rows.

    >>> one_hot(np.array([0, 2]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    t = _labels(t, len(np.asarray(t)), k)
    out = np.zeros((t.shape[0], k), dtype=dtype)
    out[np.arange(t.shape[0]), t] = 1
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so that ``exp`` never overflows.

    >>> softmax(np.array([[0.0, 1000.0]])).tolist()
    [[0.0, 1.0]]
    """
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _check_2d(name: str, z: np.ndarray) -> np.ndarray:
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"{name}.shape={z.shape}: expected (N, K) with N >= 1")
    return z


def softmax_cross_entropy(z: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(z)`` against labels ``t``; returns ``(L, dL/dz)``."""
    z = _check_2d("logits", z)
    n, k = z.shape
    t = _labels(t, n, k)
    shifted = z - z.max(axis=1, keepdims=True)  # logsumexp(z) = max z + log sum exp(z - max z)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(s[:, 0]) - shifted[rows, t]))
    dz = e / s
    dz[rows, t] -= 1
    dz /= n
    return loss, dz


def mean_squared_error(y: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over the batch of ``sum_k 1/2 (t_k - y_k)^2``; ``t`` labels or one-hot targets.

    Returns ``(L, dL/dy)``.
    """
    y = _check_2d("predictions", y)
    n, k = y.shape
    t = np.asarray(t)
    target = one_hot(t, k, y.dtype) if t.ndim == 1 else t
    if target.shape != y.shape:
        raise ValueError(f"targets.shape={target.shape}: expected {y.shape} or ({n},) labels")
    diff = y - target
    loss = float(0.5 * np.sum(diff * diff) / n)
    return loss, diff / n


LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]

#: name -> loss, as accepted by the training loop
LOSSES: dict[str, LossFn] = {"cross_entropy": softmax_cross_entropy, "mse": mean_squared_error}
