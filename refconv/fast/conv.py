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

from ..params import (
    ConvParamError,
    ConvParams,
    check_gradient_shape,
    check_params_match,
    conv_params,
    conv_transpose_params,
    general_crop,
)
from . import direct
from .dtypes import as_array, check_exact_bound, check_exact_ints, compute_dtype
from .geometry import Geometry, pad_dilate
from .memory import MemoryCapError, resolve_cap

__all__ = ["conv", "general_conv", "conv_transpose", "conv_grad_input", "conv_grad_weight", "conv_grad_bias", "ALGORITHMS"]

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
    check_gradient_shape(dy.shape, expected)


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


def _grad_input_problem(dy: np.ndarray, w: np.ndarray, geo: Geometry, input_spatial):
    """The input gradient as a forward problem ``(x', w', geo')``.

    ``dx = conv(dy, w', input_dilation=s, padding=(d*(K-1) - lo, d*(K-1) - hi + r), dilation=d)``
    with ``w'[g*Cg + c, m, k] = w[g*Mg + m, c, K - 1 - k]`` (transposed per group, flipped);
    ``r`` are the trailing rows no window reads.  Padding may be negative (a crop).
    """
    G = geo.groups
    M, Cg = w.shape[:2]
    K = w.shape[2:]
    nsp = len(K)
    wt = w.reshape(G, M // G, Cg, *K).swapaxes(1, 2).reshape(G * Cg, M // G, *K)
    wt = wt[(slice(None), slice(None), *([slice(None, None, -1)] * nsp))]
    P = geo.padded_spatial(input_spatial)
    O = dy.shape[2:]
    pads = []
    for Pi, o, k, s, d, (lo, hi) in zip(P, O, K, geo.stride, geo.dilation, geo.padding):
        r = Pi - ((o - 1) * s + d * (k - 1) + 1)
        pads.append((d * (k - 1) - lo, d * (k - 1) - hi + r))
    return dy, wt, Geometry((1,) * nsp, tuple(pads), geo.dilation, geo.stride, G)


def _grad_weight_problem(x: np.ndarray, dy: np.ndarray, geo: Geometry, group: int):
    """The weight gradient of one group as a forward problem ``(x', w', geo')``.

    ``dw[g*Mg + m, c, k] = conv(x', w')[c, m, k]`` with ``x' = xp[:, g*Cg:(g+1)*Cg]`` as
    ``(Cg, N, *P)`` (channels as the batch), ``w' = dy[:, g*Mg:(g+1)*Mg]`` as ``(Mg, N, *O)``,
    stride ``d`` and dilation ``s`` (they trade places); the output is cropped to ``K``.
    """
    G = geo.groups
    N, C = x.shape[:2]
    M = dy.shape[1]
    Cg, Mg = C // G, M // G
    xp = pad_dilate(x[:, group * Cg : (group + 1) * Cg], geo.padding, geo.input_dilation)
    xt = xp.swapaxes(0, 1)
    dyt = dy[:, group * Mg : (group + 1) * Mg].swapaxes(0, 1)
    nsp = len(geo.stride)
    return xt, dyt, Geometry(geo.dilation, ((0, 0),) * nsp, geo.stride, (1,) * nsp, 1)


def _grad_input_run(dy, w, geo: Geometry, input_spatial, cap, alg: str) -> np.ndarray:
    if alg == "fft":
        from .fft import fft_forward

        return fft_forward(*_grad_input_problem(dy, w, geo, input_spatial), cap)
    Cg, Mg = w.shape[1], w.shape[0] // geo.groups
    if all(st == 1 for st in geo.stride) and int(np.prod(dy.shape[2:])) >= direct.FLAT_GRAD_BELOW and (
        Cg >= 32 or (Cg == 1 and Mg == 1)
    ):
        # stride 1, large planes, wide (or depthwise, multiplier 1) layers: the forward identity is one
        # forward pass (depthwise again for depthwise), faster than col2im's scatter
        return direct.forward(*_grad_input_problem(dy, w, geo, input_spatial), cap)
    try:
        return direct.grad_input(dy, w, geo, input_spatial, cap)
    except MemoryCapError:
        # one sample's col2im buffer is over the cap: the forward identity chunks output rows
        return direct.forward(*_grad_input_problem(dy, w, geo, input_spatial), cap)


def _grad_weight_run(x, dy, geo: Geometry, K, cap, alg: str) -> np.ndarray:
    if alg == "direct":
        try:
            return direct.grad_weight(x, dy, geo, K, cap)
        except MemoryCapError:
            pass
    from .fft import fft_forward

    kernel = fft_forward if alg == "fft" else direct.forward
    parts = []
    for g in range(geo.groups):
        out = kernel(*_grad_weight_problem(x, dy, geo, g), cap)  # (Cg, Mg, *>=K)
        parts.append(out[(slice(None), slice(None), *(slice(0, k) for k in K))].swapaxes(0, 1))
    return np.ascontiguousarray(np.concatenate(parts, axis=0))


def _choose(algorithm: str, x_shape, w_shape, p, dt) -> str:
    if algorithm != "auto":
        return algorithm
    from .fft import prefer_fft

    return "fft" if prefer_fft(x_shape, w_shape, p, dt) else "direct"


def _choose_grad_input(algorithm: str, dy, w, geo: Geometry, input_spatial) -> str:
    """The input gradient costs what the forward pass costs: FFT where the forward problem prefers it."""
    if algorithm != "auto":
        return algorithm
    from ..params import conv_params
    from .fft import prefer_fft

    if any(s != 1 for s in geo.stride):
        return "direct"
    shape = (dy.shape[0], w.shape[1] * geo.groups, *input_spatial)
    p = conv_params(shape, w.shape, stride=geo.stride, padding=geo.padding, dilation=geo.dilation, groups=geo.groups)
    return "fft" if prefer_fft(shape, w.shape, p, dy.dtype) else "direct"


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
    return _forward(x, w, b, p, algorithm, max_memory, "conv")


def _forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams, algorithm: str,
             max_memory: int | None, name: str) -> np.ndarray:
    """The general operation on validated operands: exact int64, or the chosen float algorithm plus bias."""
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
        return _exact_int(run, (("x", x), ("w", w)), b, name)
    alg = _choose(algorithm, x.shape, w.shape, p, dt)
    try:
        y = run(x.astype(dt, copy=False), w.astype(dt, copy=False), alg)
    except MemoryCapError:
        if algorithm != "auto" or alg == "direct":
            raise
        # 'auto' chose FFT but one sample's spectra exceed the cap: the direct kernel chunks rows
        y = run(x.astype(dt, copy=False), w.astype(dt, copy=False), "direct")
    if b is not None:
        y += b.astype(dt, copy=False).reshape((-1,) + (1,) * p.ndim)
    return y


def general_conv(
    x: Any,
    w: Any,
    b: Any = None,
    params: ConvParams | None = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    input_dilation: Any = 1,
    groups: Any = 1,
    flip: Any = False,
    algorithm: str = "auto",
    max_memory: int | None = None,
) -> np.ndarray:
    """The general operation of DESIGN.md with input dilation; ``(lo, hi)`` pairs may be negative (a crop).

    Either a :class:`~refconv.params.ConvParams` from :func:`refconv.params.conv_params`
    or the keywords, as :func:`refconv.oracle.general_conv`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1., 2.]]]); w = np.array([[[1., 10., 100.]]])
    >>> general_conv(x, w, input_dilation=2, padding=2, flip=True).tolist()
    [[[1.0, 10.0, 102.0, 20.0, 200.0]]]
    >>> general_conv(x, w, input_dilation=2, padding=((2, -1),), flip=True).tolist()
    [[[1.0, 10.0]]]
    """
    x, w = as_array("x", x), as_array("w", w)
    b = None if b is None else as_array("b", b)
    if params is not None:
        check_params_match(params, x.shape, w.shape)
        return _forward(x, w, b, params, algorithm, max_memory, "general_conv")
    crop = general_crop(padding, input_dilation, x.ndim - 2)
    if crop is not None:
        # negative sides crop: xp itself (xp[i] = x_dilated[i - lo]), then no padding and no input dilation
        x = pad_dilate(x, crop[0], crop[1])
        padding, input_dilation = 0, 1
    p = conv_params(x.shape, w.shape, None if b is None else b.shape, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, flip=flip, input_dilation=input_dilation)
    return _forward(x, w, b, p, algorithm, max_memory, "general_conv")


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
    algorithm = _algorithm(algorithm)
    cap = resolve_cap(max_memory)
    dt = compute_dtype(("x", x), ("w", w), ("b", b))
    geo = Geometry(tp.stride, tp.padding, tp.dilation, (1,) * tp.ndim, tp.groups)
    out_sp = tp.output_spatial

    def run(xa, wa, alg="direct"):
        return _grad_input_run(xa, wa, geo, out_sp, cap, alg)

    if dt.kind in "iu":
        return _exact_int(run, (("x", x), ("w", w)), b, "conv_transpose")
    alg = _choose_grad_input(algorithm, x, w, geo, out_sp)
    y = run(x.astype(dt, copy=False), w.astype(dt, copy=False), alg)
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
    algorithm = _algorithm(algorithm)
    cap = resolve_cap(max_memory)
    dt = compute_dtype(("dy", dy), ("w", w))
    geo = _geometry(p)

    def run(da, wa, alg="direct"):
        return _grad_input_run(da, _flip(wa) if p.flip else wa, geo, p.input_spatial, cap, alg)

    if dt.kind in "iu":
        return _exact_int(run, (("dy", dy), ("w", w)), None, "conv_grad_input")
    alg = _choose_grad_input(algorithm, dy, w, geo, p.input_spatial)
    return run(dy.astype(dt, copy=False), w.astype(dt, copy=False), alg)


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
    algorithm = _algorithm(algorithm)
    cap = resolve_cap(max_memory)
    dt = compute_dtype(("x", x), ("dy", dy))
    geo = _geometry(p)

    def run(xa, da, alg="direct"):
        dw = _grad_weight_run(xa, da, geo, p.kernel_spatial, cap, alg)
        return np.ascontiguousarray(_flip(dw)) if p.flip else dw

    if dt.kind in "iu":
        return _exact_int(run, (("x", x), ("dy", dy)), None, "conv_grad_weight")
    # the weight gradient costs what the forward pass costs: the same choice
    alg = _choose(algorithm, x.shape, p.weight_shape, p, dt)
    return run(x.astype(dt, copy=False), dy.astype(dt, copy=False), alg)


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
