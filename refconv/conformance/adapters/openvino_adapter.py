"""OpenVINO adapter: one-op models of the runtime's opset (``Convolution``, ``GroupConvolution``,
``ConvolutionBackpropData``, ``GroupConvolutionBackpropData``, ``MaxPool``, ``AvgPool``) compiled for a device.

Models are built with OpenVINO's Python opset API (``openvino.opset14``) in
the canonical layouts (``NCHW`` data, ``OIHW`` weights, transposed weights
``(C_in, C_out, *K)``; grouped weights ``(G, C_out/G, C_in/G, *K)`` and
``(G, C_in/G, C_out/G, *K)``), compiled once per configuration and cached.
The case's padding pairs reach OpenVINO through its own modes wherever the
case is what a mode computes (``auto_pad='same_upper'`` / ``'same_lower'`` /
``'valid'``, as for ONNX: ``refconv.conformance.adapters.onnx_adapter``),
and as explicit ``pads_begin`` / ``pads_end`` otherwise.  The bias is an
``Add`` node in the model.  ``ceil_mode`` is ``rounding_type='ceil_torch'``
(PyTorch's rule: the last window starts inside the input or the left
padding); ``count_include_pad=False`` is ``exclude_pad=True``.  Max pooling
with indices reads MaxPool's second output with ``axis=2`` (counted within
each ``(n, c)`` plane, as the canonical op).

Named variants and devices:

- ``openvino``: the device's default inference precision, whatever it is
  (:func:`environment` names it: on CPUs with bfloat16 instructions the CPU
  plugin's default ``INFERENCE_PRECISION_HINT`` is ``bf16``, and a float32
  claim then fails with the bfloat16 diagnosis; ``--precision bfloat16`` is
  the claim that holds there);
- ``openvino.f32``: ``INFERENCE_PRECISION_HINT='f32'`` (the documented way to
  ask for float32 arithmetic);
- ``openvino.explicit``: ``f32`` and always explicit ``pads_begin`` /
  ``pads_end`` (``ConvolutionBackpropData`` ignores ``auto_pad`` SAME without
  an ``output_shape``: ``specs/conventions.md``; this variant checks the rest);
- a device after a colon, ``openvino:gpu`` (the plain name is the CPU).

Declared restrictions: average pooling has no dilation and no
``divisor_override``; pooling refuses an empty batch; ``ConvolutionBackpropData``
does not refuse invalid configurations (an ``output_padding`` no forward
convolution produces); no gradients (OpenVINO is an inference runtime).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from ..cases import ALL, Capabilities
from ..targets import Target, TargetError
from .onnx_adapter import padding_attrs, transpose_padding_attrs

VARIANTS = ("openvino", "openvino.f32", "openvino.explicit")
#: refconv's device names -> OpenVINO's
DEVICES = {"cpu": "CPU", "gpu": "GPU"}


def _ov():
    import openvino as ov
    import openvino.opset14 as ops

    return ov, ops


@functools.lru_cache(maxsize=1)
def _core() -> Any:
    ov, _ = _ov()
    return ov.Core()


def _auto_pad(attrs: dict) -> dict:
    """ONNX-style padding attributes -> OpenVINO's ``auto_pad``, ``pads_begin``, ``pads_end``."""
    if "auto_pad" in attrs:
        return {"auto_pad": attrs["auto_pad"].lower(), "pads": None}
    pads = attrs["pads"]
    d = len(pads) // 2
    return {"auto_pad": "explicit", "pads": (tuple(pads[:d]), tuple(pads[d:]))}


def _pads(pad: dict, d: int) -> tuple[list[int], list[int]]:
    begin, end = pad["pads"] or ((0,) * d, (0,) * d)
    return list(begin), list(end)


@functools.lru_cache(maxsize=512)
def _compiled(op: str, attrs: tuple, shapes: tuple, dtype: str, device: str, hint: str | None) -> Any:
    """The compiled one-op model of ``op`` with ``attrs`` for inputs of ``shapes``."""
    ov, ops = _ov()
    a = dict(attrs)
    params = [ops.parameter(list(s), np.dtype(dtype), name=f"in{i}") for i, s in enumerate(shapes)]
    x = params[0]
    d = len(shapes[0]) - 2
    pad = {"auto_pad": a["auto_pad"], "pads": a["pads"]}
    begin, end = _pads(pad, d)
    if op == "conv":
        f = ops.group_convolution if a["groups"] > 1 else ops.convolution
        y = f(x, params[1], list(a["stride"]), begin, end, list(a["dilation"]), auto_pad=pad["auto_pad"])
    elif op == "conv_transpose":
        f = ops.group_convolution_backprop_data if a["groups"] > 1 else ops.convolution_backprop_data
        y = f(x, params[1], list(a["stride"]), pads_begin=begin, pads_end=end, dilations=list(a["dilation"]),
              auto_pad=pad["auto_pad"], output_padding=list(a["output_padding"]))
    elif op in ("max_pool", "max_pool_indices"):
        y = ops.max_pool(x, list(a["stride"]), list(a["dilation"]), begin, end, list(a["kernel"]),
                         rounding_type=a["rounding"], auto_pad=pad["auto_pad"], index_element_type="i64", axis=2)
    elif op == "avg_pool":
        y = ops.avg_pool(x, list(a["stride"]), begin, end, list(a["kernel"]), exclude_pad=a["exclude_pad"],
                         rounding_type=a["rounding"], auto_pad=pad["auto_pad"])
    else:  # pragma: no cover - the functions below name only these ops
        raise ValueError(f"op={op!r}: not an OpenVINO one-op model here")
    outputs = [y.output(0)] + ([y.output(1)] if op == "max_pool_indices" else [])
    if a.get("bias"):
        outputs = [ops.add(y.output(0), params[2]).output(0)]
    model = ov.Model(outputs, params, f"refconv_{op}")
    config = {} if hint is None else {"INFERENCE_PRECISION_HINT": hint}
    return _core().compile_model(model, DEVICES[device], config)


def _run(op: str, arrays: list, device: str, hint: str | None, **attrs: Any) -> list[np.ndarray]:
    arrays = [np.ascontiguousarray(v) for v in arrays if v is not None]
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in attrs.items()))
    model = _compiled(op, key, tuple(v.shape for v in arrays), arrays[0].dtype.name, device, hint)
    request = model.create_infer_request()
    res = request.infer({i: v for i, v in enumerate(arrays)})
    return [np.array(res[out]) for out in model.outputs]


def _bias(b: Any, d: int) -> Any:
    # the bias as a (1, C, 1, ..., 1) input of the Add node (it broadcasts over N and the spatial axes)
    return None if b is None else np.asarray(b).reshape((1, -1) + (1,) * d)


def _grouped(w: np.ndarray, groups: int, transposed: bool) -> np.ndarray:
    """``(C_out, C_in/G, *K)`` -> ``(G, C_out/G, C_in/G, *K)``; transposed ``(C_in, C_out/G, *K)`` -> ``(G, C_in/G, C_out/G, *K)``."""
    if groups == 1:
        return w
    return w.reshape(groups, w.shape[0] // groups, *w.shape[1:])


def _functions(device: str, hint: str | None, explicit: bool = False) -> dict[str, Callable]:
    def explicit_pads(padding) -> dict:
        return {"auto_pad": "explicit", "pads": (tuple(lo for lo, _ in padding), tuple(hi for _, hi in padding))}

    def conv(x, w, b, *, stride, padding, dilation, groups):
        pad = (explicit_pads(padding) if explicit else
               _auto_pad(padding_attrs(padding, x.shape[2:], w.shape[2:], stride, dilation)))
        (y,) = _run("conv", [x, _grouped(w, groups, False), _bias(b, len(stride))], device, hint,
                    stride=tuple(stride), dilation=tuple(dilation), groups=groups, bias=b is not None, **pad)
        return y

    def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
        pad = (explicit_pads(padding) if explicit else _auto_pad(
            transpose_padding_attrs(padding, x.shape[2:], w.shape[2:], stride, output_padding, dilation)))
        (y,) = _run("conv_transpose", [x, _grouped(w, groups, True), _bias(b, len(stride))], device, hint,
                    stride=tuple(stride), dilation=tuple(dilation), groups=groups, output_padding=tuple(output_padding),
                    bias=b is not None, **pad)
        return y

    def pool_pad(x, padding, kernel_size, stride, dilation, ceil_mode) -> dict:
        # with ceil_mode the output length is the ceil rule's, which no auto_pad mode describes
        if ceil_mode or explicit:
            return explicit_pads(padding)
        return _auto_pad(padding_attrs(padding, x.shape[2:], kernel_size, stride, dilation))

    def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        pad = pool_pad(x, padding, kernel_size, stride, dilation, ceil_mode)
        (y,) = _run("max_pool", [x], device, hint, stride=tuple(stride), dilation=tuple(dilation),
                    kernel=tuple(kernel_size), rounding="ceil_torch" if ceil_mode else "floor", **pad)
        return y

    def max_pool_indices(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        pad = explicit_pads(padding)
        y, i = _run("max_pool_indices", [x], device, hint, stride=tuple(stride), dilation=tuple(dilation),
                    kernel=tuple(kernel_size), rounding="ceil_torch" if ceil_mode else "floor", **pad)
        return y, i.astype(np.int64)

    def avg_pool(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
        pad = pool_pad(x, padding, kernel_size, stride, (1,) * len(stride), ceil_mode)
        (y,) = _run("avg_pool", [x], device, hint, stride=tuple(stride), kernel=tuple(kernel_size),
                    exclude_pad=not count_include_pad, rounding="ceil_torch" if ceil_mode else "floor", **pad)
        return y

    return {f.__name__: f for f in (conv, conv_transpose, max_pool, max_pool_indices, avg_pool)}


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    base = ALL.replace(ops=("conv", "conv_transpose", "max_pool", "max_pool_indices", "avg_pool"),
                       dtypes=("float32", "float64"), divisor_override=False)
    if op in ("max_pool", "max_pool_indices", "avg_pool"):
        # MaxPool / AvgPool shape inference: "Batch size is zero" (a refusal of N = 0)
        base = base.replace(empty_batch=False, notes=("pooling an empty batch (OpenVINO refuses N = 0)",))
    if op == "avg_pool":
        return base.replace(dilation=False, notes=base.notes + ("avg_pool dilation (OpenVINO's AvgPool has none)",))
    if op == "conv_transpose":
        # ConvolutionBackpropData computes any output_padding, also one no forward convolution produces
        return base.replace(refuses_invalid=False,
                            notes=("invalid conv_transpose configurations (OpenVINO does not refuse them)",))
    if op in base.ops:
        return base
    return base.replace(ops=())


def environment(device: str = "cpu", hint: str | None = None) -> list[str]:
    """The runtime version and the device's inference precision (its default unless the variant sets one)."""
    ov, _ = _ov()
    default = _core().get_property(DEVICES[device], "INFERENCE_PRECISION_HINT")
    used = hint or default.to_string()  # f32, bf16 or f16
    return [f"openvino {ov.get_version()} on {DEVICES[device]}: INFERENCE_PRECISION_HINT={used}"
            + ("" if hint else " (the device's default)")]


def make(name: str = "openvino") -> Target:
    """The adapter ``name``: ``openvino`` or ``openvino.f32``, optionally ``:cpu`` / ``:gpu``."""
    base, _, device = name.partition(":")
    device = device or "cpu"
    if base not in VARIANTS or device not in DEVICES:
        raise ValueError(f"name={name!r}: OpenVINO adapters are {', '.join(VARIANTS)} (with :gpu for the GPU)")
    if DEVICES[device] not in _core().available_devices:
        raise TargetError(f"target={name!r}: OpenVINO has no {DEVICES[device]} device here "
                          f"(available: {', '.join(_core().available_devices)})")
    hint = "f32" if base in ("openvino.f32", "openvino.explicit") else None
    _ov()  # imported here, once: seconds that no call's timeout should count
    functions = _functions(device, hint, explicit=base == "openvino.explicit")
    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({name!r}).function({{op!r}})"
    target = Target(name, lambda op: functions[op], capabilities, setup, spec=name)
    target.environment = lambda: environment(device, hint)
    return target
