"""Built-in shape adapters for ``refconv check-shape``: other tools' output-shape functions.

Each adapter is a :class:`~refconv.conformance.shapecheck.ShapeTarget`: a
shape function ``f(op, input_shape, weight_shape, **params)`` in refconv's
layout (``(N, C, *S)``, the arguments of
:mod:`refconv.conformance.shapecheck.target`), the padding modes it offers per
op, and the limits it declares (documented restrictions of the tool's API,
which are not run rather than reported).  A wrong shape, or a configuration
the definition refuses that the tool accepts, is never declared: it is a
counterexample (``specs/conventions.md`` lists those found).

==================  ==========================================================================
name                what answers
==================  ==========================================================================
``onnx``            ``onnx.shape_inference.infer_shapes`` on one graph holding many single-op
                    nodes; ``onnx.opsetN`` for every opset where Conv, ConvTranspose, MaxPool
                    or AveragePool changed (1, 7, 8, 10, 11, 12, 19, 22); default 19
``onnxruntime``     the same models run in ONNX Runtime: the shape of the actual output;
                    ``onnxruntime.opsetN`` for the opsets from 7 on; default 19
``torch``           ``torch.nn.functional`` on meta tensors (``device='meta'``)
``tensorflow``      ``tf.function(...).get_concrete_function(tf.TensorSpec(...))``: the traced
                    output shape of ``tf.nn`` ops (channels last); no transposed convolution:
                    ``tf.nn.conv*_transpose`` takes the output shape from its caller
``keras``           Keras 3 ``layer.compute_output_shape`` (channels last), on the installed
                    backend
``refconv.summary`` refconv's own layer descriptions (:mod:`refconv.summary.layers`); no
                    transposed convolution layer exists there
==================  ==========================================================================

Padding modes are refconv's names: ``explicit`` pairs, ``valid``, ``same``
(ONNX ``SAME_UPPER``, TensorFlow and Keras ``'same'``), ``same_lower`` (ONNX
``SAME_LOWER``).

>>> NAMES
('onnx', 'onnxruntime', 'torch', 'tensorflow', 'keras', 'refconv.summary')
>>> is_adapter('onnx.opset11'), is_adapter('onnx.opset2')
(True, False)
>>> get('refconv.summary').fn('conv', (1, 3, 7), (4, 3, 3), stride=(2,), padding='same', dilation=(1,), groups=1)
(1, 4, 4)
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

import numpy as np

from .shapecheck.box import MODES, OPS, Cases
from .shapecheck.target import Call, Limit, ShapeTarget
from .targets import TargetError

__all__ = ["NAMES", "get", "is_adapter", "ONNX_OPSETS", "ORT_OPSETS", "DEFAULT_OPSET"]

NAMES = ("onnx", "onnxruntime", "torch", "tensorflow", "keras", "refconv.summary")
#: the opsets where one of Conv, ConvTranspose, MaxPool, AveragePool changed (onnx.defs)
ONNX_OPSETS = (1, 7, 8, 10, 11, 12, 19, 22)
#: ONNX Runtime guarantees opset 7 and above
ORT_OPSETS = tuple(v for v in ONNX_OPSETS if v >= 7)
DEFAULT_OPSET = 19
_LIBRARIES = {"onnx": (("onnx",), "onnx"), "onnxruntime": (("onnx", "onnxruntime"), "onnx"),
              "torch": (("torch",), "torch"), "tensorflow": (("tensorflow",), "tensorflow"),
              "keras": (("keras",), "keras")}
_ONNX_OP = {"conv": "Conv", "conv_transpose": "ConvTranspose", "max_pool": "MaxPool", "avg_pool": "AveragePool"}
_AUTO_PAD = {"valid": "VALID", "same": "SAME_UPPER", "same_lower": "SAME_LOWER"}
_cache: dict[str, ShapeTarget] = {}


def _opset(name: str) -> tuple[str, int | None]:
    family, _, variant = name.partition(".")
    if family in ("onnx", "onnxruntime") and variant:
        opsets = ONNX_OPSETS if family == "onnx" else ORT_OPSETS
        if variant.startswith("opset") and variant[5:].isdigit() and int(variant[5:]) in opsets:
            return family, int(variant[5:])
        return family, -1
    return name, None


def is_adapter(name: str) -> bool:
    """Whether ``name`` is a built-in shape adapter or one of its opset variants."""
    family, opset = _opset(name)
    return family in NAMES and opset != -1 and (opset is None or family in ("onnx", "onnxruntime"))


def get(name: str) -> ShapeTarget:
    """The shape adapter ``name``; TargetError naming the install command when its library is missing."""
    if not is_adapter(name):
        raise TargetError(f"target={name!r}: not a built-in shape adapter ({', '.join(NAMES)}; ONNX variants "
                          f"onnx.opsetN for N in {ONNX_OPSETS}, onnxruntime.opsetN for N in {ORT_OPSETS})")
    family, opset = _opset(name)
    modules, extra = _LIBRARIES.get(family, ((), ""))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        install = "pip install tensorflow-cpu" if extra == "tensorflow" else f"pip install 'refconv[{extra}]'"
        raise TargetError(f"target={name!r}: needs {', '.join(missing)}: {install}")
    if name not in _cache:
        if family in ("onnx", "onnxruntime"):
            target = (_onnx if family == "onnx" else _onnxruntime)(name, opset or DEFAULT_OPSET)
        else:
            target = {"torch": _torch, "tensorflow": _tensorflow, "keras": _keras, "refconv.summary": _summary}[family](name)
        target.setup = f"from refconv.conformance.shape_adapters import get\nshape_fn = get({name!r}).fn"
        _cache[name] = target
    return _cache[name]


# ---- declared limits: vectorized over a table of cases ----------------------------------------


def _one(results: list[Any]) -> Any:
    """The answer to a single call: the shape, or the refusal raised."""
    if isinstance(results[0], BaseException):
        raise results[0]
    return results[0]


def _limit(reason: str, ops: tuple[str, ...], modes: tuple[str, ...], rule: Callable[[Cases], np.ndarray]) -> Limit:
    def applies(t: Cases) -> np.ndarray:
        if t.op not in ops or t.mode not in modes:
            return np.zeros(len(t), bool)
        return np.asarray(rule(t), bool)

    return Limit(reason, applies)


def _any(a: np.ndarray) -> np.ndarray:
    """Per row of a (cases, axes) table: does any axis hold?"""
    return np.any(a, axis=1)


ASYMMETRIC = _limit("one padding per axis (both sides)", OPS, ("explicit",), lambda t: _any(t.lo != t.hi))
NO_CEIL = _limit("no ceil_mode", ("max_pool", "avg_pool"), MODES, lambda t: t.ceil)
NO_POOL_DILATION = _limit("no pooling dilation", ("max_pool",), MODES, lambda t: _any(t.d > 1))
STRIDE_AND_DILATION = _limit("no stride > 1 together with dilation > 1 (on any axes)", ("conv", "conv_transpose"),
                             MODES, lambda t: _any(t.s > 1) & _any(t.d > 1))


# ---- ONNX: shape inference, and ONNX Runtime on the same models ---------------------------------


def _node(op: str, index: int, x: tuple[int, ...], w: tuple[int, ...], params: dict[str, Any], opset: int) -> tuple[Any, list[tuple[int, ...]]]:
    """One ONNX node (inputs ``x{index}``, ``w{index}``, output ``y{index}``) and the shapes of its inputs."""
    from onnx import helper

    pad = params["padding"]
    kernel = list(w[2:]) if op in ("conv", "conv_transpose") else list(w)
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": list(params["stride"])}
    if isinstance(pad, str):
        attrs["auto_pad"] = _AUTO_PAD[pad]
    else:
        attrs["pads"] = [lo for lo, _ in pad] + [hi for _, hi in pad]  # [x1_begin, ..., x1_end, ...]
    if op in ("conv", "conv_transpose"):
        attrs.update(dilations=list(params["dilation"]), group=params["groups"])
        if op == "conv_transpose":
            attrs["output_padding"] = list(params["output_padding"])
        shapes = [x, w]
    else:
        if opset >= 10:  # ceil_mode (MaxPool, AveragePool) and dilations (MaxPool) arrived in opset 10
            attrs["ceil_mode"] = int(params["ceil_mode"])
            if op == "max_pool":
                attrs["dilations"] = list(params["dilation"])
        shapes = [x]
    names = [f"{v}{index}" for v in ("x", "w")[:len(shapes)]]
    return helper.make_node(_ONNX_OP[op], names, [f"y{index}"], **attrs), shapes


def _model(op: str, calls: list[Call], opset: int) -> Any:
    """One graph with a node per call: every input a graph input, every output a graph output of unknown shape."""
    from onnx import TensorProto, helper

    nodes, inputs, outputs = [], [], []
    for i, (x, w, params) in enumerate(calls):
        node, shapes = _node(op, i, x, w, params, opset)
        nodes.append(node)
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in zip(node.input, shapes)]
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None))
    model = helper.make_model(helper.make_graph(nodes, "shapes", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 9)  # readable by ONNX Runtime
    return model


def _dims(value_info: Any) -> Any:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)


def _infer(op: str, calls: list[Call], opset: int, chunk: int = 2000) -> list[Any]:
    from onnx import shape_inference

    out: list[Any] = []
    for start in range(0, len(calls), chunk):
        part = calls[start:start + chunk]
        try:
            model = shape_inference.infer_shapes(_model(op, part, opset), strict_mode=False)
            answers = [_dims(v) for v in model.graph.output]
        except Exception:  # noqa: BLE001 - one node failed the whole graph: ask node by node
            answers = [None] * len(part)
        for call, answer in zip(part, answers):
            out.append(answer if answer is not None else _infer_one(op, call, opset))
    return out


def _infer_one(op: str, call: Call, opset: int) -> Any:
    """One node in strict mode: its shape, or the inference error (a refusal)."""
    from onnx import shape_inference

    try:
        model = shape_inference.infer_shapes(_model(op, [call], opset), strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - the refusal is the answer
        return exc
    answer = _dims(model.graph.output[0])
    return answer if answer is not None else RuntimeError("shape inference gave the output no shape")


def _onnx_modes() -> dict[str, tuple[str, ...]]:
    return {op: MODES for op in OPS}


def _onnx_limits(opset: int) -> list[Limit]:
    return [NO_CEIL, NO_POOL_DILATION] if opset < 10 else []


def _onnx(name: str, opset: int) -> ShapeTarget:
    return ShapeTarget(name, lambda op, x, w, **p: _one(_infer(op, [(x, w, p)], opset)), OPS, _onnx_modes(),
                       _onnx_limits(opset), lambda op, calls, refusals: _infer(op, calls, opset),
                       about=f"onnx.shape_inference.infer_shapes, opset {opset}")


def _ort_session(model: Any) -> Any:
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # failures are raised as exceptions; keep stderr clean
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _ort_run(op: str, calls: list[Call], opset: int) -> list[Any]:
    """The output shapes of one session running every call's node on zeros; raises if any node fails."""
    model = _model(op, calls, opset)
    sess = _ort_session(model)
    feeds = {v.name: np.zeros([d.dim_value for d in v.type.tensor_type.shape.dim], np.float32)
             for v in model.graph.input}
    return [tuple(int(v) for v in y.shape) for y in sess.run(None, feeds)]


def _ort(op: str, calls: list[Call], opset: int, refusals: bool, chunk: int = 64) -> list[Any]:
    """Batches of nodes per session; a batch that fails is split until each failing node stands alone."""
    if refusals or len(calls) == 1:
        out: list[Any] = []
        for call in calls:
            try:
                out.extend(_ort_run(op, [call], opset))
            except Exception as exc:  # noqa: BLE001 - ONNX Runtime refuses the node
                out.append(exc)
        return out
    if len(calls) > chunk:
        return [r for s in range(0, len(calls), chunk) for r in _ort(op, calls[s:s + chunk], opset, False, chunk)]
    try:
        return _ort_run(op, calls, opset)
    except Exception:  # noqa: BLE001 - some node failed: halve
        half = len(calls) // 2
        return _ort(op, calls[:half], opset, False, chunk) + _ort(op, calls[half:], opset, False, chunk)


ORT_SAME_DILATION = _limit("ONNX Runtime's Conv has no SAME_UPPER / SAME_LOWER with dilation", ("conv",),
                           ("same", "same_lower"), lambda t: _any(t.d > 1))
ORT_OUTPUT_PADDING = _limit("ONNX Runtime's ConvTranspose: output_padding below the stride", ("conv_transpose",),
                            ("explicit", "valid"), lambda t: _any(t.op_pad >= t.s))
# "Pad should be smaller than kernel" (every opset): each side below kernel_shape, not the dilated window
ORT_POOL_PADDING = _limit("ONNX Runtime's MaxPool and AveragePool: each padding side below the kernel size (not of "
                          "the dilated window)", ("max_pool", "avg_pool"), ("explicit",),
                          lambda t: _any(np.maximum(t.lo, t.hi) >= t.k))


def _onnxruntime(name: str, opset: int) -> ShapeTarget:
    return ShapeTarget(name, lambda op, x, w, **p: _one(_ort(op, [(x, w, p)], opset, True)), OPS, _onnx_modes(),
                       _onnx_limits(opset) + [ORT_SAME_DILATION, ORT_OUTPUT_PADDING, ORT_POOL_PADDING],
                       lambda op, calls, refusals: _ort(op, calls, opset, refusals),
                       about=f"ONNX Runtime, opset {opset}: the shape of the actual output")


# ---- PyTorch: meta tensors ----------------------------------------------------------------------


def _torch_shape(op: str, x: tuple[int, ...], w: tuple[int, ...], **p: Any) -> tuple[int, ...]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'same' with an even kernel may copy the input: no matter on meta tensors
        return _torch_call(op, x, w, p)


def _torch_call(op: str, x: tuple[int, ...], w: tuple[int, ...], p: dict[str, Any]) -> tuple[int, ...]:
    import torch
    import torch.nn.functional as F

    d = len(x) - 2
    meta = torch.empty(x, device="meta")
    pad = p["padding"] if isinstance(p["padding"], str) else tuple(lo for lo, _ in p["padding"])
    if op == "conv":
        y = getattr(F, f"conv{d}d")(meta, torch.empty(w, device="meta"), None, p["stride"], pad, p["dilation"],
                                    p["groups"])
    elif op == "conv_transpose":
        y = getattr(F, f"conv_transpose{d}d")(meta, torch.empty(w, device="meta"), None, p["stride"], pad,
                                              p["output_padding"], p["groups"], p["dilation"])
    elif op == "max_pool":
        y = getattr(F, f"max_pool{d}d")(meta, w, p["stride"], pad, p["dilation"], p["ceil_mode"])
    else:
        y = getattr(F, f"avg_pool{d}d")(meta, w, p["stride"], pad, p["ceil_mode"])
    return tuple(y.shape)


def _torch(name: str) -> ShapeTarget:
    modes = {"conv": ("explicit", "valid", "same"), "conv_transpose": ("explicit",), "max_pool": ("explicit",),
             "avg_pool": ("explicit",)}
    limits = [
        ASYMMETRIC,
        _limit("padding='same' only at stride 1", ("conv",), ("same",), lambda t: _any(t.s > 1)),
        _limit("pooling padding at most half the kernel size (not of the dilated window)", ("max_pool", "avg_pool"),
               ("explicit",), lambda t: _any(np.maximum(t.lo, t.hi) > t.k // 2)),
        _limit("avg_pool3d: no input smaller than the kernel, even padded", ("avg_pool",), ("explicit",),
               lambda t: np.full(len(t), t.dims == 3) & _any(t.n < t.k)),
    ]
    return ShapeTarget(name, _torch_shape, OPS, modes, limits, about="torch.nn.functional on device='meta'")


# ---- TensorFlow: traced shapes --------------------------------------------------------------------


def _tf_op(tf: Any, op: str, a: Any, x: tuple[int, ...], w: tuple[int, ...], p: dict[str, Any], zeros: dict[Any, Any]) -> Any:
    """The ``tf.nn`` op of one call on the traced channels-last input ``a`` (``zeros``: filters by shape)."""
    pad = p["padding"]
    tf_pad: Any = pad.upper() if isinstance(pad, str) else [[0, 0]] + [list(q) for q in pad] + [[0, 0]]  # NHWC pairs
    if op == "conv":
        cout, cin_g, *k = w
        key = (*k, cin_g, cout)  # filters (*K, C_in/groups, C_out)
        filters = zeros[key] if key in zeros else zeros.setdefault(key, tf.zeros(key))
        if isinstance(tf_pad, list):
            return tf.nn.conv2d(a, filters, strides=list(p["stride"]), padding=tf_pad, dilations=list(p["dilation"]))
        return tf.nn.convolution(a, filters, strides=list(p["stride"]), padding=tf_pad, dilations=list(p["dilation"]))
    if op == "max_pool" and any(v > 1 for v in p["dilation"]):
        return tf.nn.pool(a, list(w), "MAX", strides=list(p["stride"]), padding=tf_pad, dilations=list(p["dilation"]))
    return (tf.nn.max_pool if op == "max_pool" else tf.nn.avg_pool)(a, list(w), list(p["stride"]), tf_pad)


def _tf(op: str, calls: list[Call]) -> list[Any]:
    """Every call traced in one ``tf.function``; each op's construction error is its refusal."""
    import tensorflow as tf

    specs = [tf.TensorSpec((x[0], *x[2:], x[1]), tf.float32) for x, _, _ in calls]  # channels last
    answers: list[Any] = [None] * len(calls)

    def body(*inputs: Any) -> Any:
        zeros: dict[Any, Any] = {}
        for i, (a, (x, w, p)) in enumerate(zip(inputs, calls)):
            try:
                shape = tuple(_tf_op(tf, op, a, x, w, p, zeros).shape)
                answers[i] = (shape[0], shape[-1], *shape[1:-1])  # (N, *S, C) -> (N, C, *S)
            except Exception as exc:  # noqa: BLE001 - TensorFlow refuses the op
                answers[i] = exc
        return tf.constant(0)

    tf.function(body, autograph=False).get_concrete_function(*specs)
    return answers


def _tf_batch(op: str, calls: list[Call], refusals: bool, chunk: int = 500) -> list[Any]:
    return [r for s in range(0, len(calls), chunk) for r in _tf(op, calls[s:s + chunk])]


def _tensorflow(name: str) -> ShapeTarget:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    ops = ("conv", "max_pool", "avg_pool")
    modes = {op: ("explicit", "valid", "same") for op in ops}
    limits = [
        _limit("explicit padding only in conv2d", ("conv",), ("explicit",), lambda t: np.full(len(t), t.dims != 2)),
        _limit("explicit padding only in max_pool, 1-D and 2-D, without dilation", ("max_pool", "avg_pool"),
               ("explicit",), lambda t: np.full(len(t), t.op == "avg_pool" or t.dims == 3) | _any(t.d > 1)),
        NO_CEIL,
        STRIDE_AND_DILATION,
        # tf.nn.pool, the dilated pooling
        _limit("dilated pooling: no stride > 1, no 'SAME', no stride above the window", ("max_pool",), MODES,
               lambda t: _any(t.d > 1) & (_any(t.s > 1) | (t.mode == "same") | _any(t.s > t.k))),
    ]
    return ShapeTarget(name, lambda op, x, w, **p: _one(_tf_batch(op, [(x, w, p)], False)), ops, modes, limits,
                       _tf_batch, about="tf.function(...).get_concrete_function(tf.TensorSpec(...)), channels last")


# ---- Keras 3: compute_output_shape ------------------------------------------------------------------


def _keras_backend() -> None:
    """Keras 3 picks its backend once, at import; without a choice (``KERAS_BACKEND``) it wants TensorFlow.
    Shapes do not depend on the backend: take an installed one, the lightest first."""
    import os
    import sys

    if "keras" in sys.modules or "KERAS_BACKEND" in os.environ:
        return
    for backend in ("jax", "torch", "tensorflow"):
        if importlib.util.find_spec(backend) is not None:
            os.environ["KERAS_BACKEND"] = backend
            return


def _keras_shape(op: str, x: tuple[int, ...], w: tuple[int, ...], **p: Any) -> tuple[int, ...]:
    import keras

    d = len(x) - 2
    pad = p["padding"]
    if op == "conv":
        layer = getattr(keras.layers, f"Conv{d}D")(w[0], w[2:], strides=p["stride"], padding=pad,
                                                   dilation_rate=p["dilation"], groups=p["groups"])
    elif op == "conv_transpose":
        # Keras infers output_padding (None) for an output of n*s under 'same'; 'valid' takes it as given
        layer = getattr(keras.layers, f"Conv{d}DTranspose")(w[1] * p["groups"], w[2:], strides=p["stride"],
                                                            padding=pad, dilation_rate=p["dilation"],
                                                            output_padding=None if pad == "same" else p["output_padding"])
    else:
        cls = f"MaxPooling{d}D" if op == "max_pool" else f"AveragePooling{d}D"
        layer = getattr(keras.layers, cls)(pool_size=w, strides=p["stride"], padding=pad)
    y = layer.compute_output_shape((x[0], *x[2:], x[1]))  # channels last
    return (y[0], y[-1], *y[1:-1])


def _keras(name: str) -> ShapeTarget:
    modes = {op: ("valid", "same") for op in OPS}
    limits = [
        NO_CEIL, NO_POOL_DILATION, STRIDE_AND_DILATION,
        _limit("Conv*DTranspose has no groups", ("conv_transpose",), MODES, lambda t: t.groups > 1),
        _limit("output_padding below the stride", ("conv_transpose",), ("valid",), lambda t: _any(t.op_pad >= t.s)),
    ]
    _keras_backend()
    return ShapeTarget(name, _keras_shape, OPS, modes, limits, about="Keras 3 layer.compute_output_shape, channels last")


# ---- refconv.summary: the layer descriptions ---------------------------------------------------------


def _summary_shape(op: str, x: tuple[int, ...], w: tuple[int, ...], **p: Any) -> tuple[int, ...]:
    from ..summary import layers

    if op == "conv":
        layer: Any = layers.Conv(w[0], w[2:], stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                                 groups=p["groups"])
    elif op == "max_pool":
        layer = layers.MaxPool(w, stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                               ceil_mode=p["ceil_mode"])
    else:
        layer = layers.AvgPool(w, stride=p["stride"], padding=p["padding"], ceil_mode=p["ceil_mode"])
    return (x[0], *layer.output_shape(x[1:]))


def _summary(name: str) -> ShapeTarget:
    ops = ("conv", "max_pool", "avg_pool")
    return ShapeTarget(name, _summary_shape, ops, {op: MODES for op in ops}, [],
                       about="refconv.summary.layers output_shape")
