"""TFLite adapter for ``qlinear_conv``: one ``CONV_2D`` int8 model written as a flatbuffer, run by the interpreter.

The model is written with the TFLite schema's object API (``schema_py_generated``, shipped with
TensorFlow) so that the case's scales and zero points are the model's own: a converter would choose its
own.  The interpreter is ``ai_edge_litert.interpreter.Interpreter`` when installed, else
``tf.lite.Interpreter``, with the reference kernels (``BUILTIN_REF``): the kernels that define TFLite's
arithmetic (gemmlowp's fixed point, refconv's rounding mode ``gemmlowp``).

Layouts: the case's ``(N, C, H, W)`` input becomes NHWC, the ``(C_out, C_in, KH, KW)`` weight OHWI.
Declared limits (what TFLite's int8 ``CONV_2D`` takes): 2-D; int8 input, weight and output; weight zero
points 0 (per-channel symmetric), per-tensor or per-channel scales; no groups; ``VALID`` or ``SAME``
padding (the odd zero at the end); no empty batch.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import numpy as np

from ..cases import ALL, Capabilities
from ..targets import Target

VARIANTS = ("tflite.quantized",)


def _interpreter(content: bytes) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        import tensorflow as tf

        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    it = Interpreter(model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    return it


def _tensor(S: Any, shape: Any, ttype: int, buffer: int, name: str, scale: Any = None, zero_point: Any = None) -> Any:
    t = S.TensorT()
    t.shape, t.type, t.buffer, t.name = [int(v) for v in shape], ttype, buffer, name
    if scale is not None:
        q = S.QuantizationParametersT()
        q.scale = [float(v) for v in np.ravel(scale)]
        q.zeroPoint = [int(v) for v in np.ravel(zero_point)]
        q.quantizedDimension = 0
        t.quantization = q
    return t


@functools.lru_cache(maxsize=64)
def _model(x_shape: tuple, w_bytes: bytes, w_shape: tuple, b_bytes: bytes | None, sx: float, zx: int, sw: tuple,
           sy: float, zy: int, stride: tuple, dilation: tuple, same: bool) -> bytes:
    import flatbuffers

    S = importlib.import_module("tensorflow.lite.python.schema_py_generated")
    buffers = [S.BufferT()]

    def buffer(data: bytes | None) -> int:
        b = S.BufferT()
        b.data = list(data) if data is not None else None
        buffers.append(b)
        return len(buffers) - 1

    cout = w_shape[0]
    # bias scale sx * sw[o] (float32), zero point 0: TFLite's convention for an int32 bias
    bias_scale = [float(np.float32(sx) * np.float32(s)) for s in sw]
    tensors = [_tensor(S, x_shape, S.TensorType.INT8, buffer(None), "x", [sx], [zx]),
               _tensor(S, w_shape, S.TensorType.INT8, buffer(w_bytes), "w", list(sw), [0] * len(sw)),
               _tensor(S, (cout,), S.TensorType.INT32, buffer(b_bytes or bytes(4 * cout)), "b", bias_scale,
                       [0] * len(sw)),
               _tensor(S, (), S.TensorType.INT8, buffer(None), "y", [sy], [zy])]
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType = S.BuiltinOptions.Conv2DOptions
    o = S.Conv2DOptionsT()
    o.padding = S.Padding.SAME if same else S.Padding.VALID
    o.strideH, o.strideW = stride
    o.dilationHFactor, o.dilationWFactor = dilation
    op.builtinOptions = o
    sg = S.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, [0], [3], [op]
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.CONV_2D
    code.version = 3
    m = S.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers, m.description = 3, [code], [sg], buffers, "refconv"
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, b, *, stride, padding,
                 dilation, groups, out_dtype):
    if groups != 1 or np.ndim(x) != 4 or out_dtype != "int8" or np.asarray(x).dtype != np.int8:
        raise ValueError("TFLite int8 CONV_2D: 2-D, int8 input and output, no groups")
    if np.any(np.asarray(w_zero_point) != 0):
        raise ValueError(f"w_zero_point={w_zero_point}: TFLite's int8 weights are symmetric (zero point 0)")
    same = any(p != (0, 0) for p in padding)
    xh = np.ascontiguousarray(np.moveaxis(np.asarray(x), 1, -1))                 # NCHW -> NHWC
    wh = np.ascontiguousarray(np.moveaxis(np.asarray(w), 1, -1)).astype(np.int8)  # OIHW -> OHWI
    cout = wh.shape[0]
    sw = tuple(float(v) for v in np.broadcast_to(np.asarray(w_scale, np.float32), (cout,)))
    bb = None if b is None else np.ascontiguousarray(np.asarray(b, np.int32)).tobytes()
    content = _model(xh.shape, wh.tobytes(), wh.shape, bb, float(np.float32(x_scale)), int(x_zero_point), sw,
                     float(np.float32(y_scale)), int(y_zero_point), tuple(stride), tuple(dilation), same)
    it = _interpreter(content)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], xh)
    it.invoke()
    return np.moveaxis(it.get_tensor(it.get_output_details()[0]["index"]), -1, 1).copy()


def _supported(case) -> bool:
    from ..quantized_ops import quant_of

    q = quant_of(case)
    return (q.x_dtype == q.out_dtype == q.w_dtype == "int8" and not any(q.w_zero_points(case.cout))
            and case.groups == 1)


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    return ALL.replace(ops=("qlinear_conv",), dims=(2,), padding=frozenset({"valid", "same"}), groups=False,
                       empty_batch=False, rule=_supported,
                       notes=("int8 input, weight and output only", "a weight zero point other than 0",
                              "padding other than VALID / SAME", "groups", "an empty batch", "1-D and 3-D"))


def make(name: str = "tflite.quantized") -> Target:
    if name not in VARIANTS:
        raise ValueError(f"name={name!r}: the TFLite adapter is {VARIANTS[0]!r}")
    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({name!r}).function({{op!r}})"

    def functions(op: str):
        if op != "qlinear_conv":
            raise KeyError(op)
        return qlinear_conv

    return Target(name, functions, capabilities, setup, spec=name)
