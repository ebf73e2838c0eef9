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
    #: the failure kind expected ('value', 'accepted-invalid', ...; None: any)
    kind: str | None = None


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
    # float16 arithmetic has less range than float32 arrays: the values near float32's overflow are not its to hold
    Entry("conv: float16 accumulation under the float16 profile", "conv", _conv(acc=np.float16), precision="float16",
          extra={"capabilities": {"full_range": False}}),
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

# --- more realistic bugs and correct summation orders (tests/broken/extra.py) -----------------------

from . import extra as X  # noqa: E402

BROKEN += [
    Entry("conv: output one short when (n + pad - span) is a multiple of the stride", "conv", X.conv_offbyone_when_divisible),
    Entry("conv: bias broadcast along H when C_out equals H", "conv", X.conv_bias_axis_when_cout_eq_h),
    Entry("conv: padding scaled by the dilation", "conv", X.conv_padding_scaled_by_dilation),
    Entry("conv float64: dilation applied to the input instead of the kernel", "conv", X.conv_dilation_on_input, dtype="float64"),
    Entry("conv: stride and dilation swapped", "conv", X.conv_stride_dilation_swapped),
    Entry("conv 3-D: per-axis parameters read in reverse axis order", "conv", X.conv_axes_params_reversed, dims=3),
    Entry("conv float64: per-axis parameters reversed", "conv", X.conv_axes_params_reversed, dtype="float64"),
    Entry("conv: last channel dropped when C_in per group is odd", "conv", X.conv_drops_last_odd_channel),
    Entry("conv: float16 accumulator for reductions over 64 terms", "conv", X.conv_f16_acc_long, diagnosis="precision"),
    Entry("conv 1-D: float16 accumulator for reductions over 64 terms", "conv", X.conv_f16_acc_long, dims=1),
    Entry("conv: partial last batch chunk computed from the last 4 samples", "conv", X.conv_batch_chunk_overlap),
    Entry("conv 1-D: bias accumulated across the batch", "conv", X.conv_wrong_when_batch_gt1),
    Entry("conv: multiply-adds rounded toward zero", "conv", X.conv_truncating_sum),
    Entry("conv 1-D: multiply-adds rounded toward zero", "conv", X.conv_truncating_sum, dims=1),
    Entry("conv float64: result rounded to float16", "conv", X.conv_output_f16_f64, dtype="float64", diagnosis="precision"),
    Entry("conv: result stored through bfloat16", "conv", X.conv_bf16_output),
    Entry("conv 3-D: every group uses the weights of group 0", "conv", X.conv_groups_weight_not_sliced, dims=3),
    Entry("conv: channel blocks of 8 swapped past 8 output channels", "conv", X.conv_wrong_for_many_channels),
    Entry("conv: second row tile of 16 one sample late", "conv", X.conv_size_gt16_tile_offset),
    Entry("conv 3-D: second row tile of 16 one sample late", "conv", X.conv_size_gt16_tile_offset, dims=3),
    Entry("conv 1-D float64: second tile of 16 one sample late", "conv", X.conv_size_gt16_tile_offset, dims=1, dtype="float64"),
    Entry("conv: square 1x1 computed in place (aliasing)", "conv", X.conv_alias_inplace_1x1),
    Entry("conv: odd total padding always split with the extra zero at the end", "conv", X.conv_same_lower_as_upper),
    Entry("conv float64: float32 partial sums over channel blocks", "conv", X.conv_float32_partials_f64, dtype="float64",
          diagnosis="precision"),
    Entry("conv: window start (p*s)*d when stride and dilation are both > 1", "conv", X.conv_stride_times_dilation),
    Entry("conv 3-D: window start (p*s)*d", "conv", X.conv_stride_times_dilation, dims=3),
    Entry("conv_transpose: weight transposed ignoring groups", "conv_transpose", X.ct_weight_no_group_transpose),
    Entry("conv_transpose: output_padding split over both sides", "conv_transpose", X.ct_op_both_sides),
    Entry("conv_transpose 1-D float64: dilation left out of the output size", "conv_transpose", X.ct_dilation_ignored_in_size,
          dims=1, dtype="float64"),
    Entry("conv_transpose: bias indexed by input channel", "conv_transpose", X.ct_bias_per_input_channel),
    Entry("conv_transpose: crop start shifted by the dilation", "conv_transpose", X.ct_pad_as_conv_padding),
    Entry("conv_transpose: float16 accumulator for long reductions", "conv_transpose", X.ct_f16_acc),
    Entry("conv_transpose 3-D float64: zeros inserted before each sample", "conv_transpose", X.ct_stride_phase_wrong, dims=3,
          dtype="float64"),
    Entry("conv_transpose: remainder block past 8 output channels left at the bias", "conv_transpose", X.ct_many_channels),
    Entry("conv_transpose 1-D: partial last batch chunk from the last 4 samples", "conv_transpose", X.ct_batch_chunks, dims=1),
    Entry("conv_transpose: output_padding of the axes reversed", "conv_transpose", X.ct_axes_reversed),
    Entry("conv_transpose 3-D: row tile past 16 outputs shifted", "conv_transpose", X.ct_wide_tile, dims=3),
    Entry("conv_transpose float64: row tile past 16 outputs shifted", "conv_transpose", X.ct_wide_tile, dtype="float64"),
    Entry("max_pool: running max initialised to 0", "max_pool", X.max_pool_zero_init),
    Entry("max_pool: output size without the dilation", "max_pool", X.max_pool_dilation_size_only),
    Entry("max_pool: edge-replicate padding", "max_pool", X.max_pool_edge_clamp),
    Entry("max_pool 3-D: per-axis parameters reversed", "max_pool", X.max_pool_axes_reversed, dims=3),
    Entry("max_pool: remainder channel block reads the previous block", "max_pool", X.max_pool_channel_blocks),
    Entry("max_pool 3-D float64: remainder channel block reads the previous block", "max_pool", X.max_pool_channel_blocks,
          dims=3, dtype="float64"),
    Entry("avg_pool: count_include_pad ignored with ceil_mode", "avg_pool", X.avg_pool_cip_ignored_with_ceil),
    Entry("avg_pool float64: divisor forgets the hi padding", "avg_pool", X.avg_pool_divisor_hi_pad_forgotten, dtype="float64"),
    Entry("avg_pool: float16 window sums past 8 taps", "avg_pool", X.avg_pool_f16_sum),
    Entry("avg_pool 3-D float64: per-axis parameters reversed", "avg_pool", X.avg_pool_axes_reversed, dims=3, dtype="float64"),
    Entry("avg_pool 1-D: kernel-area divisor for ceil windows", "avg_pool", X.avg_pool_divisor_excludes_ceil_overhang_wrong, dims=1),
    Entry("avg_pool: partial last batch chunk from the last 4 samples", "avg_pool", X.avg_pool_batch_chunks),
    Entry("avg_pool: count_include_pad inverted for asymmetric padding", "avg_pool", X.avg_pool_cip_ignored_asymmetric),
    Entry("conv_grad_input: last output row not scattered", "conv_grad_input", X.gi_missing_last_output_row),
    Entry("conv_grad_input: unread tail zero-filled at the start", "conv_grad_input", X.gi_via_transpose_pad_at_start),
    Entry("conv_grad_input float64: dilation ignored", "conv_grad_input", X.gi_dilation_ignored, dtype="float64"),
    Entry("conv_grad_input 3-D: channels of groups interleaved", "conv_grad_input", X.gi_groups_wrong, dims=3),
    Entry("conv_grad_input: float16 accumulation", "conv_grad_input", X.gi_f16_acc, diagnosis="precision"),
    Entry("conv_grad_input 1-D float64: float32 accumulation", "conv_grad_input", X.gi_f32_for_f64, dims=1, dtype="float64"),
    Entry("conv_grad_input: padding crop sides swapped", "conv_grad_input", X.gi_crop_swapped),
    Entry("conv_grad_input: partial last batch chunk from the last 4 samples", "conv_grad_input", X.gi_batch_chunks),
    Entry("conv_grad_weight: mean over the batch instead of the sum", "conv_grad_weight", X.gw_mean_over_batch),
    Entry("conv_grad_weight: batch summed in float16", "conv_grad_weight", X.gw_batch_f16),
    Entry("conv_grad_weight float64: every group reads the channels of group 0", "conv_grad_weight", X.gw_groups_offset,
          dtype="float64"),
    Entry("conv_grad_weight: hi padding read as the edge sample", "conv_grad_weight", X.gw_hi_padding_ignored),
    Entry("conv_grad_weight 1-D: last output column dropped", "conv_grad_weight", X.gw_last_output_col_dropped, dims=1),
    Entry("conv_grad_weight 3-D float64: float32 accumulation", "conv_grad_weight", X.gw_f32_for_f64, dims=3, dtype="float64"),
    Entry("conv_grad_weight: dy columns past the last full tile of 16 skipped", "conv_grad_weight", X.gw_wide_tile),
]

CORRECT += [
    Entry("conv: im2col, column-major reduction, sequential float32", "conv", X.conv_column_major_gemm),
    Entry("conv: tree reduction over a power of two", "conv", X.conv_tree),
    Entry("conv 1-D: Winograd F(2,3) in float64, rounded once", "conv", X.conv_winograd_f64, dims=1),
    Entry("conv: channel blocks of 4 in float64, blocks summed in float32", "conv", X.conv_channel_blocks_f32),
    Entry("conv: channels-last internally", "conv", X.conv_nhwc),
    Entry("conv_transpose: zero insertion then a float32 gather", "conv_transpose", X.ct_gather_f32),
    Entry("max_pool: running max over the real taps", "max_pool", X.max_pool_loops),
    Entry("avg_pool: np.sum in float32 then divide", "avg_pool", X.avg_pool_f32_mean),
    Entry("avg_pool 1-D float64: separable sums", "avg_pool", X.avg_pool_separable, dims=1, dtype="float64"),
    Entry("conv_grad_input: transposed conv of dy in float32", "conv_grad_input", X.gi_via_transpose),
    Entry("conv_grad_weight: per-sample float64, batch summed in float32", "conv_grad_weight", X.gw_batch_chunks_f32),
    Entry("conv_grad_weight 1-D: stride and dilation exchanged, sequential batch sums", "conv_grad_weight",
          X.gw_via_conv_swapped, dims=1),
]

BROKEN += [
    Entry("conv: asymmetric padding as symmetric padding and a floor-divided output crop", "conv", X.conv_asym_via_symmetric_crop),
    Entry("conv 1-D: asymmetric padding as symmetric padding and a crop", "conv", X.conv_asym_via_symmetric_crop, dims=1),
    Entry("conv float64: bias through a float32 buffer", "conv", X.conv_f64_bias_as_f32, dtype="float64"),
    Entry("conv: 3x3 stride-2 row tiles past 16 outputs one input row late", "conv", X.conv_strided_3x3_row_tiles),
    Entry("conv_transpose: output_padding rows hold the bias only", "conv_transpose", X.ct_output_padding_rows_bias_only),
    Entry("conv_transpose 1-D float64: output_padding rows hold the bias only", "conv_transpose",
          X.ct_output_padding_rows_bias_only, dims=1, dtype="float64"),
    Entry("avg_pool: ceil windows' divisor clipped to the input, not the padding", "avg_pool",
          X.avg_pool_ceil_divisor_clips_to_input),
    Entry("avg_pool 1-D float64: ceil windows' divisor clipped to the input", "avg_pool",
          X.avg_pool_ceil_divisor_clips_to_input, dims=1, dtype="float64"),
]

CORRECT += [
    Entry("avg_pool: sums of x/k, rescaled by k/count at the borders", "avg_pool", X.avg_pool_as_conv),
    Entry("conv_grad_weight: im2col and one BLAS matmul per group", "conv_grad_weight", X.gw_im2col_matmul),
    Entry("conv_transpose: bias first, reversed scatter in float32", "conv_transpose", X.ct_scatter_bias_first),
]

BROKEN += [
    Entry("conv: TF32 inputs on reductions over 256 terms, claimed float32", "conv", X.conv_tf32_long, diagnosis="precision"),
    Entry("conv 1-D: TF32 inputs on reductions over 256 terms", "conv", X.conv_tf32_long, dims=1),
    Entry("conv_transpose: bfloat16 inputs on reductions over 256 terms", "conv_transpose", X.ct_bf16_long),
    Entry("conv_grad_input: TF32 inputs on reductions over 256 terms", "conv_grad_input", X.gi_tf32_long),
]

BROKEN += [
    Entry("conv: depthwise channel blocks of 8, remainder dropped", "conv", X.conv_depthwise_blocks_of_8),
    Entry("conv: groups past 8 read the channels of group g - 8", "conv", X.conv_many_groups_wrong),
    Entry("conv_grad_input: depthwise channel blocks of 8, remainder dropped", "conv_grad_input", X.gi_depthwise_blocks_of_8),
    Entry("conv_transpose 1-D: depthwise channel blocks of 8, remainder dropped", "conv_transpose", X.ct_depthwise_blocks_of_8,
          dims=1),
]

BROKEN += [
    Entry("conv_transpose 1-D float64: bias only where a kernel tap lands", "conv_transpose", X.ct_bias_only_where_scattered,
          dims=1, dtype="float64"),
]

# --- bugs that hide: tiles in special paths, layouts, subnormals, invalid configurations (tests/broken/hidden.py)

from . import hidden as H  # noqa: E402

BROKEN += [
    # a remainder tile of each dimension, in a path taken only with (most) features on
    Entry("conv: C_out tail tile of 16 skips the bias (grouped strided dilated path)", "conv", H.conv_cout_tail_skips_bias,
          diagnosis="not a rounding problem"),
    Entry("conv 1-D: C_out tail tile of 16 skips the bias", "conv", H.conv_cout_tail_skips_bias, dims=1),
    Entry("conv: C_out tail tile of 16 reads the previous tile's weights (grouped path)", "conv",
          H.conv_cout_tail_previous_weights),
    Entry("conv: C_in/groups tail block of 8 reads channels one block early", "conv", H.conv_cin_tail_wrong_offset),
    Entry("conv: second reduction tile of 32 drops its last term", "conv", H.conv_second_reduction_tile_drops_last),
    Entry("conv 1-D float64: second reduction tile of 32 drops its last term", "conv",
          H.conv_second_reduction_tile_drops_last, dims=1, dtype="float64"),
    Entry("conv: batch blocks of 8 forget the remainder (grouped path)", "conv", H.conv_batch_tail_forgotten),
    Entry("conv: output-row tail tile of 8 repeats the previous rows", "conv", H.conv_row_tail_shifted),
    Entry("conv: output-column tail tile of 16 gets no bias", "conv", H.conv_col_tail_no_bias),
    Entry("conv 1-D: output-column tail tile of 16 gets no bias", "conv", H.conv_col_tail_no_bias, dims=1),
    Entry("conv: depthwise tail block of 16 uses the previous block's bias", "conv", H.conv_depthwise_tail_wrong),
    Entry("conv_transpose: C_out tail tile of 16 skips the bias", "conv_transpose", H.ct_cout_tail_skips_bias),
    Entry("conv_transpose: C_in/groups tail block of 8 dropped", "conv_transpose", H.ct_cin_tail_dropped),
    Entry("conv_transpose 3-D: batch blocks of 8 forget the remainder", "conv_transpose", H.ct_batch_tail_forgotten, dims=3),
    Entry("conv_transpose 1-D: output-column tail tile of 32 repeats the previous columns", "conv_transpose",
          H.ct_col_tail_shifted, dims=1),
    Entry("conv_grad_input: C_in tail tile of 16 left at zero", "conv_grad_input", H.gi_cin_tail_zero),
    Entry("conv_grad_input: reduction over C_out/groups drops the tail block of 16", "conv_grad_input",
          H.gi_reduction_tail_dropped),
    Entry("conv_grad_input 1-D: batch blocks of 8 forget the remainder", "conv_grad_input", H.gi_batch_tail_forgotten, dims=1),
    Entry("conv_grad_weight: second reduction tile of 64 drops its last term", "conv_grad_weight",
          H.gw_reduction_second_tile_drops_last),
    Entry("conv_grad_weight 3-D: C_out tail tile of 16 left at zero", "conv_grad_weight", H.gw_cout_tail_zero, dims=3),
    Entry("conv_grad_weight: batch blocks of 8 forget the remainder", "conv_grad_weight", H.gw_batch_tail_forgotten),
    Entry("max_pool: channel tail block of 16 pools the previous block", "max_pool", H.max_pool_channel_tail_previous),
    Entry("max_pool 1-D: batch blocks of 8 forget the remainder", "max_pool", H.max_pool_batch_tail_forgotten, dims=1),
    Entry("max_pool: second tile of 32 window taps skips its last tap", "max_pool", H.max_pool_wide_window_tail),
    Entry("avg_pool: channel tail block of 16 divides by the window area", "avg_pool",
          H.avg_pool_channel_tail_wrong_divisor),
    Entry("avg_pool 3-D: batch blocks of 8 forget the remainder", "avg_pool", H.avg_pool_batch_tail_forgotten, dims=3),
    Entry("avg_pool: output-column tail tile of 16 repeats the previous columns", "avg_pool", H.avg_pool_col_tail_shifted),
    # memory layouts
    Entry("conv: reads its inputs in memory order (ravel(order='K'))", "conv", H.conv_reads_memory_order,
          diagnosis="depends on memory layout"),
    Entry("conv: wraps its input buffer with np.frombuffer", "conv", H.conv_frombuffer, diagnosis="depends on memory layout"),
    Entry("conv: clamps its input in place (read-only inputs)", "conv", H.conv_writes_input,
          diagnosis="depends on memory layout"),
    Entry("conv: refuses negative strides", "conv", H.conv_rejects_negative_strides, diagnosis="depends on memory layout"),
    Entry("conv 1-D: needs aligned arrays", "conv", H.conv_aligned_loads, dims=1, diagnosis="depends on memory layout"),
    Entry("conv_transpose: reads x in memory order", "conv_transpose", H.ct_reads_memory_order,
          diagnosis="depends on memory layout"),
    Entry("max_pool 3-D: copies non-C-contiguous inputs in memory order", "max_pool", H.max_pool_strided_view_wrong,
          dims=3, diagnosis="depends on memory layout"),
    # subnormals and the ends of the range
    Entry("conv: denormals-are-zero inputs", "conv", H.conv_daz, diagnosis="flushes subnormals to zero"),
    Entry("conv: flush-to-zero results", "conv", H.conv_ftz_result, diagnosis="flushes subnormals to zero"),
    Entry("conv: flush-to-zero products and partial sums", "conv", H.conv_ftz_products, diagnosis="float32-ftz"),
    Entry("conv float64: denormals-are-zero inputs", "conv", H.conv_daz, dtype="float64", diagnosis="float64-ftz"),
    Entry("avg_pool: flush-to-zero inputs and results", "avg_pool", H.avg_pool_ftz, diagnosis="flushes subnormals"),
    Entry("max_pool 1-D: denormals-are-zero inputs", "max_pool", H.max_pool_daz, dims=1, diagnosis="flushes subnormals"),
    Entry("conv_grad_weight: flush-to-zero results", "conv_grad_weight", H.gw_ftz_result, diagnosis="flushes subnormals"),
    Entry("max_pool: running maximum started at -1e30", "max_pool", H.max_pool_sentinel),
    # configurations the definition rejects, accepted
    Entry("conv: never validates (clipped sizes, floor-divided groups)", "conv", H.conv_accepts_invalid,
          kind="accepted-invalid"),
    Entry("conv_transpose: output_padding not checked", "conv_transpose", H.ct_accepts_large_output_padding,
          kind="accepted-invalid"),
    Entry("max_pool: returns the input when the window does not fit", "max_pool", H.max_pool_accepts_large_window,
          kind="accepted-invalid"),
    Entry("conv_grad_input 1-D: zeros when the groups do not fit", "conv_grad_input", H.gi_accepts_groups_mismatch, dims=1,
          kind="accepted-invalid"),
    # windows of padding only, with groups
    Entry("conv: NaN where a window reads only padding (grouped path)", "conv", H.conv_nan_on_padding_windows,
          kind="nonfinite"),
    Entry("conv 3-D: raises where a window reads only padding (grouped path)", "conv", H.conv_raises_on_padding_windows,
          dims=3, kind="exception"),
    Entry("conv_grad_weight 1-D: NaN for taps that read only padding (grouped)", "conv_grad_weight",
          H.gw_nan_on_padding_windows, dims=1, kind="nonfinite"),
]

CORRECT += [
    Entry("conv: blocked over every dimension, remainders handled", "conv", H.conv_blocked),
    Entry("conv 1-D: blocked over every dimension", "conv", H.conv_blocked, dims=1),
    Entry("conv 3-D: blocked over every dimension", "conv", H.conv_blocked, dims=3),
    Entry("conv float64: blocked over every dimension", "conv", H.conv_blocked, dtype="float64"),
    Entry("conv_transpose: blocked scatter in float32", "conv_transpose", H.ct_blocked),
    Entry("max_pool: blocked over channels and samples", "max_pool", H.pool_blocked_max),
    Entry("avg_pool 3-D: blocked over channels", "avg_pool", H.avg_pool_blocked, dims=3),
    Entry("conv_grad_input: blocked over samples", "conv_grad_input", H.gi_blocked),
    Entry("conv_grad_weight: batch blocks summed in float32", "conv_grad_weight", H.gw_blocked_f32),
    Entry("conv float64: float64 accumulation with gradual underflow", "conv", H.conv_f64, dtype="float64"),
]

# --- fast algorithms judged by the bound of their algorithm (tests/broken/algorithms.py)

from .algorithms import ALGORITHM_BROKEN, ALGORITHM_CORRECT  # noqa: E402

BROKEN += [Entry(**d) for d in ALGORITHM_BROKEN]
CORRECT += [Entry(**d) for d in ALGORITHM_CORRECT]

# correct implementations refuse the configurations the definition rejects (as every library does)
CORRECT = [Entry(**{**e.__dict__, "fn": H.refusing(e.op, e.fn)}) for e in CORRECT]

# the max_pool and avg_pool implementations above stop at PyTorch's pooling limit (padding at most half the
# window; hidden.check_pool refuses more): they declare it, as the torch adapter does.  Padding over half the
# window is checked on the implementations below.


def _half_window(case):
    """At most half the (dilated) window of padding on a side."""
    return all(max(lo, hi) <= (d * (k - 1) + 1) // 2 for (lo, hi), k, d in zip(case.padding, case.kernel, case.dilation))


def _declare_half_window(e: Entry) -> Entry:
    if e.op not in ("max_pool", "avg_pool"):
        return e
    caps = {**e.extra.get("capabilities", {}), "rule": _half_window}
    return Entry(**{**e.__dict__, "extra": {**e.extra, "capabilities": caps}})


BROKEN = [_declare_half_window(e) for e in BROKEN]
CORRECT = [_declare_half_window(e) for e in CORRECT]

# --- max pooling with indices, L_p, adaptive pooling, avg_pool's dilation and divisor_override (tests/broken/new_ops.py)
# (after the wrapping above: these refuse the configurations the definition rejects themselves)

from . import new_ops as NO  # noqa: E402

BROKEN += [
    Entry("max_pool_indices: indices counted over the whole tensor", "max_pool_indices", NO.max_pool_indices_whole_tensor,
          kind="indices", diagnosis="whole tensor"),
    Entry("max_pool_indices: the last maximum on ties", "max_pool_indices", NO.max_pool_indices_last_tie, kind="indices",
          diagnosis="last maximum"),
    Entry("max_pool_indices 1-D: the tap within the window as the index", "max_pool_indices", NO.max_pool_indices_in_window,
          dims=1, kind="indices"),
    Entry("avg_pool: dilation ignored", "avg_pool", NO.avg_pool_dilation_ignored),
    Entry("avg_pool 3-D: divisor_override ignored", "avg_pool", NO.avg_pool_override_ignored, dims=3),
    Entry("lp_pool: signed powers (x**p, not |x|**p)", "lp_pool", NO.lp_pool_signed, diagnosis="signed powers"),
    Entry("lp_pool 1-D: the mean under the root", "lp_pool", NO.lp_pool_mean, dims=1, diagnosis="mean instead of sum"),
    Entry("adaptive_avg_pool: bins floor/floor", "adaptive_avg_pool", NO.adaptive_avg_pool_floor_bins,
          diagnosis="floor/floor"),
    Entry("adaptive_max_pool 3-D: equal bins n // o", "adaptive_max_pool", NO.adaptive_max_pool_equal_bins, dims=3),
]

CORRECT += [
    Entry("max_pool_indices: the first maximum of the input elements", "max_pool_indices", NO.max_pool_indices),
    Entry("max_pool_indices 3-D float64", "max_pool_indices", NO.max_pool_indices, dims=3, dtype="float64"),
    Entry("avg_pool: dilation and divisor_override", "avg_pool", NO.avg_pool_dilated),
    Entry("avg_pool 1-D float64: dilation and divisor_override", "avg_pool", NO.avg_pool_dilated, dims=1, dtype="float64"),
    Entry("lp_pool: float64 sums of |x|**p", "lp_pool", NO.lp_pool),
    Entry("lp_pool 3-D", "lp_pool", NO.lp_pool, dims=3),
    Entry("adaptive_avg_pool: float64 means", "adaptive_avg_pool", NO.adaptive_avg_pool),
    Entry("adaptive_avg_pool 1-D float64", "adaptive_avg_pool", NO.adaptive_avg_pool, dims=1, dtype="float64"),
    Entry("adaptive_max_pool: bin maxima", "adaptive_max_pool", NO.adaptive_max_pool),
]
