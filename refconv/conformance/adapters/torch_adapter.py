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
``max_poolNd(..., return_indices=True)``.  Unbatched inputs ``(C, *S)`` are
taken wherever PyTorch takes them (``Capabilities.unbatched``).  dtypes
float32, float64 and bfloat16 on CPU.

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

import functools

import warnings
from typing import Any, Callable

import numpy as np

from ..cases import ALL, Capabilities, Case, padding_kinds
from ..targets import Target, not_offered_note

VARIANTS = ("torch", "torch.strings", "torch.channels_last")


def _torch():
    import torch
    import torch.nn.functional as F

    return torch, F


def _np(t: Any) -> np.ndarray:
    torch, _ = _torch()
    t = t.detach().cpu()  # a result on another device comes back to the host
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def _fn(name: str, dims: int):
    _, F = _torch()
    return getattr(F, f"{name}{dims}d")


def _functions(channels_last: bool, strings: bool, device: str = "cpu") -> dict[str, Callable]:
    """The six canonical functions for one variant: memory format and padding style fixed here."""

    def fmt(t: Any) -> Any:
        # channels-last strides, same shape and values, on the adapter's device
        torch, _ = _torch()
        t = t if device == "cpu" else t.to(device)
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

    def moded(t, padding, padding_mode):
        """``t`` padded as PyTorch's modules do for a padding_mode other than 'zeros' (F.pad, last axis first)."""
        _, F = _torch()
        return F.pad(t, [v for lo_hi in reversed(padding) for v in lo_hi], mode=padding_mode)

    def conv(x, w, b, *, stride, padding, dilation, groups, padding_mode="zeros"):
        if padding_mode != "zeros":
            zero = ((0, 0),) * len(stride)
            return _np(_fn("conv", len(stride))(moded(tensor(x), padding, padding_mode), tensor(w), tensor(b), stride,
                                                pad_arg(zero, stride, w.shape[2:], dilation), dilation, groups))
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
        return _np(y), i.cpu().numpy()

    def lp_pool(x, p, kernel_size, *, stride, ceil_mode):
        # lp_pool1d multiplies by kernel_size itself: plain ints in 1-D
        k, s = (kernel_size[0], stride[0]) if len(stride) == 1 else (kernel_size, stride)
        return _np(_fn("lp_pool", len(stride))(tensor(x), float(p), k, s, ceil_mode))

    def adaptive_avg_pool(x, output_size):
        return _np(_fn("adaptive_avg_pool", len(output_size))(tensor(x), output_size))

    def adaptive_max_pool(x, output_size):
        return _np(_fn("adaptive_max_pool", len(output_size))(tensor(x), output_size))

    def conv_grad(x, w, dy, wrt, *, stride, padding, dilation, groups, padding_mode="zeros"):
        """Autograd of the forward conv with respect to ``wrt`` ('x' or 'w', given as a shape), as users compute it."""
        torch, _ = _torch()
        given = tensor(w if wrt == "x" else x)
        leaf = fmt(torch.zeros(tuple(x if wrt == "x" else w), dtype=given.dtype)).requires_grad_(True)
        tx, tw = (leaf, given) if wrt == "x" else (given, leaf)
        if padding_mode != "zeros":
            # the module's path: F.pad with the mode (its backward accumulates the copies), no conv padding
            tx, padding = moded(tx, padding, padding_mode), ((0, 0),) * len(stride)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            y = _fn("conv", len(stride))(tx, tw, None, stride, pad_arg(padding, stride, tuple(tw.shape)[2:], dilation),
                                         dilation, groups)
        (g,) = torch.autograd.grad(y, leaf, grad_outputs=tensor(dy))
        return _np(g)

    def conv_grad_input(dy, w, input_shape, *, stride, padding, dilation, groups, padding_mode="zeros"):
        return conv_grad(input_shape, w, dy, "x", stride=stride, padding=padding, dilation=dilation, groups=groups,
                         padding_mode=padding_mode)

    def conv_grad_weight(x, dy, weight_shape, *, stride, padding, dilation, groups, padding_mode="zeros"):
        return conv_grad(x, weight_shape, dy, "w", stride=stride, padding=padding, dilation=dilation, groups=groups,
                         padding_mode=padding_mode)

    def leaf_grad(shape: Any, like: Any, forward: Callable, dy: Any) -> np.ndarray:
        """Autograd of ``forward(leaf)`` with respect to a zero leaf of ``shape`` (dtype of ``like``) at ``dy``."""
        torch, _ = _torch()
        leaf = fmt(torch.zeros(tuple(shape), dtype=tensor(like).dtype)).requires_grad_(True)
        (g,) = torch.autograd.grad(forward(leaf), leaf, grad_outputs=tensor(dy))
        return _np(g)

    def conv_grad_bias(dy):
        # the bias gradient of a 1x1 convolution whose output has dy's shape: PyTorch's reduction of dy
        torch, _ = _torch()
        d = np.ndim(dy) - 2
        x = torch.zeros((np.shape(dy)[0], 1, *np.shape(dy)[2:]), dtype=tensor(dy).dtype)
        w = torch.zeros((np.shape(dy)[1], 1) + (1,) * d, dtype=x.dtype)
        return leaf_grad((np.shape(dy)[1],), dy, lambda b: _fn("conv", d)(x, w, b), dy)

    def conv_transpose_grad_input(dy, w, *, stride, padding, output_padding, dilation, groups):
        pad = tuple(lo for lo, _ in padding)
        # x's shape: the transposed op's input, from dy by the adjoint convolution's size
        shape = (np.shape(dy)[0], np.shape(w)[0], *[
            (m + 2 * p - di * (k - 1) - 1 - op) // s + 1
            for m, p, di, k, op, s in zip(np.shape(dy)[2:], pad, dilation, np.shape(w)[2:], output_padding, stride)])
        return leaf_grad(shape, dy, lambda x: _fn("conv_transpose", len(stride))(
            x, tensor(w), None, stride, pad, output_padding, groups, dilation), dy)

    def conv_transpose_grad_weight(x, dy, weight_shape, *, stride, padding, output_padding, dilation, groups):
        pad = tuple(lo for lo, _ in padding)
        return leaf_grad(weight_shape, x, lambda w: _fn("conv_transpose", len(stride))(
            tensor(x), w, None, stride, pad, output_padding, groups, dilation), dy)

    def max_pool_grad(dy, x, kernel_size, *, stride, padding, dilation, ceil_mode):
        torch, _ = _torch()
        pad = tuple(lo for lo, _ in padding)
        tx = tensor(x).requires_grad_(True)
        y = _fn("max_pool", len(stride))(tx, kernel_size, stride, pad, dilation, ceil_mode)
        (g,) = torch.autograd.grad(y, tx, grad_outputs=tensor(dy))
        return _np(g)

    def avg_pool_grad(dy, input_shape, kernel_size, *, stride, padding, ceil_mode, count_include_pad,
                      divisor_override=None):
        pad = tuple(lo for lo, _ in padding)
        extra = () if divisor_override is None else (divisor_override,)
        return leaf_grad(input_shape, dy, lambda x: _fn("avg_pool", len(stride))(
            x, kernel_size, stride, pad, ceil_mode, count_include_pad, *extra), dy)

    def max_unpool(y, indices, kernel_size, *, stride, padding, output_size):
        torch, _ = _torch()
        pad = tuple(lo for lo, _ in padding)
        idx = torch.from_numpy(np.array(indices, dtype=np.int64, copy=True, order="C"))
        return _np(_fn("max_unpool", len(stride))(tensor(y), idx, kernel_size, stride, pad, output_size))

    def fractional_max_pool(x, kernel_size, output_size, samples, *, return_indices=False):
        # PyTorch's 2-D kernel reads a plane's samples as (u_W, u_H), the axes last first; the 3-D one in axis order
        u = np.asarray(samples)[..., ::-1] if len(kernel_size) == 2 else np.asarray(samples)
        y, i = _fn("fractional_max_pool", len(kernel_size))(tensor(x), kernel_size, output_size=output_size,
                                                            return_indices=True, _random_samples=tensor(u))
        return (_np(y), i.cpu().numpy()) if return_indices else _np(y)

    def deform_conv(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
        # torchvision infers groups from w and offset_groups from the offset's channels; symmetric padding only
        from torchvision.ops import deform_conv2d

        return _np(deform_conv2d(tensor(x), tensor(offset), tensor(w), tensor(b), stride=stride,
                                 padding=tuple(lo for lo, _ in padding), dilation=dilation, mask=tensor(mask)))

    return {f.__name__: f for f in (conv, conv_transpose, max_pool, avg_pool, conv_grad_input, conv_grad_weight,
                                    max_pool_indices, lp_pool, adaptive_avg_pool, adaptive_max_pool, conv_grad_bias,
                                    conv_transpose_grad_input, conv_transpose_grad_weight, max_pool_grad,
                                    avg_pool_grad, max_unpool, fractional_max_pool, deform_conv)}


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
    # unbatched inputs (C, *S): PyTorch takes them for convolution, transposed convolution, pooling and unpooling
    base = ALL.replace(dtypes=("float64", "float32", "bfloat16"), unbatched=True)
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
    if op == "conv_grad_bias":
        return base
    if op in ("conv_transpose_grad_input", "conv_transpose_grad_weight"):
        return capabilities("conv_transpose", dims, dtype).replace(ops=(op,))
    if op == "max_pool_grad":
        # a window of padding only sends its gradient past its plane (memory corruption on the last plane):
        # recorded in specs/conventions.md, never run in the process that checks
        caps = capabilities("max_pool", dims, dtype)
        return caps.replace(ops=(op,), rule=lambda c: caps.rule(c) and not _padding_only_window(c),
                            notes=caps.notes + ("max_pool_grad with a window entirely in the padding (PyTorch writes "
                                                "its gradient past the (n, c) plane)",))
    if op == "avg_pool_grad":
        return capabilities("avg_pool", dims, dtype).replace(ops=(op,))
    if op == "max_unpool":
        return base.replace(padding=frozenset({"symmetric"}))
    if op == "fractional_max_pool":
        return base.replace(dims=tuple(d for d in base.dims if d > 1), rule=_fractional_size(dims),
                            notes=("fractional_max_pool in 1-D (PyTorch has 2-D and 3-D only)",
                                   "fractional_max_pool to an output size of 0 (PyTorch returns an empty result)")
                            + (("output_size + kernel_size - 1 = n in 3-D (fractional_max_pool3d refuses it)",)
                               if dims == 3 else ()))
    if op == "deform_conv":
        missing = _torchvision_missing()
        if missing:  # not offered here: a whole-library run leaves it out, --op deform_conv names why
            return base.replace(ops=(), notes=(not_offered_note("deform_conv", "torchvision.ops.deform_conv2d does not "
                                                                f"load ({missing}); install the torchvision built for "
                                                                "this torch"),))
        return base.replace(dims=(2,), dtypes=("float64", "float32"), padding=frozenset({"symmetric"}),
                            notes=("deform_conv other than 2-D (torchvision.ops.deform_conv2d)",
                                   "deform_conv with asymmetric padding (one int per axis)"))
    if op in ("adaptive_avg_pool", "adaptive_max_pool"):
        return base.replace(refuses_invalid=False,
                            notes=("adaptive pooling to an output size of 0 (PyTorch returns an empty result)",))
    return base.replace(ops=())


def _fractional_size(dims: int) -> Callable[[Case], bool]:
    def rule(case: Case) -> bool:
        # fractional_max_pool3d: output_size + kernel_size - 1 < n ("too large relative to input"); 2-D: <=.
        # An output size of 0 is not refused (an empty result), like adaptive pooling's
        sizes = case.output_size or ()
        if any(o < 1 for o in sizes):
            return False
        return dims != 3 or all(o + k - 1 < n for o, k, n in zip(sizes, case.kernel, case.spatial))

    return rule


@functools.lru_cache(maxsize=None)
def _torchvision_missing() -> str:
    """Why torchvision does not load here ('' when it does): missing, or built for another torch."""
    try:
        import torchvision.ops  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ModuleNotFoundError, or RuntimeError/OSError for a mismatched build
        return f"{type(exc).__name__}: {exc}"
    return ""


def _function(functions: dict[str, Callable], op: str) -> Callable:
    """The canonical function of ``op``; deform_conv needs torchvision, refused by name when it does not load."""
    missing = _torchvision_missing() if op == "deform_conv" else ""
    if missing:
        from ..targets import TargetError

        raise TargetError(f"op='deform_conv': the torch adapter computes it with torchvision.ops.deform_conv2d, "
                          f"which does not load ({missing}); install the torchvision built for this torch")
    return functions[op]


def _padding_only_window(case: Case) -> bool:
    from ..divergences import _window_in_padding

    return _window_in_padding("torch", case)


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


def environment(device: str = "cpu") -> list[str]:
    """The math modes in force on ``device`` (on CUDA: TF32 for cuDNN convolutions, PyTorch's default there)."""
    torch, _ = _torch()
    if device == "cpu":
        return [f"torch {torch.__version__} on the CPU"]
    return [f"torch {torch.__version__} on {device} ({torch.cuda.get_device_name(0)}): "
            f"torch.backends.cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} (TF32 inputs to cuDNN convolutions), "
            f"torch.backends.cuda.matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}"]


def make(name: str = "torch") -> Target:
    """The adapter ``name``: ``torch``, ``torch.strings`` or ``torch.channels_last``, optionally ``:cuda``."""
    name, _, device = name.partition(":")
    if name not in VARIANTS or device not in ("", "cpu", "cuda"):
        raise ValueError(f"name={name!r}: PyTorch variants are {', '.join(VARIANTS)} (with :cuda for the GPU)")
    device = device or "cpu"
    if device == "cuda" and not _torch()[0].cuda.is_available():
        from ..targets import TargetError

        raise TargetError(f"target={name + ':cuda'!r}: PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
    functions = _functions(channels_last=name == "torch.channels_last", strings=name == "torch.strings", device=device)
    caps = _channels_last_capabilities if name == "torch.channels_last" else capabilities
    full = name if device == "cpu" else f"{name}:{device}"
    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({full!r}).function({{op!r}})"
    target = Target(full, lambda op: _function(functions, op), caps, setup, spec=full)
    target.environment = lambda: environment(device)
    return target
