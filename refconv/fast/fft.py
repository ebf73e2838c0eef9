"""FFT kernel of the forward operation (scipy.fft), and the cost model that picks it.

Identity: with ``xp`` the padded input (length ``P`` per axis) and ``wd`` the
dilated kernel (span ``D = d*(K-1) + 1``), the stride-1 correlation
``z[p] = sum_k xp[p + k] * wd[k]`` equals the circular convolution of ``xp``
with ``reverse(wd)`` at indices ``p + D - 1``, for any transform length
``L >= P`` (nothing of the valid part wraps).  Channels are contracted per
frequency: ``Z[n, o, f] = sum_c X[n, g*Cg + c, f] * W[o, c, f]``.  The strided
output is ``z[p*s]``.  Real inputs use real transforms (``rfftn``); lengths are
``scipy.fft.next_fast_len``; float32 stays float32 (complex64 spectra).

The error of the FFT path is bounded normwise
(:func:`refconv.tolerance.fft_conv_error_bound`), not per element: use
``algorithm='direct'`` when every element must meet the direct-summation bound.

Examples
--------
>>> import numpy as np
>>> from refconv.fast.geometry import Geometry
>>> from refconv.fast.memory import Budget
>>> g = Geometry((1,), ((2, 2),), (1,), (1,), 1)
>>> y = fft_forward(np.array([[[1., 2., 3., 4.]]]), np.array([[[5., 6., 7.]]])[..., ::-1], g, Budget(1 << 20))
>>> np.round(y, 9).tolist()
[[[5.0, 16.0, 34.0, 52.0, 45.0, 28.0]]]
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import Geometry, is_depthwise, pad_dilate, prod
from .memory import Budget
from .parallel import workers

__all__ = ["fft_forward", "prefer_fft", "direct_cost", "fft_cost"]

#: rough sustained rates of this engine (flop/s, bytes/s), used only to rank the two algorithms
GEMM_RATE = 60e9
TAP_RATE = 4e9
COPY_RATE = 4e9
FFT_RATE = 4e9
POINTWISE_RATE = 2e9
#: ``'auto'`` considers the FFT only for kernels of at least this many taps per axis (geometric mean)
FFT_MIN_TAPS = 7


def _lengths(P) -> tuple[int, ...]:
    import scipy.fft

    return tuple(scipy.fft.next_fast_len(int(n), real=True) for n in P)


def direct_cost(x_shape, w_shape, p) -> float:
    """Estimated seconds of the direct kernel.

    ``2*N*C_out*Cg*prod(K)*prod(O)`` flops at the GEMM rate (lower when few
    output channels per group keep the GEMM narrow), plus writing and reading
    the im2col buffer of ``N*C_in*prod(K)*prod(O)`` elements.
    """
    N, M = x_shape[0], w_shape[0]
    Cg = w_shape[1]
    Kp, Op = prod(w_shape[2:]), prod(p.output_spatial)
    flops = 2.0 * N * M * Cg * Kp * Op
    Mg = M // p.groups
    if is_depthwise(Cg, Mg):
        return flops / TAP_RATE
    rate = GEMM_RATE * min(1.0, Mg / 32)
    return flops / rate + 3.0 * N * Cg * p.groups * Kp * Op * 4 / COPY_RATE


def fft_cost(x_shape, w_shape, p) -> float:
    """Estimated seconds of the FFT kernel: transforms of every plane plus the per-frequency contraction."""
    N, C = x_shape[:2]
    M, Cg = w_shape[:2]
    L = prod(_lengths(p.padded_spatial))
    transform = 2.5 * L * math.log2(max(L, 2))
    planes = N * C + M * Cg + N * M
    return planes * transform / FFT_RATE + 8.0 * N * M * Cg * (L / 2) / POINTWISE_RATE


def prefer_fft(x_shape, w_shape, p, dtype) -> bool:
    """The ``'auto'`` choice: FFT when its estimated cost is below the direct kernel's.

    Only for stride 1 (strided outputs waste most of an FFT) and kernels of at
    least 7 taps per axis on average.

    >>> from refconv.params import conv_params
    >>> prefer_fft((1, 1, 512, 512), (1, 1, 31, 31), conv_params((1, 1, 512, 512), (1, 1, 31, 31)), np.float32)
    True
    >>> prefer_fft((8, 64, 56, 56), (64, 64, 3, 3), conv_params((8, 64, 56, 56), (64, 64, 3, 3)), np.float32)
    False
    """
    if any(s != 1 for s in p.stride) or prod(w_shape[2:]) < FFT_MIN_TAPS ** len(w_shape[2:]):
        return False
    return fft_cost(x_shape, w_shape, p) < direct_cost(x_shape, w_shape, p)


def _spectrum(a: np.ndarray, L, real: bool, nw: int) -> np.ndarray:
    """``rfftn`` (or ``fftn``) over the trailing ``len(L)`` axes with zero padding to ``L``, one axis at a time.

    Transforming the last axis first, then each earlier one, skips the zero rows
    a small kernel would otherwise have transformed.
    """
    import scipy.fft

    nsp = len(L)
    out = (scipy.fft.rfft if real else scipy.fft.fft)(a, n=L[-1], axis=-1, workers=nw)
    for i in range(nsp - 2, -1, -1):
        out = scipy.fft.fft(out, n=L[i], axis=a.ndim - nsp + i, workers=nw)
    return out


def fft_forward(x: np.ndarray, w: np.ndarray, geo: Geometry, budget: Budget) -> np.ndarray:
    """``y`` of the general operation (no bias) through FFTs; ``w`` already flipped if needed.

    ``budget`` holds ``y`` already.  Chunks over the batch; when one sample's
    spectra exceed the cap, over slabs of output rows of axis 0 (overlap-save:
    each slab reads the rows of ``xp`` its windows cover, all slabs share one
    transform length).
    """
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    K = w.shape[2:]
    O = geo.output_spatial(x.shape[2:], K)
    y = np.empty((N, M, *O), dtype=x.dtype)
    if y.size == 0:
        return y
    real = x.dtype.kind == "f"
    cdt = np.result_type(x.dtype, np.complex64)
    it, xit = np.dtype(cdt).itemsize, x.dtype.itemsize
    span = tuple(d * (k - 1) + 1 for k, d in zip(K, geo.dilation))
    P = geo.padded_spatial(x.shape[2:])
    # pocketfft threads over independent 1-D transforms: the same bits for any worker count
    nw = workers() if N * C >= 8 else 1

    # the dilated kernel and its reversed copy, while its spectrum is built
    wd_bytes = 2 * M * Cg * prod(span) * xit

    def plan(Ps):
        """Transform lengths, spectrum length, bytes per sample, bytes held for the kernel spectrum."""
        L = _lengths(Ps)
        F = prod(L[:-1]) * (L[-1] // 2 + 1 if real else L[-1])
        # per sample: the input spectrum and its previous axis pass, Z, its product buffer and the inverse
        # transform's complex pass; the padded block and the real inverse
        per = (2 * C * F + 3 * M * F) * it + (C * prod(Ps) + M * prod(L)) * xit
        # the kernel spectrum and its previous axis pass, next to the dilated kernel
        return L, F, per, 2 * M * Cg * F * it + wd_bytes

    L, F, per, wbytes = plan(P)
    if wbytes + per <= budget.left:
        W = _kernel_spectrum(w, geo, L, F, real, nw)
        nb = budget.chunks(N, per, fixed=wbytes, what="one batch sample of the FFT conv")
        for n0 in range(0, N, nb):
            xp = pad_dilate(x[n0 : n0 + nb], geo.padding, geo.input_dilation)
            y[n0 : n0 + nb] = _fft_block(xp, W, L, F, O, span, geo, real, cdt, nw)
        return y
    from .direct import _xp_chunk

    def slab(rows):
        return plan(((rows - 1) * geo.stride[0] + span[0], *P[1:]))

    lo_r, hi_r = 1, O[0]  # the largest slab height that fits
    budget.chunks(1, sum(slab(1)[2:]), what="one output row of one sample of the FFT conv")
    while lo_r < hi_r:
        mid = (lo_r + hi_r + 1) // 2
        lo_r, hi_r = (mid, hi_r) if sum(slab(mid)[2:]) <= budget.left else (lo_r, mid - 1)
    rows = lo_r
    L, F, _, _ = slab(rows)
    W = _kernel_spectrum(w, geo, L, F, real, nw)
    for n in range(N):
        for r0 in range(0, O[0], rows):
            r1 = min(O[0], r0 + rows)
            xp = _xp_chunk(x[n : n + 1], geo, K, r0, r1)
            y[n : n + 1, :, r0:r1] = _fft_block(xp, W, L, F, (r1 - r0, *O[1:]), span, geo, real, cdt, nw)
    return y


def _kernel_spectrum(w, geo: Geometry, L, F, real: bool, nw: int) -> np.ndarray:
    """Spectrum of the dilated, reversed kernel ``wr[..., D-1-k*d] = w[..., k]``, shape ``(G, Mg, Cg, F)``."""
    M, Cg = w.shape[:2]
    K = w.shape[2:]
    span = tuple(d * (k - 1) + 1 for k, d in zip(K, geo.dilation))
    wd = np.zeros((M, Cg, *span), dtype=w.dtype)
    wd[(slice(None), slice(None), *(slice(None, None, d) for d in geo.dilation))] = w
    wr = wd[(slice(None), slice(None), *([slice(None, None, -1)] * len(K)))]
    return _spectrum(np.ascontiguousarray(wr), L, real, nw).reshape(geo.groups, M // geo.groups, Cg, F)


def _fft_block(xp, W, L, F, O, span, geo: Geometry, real: bool, cdt, nw: int) -> np.ndarray:
    """``z[p*s]`` of the correlation of the padded block ``xp`` with the kernel of spectrum ``W``."""
    import scipy.fft

    b = xp.shape[0]
    G, Mg, Cg = W.shape[:3]
    M = G * Mg
    X = _spectrum(xp, L, real, nw).reshape(b, G, Cg, F)
    if Cg == 1:
        Z = X * W[None, :, :, 0, :]  # (b, G, Mg, F)
    else:
        Z = np.zeros((b, G, Mg, F), dtype=cdt)
        tmp = np.empty_like(Z)
        # Z[n, g, m, f] = sum_c X[n, g, c, f] * W[g, m, c, f], channels added in order
        for c in range(Cg):
            np.multiply(X[:, :, None, c, :], W[None, :, :, c, :], out=tmp)
            Z += tmp
    inv = scipy.fft.irfftn if real else scipy.fft.ifftn
    axes = tuple(range(2, 2 + len(L)))
    z = inv(Z.reshape(b, M, *L[:-1], F // prod(L[:-1])), s=L, axes=axes, workers=nw)
    crop = tuple(slice(D - 1, D - 1 + (o - 1) * s + 1, s) for D, o, s in zip(span, O, geo.stride))
    return z[(slice(None), slice(None), *crop)]
