"""Layouts: the order of the axes of activations and weights, by name, and exact conversions between them.

Inside refconv everything is channels first: activations ``(N, C, *S)`` and
convolution weights ``(C_out, C_in // groups, *K)``.  At the edges a caller
names the layout its arrays use (``specs/layouts.md``):

=============  ==========================================  ===========================================
kind           names (1-D / 2-D / 3-D)                     axes
=============  ==========================================  ===========================================
activation     ``NCW`` / ``NCHW`` / ``NCDHW`` (canonical)  ``(N, C, *S)``: PyTorch, ONNX, OpenVINO
activation     ``NWC`` / ``NHWC`` / ``NDHWC``              ``(N, *S, C)``: TensorFlow, Keras, JAX/Flax
weight         ``OIW`` / ``OIHW`` / ``OIDHW`` (canonical)  ``(C_out, C_in/g, *K)``: PyTorch, ONNX
weight         ``WIO`` / ``HWIO`` / ``DHWIO``              ``(*K, C_in/g, C_out)``: TensorFlow, JAX
weight         ``OWI`` / ``OHWI`` / ``ODHWI``              ``(C_out, *K, C_in/g)``: oneDNN, TFLite
weight         ``WIM`` / ``HWIM`` / ``DHWIM``              ``(*K, C_in, M)``: TensorFlow depthwise,
                                                           ``groups = C_in``, ``C_out = C_in * M``,
                                                           output channel ``c * M + m``
transposed     ``IOW`` / ``IOHW`` / ``IODHW`` (canonical)  ``(C_in, C_out/g, *K)``: PyTorch, ONNX,
                                                           OpenVINO ``ConvolutionBackpropData``
transposed     ``WOI`` / ``HWOI`` / ``DHWOI``              ``(*K, C_out/g, C_in)``: TensorFlow
                                                           ``conv2d_transpose``, Keras ``Conv2DTranspose``
=============  ==========================================  ===========================================

The letters of a transposed-convolution weight name the transposed
operation's own channels: ``I`` its input's (``x``), ``O`` its output's, as
each framework documents them (PyTorch: ``(in_channels, out_channels/groups,
kH, kW)``; TensorFlow: ``[height, width, output_channels, in_channels]``).
A convolution weight name given to a transposed convolution (or the reverse)
is refused, never reinterpreted.

Every conversion is an exact permutation of axes (``HWIM`` also a reshape):
no value changes.  :func:`accepts_layouts` gives an operation the keywords
``layout=`` and ``weight_layout=``: arguments are converted to the canonical
layouts, the operation runs, and the results come back in the caller's
layouts.

Examples
--------
>>> import numpy as np
>>> x = np.arange(24).reshape(1, 2, 3, 4)                   # NCHW
>>> to_layout(x, 'NHWC').shape, from_layout(to_layout(x, 'NHWC'), 'NHWC').shape
((1, 3, 4, 2), (1, 2, 3, 4))
>>> w = np.zeros((8, 3, 5, 7))                              # OIHW
>>> to_layout(w, 'HWIO').shape, to_layout(w, 'OHWI').shape
((5, 7, 3, 8), (8, 5, 7, 3))
>>> from_layout(np.zeros((5, 7, 3, 2)), 'HWIM').shape       # depthwise: C_in = 3, M = 2
(6, 1, 5, 7)
>>> convert(np.zeros((5, 7, 16, 4)), 'HWOI', 'IOHW').shape  # TensorFlow's conv2d_transpose filter -> PyTorch's
(4, 16, 5, 7)
>>> from refconv import oracle
>>> xl = np.arange(1, 7).reshape(1, 3, 2)                   # NWC: 3 samples, 2 channels
>>> oracle.conv(xl, np.ones((2, 2, 1), int), layout='NWC', weight_layout='WIO').tolist()   # both taps, both channels
[[[10], [18]]]
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .params import ConvParamError

__all__ = [
    "Layout",
    "ACTIVATION_LAYOUTS",
    "WEIGHT_LAYOUTS",
    "TRANSPOSED_WEIGHT_LAYOUTS",
    "FRAMEWORKS",
    "layout",
    "canonical",
    "to_layout",
    "from_layout",
    "convert",
    "shape_to_layout",
    "shape_from_layout",
    "accepts_layouts",
]

_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}
# kind -> (canonical letter pattern, the other patterns); "S" stands for the spatial letters
_PATTERNS = {
    "activation": ("NCS", ("NSC",)),
    "weight": ("OIS", ("SIO", "OSI", "SIM")),
    "transposed_weight": ("IOS", ("SOI",)),
}
_WHAT = {"activation": "an activation layout", "weight": "a convolution weight layout",
         "transposed_weight": "a transposed-convolution weight layout"}


@dataclass(frozen=True)
class Layout:
    """A named layout: its ``kind`` (``'activation'``, ``'weight'``, ``'transposed_weight'``), spatial ``dims``,
    and the ``canonical`` name of the same kind and dims.

    >>> layout('HWIM')
    Layout(name='HWIM', kind='weight', dims=2, canonical='OIHW')
    """

    name: str
    kind: str
    dims: int

    @property
    def canonical(self) -> str:
        return _PATTERNS[self.kind][0].replace("S", _SPATIAL[self.dims])

    @property
    def depthwise(self) -> bool:
        """The depthwise multiplier layout (``HWIM``): ``groups = C_in``."""
        return "M" in self.name

    @property
    def channels_last(self) -> bool:
        return self.kind == "activation" and self.name[-1] == "C"

    def __repr__(self) -> str:
        return f"Layout(name={self.name!r}, kind={self.kind!r}, dims={self.dims}, canonical={self.canonical!r})"


def _table() -> dict[str, Layout]:
    out = {}
    for kind, (canon, others) in _PATTERNS.items():
        for pattern in (canon, *others):
            for d, sp in _SPATIAL.items():
                name = pattern.replace("S", sp)
                out[name] = Layout(name, kind, d)
    return out


_LAYOUTS = _table()
#: every activation layout name
ACTIVATION_LAYOUTS = tuple(n for n, v in _LAYOUTS.items() if v.kind == "activation")
#: every convolution weight layout name
WEIGHT_LAYOUTS = tuple(n for n, v in _LAYOUTS.items() if v.kind == "weight")
#: every transposed-convolution weight layout name
TRANSPOSED_WEIGHT_LAYOUTS = tuple(n for n, v in _LAYOUTS.items() if v.kind == "transposed_weight")

#: the 2-D layouts each framework's own operations use (``depthwise``: its depthwise convolution's weight)
FRAMEWORKS: dict[str, dict[str, str]] = {
    "pytorch": {"activation": "NCHW", "weight": "OIHW", "depthwise": "OIHW", "transposed_weight": "IOHW"},
    "onnx": {"activation": "NCHW", "weight": "OIHW", "depthwise": "OIHW", "transposed_weight": "IOHW"},
    "openvino": {"activation": "NCHW", "weight": "OIHW", "depthwise": "OIHW", "transposed_weight": "IOHW"},
    "tensorflow": {"activation": "NHWC", "weight": "HWIO", "depthwise": "HWIM", "transposed_weight": "HWOI"},
    "keras": {"activation": "NHWC", "weight": "HWIO", "depthwise": "HWIM", "transposed_weight": "HWOI"},
    "jax": {"activation": "NHWC", "weight": "HWIO", "depthwise": "HWIO"},
    "onednn": {"activation": "NHWC", "weight": "OHWI"},
}


def _names(kind: str | None) -> str:
    kinds = [kind] if kind else list(_PATTERNS)
    return "; ".join(f"{_WHAT[k].split(' ', 1)[1]}s: " + ", ".join(n for n, v in _LAYOUTS.items() if v.kind == k) for k in kinds)


def layout(name: Any, *, kind: str | None = None, dims: int | None = None, argument: str = "layout") -> Layout:
    """The :class:`Layout` named ``name``; ConvParamError naming ``argument`` when it is unknown or of another kind or rank.

    >>> layout('NHWC').channels_last, layout('HWOI').canonical
    (True, 'IOHW')
    >>> layout('HWIO', kind='transposed_weight', argument='weight_layout')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: weight_layout='HWIO': a convolution weight layout, not a transposed-convolution weight layout (transposed-convolution weight layouts: IOW, IOHW, IODHW, WOI, HWOI, DHWOI)
    >>> layout('nhwc')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: layout='nhwc': not a layout name (activation layouts: NCW, NCHW, NCDHW, NWC, NHWC, NDHWC; convolution weight layouts: OIW, OIHW, OIDHW, WIO, HWIO, DHWIO, OWI, OHWI, ODHWI, WIM, HWIM, DHWIM; transposed-convolution weight layouts: IOW, IOHW, IODHW, WOI, HWOI, DHWOI)
    """
    if isinstance(name, Layout):
        name = name.name
    found = _LAYOUTS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConvParamError(f"{argument}={name!r}: not a layout name ({_names(kind)})")
    if kind is not None and found.kind != kind:
        raise ConvParamError(f"{argument}={name!r}: {_WHAT[found.kind]}, not {_WHAT[kind]} ({_names(kind)})")
    if dims is not None and found.dims != dims:
        raise ConvParamError(f"{argument}={name!r}: {found.dims} spatial axes, not {dims}")
    return found


def canonical(name: Any) -> str:
    """The canonical layout of the same kind and rank.

    >>> canonical('NDHWC'), canonical('OWI'), canonical('WOI')
    ('NCDHW', 'OIW', 'IOW')
    """
    return layout(name).canonical


def _order(lay: Layout) -> tuple[str, str]:
    """The layout's letters, and the canonical letters in the order a ``transpose`` of it gives them."""
    if lay.depthwise:
        return lay.name, "IM" + _SPATIAL[lay.dims]  # (C_in, M, *K), then (C_in*M, 1, *K)
    return lay.name, lay.canonical


def _check_rank(a_shape: Sequence[int], lay: Layout, argument: str, unbatched_ok: bool) -> bool:
    """Whether a shape in ``lay`` lacks the batch axis (``unbatched_ok``); ConvParamError when its rank is wrong."""
    n = len(lay.name)
    if len(a_shape) == n:
        return False
    if unbatched_ok and lay.kind == "activation" and len(a_shape) == n - 1:
        return True
    axes = ", ".join(lay.name)
    extra = f" or {n - 1} (unbatched, without N)" if unbatched_ok and lay.kind == "activation" else ""
    raise ConvParamError(f"{argument}.shape={tuple(a_shape)}: layout {lay.name!r} has {n} axes ({axes}){extra}")


def from_layout(a: Any, name: Any, *, argument: str = "x") -> np.ndarray:
    """``a`` in layout ``name`` as the canonical layout (channels first; ``(C_out, C_in/g, *K)`` or
    ``(C_in, C_out/g, *K)`` for weights); an unbatched activation stays unbatched.

    >>> from_layout(np.arange(6).reshape(1, 3, 2), 'NWC').tolist()
    [[[0, 2, 4], [1, 3, 5]]]
    >>> from_layout(np.arange(4).reshape(1, 2, 2), 'WIM').tolist()   # 1 tap, C_in = 2, M = 2: o = c*M + m
    [[[0]], [[1]], [[2]], [[3]]]
    """
    lay = layout(name, argument=f"layout of {argument}")
    arr = np.asarray(a)
    if _check_rank(arr.shape, lay, argument, True):
        return np.moveaxis(arr, -1, 0) if lay.channels_last else arr
    letters, target = _order(lay)
    out = arr.transpose([letters.index(ch) for ch in target])
    if lay.depthwise:
        c, m = out.shape[:2]
        out = out.reshape((c * m, 1) + out.shape[2:])
    return out


def to_layout(a: Any, name: Any, *, in_channels: int | None = None, argument: str = "x") -> np.ndarray:
    """The canonical ``a`` in layout ``name``: the inverse of :func:`from_layout`.

    ``in_channels`` (``C_in``) is needed for the depthwise ``HWIM``, whose
    canonical weight ``(C_in*M, 1, *K)`` does not say ``C_in``.

    >>> to_layout(np.arange(6).reshape(1, 2, 3), 'NWC').tolist()
    [[[0, 3], [1, 4], [2, 5]]]
    >>> to_layout(np.arange(4).reshape(4, 1, 1), 'WIM', in_channels=2).tolist()
    [[[0, 1], [2, 3]]]
    >>> to_layout(np.zeros((4, 2, 1)), 'WIM', in_channels=2)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: x.shape=(4, 2, 1): a depthwise HWIM weight comes from (C_in*M, 1, *K) with C_in = in_channels=2
    """
    lay = layout(name, argument=f"layout of {argument}")
    arr = np.asarray(a)
    if _check_rank(arr.shape, lay, argument, True):
        return np.moveaxis(arr, 0, -1) if lay.channels_last else arr
    letters, source = _order(lay)
    if lay.depthwise:
        if in_channels is None:
            raise ConvParamError(f"in_channels=None: converting to {lay.name!r} needs C_in (groups = C_in)")
        o = arr.shape[0]
        if arr.shape[1] != 1 or in_channels < 1 or o % in_channels:
            raise ConvParamError(f"{argument}.shape={arr.shape}: a depthwise HWIM weight comes from (C_in*M, 1, *K) "
                                 f"with C_in = in_channels={in_channels}")
        arr = arr.reshape((in_channels, o // in_channels) + arr.shape[2:])
    return arr.transpose([source.index(ch) for ch in letters])


def convert(a: Any, src: Any, dst: Any, *, in_channels: int | None = None, argument: str = "x") -> np.ndarray:
    """``a`` from layout ``src`` to layout ``dst`` (the same kind and rank); exact.

    >>> convert(np.zeros((2, 5, 6, 3)), 'NHWC', 'NCHW').shape
    (2, 3, 5, 6)
    >>> convert(np.zeros((5, 6)), 'NWC', 'NCW').shape          # unbatched (W, C) -> (C, W)
    (6, 5)
    >>> convert(np.zeros((5, 3)), 'NWC', 'OIW')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: dst='OIW': a convolution weight layout, not an activation layout (activation layouts: NCW, NCHW, NCDHW, NWC, NHWC, NDHWC)
    """
    s = layout(src, argument="src")
    layout(dst, kind=s.kind, dims=s.dims, argument="dst")
    if s.depthwise and in_channels is None:
        in_channels = int(np.shape(a)[-2])  # HWIM -> HWIM keeps C_in
    return to_layout(from_layout(a, s, argument=argument), dst, in_channels=in_channels, argument=argument)


def shape_from_layout(shape: Sequence[int], name: Any, *, argument: str = "shape") -> tuple[int, ...]:
    """A shape in layout ``name`` as the canonical shape (no array is built).

    >>> shape_from_layout((8, 32, 32, 3), 'NHWC'), shape_from_layout((3, 3, 4, 2), 'HWIM')
    ((8, 3, 32, 32), (8, 1, 3, 3))
    """
    lay = layout(name, argument=f"layout of {argument}")
    shp = tuple(int(s) for s in shape)
    if _check_rank(shp, lay, argument, True):
        return (shp[-1], *shp[:-1]) if lay.channels_last else shp
    letters, target = _order(lay)
    out = tuple(shp[letters.index(ch)] for ch in target)
    return (out[0] * out[1], 1, *out[2:]) if lay.depthwise else out


def shape_to_layout(shape: Sequence[int], name: Any, *, in_channels: int | None = None,
                    argument: str = "shape") -> tuple[int, ...]:
    """A canonical shape in layout ``name`` (no array is built).

    >>> shape_to_layout((8, 3, 32, 32), 'NHWC'), shape_to_layout((8, 1, 3, 3), 'HWIM', in_channels=4)
    ((8, 32, 32, 3), (3, 3, 4, 2))
    """
    lay = layout(name, argument=f"layout of {argument}")
    shp = tuple(int(s) for s in shape)
    if _check_rank(shp, lay, argument, True):
        return (*shp[1:], shp[0]) if lay.channels_last else shp
    letters, source = _order(lay)
    if lay.depthwise:
        if in_channels is None or in_channels < 1 or shp[1] != 1 or shp[0] % in_channels:
            raise ConvParamError(f"{argument}={shp}: a depthwise HWIM weight comes from (C_in*M, 1, *K) "
                                 f"with C_in = in_channels={in_channels}")
        shp = (in_channels, shp[0] // in_channels, *shp[2:])
    return tuple(shp[source.index(ch)] for ch in letters)


# --------------------------------------------------------------------------- the keywords on operations

#: argument roles of :func:`accepts_layouts`
ROLES = ("activation", "weight", "transposed_weight", "activation_shape", "weight_shape", "transposed_weight_shape",
         "size")


def _weight_kind(roles: dict[str, str]) -> str | None:
    kinds = {r.replace("_shape", "") for r in roles.values() if "weight" in r}
    return kinds.pop() if kinds else None


def _rank(act: Layout | None, wl: Layout | None) -> int | None:
    if act is not None and wl is not None and act.dims != wl.dims:
        raise ConvParamError(f"layout={act.name!r}, weight_layout={wl.name!r}: {act.dims} and {wl.dims} spatial axes")
    return act.dims if act is not None else wl.dims if wl is not None else None


class _Translation:
    """The conversions of one call: arguments into the canonical layouts, results back."""

    def __init__(self, name: str, act: Layout | None, wl: Layout | None) -> None:
        self.name, self.act, self.wl = name, act, wl
        self.unbatched: bool | None = None
        self.in_channels: int | None = None  # C_in of a depthwise weight (HWIM), for the way back

    def activation(self, arg: str, v: Any) -> Any:
        if v is None or self.act is None:
            return v
        a = np.asarray(v)
        unb = _check_rank(a.shape, self.act, arg, True)
        if self.unbatched is None:
            self.unbatched = unb
        a = from_layout(a, self.act, argument=arg)
        return a[None] if unb else a  # N = 1 for an unbatched input

    def activation_shape(self, arg: str, v: Any) -> Any:
        if v is None or self.act is None:
            return v
        shp = tuple(v)
        unb = _check_rank(shp, self.act, arg, True)
        if self.unbatched is None:
            self.unbatched = unb
        out = shape_from_layout(shp, self.act, argument=arg)
        return (1, *out) if unb else out

    def size(self, arg: str, v: Any) -> Any:
        # a whole shape (PyTorch's output_size may be one) is in the caller's layout; spatial sizes are not
        if self.act is None or not isinstance(v, (tuple, list)) or len(v) < len(self.act.name) - 1:
            return v
        return self.activation_shape(arg, v)

    def weight(self, arg: str, v: Any) -> Any:
        if v is None or self.wl is None:
            return v
        a = np.asarray(v)
        _check_rank(a.shape, self.wl, arg, False)
        if self.wl.depthwise:
            self.in_channels = int(a.shape[-2])
        return from_layout(a, self.wl, argument=arg)

    def weight_shape(self, arg: str, v: Any) -> Any:
        if v is None or self.wl is None:
            return v
        shp = tuple(int(s) for s in v)
        _check_rank(shp, self.wl, arg, False)
        if self.wl.depthwise:
            self.in_channels = shp[-2]
        return shape_from_layout(shp, self.wl, argument=arg)

    def result(self, role: str | None, y: Any) -> Any:
        if isinstance(y, tuple):
            return tuple(self.result(role, v) for v in y)
        if role == "activation" and self.act is not None:
            a = np.asarray(y)
            if self.unbatched:
                a = a[0]
            return np.ascontiguousarray(to_layout(a, self.act, argument="result"))
        if role in ("weight", "transposed_weight") and self.wl is not None:
            return np.ascontiguousarray(to_layout(y, self.wl, in_channels=self.in_channels, argument="result"))
        return y


def _note(f: Callable, wkind: str | None) -> str:
    what = {"weight": "weight layout ``OIHW`` (canonical), ``HWIO``, ``OHWI`` or ``HWIM`` (depthwise: groups = C_in)",
            "transposed_weight": "transposed weight layout ``IOHW`` (canonical) or ``HWOI`` (TensorFlow)"}
    text = ("\n\nAlso takes ``layout=`` (activation layout ``NCHW`` (canonical) or ``NHWC``, any rank: "
            ":mod:`refconv.layouts`)")
    if wkind:
        text += f" and ``weight_layout=`` ({what[wkind]})"
    return text + "; arrays and shapes are given, and results returned, in those layouts.\n"


def accepts_layouts(result: str | None = "activation", **roles: str) -> Callable[[Callable], Callable]:
    """Decorate an operation so that it takes ``layout=`` and ``weight_layout=`` keywords.

    ``roles`` names each argument the layouts apply to (:data:`ROLES`):
    ``'activation'`` (an array ``(N, C, *S)``, also unbatched), ``'weight'`` or
    ``'transposed_weight'`` (an array), ``'activation_shape'``,
    ``'weight_shape'``, ``'transposed_weight_shape'`` (a shape given in that
    layout) and ``'size'`` (converted only when it is a whole shape).  The
    arguments are converted to the canonical layouts, the operation runs,
    and its result (each element of a tuple) is converted back as ``result``
    says (``None``: returned as it is).  A depthwise ``HWIM`` weight sets
    ``groups = C_in`` (an explicit other ``groups`` is an error).  Without
    both keywords the operation is called directly.

    >>> @accepts_layouts(x='activation')
    ... def channel_sums(x):
    ...     return np.asarray(x).sum(axis=2, keepdims=True)
    >>> channel_sums(np.ones((1, 3, 2)), layout='NWC').tolist()   # 3 samples of 2 channels
    [[[3.0, 3.0]]]
    """
    for arg, role in roles.items():
        if role not in ROLES:
            raise ValueError(f"{arg}={role!r}: roles are {', '.join(ROLES)}")
    wkind = _weight_kind(roles)

    def deco(f: Callable) -> Callable:
        sig = inspect.signature(f)

        @functools.wraps(f)
        def wrapper(*args: Any, layout: Any = None, weight_layout: Any = None, **kwargs: Any) -> Any:
            if layout is None and weight_layout is None:
                return f(*args, **kwargs)
            return _call(f, sig, roles, result, wkind, args, kwargs, layout, weight_layout)

        params = list(sig.parameters.values())
        at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
        new = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in ("layout", "weight_layout")]
        wrapper.__signature__ = sig.replace(parameters=params[:at] + new + params[at:])  # type: ignore[attr-defined]
        wrapper.__doc__ = (f.__doc__ or "").rstrip() + _note(f, wkind)
        wrapper.layout_roles = (dict(roles), result)  # type: ignore[attr-defined]  # what the keywords convert
        return wrapper

    return deco


def _call(f: Callable, sig: inspect.Signature, roles: dict[str, str], result: str | None, wkind: str | None,
          args: tuple, kwargs: dict, layout_name: Any, weight_name: Any) -> Any:
    act = None if layout_name is None else layout(layout_name, kind="activation")
    if weight_name is not None and wkind is None:
        raise ConvParamError(f"weight_layout={weight_name!r}: {f.__name__} takes no weight")
    wl = None if weight_name is None else layout(weight_name, kind=wkind, argument="weight_layout")
    _rank(act, wl)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{f.__name__}(): {exc}") from None
    t = _Translation(f.__name__, act, wl)
    convert_role = {"activation": t.activation, "activation_shape": t.activation_shape, "size": t.size,
                    "weight": t.weight, "transposed_weight": t.weight, "weight_shape": t.weight_shape,
                    "transposed_weight_shape": t.weight_shape}
    for arg in sig.parameters:  # in signature order: the first activation says whether the call is unbatched
        if arg in roles and arg in bound.arguments:
            bound.arguments[arg] = convert_role[roles[arg]](arg, bound.arguments[arg])
    if wl is not None and wl.depthwise and "groups" in sig.parameters:
        given = bound.arguments.get("groups")
        if given is not None and given != t.in_channels:
            raise ConvParamError(f"groups={given!r}: weight_layout={wl.name!r} is depthwise, groups = C_in = "
                                 f"{t.in_channels}")
        bound.arguments["groups"] = t.in_channels
    return t.result(result, f(*bound.args, **bound.kwargs))


# --------------------------------------------------------------------------- a canonical call of a function in another layout

#: the layout role of each argument name of the checked ops' canonical signatures (None: not an array in a layout)
ARGUMENT_ROLES: dict[str, str | None] = {
    "x": "activation", "dy": "activation", "y": "activation", "indices": "activation", "offset": "activation",
    "mask": "activation", "w": "weight", "input_shape": "activation_shape", "weight_shape": "weight_shape",
    "b": None, "kernel_size": None, "p": None, "output_size": "size", "samples": None,
}


def transposed(op: str) -> bool:
    """Whether ``op``'s weight is a transposed-convolution weight (``(C_in, C_out/g, *K)``)."""
    return op.startswith("conv_transpose")


def result_role(op: str) -> str:
    """What ``op`` returns: a weight for the weight gradients, an activation otherwise."""
    if op.endswith("grad_weight"):
        return "transposed_weight" if transposed(op) else "weight"
    return "activation"
