"""The definition's output shapes and refusals for a whole table of cases at once (numpy, no loops).

These are the rules of :mod:`refconv.shapes` and :mod:`refconv.params` on
integer columns: ``tests/test_check_shape.py`` compares them with the scalar
functions on every case of a box.  A configuration the definition rejects
(the kernel does not fit the padded input, an ``output_padding`` not below
``max(s, d)``, an empty output) is *refused*.  A pooling padding side over
half the window is defined (windows entirely in padding, ``specs/pooling.md``).

Examples
--------
>>> from refconv.conformance.shapecheck.box import Box, cases
>>> t = cases(Box(max_size=5, max_kernel=3, max_stride=1, max_dilation=1, max_padding=0), 'conv', 1, 'valid')
>>> out, ok = expected(t)
>>> out[:5].tolist(), ok[:5].tolist()                 # k = 1: every n
([[2, 4, 1], [2, 4, 2], [2, 4, 3], [2, 4, 4], [2, 4, 5]], [True, True, True, True, True])
>>> ok[10:15].tolist()                                # k = 3: n >= 3
[False, False, True, True, True]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .box import BATCH, CHANNELS, CONV_OUT, TRANSPOSE_OUT_PER_GROUP, Cases

__all__ = ["expected", "padding_pairs", "period", "call_arguments", "definition_message"]


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # ceil(a / b) = -floor(-a / b), also for negative a
    return -((-a) // b)


def padding_pairs(t: Cases) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` columns: the explicit pairs, zeros for ``'valid'``, the ``same`` split otherwise.

    ``same``: ``T = max((ceil(n/s) - 1)*s + d*(k-1) + 1 - n, 0)``, the odd zero
    at the end (``same``) or at the start (``same_lower``).  For a transposed
    convolution ``same`` is the padding of a forward ``same`` convolution of
    ``n*s`` (:func:`refconv.params.conv_transpose_params`).
    """
    if t.mode == "explicit":
        return t.lo, t.hi
    if t.mode == "valid":
        return np.zeros_like(t.n), np.zeros_like(t.n)
    n = t.n * t.s if t.op == "conv_transpose" else t.n
    total = np.maximum((_ceil_div(n, t.s) - 1) * t.s + t.d * (t.k - 1) + 1 - n, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if t.mode == "same_lower" else (small, big)


def expected(t: Cases) -> tuple[np.ndarray, np.ndarray]:
    """``(shapes, accepted)``: the definition's output shape per row (``(M, dims + 2)``) and whether it accepts it.

    Rows the definition refuses still get the formula's value in ``shapes``.
    """
    lo, hi = padding_pairs(t)
    span = t.d * (t.k - 1) + 1
    if t.op == "conv_transpose":
        if t.mode in ("same", "same_lower"):
            out = t.n * t.s  # the adjoint of a `same` forward convolution of n*s (output_padding chosen)
            ok = np.ones(len(t), bool)
        else:
            # (n-1)*s - lo - hi + d*(k-1) + output_padding + 1; output_padding below s or below d
            out = (t.n - 1) * t.s - lo - hi + span + t.op_pad
            ok = np.all((t.op_pad < t.s) | (t.op_pad < t.d), axis=1) & np.all(out >= 1, axis=1)
        chans = TRANSPOSE_OUT_PER_GROUP * t.groups
    else:
        last = t.n + lo + hi - span  # L = n + lo + hi - d*(k-1) - 1
        if t.op == "conv":
            out = np.where(last >= 0, last // t.s + 1, 0)
            ok = np.all(last >= 0, axis=1)
            chans = np.where(t.groups == 1, CONV_OUT, 2 * t.groups)
        else:
            floor_out = np.where(last >= 0, last // t.s + 1, 0)
            ceil_out = _ceil_div(last, t.s) + 1
            # PyTorch's rule: the last window must start inside the input or the left padding
            ceil_out = np.where((ceil_out > 0) & ((ceil_out - 1) * t.s >= t.n + lo), ceil_out - 1, ceil_out)
            out = np.where(t.ceil[:, None], np.maximum(ceil_out, 0), floor_out)
            # at least one output (params.pool_params; with ceil_mode a last window may overhang the input)
            ok = np.all(out >= 1, axis=1)
            chans = np.full(len(t), CHANNELS)
    shape = np.concatenate([np.full((len(t), 1), BATCH), chans[:, None], out], axis=1)
    return shape, ok


def period(t: Cases) -> np.ndarray:
    """``lcm(s, d)`` per row and axis: a shift of ``n`` by it adds the same amount to every rule of that form."""
    return np.lcm(t.s, t.d)


def call_arguments(t: Cases, i: int) -> tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]:
    """``(input_shape, weight_shape, params)`` of row ``i``: the arguments a shape function receives.

    ``weight_shape`` is ``(C_out, C_in/groups, *K)`` for ``conv``,
    ``(C_in, C_out/groups, *K)`` for ``conv_transpose`` and the window
    ``kernel_size`` for pooling.
    """
    k = tuple(int(v) for v in t.k[i])
    g = int(t.groups[i])
    x = (BATCH, CHANNELS, *(int(v) for v in t.n[i]))
    stride = tuple(int(v) for v in t.s[i])
    pad: Any = t.mode if t.mode != "explicit" else tuple((int(a), int(b)) for a, b in zip(t.lo[i], t.hi[i]))
    params: dict[str, Any] = {"stride": stride, "padding": pad}
    if t.op == "conv":
        w = (CONV_OUT if g == 1 else 2 * g, CHANNELS // g, *k)
        params.update(dilation=tuple(int(v) for v in t.d[i]), groups=g)
    elif t.op == "conv_transpose":
        w = (CHANNELS, TRANSPOSE_OUT_PER_GROUP, *k)
        params.update(output_padding=tuple(int(v) for v in t.op_pad[i]), dilation=tuple(int(v) for v in t.d[i]), groups=g)
    else:
        w = k
        if t.op == "max_pool":
            params["dilation"] = tuple(int(v) for v in t.d[i])
        params["ceil_mode"] = bool(t.ceil[i])
    return x, w, params


def definition_message(op: str, x: tuple[int, ...], w: tuple[int, ...], params: dict[str, Any]) -> tuple[tuple[int, ...] | None, str]:
    """The scalar definition (:mod:`refconv.params`) on one case: ``(output_shape, '')`` or ``(None, why)``."""
    from ... import params as P

    kw = dict(params)
    try:
        if op == "conv":
            return P.conv_params(x, w, **kw).output_shape, ""
        if op == "conv_transpose":
            if isinstance(kw["padding"], str) and kw["padding"] != "valid":
                kw["output_padding"] = 0
            return P.conv_transpose_params(x, w, **kw).output_shape, ""
        return P.pool_params(x, w, **kw).output_shape, ""
    except P.ConvParamError as exc:
        return None, str(exc)
