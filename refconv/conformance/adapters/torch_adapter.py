"""PyTorch adapter: ``torch.nn.functional`` convolution and pooling, gradients by autograd.

Declared restrictions (PyTorch's own): padding is one int per axis (both
sides), or ``'same'`` only with stride 1 (the odd zero goes at the end);
transposed convolution and pooling take symmetric padding only; pooling
padding is at most half the kernel size; average pooling has no dilation,
and ``divisor_override`` only in 2-D and 3-D.  ``lp_pool`` has no padding
and no dilation, and computes ``avg_pool(x**p) * prod(k)``: with an odd
``p`` it sums the signed powers, and with ``ceil_mode`` it scales a window
cut short to the full window, so both are declared unsupported.  Adaptive
pooling is ``adaptive_{avg,max}_poolNd``; max pooling with indices is
``max_poolNd(..., return_indices=True)``.  dtypes float32, float64 and
bfloat16 on CPU.

Named variants, each a separate target (``refconv check torch.channels_last``):

- ``torch``: padding as one int per axis; ``'same'`` only where the pairs are
  asymmetric (an even kernel);
- ``torch.strings``: the padding strings ``'valid'`` and ``'same'`` wherever
  the case is what they compute (convolution and its gradients), ints
  otherwise;
- ``torch.channels_last``: every 4-D / 5-D tensor argument in
  ``torch.channels_last`` / ``torch.channels_last_3d`` memory format, the
  layout PyTorch's oneDNN paths prefer (shapes stay channels-first; 1-D has
  no such format and is not offered).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from ..cases import ALL, Capabilities, Case, padding_kinds
from ..targets import Target

VARIANTS = ("torch", "torch.strings", "torch.channels_last")


def _torch():
    import torch
    import torch.nn.functional as F

    return torch, F


def _np(t: Any) -> np.ndarray:
    torch, _ = _torch()
    t = t.detach()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def _fn(name: str, dims: int):
    _, F = _torch()
    return getattr(F, f"{name}{dims}d")


def _functions(channels_last: bool, strings: bool) -> dict[str, Callable]:
    """The six canonical functions for one variant: memory format and padding style fixed here."""

    def fmt(t: Any) -> Any:
        # channels-last strides, same shape and values
        torch, _ = _torch()
        if channels_last and t.dim() in (4, 5):
            return t.contiguous(memory_format=torch.channels_last if t.dim() == 4 else torch.channels_last_3d)
        return t

    def tensor(a: Any) -> Any:
        torch, _ = _torch()
        if a is None:
            return None
        a = np.asarray(a)
        if a.dtype.name == "bfloat16":
            return fmt(torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16))
        # a tensor owns its memory (as a PyTorch user's does): a copy, also of read-only or misaligned arrays
        return fmt(torch.from_numpy(np.array(a, copy=True, order="C")))

    def pad_arg(padding: tuple, stride: tuple, kernel: tuple, dilation: tuple) -> Any:
        if strings:
            from ... import shapes

            if all(tuple(p) == (0, 0) for p in padding):
                return "valid"
            # PyTorch's 'same' (stride 1 only): total d*(k-1), the odd zero at the end
            if all(s == 1 for s in stride) and all(tuple(p) == shapes.same_padding(1, k, 1, d)
                                                   for p, k, d in zip(padding, kernel, dilation)):
                return "same"
        if all(lo == hi for lo, hi in padding):
            return tuple(lo for lo, _ in padding)
        return "same"  # only reached for cases declared supported: 'same' with stride 1

    def conv(x, w, b, *, stride, padding, dilation, groups):
        with warnings.catch_warnings():
            # padding='same' with an even kernel warns that it copies the input; the result is what we check
            warnings.simplefilter("ignore", UserWarning)
            return _np(_fn("conv", len(stride))(tensor(x), tensor(w), tensor(b), stride,
                                                pad_arg(padding, stride, w.shape[2:], dilation), dilation, groups))

    def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
        pad = tuple(lo for lo, _ in padding)
        return _np(_fn("conv_transpose", len(stride))(tensor(x), tensor(w), tensor(b), stride, pad, output_padding,
                                                      groups, dilation))

    def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        pad = tuple(lo for lo, _ in padding)
        return _np(_fn("max_pool", len(stride))(tensor(x), kernel_size, stride, pad, dilation, ceil_mode))

    def avg_pool(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
        pad = tuple(lo for lo, _ in padding)
        extra = () if divisor_override is None else (divisor_override,)  # avg_pool1d has no divisor_override
        return _np(_fn("avg_pool", len(stride))(tensor(x), kernel_size, stride, pad, ceil_mode, count_include_pad, *extra))

    def max_pool_indices(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        pad = tuple(lo for lo, _ in padding)
        y, i = _fn("max_pool", len(stride))(tensor(x), kernel_size, stride, pad, dilation, ceil_mode, return_indices=True)
        return _np(y), i.numpy()

    def lp_pool(x, p, kernel_size, *, stride, ceil_mode):
        # lp_pool1d multiplies by kernel_size itself: plain ints in 1-D
        k, s = (kernel_size[0], stride[0]) if len(stride) == 1 else (kernel_size, stride)
        return _np(_fn("lp_pool", len(stride))(tensor(x), float(p), k, s, ceil_mode))

    def adaptive_avg_pool(x, output_size):
        return _np(_fn("adaptive_avg_pool", len(output_size))(tensor(x), output_size))

    def adaptive_max_pool(x, output_size):
        return _np(_fn("adaptive_max_pool", len(output_size))(tensor(x), output_size))

    def conv_grad(x, w, dy, wrt, *, stride, padding, dilation, groups):
        """Autograd of the forward conv with respect to ``wrt`` ('x' or 'w', given as a shape), as users compute it."""
        torch, _ = _torch()
        given = tensor(w if wrt == "x" else x)
        leaf = fmt(torch.zeros(tuple(x if wrt == "x" else w), dtype=given.dtype)).requires_grad_(True)
        tx, tw = (leaf, given) if wrt == "x" else (given, leaf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            y = _fn("conv", len(stride))(tx, tw, None, stride, pad_arg(padding, stride, tuple(tw.shape)[2:], dilation),
                                         dilation, groups)
        (g,) = torch.autograd.grad(y, leaf, grad_outputs=tensor(dy))
        return _np(g)

    def conv_grad_input(dy, w, input_shape, *, stride, padding, dilation, groups):
        return conv_grad(input_shape, w, dy, "x", stride=stride, padding=padding, dilation=dilation, groups=groups)

    def conv_grad_weight(x, dy, weight_shape, *, stride, padding, dilation, groups):
        return conv_grad(x, weight_shape, dy, "w", stride=stride, padding=padding, dilation=dilation, groups=groups)

    return {f.__name__: f for f in (conv, conv_transpose, max_pool, avg_pool, conv_grad_input, conv_grad_weight,
                                    max_pool_indices, lp_pool, adaptive_avg_pool, adaptive_max_pool)}


def _same_needs_stride1(case: Case) -> bool:
    # PyTorch: padding='same' is not supported for strided convolutions
    kinds = padding_kinds(case)
    return "symmetric" in kinds or ("same" in kinds and all(s == 1 for s in case.stride))


def _pool_pad_half_kernel(case: Case) -> bool:
    # PyTorch: "pad should be at most half of kernel size" -- the kernel size, not the dilated window
    return all(lo <= k // 2 for (lo, _), k in zip(case.padding, case.kernel))


def _avg3d_input_not_smaller(case: Case) -> bool:
    # PyTorch's avg_pool3d rejects an input smaller than the kernel even when the padding makes it fit
    return all(n >= k for n, k in zip(case.spatial, case.kernel))


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    base = ALL.replace(dtypes=("float64", "float32", "bfloat16"))
    if op in ("conv", "conv_grad_input", "conv_grad_weight"):
        return base.replace(padding=frozenset({"symmetric", "same"}), rule=_same_needs_stride1,
                            notes=("padding='same' with stride > 1 (PyTorch allows it only with stride 1)",))
    if op == "conv_transpose":
        return base.replace(padding=frozenset({"symmetric"}))
    if op in ("max_pool", "max_pool_indices"):
        return base.replace(padding=frozenset({"symmetric"}), rule=_pool_pad_half_kernel,
                            notes=("max_pool padding above half the kernel size (PyTorch limits it by kernel_size, not the dilated window)",))
    if op == "avg_pool":
        return base.replace(padding=frozenset({"symmetric"}), dilation=False, divisor_override=dims > 1,
                            rule=_avg_rule(dims),
                            notes=("avg_pool padding above half the kernel size",)
                            + (("avg_pool3d inputs smaller than the kernel (rejected even when padded)",) if dims == 3 else ())
                            + (("divisor_override in 1-D (avg_pool1d has none)",) if dims == 1 else ()))
    if op == "lp_pool":
        return base.replace(padding=frozenset({"valid"}), dilation=False, ceil_mode=False, rule=_even_norm,
                            notes=("lp_pool padding and dilation (PyTorch's lp_pool has neither)",
                                   "lp_pool with odd p (PyTorch sums the signed powers x**p)",
                                   "lp_pool ceil_mode (PyTorch scales a window cut short to the full window)"))
    if op in ("adaptive_avg_pool", "adaptive_max_pool"):
        return base.replace(refuses_invalid=False,
                            notes=("adaptive pooling to an output size of 0 (PyTorch returns an empty result)",))
    return base.replace(ops=())


def _avg_rule(dims: int) -> Callable[[Case], bool]:
    def rule(case: Case) -> bool:
        # PyTorch: padding at most half the kernel size; avg_pool3d also needs the input at least the kernel
        return _pool_pad_half_kernel(case) and (dims != 3 or _avg3d_input_not_smaller(case))

    return rule


def _even_norm(case: Case) -> bool:
    # PyTorch's lp_pool sums x**p with its sign: the definition's sum of |x|**p only for an even p
    return case.norm % 2 == 0


def _channels_last_capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    return capabilities(op, dims, dtype).replace(dims=(2, 3))


FUNCTIONS = _functions(channels_last=False, strings=False)


def make(name: str = "torch") -> Target:
    """The adapter ``name``: ``torch``, ``torch.strings`` or ``torch.channels_last``."""
    if name not in VARIANTS:
        raise ValueError(f"name={name!r}: PyTorch variants are {', '.join(VARIANTS)}")
    functions = _functions(channels_last=name == "torch.channels_last", strings=name == "torch.strings")
    caps = _channels_last_capabilities if name == "torch.channels_last" else capabilities
    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({name!r}).function({{op!r}})"
    return Target(name, lambda op: functions[op], caps, setup, spec=name)
