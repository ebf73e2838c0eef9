"""Convolution, transposed convolution and their gradients: the public functions.

Each function validates through :mod:`refconv.params` (the same
:class:`~refconv.params.ConvParamError` as the oracle), picks the compute dtype
(:mod:`refconv.fast.dtypes`), and runs a kernel of :mod:`refconv.fast.direct`
or :mod:`refconv.fast.fft`.

Examples
--------
>>> import numpy as np
>>> x = np.arange(16.).reshape(1, 1, 4, 4)
>>> w = np.ones((1, 1, 2, 2))
>>> conv(x, w, stride=2)[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
>>> conv(np.array([[[1, 2, 3, 4]]]), np.array([[[7, 6, 5]]]), padding='full', flip=True)[0, 0].tolist()
[7, 20, 38, 56, 39, 20]
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..params import ConvParamError, conv_params, conv_transpose_params
from . import direct
from .dtypes import as_array, check_exact_bound, check_exact_ints, compute_dtype
from .geometry import Geometry
from .memory import resolve_cap

__all__ = ["conv", "conv_transpose", "conv_grad_input", "conv_grad_weight", "conv_grad_bias", "ALGORITHMS"]

ALGORITHMS = ("auto", "direct", "fft")


def _algorithm(algorithm: Any) -> str:
    if algorithm not in ALGORITHMS:
        raise ConvParamError(f"algorithm={algorithm!r}: must be one of " + ", ".join(repr(a) for a in ALGORITHMS))
    return algorithm


def _geometry(p) -> Geometry:
    return Geometry(p.stride, p.padding, p.dilation, getattr(p, "input_dilation", (1,) * len(p.stride)), p.groups)


def _flip(w: np.ndarray) -> np.ndarray:
    """``w[:, :, ::-1, ..., ::-1]``: the kernel reversed on every spatial axis (a view)."""
    return w[(slice(None), slice(None), *([slice(None, None, -1)] * (w.ndim - 2)))]


def _check_dy(dy: np.ndarray, expected: tuple) -> None:
    if tuple(dy.shape) != tuple(expected):
        raise ConvParamError(f"dy.shape={tuple(dy.shape)}: must be the forward output shape {tuple(expected)}")


def _exact_int(compute: Callable[..., np.ndarray], arrays: tuple, bias, op: str) -> np.ndarray:
    """Exact int64 result of a bilinear ``compute`` through float64 (see :mod:`refconv.fast.dtypes`)."""
    fl = [check_exact_ints(name, a) for name, a in arrays]
    bound = compute(*[np.abs(a) for a in fl])
    fb = None
    if bias is not None:
        fb = check_exact_ints("b", bias)
        bound = bound + np.abs(fb).reshape((-1,) + (1,) * (bound.ndim - 2))
    check_exact_bound(bound, op)
    y = compute(*fl)
    if fb is not None:
        y = y + fb.reshape((-1,) + (1,) * (y.ndim - 2))
    return y.astype(np.int64)


def _choose(algorithm: str, x_shape, w_shape, p, dt) -> str:
    if algorithm != "auto":
        return algorithm
    from .fft import prefer_fft

    return "fft" if prefer_fft(x_shape, w_shape, p, dt) else "direct"


def conv(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    flip: Any = False,
    algorithm: str = "auto",
    max_memory: int | None = None,
) -> np.ndarray:
    """N-D convolution (cross-correlation unless ``flip=True``) of ``x`` with ``w``.

    ``y[n, o, p] = b[o] + sum_{c, k} xp[n, g(o)*Cg + c, p*s + k*d] * w[o, c, k']``
    with ``k' = k`` (``flip=False``) or ``K - 1 - k`` (``flip=True``).

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, *S)``
    w : array_like, shape ``(C_out, C_in // groups, *K)``
    b : array_like, shape ``(C_out,)``, optional
    stride, padding, dilation, groups, flip
        As :func:`refconv.oracle.conv`; ``padding`` also takes ``'valid'``,
        ``'same'``, ``'same_lower'``, ``'full'`` and ``(lo, hi)`` pairs.
    algorithm : {'auto', 'direct', 'fft'}
        ``'direct'``: im2col + GEMM (or per-tap sums for depthwise), within the
        per-element bound of :mod:`refconv.tolerance`.  ``'fft'``: scipy.fft
        (normwise bound :func:`refconv.tolerance.fft_conv_error_bound`).
        ``'auto'``: FFT when :func:`refconv.fast.fft.prefer_fft`'s cost model
        says so (large kernels), else direct; integer inputs are always direct.
    max_memory : int, optional
        Cap in bytes for temporaries (default :func:`refconv.fast.get_memory_cap`).

    Returns
    -------
    ndarray, shape ``(N, C_out, *O)``, the dtype of the inputs (``int64`` for integers)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(32*32*3, dtype=np.float32).reshape(1, 3, 32, 32)
    >>> conv(x, np.ones((2, 3, 5, 5), np.float32)).shape     # 32x32x3 input, 5x5x3 filter
    (1, 2, 28, 28)
    >>> conv(x, np.ones((2, 3, 5, 5), np.float32)).dtype
    dtype('float32')
    """
    x, w = as_array("x", x), as_array("w", w)
    b = None if b is None else as_array("b", b)
    p = conv_params(x.shape, w.shape, None if b is None else b.shape, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, flip=flip)
    algorithm = _algorithm(algorithm)
    cap = resolve_cap(max_memory)
    dt = compute_dtype(("x", x), ("w", w), ("b", b))
    geo = _geometry(p)

    def run(xa, wa, alg="direct"):
        wa = _flip(wa) if p.flip else wa
        if alg == "fft":
            from .fft import fft_forward

            return fft_forward(xa, wa, geo, cap)
        return direct.forward(xa, wa, geo, cap)

    if dt.kind in "iu":
        return _exact_int(run, (("x", x), ("w", w)), b, "conv")
    alg = _choose(algorithm, x.shape, w.shape, p, dt)
    y = run(x.astype(dt, copy=False), w.astype(dt, copy=False), alg)
    if b is not None:
        y += b.astype(dt, copy=False).reshape((-1,) + (1,) * p.ndim)
    return y


def conv_transpose(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    algorithm: str = "auto",
    max_memory: int | None = None,
) -> np.ndarray:
    """Transposed convolution: the input gradient of :func:`conv`, weight ``(C_in, C_out // groups, *K)``.

    Output length per axis ``(n - 1)*s - lo - hi + d*(K - 1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose(np.array([[[1., 2.]]]), np.array([[[1., 10., 100.]]]), stride=2)[0, 0].tolist()
    [1.0, 10.0, 102.0, 20.0, 200.0]
    """
    x, w = as_array("x", x), as_array("w", w)
    b = None if b is None else as_array("b", b)
    tp = conv_transpose_params(x.shape, w.shape, None if b is None else b.shape, stride=stride, padding=padding,
                               output_padding=output_padding, dilation=dilation, groups=groups)
    _algorithm(algorithm)
    cap = resolve_cap(max_memory)
    dt = compute_dtype(("x", x), ("w", w), ("b", b))
    geo = Geometry(tp.stride, tp.padding, tp.dilation, (1,) * tp.ndim, tp.groups)
    out_sp = tp.output_spatial

    def run(xa, wa):
        return direct.grad_input(xa, wa, geo, out_sp, cap)

    if dt.kind in "iu":
        return _exact_int(run, (("x", x), ("w", w)), b, "conv_transpose")
    y = run(x.astype(dt, copy=False), w.astype(dt, copy=False))
    if b is not None:
        y += b.astype(dt, copy=False).reshape((-1,) + (1,) * tp.ndim)
    return y


def conv_grad_input(
    dy: Any,
    w: Any,
    input_shape: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    flip: Any = False,
    algorithm: str = "auto",
    max_memory: int | None = None,
) -> np.ndarray:
    """Gradient of ``sum(conv(x, w, ...) * dy)`` with respect to ``x`` (of shape ``input_shape``).

    ``dx[n, c, i] = sum_{o, p, k : p*s + k*d = lo + i} dy[n, o, p] * w[o, c - g(o)*Cg, k']``;
    input rows no window reads get an exact zero.

    Examples
    --------
    >>> import numpy as np
    >>> conv_grad_input(np.ones((1, 1, 2)), np.array([[[1., 2., 3.]]]), (1, 1, 5), stride=2)[0, 0].tolist()
    [1.0, 2.0, 4.0, 2.0, 3.0]
    """
    dy, w = as_array("dy", dy), as_array("w", w)
    p = conv_params(input_shape, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    _check_dy(dy, p.output_shape)
    _algorithm(algorithm)
    cap = resolve_cap(max_memory)
    dt = compute_dtype(("dy", dy), ("w", w))
    geo = _geometry(p)

    def run(da, wa):
        return direct.grad_input(da, _flip(wa) if p.flip else wa, geo, p.input_spatial, cap)

    if dt.kind in "iu":
        return _exact_int(run, (("dy", dy), ("w", w)), None, "conv_grad_input")
    return run(dy.astype(dt, copy=False), w.astype(dt, copy=False))


def conv_grad_weight(
    x: Any,
    dy: Any,
    weight_shape: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    flip: Any = False,
    algorithm: str = "auto",
    max_memory: int | None = None,
) -> np.ndarray:
    """Gradient of ``sum(conv(x, w, ...) * dy)`` with respect to ``w`` (of shape ``weight_shape``).

    ``dw[o, c, k'] = sum_{n, p} dy[n, o, p] * xp[n, g(o)*Cg + c, p*s + k*d]``.

    Examples
    --------
    >>> import numpy as np
    >>> conv_grad_weight(np.array([[[1., 2., 3., 4.]]]), np.ones((1, 1, 2)), (1, 1, 3))[0, 0].tolist()
    [3.0, 5.0, 7.0]
    """
    x, dy = as_array("x", x), as_array("dy", dy)
    p = conv_params(x.shape, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    _check_dy(dy, p.output_shape)
    _algorithm(algorithm)
    cap = resolve_cap(max_memory)
    dt = compute_dtype(("x", x), ("dy", dy))
    geo = _geometry(p)

    def run(xa, da):
        dw = direct.grad_weight(xa, da, geo, p.kernel_spatial, cap)
        return np.ascontiguousarray(_flip(dw)) if p.flip else dw

    if dt.kind in "iu":
        return _exact_int(run, (("x", x), ("dy", dy)), None, "conv_grad_weight")
    return run(x.astype(dt, copy=False), dy.astype(dt, copy=False))


def conv_grad_bias(dy: Any) -> np.ndarray:
    """Gradient of the bias: ``db[o] = sum_{n, p} dy[n, o, p]`` (every axis but 1).

    Examples
    --------
    >>> import numpy as np
    >>> conv_grad_bias(np.ones((2, 3, 4, 5), np.float32)).tolist()
    [40.0, 40.0, 40.0]
    """
    dy = as_array("dy", dy)
    if dy.ndim < 2:
        raise ConvParamError(f"dy.ndim={dy.ndim}: dy must have shape (N, C_out, *spatial)")
    dt = compute_dtype(("dy", dy))
    axes = (0, *range(2, dy.ndim))
    if dt.kind in "iu":
        fl = check_exact_ints("dy", dy)
        check_exact_bound(np.abs(fl).sum(axis=axes), "conv_grad_bias")
        return fl.sum(axis=axes).astype(np.int64)
    # (C, N*P) rows summed by numpy's fixed pairwise order
    return np.ascontiguousarray(np.moveaxis(dy.astype(dt, copy=False), 1, 0)).reshape(dy.shape[1], -1).sum(axis=1)
