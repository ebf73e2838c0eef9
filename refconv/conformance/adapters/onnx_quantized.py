"""ONNX Runtime adapter for the quantized ops: one-node ``ConvInteger`` and ``QLinearConv`` models (opset 10).

The case's arrays, scales and zero points are the node's inputs as they are (scalars as 0-d tensors,
per-channel ``w_scale`` / ``w_zero_point`` as 1-D tensors of ``C_out``); the padding is always explicit
``pads = [lo_1, ..., lo_d, hi_1, ..., hi_d]``.  What ONNX Runtime's CPU kernels refuse is declared, not
routed around:

- ``ConvInteger``: per-tensor weight zero point only ("Non per-tensor quantization is not supported now");
- ``QLinearConv``: no int8 input with a uint8 weight, and the output type is the input's.

ONNX Runtime requantizes through float32 (MLAS: ``fl32(fl32(acc) * fl32(fl32(sx*sw)/sy))`` rounded half to
even): where that differs from the exact requantization the check fails (``specs/conventions.md``,
known divergence ``onnxruntime-qlinearconv-float32-requantization``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from ..cases import ALL, Capabilities
from ..targets import Target

VARIANTS = ("onnxruntime.quantized",)
OPSET = 10
_INPUTS = {"conv_integer": ("x", "w", "x_zero_point", "w_zero_point"),
           "qlinear_conv": ("x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale", "y_zero_point",
                            "b")}


@functools.lru_cache(maxsize=128)
def _session(op_type: str, attrs: tuple, types: tuple, out_type: str):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8, "int32": TensorProto.INT32,
            "float32": TensorProto.FLOAT}
    names = [n for n, _ in types]
    node = helper.make_node(op_type, names, ["y"], **dict(attrs))
    inputs = [helper.make_tensor_value_info(n, elem[t], None) for n, t in types]
    graph = helper.make_graph([node], op_type, inputs, [helper.make_tensor_value_info("y", elem[out_type], None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _attrs(w: np.ndarray, stride: Any, padding: Any, dilation: Any, groups: int) -> tuple:
    return (("kernel_shape", tuple(w.shape[2:])), ("strides", tuple(stride)), ("dilations", tuple(dilation)),
            ("pads", tuple(lo for lo, _ in padding) + tuple(hi for _, hi in padding)), ("group", int(groups)))


def _run(op_type: str, feeds: dict[str, Any], attrs: tuple, out_type: str) -> np.ndarray:
    arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in feeds.items() if v is not None}
    types = tuple((k, str(a.dtype)) for k, a in arrays.items())
    return _session(op_type, attrs, types, out_type).run(None, arrays)[0]


def conv_integer(x, w, x_zero_point, w_zero_point, *, stride, padding, dilation, groups):
    return _run("ConvInteger", {"x": x, "w": w, "x_zero_point": x_zero_point, "w_zero_point": w_zero_point},
                _attrs(w, stride, padding, dilation, groups), "int32")


def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b, *, stride, padding,
                 dilation, groups, out_dtype):
    feeds = dict(zip(_INPUTS["qlinear_conv"], (x, np.float32(x_scale), x_zero_point, w, np.asarray(w_scale, np.float32),
                                               w_zero_point, np.float32(y_scale), y_zero_point, b)))
    return _run("QLinearConv", feeds, _attrs(w, stride, padding, dilation, groups), str(np.asarray(x).dtype))


FUNCTIONS: dict[str, Callable[..., Any]] = {"conv_integer": conv_integer, "qlinear_conv": qlinear_conv}


def _supported(op: str):
    def rule(case) -> bool:
        from ..quantized_ops import quant_of

        q = quant_of(case)
        if op == "conv_integer":
            return not q.per_channel  # ConvInteger: per-tensor weight zero point only
        return q.out_dtype == q.x_dtype and not (q.x_dtype == "int8" and q.w_dtype == "uint8")
    return rule


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    notes = (("per-channel weight zero points (ConvInteger: per tensor only)",) if op == "conv_integer" else
             ("an output type other than the input's", "int8 input with uint8 weight"))
    return ALL.replace(ops=tuple(FUNCTIONS), rule=_supported(op), notes=notes)


def make(name: str = "onnxruntime.quantized") -> Target:
    if name not in VARIANTS:
        raise ValueError(f"name={name!r}: the ONNX Runtime quantized adapter is {VARIANTS[0]!r}")
    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({name!r}).function({{op!r}})"
    return Target(name, lambda op: FUNCTIONS[op], capabilities, setup, spec=name)
