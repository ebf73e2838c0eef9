"""ONNX Runtime adapter: one-node models (Conv, ConvTranspose, MaxPool, AveragePool) built with ``onnx``.

Padding pairs map to ``auto_pad='VALID'`` when all zero, to ``SAME_UPPER`` /
``SAME_LOWER`` when they are what that mode computes (so ONNX Runtime's own
``same`` arithmetic is checked too), and otherwise to explicit
``pads = [lo_1, ..., lo_d, hi_1, ..., hi_d]`` (auto_pad NOTSET).  Sessions are
cached per node and input shapes.  Gradients are not offered.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..cases import ALL, Capabilities
from ..targets import Target

SETUP = "from refconv.conformance import adapters\ntarget = adapters.get('onnxruntime').function({op!r})"
_ELEM = {"float32": 1, "float64": 11, "float16": 10}


@functools.lru_cache(maxsize=256)
def _session(op_type: str, attrs: tuple, shapes: tuple, dtype: str, opset: int = 19):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "float16": TensorProto.FLOAT16}[dtype]
    names = [f"in{i}" for i in range(len(shapes))]
    node = helper.make_node(op_type, names, ["out"], **dict(attrs))
    inputs = [helper.make_tensor_value_info(n, elem, list(s)) for n, s in zip(names, shapes)]
    out = helper.make_tensor_value_info("out", elem, None)
    graph = helper.make_graph([node], "one_node", inputs, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 9)
    # (no onnx.checker: the output shape is left for the runtime to infer)
    ort.set_default_logger_severity(4)  # errors are raised as exceptions; keep stderr clean
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_node(op_type: str, arrays: list, **attrs: Any) -> np.ndarray:
    """Run one ONNX node on numpy arrays (None inputs are left out)."""
    arrays = [np.ascontiguousarray(a) for a in arrays if a is not None]
    dtype = arrays[0].dtype.name
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in attrs.items()))
    attrs_list = tuple((k, list(v) if isinstance(v, tuple) else v) for k, v in key)
    sess = _session(op_type, tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in attrs_list),
                    tuple(a.shape for a in arrays), dtype)
    feeds = {f"in{i}": a for i, a in enumerate(arrays)}
    return sess.run(None, feeds)[0]


def _pads(padding) -> list[int]:
    return [lo for lo, _ in padding] + [hi for _, hi in padding]


def _padding_attrs(padding, spatial, kernel, stride, dilation) -> dict:
    """``auto_pad`` when the pairs are what one of its modes computes, else explicit ``pads`` (NOTSET).

    So the check exercises ONNX Runtime's own SAME_UPPER / SAME_LOWER / VALID arithmetic too.
    """
    from ... import shapes

    if all(p == (0, 0) for p in padding):
        return {"auto_pad": "VALID"}
    # the ONNX formula (out - 1)*s + span - n is not clamped at 0; where it is negative ONNX Runtime's pooling
    # shifts its windows or refuses (specs/conventions.md), so those cases get explicit pads
    if any((-(-n // s) - 1) * s + d * (k - 1) + 1 - n < 0 for n, k, s, d in zip(spatial, kernel, stride, dilation)):
        return {"pads": _pads(padding)}
    for mode, lower in (("SAME_UPPER", False), ("SAME_LOWER", True)):
        if all(tuple(p) == shapes.same_padding(n, k, s, d, lower=lower)
               for p, n, k, s, d in zip(padding, spatial, kernel, stride, dilation)):
            return {"auto_pad": mode}
    return {"pads": _pads(padding)}


def conv(x, w, b, *, stride, padding, dilation, groups):
    # ONNX Runtime's Conv refuses SAME_UPPER / SAME_LOWER with dilation ("Dilation not supported"): explicit pads then
    pad = (_padding_attrs(padding, x.shape[2:], w.shape[2:], stride, dilation) if all(d == 1 for d in dilation)
           else {"pads": _pads(padding)})
    return run_node("Conv", [x, w, b], kernel_shape=list(w.shape[2:]), strides=list(stride), dilations=list(dilation),
                    group=groups, **pad)


def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
    return run_node("ConvTranspose", [x, w, b], kernel_shape=list(w.shape[2:]), strides=list(stride), pads=_pads(padding),
                    output_padding=list(output_padding), dilations=list(dilation), group=groups)


def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    # auto_pad is only used without ceil_mode: with SAME the output size is fixed by the mode itself
    pad = {"pads": _pads(padding)} if ceil_mode else _padding_attrs(padding, x.shape[2:], kernel_size, stride, dilation)
    return run_node("MaxPool", [x], kernel_shape=list(kernel_size), strides=list(stride), dilations=list(dilation),
                    ceil_mode=int(ceil_mode), **pad)


def avg_pool(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    pad = {"pads": _pads(padding)} if ceil_mode else _padding_attrs(padding, x.shape[2:], kernel_size, stride, (1,) * len(stride))
    return run_node("AveragePool", [x], kernel_shape=list(kernel_size), strides=list(stride), ceil_mode=int(ceil_mode),
                    count_include_pad=int(count_include_pad), **pad)


FUNCTIONS = {f.__name__: f for f in (conv, conv_transpose, max_pool, avg_pool)}


def _op_below_stride(case) -> bool:
    # ONNX Runtime rejects output_padding >= stride even where the dilation allows it
    return all(o < s for o, s in zip(case.output_padding, case.stride))


def _pad_below_kernel(case) -> bool:
    # ONNX Runtime pooling: "Pad should be smaller than kernel" (the kernel size, not the dilated window)
    return all(lo < k and hi < k for (lo, hi), k in zip(case.padding, case.kernel))


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    base = ALL.replace(dtypes=("float32", "float64"), ops=tuple(FUNCTIONS))
    if op in ("conv", "conv_transpose", "avg_pool"):
        # the CPU provider has no double-precision Conv / ConvTranspose / AveragePool kernels
        base = base.replace(dtypes=("float32",))
    if op == "conv_transpose":
        return base.replace(rule=_op_below_stride, notes=("output_padding >= stride (ONNX Runtime rejects it)",))
    if op == "max_pool":
        return base.replace(rule=_pad_below_kernel, notes=("pooling padding >= kernel size",))
    if op == "avg_pool":
        return base.replace(dilation=False, rule=_pad_below_kernel, notes=("pooling padding >= kernel size",))
    return base


def make(name: str = "onnxruntime") -> Target:
    return Target("onnxruntime", lambda op: FUNCTIONS[op], capabilities, SETUP, spec="onnxruntime")
