"""PyTorch quantized convolution: ``torch.ao.nn.quantized.functional.conv{1,2,3}d`` on each CPU engine.

``qlinear_conv`` only (PyTorch has no ConvInteger).  The case's integers become quantized tensors without any
rounding (``torch._make_per_tensor_quantized_tensor`` / ``_make_per_channel_quantized_tensor`` take the
integer representation as it is); the output is the result's ``int_repr()``.  PyTorch's bias is a float:
the case's int32 bias ``b`` (in the accumulator's scale ``sx * sw[o]``) is passed as
``float32(b * float32(sx * sw[o]))``, its value in real units, which is how a quantized model stores it.

Each engine is its own target, selected for the call and restored after it:

- ``torch.quantized``: the engine PyTorch selects by default on this machine (``x86``);
- ``torch.quantized.x86``, ``torch.quantized.fbgemm``, ``torch.quantized.qnnpack``, ``torch.quantized.onednn``.

Declared limits (what PyTorch refuses or cannot express): quint8 input and output, qint8 weight; symmetric
padding (one ``padding`` per axis); the bias within ``2**24`` in magnitude (a float32 bias holds larger
int32 values only approximately).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cases import ALL, Capabilities
from ..targets import Target

ENGINES = ("x86", "fbgemm", "qnnpack", "onednn")
VARIANTS = ("torch.quantized",) + tuple(f"torch.quantized.{e}" for e in ENGINES)


def _qtensor(torch: Any, a: np.ndarray, scale: Any, zero_point: Any, per_channel: bool) -> Any:
    t = torch.from_numpy(np.ascontiguousarray(a))
    if per_channel:
        return torch._make_per_channel_quantized_tensor(
            t, torch.from_numpy(np.asarray(scale, np.float64)), torch.from_numpy(np.asarray(zero_point, np.int64)), 0)
    return torch._make_per_tensor_quantized_tensor(t, float(scale), int(zero_point))


def _function(engine: str | None):
    def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b, *, stride,
                     padding, dilation, groups, out_dtype):
        import torch
        import torch.ao.nn.quantized.functional as qF

        if any(lo != hi for lo, hi in padding):
            raise ValueError(f"padding={padding}: PyTorch's quantized conv pads both sides alike")
        if np.asarray(x).dtype != np.uint8 or out_dtype != "uint8":
            raise ValueError("PyTorch's quantized conv takes a quint8 input and gives a quint8 output")
        dims = np.ndim(x) - 2
        conv = {1: qF.conv1d, 2: qF.conv2d, 3: qF.conv3d}[dims]
        per_channel = np.ndim(w_scale) > 0 or np.ndim(w_zero_point) > 0
        cout = np.shape(w)[0]
        ws = np.broadcast_to(np.asarray(w_scale, np.float32), (cout,))
        wz = np.broadcast_to(np.asarray(w_zero_point, np.int64), (cout,))
        bias = None
        if b is not None:
            # the int32 bias in real units: b * (sx * sw[o]), in float32 as a float bias is stored
            bias = torch.from_numpy((np.asarray(b).astype(np.float32) * (np.float32(x_scale) * ws)).astype(np.float32))
        before = torch.backends.quantized.engine
        try:
            if engine is not None:
                torch.backends.quantized.engine = engine
            qx = _qtensor(torch, np.asarray(x), np.float32(x_scale), int(x_zero_point), False)
            qw = _qtensor(torch, np.asarray(w), ws if per_channel else ws[0], wz if per_channel else wz[0], per_channel)
            y = conv(qx, qw, bias, stride=tuple(stride), padding=tuple(lo for lo, _ in padding),
                     dilation=tuple(dilation), groups=groups, scale=float(np.float32(y_scale)),
                     zero_point=int(y_zero_point), dtype=torch.quint8)
        finally:
            torch.backends.quantized.engine = before
        return y.int_repr().numpy()

    return qlinear_conv


def _supported(case) -> bool:
    from ..quantized_ops import quant_of

    q = quant_of(case)
    return (q.x_dtype == "uint8" and q.out_dtype == "uint8" and q.w_dtype == "int8"
            and all(lo == hi for lo, hi in case.padding) and max(abs(v) for v in q.b_range) <= 2**24)


def _symmetric_weight(case) -> bool:
    from ..quantized_ops import quant_of

    return _supported(case) and not any(quant_of(case).w_zero_points(case.cout))


def _capabilities(engine: str | None):
    def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
        notes = ("quint8 input and output, qint8 weight only", "asymmetric padding", "a bias beyond 2**24 (float32 bias)")
        if engine == "onednn":
            # "ONEDNN only supports symmetric quantization of weight, whose zero point must be 0"
            return ALL.replace(ops=("qlinear_conv",), padding=frozenset({"symmetric"}), rule=_symmetric_weight,
                               notes=notes + ("a weight zero point other than 0 (oneDNN)",))
        return ALL.replace(ops=("qlinear_conv",), padding=frozenset({"symmetric"}), rule=_supported, notes=notes)
    return capabilities


def make(name: str = "torch.quantized") -> Target:
    if name not in VARIANTS:
        raise ValueError(f"name={name!r}: PyTorch quantized engines are {', '.join(VARIANTS)}")
    engine = None if name == "torch.quantized" else name.rpartition(".")[2]
    fn = _function(engine)

    def functions(op: str):
        if op != "qlinear_conv":
            raise KeyError(op)
        return fn

    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({name!r}).function({{op!r}})"
    return Target(name, functions, _capabilities(engine), setup, spec=name)
