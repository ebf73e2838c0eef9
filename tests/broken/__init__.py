"""Deliberately broken implementations (the suite must catch each) and correct variants (it must pass each).

``BROKEN`` and ``CORRECT`` list :class:`Entry` items: a callable with the
canonical signature of ``op`` and the check arguments to run it with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from typing import Any, Callable

import numpy as np

from . import base, naive


@dataclass
class Entry:
    name: str
    op: str
    fn: Callable
    dims: int = 2
    dtype: str = "float32"
    precision: str | None = None
    bound: str = "elementwise"
    #: a word the diagnosis should contain (None: any failure counts)
    diagnosis: str | None = None
    extra: dict = field(default_factory=dict)


def _conv(**knobs: Any) -> Callable:
    def fn(x, w, b, *, stride, padding, dilation, groups):
        return base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, **knobs)

    return fn


def _ct(**knobs: Any) -> Callable:
    def fn(x, w, b, *, stride, padding, output_padding, dilation, groups):
        return base.conv_transpose(x, w, b, stride=stride, padding=padding, output_padding=output_padding,
                                   dilation=dilation, groups=groups, **knobs)

    return fn


def _max(**knobs: Any) -> Callable:
    def fn(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        return base.pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode, kind="max", **knobs)

    return fn


def _avg(**knobs: Any) -> Callable:
    def fn(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
        return base.pool(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad, kind="avg", **knobs)

    return fn


def _gi(**knobs: Any) -> Callable:
    def fn(dy, w, input_shape, *, stride, padding, dilation, groups):
        return base.grad_input(dy, w, input_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, **knobs)

    return fn


def _gw(**knobs: Any) -> Callable:
    def fn(x, dy, weight_shape, *, stride, padding, dilation, groups):
        return base.grad_weight(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups, **knobs)

    return fn


def _bf16(a):
    return base.round_bits(a, 8)


def _tf32(a):
    return base.round_bits(a, 11)


# --- hand-written style bugs that the knobs do not express ------------------------------------------


def conv_hangs_with_groups(x, w, b, *, stride, padding, dilation, groups):
    if groups > 1:
        time.sleep(30)  # a deadlock in the grouped path
    return base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_fails_on_empty_batch(x, w, b, *, stride, padding, dilation, groups):
    if x.shape[0] == 0:
        raise ValueError("cannot reshape array of size 0")
    return base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_first_batch_only(x, w, b, *, stride, padding, dilation, groups):
    y = base.conv(x[:1], w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return np.repeat(y, x.shape[0], axis=0)


def conv_stride_of_axis0(x, w, b, *, stride, padding, dilation, groups):
    return base.conv(x, w, b, stride=(stride[0],) * len(stride), padding=padding, dilation=dilation, groups=groups)


def conv_mutates_input(x, w, b, *, stride, padding, dilation, groups):
    y = base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    x *= 0  # reuses the input buffer as scratch
    return y


def conv_ceil_output(x, w, b, *, stride, padding, dilation, groups):
    return base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     size_fn=lambda P, span, s: max(1, -(-(P - span) // s) + 1) if (P - span) % s else (P - span) // s + 1)


def conv_float32_for_float64(x, w, b, *, stride, padding, dilation, groups):
    y = base.conv(x.astype(np.float32), w.astype(np.float32), None if b is None else b.astype(np.float32),
                  stride=stride, padding=padding, dilation=dilation, groups=groups)
    return y.astype(np.float64)


def conv_kernel_hw_swapped(x, w, b, *, stride, padding, dilation, groups):
    return base.conv(x, np.ascontiguousarray(np.swapaxes(w, -1, -2)) if w.shape[-1] == w.shape[-2] else w, b,
                     stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_same_padding_all_at_end(x, w, b, *, stride, padding, dilation, groups):
    return base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     pad_fn=lambda lo, hi: (0, lo + hi) if lo != hi else (lo, hi))


def conv_im2col(x, w, b, *, stride, padding, dilation, groups):
    """Correct: im2col then one matmul per group (BLAS summation order), float32 throughout."""
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    K = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    outs = [(P - d * (k - 1) - 1) // s + 1 for P, k, s, d in zip(xp.shape[2:], K, stride, dilation)]
    cols = []
    for k in np.ndindex(*K):
        sl = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(k, dilation, stride, outs))
        cols.append(xp[(slice(None), slice(None)) + sl])
    col = np.stack(cols, axis=2)  # (N, C_in, prod K, *O)
    og = cout // groups
    y = np.empty((N, cout, *outs), dtype=x.dtype)
    for g in range(groups):
        cblk = col[:, g * cg:(g + 1) * cg].reshape(N, cg * len(cols), int(np.prod(outs)))
        wblk = w[g * og:(g + 1) * og].reshape(og, -1)
        y[:, g * og:(g + 1) * og] = np.matmul(wblk, cblk).reshape(N, og, *outs)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(K))
    return y


def conv_fft(x, w, b, *, stride, padding, dilation, groups):
    """Correct in exact arithmetic: full-size FFT products, then crop (errors are norm-wise, not per element)."""
    N, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    K = w.shape[2:]
    d_ = len(K)
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding]).astype(np.float32)
    kd = [dd * (k - 1) + 1 for dd, k in zip(dilation, K)]
    wd = np.zeros((cout, cg, *kd), dtype=np.float32)
    wd[(slice(None), slice(None)) + tuple(slice(0, None, dd) for dd in dilation)] = w
    L = [P + k - 1 for P, k in zip(xp.shape[2:], kd)]
    axes = tuple(range(-d_, 0))
    X = np.fft.rfftn(xp, L, axes=axes).astype(np.complex64)
    Wf = np.fft.rfftn(wd[(slice(None), slice(None)) + (slice(None, None, -1),) * d_], L, axes=axes).astype(np.complex64)
    og = cout // groups
    outs = [(P - k) // s + 1 for P, k, s in zip(xp.shape[2:], kd, stride)]
    y = np.zeros((N, cout, *outs), dtype=np.float32)
    for o in range(cout):
        g = o // og
        acc = (X[:, g * cg:(g + 1) * cg] * Wf[o][None]).sum(axis=1)
        full = np.fft.irfftn(acc, L, axes=axes).astype(np.float32)
        sl = tuple(slice(k - 1, k - 1 + s * (oo - 1) + 1, s) for k, s, oo in zip(kd, stride, outs))
        y[:, o] = full[(slice(None),) + sl]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * d_)
    return y.astype(x.dtype)


def conv_tiles_drop_remainder(x, w, b, *, stride, padding, dilation, groups):
    """Computes the last axis in tiles of 16 outputs and forgets the partial last tile."""
    y = base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    n = y.shape[-1]
    if n > 16:
        y[..., (n // 16) * 16:] = 0
    return y


def conv_channel_blocks_drop_remainder(x, w, b, *, stride, padding, dilation, groups):
    """Sums input channels in blocks of 8 and forgets a partial last block."""
    cg = w.shape[1]
    keep = (cg // 8) * 8 if cg > 8 else cg
    w2 = w.copy()
    w2[:, keep:] = 0
    return base.conv(x, w2, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_output_float16(x, w, b, *, stride, padding, dilation, groups):
    y = base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return y.astype(np.float16).astype(y.dtype)


def conv_padding_of_axis0(x, w, b, *, stride, padding, dilation, groups):
    return base.conv(x, w, b, stride=stride, padding=[padding[0]] * len(padding), dilation=dilation, groups=groups)


def conv_dilation_axis0_only(x, w, b, *, stride, padding, dilation, groups):
    return base.conv(x, w, b, stride=stride, padding=padding, dilation=(dilation[0],) + (1,) * (len(dilation) - 1),
                     groups=groups)


def avg_pool_integer_division(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    y = base.pool(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                  kind="avg")
    s = base.pool(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                  kind="avg", divisor="kernel") * np.prod(kernel_size)
    div = np.where(y != 0, np.round(s / np.where(y != 0, y, 1)), 1)
    return (np.floor(s / div)).astype(x.dtype)


def grad_weight_first_sample_only(x, dy, weight_shape, *, stride, padding, dilation, groups):
    return base.grad_weight(x[:1], dy[:1], weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_transpose_groups_interleaved(x, w, b, *, stride, padding, output_padding, dilation, groups):
    y = base.conv_transpose(x, w, b, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
                            groups=groups)
    cout = y.shape[1]
    cog = cout // groups
    # output channel g*cog + oc written to oc*groups + g
    perm = [(o % cog) * groups + o // cog for o in range(cout)]
    out = np.empty_like(y)
    out[:, perm] = y
    return out


def conv_hangs_on_empty_batch(x, w, b, *, stride, padding, dilation, groups):
    while x.shape[0] == 0:
        time.sleep(0.05)  # waits for work that never comes
    return base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_1x1_fast_path_ignores_padding(x, w, b, *, stride, padding, dilation, groups):
    """A 1x1 fast path (one matmul) that forgets the padding."""
    if all(k == 1 for k in w.shape[2:]) and groups == 1:
        sub = x[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)]
        y = np.einsum("oc,nc...->no...", w.reshape(w.shape[:2]), sub)
        return y if b is None else y + b.reshape((1, -1) + (1,) * (x.ndim - 2))
    return base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_3x3_fast_path_last_row(x, w, b, *, stride, padding, dilation, groups):
    """A 3x3 / stride 1 / padding 1 fast path whose tiles miss the last output row."""
    y = base.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if w.shape[2:] == (3, 3) and tuple(stride) == (1, 1) and all(tuple(p) == (1, 1) for p in padding):
        y[..., -1, :] = y[..., -2, :]
    return y


def _f16(a):
    return a.astype(np.float16).astype(a.dtype)


BROKEN: list[Entry] = [
    Entry("conv: kernel flipped (convolution, not correlation)", "conv", _conv(flip=True), diagnosis="flip"),
    Entry("conv: padding sides swapped", "conv", _conv(pad_fn=lambda lo, hi: (hi, lo)), diagnosis="swapped"),
    Entry("conv: hi padding ignored", "conv", _conv(pad_fn=lambda lo, hi: (lo, 0)), diagnosis="hi padding"),
    Entry("conv: lo padding used on both sides", "conv", _conv(pad_fn=lambda lo, hi: (lo, lo))),
    Entry("conv: odd same zero put at the end always", "conv", conv_same_padding_all_at_end),
    Entry("conv: stride phase s - 1", "conv", _conv(phase=(1, 1)), diagnosis="phase"),
    Entry("conv: window start off by one", "conv", lambda x, w, b, *, stride, padding, dilation, groups: base.conv(
        x, w, b, stride=stride, padding=[(lo - 1, hi + 1) if lo else (lo, hi) for lo, hi in padding], dilation=dilation,
        groups=groups), diagnosis="offset"),
    Entry("conv: dilation counted from 0 (d - 1)", "conv", _conv(dil_off=-1), diagnosis="dilation"),
    Entry("conv: dilation d + 1", "conv", _conv(dil_off=1), diagnosis="dilation"),
    Entry("conv: group of output o is o % groups", "conv", _conv(out_map="interleave"), diagnosis="group"),
    Entry("conv: group reads interleaved input channels", "conv", _conv(in_map="interleave"), diagnosis="group"),
    Entry("conv: bias ignored", "conv", _conv(bias_mode="none"), diagnosis="bias"),
    Entry("conv: bias added per input channel", "conv", _conv(bias_mode="per_channel"), diagnosis="bias"),
    Entry("conv: bias broadcast along the last axis", "conv", _conv(bias_mode="last_axis")),
    Entry("conv: accumulates in float16", "conv", _conv(acc=np.float16), diagnosis="precision"),
    Entry("conv: inputs rounded to bfloat16, claimed float32", "conv", _conv(round_inputs=_bf16), diagnosis="bfloat16 inputs"),
    Entry("conv: inputs rounded to TF32, claimed float32", "conv", _conv(round_inputs=_tf32), diagnosis="precision"),
    Entry("conv: float32 arithmetic claimed float64", "conv", conv_float32_for_float64, dtype="float64", diagnosis="precision"),
    Entry("conv: output size by ceil", "conv", conv_ceil_output),
    Entry("conv: hangs with groups", "conv", conv_hangs_with_groups, extra={"timeout": 1.0}),
    Entry("conv: raises on an empty batch", "conv", conv_fails_on_empty_batch),
    Entry("conv: first batch element copied", "conv", conv_first_batch_only),
    Entry("conv: stride of axis 0 used for every axis", "conv", conv_stride_of_axis0),
    Entry("conv: kernel spatial axes transposed", "conv", conv_kernel_hw_swapped),
    Entry("conv: modifies its input", "conv", conv_mutates_input),
    Entry("conv: partial last tile of 16 outputs dropped", "conv", conv_tiles_drop_remainder),
    Entry("conv: partial last block of 8 channels dropped", "conv", conv_channel_blocks_drop_remainder, diagnosis="not a rounding problem"),
    Entry("conv: result rounded to float16", "conv", conv_output_float16, diagnosis="precision"),
    Entry("conv: inputs rounded to float16, claimed float32", "conv", _conv(round_inputs=_f16), diagnosis="precision"),
    Entry("conv: padding of axis 0 used for every axis", "conv", conv_padding_of_axis0),
    Entry("conv: dilation only on axis 0", "conv", conv_dilation_axis0_only),
    Entry("conv: hangs on an empty batch", "conv", conv_hangs_on_empty_batch, extra={"timeout": 1.0}),
    Entry("conv: 1x1 fast path ignores padding", "conv", conv_1x1_fast_path_ignores_padding),
    Entry("conv: 3x3 fast path misses the last row", "conv", conv_3x3_fast_path_last_row, diagnosis="not a rounding problem"),
    Entry("conv 3-D: group mapping interleaved", "conv", _conv(out_map="interleave"), dims=3, diagnosis="group"),
    Entry("conv 1-D: kernel flipped", "conv", _conv(flip=True), dims=1, diagnosis="flip"),
    Entry("conv 3-D: hi padding ignored", "conv", _conv(pad_fn=lambda lo, hi: (lo, 0)), dims=3),
    Entry("conv 1-D: dilation d - 1", "conv", _conv(dil_off=-1), dims=1, diagnosis="dilation"),
    Entry("conv_transpose: weight layout (C_out, C_in) instead of (C_in, C_out)", "conv_transpose", _ct(layout="cout_first")),
    Entry("conv_transpose: crop sides swapped", "conv_transpose", _ct(crop_swap=True), diagnosis="swapped"),
    Entry("conv_transpose: output_padding at the start", "conv_transpose", _ct(op_at_start=True), diagnosis="output_padding"),
    Entry("conv_transpose: output_padding ignored", "conv_transpose", _ct(ignore_op=True)),
    Entry("conv_transpose: kernel flipped", "conv_transpose", _ct(flip=True), diagnosis="flip"),
    Entry("conv_transpose: output channels of groups interleaved", "conv_transpose", conv_transpose_groups_interleaved),
    Entry("conv_transpose 3-D: crop sides swapped", "conv_transpose", _ct(crop_swap=True), dims=3),
    Entry("conv_transpose: accumulates in float16", "conv_transpose", _ct(acc=np.float16), diagnosis="precision"),
    Entry("max_pool: zero padding instead of -inf", "max_pool", _max(pad_value=0.0), diagnosis="zero padding"),
    Entry("max_pool: plain ceil (last window may start in the padding)", "max_pool", _max(rule="plain")),
    Entry("max_pool: ceil_mode ignored", "max_pool", _max(rule="floor"), diagnosis="ceil"),
    Entry("max_pool: dilation counted from 0", "max_pool", _max(dil_off=-1), diagnosis="dilation"),
    Entry("max_pool: padding sides swapped", "max_pool", _max(pad_swap=True), diagnosis="swapped"),
    Entry("max_pool: window start shifted by one", "max_pool", _max(phase=1)),
    Entry("avg_pool: count_include_pad inverted", "avg_pool", _avg(divisor="inverted"), diagnosis="divisor"),
    Entry("avg_pool: divisor is the kernel size in ceil windows", "avg_pool", _avg(divisor="kernel_if_include"), diagnosis="divisor"),
    Entry("avg_pool: divisor always the kernel size", "avg_pool", _avg(divisor="kernel")),
    Entry("avg_pool: plain ceil rule", "avg_pool", _avg(rule="plain")),
    Entry("avg_pool: ceil_mode ignored", "avg_pool", _avg(rule="floor")),
    Entry("avg_pool: integer division", "avg_pool", avg_pool_integer_division),
    Entry("avg_pool 3-D: count_include_pad inverted", "avg_pool", _avg(divisor="inverted"), dims=3),
    Entry("max_pool 3-D: zero padding", "max_pool", _max(pad_value=0.0), dims=3),
    Entry("avg_pool: accumulates in float16", "avg_pool", _avg(acc=np.float16), diagnosis="precision"),
    Entry("avg_pool 1-D: padding sides swapped", "avg_pool", _avg(pad_swap=True), dims=1),
    Entry("conv_grad_input: kernel not flipped back", "conv_grad_input", _gi(flip=True), diagnosis="flip"),
    Entry("conv_grad_input: unread rows not zero", "conv_grad_input", _gi(unread="garbage")),
    Entry("conv_grad_weight: result flipped", "conv_grad_weight", _gw(flip=True), diagnosis="flip"),
    Entry("conv_grad_weight: stride and dilation not exchanged", "conv_grad_weight", _gw(swap=True)),
    Entry("conv_grad_weight: first batch element only", "conv_grad_weight", grad_weight_first_sample_only),
    Entry("conv_grad_input 1-D: kernel not flipped back", "conv_grad_input", _gi(flip=True), dims=1),
    Entry("conv_grad_weight: accumulates in float16", "conv_grad_weight", _gw(acc=np.float16), diagnosis="precision"),
]

CORRECT: list[Entry] = [
    Entry("conv: taps outer, channels inner", "conv", _conv(order="taps")),
    Entry("conv: channels outer, taps inner", "conv", _conv(order="channels")),
    Entry("conv: reversed order", "conv", _conv(order="reverse")),
    Entry("conv: shuffled order", "conv", _conv(order="shuffle")),
    Entry("conv: pairwise", "conv", _conv(order="pairwise")),
    Entry("conv: blocked partial sums", "conv", _conv(order="blocked")),
    Entry("conv: Kahan summation", "conv", _conv(order="kahan")),
    Entry("conv: bias added first", "conv", _conv(bias_mode="first")),
    Entry("conv: float64 accumulation, rounded once", "conv", _conv(acc=np.float64)),
    Entry("conv: FMA-like (exact products, one rounding per step)", "conv", _conv(order="fma", products_f64=True)),
    Entry("conv: im2col + matmul", "conv", conv_im2col),
    Entry("conv 1-D: reversed", "conv", _conv(order="reverse"), dims=1),
    Entry("conv 3-D: pairwise", "conv", _conv(order="pairwise"), dims=3),
    Entry("conv float64: shuffled", "conv", _conv(order="shuffle"), dtype="float64"),
    Entry("conv float64: im2col", "conv", conv_im2col, dtype="float64"),
    Entry("conv: bfloat16 inputs under the bfloat16 profile", "conv", _conv(round_inputs=_bf16), precision="bfloat16"),
    Entry("conv: TF32 inputs under the tf32 profile", "conv", _conv(round_inputs=_tf32), precision="tf32"),
    Entry("conv: float16 accumulation under the float16 profile", "conv", _conv(acc=np.float16), precision="float16"),
    Entry("conv: FFT under the norm-wise bound", "conv", conv_fft, bound="normwise"),
    Entry("conv: pure Python loops", "conv", naive.conv),
    Entry("conv float16: float16 throughout", "conv", _conv(order="pairwise"), dtype="float16"),
    Entry("conv float16: float32 accumulation", "conv", _conv(acc=np.float32), dtype="float16"),
    Entry("conv 3-D float64: reversed", "conv", _conv(order="reverse"), dims=3, dtype="float64"),
    Entry("conv_transpose: scatter", "conv_transpose", _ct()),
    Entry("conv_transpose: scatter reversed", "conv_transpose", _ct(order="reverse")),
    Entry("conv_transpose: float64 accumulation", "conv_transpose", _ct(acc=np.float64)),
    Entry("max_pool: windows", "max_pool", _max()),
    Entry("avg_pool: divide", "avg_pool", _avg()),
    Entry("avg_pool: multiply by the reciprocal", "avg_pool", _avg(reciprocal=True)),
    Entry("avg_pool: float64 accumulation", "avg_pool", _avg(acc=np.float64)),
    Entry("conv_grad_input: scatter", "conv_grad_input", _gi()),
    Entry("conv_grad_weight: correlation", "conv_grad_weight", _gw()),
    Entry("conv_grad_weight: float64 accumulation", "conv_grad_weight", _gw(acc=np.float64)),
]
