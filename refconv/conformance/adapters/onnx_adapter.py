"""ONNX Runtime adapter: one-node models (Conv, ConvTranspose, MaxPool, AveragePool, LpPool,
GlobalAveragePool, GlobalMaxPool) built with ``onnx``.

The case's padding pairs reach ONNX Runtime through the library's own modes
wherever the case is what a mode computes: ``auto_pad='SAME_UPPER'`` /
``'SAME_LOWER'`` when the pairs are that mode's padding (for ``ConvTranspose``
the ONNX split of ``total_padding`` for an output of ``n * stride``),
``'VALID'`` when they are all zero, and explicit
``pads = [lo_1, ..., lo_d, hi_1, ..., hi_d]`` (``auto_pad='NOTSET'``)
otherwise.  So ONNX Runtime's own ``auto_pad`` arithmetic is checked, and
where it is wrong the check fails (``specs/conventions.md`` lists the known
divergences; ``refconv check --allow-known`` accepts them).  The one
exception is a refusal, not a wrong result: ONNX Runtime's ``Conv`` refuses
``SAME_*`` with a dilation ("Dilation not supported"), so dilated
convolutions always get explicit pads.

Named variants (``refconv check onnxruntime.opset11`` ...):

- ``onnxruntime``: opset 19, modes as above;
- ``onnxruntime.explicit``: opset 19, always explicit ``pads``;
- ``onnxruntime.opsetN`` for N in 7, 10, 11, 22: the kernels registered for
  that opset (MaxPool gained ``ceil_mode`` and ``dilations`` in opset 10,
  AveragePool ``ceil_mode`` in 10).

Average pooling's ``dilation`` is ``AveragePool``'s ``dilations`` (opset 19
on); ONNX has no ``divisor_override``.  ``max_pool_indices`` reads MaxPool's
second output ``Indices`` (``storage_order=0``, counted across the whole
tensor) and brings it back to the canonical count within each ``(n, c)``
plane.  Adaptive pooling is offered where it is global pooling (output size 1
on every axis).  Sessions are cached per node and input shapes.  Gradients
are not offered, nor unbatched inputs (ONNX's operators take ``(N, C, *S)``).

A convolution's ``padding_mode`` is expressed as ONNX users express it: a
``Pad`` node (``mode='reflect'``, ``'edge'`` for replicate, ``'wrap'`` for
circular; ``pads`` over every axis, zeros on N and C) followed by ``Conv``
with zero ``pads``.  ``Pad`` takes its pads as an input from opset 11 and has
``wrap`` from opset 19: the opset 7 and 10 variants do not offer padding
modes, the opset 11 variant not ``circular``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from ..cases import ALL, Capabilities
from ..targets import Target

DEFAULT_OPSET = 19
#: opsets offered as variants: each is one where an ONNX Runtime kernel of these operators changed
OPSETS = (7, 10, 11, 19, 22)
VARIANTS = ("onnxruntime", "onnxruntime.explicit") + tuple(f"onnxruntime.opset{v}" for v in OPSETS if v != DEFAULT_OPSET)


#: refconv's padding_mode -> ONNX Pad's mode
PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@functools.lru_cache(maxsize=256)
def _session(op_type: str, attrs: tuple, shapes: tuple, dtype: str, opset: int = DEFAULT_OPSET, outputs: int = 1,
             int_inputs: tuple = (), pad: tuple | None = None):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "float16": TensorProto.FLOAT16}[dtype]
    names = [f"in{i}" for i in range(len(shapes))]
    outs = ["out", "indices"][:outputs]
    nodes, inits = [], []
    if pad is not None:
        # Pad(in0, pads) -> padded, then the node on it: pads = [begin of every axis..., end of every axis...]
        mode, pads = pad
        inits.append(helper.make_tensor("pads", TensorProto.INT64, [len(pads)], list(pads)))
        nodes.append(helper.make_node("Pad", [names[0], "pads"], ["padded"], mode=mode))
    node = helper.make_node(op_type, ["padded" if pad else names[0], *names[1:]], outs, **dict(attrs))
    # int64 inputs (MaxUnpool's indices and output_shape) by position
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64 if i in int_inputs else elem, list(s))
              for i, (n, s) in enumerate(zip(names, shapes))]
    out = [helper.make_tensor_value_info("out", elem, None)]
    if outputs > 1:
        out.append(helper.make_tensor_value_info("indices", TensorProto.INT64, None))
    graph = helper.make_graph(nodes + [node], "one_node", inputs, out, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 9)
    # (no onnx.checker: the output shape is left for the runtime to infer)
    ort.set_default_logger_severity(4)  # errors are raised as exceptions; keep stderr clean
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_node(op_type: str, arrays: list, *, opset: int = DEFAULT_OPSET, outputs: int = 1, pad: tuple | None = None,
             **attrs: Any) -> Any:
    """Run one ONNX node on numpy arrays (None inputs are left out); ``outputs=2``: its first two outputs.

    ``pad=(mode, pads)``: the first input goes through a ``Pad`` node of that mode first.
    """
    arrays = [np.ascontiguousarray(a) for a in arrays if a is not None]
    dtype = arrays[0].dtype.name
    key = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in attrs.items()))
    ints = tuple(i for i, a in enumerate(arrays) if a.dtype.kind in "iu")
    sess = _session(op_type, key, tuple(a.shape for a in arrays), dtype, opset, outputs, ints, pad)
    feeds = {f"in{i}": a for i, a in enumerate(arrays)}
    res = sess.run(None, feeds)
    return res[0] if outputs == 1 else tuple(res[:outputs])


def plane_indices(indices: np.ndarray, input_shape: tuple, storage_order: int = 0) -> np.ndarray:
    """ONNX ``MaxPool`` ``Indices`` (counted across the whole tensor) as indices within each ``(n, c)`` plane.

    The inverse of :func:`refconv.pooling.onnx_indices`.

    >>> plane_indices(np.array([[[[3]], [[5]]]]), (1, 2, 2, 2), 1).tolist()
    [[[[3]], [[2]]]]
    """
    spatial = tuple(input_shape[2:])
    pos = np.asarray(indices, dtype=np.int64) % int(np.prod(spatial))  # the position within the plane
    if storage_order == 1 and pos.size:
        pos = np.ravel_multi_index(np.unravel_index(pos, spatial, order="F"), spatial)
    return pos


def _pads(padding) -> list[int]:
    return [lo for lo, _ in padding] + [hi for _, hi in padding]


def padding_attrs(padding, spatial, kernel, stride, dilation) -> dict:
    """``auto_pad`` when the pairs are what one of its modes computes (SAME first), else explicit ``pads``.

    The SAME modes fix the output length at ``ceil(n / s)``; where the pairs are also all zero both SAME and
    VALID describe the case and SAME is used (VALID is then exercised by every zero-padding case SAME does not
    describe).

    >>> padding_attrs(((1, 1),), (5,), (3,), (1,), (1,))
    {'auto_pad': 'SAME_UPPER'}
    >>> padding_attrs(((0, 0),), (5,), (3,), (1,), (1,))
    {'auto_pad': 'VALID'}
    >>> padding_attrs(((2, 0),), (5,), (3,), (1,), (1,))
    {'pads': [2, 0]}
    """
    from ... import shapes

    for mode, lower in (("SAME_UPPER", False), ("SAME_LOWER", True)):
        if all(tuple(p) == shapes.same_padding(n, k, s, d, lower=lower)
               for p, n, k, s, d in zip(padding, spatial, kernel, stride, dilation)):
            return {"auto_pad": mode}
    if all(tuple(p) == (0, 0) for p in padding):
        return {"auto_pad": "VALID"}
    return {"pads": _pads(padding)}


def transpose_padding_attrs(padding, spatial, kernel, stride, output_padding, dilation) -> dict:
    """``ConvTranspose``'s ``auto_pad`` when the pairs are the ONNX split for an output of ``n * stride``.

    ONNX: ``total = s*(n-1) + output_padding + d*(k-1) + 1 - n*s``; ``SAME_UPPER`` puts ``total // 2`` at
    the start, ``SAME_LOWER`` puts ``total - total // 2`` there.

    >>> transpose_padding_attrs(((0, 1),), (3,), (3,), (2,), (0,), (1,))
    {'auto_pad': 'SAME_UPPER'}
    >>> transpose_padding_attrs(((1, 0),), (3,), (3,), (2,), (0,), (1,))
    {'auto_pad': 'SAME_LOWER'}
    """
    totals = [s * (n - 1) + op + d * (k - 1) + 1 - n * s
              for n, k, s, op, d in zip(spatial, kernel, stride, output_padding, dilation)]
    if all(t >= 0 for t in totals):
        for mode, first in (("SAME_UPPER", lambda t: t // 2), ("SAME_LOWER", lambda t: t - t // 2)):
            if all(tuple(p) == (first(t), t - first(t)) for p, t in zip(padding, totals)):
                return {"auto_pad": mode}
    if all(tuple(p) == (0, 0) for p in padding):
        return {"auto_pad": "VALID"}
    return {"pads": _pads(padding)}


def _functions(opset: int, explicit: bool) -> dict[str, Callable]:
    def mode(padding, spatial, kernel, stride, dilation) -> dict:
        return {"pads": _pads(padding)} if explicit else padding_attrs(padding, spatial, kernel, stride, dilation)

    def conv(x, w, b, *, stride, padding, dilation, groups, padding_mode="zeros"):
        # ONNX Runtime's Conv refuses SAME_UPPER / SAME_LOWER with dilation: a declared limit, explicit pads then
        pad = (mode(padding, x.shape[2:], w.shape[2:], stride, dilation) if all(d == 1 for d in dilation)
               else {"pads": _pads(padding)})
        moded = None
        if padding_mode != "zeros":
            # Pad (zeros on N and C) in the mode, then Conv with zero pads
            moded = (PAD_MODES[padding_mode], tuple(_pads(((0, 0), (0, 0), *padding))))
            pad = {"pads": [0] * (2 * len(stride))}
        return run_node("Conv", [x, w, b], opset=opset, kernel_shape=list(w.shape[2:]), strides=list(stride),
                        dilations=list(dilation), group=groups, pad=moded, **pad)

    def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
        pad = ({"pads": _pads(padding)} if explicit else
               transpose_padding_attrs(padding, x.shape[2:], w.shape[2:], stride, output_padding, dilation))
        return run_node("ConvTranspose", [x, w, b], opset=opset, kernel_shape=list(w.shape[2:]), strides=list(stride),
                        output_padding=list(output_padding), dilations=list(dilation), group=groups, **pad)

    def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        # with ceil_mode the output length is the ceil rule's, which no auto_pad mode describes
        pad = {"pads": _pads(padding)} if ceil_mode else mode(padding, x.shape[2:], kernel_size, stride, dilation)
        extra = {"ceil_mode": int(ceil_mode), "dilations": list(dilation)} if opset >= 10 else {}
        return run_node("MaxPool", [x], opset=opset, kernel_shape=list(kernel_size), strides=list(stride), **extra, **pad)

    def avg_pool(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad, dilation=None):
        dil = tuple(dilation) if dilation is not None else (1,) * len(stride)
        pad = {"pads": _pads(padding)} if ceil_mode else mode(padding, x.shape[2:], kernel_size, stride, dil)
        extra = {"ceil_mode": int(ceil_mode)} if opset >= 10 else {}
        if opset >= 19 and any(d != 1 for d in dil):
            extra["dilations"] = list(dil)  # AveragePool's dilations: opset 19 on (the undilated kernel otherwise)
        return run_node("AveragePool", [x], opset=opset, kernel_shape=list(kernel_size), strides=list(stride),
                        count_include_pad=int(count_include_pad), **extra, **pad)

    def max_pool_indices(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        y, i = run_node("MaxPool", [x], opset=opset, outputs=2, kernel_shape=list(kernel_size), strides=list(stride),
                        ceil_mode=int(ceil_mode), dilations=list(dilation), storage_order=0, pads=_pads(padding))
        return y, plane_indices(i, x.shape)

    def lp_pool(x, p, kernel_size, *, stride, padding, dilation, ceil_mode):
        extra = {"ceil_mode": int(ceil_mode), "dilations": list(dilation)} if opset >= 18 else {}
        return run_node("LpPool", [x], opset=opset, kernel_shape=list(kernel_size), strides=list(stride), p=int(p),
                        pads=_pads(padding), **extra)

    def adaptive_avg_pool(x, output_size):
        return run_node("GlobalAveragePool", [x], opset=opset)

    def adaptive_max_pool(x, output_size):
        return run_node("GlobalMaxPool", [x], opset=opset)

    def max_unpool(y, indices, kernel_size, *, stride, padding, output_size):
        from ...pooling import onnx_indices

        # MaxUnpool reads MaxPool's Indices (counted across the whole tensor) and the whole output shape
        shape = (*y.shape[:2], *output_size)
        whole = onnx_indices(np.asarray(indices, dtype=np.int64), shape, 0).astype(np.int64)
        return run_node("MaxUnpool", [y, whole, np.array(shape, dtype=np.int64)], opset=opset,
                        kernel_shape=list(kernel_size), strides=list(stride), pads=_pads(padding))

    def deform_conv(x, offset, w, b, mask, *, stride, padding, dilation, groups, offset_groups):
        # DeformConv's inputs are X, W, offset, B, mask: a zero B holds B's place before a mask (y + 0 = y)
        if b is None and mask is not None:
            b = np.zeros(w.shape[0], dtype=x.dtype)
        return run_node("DeformConv", [x, w, offset, b, mask], opset=opset, kernel_shape=list(w.shape[2:]),
                        strides=list(stride), pads=_pads(padding), dilations=list(dilation), group=groups,
                        offset_group=offset_groups)

    return {f.__name__: f for f in (conv, conv_transpose, max_pool, avg_pool, max_pool_indices, lp_pool,
                                    adaptive_avg_pool, adaptive_max_pool, max_unpool, deform_conv)}


def _op_below_stride(case) -> bool:
    # ONNX Runtime rejects output_padding >= stride even where the dilation allows it
    return all(o < s for o, s in zip(case.output_padding, case.stride))


def _pad_below_kernel(case) -> bool:
    # ONNX Runtime pooling: "Pad should be smaller than kernel" (the kernel size, not the dilated window)
    return all(lo < k and hi < k for (lo, hi), k in zip(case.padding, case.kernel))


def _global(case) -> bool:
    # GlobalAveragePool / GlobalMaxPool: output size 1 on every axis
    return all(o == 1 for o in case.output_size)


def _not_circular(case) -> bool:
    # Pad's mode 'wrap' (circular) arrived in opset 19
    return case.padding_mode != "circular"


def _conv_capabilities(opset: int, base: Capabilities) -> Capabilities:
    """Conv; padding modes through Pad: its pads are an input from opset 11, its 'wrap' mode from opset 19."""
    if opset < 11:
        return base.replace(padding_mode=False, notes=(f"padding_mode (Pad takes pads as an input from opset 11, "
                                                       f"not in opset {opset})",))
    if opset < 19:
        return base.replace(rule=_not_circular, notes=(f"padding_mode='circular' (Pad's 'wrap' mode is not in "
                                                       f"opset {opset})",))
    return base


def _pool_capabilities(op: str, opset: int, base: Capabilities) -> Capabilities:
    """MaxPool (with or without Indices), AveragePool and LpPool in ``opset``."""
    notes: tuple[str, ...] = ("pooling padding >= kernel size", "divisor_override (ONNX has none)")
    if opset < 10 or op == "lp_pool" and opset < 18:
        base = base.replace(ceil_mode=False)
        notes += (f"ceil_mode (not in opset {opset})",)
    if opset < 10 or op == "avg_pool" and opset < 19 or op == "lp_pool" and opset < 18:
        base = base.replace(dilation=False)
        notes += (f"dilation (not in opset {opset})",)
    if op == "max_pool_indices" and opset < 10:
        base = base.replace(ops=tuple(o for o in base.ops if o != op))
    return base.replace(rule=_pad_below_kernel, notes=notes)


def _capabilities(opset: int) -> Callable[[str, int, str], Capabilities]:
    def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
        base = ALL.replace(dtypes=("float32", "float64"), divisor_override=False,
                           ops=("conv", "conv_transpose", "max_pool", "avg_pool", "max_pool_indices", "lp_pool",
                                "adaptive_avg_pool", "adaptive_max_pool") + (("max_unpool",) if opset >= 11 else ())
                           + (("deform_conv",) if opset >= 19 else ()))
        if op in ("conv", "conv_transpose", "avg_pool"):
            # the CPU provider has no double-precision Conv / ConvTranspose / AveragePool kernels
            base = base.replace(dtypes=("float32",))
        if op == "conv_transpose":
            return base.replace(rule=_op_below_stride, notes=("output_padding >= stride (ONNX Runtime rejects it)",))
        if op == "conv":
            return _conv_capabilities(opset, base)
        if op in ("max_pool", "avg_pool", "max_pool_indices", "lp_pool"):
            return _pool_capabilities(op, opset, base)
        if op == "max_unpool":
            # float32 only on the CPU provider; any output_shape accepted (ONNX pads the unpooled output to it)
            return base.replace(dtypes=("float32",), refuses_invalid=False,
                                notes=("MaxUnpool in float64 (no CPU kernel)", "output_size more than a stride from "
                                       "the default (ONNX's MaxUnpool takes any output_shape)"))
        if op == "deform_conv":
            return base.replace(dims=(2,), notes=("DeformConv other than 2-D (ONNX Runtime's kernel takes 4-D X)",))
        if op in ("adaptive_avg_pool", "adaptive_max_pool"):
            return base.replace(dtypes=("float32",), rule=_global,
                                notes=("adaptive pooling other than global (ONNX has GlobalAveragePool / GlobalMaxPool only)",))
        return base

    return capabilities


def make(name: str = "onnxruntime") -> Target:
    """The adapter ``name``: ``onnxruntime``, ``onnxruntime.explicit`` or ``onnxruntime.opsetN``."""
    if name not in VARIANTS:
        raise ValueError(f"name={name!r}: ONNX Runtime variants are {', '.join(VARIANTS)}")
    explicit = name == "onnxruntime.explicit"
    opset = int(name.rpartition("opset")[2]) if ".opset" in name else DEFAULT_OPSET
    functions = _functions(opset, explicit)
    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({name!r}).function({{op!r}})"
    return Target(name, lambda op: functions[op], _capabilities(opset), setup, spec=name)
