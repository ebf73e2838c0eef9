"""Optimizers (SGD, momentum, Adam; L2 weight decay) and gradient clipping by norm.

An optimizer updates named parameters in place: ``step(params, grads)`` with
two dicts ``name -> array`` of equal shapes.  Its per-parameter state is a
dict of arrays (``state_dict``) so that a checkpoint can store it without
pickle.  Updates, with ``g = grad + weight_decay * p``:

================  ===============================================================
SGD               ``p -= lr * g``
momentum          ``v = mu * v + g``;  ``p -= lr * v``   (``v`` starts at 0, as in PyTorch)
Adam              ``m = b1 m + (1 - b1) g``;  ``s = b2 s + (1 - b2) g^2``;
                  ``p -= lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)``
================  ===============================================================

Examples
--------
>>> import numpy as np
>>> p = {'w': np.array([1.0, -2.0])}
>>> SGD(lr=0.5).step(p, {'w': np.array([2.0, 2.0])})
>>> p['w'].tolist()
[0.0, -3.0]
>>> g = {'w': np.array([3.0, 4.0])}
>>> clip_grad_norm(g, 1.0), [round(v, 6) for v in g['w'].tolist()]
(5.0, [0.6, 0.8])
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "clip_grad_norm", "make_optimizer"]


def _nonneg(name: str, v: float, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name}={v!r}: must be a finite number {'> 0' if positive else '>= 0'}")
    return float(v)


class Optimizer:
    """Base class: ``state`` holds per-parameter arrays, ``steps`` counts updates."""

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = _nonneg("lr", lr, positive=True)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        self.state: dict[str, np.ndarray] = {}
        self.steps = 0

    def _decayed(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        return g + self.weight_decay * p if self.weight_decay else g

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        missing = sorted(set(params) - set(grads))
        if missing:
            raise KeyError(f"no gradient for parameters {missing}")
        self.steps += 1
        for name, p in params.items():
            self._update(name, p, grads[name])

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def _slot(self, key: str, like: np.ndarray) -> np.ndarray:
        if key not in self.state:
            self.state[key] = np.zeros_like(like)
        return self.state[key]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays to checkpoint: the slots and ``steps``."""
        out = {f"slot/{k}": v for k, v in self.state.items()}
        out["steps"] = np.array(self.steps, dtype=np.int64)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.steps = int(state["steps"])
        self.state = {k[len("slot/"):]: np.array(v) for k, v in state.items() if k.startswith("slot/")}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (heavy-ball) momentum.

    >>> import numpy as np
    >>> p = {'w': np.array([0.0])}
    >>> opt = SGD(lr=1.0, momentum=0.5)
    >>> for _ in range(2): opt.step(p, {'w': np.array([1.0])})
    >>> p['w'].tolist()            # -1, then -(0.5 * 1 + 1)
    [-2.5]
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = _nonneg("momentum", momentum)
        if self.momentum >= 1:
            raise ValueError(f"momentum={momentum!r}: must be < 1")

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        g = self._decayed(p, g)
        if self.momentum:
            v = self._slot(name, p)
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma and Ba) with bias correction; ``weight_decay`` adds ``wd * p`` to the gradient.

    >>> import numpy as np
    >>> p = {'w': np.array([1.0])}
    >>> Adam(lr=0.1).step(p, {'w': np.array([123.0])})   # the first step has length lr
    >>> round(float(p['w'][0]), 9)
    0.9
    """

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, weight_decay)
        b1, b2 = betas
        for name, b in (("beta1", b1), ("beta2", b2)):
            if not 0 <= _nonneg(name, b) < 1:
                raise ValueError(f"{name}={b!r}: must be in [0, 1)")
        self.betas = (float(b1), float(b2))
        self.eps = _nonneg("eps", eps, positive=True)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        g = self._decayed(p, g)
        b1, b2 = self.betas
        m = self._slot(name + "/m", p)
        s = self._slot(name + "/v", p)
        m *= b1
        m += (1 - b1) * g
        s *= b2
        s += (1 - b2) * (g * g)
        c1 = 1 - b1 ** self.steps
        c2 = 1 - b2 ** self.steps
        p -= (self.lr / c1) * m / (np.sqrt(s / c2) + self.eps)


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so that their joint L2 norm is at most ``max_norm``.

    The factor is ``max_norm / (norm + 1e-6)`` when ``norm > max_norm`` (as in
    PyTorch).  Returns the norm before clipping.
    """
    max_norm = _nonneg("max_norm", max_norm, positive=True)
    total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads.values():
            g *= scale
    return total


def make_optimizer(name: str, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> Optimizer:
    """``'sgd'``, ``'momentum'`` or ``'adam'`` by name.

    >>> type(make_optimizer('adam', lr=1e-3)).__name__
    'Adam'
    >>> make_optimizer('rmsprop', lr=1e-3)
    Traceback (most recent call last):
        ...
    ValueError: optimizer='rmsprop': expected 'sgd', 'momentum' or 'adam'
    """
    if name == "sgd":
        return SGD(lr, 0.0, weight_decay)
    if name == "momentum":
        return SGD(lr, momentum, weight_decay)
    if name == "adam":
        return Adam(lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer={name!r}: expected 'sgd', 'momentum' or 'adam'")
