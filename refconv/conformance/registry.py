"""One record per checked operation: everything the conformance suite knows about it.

A :class:`OpRecord` holds, for one op name, its canonical signature, how a
:class:`~refconv.conformance.cases.Case` of it is normalized, which arrays it
takes and their shapes, the keyword arguments of the canonical call, the exact
oracle function and the fast implementation, its gradient ops, the error-bound
policy, the builders of its catalogue and of its diagnosis candidates, and the
adapter families that offer it.  The case model, the engine, the diagnosis,
the plugin, ``identify``, the command's ``--op`` choices and the table in
``specs/conformance.md`` read this registry; adding an operation is one
:func:`register` call plus its oracle function.

Callables that live in other modules (oracle, fast engine, catalogue,
diagnosis) are named ``'module:attribute'`` and imported on first use, so the
registry imports nothing heavy and the case model can import it.

Examples
--------
>>> rec = get('avg_pool')
>>> rec.signature
'fn(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad)'
>>> rec.oracle_function().__name__, rec.fast_function().__name__
('avg_pool', 'avg_pool')
>>> get('conv').grad_ops
('conv_grad_input', 'conv_grad_weight', 'conv_grad_bias')
>>> try:
...     get('deconv')
... except ValueError as e:
...     print(str(e)[:57])
op='deconv': ops are 'conv', 'conv_transpose', 'max_pool'
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .. import params as P

if TYPE_CHECKING:
    from .cases import Parts

__all__ = ["OpRecord", "register", "get", "records", "names", "probed", "docs_table", "write_docs_table", "DOCS_BEGIN",
           "DOCS_END"]


def _resolve(ref: str) -> Callable:
    """The callable named ``'module:attribute'`` (a relative module is taken under ``refconv``)."""
    mod, _, attr = ref.partition(":")
    module = importlib.import_module(mod if not mod.startswith(".") else "refconv" + mod)
    return getattr(module, attr)


@dataclass(frozen=True)
class OpRecord:
    """Everything the suite knows about one operation (see the module docstring).

    ``arrays(case)`` gives the array arguments in call order with their
    shapes; ``positional(case, arrays)`` the positional arguments of the
    canonical call (``second`` names the one a target may declare
    keyword-only); ``keywords(case)`` its keyword arguments; ``normalize(case)``
    the normalized parameters from :mod:`refconv.params` (raising
    ``ConvParamError``); ``output(case)`` the result's shape; ``terms(case)``
    the ``n`` of ``gamma_n``; ``cancel(case)`` the ``(axis, m, blocks)`` per
    factor along which terms cancel in pairs (None: pairs on the last axis).
    ``bound`` is the magnitude policy of the error bound: ``'abs'`` (the op on
    absolute values) or ``'max'`` (``|y|``).
    """

    name: str
    signature: str
    family: str                 # 'conv' (a sum of products) or 'pool' (a window reduction)
    oracle: str                 # 'module:function' of the exact result
    fast: str                   # 'module:function' of the fast implementation
    catalogue: str              # 'module:function' (op, dims) -> list of cases
    candidates: str             # 'module:function' case -> list of diagnosis candidates
    arrays: Callable[[Any], dict[str, tuple[int, ...]]]
    positional: Callable[[Any, dict], list]
    keywords: Callable[[Any], dict[str, Any]]
    normalize: Callable[[Any], Any]
    output: Callable[[Any], tuple[int, ...]]
    terms: Callable[[Any], int]
    adapters: tuple[str, ...]
    second: str | None = None
    cancel: Callable[[Any], Any] | None = None
    weight: Callable[[Any], tuple[int, ...]] = lambda c: (c.cout, c.cin // c.groups, *c.kernel)
    bound: str = "abs"
    grad_ops: tuple[str, ...] = ()
    has_bias: bool = False      # a bias argument
    has_groups: bool = False    # grouped channels
    has_dilation: bool = True
    transposed: bool = False    # the output size grows with the stride (the transposed formula)
    grad_of: str | None = None  # the forward op whose parameters a gradient op takes
    probed: bool = False        # ``identify`` has convention probes for it
    padding_modes: tuple[str, ...] = ()  # padding strings beyond 'valid' that express its (lo, hi) pairs
    values: tuple[str, ...] = ()  # value classes its catalogue and strategies leave out
    optional: tuple[str, ...] = ()  # keywords passed only at a non-default value (a target may lack them)
    outputs: tuple[str, ...] = ("y",)  # the results; every one after the first is int64 indices, judged exactly
    bound_as: str | None = None  # the op of refconv.conformance.bounds whose error bound applies (default: itself)
    adaptive: bool = False      # adaptive pooling: output_size instead of a window
    selectors: tuple[str, ...] = ()  # arrays that choose (indices, the max-pooled x) and are not magnitudes: kept in |.|
    refuses: bool = True        # its canonical call can carry a configuration the definition rejects
    fill: str | None = None     # 'module:function' (case, arrays) -> arrays: inputs derived from the drawn ones
    unbatched: tuple[str, ...] = ()  # the arrays without N in an unbatched call (PyTorch's (C, *S)); () : none
    doc: str = field(default="", compare=False)

    def at_default(self, keyword: str, value: Any) -> bool:
        """Whether ``keyword=value`` is one of :attr:`optional` at its default (then it is not passed)."""
        return keyword in self.optional and (value is None or keyword == "dilation" and all(d == 1 for d in value)
                                             or keyword == "padding_mode" and value == "zeros")

    def takes(self, keyword: str) -> bool:
        """Whether the canonical signature (or an optional keyword) has the parameter ``keyword``."""
        inner = self.signature[self.signature.index("(") + 1:-1]
        return keyword in {p.strip(" *") for p in inner.split(",")} | set(self.optional)

    @property
    def window(self) -> bool:
        """A pooling op: one channel count, a window instead of a weight."""
        return self.family == "pool"

    def oracle_function(self) -> Callable:
        return _resolve(self.oracle)

    def fast_function(self) -> Callable:
        return _resolve(self.fast)

    def build_catalogue(self, dims: int) -> Parts:
        return _resolve(self.catalogue)(self.name, dims)

    def build_candidates(self, case: Any) -> list:
        return _resolve(self.candidates)(case)

    def derive(self, case: Any, arrays: dict) -> dict:
        """The inputs after :attr:`fill` (indices made consistent with the values); ``arrays`` when none."""
        return arrays if self.fill is None else _resolve(self.fill)(case, arrays)

    def bound_modes(self) -> tuple[str, ...]:
        """The ``bound=`` algorithms that apply: those of :attr:`bound_as` ('direct' only when borrowed)."""
        from .bounds import bound_modes

        if self.bound_as is None:
            return bound_modes(self.name)
        return tuple(m for m in bound_modes(self.bound_as) if m == "direct")


_REGISTRY: dict[str, OpRecord] = {}


def register(record: OpRecord) -> OpRecord:
    """Add ``record`` (replacing one of the same name) and return it."""
    _REGISTRY[record.name] = record
    return record


def names() -> tuple[str, ...]:
    """Every registered op name, in registration order."""
    return tuple(_REGISTRY)


def probed() -> tuple[str, ...]:
    """The ops ``identify`` has convention probes for."""
    return tuple(r.name for r in _REGISTRY.values() if r.probed)


def records() -> tuple[OpRecord, ...]:
    return tuple(_REGISTRY.values())


def get(op: str) -> OpRecord:
    """The record of ``op``; ``ConvParamError`` naming ``op=`` when there is none."""
    try:
        return _REGISTRY[op]
    except (KeyError, TypeError):
        raise P.ConvParamError(f"op={op!r}: ops are " + ", ".join(repr(o) for o in _REGISTRY)) from None


# --------------------------------------------------------------------------- the built-in operations


def _x(c: Any) -> tuple[int, ...]:
    return (c.n, c.cin, *c.spatial)


def _bias(c: Any) -> tuple[int, ...] | None:
    return (c.cout,) if c.bias else None


def _conv_normalize(c: Any) -> Any:
    p = P.conv_params(_x(c), c.weight_shape, _bias(c), stride=c.stride, padding=c.padding,
                      dilation=c.dilation, groups=c.groups)
    if c.padding_mode != "zeros":
        if not c.record.takes("padding_mode"):
            raise P.ConvParamError(f"padding_mode={c.padding_mode!r}: {c.op} has no padding_mode")
        from ..padding_modes import check_mode_padding

        check_mode_padding(P.padding_mode(c.padding_mode), c.padding, c.spatial)
    return p


def _transpose_normalize(c: Any) -> Any:
    if c.cout % c.groups:
        raise P.ConvParamError(f"groups={c.groups}: groups must divide C_out={c.cout}")
    return P.conv_transpose_params(_x(c), c.weight_shape, _bias(c), stride=c.stride, padding=c.padding,
                                   output_padding=c.output_padding, dilation=c.dilation, groups=c.groups)


def _pool_normalize(c: Any) -> Any:
    if not c.record.has_dilation and any(d != 1 for d in c.dilation):
        raise P.ConvParamError(f"dilation={c.dilation}: {c.op} has no dilation")
    if c.divisor_override is not None and not c.record.takes("divisor_override"):
        raise P.ConvParamError(f"divisor_override={c.divisor_override}: {c.op} has no divisor_override")
    if c.op == "lp_pool":
        P.lp_norm(c.norm)
    return P.pool_params(_x(c), c.kernel, stride=c.stride, padding=c.padding, dilation=c.dilation,
                         ceil_mode=c.ceil_mode, count_include_pad=c.count_include_pad,
                         divisor_override=c.divisor_override)


def _adaptive_normalize(c: Any) -> Any:
    return P.adaptive_pool_params(_x(c), c.output_size)


def _bin_terms(c: Any) -> int:
    # the largest bin: ceil((i+1)*n/o) - floor(i*n/o) <= ceil(n/o) + 1 samples per axis
    return math.prod(min(n, -(-n // o) + 1) for n, o in zip(c.spatial, c.output_size))


def _xwb_arrays(c: Any) -> dict[str, tuple[int, ...]]:
    return {"x": _x(c), "w": c.weight_shape, **({"b": (c.cout,)} if c.bias else {})}


def _conv_keywords(c: Any) -> dict[str, Any]:
    return {"stride": c.stride, "padding": c.padding, "dilation": c.dilation, "groups": c.groups,
            "padding_mode": c.padding_mode}


def _transpose_keywords(c: Any) -> dict[str, Any]:
    return {"stride": c.stride, "padding": c.padding, "output_padding": c.output_padding,
            "dilation": c.dilation, "groups": c.groups}


def _forward_output(c: Any) -> tuple[int, ...]:
    return tuple(c.validate().output_shape)


def _bilinear_terms(c: Any) -> int:
    # (C_in / groups) * prod(K) products per output, plus the bias
    return (c.cin // c.groups) * math.prod(c.kernel) + int(c.bias)


_CONV_ADAPTERS = ("torch", "onnxruntime", "jax", "scipy", "numpy", "refconv.fast", "refconv.oracle", "tensorflow", "tinygrad",
                  "openvino")
_GRAD_ADAPTERS = ("torch", "jax", "refconv.fast", "refconv.oracle")
_MOST_ADAPTERS = ("torch", "onnxruntime", "jax", "refconv.fast", "refconv.oracle", "tensorflow", "tinygrad", "openvino")
_CONV: dict[str, Any] = dict(family="conv", candidates=".conformance.diagnose:conv_candidates", has_groups=True)
_CONV_MODES = ("full", "same", "same_lower")
_POOL: dict[str, Any] = dict(
    family="pool", catalogue=".conformance.cases:pool_catalogue",
    candidates=".conformance.diagnose:pool_candidates", second="kernel_size",
    positional=lambda c, a: [a["x"], c.kernel], arrays=lambda c: {"x": _x(c)}, normalize=_pool_normalize,
    output=_forward_output, terms=lambda c: math.prod(c.kernel), cancel=lambda c: None,
    padding_modes=("same", "same_lower"), probed=True)

register(OpRecord(
    "conv", "fn(x, w, b, *, stride, padding, dilation, groups)", oracle=".oracle:conv", fast=".fast:conv",
    arrays=_xwb_arrays, positional=lambda c, a: [a["x"], a["w"], a.get("b")], keywords=_conv_keywords,
    normalize=_conv_normalize, output=_forward_output, terms=_bilinear_terms,
    # reduction: the input channels of a group (axis 1 of x and of w)
    cancel=lambda c: ((1, c.cin // c.groups, c.groups), (1, c.cin // c.groups, 1)),
    grad_ops=("conv_grad_input", "conv_grad_weight", "conv_grad_bias"), has_bias=True, optional=("padding_mode",), probed=True, adapters=_CONV_ADAPTERS, padding_modes=_CONV_MODES,
    catalogue=".conformance.cases:conv_catalogue", unbatched=("x",),
    doc="cross-correlation; w is (C_out, C_in // groups, *K)", **_CONV))
register(OpRecord(
    "conv_transpose", "fn(x, w, b, *, stride, padding, output_padding, dilation, groups)",
    oracle=".oracle:conv_transpose", fast=".fast:conv_transpose",
    arrays=_xwb_arrays, positional=lambda c, a: [a["x"], a["w"], a.get("b")], keywords=_transpose_keywords,
    normalize=_transpose_normalize, output=_forward_output, terms=_bilinear_terms,
    # reduction: the input channels (axis 1 of x, axis 0 of w) of each group
    cancel=lambda c: ((1, c.cin // c.groups, c.groups), (0, c.cin // c.groups, c.groups)),
    has_bias=True, adapters=_MOST_ADAPTERS, catalogue=".conformance.cases:transpose_catalogue",
    grad_ops=("conv_transpose_grad_input", "conv_transpose_grad_weight"),
    weight=lambda c: (c.cin, c.cout // c.groups, *c.kernel), transposed=True, probed=True, unbatched=("x",),
    doc="w is (C_in, C_out // groups, *K); padding crops lo/hi rows of the full output", **_CONV))
register(OpRecord(
    "max_pool", "fn(x, kernel_size, *, stride, padding, dilation, ceil_mode)",
    oracle=".oracle:max_pool", fast=".fast:max_pool", bound="max",
    keywords=lambda c: {"kernel_size": c.kernel, "stride": c.stride, "padding": c.padding, "dilation": c.dilation,
                        "ceil_mode": c.ceil_mode},
    adapters=_MOST_ADAPTERS, grad_ops=("max_pool_grad",), unbatched=("x",),
    values=("subnormal_products", "cancel"), doc="windows entirely in the padding give -inf", **_POOL))
register(OpRecord(
    "avg_pool", "fn(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad)",
    oracle=".oracle:avg_pool", fast=".fast:avg_pool", optional=("dilation", "divisor_override"),
    keywords=lambda c: {"kernel_size": c.kernel, "stride": c.stride, "padding": c.padding, "ceil_mode": c.ceil_mode,
                        "count_include_pad": c.count_include_pad, "dilation": c.dilation,
                        "divisor_override": c.divisor_override},
    adapters=_MOST_ADAPTERS, grad_ops=("avg_pool_grad",), unbatched=("x",),
    values=("subnormal_products",), doc="divisor per count_include_pad, or divisor_override", **_POOL))
register(OpRecord(
    "conv_grad_input", "fn(dy, w, input_shape, *, stride, padding, dilation, groups)",
    oracle=".oracle:conv_grad_input", fast=".fast:conv_grad_input", second="input_shape",
    arrays=lambda c: {"dy": c.forward_output_shape, "w": c.weight_shape},
    positional=lambda c, a: [a["dy"], a["w"], _x(c)], keywords=_conv_keywords, normalize=_conv_normalize,
    output=_x, terms=lambda c: (c.cout // c.groups) * math.prod(c.kernel),
    # reduction: the output channels of a group (axis 1 of dy, axis 0 of w)
    cancel=lambda c: ((1, c.cout // c.groups, c.groups), (0, c.cout // c.groups, c.groups)),
    adapters=_GRAD_ADAPTERS + ("tensorflow", "tinygrad"), grad_of="conv", padding_modes=_CONV_MODES, catalogue=".conformance.cases:grad_catalogue",
    optional=("padding_mode",), doc="the parameters are those of the forward convolution", **_CONV))
register(OpRecord(
    "conv_grad_weight", "fn(x, dy, weight_shape, *, stride, padding, dilation, groups)",
    oracle=".oracle:conv_grad_weight", fast=".fast:conv_grad_weight", second="weight_shape",
    arrays=lambda c: {"x": _x(c), "dy": c.forward_output_shape},
    positional=lambda c, a: [a["x"], a["dy"], c.weight_shape], keywords=_conv_keywords, normalize=_conv_normalize,
    output=lambda c: c.weight_shape, terms=lambda c: max(1, c.n * math.prod(c.forward_output_shape[2:])),
    # reduction: the batch (axis 0 of x and of dy)
    cancel=lambda c: ((0, c.n, 1), (0, c.n, 1)),
    adapters=_GRAD_ADAPTERS + ("tensorflow", "tinygrad"), grad_of="conv", padding_modes=_CONV_MODES, catalogue=".conformance.cases:grad_catalogue",
    optional=("padding_mode",), doc="the parameters are those of the forward convolution", **_CONV))


# the operations added to the six: each reuses the bound of the op named by bound_as
register(OpRecord(
    "max_pool_indices", "fn(x, kernel_size, *, stride, padding, dilation, ceil_mode)",
    oracle=".conformance.ops:max_pool_indices", fast=".fast:max_pool_indices", bound="max", bound_as="max_pool",
    outputs=("y", "indices"), unbatched=("x",),
    keywords=lambda c: {"kernel_size": c.kernel, "stride": c.stride, "padding": c.padding, "dilation": c.dilation,
                        "ceil_mode": c.ceil_mode},
    adapters=("torch", "onnxruntime", "refconv.fast", "refconv.oracle", "openvino"), values=("subnormal_products", "cancel"),
    doc="(values, int64 indices flat within each (n, c) plane); ties: the first maximum in window order",
    **{**_POOL, "probed": False, "candidates": ".conformance.diagnose:indices_candidates"}))
register(OpRecord(
    "lp_pool", "fn(x, p, kernel_size, *, stride, padding, dilation, ceil_mode)",
    oracle=".oracle:lp_pool", fast=".fast:lp_pool", bound_as="avg_pool", unbatched=("x",),
    keywords=lambda c: {"kernel_size": c.kernel, "stride": c.stride, "padding": c.padding, "dilation": c.dilation,
                        "ceil_mode": c.ceil_mode},
    adapters=("torch", "onnxruntime", "refconv.fast", "refconv.oracle"),
    values=("subnormal", "subnormal_products", "overflow", "cancel"),
    doc="(sum |x|**p) ** (1/p); the bound counts the power and the root as two roundings each",
    **{**_POOL, "positional": lambda c, a: [a["x"], c.norm, c.kernel], "probed": False,
       "candidates": ".conformance.diagnose:lp_candidates",
       # the avg_pool bound with k + 4 terms: pow and root (each within 1 ulp: 2 roundings) on top of the mean's
       "terms": lambda c: math.prod(c.kernel) + 4}))
_ADAPTIVE: dict[str, Any] = dict(
    family="pool", catalogue=".conformance.cases:adaptive_catalogue",
    candidates=".conformance.diagnose:adaptive_candidates", second="output_size", adaptive=True,
    arrays=lambda c: {"x": _x(c)}, positional=lambda c, a: [a["x"], c.output_size],
    keywords=lambda c: {"output_size": c.output_size}, normalize=_adaptive_normalize,
    output=_forward_output, terms=_bin_terms, cancel=lambda c: None, has_dilation=False, unbatched=("x",),
    adapters=("torch", "onnxruntime", "refconv.fast", "refconv.oracle"))
register(OpRecord(
    "adaptive_avg_pool", "fn(x, output_size, *)", oracle=".oracle:adaptive_avg_pool", fast=".fast:adaptive_avg_pool",
    bound_as="avg_pool", values=("subnormal_products",),
    doc="bins [floor(i*n/o), ceil((i+1)*n/o)); ONNX: the global case", **_ADAPTIVE))
register(OpRecord(
    "adaptive_max_pool", "fn(x, output_size, *)", oracle=".oracle:adaptive_max_pool", fast=".fast:adaptive_max_pool",
    bound="max", bound_as="max_pool", values=("subnormal_products", "cancel"),
    doc="bins as adaptive_avg_pool; ONNX: the global case", **_ADAPTIVE))

# --------------------------------------------------------------------------- gradients and unpooling as checked ops


def _pool_keywords(c: Any) -> dict[str, Any]:
    return {"kernel_size": c.kernel, "stride": c.stride, "padding": c.padding, "dilation": c.dilation,
            "ceil_mode": c.ceil_mode}


def _windows_per_input(c: Any) -> int:
    # an input sample lies in at most min(k, ceil(span / s)) windows per axis (one per tap, one per stride step)
    return max(1, math.prod(min(k, -(-(d * (k - 1) + 1) // s)) for k, s, d in zip(c.kernel, c.stride, c.dilation)))


def _pooled(c: Any) -> tuple[int, ...]:
    """The shape of the max-pooled ``y`` that a max_unpool case unpools."""
    return tuple(_pool_normalize(c).output_shape)


def _unpool_normalize(c: Any) -> Any:
    pp = _pool_normalize(c)
    if any(max(lo, hi) >= k for (lo, hi), k in zip(c.padding, c.kernel)):
        raise P.ConvParamError(f"padding={c.padding}: max_unpool takes the indices of windows that hold input "
                               f"samples (padding below kernel_size={c.kernel})")
    return P.unpool_params(pp.output_shape, pp.output_shape, c.kernel, stride=c.stride, padding=c.padding,
                           output_size=c.output_size or c.spatial)


register(OpRecord(
    "conv_grad_bias", "fn(dy, *)", oracle=".oracle:conv_grad_bias", fast=".fast:conv_grad_bias",
    arrays=lambda c: {"dy": c.forward_output_shape}, positional=lambda c, a: [a["dy"]], keywords=lambda c: {},
    normalize=_conv_normalize, output=lambda c: (c.cout,),
    terms=lambda c: max(1, c.n * math.prod(c.forward_output_shape[2:])),
    cancel=lambda c: ((0, c.n, 1),),  # reduction: the batch (axis 0 of dy)
    adapters=("torch", "jax", "refconv.fast", "refconv.oracle"), grad_of="conv", bound_as="conv_grad_weight",
    refuses=False, padding_modes=_CONV_MODES, catalogue=".conformance.cases:bias_grad_catalogue",
    doc="db[o] = sum over the batch and the positions of dy[n, o, p]",
    **{**_CONV, "candidates": ".conformance.diagnose:bias_grad_candidates", "has_groups": False}))
register(OpRecord(
    "conv_transpose_grad_input", "fn(dy, w, *, stride, padding, output_padding, dilation, groups)",
    oracle=".oracle:conv_transpose_grad_input", fast=".fast:conv_transpose_grad_input", bound_as="conv",
    arrays=lambda c: {"dy": c.forward_output_shape, "w": c.weight_shape},
    positional=lambda c, a: [a["dy"], a["w"]], keywords=_transpose_keywords, normalize=_transpose_normalize,
    output=_x, terms=lambda c: (c.cout // c.groups) * math.prod(c.kernel),
    # reduction: the output channels of the transposed op within a group (axis 1 of dy, axis 1 of w)
    cancel=lambda c: ((1, c.cout // c.groups, c.groups), (1, c.cout // c.groups, 1)),
    weight=lambda c: (c.cin, c.cout // c.groups, *c.kernel), transposed=True, grad_of="conv_transpose",
    adapters=_GRAD_ADAPTERS, catalogue=".conformance.cases:transpose_grad_catalogue",
    doc="conv(dy, w) with the transposed op's parameters; floor(output_padding / stride) trailing outputs cut",
    **{**_CONV, "candidates": ".conformance.diagnose:transpose_grad_candidates"}))
register(OpRecord(
    "conv_transpose_grad_weight", "fn(x, dy, weight_shape, *, stride, padding, output_padding, dilation, groups)",
    oracle=".oracle:conv_transpose_grad_weight", fast=".fast:conv_transpose_grad_weight", second="weight_shape",
    bound_as="conv_grad_weight", arrays=lambda c: {"x": _x(c), "dy": c.forward_output_shape},
    positional=lambda c, a: [a["x"], a["dy"], c.weight_shape], keywords=_transpose_keywords,
    normalize=_transpose_normalize, output=lambda c: c.weight_shape,
    terms=lambda c: max(1, c.n * math.prod(c.spatial)),
    cancel=lambda c: ((0, c.n, 1), (0, c.n, 1)),  # reduction: the batch (axis 0 of x and of dy)
    weight=lambda c: (c.cin, c.cout // c.groups, *c.kernel), transposed=True, grad_of="conv_transpose",
    adapters=_GRAD_ADAPTERS, catalogue=".conformance.cases:transpose_grad_catalogue",
    doc="the weight gradient of conv(dy, .) with x as its output gradient",
    **{**_CONV, "candidates": ".conformance.diagnose:transpose_grad_candidates"}))
register(OpRecord(
    "max_pool_grad", "fn(dy, x, kernel_size, *, stride, padding, dilation, ceil_mode)",
    oracle=".oracle:max_pool_grad", fast=".fast:max_pool_grad", bound_as="avg_pool", selectors=("x",),
    keywords=_pool_keywords, adapters=("torch", "jax", "refconv.fast", "refconv.oracle"), grad_of="max_pool",
    values=("subnormal_products", "cancel"),
    doc="dy to the first maximum of each window (ties in window order); overlapping windows add",
    **{**_POOL, "arrays": lambda c: {"dy": c.forward_output_shape, "x": _x(c)},
       "positional": lambda c, a: [a["dy"], a["x"], c.kernel], "output": _x, "terms": _windows_per_input,
       "probed": False, "candidates": ".conformance.diagnose:max_grad_candidates"}))
register(OpRecord(
    "avg_pool_grad", "fn(dy, input_shape, kernel_size, *, stride, padding, ceil_mode, count_include_pad)",
    oracle=".oracle:avg_pool_grad", fast=".fast:avg_pool_grad", bound_as="avg_pool",
    optional=("dilation", "divisor_override"),
    keywords=lambda c: {"kernel_size": c.kernel, "stride": c.stride, "padding": c.padding, "ceil_mode": c.ceil_mode,
                        "count_include_pad": c.count_include_pad, "dilation": c.dilation,
                        "divisor_override": c.divisor_override},
    adapters=("torch", "jax", "refconv.fast", "refconv.oracle"), grad_of="avg_pool",
    values=("subnormal_products", "cancel"), doc="dx[i] = sum over the windows holding i of dy / divisor",
    **{**_POOL, "arrays": lambda c: {"dy": c.forward_output_shape},
       "positional": lambda c, a: [a["dy"], _x(c), c.kernel], "output": _x, "terms": _windows_per_input,
       "probed": False, "candidates": ".conformance.diagnose:avg_grad_candidates"}))
register(OpRecord(
    "max_unpool", "fn(y, indices, kernel_size, *, stride, padding, output_size)",
    oracle=".oracle:max_unpool", fast=".fast:max_unpool", bound="max", bound_as="max_pool", selectors=("indices",),
    keywords=lambda c: {"kernel_size": c.kernel, "stride": c.stride, "padding": c.padding,
                        "output_size": c.output_size or c.spatial},
    adapters=("torch", "onnxruntime", "jax", "refconv.fast", "refconv.oracle"), has_dilation=False,
    values=("subnormal_products", "cancel"), fill=".conformance.cases:unpool_inputs", unbatched=("y", "indices"),
    doc="zeros, y[n, c, p] written at flat index indices[n, c, p] of its (n, c) plane; indices from max_pool",
    **{**_POOL, "arrays": lambda c: {"y": _pooled(c), "indices": _pooled(c)},
       "positional": lambda c, a: [a["y"], a["indices"], c.kernel], "normalize": _unpool_normalize,
       "output": lambda c: (c.n, c.cin, *(c.output_size or c.spatial)), "terms": lambda c: 1,
       "padding_modes": (), "probed": False, "catalogue": ".conformance.cases:unpool_catalogue",
       "candidates": ".conformance.diagnose:unpool_candidates"}))

# --------------------------------------------------------------------------- the docs table

DOCS_BEGIN = "<!-- registry table: generated by refconv.conformance.registry.write_docs_table; do not edit -->"
DOCS_END = "<!-- end of registry table -->"


def docs_table() -> str:
    """The markdown table of every registered op and its fields (as in ``specs/conformance.md``)."""
    head = ["op", "canonical signature", "oracle", "fast", "gradient ops", "bound", "algorithms", "adapters"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records():
        # optional keywords in brackets before the closing parenthesis; a borrowed bound names its op
        sig = r.signature if not r.optional else r.signature[:-1] + "[, " + ", ".join(r.optional) + "])"
        bound = r.bound if r.bound_as is None else f"{r.bound} (as `{r.bound_as}`)"
        cells = [f"`{r.name}`", f"`{sig}`", f"`{r.oracle.lstrip('.').replace(':', '.')}`",
                 f"`{r.fast.lstrip('.').replace(':', '.')}`", ", ".join(f"`{g}`" for g in r.grad_ops) or "-",
                 bound, ", ".join(r.bound_modes()), ", ".join(r.adapters)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def write_docs_table(path: str) -> bool:
    """Replace the table between :data:`DOCS_BEGIN` and :data:`DOCS_END` in ``path``; True if it changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.index(DOCS_BEGIN) + len(DOCS_BEGIN), text.index(DOCS_END)
    new = text[:start] + "\n" + docs_table() + "\n" + text[end:]
    if new == text:
        return False
    from ..atomic import atomic_write

    atomic_write(path, new)  # never half-written
    return True

# the quantized ops (conv_integer, qlinear_conv) register themselves: refconv.conformance.quantized_ops
from . import quantized_ops  # noqa: E402,F401
# fractional max pooling and deformable convolution register themselves: refconv.conformance.extra_ops
from . import extra_ops  # noqa: E402,F401
