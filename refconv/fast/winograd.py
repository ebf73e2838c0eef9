"""Winograd minimal filtering ``F(m, 3)`` on every spatial axis: stride-1, undilated ``3 x ... x 3`` convolutions.

With the Toom-Cook matrices of :func:`refconv.tolerance.winograd_transform`
(points ``0, 1, -1`` for ``m = 2``; ``0, 1, -1, 2, -2`` for ``m = 4``), per
output tile of ``m`` samples per axis and input tile ``d`` of ``alpha = m + 2``:

    U[xi, o, c] = (G (x) ... (x) G) w[o, c]                  (kernel, one stage per axis)
    V[xi, c, t] = (B^T (x) ... (x) B^T) d[n, c, tile t]      (input, one stage per axis)
    M[xi, o, t] = sum_c U[xi, o, c] V[xi, c, t]              (one GEMM per transform point xi)
    y[n, o, tile t] = (A^T (x) ... (x) A^T) M[:, o, t]       (output, one stage per axis)

Each stage is a GEMM over one axis of ``alpha`` (or 3) entries, so each
rounding path is the one :func:`refconv.tolerance.winograd_error` bounds.
``m = 2`` has dyadic transforms (entries ``0, +-1, +-1/2``): integer-valued
floats whose intermediate sums stay exact give the exact result; ``m = 4``
(entries such as ``1/6``) rounds even then and is only within its bound.

Tiles past the output (when ``m`` does not divide it) read zeros and are
discarded.  Tasks are fixed blocks of samples (:func:`block`); every GEMM runs
single-threaded on shapes fixed by the problem, so results do not depend on
the thread count.

Examples
--------
>>> import numpy as np
>>> from refconv.fast.geometry import Geometry
>>> from refconv.fast.memory import Budget
>>> x = np.arange(36.).reshape(1, 1, 6, 6); w = np.ones((1, 1, 3, 3))
>>> geo = Geometry((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1)
>>> forward(x, w, geo, Budget(1 << 20), m=2)[0, 0].tolist()
[[63.0, 72.0, 81.0, 90.0], [117.0, 126.0, 135.0, 144.0], [171.0, 180.0, 189.0, 198.0], [225.0, 234.0, 243.0, 252.0]]
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .geometry import Geometry, pad_dilate, prod
from .memory import Budget
from .parallel import run_tasks, small
from .scratch import lease

__all__ = ["applies", "forward", "matrices", "TILES", "block"]

#: output samples per tile and axis that the engine implements (the variants the Winograd bound covers)
TILES = (2, 4)
#: about this many tiles per GEMM of one block of samples (the block size is fixed by the shapes)
TARGET_TILES = 512


def applies(geo: Geometry, w_shape) -> bool:
    """Winograd's domain here: stride 1, dilation 1, one group, a 3-tap kernel on every spatial axis."""
    K = tuple(w_shape[2:])
    return (len(K) >= 1 and all(k == 3 for k in K) and all(s == 1 for s in geo.stride)
            and all(d == 1 for d in geo.dilation) and geo.groups == 1)


@functools.lru_cache(maxsize=None)
def _matrices(m: int, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ..tolerance import winograd_transform

    t = winograd_transform(m, 3)
    # each entry rounded once to the compute dtype (exact for m = 2)
    at, g, bt = (np.array([[float(v) for v in row] for row in M], dtype=dtype) for M in (t.AT, t.G, t.BT))
    return at, g, bt


def matrices(m: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A^T`` (m, alpha), ``G`` (alpha, 3), ``B^T`` (alpha, alpha) of ``F(m, 3)`` in ``dtype`` (read-only, cached).

    >>> [r.tolist() for r in matrices(2, np.float64)[2]]
    [[-1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, -1.0, 0.0, 1.0]]
    """
    out = _matrices(int(m), np.dtype(dtype).str)
    for a in out:
        a.flags.writeable = False
    return out


def _along(M: np.ndarray, a: np.ndarray, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    """``out[..., i, ...] = sum_j M[i, j] a[..., j, ...]`` on leading ``axis`` of a C-contiguous ``a`` (one GEMM).

    ``out``: a C-contiguous buffer of at least that many elements (not overlapping ``a``), or ``None`` for a new array.
    """
    lead = prod(a.shape[:axis])
    rest = a.shape[axis + 1 :]
    shape = (lead, M.shape[0], prod(rest))
    res = np.matmul(M, a.reshape(lead, a.shape[axis], prod(rest)), out=None if out is None else _head(out, shape))
    return res.reshape(*a.shape[:axis], M.shape[0], *rest)


def _head(buf: np.ndarray, shape) -> np.ndarray:
    """The first ``prod(shape)`` elements of the flat buffer ``buf``, as an array of ``shape``."""
    return buf[: prod(shape)].reshape(shape)


def kernel_transform(w: np.ndarray, m: int) -> np.ndarray:
    """``U`` of shape ``(alpha**d, M, C)``: ``G`` applied along each kernel axis, transform points first."""
    AT, G, BT = matrices(m, w.dtype)
    M, C = w.shape[:2]
    nsp = w.ndim - 2
    # (K0, ..., Kd-1, M, C) with the kernel axes leading, then one stage per axis
    u = np.ascontiguousarray(w.transpose(*range(2, 2 + nsp), 0, 1))
    for ax in range(nsp):
        u = _along(G, np.ascontiguousarray(u), ax)
    return np.ascontiguousarray(u).reshape(-1, M, C)


def block(N: int, tiles_per_sample: int) -> int:
    """Samples per task: about :data:`TARGET_TILES` tiles, blocks of equal size (fixed by the shapes)."""
    nblocks = -(-N * tiles_per_sample // TARGET_TILES)
    return max(1, -(-N // max(nblocks, 1)))


def _sizes(P, m: int):
    """Output ``O``, tiles ``T`` and tiled padded extent ``Pe = T*m + 2`` per axis."""
    O = tuple(p - 2 for p in P)
    T = tuple(-(-o // m) for o in O)
    return O, T, tuple(t * m + 2 for t in T)


def per_sample_bytes(C: int, M: int, P, m: int, itemsize: int) -> int:
    """Bytes one sample holds in a task: tiled input, two input-transform stages, the products, two output stages."""
    O, T, Pe = _sizes(P, m)
    nsp = len(P)
    A, Tp = (m + 2) ** nsp, prod(T)
    return itemsize * (C * prod(Pe) + 2 * A * C * Tp + 2 * A * M * Tp + M * prod(t * m for t in T))


def forward(x: np.ndarray, w: np.ndarray, geo: Geometry, budget: Budget, m: int = 4) -> np.ndarray:
    """``y`` of a stride-1, undilated convolution with a ``3 x ... x 3`` kernel (no bias), by ``F(m, 3)``.

    ``x`` and ``w`` are of the compute dtype; ``budget`` holds ``y`` already.
    """
    if m not in TILES:
        raise ValueError(f"m={m!r}: the engine implements F(m, 3) for m in {TILES}")
    N, C = x.shape[:2]
    M = w.shape[0]
    nsp = x.ndim - 2
    it = x.dtype.itemsize
    P = geo.padded_spatial(x.shape[2:])
    O, T, Pe = _sizes(P, m)
    y = np.empty((N, M, *O), dtype=x.dtype)
    if y.size == 0:
        return y
    if C == 0:
        y[...] = 0
        return y
    alpha = m + 2
    A, Tp = alpha**nsp, prod(T)
    AT, _, BT = matrices(m, x.dtype)
    budget = budget.hold(it * A * M * C, "the transformed kernel of a Winograd conv")
    U = kernel_transform(w, m)  # (A, M, C)
    per_sample = per_sample_bytes(C, M, P, m, it)
    fit = budget.chunks(N, per_sample, what="one batch sample of a Winograd conv")
    size = min(fit, block(N, Tp))
    # the tiled input: padding extended at the end so that every tile is whole (zeros past the input)
    pads = tuple((lo, hi + pe - p) for (lo, hi), p, pe in zip(geo.padding, P, Pe))
    tiles_then_points = tuple(range(2, 2 + nsp))

    def task(r):
        with lease(budget.cap) as take:
            _task(r, take)

    def _task(r, take):
        b = r[1] - r[0]
        xe = np.ascontiguousarray(pad_dilate(x[r[0] : r[1]], pads, geo.input_dilation))  # (b, C, *Pe)
        st = xe.strides
        # d[n, c, *t, *a] = xe[n, c, *(t*m + a)]: overlapping input tiles (a view)
        d = as_strided(xe, (b, C, *T, *(alpha,) * nsp), (*st[:2], *(s * m for s in st[2:]), *st[2:]), writeable=False)
        # (*a, C, b, *T): transform points first, then the GEMM's rows (channels) and columns (tiles)
        # every stage reads one of two buffers and writes the other (each holds the largest stage)
        bufs = [take(A * max(C, M) * b * Tp, x.dtype) for _ in range(2)]
        dt = d.transpose(*range(2 + nsp, 2 + 2 * nsp), 1, 0, *tiles_then_points)
        v = _head(bufs[0], dt.shape)
        np.copyto(v, dt)
        for ax in range(nsp):
            v = _along(BT, v, ax, bufs[(ax + 1) % 2])  # V = B^T d B along each axis
        src = nsp % 2
        prods = np.matmul(U, v.reshape(A, C, b * Tp), out=_head(bufs[1 - src], (A, M, b * Tp)))  # M[xi] = U[xi] @ V[xi]
        out = prods.reshape(*(alpha,) * nsp, M * b * Tp)
        for ax in range(nsp):
            out = _along(AT, out, ax, bufs[(src + ax) % 2])  # y = A^T M A along each axis
        # out[*i, o, n, *t] -> y[n, o, *(t*m + i)], cropped to O
        out = out.reshape(*(m,) * nsp, M, b, *T)
        perm = (nsp + 1, nsp, *(v for ax in range(nsp) for v in (nsp + 2 + ax, ax)))
        if all(t * m == o for t, o in zip(T, O)):
            # whole tiles: straight into y, split as (b, M, T0, m, T1, m, ...)
            np.copyto(y[r[0] : r[1]].reshape(b, M, *(v for t in T for v in (t, m))), out.transpose(perm))
            return
        full = out.transpose(perm).reshape(b, M, *(t * m for t in T))
        y[r[0] : r[1]] = full[(slice(None), slice(None), *(slice(0, o) for o in O))]

    tasks = [(i, min(N, i + size)) for i in range(0, N, size)]
    macs = N * M * C * 3**nsp * prod(O)
    par = 1 if small(macs) else budget.chunks(len(tasks), size * per_sample)
    run_tasks(task, tasks, max_parallel=par)
    return y
