"""Convolution, transposed convolution and their gradients: the public functions.

Each function validates through :mod:`refconv.params` (the same
:class:`~refconv.params.ConvParamError` as the oracle) and hands one
description of its problem (shapes and dtypes, no array) to :func:`_prepare`,
the one execution path of the four: the compute dtype
(:mod:`refconv.fast.dtypes`) and the exact integer path, the memory held for
the result and converted inputs (:mod:`refconv.fast.memory`), the ``'auto'``
choice of algorithm; the plan it returns runs the problem on arrays, with the
fallback from FFT or Winograd to the direct kernels on non-finite data or when
their smallest chunk does not fit the cap, and the bias.  :func:`conv` and its
two gradients keep their plans per call signature (shapes, dtypes, keywords
and cap, with zero padding): a layer called again goes straight to its kernel.  The kernels are those of
:mod:`refconv.fast.direct`, :mod:`refconv.fast.fft` and :mod:`refconv.fast.winograd`.

Examples
--------
>>> import numpy as np
>>> x = np.arange(16.).reshape(1, 1, 4, 4)
>>> w = np.ones((1, 1, 2, 2))
>>> conv(x, w, stride=2)[0, 0].tolist()
[[10.0, 18.0], [42.0, 50.0]]
>>> conv(np.array([[[1, 2, 3, 4]]]), np.array([[[7, 6, 5]]]), padding='full', flip=True)[0, 0].tolist()
[7, 20, 38, 56, 39, 20]
>>> conv_transpose(np.ones((1, 1, 1000, 1000), np.float32), np.ones((1, 1, 3, 3), np.float32), stride=100)
Traceback (most recent call last):
    ...
refconv.fast.memory.MemoryCapError: max_memory=268435456: the result of conv_transpose (shape (1, 1, 99903, 99903), float32) needs 39922437636 bytes; raise the cap (max_memory=... or refconv.fast.memory_cap(...))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

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
from ..params import padding_mode as _padding_mode
from ..padding_modes import check_mode_padding, pad_mode, pad_mode_adjoint
from . import direct
from .dtypes import all_finite, as_array, check_exact_bound, check_exact_ints, compute_dtype
from .geometry import Geometry, is_depthwise, pad_dilate, prod
from .memo import memoized
from .memory import Budget, MemoryCapError, get_memory_cap, nbytes, resolve_cap

__all__ = ["conv", "general_conv", "conv_transpose", "conv_grad_input", "conv_grad_weight", "conv_grad_bias", "ALGORITHMS"]

ALGORITHMS = ("auto", "direct", "fft", "winograd")

#: Winograd F(m, 3) output tile of ``algorithm='winograd'`` and of the ``'auto'`` choice
WINOGRAD_TILE = 4
#: ``'auto'`` picks Winograd for real float layers with at least this many input and output channels ...
WINOGRAD_MIN_CHANNELS = 16
#: ... and at least this many output pixels per sample (smaller planes: transforms cost more than they save)
WINOGRAD_MIN_PIXELS = 256

#: stride-1 input gradients of at least this many channels per group run as one forward pass (not col2im)
WIDE_GROUP_CHANNELS = 32
#: stride-1 input gradients of small planes with at least this many input channels run as one channels-last
#: forward pass (narrower ones: col2im, the identity's GEMM would have too few columns)
NARROW_CHANNELS = 16
#: ... when the input has at most this many times the pixels of the output (a 5x5 input of a 1x1 output:
#: the identity would multiply 25 times the padding's zeros; col2im)
IDENTITY_MAX_GROWTH = 2


def _algorithm(algorithm: Any) -> str:
    if algorithm not in ALGORITHMS:
        raise ConvParamError(f"algorithm={algorithm!r}: must be one of " + ", ".join(repr(a) for a in ALGORITHMS))
    return algorithm


@functools.lru_cache(maxsize=512)
def _geometry(p: ConvParams) -> Geometry:
    """The engine's geometry of validated (frozen) parameters, made once per geometry."""
    geo = Geometry(p.stride, p.padding, p.dilation, p.input_dilation, p.groups)
    return geo.bounded(p.input_spatial, p.kernel_spatial)


def _flip(w: np.ndarray) -> np.ndarray:
    """``w[:, :, ::-1, ..., ::-1]``: the kernel reversed on every spatial axis (a view)."""
    return w[(slice(None), slice(None), *([slice(None, None, -1)] * (w.ndim - 2)))]


# validated once per geometry: a layer called again with the same shapes and keywords skips the checks
_conv_params = memoized(conv_params)
_conv_transpose_params = memoized(conv_transpose_params)


def _gradient_params(input_shape, weight_shape, dy_shape, **kw: Any) -> ConvParams:
    """The validated parameters of a gradient: those of the convolution of ``input_shape`` by ``weight_shape``,
    whose output ``dy_shape`` must be."""
    p = _conv_params(input_shape, weight_shape, **kw)
    check_gradient_shape(dy_shape, p.output_shape)
    return p


# ----------------------------------------------------------------------------- the one execution path


class _Operand(NamedTuple):
    """An operand of a problem as its plan sees it: the argument's name, its shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def _operand(name: str, a: np.ndarray) -> _Operand:
    return _Operand(name, a.shape, a.dtype)


def _bias(b: np.ndarray | None) -> _Operand | None:
    return None if b is None else _operand("b", b)


@dataclass(frozen=True)
class _Problem:
    """One call of the convolution family, validated: what its plan depends on (no array).

    ``run(a, b, alg, budget)`` computes the result without bias from the two
    operands in the compute dtype with algorithm ``alg`` (``'direct'``,
    ``'fft'`` or ``'winograd'``), next to what ``budget`` holds (the result
    included); ``choose(dtype)`` is the ``'auto'`` choice among them.
    """

    name: str
    operands: tuple[_Operand, _Operand]
    bias: _Operand | None
    out_shape: tuple[int, ...]
    run: Callable[[np.ndarray, np.ndarray, str, Budget], np.ndarray]
    choose: Callable[[np.dtype], str]


def _prepare(problem: _Problem, algorithm: Any, cap: int | Budget) -> Callable[..., np.ndarray]:
    """The plan of ``problem``: ``plan(a, b, bias)`` runs it on arrays of the operands' shapes and dtypes.

    Everything the shapes, dtypes, algorithm and cap decide is decided here
    (the compute dtype, the memory held for the result and converted inputs,
    the ``'auto'`` choice); the plan does what the data decide: exact int64,
    or the chosen float algorithm (FFT or Winograd falling back to direct on
    non-finite data or a cap their chunks exceed) plus the bias.
    """
    algorithm = _algorithm(algorithm)
    budget = cap if isinstance(cap, Budget) else Budget(cap)
    name, (oa, ob) = problem.name, problem.operands
    dt = compute_dtype((oa.name, oa), (ob.name, ob), ("b", problem.bias))
    shape = problem.out_shape
    run = problem.run
    if dt.kind in "iu":
        # float64 result and its int64 copy; float64 copies of the operands and of their absolute values
        budget = budget.hold(2 * nbytes(shape, np.float64), f"the result of {name} (shape {shape}, int64 computed in float64)")
        sizes = (prod(oa.shape) + prod(ob.shape),)
        budget = budget.hold(2 * nbytes(sizes, np.float64), f"the float64 copies of the integer inputs of {name}")

        def exact(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
            return _exact_int(lambda u, v: run(u, v, "direct", budget), ((oa.name, a), (ob.name, b)), bias, name)

        return exact
    budget = budget.hold(nbytes(shape, dt), lambda: f"the result of {name} (shape {shape}, {dt})")
    copies = sum(prod(o.shape) for o in (oa, ob) if o.dtype != dt)
    budget = budget.hold(nbytes((copies,), dt), lambda: f"the {dt} copies of the inputs of {name}")
    chosen = algorithm if algorithm != "auto" else problem.choose(dt)
    fallback = algorithm == "auto" and chosen != "direct"

    def plan(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        alg = chosen
        if fallback and not (all_finite(a) and all_finite(b)):
            alg = "direct"  # an inf or NaN spreads through every FFT or Winograd output: the direct sums keep it in place
        a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
        try:
            y = run(a, b, alg, budget)
        except MemoryCapError:
            if not fallback or alg == "direct":
                raise
            # 'auto' chose the FFT or Winograd but its smallest chunk exceeds the cap: the direct kernels chunk output rows
            y = run(a, b, "direct", budget)
        if bias is not None:
            y += bias.astype(dt, copy=False).reshape((-1,) + (1,) * (y.ndim - 2))
        return y

    return plan


def _execute(problem: _Problem, algorithm: Any, cap: int | Budget, a: np.ndarray, b: np.ndarray,
             bias: np.ndarray | None = None) -> np.ndarray:
    """Run ``problem`` on its operands (:func:`_prepare`, then its plan)."""
    return _prepare(problem, algorithm, cap)(a, b, bias)


def _exact_int(compute: Callable[..., np.ndarray], arrays: tuple, bias, op: str) -> np.ndarray:
    """Exact int64 result of a bilinear ``compute`` through float64 (see :mod:`refconv.fast.dtypes`).

    Peak: the float64 operands and their absolute values with the bound, then
    the operands with the float64 result, then the result and its int64 copy.
    """
    fl = [check_exact_ints(name, a) for name, a in arrays]
    fb = None if bias is None else check_exact_ints("b", bias)
    bound = compute(*[np.abs(a) for a in fl])
    if fb is not None:
        bound += np.abs(fb).reshape((-1,) + (1,) * (bound.ndim - 2))
    check_exact_bound(bound, op)
    del bound
    y = compute(*fl)
    del fl
    if fb is not None:
        y += fb.reshape((-1,) + (1,) * (y.ndim - 2))
    return y.astype(np.int64)


def prefer_winograd(x_shape, w_shape, geo: Geometry, out_spatial, dt: np.dtype) -> bool:
    """The ``'auto'`` choice of Winograd: its domain (:func:`refconv.fast.winograd.applies`), a real float
    dtype, at least :data:`WINOGRAD_MIN_CHANNELS` channels in and out, :data:`WINOGRAD_MIN_PIXELS` outputs per sample.

    >>> g = Geometry((1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1)
    >>> prefer_winograd((8, 64, 56, 56), (64, 64, 3, 3), g, (56, 56), np.dtype(np.float32))
    True
    >>> prefer_winograd((64, 3, 32, 32), (32, 3, 3, 3), g, (32, 32), np.dtype(np.float32))
    False
    """
    from . import winograd

    return (dt.kind == "f" and winograd.applies(geo, w_shape) and x_shape[1] >= WINOGRAD_MIN_CHANNELS
            and w_shape[0] >= WINOGRAD_MIN_CHANNELS and prod(out_spatial) >= WINOGRAD_MIN_PIXELS)


def _choice_forward(x_shape, w_shape, p: ConvParams, winograd: bool, dt: np.dtype) -> str:
    from .fft import prefer_fft

    if prefer_fft(x_shape, w_shape, p, dt):
        return "fft"
    if winograd and prefer_winograd(x_shape, w_shape, _geometry(p), p.output_spatial, dt):
        return "winograd"
    return "direct"


def _choice_grad_input(dy_shape, w_shape, geo: Geometry, input_spatial, dt: np.dtype) -> str:
    if any(s != 1 for s in geo.stride):
        return "direct"
    shape = (dy_shape[0], w_shape[1] * geo.groups, *input_spatial)
    p = _conv_params(shape, w_shape, padding=geo.padding, dilation=geo.dilation, groups=geo.groups)
    return _choice_forward(shape, w_shape, p, True, dt)


# the 'auto' choice depends on the shapes, the geometry and the dtype only: made once per geometry
_choice_forward_memo = memoized(_choice_forward)
_choice_grad_input_memo = memoized(_choice_grad_input)


def _choose_forward(x_shape, w_shape, p: ConvParams, winograd: bool = True) -> Callable[[np.dtype], str]:
    def choose(dt: np.dtype) -> str:
        return _choice_forward_memo(tuple(x_shape), tuple(w_shape), p, winograd, np.dtype(dt))

    return choose


def _choose_grad_input(dy_shape, w_shape, geo: Geometry, input_spatial) -> Callable[[np.dtype], str]:
    """The input gradient costs what the forward pass costs: FFT (or Winograd) where the forward problem prefers it."""

    def choose(dt: np.dtype) -> str:
        return _choice_grad_input_memo(tuple(dy_shape), tuple(w_shape), geo, tuple(input_spatial), np.dtype(dt))

    return choose


def _winograd_domain(name: str, geo: Geometry, w_shape) -> None:
    """``algorithm='winograd'`` outside its domain: a clear error naming the argument."""
    from . import winograd

    if not winograd.applies(geo, w_shape):
        raise ConvParamError(
            f"algorithm='winograd': {name} needs stride 1, dilation 1, groups=1 and a 3-tap kernel on every "
            f"axis (got kernel {tuple(w_shape[2:])}, stride {geo.stride}, dilation {geo.dilation}, groups={geo.groups})"
        )


def _forward_kernel(alg: str):
    """The forward kernel of ``alg`` (``x, w, geo, budget -> y``)."""
    if alg == "fft":
        from .fft import fft_forward

        return fft_forward
    if alg == "winograd":
        from . import winograd

        return lambda x, w, geo, budget: winograd.forward(x, w, geo, budget, m=WINOGRAD_TILE)
    return direct.forward


# ----------------------------------------------------------------------------- the kernels of each problem


def _forward_run(geo: Geometry, flip: bool):
    def run(x: np.ndarray, w: np.ndarray, alg: str, budget: Budget) -> np.ndarray:
        w = _flip(w) if flip else w
        return _forward_kernel(alg)(x, w, geo, budget)

    return run


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


def _grad_input_run(geo: Geometry, input_spatial, flip: bool):
    """``dx`` (or a transposed convolution's ``y``): col2im, or the forward identity, or the FFT of it."""

    def identity(dy, w, alg: str, budget: Budget) -> np.ndarray:
        # w' is a transposed copy of w
        budget = budget.hold(w.nbytes, "the transposed weight of the input gradient")
        problem = _grad_input_problem(dy, w, geo, input_spatial)
        return _forward_kernel(alg)(*problem, budget)

    def run(dy: np.ndarray, w: np.ndarray, alg: str, budget: Budget) -> np.ndarray:
        w = _flip(w) if flip else w
        if alg in ("fft", "winograd"):
            return identity(dy, w, alg, budget)
        if not all_finite(w):
            # the identity and the flat kernels multiply w by zeros that stand for no term (inf * 0 is NaN):
            # the scatter of the real products only
            return direct.grad_input(dy, w, geo, input_spatial, budget, finite_weight=False)
        Cg, Mg = w.shape[1], w.shape[0] // geo.groups
        if all(st == 1 for st in geo.stride) and prod(dy.shape[2:]) >= direct.FLAT_GRAD_BELOW and (
            Cg >= WIDE_GROUP_CHANNELS or (is_depthwise(Cg, Mg) and Mg == 1)
        ):
            # stride 1, large planes, wide (or depthwise, multiplier 1) layers: the forward identity is one
            # forward pass (depthwise again for depthwise), faster than col2im's scatter
            return identity(dy, w, "direct", budget)
        if all(st == 1 for st in geo.stride):
            _, wt, g2 = _grad_input_problem(dy, w, geo, input_spatial)
            if (wt.shape[0] >= NARROW_CHANNELS and prod(input_spatial) <= IDENTITY_MAX_GROWTH * prod(dy.shape[2:])
                    and direct.channels_last(g2, wt.shape[1], wt.shape[2:], prod(input_spatial))):
                # stride 1, small planes, at least NARROW_CHANNELS input channels: the forward identity takes
                # the channels-last im2col, one GEMM per block of samples (col2im would scatter short rows);
                # its GEMM has prod(input) rows where col2im's has prod(O): only where they are close
                return identity(dy, w, "direct", budget)
        try:
            return direct.grad_input(dy, w, geo, input_spatial, budget)
        except MemoryCapError:
            # one sample's col2im buffer is over the cap: the forward identity chunks output rows
            return identity(dy, w, "direct", budget)

    return run


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


def _grad_weight_run(geo: Geometry, K, flip: bool):
    """``dw``: the direct kernel, or per group the forward identity (direct or FFT)."""

    def groups(x, dy, alg: str, budget: Budget) -> np.ndarray:
        from .fft import fft_forward

        kernel = fft_forward if alg == "fft" else direct.forward
        N, C = x.shape[:2]
        M = dy.shape[1]
        G = geo.groups
        Cg, Mg = C // G, M // G
        it = x.dtype.itemsize
        P = geo.padded_spatial(x.shape[2:])
        # the parts of the groups (concatenated into the result)
        budget = budget.hold(nbytes((M, Cg, *K), x.dtype), "the per-group parts of conv_grad_weight")
        # one group at a time: its padded input, and its forward result (Cg, Mg, *K') with K' >= K
        Kf = Geometry(geo.dilation, ((0, 0),) * len(K), geo.stride, (1,) * len(K), 1).output_spatial(P, dy.shape[2:])
        gb = budget.hold(N * Cg * prod(P) * it, "the padded input of one group of conv_grad_weight")
        gb = gb.hold(nbytes((Cg, Mg, *Kf), x.dtype), "the forward result of one group of conv_grad_weight")
        parts = []
        for g in range(G):
            xt, dyt, g2 = _grad_weight_problem(x, dy, geo, g)
            out = kernel(xt, dyt, g2.bounded(xt.shape[2:], dyt.shape[2:]), gb)  # (Cg, Mg, *K')
            parts.append(np.ascontiguousarray(out[(slice(None), slice(None), *(slice(0, k) for k in K))].swapaxes(0, 1)))
            del out, xt
        return np.concatenate(parts, axis=0)

    def run(x: np.ndarray, dy: np.ndarray, alg: str, budget: Budget) -> np.ndarray:
        if flip:
            # the flipped copy of dw
            budget = budget.hold(nbytes((dy.shape[1], x.shape[1] // geo.groups, *K), x.dtype), "the flipped weight gradient")
        dw = None
        if alg == "direct":
            try:
                dw = direct.grad_weight(x, dy, geo, K, budget)
            except MemoryCapError:
                pass  # one sample's im2col buffer is over the cap: the forward identity chunks output rows
        if dw is None:
            dw = groups(x, dy, alg, budget)
        return np.ascontiguousarray(_flip(dw)) if flip else dw

    return run


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
    padding_mode: str = "zeros",
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
    algorithm : {'auto', 'direct', 'fft', 'winograd'}
        ``'direct'``: im2col + GEMM (or per-tap sums for depthwise), within the
        per-element bound of :mod:`refconv.tolerance`.  ``'fft'``: scipy.fft
        (normwise bound :func:`refconv.tolerance.fft_conv_error_bound`).
        ``'winograd'``: ``F(4x4, 3x3)`` minimal filtering (:mod:`refconv.fast.winograd`;
        stride 1, dilation 1, one group, 3-tap kernels only; bound
        :func:`refconv.tolerance.winograd_conv_error_bound`).
        ``'auto'``: FFT when :func:`refconv.fast.fft.prefer_fft`'s cost model
        says so (large kernels), Winograd where :func:`prefer_winograd` says
        so (wide 3x3 layers on large planes), else direct; integer inputs are
        always computed exactly (direct).
    max_memory : int, optional
        Cap in bytes for temporaries (default :func:`refconv.fast.get_memory_cap`).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        What the padding holds, as :func:`refconv.oracle.conv` (:mod:`refconv.padding_modes`):
        the input padded so (``np.take`` of its source indices), then convolved without padding.

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
    >>> conv(np.arange(1, 6).reshape(1, 1, 5), np.array([[[1, 1]]]), padding=1, padding_mode='circular').tolist()
    [[[6, 3, 5, 7, 9, 6]]]
    """
    x, w = as_array("x", x), as_array("w", w)
    b = None if b is None else as_array("b", b)
    if isinstance(padding_mode, str) and padding_mode == "zeros":
        # one plan per shapes, dtypes, keywords and cap: a layer called again goes straight to its kernel
        plan = _conv_plans(x.shape, x.dtype, w.shape, w.dtype, None if b is None else b.shape, None if b is None else b.dtype,
                           resolve_cap(max_memory), stride=stride, padding=padding, dilation=dilation, groups=groups,
                           flip=flip, algorithm=algorithm)
        return plan(x, w, b)
    kw = dict(stride=stride, dilation=dilation, groups=groups, flip=flip)
    p = _conv_params(x.shape, w.shape, None if b is None else b.shape, padding=padding, **kw)
    x, p, cap = _mode_padded(x, w.shape, None if b is None else b.shape, p, padding_mode, kw, max_memory, "conv")
    return _forward(x, w, b, p, algorithm, cap, "conv")


def _conv_plan(x_shape, x_dtype, w_shape, w_dtype, b_shape, b_dtype, cap: int, *, stride: Any, padding: Any,
               dilation: Any, groups: Any, flip: Any, algorithm: Any) -> Callable[..., np.ndarray]:
    """The plan (:func:`_prepare`) of :func:`conv` with zero padding on operands of these shapes and dtypes."""
    p = _conv_params(x_shape, w_shape, b_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    b = None if b_shape is None else _Operand("b", b_shape, b_dtype)
    problem = _forward_call(p, _Operand("x", x_shape, x_dtype), _Operand("w", w_shape, w_dtype), b, algorithm, "conv")
    return _prepare(problem, algorithm, cap)


# made once per signature (errors are never kept: a bad call raises every time)
_conv_plans = memoized(_conv_plan)


def _mode_padded(x: np.ndarray, w_shape, b_shape, p: ConvParams, mode: Any, kw: dict, max_memory: Any, name: str):
    """``(x, p, cap)``: for a ``padding_mode`` other than ``'zeros'`` the input padded as the mode says
    (:func:`refconv.padding_modes.pad_mode`), the parameters without padding and the cap with that copy held."""
    cap: int | Budget
    cap = resolve_cap(max_memory)
    mode = _padding_mode(mode)
    if mode == "zeros":
        return x, p, cap
    check_mode_padding(mode, p.padding, p.input_spatial)  # reflect: each side < n; circular: <= n
    cap = Budget(cap).hold(nbytes((*p.input_shape[:2], *p.padded_spatial), x.dtype), f"the mode-padded input of {name}")
    x = pad_mode(x, p.padding, mode)  # xp[i] = x[src[i]] on every spatial axis
    return x, _conv_params(x.shape, w_shape, b_shape, padding=0, **kw), cap


def _forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams, algorithm: Any,
             cap: int | Budget, name: str) -> np.ndarray:
    """The general operation on validated operands."""
    return _execute(_forward_call(p, _operand("x", x), _operand("w", w), _bias(b), algorithm, name), algorithm, cap, x, w, b)


def _forward_call(p: ConvParams, x: _Operand, w: _Operand, b: _Operand | None, algorithm: Any, name: str) -> _Problem:
    """The general operation of validated parameters ``p`` as a problem."""
    if _algorithm(algorithm) == "winograd":
        _winograd_domain(name, _geometry(p), w.shape)
    return _Problem(name, (x, w), b, p.output_shape, _forward_run(_geometry(p), p.flip), _choose_forward(x.shape, w.shape, p))


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
    """The general operation (specs/convolution.md) with input dilation; ``(lo, hi)`` pairs may be negative (a crop).

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
    cap: int | Budget
    cap = resolve_cap(max_memory)
    if params is not None:
        check_params_match(params, x.shape, w.shape)
        return _forward(x, w, b, params, algorithm, cap, "general_conv")
    crop = general_crop(padding, input_dilation, x.ndim - 2)
    if crop is not None:
        # negative sides crop: xp itself (xp[i] = x_dilated[i - lo]), then no padding and no input dilation
        pairs, a = crop
        P = [max((ai * (n - 1) + 1 if n > 0 else 0) + lo + hi, 0) for n, ai, (lo, hi) in zip(x.shape[2:], a, pairs)]
        copied = any(ai != 1 for ai in a) or any(lo > 0 or hi > 0 for lo, hi in pairs)  # else a view
        cap = Budget(cap).hold(nbytes((*x.shape[:2], *P), x.dtype) if copied else 0, "the cropped input of general_conv")
        x = pad_dilate(x, pairs, a)
        padding, input_dilation = 0, 1
    p = conv_params(x.shape, w.shape, None if b is None else b.shape, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, flip=flip, input_dilation=input_dilation)
    return _forward(x, w, b, p, algorithm, cap, "general_conv")


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
    tp = _conv_transpose_params(x.shape, w.shape, None if b is None else b.shape, stride=stride, padding=padding,
                               output_padding=output_padding, dilation=dilation, groups=groups)
    out_sp = tp.output_spatial
    # the forward convolution of an input of the output's size, whose input gradient this is
    geo = Geometry(tp.stride, tp.padding, tp.dilation, (1,) * tp.ndim, tp.groups).bounded(out_sp, tp.kernel_spatial)
    if _algorithm(algorithm) == "winograd":
        _winograd_domain("conv_transpose", geo, w.shape)
    problem = _Problem("conv_transpose", (_operand("x", x), _operand("w", w)), _bias(b), tp.output_shape,
                       _grad_input_run(geo, out_sp, False), _choose_grad_input(x.shape, w.shape, geo, out_sp))
    return _execute(problem, algorithm, resolve_cap(max_memory), x, w, b)


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
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of ``sum(conv(x, w, ...) * dy)`` with respect to ``x`` (of shape ``input_shape``).

    ``dx[n, c, i] = sum_{o, p, k : p*s + k*d = lo + i} dy[n, o, p] * w[o, c - g(o)*Cg, k']``;
    input rows no window reads get an exact zero.

    Examples
    --------
    >>> import numpy as np
    >>> conv_grad_input(np.ones((1, 1, 2)), np.array([[[1., 2., 3.]]]), (1, 1, 5), stride=2)[0, 0].tolist()
    [1.0, 2.0, 4.0, 2.0, 3.0]

    With a ``padding_mode`` other than ``'zeros'``: the gradient of the padded
    input, folded back by :func:`refconv.padding_modes.pad_mode_adjoint` (a
    sample accumulates the gradients of its copies):

    >>> conv_grad_input(np.array([[[1, 1, 1]]]), np.array([[[1, 1]]]), (1, 1, 2), padding=1, padding_mode='replicate').tolist()
    [[[3, 3]]]
    """
    dy, w = as_array("dy", dy), as_array("w", w)
    if isinstance(padding_mode, str) and padding_mode == "zeros":
        # one plan per shapes, dtypes, keywords and cap (as conv)
        plan = _grad_input_plans(dy.shape, dy.dtype, w.shape, w.dtype, input_shape, resolve_cap(max_memory), stride=stride,
                                 padding=padding, dilation=dilation, groups=groups, flip=flip, algorithm=algorithm)
        return plan(dy, w, None)
    kw = dict(stride=stride, dilation=dilation, groups=groups, flip=flip)
    p = _gradient_params(input_shape, w.shape, dy.shape, padding=padding, **kw)
    mode = _padding_mode(padding_mode)
    if mode == "zeros":
        return _grad_input(dy, w, p, algorithm, resolve_cap(max_memory))
    return _grad_input_moded(dy, w, p, mode, kw, algorithm, max_memory)


def _grad_input_plan(dy_shape, dy_dtype, w_shape, w_dtype, input_shape, cap: int, *, stride: Any, padding: Any,
                     dilation: Any, groups: Any, flip: Any, algorithm: Any) -> Callable[..., np.ndarray]:
    """The plan (:func:`_prepare`) of :func:`conv_grad_input` with zero padding."""
    p = _gradient_params(input_shape, w_shape, dy_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                         flip=flip)
    return _prepare(_grad_input_call(p, _Operand("dy", dy_shape, dy_dtype), _Operand("w", w_shape, w_dtype), algorithm),
                    algorithm, cap)


_grad_input_plans = memoized(_grad_input_plan)


def _grad_input(dy: np.ndarray, w: np.ndarray, p: ConvParams, algorithm: Any, cap: int | Budget) -> np.ndarray:
    """The input gradient on validated operands."""
    return _execute(_grad_input_call(p, _operand("dy", dy), _operand("w", w), algorithm), algorithm, cap, dy, w)


def _grad_input_call(p: ConvParams, dy: _Operand, w: _Operand, algorithm: Any) -> _Problem:
    """The input gradient of validated parameters ``p`` as a problem."""
    geo = _geometry(p)
    if _algorithm(algorithm) == "winograd":
        _winograd_domain("conv_grad_input", geo, w.shape)
    return _Problem("conv_grad_input", (dy, w), None, p.input_shape, _grad_input_run(geo, p.input_spatial, p.flip),
                    _choose_grad_input(dy.shape, w.shape, geo, p.input_spatial))


def _grad_input_moded(dy: np.ndarray, w: np.ndarray, p: ConvParams, mode: str, kw: dict, algorithm: Any,
                      max_memory: Any) -> np.ndarray:
    """The input gradient with mode padding: ``dxp`` of the padded input (no padding), then its adjoint."""
    check_mode_padding(mode, p.padding, p.input_spatial)  # reflect: each side < n; circular: <= n
    # the adjoint's result (the input's shape), held next to dxp
    held = nbytes(p.input_shape, compute_dtype(("dy", dy), ("w", w)))
    cap = Budget(resolve_cap(max_memory)).hold(held, "the folded input gradient of conv_grad_input")
    q = _conv_params((*p.input_shape[:2], *p.padded_spatial), w.shape, padding=0, **kw)
    dxp = _grad_input(dy, w, q, algorithm, cap)  # the gradient of the padded input
    return pad_mode_adjoint(dxp, p.padding, mode, p.input_shape)  # dx[src[j]] += dxp[j]


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
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of ``sum(conv(x, w, ...) * dy)`` with respect to ``w`` (of shape ``weight_shape``).

    With a ``padding_mode`` other than ``'zeros'``: the correlation of the
    mode-padded input (:func:`refconv.padding_modes.pad_mode`) with ``dy``.

    ``dw[o, c, k'] = sum_{n, p} dy[n, o, p] * xp[n, g(o)*Cg + c, p*s + k*d]``.

    Examples
    --------
    >>> import numpy as np
    >>> conv_grad_weight(np.array([[[1., 2., 3., 4.]]]), np.ones((1, 1, 2)), (1, 1, 3))[0, 0].tolist()
    [3.0, 5.0, 7.0]
    """
    x, dy = as_array("x", x), as_array("dy", dy)
    if isinstance(padding_mode, str) and padding_mode == "zeros":
        # one plan per shapes, dtypes, keywords and cap (as conv)
        plan = _grad_weight_plans(x.shape, x.dtype, dy.shape, dy.dtype, weight_shape, resolve_cap(max_memory), stride=stride,
                                  padding=padding, dilation=dilation, groups=groups, flip=flip, algorithm=algorithm)
        return plan(x, dy, None)
    kw = dict(stride=stride, dilation=dilation, groups=groups, flip=flip)
    p = _gradient_params(x.shape, weight_shape, dy.shape, padding=padding, **kw)
    x, p, cap = _mode_padded(x, weight_shape, None, p, padding_mode, kw, max_memory, "conv_grad_weight")
    return _execute(_grad_weight_call(p, _operand("x", x), _operand("dy", dy), algorithm), algorithm, cap, x, dy)


def _grad_weight_plan(x_shape, x_dtype, dy_shape, dy_dtype, weight_shape, cap: int, *, stride: Any, padding: Any,
                      dilation: Any, groups: Any, flip: Any, algorithm: Any) -> Callable[..., np.ndarray]:
    """The plan (:func:`_prepare`) of :func:`conv_grad_weight` with zero padding."""
    p = _gradient_params(x_shape, weight_shape, dy_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                         flip=flip)
    return _prepare(_grad_weight_call(p, _Operand("x", x_shape, x_dtype), _Operand("dy", dy_shape, dy_dtype), algorithm),
                    algorithm, cap)


_grad_weight_plans = memoized(_grad_weight_plan)


def _grad_weight_call(p: ConvParams, x: _Operand, dy: _Operand, algorithm: Any) -> _Problem:
    """The weight gradient of validated parameters ``p`` as a problem."""
    if _algorithm(algorithm) == "winograd":
        raise ConvParamError("algorithm='winograd': conv_grad_weight has no Winograd form here; use 'auto', 'direct' or 'fft'")
    # the weight gradient costs what the forward pass costs: the same choice between FFT and direct
    return _Problem("conv_grad_weight", (x, dy), None, p.weight_shape, _grad_weight_run(_geometry(p), p.kernel_spatial, p.flip),
                    _choose_forward(x.shape, p.weight_shape, p, winograd=False))


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
    C = dy.shape[1]
    budget = Budget(get_memory_cap())
    if dt.kind in "iu":
        budget = budget.hold(2 * nbytes(dy.shape, np.float64), "the float64 copy of dy and its absolute values of conv_grad_bias")
        fl = check_exact_ints("dy", dy)
        check_exact_bound(np.abs(fl).sum(axis=axes), "conv_grad_bias")
        return fl.sum(axis=axes).astype(np.int64)
    budget = budget.hold(nbytes((C,), dt), "the result of conv_grad_bias")
    per_channel = nbytes((dy.size // C if C else 0,), dt)
    cb = budget.chunks(C, per_channel, what="one channel of conv_grad_bias")
    out = np.empty(C, dtype=dt)
    for c0 in range(0, C, cb):
        c1 = min(C, c0 + cb)
        # (c, N*P) rows of a block of channels, each summed by numpy's fixed pairwise order
        out[c0:c1] = np.ascontiguousarray(dy[:, c0:c1].swapaxes(0, 1)).reshape(c1 - c0, -1).sum(axis=1)
    return out
