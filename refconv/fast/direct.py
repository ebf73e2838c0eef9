"""Direct (im2col + GEMM) kernels of the general operation and its two gradients.

Layouts (``G`` groups, ``Cg = C_in / G``, ``Mg = C_out / G``, ``Kp = prod(K)``,
``Op = prod(O)``):

* forward, large planes (``Op >= 512``), one sample at a time, in tiles of
  whole output rows (:data:`TILE_BYTES`):
  ``cols[g, (c, k), p] = xp[n, g*Cg + c, p*s + k*d]`` and
  ``y[n, g, m, p] = sum_{(c, k)} w[g, m, (c, k)] * cols[g, (c, k), p]``, one GEMM
  per group writing NCHW directly; the tile buffer is reused (cache-resident).
* small planes of one group whose window rows are long (:func:`channels_last`):
  channels-last ``cols[(n, p), (k, c)] = xp[n, p*s + k*d, c]`` (each window row
  is one contiguous run of ``K[-1] * C``) over a block of samples,
  ``y[(n, p), m] = cols @ w2`` and ``dw2[m, (k, c)] = dy^T @ cols``, one GEMM per
  block; stride-1 input gradients of such layers are their forward identity.
* forward, other small planes: pixel-major ``cols[g, (c, k), (n, p)]`` over a block of
  about ``TARGET_COLUMNS / Op`` samples (equal blocks), one GEMM per group, then
  ``(g, m, n, p) -> (n, g, m, p)``; with stride 1 the taps are flat
  (:func:`_flat_geometry`): each is one contiguous run of the flattened planes.
* input gradient (col2im): ``dcols[n, g, (c, k), p] = sum_m w[g, m, (c, k)] * dy[n, g, m, p]``,
  then for each tap ``k``: ``dxp[n, g*Cg + c, p*s + k*d] += dcols[n, g, c, k, p]``
  (strided slice adds in tap order: no ``np.add.at``, a fixed summation order).
* weight gradient: ``dw[g, m, (c, k)] = sum_{(n, p)} dy[n, g, m, p] * cols[n, g, (c, k), p]``:
  one GEMM per sample (large planes) or per block of samples (small planes),
  partial sums added in sample and block order.
* depthwise (:func:`~refconv.fast.geometry.is_depthwise`: ``Cg == 1``, up to 4
  outputs per group): per-tap accumulation
  ``y[n, g, m, p] += w[g, m, k] * xp[n, g, p*s + k*d]`` in tap order, no im2col
  buffer; with stride 1 on flat taps, each tap's call over a cache-sized block
  of whole samples (or of the channels of one large sample).

Every GEMM runs single-threaded on operands whose shapes are fixed by the
problem (:mod:`refconv.fast.parallel`), and every other sum runs in an order
fixed by the shapes, so results do not depend on the thread count or the run.
Work is chunked over the batch (then over output rows) to keep temporaries
under the memory cap: every kernel takes a :class:`~refconv.fast.memory.Budget`
that already holds its result (the caller's), and holds or plans everything
else it allocates before allocating it.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .dtypes import all_finite
from .geometry import Geometry, is_depthwise, pad_dilate, prod, windows
from .memory import Budget, MemoryCapError, nbytes, ufunc_buffers
from .parallel import run_tasks, single_threaded_blas, small, workers

__all__ = ["forward", "grad_input", "grad_weight"]

#: below this many output pixels per sample the pixel-major layout (one big GEMM per group) is used
PIXEL_MAJOR_BELOW = 512
#: columns of one pixel-major GEMM (about; the blocks of samples are equal, see _block)
TARGET_COLUMNS = 4096
#: extended columns of one flat-tap forward GEMM (stride 1, small planes: its im2col block stays in cache)
FLAT_COLUMNS = 2048
#: columns of one flat-tap input-gradient GEMM (longer runs make its scatter cheaper per element)
FLAT_GRAD_COLUMNS = 8192
#: ... where the padded plane is at most this many times the extended outputs (else per-sample GEMMs on runs)
BLOCK_FLAT_GROWTH = 2
#: below this many output pixels per sample, stride-1 input gradients scatter on flat taps
FLAT_GRAD_BELOW = 2048
#: bytes of one per-sample im2col tile (whole rows of output axis 0)
TILE_BYTES = 4 << 20
#: bytes of the im2col columns of the few whole samples one copy and one batched GEMM call take (cache-sized)
COLS_BLOCK_BYTES = 512 << 10
#: bytes of one block of the depthwise forward's per-tap ufunc calls: whole samples, or channels of one
#: sample (long calls: two threads whose short calls hand the GIL to each other contend)
DEPTHWISE_BLOCK_BYTES = 2 << 20
#: bytes of work of one task of the depthwise kernels (samples per task)
DEPTHWISE_TASK_BYTES = 4 << 20
#: padded samples at least this large are padded one at a time into a reused buffer
PAD_ONE_SAMPLE_BYTES = 128 << 10
#: kernels of at most this many taps have their flat tap offsets cached per geometry (:func:`_flat_geometry`)
CACHED_TAPS = 1024
#: bytes per kernel tap of the flat tap offsets (:func:`_flat_geometry`): the int64 array and its construction
OFFSET_BYTES_PER_TAP = 16
#: small planes of one group whose last kernel axis times the channels is at least this long: channels-last
#: im2col (each window row of ``K[-1] * C`` elements is one contiguous run; see :func:`channels_last`)
CHANNELS_LAST_RUN = 16


def channels_last(geo: Geometry, C: int, K, Op: int) -> bool:
    """Whether the forward pass takes the channels-last layout: small planes (pixel-major), one group,
    dilation 1 on the last axis, no input dilation, padding >= 0, runs of ``K[-1] * C >= CHANNELS_LAST_RUN``."""
    return (Op < PIXEL_MAJOR_BELOW and geo.groups == 1 and geo.dilation[-1] == 1 and K[-1] * C >= CHANNELS_LAST_RUN
            and _pads_in_place(geo))


def per_tap(Cg: int, Mg: int, Kp: int) -> bool:
    """The per-tap depthwise kernels apply: a depthwise layer with more than one tap."""
    return is_depthwise(Cg, Mg) and Kp > 1


def _weight_copy(w: np.ndarray) -> int:
    """Bytes of the copy ``w.reshape(...)`` makes (a flipped or transposed view is not contiguous)."""
    return 0 if w.flags.c_contiguous else w.nbytes


def _row_span(geo: Geometry, r0: int, r1: int, kernel_spatial) -> tuple[int, int, int]:
    """First ``xp`` row, number of rows read by output rows ``[r0, r1)`` of axis 0, and ``lo``."""
    s0, d0 = geo.stride[0], geo.dilation[0]
    (lo, hi) = geo.padding[0]
    # rows r0..r1-1 read xp rows [r0*s0, (r1-1)*s0 + d0*(K0-1) + 1)
    first = r0 * s0
    return first, (r1 - 1 - r0) * s0 + d0 * (kernel_spatial[0] - 1) + 1, lo


def _xp_chunk(x: np.ndarray, geo: Geometry, kernel_spatial, r0: int | None = None, r1: int | None = None):
    """Padded, dilated input of a batch chunk, cropped to the rows ``[r0, r1)`` of output axis 0 read."""
    if r0 is None:
        return pad_dilate(x, geo.padding, geo.input_dilation)
    assert r1 is not None  # r0 and r1 come together
    first, length, lo = _row_span(geo, r0, r1, kernel_spatial)
    a0 = geo.input_dilation[0]
    n0 = x.shape[2]
    D0 = a0 * (n0 - 1) + 1 if n0 > 0 else 0
    pad0 = (lo - first, length - D0 - (lo - first))
    return pad_dilate(x, (pad0, *geo.padding[1:]), geo.input_dilation)


def _interior(geo: Geometry, spatial) -> tuple[slice, ...]:
    """Per spatial axis, where an input of extent ``spatial`` sits in its padded planes (``lo`` to ``lo + n``)."""
    return tuple(slice(lo, lo + n) for (lo, _), n in zip(geo.padding, spatial))


def _pads_in_place(geo: Geometry) -> bool:
    """Whether the padded input is the input written inside zero borders: no input dilation, padding >= 0."""
    return all(a == 1 for a in geo.input_dilation) and all(lo >= 0 and hi >= 0 for lo, hi in geo.padding)


def _xp_copies(x: np.ndarray, geo: Geometry) -> bool:
    """Whether the padded input of a chunk of samples is a new array (else contiguous samples of ``x`` itself)."""
    plain = all(a == 1 for a in geo.input_dilation) and all(lo == 0 and hi == 0 for lo, hi in geo.padding)
    return not (plain and x.flags.c_contiguous)


def _block(N: int, Op: int, columns: int = TARGET_COLUMNS) -> int:
    """Samples per pixel-major block: about ``columns`` columns, blocks of equal size (fixed by the shapes)."""
    nblocks = -(-N * Op // columns)
    return max(1, -(-N // max(nblocks, 1)))


def _par(limit: int, macs: int) -> int:
    """Tasks in flight: ``limit`` (from the memory cap), or 1 for small problems, where threads cost
    more than they save (the partition, and so every bit, is the same either way)."""
    return 1 if small(macs) else limit


def _task_samples(N: int, macs: int) -> int:
    """Samples per task of kernels whose GEMMs are per sample (any split gives the same bits): the whole
    batch for a call too small for threads (:func:`_par`), else about two tasks per worker."""
    return N if _par(2, macs) == 1 else -(-N // (2 * workers()))


def _ranges(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + size)) for i in range(0, n, max(size, 1))]


def _summed(task, tasks, per_task: int, budget: Budget, macs: int) -> np.ndarray:
    """``sum_r task(r)`` added in task order (the first partial result becomes the sum, the caller's result).

    Tasks run in waves of as many as fit next to what is held (``per_task``
    bytes each: temporaries and the partial result); each wave's partial
    results are added before the next starts, so at most one wave is held.
    """
    wave = budget.chunks(len(tasks), per_task)
    total: Any = None  # None until the first partial result
    for i in range(0, len(tasks), wave):
        for part in run_tasks(task, tasks[i : i + wave], max_parallel=_par(wave, macs)):
            if total is None:
                total = part
            else:
                total += part
    return total


def forward(x: np.ndarray, w: np.ndarray, geo: Geometry, budget: Budget) -> np.ndarray:
    """``y`` of the general operation (no bias); ``x`` and ``w`` already of the compute dtype.

    ``budget`` holds ``y`` already.

    Tasks are sample ranges.  Per-sample layout: every GEMM is one sample's, so
    the range sizes do not change any bit.  Pixel-major layout: a GEMM covers a
    block of about ``TARGET_COLUMNS / prod(O)`` samples (:func:`_block`), a size
    fixed by the shapes (smaller only when the memory cap forces it).
    """
    N, C = x.shape[:2]
    M = w.shape[0]
    K = w.shape[2:]
    O = geo.output_spatial(x.shape[2:], K)
    G = geo.groups
    Cg, Mg = C // G, M // G
    Kp, Op = prod(K), prod(O)
    it = x.dtype.itemsize
    y = np.empty((N, M, *O), dtype=x.dtype)
    if y.size == 0:
        return y
    if Cg * Kp == 0:
        y[...] = 0
        return y
    if per_tap(Cg, Mg, Kp):
        try:
            return _depthwise_forward(x, w, geo, O, y, budget)
        except MemoryCapError:
            pass  # one sample of the per-tap kernel is over the cap: the im2col kernel chunks output rows
    P = geo.padded_spatial(x.shape[2:])
    if channels_last(geo, C, K, Op) and (C * prod(P) + Op * Kp * C + Op * M + Kp * C * M) * it <= budget.left:
        # (one sample of it fits next to the weight copy: else the kernels below chunk output rows)
        return _forward_channels_last(x, w, geo, P, O, y, budget)
    budget = budget.hold(_weight_copy(w), "the reshaped weight of conv")
    wg = w.reshape(G, Mg, Cg * Kp)
    xp_bytes = C * prod(P) * it
    col_bytes = C * Kp * Op * it
    pixel_major = Op < PIXEL_MAJOR_BELOW
    if pixel_major and all(st == 1 for st in geo.stride):
        ext = _flat_extent(P, O)[0]  # flat taps: E >= prod(O) columns per sample
        col_bytes = C * Kp * ext * it
        # one task's tap offsets count as one sample's more
        per_sample = xp_bytes + col_bytes + M * ext * it + OFFSET_BYTES_PER_TAP * Kp
    elif pixel_major:
        per_sample = xp_bytes + col_bytes + M * Op * it
    else:
        # one im2col tile of whole output rows at a time, and its GEMM's output when the tile is not the plane
        # (see _forward_chunk)
        row_cols = C * Kp * (Op // O[0]) * it
        tile_rows = max(1, min(O[0], TILE_BYTES // row_cols))
        per_sample = xp_bytes + tile_rows * row_cols + (M * (Op // O[0]) * it * tile_rows if tile_rows < O[0] else 0)
    if per_sample <= budget.left:
        fit = budget.chunks(N, per_sample, what="one batch sample of conv")
        if pixel_major and all(st == 1 for st in geo.stride):
            size = min(fit, _block(N, ext, FLAT_COLUMNS))  # blocks of about FLAT_COLUMNS extended columns
        else:
            size = min(fit, _block(N, Op) if pixel_major else _task_samples(N, N * M * Cg * Kp * Op))
        tasks = _ranges(N, size)

        # large padded samples: pad one at a time into a reused buffer (small ones: per chunk)
        plain = _pads_in_place(geo) and any(lo or hi for lo, hi in geo.padding) and xp_bytes >= PAD_ONE_SAMPLE_BYTES

        def task(r):
            if pixel_major or not plain:
                xp = _xp_chunk(x[r[0] : r[1]], geo, K)
                _forward_chunk(xp, wg, geo, K, O, y[r[0] : r[1]], pixel_major)
                return
            # large planes: one padded sample at a time in a reused buffer whose border stays zero,
            # so the im2col tiles read it from cache
            buf = np.zeros((1, C, *P), dtype=x.dtype)
            inner = buf[(0, slice(None), *_interior(geo, x.shape[2:]))]
            for n in range(r[0], r[1]):
                inner[...] = x[n]
                _forward_chunk(buf, wg, geo, K, O, y[n : n + 1], False)

        run_tasks(task, tasks, max_parallel=_par(budget.chunks(len(tasks), size * per_sample), N * M * Cg * Kp * Op))
        return y
    # one sample is too big: chunk output rows of axis 0 (one sample at a time); per row: its im2col
    # columns, the chunk's output and GEMM output, and the xp rows it adds
    row_bytes = (C * Kp * (Op // O[0]) + 2 * M * (Op // O[0])) * it
    xp_row_bytes = C * prod(P[1:]) * it * max(geo.stride[0], 1)
    fixed = C * prod(P[1:]) * it * geo.dilation[0] * (K[0] - 1) + C * prod(P[1:]) * it
    rows = budget.chunks(O[0], row_bytes + xp_row_bytes, fixed=fixed, what="one output row of one sample of conv")
    with single_threaded_blas():
        for n in range(N):
            for r0 in range(0, O[0], rows):
                r1 = min(O[0], r0 + rows)
                xp = _xp_chunk(x[n : n + 1], geo, K, r0, r1)
                tmp = np.empty((1, M, r1 - r0, *O[1:]), dtype=x.dtype)
                _forward_chunk(xp, wg, geo, K, (r1 - r0, *O[1:]), tmp, False)
                y[n : n + 1, :, r0:r1] = tmp
    return y


def _forward_channels_last(x, w, geo: Geometry, P, O, y, budget: Budget) -> np.ndarray:
    """Small planes, one group: ``cols[(n, p), (k, c)] = xp[n, p*s + k*d, c]`` from a channels-last padded
    copy (rows of ``K[-1] * C`` contiguous elements), ``y[(n, p), m] = cols @ w2`` with
    ``w2[(k, c), m] = w[m, c, k]``, one GEMM per block of samples (:func:`_block`), then ``(n, p, m) -> (n, m, p)``.
    """
    N, C = x.shape[:2]
    M = w.shape[0]
    K = w.shape[2:]
    Kp, Op = prod(K), prod(O)
    it = x.dtype.itemsize
    budget = budget.hold(nbytes((Kp * C, M), x.dtype), "the channels-last weight of conv")
    # w2[(k..., c), m] = w[m, c, k...]
    w2 = np.ascontiguousarray(w.transpose(*range(2, w.ndim), 1, 0)).reshape(Kp * C, M)
    # per sample: the channels-last padded input, its im2col rows, the GEMM's output
    per_sample = (C * prod(P) + Op * Kp * C + Op * M) * it
    fit = budget.chunks(N, per_sample, what="one batch sample of conv")
    size = min(fit, _block(N, Op))

    def task(r):
        b = r[1] - r[0]
        cols = _channels_last_cols(x[r[0] : r[1]], geo, K, P, O)
        out = np.matmul(cols.reshape(b * Op, Kp * C), w2)  # one GEMM per block: (b*Op, M)
        y[r[0] : r[1]].reshape(b, M, Op)[...] = out.reshape(b, Op, M).transpose(0, 2, 1)

    tasks = _ranges(N, size)
    run_tasks(task, tasks, max_parallel=_par(budget.chunks(len(tasks), size * per_sample), N * M * C * Kp * Op))
    return y


def _channels_last_cols(x, geo: Geometry, K, P, O) -> np.ndarray:
    """``cols[n, *p, *k[:-1], (k[-1], c)] = xp[n, *(p*s + k*d), c]`` of a chunk ``x`` (a new array)."""
    b, C = x.shape[:2]
    nsp = len(K)
    inner = _interior(geo, x.shape[2:])
    xp = np.zeros((b, *P, C), dtype=x.dtype)
    xp[(slice(None), *inner, slice(None))] = x.transpose(0, *range(2, x.ndim), 1)  # (n, *p, c)
    st = xp.strides
    sp = st[1 : 1 + nsp]
    # the last kernel axis and the channels are one contiguous run of K[-1]*C elements
    shape = (b, *O, *K[:-1], K[-1] * C)
    strides = (st[0], *(t * s for t, s in zip(sp, geo.stride)), *(t * d for t, d in zip(sp[:-1], geo.dilation[:-1])), st[-1])
    cols = np.empty(shape, dtype=x.dtype)
    np.copyto(cols, as_strided(xp, shape, strides, writeable=False))
    return cols


def _grad_weight_channels_last(x, dy, geo: Geometry, K, P, budget: Budget) -> np.ndarray:
    """Small planes, one group: ``dw2[m, (k, c)] = sum_{(n, p)} dy[n, m, p] * cols[(n, p), (k, c)]``
    (:func:`_channels_last_cols`), one GEMM per block of samples (:func:`_block`), partial sums added in
    block order; then ``dw[m, c, k] = dw2[m, (k, c)]``."""
    N, C = x.shape[:2]
    M = dy.shape[1]
    O = dy.shape[2:]
    Kp, Op = prod(K), prod(O)
    it = x.dtype.itemsize
    # per sample: the padded input, its im2col rows, dy in (n, p, m) order; per task: two partial sums
    per_sample = (C * prod(P) + Op * Kp * C + Op * M) * it
    part_bytes = 2 * M * Kp * C * it
    fit = budget.chunks(N, per_sample, fixed=part_bytes, what="one batch sample of conv_grad_weight")
    size = min(fit, _block(N, Op))

    def task(r):
        b = r[1] - r[0]
        cols = _channels_last_cols(x[r[0] : r[1]], geo, K, P, O).reshape(b * Op, Kp * C)
        dyt = np.ascontiguousarray(dy[r[0] : r[1]].reshape(b, M, Op).transpose(0, 2, 1)).reshape(b * Op, M)
        return np.matmul(dyt.T, cols)  # (M, Kp*C)

    dw2 = _summed(task, _ranges(N, size), size * per_sample + part_bytes, budget, N * M * C * Kp * Op)
    # dw[m, c, *k] = dw2[m, *k, c]
    return np.ascontiguousarray(dw2.reshape(M, *K, C).transpose(0, len(K) + 1, *range(1, len(K) + 1)))


def _forward_chunk(xp, wg, geo: Geometry, K, O, out, pixel_major: bool) -> None:
    nb, C = xp.shape[:2]
    G, Mg, CgKp = wg.shape
    Cg = C // G
    nsp = len(K)
    Op = prod(O)
    sp_o = tuple(range(3, 3 + nsp))
    sp_k = tuple(range(3 + nsp, 3 + 2 * nsp))
    if pixel_major and all(st == 1 for st in geo.stride):
        # stride 1, small planes: flat taps (see _flat_geometry), each a contiguous run of E elements:
        # cols[g, c, t, n, l] = xp_flat[n, g*Cg + c, off_t + l], y[n, g, m, p] = ye[g, m, n, flat(p)]
        E, pst = _flat_extent(xp.shape[2:], O)
        xs = np.ascontiguousarray(xp)
        it = xs.dtype.itemsize
        L = prod(xp.shape[2:])
        # cols[g, c, *k, n, l] = xp_flat[n, g*Cg + c, sum k_i*d_i*Pst_i + l]: every tap in one copy
        # (the last tap's run ends at sum ((K_i - 1)*d_i + O_i - 1)*Pst_i < L: inside the plane)
        shape = (G, Cg, *K, nb, E)
        strides = (Cg * L * it, L * it, *(d * st * it for d, st in zip(geo.dilation, pst)), C * L * it, it)
        cols = np.empty(shape, dtype=xp.dtype)
        np.copyto(cols, as_strided(xs, shape, strides, writeable=False))
        ye = np.matmul(wg, cols.reshape(G, CgKp, nb * E)).reshape(G, Mg, nb, E)
        out.reshape(nb, G, Mg, *O)[...] = _ext_view(ye, O, pst).transpose(2, 0, 1, *range(3, 3 + nsp))
        return
    v = windows(xp, K, geo.stride, geo.dilation, O).reshape(nb, G, Cg, *O, *K)  # splitting C is a view
    if pixel_major:
        # cols[g, c, *k, n, *p]
        cols = np.empty((G, Cg, *K, nb, *O), dtype=xp.dtype)
        np.copyto(cols, v.transpose(1, 2, *sp_k, 0, *sp_o))
        yt = np.matmul(wg, cols.reshape(G, CgKp, nb * Op))  # (G, Mg, nb*Op)
        out.reshape(nb, G, Mg, Op)[...] = yt.reshape(G, Mg, nb, Op).transpose(2, 0, 1, 3)
    else:
        # one sample, and a tile of output rows of axis 0, at a time: the im2col tile is reused and stays
        # in cache; the tile height is fixed by the shapes (TILE_BYTES), so the GEMMs are too
        rest = Op // O[0]
        rows = max(1, min(O[0], TILE_BYTES // max(C * prod(K) * rest * xp.dtype.itemsize, 1)))
        if rows == O[0] and nb > 1:
            # whole planes: the columns of a few samples at a time (one copy and one batched call,
            # still one GEMM per sample, so the bits do not depend on how many)
            sub = max(1, min(nb, COLS_BLOCK_BYTES // max(CgKp * G * Op * xp.dtype.itemsize, 1)))
            buf = np.empty((sub, G, Cg, *K, *O), dtype=xp.dtype)
            perm_n = (0, 1, 2, *range(3 + nsp, 3 + 2 * nsp), *range(3, 3 + nsp))  # (n, G, Cg, *O, *K) -> (n, G, Cg, *K, *O)
            for n0 in range(0, nb, sub):
                n1 = min(nb, n0 + sub)
                cols = buf[: n1 - n0]
                np.copyto(cols, v[n0:n1].transpose(perm_n))
                # y[n, g, m, p] = sum_{(c, k)} w[g, m, (c, k)] * cols[n, g, (c, k), p]
                np.matmul(wg, cols.reshape(n1 - n0, G, CgKp, Op), out=out[n0:n1].reshape(n1 - n0, G, Mg, Op))
            return
        buf = np.empty(C * prod(K) * rows * rest, dtype=xp.dtype)
        perm = (0, 1, *range(2 + nsp, 2 + 2 * nsp), *range(2, 2 + nsp))  # (G, Cg, *O, *K) -> (G, Cg, *K, *O)
        for n in range(nb):
            vn = v[n]
            for r0 in range(0, O[0], rows):
                r1 = min(O[0], r0 + rows)
                cols = buf[: CgKp * G * (r1 - r0) * rest].reshape(G, Cg, *K, r1 - r0, *O[1:])
                np.copyto(cols, vn[:, :, r0:r1].transpose(perm))
                if rows == O[0]:
                    np.matmul(wg, cols.reshape(G, CgKp, Op), out=out[n].reshape(G, Mg, Op))
                else:
                    part = np.matmul(wg, cols.reshape(G, CgKp, (r1 - r0) * rest))
                    out[n].reshape(G, Mg, O[0], rest)[:, :, r0:r1] = part.reshape(G, Mg, r1 - r0, rest)


def _flat_geometry(P, K, dilation, O):
    """Tap offsets and extended length of the flattened padded planes (stride 1).

    With ``Pst`` the row-major strides of a plane of shape ``P``, output ``p``
    sits at flat index ``sum p_i*Pst_i`` and tap ``k`` reads ``xp_flat[off_k + that]``,
    ``off_k = sum k_i*d_i*Pst_i``.  Computing every flat index up to
    ``E = sum (O_i - 1)*Pst_i + 1`` turns each tap into one contiguous slice (the
    extra indices are discarded, or zero where they are scattered).  The
    offsets are read-only; those of kernels of at most :data:`CACHED_TAPS` taps
    are computed once per geometry.
    """
    key = (tuple(P), tuple(K), tuple(dilation), tuple(O))
    if prod(K) <= CACHED_TAPS:
        return _flat_geometry_cached(*key)
    return _flat_geometry_of(*key)


def _flat_geometry_of(P, K, dilation, O):
    E, pst = _flat_extent(P, O)
    # offsets in row-major tap order, as one int64 array (a kernel may have very many taps:
    # OFFSET_BYTES_PER_TAP covers it and its construction)
    offs = np.zeros(1, dtype=np.int64)
    for k, d, st in zip(K, dilation, pst):
        offs = (offs[:, None] + np.arange(k, dtype=np.int64) * (d * st)).reshape(-1)
    offs.flags.writeable = False
    return offs, E, tuple(pst)


# a training loop repeats a few geometries (small kernels only: the cache keeps what it holds)
_flat_geometry_cached = functools.lru_cache(maxsize=64)(_flat_geometry_of)


def _flat_extent(P, O) -> tuple[int, list[int]]:
    """``E = sum (O_i - 1)*Pst_i + 1`` and the row-major strides ``Pst`` of a plane of shape ``P``."""
    pst = [1] * len(P)
    for i in range(len(P) - 2, -1, -1):
        pst[i] = pst[i + 1] * P[i + 1]
    return sum((o - 1) * st for o, st in zip(O, pst)) + 1, pst


def _ext_view(ext: np.ndarray, O, pst) -> np.ndarray:
    """View ``(..., *O)`` of an extended flat array: ``v[..., p] = ext[..., sum p_i*Pst_i]``."""
    it = ext.strides[-1]
    return as_strided(ext, shape=(*ext.shape[:-1], *O), strides=(*ext.strides[:-1], *(st * it for st in pst)))


def _depthwise_forward(x, w, geo: Geometry, O, y, budget: Budget) -> np.ndarray:
    """``y[n, g, m, p] = sum_k w[g, m, k] * xp[n, g, p*s + k*d]``, taps added in row-major order.

    Stride 1: each tap is one contiguous slice of the flattened padded planes
    (:func:`_flat_geometry`), long SIMD loops, over blocks of
    :data:`DEPTHWISE_BLOCK_BYTES` padded into a reused buffer; otherwise
    strided tap views.
    """
    N, C = x.shape[:2]
    M = w.shape[0]
    K = w.shape[2:]
    G = geo.groups
    Mg = M // G
    it = x.dtype.itemsize
    P = geo.padded_spatial(x.shape[2:])
    Kp = prod(K)
    budget = budget.hold(_weight_copy(w), "the reshaped weight of a depthwise conv")
    wk = w.reshape(G, Mg, Kp)
    # one sample's padded planes must fit before any offset into them is computed (they may exceed int64)
    budget.chunks(N, C * prod(P) * it, what="the padded planes of one batch sample of a depthwise conv")
    flat = all(s == 1 for s in geo.stride)
    if flat:
        budget = budget.hold(OFFSET_BYTES_PER_TAP * Kp, "the tap offsets of a depthwise conv")
        offs, E, pst = _flat_geometry(P, K, geo.dilation, O)
        # the ufuncs read channel blocks of strided planes: numpy buffers their operands
        per_sample = (C * prod(P) + 2 * M * E) * it + ufunc_buffers(M * E, it)
    else:
        # strided taps: numpy buffers the ufunc operands (at most this much per sample of the task)
        per_sample = (C * prod(P) + 2 * M * prod(O)) * it + ufunc_buffers(M * prod(O), it)
    fit = budget.chunks(N, per_sample, what="one batch sample of a depthwise conv")
    size = max(1, min(fit, DEPTHWISE_TASK_BYTES // per_sample + 1))

    # padding >= 0 and no input dilation: each block is padded into a reused buffer whose border stays zero
    plain = _pads_in_place(geo)
    inner = _interior(geo, x.shape[2:])

    def flat_task(r):
        b = r[1] - r[0]
        # blocks of whole samples whose planes stay in cache across the taps (one ufunc call covers the
        # block: fewer, longer calls); a sample larger than a block: blocks of its channels
        sb = max(1, min(b, DEPTHWISE_BLOCK_BYTES // (M * E * it)))
        cb = G if sb > 1 else max(1, min(G, DEPTHWISE_BLOCK_BYTES // (Mg * E * it)))
        buf = np.zeros((sb, C, *P), dtype=x.dtype) if plain else None
        out = np.empty((sb, cb, Mg, E), dtype=x.dtype)
        tmp = np.empty_like(out)
        for n0 in range(r[0], r[1], sb):
            n1 = min(r[1], n0 + sb)
            if buf is not None:
                xp = buf[: n1 - n0]
                xp[(slice(None), slice(None), *inner)] = x[n0:n1]
            else:
                xp = np.ascontiguousarray(_xp_chunk(x[n0:n1], geo, K))
            xf = xp.reshape(n1 - n0, G, 1, -1)
            yn = y[n0:n1].reshape(n1 - n0, G, Mg, *O)
            for g0 in range(0, G, cb):
                g1 = min(G, g0 + cb)
                o, tm = out[: n1 - n0, : g1 - g0], tmp[: n1 - n0, : g1 - g0]
                for t, off in enumerate(offs):
                    wt = wk[g0:g1, :, t, None]  # (gb, Mg, 1)
                    if t == 0:
                        np.multiply(xf[:, g0:g1, :, off : off + E], wt, out=o)
                    else:
                        np.multiply(xf[:, g0:g1, :, off : off + E], wt, out=tm)
                        np.add(o, tm, out=o)
                yn[:, g0:g1] = _ext_view(o, O, pst)

    def task(r):
        if flat:
            flat_task(r)
            return
        xp = np.ascontiguousarray(_xp_chunk(x[r[0] : r[1]], geo, K))
        v = windows(xp, K, geo.stride, geo.dilation, O)  # (nb, C, *O, *K)
        out = y[r[0] : r[1]].reshape(-1, G, Mg, *O)
        tmp = np.empty_like(out)
        bshape = (1, G, Mg) + (1,) * len(O)
        for t, k in enumerate(itertools.product(*(range(kk) for kk in K))):
            tap = v[(Ellipsis, *k)][:, :, None]  # (nb, G, 1, *O)
            wt = wk[:, :, t].reshape(bshape)
            if t == 0:
                np.multiply(tap, wt, out=out)
            else:
                np.multiply(tap, wt, out=tmp)
                np.add(out, tmp, out=out)

    tasks = _ranges(N, size)
    run_tasks(task, tasks, max_parallel=_par(budget.chunks(len(tasks), size * per_sample), N * M * Kp * prod(O)))
    return y


def _depthwise_grad_input(dy, w, geo: Geometry, input_spatial, budget: Budget) -> np.ndarray:
    """Stride 1, ``Cg == 1``: ``dxp_flat[n, g, off_k + l] += sum_m w[g, m, k] * dy_ext[n, g, m, l]``, taps in order."""
    N, M = dy.shape[:2]
    K = w.shape[2:]
    G = geo.groups
    Mg = M // G
    O = dy.shape[2:]
    P = geo.padded_spatial(input_spatial)
    it = dy.dtype.itemsize
    budget = budget.hold(_weight_copy(w) + OFFSET_BYTES_PER_TAP * prod(K), "the reshaped weight and tap offsets of conv_grad_input")
    offs, E, pst = _flat_geometry(P, K, geo.dilation, O)
    wk = w.reshape(G, Mg, prod(K))
    # ext[:, :, m] is strided: numpy buffers the ufunc operands
    per_sample = (G * prod(P) + M * E + 2 * G * E) * it + ufunc_buffers(G * E, it)
    fit = budget.chunks(N, per_sample, what="one batch sample of conv_grad_input")
    size = max(1, min(fit, DEPTHWISE_TASK_BYTES // per_sample + 1))
    dx = np.empty((N, G, *input_spatial), dtype=dy.dtype)
    crop = (slice(None), slice(None), *_interior(geo, input_spatial))

    def task(r):
        b = r[1] - r[0]
        ext = np.zeros((b, G, Mg, E), dtype=dy.dtype)  # zero at the discarded flat indices
        _ext_view(ext, O, pst)[...] = dy[r[0] : r[1]].reshape(b, G, Mg, *O)
        dxp = np.zeros((b, G, prod(P)), dtype=dy.dtype)
        c = np.empty((b, G, E), dtype=dy.dtype)
        tmp = np.empty_like(c)
        for t, off in enumerate(offs):
            # c[n, g, l] = sum_m w[g, m, k] * dy_ext[n, g, m, l], m in order
            np.multiply(ext[:, :, 0], wk[None, :, 0, t, None], out=c)
            for m in range(1, Mg):
                np.multiply(ext[:, :, m], wk[None, :, m, t, None], out=tmp)
                c += tmp
            dxp[:, :, off : off + E] += c
        dx[r[0] : r[1]] = dxp.reshape(b, G, *P)[crop]

    tasks = _ranges(N, size)
    run_tasks(task, tasks, max_parallel=_par(budget.chunks(len(tasks), size * per_sample), N * M * prod(K) * prod(O)))
    return dx


def _depthwise_grad_weight(x, dy, geo: Geometry, K, budget: Budget) -> np.ndarray:
    """Stride 1, ``Cg == 1``: ``dw[g, m, k] = sum_{n, l} dy_ext[n, g, m, l] * xp_flat[n, g, off_k + l]``.

    Partial sums over fixed blocks of samples (a partition fixed by the shapes), added in block order.
    """
    N, C = x.shape[:2]
    M = dy.shape[1]
    G = geo.groups
    Mg = M // G
    O = dy.shape[2:]
    P = geo.padded_spatial(x.shape[2:])
    it = x.dtype.itemsize
    budget = budget.hold(OFFSET_BYTES_PER_TAP * prod(K), "the tap offsets of conv_grad_weight")
    offs, E, pst = _flat_geometry(P, K, geo.dilation, O)
    # samples per block, fixed by the shapes: about DEPTHWISE_TASK_BYTES of padded input and extended dy
    block = -(-DEPTHWISE_TASK_BYTES // ((C * prod(P) + M * E) * it))
    # memory per sample: the padded input (unless it is x itself) and the extended dy (einsum does not buffer)
    per_sample = ((C * prod(P) if _xp_copies(x, geo) else 0) + M * E) * it
    part_bytes = M * len(offs) * it  # one task's partial result
    fit = budget.chunks(N, per_sample, fixed=part_bytes, what="one batch sample of conv_grad_weight")
    size = max(1, min(fit, block))

    def task(r):
        b = r[1] - r[0]
        xf = np.ascontiguousarray(_xp_chunk(x[r[0] : r[1]], geo, K)).reshape(b, G, -1)
        ext = np.zeros((b, G, Mg, E), dtype=x.dtype)
        _ext_view(ext, O, pst)[...] = dy[r[0] : r[1]].reshape(b, G, Mg, *O)
        part = np.empty((G, Mg, len(offs)), dtype=x.dtype)
        for t, off in enumerate(offs):
            part[:, :, t] = np.einsum("ngml,ngl->gm", ext, xf[:, :, off : off + E])
        return part

    dw = _summed(task, _ranges(N, size), size * per_sample + part_bytes, budget, N * M * len(offs) * E)
    return dw.reshape(M, 1, *K)


def grad_input(dy: np.ndarray, w: np.ndarray, geo: Geometry, input_spatial, budget: Budget, *,
               finite_weight: bool = True) -> np.ndarray:
    """``dx`` of the general operation with ``input_dilation == 1`` (col2im scatter, one GEMM per sample).

    ``budget`` holds ``dx`` already.  The flat-tap and per-tap kernels multiply
    the weight by the zeros of ``dy``'s extended layout, which is exact only
    for a finite weight (``inf * 0`` is NaN, a term the definition does not
    have): with ``finite_weight=False`` the scatter multiplies real ``dy`` only.
    """
    N, M = dy.shape[:2]
    K = w.shape[2:]
    G = geo.groups
    Cg = w.shape[1]
    C = Cg * G
    Mg = M // G
    Kp = prod(K)
    O = dy.shape[2:]
    Op = prod(O)
    it = dy.dtype.itemsize
    if N * C * prod(input_spatial) == 0 or Op == 0:
        return np.zeros((N, C, *input_spatial), dtype=dy.dtype)
    if Op == 1 and _single_window_bytes(dy, w, geo, input_spatial) <= budget.left:
        return _single_window_grad_input(dy, w, geo, input_spatial, budget)
    if per_tap(Cg, Mg, Kp) and all(s == 1 for s in geo.stride) and finite_weight:
        return _depthwise_grad_input(dy, w, geo, input_spatial, budget)
    P = geo.padded_spatial(input_spatial)
    budget = budget.hold(_weight_copy(w), "the reshaped weight of conv_grad_input")
    # dxp and dcols; the scatter adds into strided views: numpy buffers the ufunc operands (at most this much
    # per sample of the step)
    per_sample = (C * prod(P) + C * Kp * Op) * it + ufunc_buffers(C * Op, it)
    fit = budget.chunks(N, per_sample, what="one batch sample of conv_grad_input")
    size = min(fit, _task_samples(N, N * M * Cg * Kp * Op))
    dx = np.zeros((N, C, *input_spatial), dtype=dy.dtype)
    wt = w.reshape(G, Mg, Cg * Kp).transpose(0, 2, 1)  # (G, Cg*Kp, Mg)

    def slices():
        """The ``xp`` positions ``p*s + k*d`` of each tap, in row-major tap order (lazily)."""
        for k in itertools.product(*(range(kk) for kk in K)):
            yield tuple(slice(ki * di, ki * di + (o - 1) * s + 1, s) for ki, di, o, s in zip(k, geo.dilation, O, geo.stride))

    # dx[n, c, i] = dxp[n, c, lo + i] (input dilation 1)
    crop = (slice(None), slice(None), *_interior(geo, input_spatial))

    if all(st == 1 for st in geo.stride) and Op < FLAT_GRAD_BELOW and finite_weight:
        if prod(P) <= BLOCK_FLAT_GROWTH * _flat_extent(P, O)[0]:
            return _flat_grad_input(dy, wt, geo, K, P, C, input_spatial, dx, budget)
        # (a padded plane much longer than the extended outputs: the block GEMM would multiply its zeros)
        return _flat_grad_input_runs(dy, wt, geo, K, P, C, input_spatial, dx, budget)
    # samples per step: the step's dcols and dxp buffers fit a cache-sized tile and are reused
    sub = max(1, min(size, TILE_BYTES // max((C * Kp * Op + C * prod(P)) * it, 1)))

    def task(r):
        dcols = np.empty((sub, G, Cg * Kp, Op), dtype=dy.dtype)
        dxp = np.empty((sub, C, *P), dtype=dy.dtype)
        for n0 in range(r[0], r[1], sub):
            b = min(sub, r[1] - n0)
            np.matmul(wt, dy[n0 : n0 + b].reshape(b, G, Mg, Op), out=dcols[:b])  # one GEMM per sample
            dc = dcols[:b].reshape(b, C, Kp, *O)
            dp = dxp[:b]
            dp.fill(0)
            for t, sl in enumerate(slices()):
                # dxp[n, c, p*s + k*d] += dcols[n, c, k, p]
                dp[(slice(None), slice(None), *sl)] += dc[:, :, t]
            dx[n0 : n0 + b] = dp[crop]

    tasks = _ranges(N, size)
    run_tasks(task, tasks, max_parallel=_par(budget.chunks(len(tasks), size * per_sample), N * M * Cg * Kp * Op))
    return dx


def _single_window_bytes(dy, w, geo: Geometry, input_spatial) -> int:
    """What :func:`_single_window_grad_input` holds: the window gradient, the padded input gradient, the
    reshaped weight."""
    N, C, K = dy.shape[0], w.shape[1] * geo.groups, w.shape[2:]
    return nbytes((N, C, *K), dy.dtype) + nbytes((N, C, *geo.padded_spatial(input_spatial)), dy.dtype) + _weight_copy(w)


def _single_window_grad_input(dy, w, geo: Geometry, input_spatial, budget: Budget) -> np.ndarray:
    """One output position (a window over the whole padded input, LeNet-5's C5): one GEMM per group,
    ``dcols[g, n, (c, k)] = sum_m dy[n, g*Mg + m] * w[g*Mg + m, c, k]``, written to ``dxp[n, g*Cg + c, k*d]``;
    input samples the window does not read get an exact zero."""
    N, M = dy.shape[:2]
    G = geo.groups
    Cg = w.shape[1]
    K = w.shape[2:]
    Mg = M // G
    P = geo.padded_spatial(input_spatial)
    budget = budget.hold(_single_window_bytes(dy, w, geo, input_spatial),
                         "the window gradient and the padded input gradient of conv_grad_input")
    with single_threaded_blas():
        # (G, N, Mg) @ (G, Mg, Cg*Kp) -> (G, N, Cg*Kp): the shapes fix the GEMM
        dcols = np.matmul(dy.reshape(N, G, Mg).transpose(1, 0, 2), w.reshape(G, Mg, Cg * prod(K)))
    dxp = np.zeros((N, G, Cg, *P), dtype=dy.dtype)
    window = tuple(slice(0, d * (k - 1) + 1, d) for k, d in zip(K, geo.dilation))  # xp[k*d], p = 0
    dxp[(slice(None), slice(None), slice(None), *window)] = dcols.reshape(G, N, Cg, *K).swapaxes(0, 1)
    crop = (slice(None), slice(None), *_interior(geo, input_spatial))
    return np.ascontiguousarray(dxp.reshape(N, G * Cg, *P)[crop])


def _flat_grad_input(dy, wt, geo: Geometry, K, P, C, input_spatial, dx, budget: Budget) -> np.ndarray:
    """Stride 1, small planes: col2im on taps flat across a block of samples, one GEMM per block.

    A block of ``b`` samples is one flat row of ``b`` planes of ``L = prod(P)``
    elements per channel: ``ext[g, m, n*L + sum p_i*Pst_i] = dy[n, g*Mg + m, p]``
    (zero elsewhere), ``dcols[g, (c, k), j] = sum_m w^T[g, (c, k), m] * ext[g, m, j]``
    (zero where ``ext`` is), and each tap's scatter is one contiguous run over the
    whole block: ``dxp[g, c, off_k + j] += dcols[g, c, k, j]``, taps in order (the
    run past a plane's last read index adds exact zeros into the next plane).
    Blocks hold about :data:`FLAT_GRAD_COLUMNS` columns (a size fixed by the shapes,
    smaller only when the memory cap forces it), so the GEMMs are too.
    """
    N, M = dy.shape[:2]
    G, CgKp, Mg = wt.shape
    Cg = C // G
    O = dy.shape[2:]
    nsp = len(O)
    it = dy.dtype.itemsize
    budget = budget.hold(OFFSET_BYTES_PER_TAP * prod(K), "the tap offsets of conv_grad_input")
    offs, _, pst = _flat_geometry(P, K, geo.dilation, O)
    L = prod(P)
    # per sample of a block: ext, dcols and dxp; the scatter adds and the copies between layouts run on
    # strided operands (numpy buffers them)
    per_sample = (M * L + C * len(offs) * L + C * L) * it + ufunc_buffers(C * L, it)
    fit = budget.chunks(N, per_sample, what="one batch sample of conv_grad_input")
    block = min(fit, _block(N, L, FLAT_GRAD_COLUMNS))
    crop = _interior(geo, input_spatial)
    dyv = dy.reshape(N, G, Mg, *O)

    def task(r):
        ext = np.zeros((G, Mg, block, *P), dtype=dy.dtype)  # zero outside the output positions, which stay zero
        dcols = np.empty((G, CgKp, block * L), dtype=dy.dtype)
        dxp = np.empty((G, Cg, block * L), dtype=dy.dtype)
        inner = (slice(None), slice(None), slice(None), *(slice(0, o) for o in O))
        for n0 in range(r[0], r[1], block):
            b = min(block, r[1] - n0)
            e = ext[:, :, :b]
            e[inner] = dyv[n0 : n0 + b].transpose(1, 2, 0, *range(3, 3 + nsp))
            dc = np.matmul(wt, e.reshape(G, Mg, b * L), out=dcols[:, :, : b * L]).reshape(G, Cg, len(offs), b * L)
            dp = dxp[:, :, : b * L]
            dp.fill(0)
            for t, off in enumerate(offs):
                # dxp[g, c, off + j] += dcols[g, c, k, j]: the columns past b*L - off are zeros
                dp[:, :, off:] += dc[:, :, t, : b * L - off]
            # dx[n, g*Cg + c, i] = dxp[g, c, n*L + flat(lo + i)]
            dx[n0 : n0 + b].reshape(b, G, Cg, *input_spatial)[...] = (
                dp.reshape(G, Cg, b, *P)[(slice(None), slice(None), slice(None), *crop)].transpose(2, 0, 1, *range(3, 3 + nsp)))

    tasks = _ranges(N, block * max(1, -(-N // (block * 2 * workers()))))  # whole blocks per task
    run_tasks(task, tasks, max_parallel=_par(budget.chunks(len(tasks), (tasks[0][1] - tasks[0][0]) * per_sample),
                                             N * M * CgKp * L))
    return dx


def _flat_grad_input_runs(dy, wt, geo: Geometry, K, P, C, input_spatial, dx, budget: Budget) -> np.ndarray:
    """Stride 1, small planes whose outputs are a small part of the padded plane: col2im on flat taps
    (see :func:`_flat_geometry`), one GEMM per sample.

    ``dy`` goes to the extended flat layout (zeros at the discarded indices), so
    ``dcols = w^T @ dy_ext`` is zero there too and each tap's scatter is one
    contiguous run: ``dxp_flat[n, c, off_k + l] += dcols[n, c, k, l]``, taps in order.
    """
    N, M = dy.shape[:2]
    G, CgKp, Mg = wt.shape
    O = dy.shape[2:]
    it = dy.dtype.itemsize
    budget = budget.hold(OFFSET_BYTES_PER_TAP * prod(K), "the tap offsets of conv_grad_input")
    offs, E, pst = _flat_geometry(P, K, geo.dilation, O)
    Pp = prod(P)
    # the scatter adds into strided runs: numpy buffers the ufunc operands
    per_sample = (M * E + C * len(offs) * E + C * Pp) * it + ufunc_buffers(C * E, it)
    fit = budget.chunks(N, per_sample, what="one batch sample of conv_grad_input")
    size = min(fit, _task_samples(N, N * M * CgKp * E))
    sub = max(1, min(size, TILE_BYTES // per_sample))
    crop = (slice(None), slice(None), *_interior(geo, input_spatial))

    def task(r):
        for n0 in range(r[0], r[1], sub):
            b = min(sub, r[1] - n0)
            ext = np.zeros((b, G, Mg, E), dtype=dy.dtype)
            _ext_view(ext, O, pst)[...] = dy[n0 : n0 + b].reshape(b, G, Mg, *O)
            dc = np.matmul(wt, ext).reshape(b, C, len(offs), E)  # one GEMM per sample
            dxp = np.zeros((b, C, Pp), dtype=dy.dtype)
            for t, off in enumerate(offs):
                dxp[:, :, off : off + E] += dc[:, :, t]
            dx[n0 : n0 + b] = dxp.reshape(b, C, *P)[crop]

    tasks = _ranges(N, size)
    run_tasks(task, tasks, max_parallel=_par(budget.chunks(len(tasks), size * per_sample), N * M * CgKp * E))
    return dx


def grad_weight(x: np.ndarray, dy: np.ndarray, geo: Geometry, kernel_spatial, budget: Budget) -> np.ndarray:
    """``dw[g*Mg + m, c, k] = sum_{n, p} dy[n, g*Mg + m, p] * xp[n, g*Cg + c, p*s + k*d]``.

    Small planes: one GEMM per block of about ``TARGET_COLUMNS / prod(O)``
    samples; large planes: one GEMM per sample, added in sample order within
    the block.  Block sizes are fixed by the shapes (smaller only when the
    memory cap forces it); the block partial sums are added in block order.
    ``budget`` holds ``dw`` already (the first block's partial sum becomes it).
    """
    N, C = x.shape[:2]
    M = dy.shape[1]
    K = tuple(kernel_spatial)
    G = geo.groups
    Cg, Mg = C // G, M // G
    Kp = prod(K)
    O = dy.shape[2:]
    Op = prod(O)
    it = x.dtype.itemsize
    if M * Cg * Kp == 0 or N == 0 or Op == 0:
        return np.zeros((M, Cg, *K), dtype=x.dtype)
    if (per_tap(Cg, Mg, Kp) and all(s == 1 for s in geo.stride) and all(a == 1 for a in geo.input_dilation)
            and all_finite(x)):
        # (its extended dy multiplies every input sample by zeros that stand for no term: inf * 0 is NaN)
        return _depthwise_grad_weight(x, dy, geo, K, budget)
    P = geo.padded_spatial(x.shape[2:])
    if channels_last(geo, C, K, Op) and (C * prod(P) + Op * Kp * C + 2 * Op * M + 2 * Kp * C * M) * it <= budget.left:
        # (one sample of it fits next to two partial sums: else the per-sample kernels below)
        return _grad_weight_channels_last(x, dy, geo, K, P, budget)
    nsp = len(K)
    # per sample: padded input, im2col columns, dy in (G, Mg, n, Op) order; per task: up to three partial sums
    per_sample = (C * prod(P) + C * Kp * Op + M * Op) * it
    part_bytes = 3 * M * Cg * Kp * it
    fit = budget.chunks(N, per_sample, fixed=part_bytes, what="one batch sample of conv_grad_weight")
    size = min(fit, _block(N, Op))
    sp_o = tuple(range(3, 3 + nsp))
    sp_k = tuple(range(3 + nsp, 3 + 2 * nsp))

    per_sample_gemm = Op >= PIXEL_MAJOR_BELOW
    perm = (0, 1, *range(2 + nsp, 2 + 2 * nsp), *range(2, 2 + nsp))  # (G, Cg, *O, *K) -> (G, Cg, *K, *O)

    def task(r):
        xp = _xp_chunk(x[r[0] : r[1]], geo, K)
        b = xp.shape[0]
        v = windows(xp, K, geo.stride, geo.dilation, O).reshape(b, G, Cg, *O, *K)
        if per_sample_gemm:
            # large planes: one GEMM per sample, dw_block = sum_n dy[n] @ cols[n]^T in sample order;
            # the im2col buffer of one sample is reused
            cols = np.empty((G, Cg, *K, *O), dtype=x.dtype)
            part = np.empty((G, Cg * Kp, Mg), dtype=x.dtype)
            acc = None
            for n in range(b):
                np.copyto(cols, v[n].transpose(perm))
                # dw^T[g, (c, k), m] = sum_p cols[g, (c, k), p] * dy[n, g, m, p] (this orientation runs faster)
                np.matmul(cols.reshape(G, Cg * Kp, Op), dy[r[0] + n].reshape(G, Mg, Op).transpose(0, 2, 1), out=part)
                if acc is None:
                    acc = part.copy()
                else:
                    acc += part
            return np.ascontiguousarray(acc.transpose(0, 2, 1))
        cols = np.empty((G, Cg, *K, b, *O), dtype=x.dtype)
        np.copyto(cols, v.transpose(1, 2, *sp_k, 0, *sp_o))
        dyt = np.ascontiguousarray(dy[r[0] : r[1]].reshape(b, G, Mg, Op).transpose(1, 2, 0, 3))  # (G, Mg, b, Op)
        return np.matmul(dyt.reshape(G, Mg, b * Op), cols.reshape(G, Cg * Kp, b * Op).transpose(0, 2, 1))

    dw = _summed(task, _ranges(N, size), size * per_sample + part_bytes, budget, N * M * Cg * Kp * Op)
    return dw.reshape(M, Cg, *K)
