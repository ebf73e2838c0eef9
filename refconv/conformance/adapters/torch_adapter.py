"""PyTorch adapter: ``torch.nn.functional`` conv/conv_transpose/max_pool/avg_pool, gradients by autograd.

Declared restrictions (PyTorch's own): padding is one int per axis (both
sides), or ``'same'`` only with stride 1 (the odd zero goes at the end);
transposed convolution and pooling take symmetric padding only; pooling
padding is at most half the (dilated) window; average pooling has no
dilation.  dtypes float32, float64 and bfloat16 on CPU.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..cases import ALL, Capabilities, Case, padding_kinds
from ..targets import Target

SETUP = "from refconv.conformance import adapters\ntarget = adapters.get('torch').function({op!r})"


def _torch():
    import torch
    import torch.nn.functional as F

    return torch, F


def _t(a: Any):
    torch, _ = _torch()
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


def _np(t: Any) -> np.ndarray:
    torch, _ = _torch()
    t = t.detach()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def _pad_arg(padding: tuple, stride: tuple | None = None) -> Any:
    if all(lo == hi for lo, hi in padding):
        return tuple(lo for lo, _ in padding)
    return "same"  # only reached for cases declared supported: 'same' with stride 1


def _fn(name: str, dims: int):
    _, F = _torch()
    return getattr(F, f"{name}{dims}d")


def conv(x, w, b, *, stride, padding, dilation, groups):
    with warnings.catch_warnings():
        # padding='same' with an even kernel warns that it copies the input; the result is what we check
        warnings.simplefilter("ignore", UserWarning)
        return _np(_fn("conv", len(stride))(_t(x), _t(w), _t(b), stride, _pad_arg(padding), dilation, groups))


def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
    pad = tuple(lo for lo, _ in padding)
    return _np(_fn("conv_transpose", len(stride))(_t(x), _t(w), _t(b), stride, pad, output_padding, groups, dilation))


def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    pad = tuple(lo for lo, _ in padding)
    return _np(_fn("max_pool", len(stride))(_t(x), kernel_size, stride, pad, dilation, ceil_mode))


def avg_pool(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    pad = tuple(lo for lo, _ in padding)
    return _np(_fn("avg_pool", len(stride))(_t(x), kernel_size, stride, pad, ceil_mode, count_include_pad))


def conv_grad_input(dy, w, input_shape, *, stride, padding, dilation, groups):
    torch, _ = _torch()
    tw = _t(w)
    x = torch.zeros(tuple(input_shape), dtype=tw.dtype, requires_grad=True)
    y = _fn("conv", len(stride))(x, tw, None, stride, _pad_arg(padding), dilation, groups)
    (gx,) = torch.autograd.grad(y, x, grad_outputs=_t(dy))
    return _np(gx)


def conv_grad_weight(x, dy, weight_shape, *, stride, padding, dilation, groups):
    torch, _ = _torch()
    tx = _t(x)
    w = torch.zeros(tuple(weight_shape), dtype=tx.dtype, requires_grad=True)
    y = _fn("conv", len(stride))(tx, w, None, stride, _pad_arg(padding), dilation, groups)
    (gw,) = torch.autograd.grad(y, w, grad_outputs=_t(dy))
    return _np(gw)


FUNCTIONS = {f.__name__: f for f in (conv, conv_transpose, max_pool, avg_pool, conv_grad_input, conv_grad_weight)}


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
    if op == "max_pool":
        return base.replace(padding=frozenset({"symmetric"}), rule=_pool_pad_half_kernel,
                            notes=("max_pool padding above half the kernel size (PyTorch limits it by kernel_size, not the dilated window)",))
    if op == "avg_pool":
        return base.replace(padding=frozenset({"symmetric"}), dilation=False,
                            rule=_avg3d_input_not_smaller if dims == 3 else None,
                            notes=("avg_pool3d inputs smaller than the kernel (rejected even when padded)",) if dims == 3 else ())
    return base.replace(ops=())


def make(name: str = "torch") -> Target:
    return Target("torch", lambda op: FUNCTIONS[op], capabilities, SETUP, spec="torch")
