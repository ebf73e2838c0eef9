"""What is checked: a built-in adapter by name, a callable, or ``module:function`` / ``file.py:function``.

A :class:`Target` gives, per op, a callable with the canonical signature of
:mod:`refconv.conformance.ops`, the :class:`~refconv.conformance.cases.Capabilities`
it declares, and the source lines that rebuild it in a reproduction.

A plain callable declares its capabilities by the keywords it accepts (a
missing ``dilation`` keyword means "dilation 1 only"), or explicitly with an
attribute ``refconv_capabilities`` (a ``Capabilities`` or a dict of its
fields), or through ``check(..., capabilities=...)`` (a ``Capabilities``
replaces the declaration, a dict changes those fields of it), or by feature
name (:data:`FEATURES`, the command's ``--unsupported``).

The op of a plain callable is read from its signature (:func:`fit`,
:func:`infer_op`): a max-pooling function (``dilation``, no
``count_include_pad``) is never run as average pooling.

Examples
--------
>>> def conv(x, w, b, *, stride, padding, groups):
...     raise NotImplementedError
>>> t = resolve(conv)
>>> t.capabilities('conv', 2, 'float32').dilation
False
>>> infer_op(t)
'conv'
>>> def pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
...     raise NotImplementedError
>>> fit(resolve(pool).signature, 'avg_pool')
"it takes 'dilation', which avg_pool does not have"
>>> restrict(ALL, ['dilation', 'padding-asymmetric']).padding
frozenset({'symmetric'})
>>> resolve('nonexistent')
Traceback (most recent call last):
    ...
refconv.conformance.targets.TargetError: target='nonexistent': not a built-in adapter (torch, onnxruntime, jax, scipy, numpy, refconv.fast, refconv.oracle, and their variants: refconv check --list-adapters) nor 'module:function' or 'path/to/file.py:function'
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
import sys
from typing import Any, Callable, Iterable

import numpy as np

from .. import layouts as _layouts
from . import registry
from .cases import ALL, OPS, Capabilities
from .ops import SIGNATURES, accepted_keywords

__all__ = ["Target", "TargetError", "resolve", "load_function", "ADAPTER_NAMES", "FEATURES", "restrict",
           "declaration", "fit", "infer_op", "signature_of", "supported_ops", "is_adapter", "excluded", "missing",
           "caps_dict"]

#: the built-in adapter families (each may have named variants: refconv.conformance.adapters.ADAPTERS)
ADAPTER_NAMES = ("torch", "onnxruntime", "jax", "scipy", "numpy", "refconv.fast", "refconv.oracle")


class TargetError(ValueError):
    """A target that cannot be resolved or loaded; the message names it."""


class Target:
    """Something to check: callables per op, declared capabilities, and how to rebuild it.

    ``signature`` describes the parameters of a plain callable (see
    :func:`signature_of`; None for adapters), ``callable`` is that callable
    once loaded (None for adapters and for a target loaded only in an
    isolated worker).
    """

    def __init__(self, name: str, functions: Callable[[str], Callable], caps: Callable[[str, int, str], Capabilities],
                 setup: str, spec: str | None = None, keywords: Any = "inspect", *,
                 signature: list | None = None, callable: Callable | None = None, is_function: bool = False,
                 native_layouts: dict[str, tuple[str, str | None]] | None = None) -> None:
        self.name = name
        self._functions = functions
        self._caps = caps
        self.setup = setup          # source lines that define `target` (per op: {op} is substituted)
        self.spec = spec            # importable description for subprocess isolation
        self.keywords = keywords
        self.signature = signature
        self.callable = callable
        self.is_function = is_function
        #: an adapter's library's own 2-D layouts per op, ``{op: (layout, weight_layout)}`` (refconv.layouts names),
        #: which the adapter translates from the canonical ones; identify reports them
        self.native_layouts = native_layouts
        #: an adapter's description of the library and device the verdict holds for (versions, math modes);
        #: the engine adds its lines to the report's notes
        self.environment: Callable[[], list[str]] = lambda: []

    def function(self, op: str) -> Callable:
        return self._functions(op)

    def capabilities(self, op: str, dims: int, dtype: str) -> Capabilities:
        return self._caps(op, dims, dtype)

    def __repr__(self) -> str:
        return f"Target({self.name!r})"


# --------------------------------------------------------------------------- declared capabilities

#: ``--unsupported`` feature names: what each removes from the declared Capabilities
FEATURES: dict[str, str] = {
    "stride": "strides > 1",
    "dilation": "dilations > 1",
    "groups": "groups > 1",
    "bias": "a bias",
    "batch": "batches of more than one sample",
    "empty-batch": "empty batches (N = 0)",
    "channels": "more than one channel",
    "padding": "any padding",
    "padding-asymmetric": "padding that differs between the two sides of an axis",
    "padding-same": "the odd 'same' padding (in (lo, hi) form it is asymmetric: as padding-asymmetric)",
    "output-padding": "output_padding of transposed convolution",
    "ceil-mode": "ceil_mode=True in pooling",
    "count-include-pad": "count_include_pad=True in average pooling",
    "count-exclude-pad": "count_include_pad=False in average pooling",
}


def _symmetric_only(caps: Capabilities, also: Iterable[str] = ()) -> Capabilities:
    kinds = set(caps.padding)
    if "asymmetric" in kinds:  # arbitrary pairs -> equal pairs only
        kinds = (kinds - {"asymmetric"}) | {"symmetric"}
    kinds -= set(also)
    return dataclasses.replace(caps, padding=frozenset(kinds or {"valid"}))


_RESTRICT: dict[str, Callable[[Capabilities], Capabilities]] = {
    "stride": lambda c: dataclasses.replace(c, stride=False),
    "dilation": lambda c: dataclasses.replace(c, dilation=False),
    "groups": lambda c: dataclasses.replace(c, groups=False),
    "bias": lambda c: dataclasses.replace(c, bias=False),
    "batch": lambda c: dataclasses.replace(c, batch=False),
    "empty-batch": lambda c: dataclasses.replace(c, empty_batch=False),
    "channels": lambda c: dataclasses.replace(c, channels=False),
    "padding": lambda c: dataclasses.replace(c, padding=frozenset({"valid"})),
    "padding-asymmetric": _symmetric_only,
    "padding-same": lambda c: _symmetric_only(c, ("same", "same_lower")),
    "output-padding": lambda c: dataclasses.replace(c, output_padding=False),
    "ceil-mode": lambda c: dataclasses.replace(c, ceil_mode=False),
    "count-include-pad": lambda c: dataclasses.replace(
        c, count_include_pad=tuple(v for v in c.count_include_pad if not v) or (False,)),
    "count-exclude-pad": lambda c: dataclasses.replace(
        c, count_include_pad=tuple(v for v in c.count_include_pad if v) or (True,)),
}

# declarations of fields that not every version of Capabilities has
_FIELDS = {f.name for f in dataclasses.fields(Capabilities)}
if "refuses_invalid" in _FIELDS:
    FEATURES["validation"] = "refusing the configurations the definition rejects (the target does not validate)"
    _RESTRICT["validation"] = lambda c: dataclasses.replace(c, refuses_invalid=False)
if "full_range" in _FIELDS:
    FEATURES["full-range"] = "values near the overflow threshold of the dtype (a narrower exponent range inside)"
    _RESTRICT["full-range"] = lambda c: dataclasses.replace(c, full_range=False)


def features(names: Any) -> tuple[str, ...]:
    """Feature names from a comma-separated string or a list; ConvParamError naming an unknown one."""
    from ..params import ConvParamError

    if names is None:
        return ()
    items = names.split(",") if isinstance(names, str) else list(names)
    out = []
    for n in items:
        n = str(n).strip()
        if not n:
            continue
        if n not in FEATURES:
            raise ConvParamError(f"unsupported={n!r}: features are " + ", ".join(FEATURES))
        out.append(n)
    return tuple(dict.fromkeys(out))


def restrict(caps: Capabilities, names: Iterable[str]) -> Capabilities:
    """``caps`` without the features ``names`` (see :data:`FEATURES`)."""
    for n in features(list(names)):
        caps = _RESTRICT[n](caps)
    return caps


def declaration(name: str) -> str:
    """How to declare feature ``name`` unsupported, on the command line and in Python.

    >>> declaration('dilation')
    "--unsupported dilation (Python: capabilities={'dilation': False})"
    """
    changed = restrict(ALL, [name])
    diff = {f.name: getattr(changed, f.name) for f in dataclasses.fields(ALL)
            if getattr(changed, f.name) != getattr(ALL, f.name)}
    return f"--unsupported {name} (Python: capabilities={diff!r})"


def _replace(caps: Capabilities, fields: dict[str, Any], what: Any) -> Capabilities:
    try:
        return dataclasses.replace(caps, **fields)
    except TypeError as exc:
        names = ", ".join(f.name for f in dataclasses.fields(Capabilities))
        raise TargetError(f"capabilities={what!r}: {exc} (fields: {names})") from None


def _compose(declared: Any, names: set[str] | None, op: str, override: Any) -> Capabilities:
    """The capabilities of a plain callable: its declaration, the override, then what its signature lacks."""
    if isinstance(override, Capabilities):
        declared = override
    if isinstance(declared, Capabilities):
        caps = declared
    elif isinstance(declared, dict):
        caps = _replace(ALL, declared, declared)
    elif declared is None:
        caps = ALL
    else:
        raise TargetError(f"capabilities={declared!r}: expected a Capabilities or a dict of its fields")
    if isinstance(override, dict):
        caps = _replace(caps, override, override)
    elif override is not None and not isinstance(override, Capabilities):
        raise TargetError(f"capabilities={override!r}: expected a Capabilities or a dict of its fields")
    if names is not None:
        # a keyword the callable lacks is a parameter it does not support
        for kw, fld in (("stride", "stride"), ("dilation", "dilation"), ("groups", "groups"),
                        ("output_padding", "output_padding"), ("ceil_mode", "ceil_mode")):
            if kw not in names and getattr(caps, fld):
                caps = dataclasses.replace(caps, **{fld: False})  # type: ignore[arg-type]  # a bool field
        if "padding" not in names:
            caps = dataclasses.replace(caps, padding=frozenset({"valid"}))
        if registry.get(op).takes("count_include_pad") and "count_include_pad" not in names:
            caps = dataclasses.replace(caps, count_include_pad=(True,))
    return caps


def _caps_from_callable(fn: Callable, op: str, override: Any) -> Capabilities:
    return _compose(getattr(fn, "refconv_capabilities", None), accepted_keywords(fn)[0], op, override)


def caps_dict(caps: Capabilities) -> dict[str, Any]:
    """The declared capabilities as plain data (the rule left out)."""
    d = {f.name: getattr(caps, f.name) for f in dataclasses.fields(caps) if f.name not in ("rule",)}
    d["padding"] = sorted(d["padding"])
    return d


def not_offered_note(op: str, reason: str) -> str:
    """The note by which an adapter says why it does not offer ``op`` here (its library does not load).

    >>> not_offered_note('deform_conv', 'torchvision does not load')
    'deform_conv: torchvision does not load'
    """
    return f"{op}: {reason}"


def not_offered_reason(caps: Capabilities, op: str) -> str:
    """The reason ``caps`` gives for not offering ``op`` here ('' when it gives none): :func:`not_offered_note`."""
    return next((n for n in caps.notes if n.startswith(f"{op}: ")), "")


def missing(caps: Capabilities, op: str, dims: int, dtype: str) -> str:
    """The op, dims or dtype of a check that ``caps`` excludes, in words ('' when none)."""
    if op not in caps.ops:
        why = not_offered_reason(caps, op)  # the adapter's reason, when it gives one
        return f"op={op!r} (supported: {', '.join(caps.ops) or 'none here'})" + (f"; {why}" if why else "")
    if dims not in caps.dims:
        return f"dims={dims} (supported: {', '.join(map(str, caps.dims))})"
    if dtype not in caps.dtypes:
        return f"dtype={dtype!r} (supported: {', '.join(caps.dtypes)})"
    return ""


def excluded(caps: Capabilities, op: str) -> list[str]:
    """Everything the declared capabilities exclude from the check, in words."""
    out = []
    rec = registry.get(op)
    pads = set(caps.padding)
    if "asymmetric" not in pads:
        out.append("padding other than " + "/".join(sorted(pads)))
    for name in ("stride", "dilation", "groups", "bias", "batch", "channels"):
        if not getattr(caps, name) and (name not in ("groups", "bias") or not rec.window):
            out.append(name)
    if not caps.empty_batch:
        out.append("empty batches (N = 0)")
    if rec.takes("output_padding") and not caps.output_padding:
        out.append("output_padding")
    if rec.takes("ceil_mode") and not caps.ceil_mode:
        out.append("ceil_mode")
    if rec.takes("count_include_pad") and len(caps.count_include_pad) < 2:
        out.append(f"count_include_pad={not caps.count_include_pad[0]}")
    if not getattr(caps, "refuses_invalid", True):
        out.append("configurations the definition rejects (the target does not validate them)")
    if not getattr(caps, "full_range", True):
        out.append("values near the overflow threshold")
    if caps.rule is not None:
        name = getattr(caps.rule, "__name__", repr(caps.rule))
        doc = (getattr(caps.rule, "__doc__", None) or "").strip().splitlines()
        out.append(f"cases excluded by the target's own rule: {name}" + (f" ({doc[0]})" if doc else ""))
    out += list(caps.notes)
    return out



# --------------------------------------------------------------------------- which op a signature fits


def _canonical() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Positional and keyword names of each op, read from :data:`~refconv.conformance.ops.SIGNATURES`."""
    pos, kws = {}, {}
    for op, text in SIGNATURES.items():
        parts = [p.strip() for p in text[text.index("(") + 1:text.rindex(")")].split(",")]
        star = parts.index("*")
        pos[op], kws[op] = tuple(parts[:star]), tuple(parts[star + 1:])
    return pos, kws


_POSITIONAL, _KEYWORDS = _canonical()
_MOVABLE = {"kernel_size", "input_shape", "weight_shape"}  # may be keyword-only (ops.call passes them by name)
_ALL_NAMES = set().union(*_KEYWORDS.values(), *_POSITIONAL.values())
_OWN = {"max_pool": {"dilation"}, "avg_pool": {"count_include_pad"},  # what tells the two poolings apart
        "avg_pool_grad": {"count_include_pad"}}


def signature_of(fn: Callable) -> list[list] | None:
    """The parameters of ``fn`` as ``[name, kind, has_default]`` lists (plain data); None when not inspectable."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, p.default is not p.empty] for p in sig.parameters.values()]


def fit(signature: list | None, op: str) -> str:
    """Why a callable with ``signature`` cannot be ``op`` ('' when it can: the canonical call binds and
    none of its parameters is named for another op)."""
    if signature is None:
        return ""
    P = inspect.Parameter
    params = [P(name, getattr(P, kind), default=None if has_default else P.empty) for name, kind, has_default in signature]
    names = {p.name for p in params if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)}
    kwonly = {p.name for p in params if p.kind is P.KEYWORD_ONLY}
    pos, kws = list(_POSITIONAL[op]), _KEYWORDS[op]
    passed = set(kws) if any(p.kind is P.VAR_KEYWORD for p in params) else set(kws) & names
    if pos[-1] in _MOVABLE and pos[-1] in kwonly:
        pos.pop()
        passed.add(_POSITIONAL[op][-1])
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)][:len(pos)]
    for i, p in enumerate(positional):
        # a positional parameter named as another op's (dy, kernel_size, b...) at this place
        others = {o for o in OPS if i < len(_POSITIONAL[o]) and _POSITIONAL[o][i] == p.name}
        if others and op not in others:
            return f"its argument {i + 1} is named {p.name!r}, as in {', '.join(sorted(others))}"
    own = names & _OWN.get(op, set())  # a pooling function taking both dilation and count_include_pad is generic
    for name in sorted(names - {p.name for p in positional}):
        if name in _ALL_NAMES and name not in kws and name != _POSITIONAL[op][-1] and not own:
            return f"it takes {name!r}, which {op} does not have"
    try:
        inspect.Signature(params).bind(*pos, **{k: None for k in passed})
    except TypeError as exc:
        return f"it cannot be called as {SIGNATURES[op]} ({exc})"
    return ""


def fitting_ops(target: Target) -> list[str]:
    """The ops the target's signature fits (every op for adapters and uninspectable callables)."""
    return [op for op in OPS if not fit(target.signature, op)]


def infer_op(target: Target, *, required: bool = False) -> str | None:
    """The op a plain callable's signature names; None when it names none (any op binds).

    Three arrays and no name of another op mean ``conv``.  ``required``:
    raise instead of returning None.  ConvParamError when the signature
    fits no op or several (say so with ``op=``).
    """
    from ..params import ConvParamError

    fits = fitting_ops(target)
    single = [o for o in fits if len(registry.get(o).outputs) == 1]
    if len(fits) > 1 and len(single) == 1 and len(fits) < len(OPS):
        # the same signature with one result or with (values, indices): a signature cannot say, the plain op it is
        return single[0]
    if len(fits) == 1:
        return fits[0]
    if "conv" in fits and len(fits) < len(OPS) and all(registry.get(o).family == "conv" for o in fits):
        return "conv"
    if not fits:
        why = "; ".join(f"{op}: {fit(target.signature, op)}" for op in OPS)
        raise ConvParamError(f"target={target.name!r}: its signature fits no op ({why})")
    if len(fits) == len(OPS):
        if required:
            raise ConvParamError(f"target={target.name!r}: its signature does not say which op it is: give the op "
                                 "(--op / op=)")
        return None
    raise ConvParamError(f"target={target.name!r}: its signature fits {' and '.join(fits)}: give the op (--op / op=)")


def supported_ops(target: Target, dims: int = 2, dtype: str = "float32") -> list[str]:
    """The ops to check for ``--op all``.

    A plain callable: the one op its signature names (:func:`infer_op`;
    ConvParamError with the reason when it names none or several).  An
    adapter: the ops it declares; an op whose declaration cannot be read is
    kept, so that checking it reports refconv's error instead of dropping it.
    """
    if target.is_function:
        return [str(infer_op(target, required=True))]
    out = []
    for op in OPS:
        try:
            declared = op in target.capabilities(op, dims, dtype).ops
        except TargetError:
            raise
        except Exception:  # noqa: BLE001 - checked anyway: its report says what failed
            declared = True
        if declared:
            out.append(op)
    return out


# --------------------------------------------------------------------------- loading


def load_function(spec: str) -> Callable:
    """Load ``module:function`` or ``path/to/file.py:function`` (dotted attributes allowed after the colon)."""
    if ":" not in spec:
        raise TargetError(f"target={spec!r}: expected 'module:function' or 'path/to/file.py:function'")
    mod_part, _, attr = spec.rpartition(":")
    if not mod_part or not attr:
        raise TargetError(f"target={spec!r}: expected 'module:function' or 'path/to/file.py:function'")
    try:
        if mod_part.endswith(".py") or os.sep in mod_part or "/" in mod_part:
            path = os.path.abspath(mod_part)
            if not os.path.isfile(path):
                raise TargetError(f"target={spec!r}: no file {mod_part!r}")
            name = "refconv_target_" + os.path.splitext(os.path.basename(path))[0]
            s = importlib.util.spec_from_file_location(name, path)
            if s is None or s.loader is None:
                raise TargetError(f"target={spec!r}: {path!r} cannot be imported as a module")
            module = importlib.util.module_from_spec(s)
            s.loader.exec_module(module)
        else:
            try:
                module = importlib.import_module(mod_part)
            except ModuleNotFoundError as exc:
                # like `python -m`, let a module of the current directory be found
                if exc.name != mod_part.split(".")[0] or os.getcwd() in sys.path:
                    raise
                sys.path.insert(0, os.getcwd())
                module = importlib.import_module(mod_part)
    except (TargetError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - an import error (or SystemExit) of the user's module: a usage error
        raise TargetError(f"target={spec!r}: cannot import {mod_part!r}: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"target={spec!r}: {mod_part!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TargetError(f"target={spec!r}: {attr!r} is not callable")
    return obj


def _from_callable(fn: Callable, name: str, setup: str, spec: str | None, override: Any) -> Target:
    return Target(name, lambda op: fn, lambda op, dims, dtype: _caps_from_callable(fn, op, override), setup, spec,
                  signature=signature_of(fn), callable=fn, is_function=True)


def is_adapter(name: str) -> bool:
    """Whether ``name`` is a built-in adapter (or a variant of one, like ``onnxruntime.explicit``)."""
    from . import adapters

    return adapters.module_of(name) is not None


def _setup_of(target: str) -> str:
    mod_part, _, attr = target.rpartition(":")
    if mod_part.endswith(".py") or "/" in mod_part:
        return (
            "import importlib.util\n"
            f"_spec = importlib.util.spec_from_file_location('target_module', {os.path.abspath(mod_part)!r})\n"
            "_mod = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(_mod)\n"
            f"target = _mod.{attr}"
        )
    return f"from {mod_part} import {attr.split('.')[0]} as target" + (
        "" if "." not in attr else "\ntarget = target." + attr.split(".", 1)[1]
    )


def _not_here(name: str) -> Callable[..., Any]:
    """Stands for the functions and capabilities of a target that only its isolated worker loads."""

    def functions(*args: Any) -> Any:
        raise RuntimeError(f"target {name!r} is loaded only in its isolated worker")

    return functions


def resolve(target: Any, *, capabilities: Any = None, load: bool = True) -> Target:
    """A :class:`Target` from an adapter name, a target string or a callable.

    ``load=False`` leaves a ``module:function`` target unimported (for an
    isolated check: the worker imports it and :func:`bind_worker` completes it).
    """
    if isinstance(target, Target):
        return target
    if isinstance(target, str) and split_layout_spec(target)[0] != target:
        base, layout, weight_layout = split_layout_spec(target)
        return with_layouts(resolve(base, capabilities=capabilities, load=load), layout, weight_layout)
    if isinstance(target, str):
        if is_adapter(target):
            from . import adapters

            t = adapters.get(target)
            if capabilities is not None:
                declared = t._caps

                def caps(op: str, dims: int, dtype: str) -> Capabilities:
                    c = declared(op, dims, dtype)
                    if isinstance(capabilities, dict):
                        return _replace(c, capabilities, capabilities)
                    if isinstance(capabilities, Capabilities):
                        return capabilities
                    raise TargetError(f"capabilities={capabilities!r}: expected a Capabilities or a dict of its fields")

                t = Target(t.name, t._functions, caps, t.setup, t.spec, t.keywords,
                           native_layouts=getattr(t, "native_layouts", None))
            return t
        if ":" in target:
            if not load:
                return Target(target, _not_here(target), _not_here(target), _setup_of(target), target,
                              is_function=True)
            return _from_callable(load_function(target), target, _setup_of(target), target, capabilities)
        raise TargetError(
            f"target={target!r}: not a built-in adapter ({', '.join(ADAPTER_NAMES)}, and their variants: "
            "refconv check --list-adapters) nor 'module:function' or 'path/to/file.py:function'"
        )
    if callable(target):
        mod = getattr(target, "__module__", None)
        qual = getattr(target, "__qualname__", getattr(target, "__name__", None))
        name = f"{mod}:{qual}" if mod and qual else repr(target)
        if mod and qual and "<" not in qual and mod != "__main__":
            setup = f"from {mod} import {qual.split('.')[0]} as target" + (
                "" if "." not in qual else "\ntarget = target." + qual.split(".", 1)[1]
            )
            spec = f"{mod}:{qual}"
        else:
            setup = "target = ...  # the checked callable"
            spec = None
        return _from_callable(target, name, setup, spec, capabilities)
    raise TargetError(f"target={target!r}: expected an adapter name, 'module:function', or a callable")


class _RemoteRule:
    """The target's own capability rule, evaluated in its isolated worker."""

    def __init__(self, worker: Any, name: str, doc: str) -> None:
        self._worker, self.__name__, self.__doc__ = worker, name, doc

    def __call__(self, case: Any) -> bool:
        return self._worker.rule(case)


def _declared_from(info: dict | None, worker: Any) -> Any:
    """The declaration a worker read from the target (JSON) as a Capabilities or a dict of its fields."""
    if not info:
        return None
    fields = {}
    for k, v in info["fields"].items():
        if k == "rule":
            v = None if v is None else _RemoteRule(worker, v["name"], v["doc"])
        elif k == "padding":
            v = frozenset(v)
        elif isinstance(v, list):
            v = tuple(v)
        fields[k] = v
    return _replace(ALL, fields, fields) if info["full"] else fields


def bind_worker(target: Target, worker: Any, capabilities: Any = None) -> Target:
    """Complete a target loaded only in ``worker`` (``resolve(..., load=False)``) with what the worker read."""
    info = worker.info or {}
    if target.callable is not None or "signature" not in info:
        return target
    declared = _declared_from(info.get("declared"), worker)
    names = None if info.get("keywords") is None else set(info["keywords"])
    target._caps = lambda op, dims, dtype: _compose(declared, names, op, capabilities)
    target.signature = info["signature"]
    lays = getattr(target, "layouts", None)
    if lays is not None:  # the declaration read in the worker, restricted by the layouts again
        base = Target(split_layout_spec(target.name)[0], target._functions, target._caps, target.setup,
                      split_layout_spec(target.spec or "")[0] or None, target.keywords, signature=target.signature,
                      is_function=True)
        target._caps = with_layouts(base, *lays)._caps
    return target


# --------------------------------------------------------------------------- a function in its own layouts

# a function target whose arrays are in other layouts: 'module:function[layout=NHWC, weight_layout=HWIO]'
_LAYOUT_SPEC = re.compile(r"^(?P<base>.+)\[(?:layout=(?P<layout>\w+)(?:, (?=weight))?)?(?:weight_layout=(?P<weight>\w+))?\]$")


def layout_spec(target: str, layout: str | None = None, weight_layout: str | None = None) -> str:
    """The target string of ``target`` checked with its arrays in ``layout`` and ``weight_layout``.

    >>> layout_spec('mypkg:conv2d', 'NHWC', 'HWIO')
    'mypkg:conv2d[layout=NHWC, weight_layout=HWIO]'
    """
    parts = [f"{k}={v}" for k, v in (("layout", layout), ("weight_layout", weight_layout)) if v]
    return f"{target}[{', '.join(parts)}]"


def split_layout_spec(target: str) -> tuple[str, str | None, str | None]:
    """``(target, layout, weight_layout)`` of a string made by :func:`layout_spec` (None: not given)."""
    m = _LAYOUT_SPEC.match(target)
    if m is None or not (m["layout"] or m["weight"]):
        return target, None, None
    return m["base"], m["layout"] or None, m["weight"] or None


def _weight_kind(op: str) -> str | None:
    """The kind of ``op``'s weight layout (:mod:`refconv.layouts`), None when it takes no weight."""
    names = _POSITIONAL.get(op, ())
    if not any(_layouts.ARGUMENT_ROLES.get(n) in ("weight", "weight_shape") for n in names):
        return None
    return "transposed_weight" if _layouts.transposed(op) else "weight"


def check_layouts(op: str, dims: int | None, layout: Any, weight_layout: Any) -> tuple[Any, Any]:
    """The :class:`~refconv.layouts.Layout` pair a check of ``op`` in ``dims`` takes; ConvParamError naming the bad one.

    >>> check_layouts('conv', 2, 'NHWC', 'HWIO')[1].canonical
    'OIHW'
    >>> check_layouts('max_pool', 2, 'NHWC', 'HWIO')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: weight_layout='HWIO': op 'max_pool' takes no weight
    >>> check_layouts('conv', 1, 'NHWC', None)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: layout='NHWC': 2 spatial axes, not 1 (dims=1)
    """
    from ..params import ConvParamError

    unknown = [n for n in _POSITIONAL.get(op, ()) if n not in _layouts.ARGUMENT_ROLES]
    if unknown and (layout is not None or weight_layout is not None):
        raise ConvParamError(f"op={op!r}: no layout translation for its argument(s) {', '.join(unknown)}")
    act = None if layout is None else _layouts.layout(layout, kind="activation")
    wl = None
    if weight_layout is not None:
        kind = _weight_kind(op)
        if kind is None:
            raise ConvParamError(f"weight_layout={weight_layout!r}: op {op!r} takes no weight")
        wl = _layouts.layout(weight_layout, kind=kind, argument="weight_layout")
    for name, lay in (("layout", act), ("weight_layout", wl)):
        if lay is not None and dims is not None and lay.dims != dims:
            raise ConvParamError(f"{name}={lay.name!r}: {lay.dims} spatial axes, not {dims} (dims={dims})")
    if act is not None and wl is not None and act.dims != wl.dims:
        raise ConvParamError(f"layout={act.name!r}, weight_layout={wl.name!r}: {act.dims} and {wl.dims} spatial axes")
    return act, wl


def _memory_kind(a: np.ndarray) -> str:
    """Which of the case memory layouts (:data:`refconv.conformance.cases.LAYOUTS`) ``a`` is in."""
    if not a.flags.writeable:
        return "readonly"
    if not a.flags.aligned:
        return "misaligned"
    if any(s < 0 for s in a.strides):
        return "negative"
    if a.flags.c_contiguous:
        return "contiguous"
    if a.flags.f_contiguous:
        return "fortran"
    if a.ndim > 2 and np.moveaxis(a, 1, -1).flags.c_contiguous:
        return "channels_last"
    return "strided"


def _user_array(a: Any, lay: Any, in_channels: int | None = None) -> Any:
    """A canonical input in the user's layout, in the same kind of memory layout as the case gave it."""
    from .cases import in_layout

    if a is None or lay is None:
        return a
    arr = np.asarray(a)
    user = np.ascontiguousarray(_layouts.to_layout(arr, lay, in_channels=in_channels))
    return in_layout(user, _memory_kind(arr))


class _InLayouts:
    """The conversions of :func:`in_layouts` for one op: canonical arguments to the function's layouts, results back."""

    def __init__(self, op: str, act: Any, wl: Any) -> None:
        self.op, self.act, self.wl = op, act, wl
        self.result_layout = act if _layouts.result_role(op) == "activation" else wl

    def channels_in(self, named: dict[str, Any]) -> int | None:
        """``C_in`` of a depthwise (``HWIM``) call: the input's channels."""
        if self.wl is None or not self.wl.depthwise:
            return None
        if named.get("x") is not None:
            return int(np.shape(named["x"])[1])
        return int(tuple(named["input_shape"])[1]) if "input_shape" in named else None

    def to_user(self, name: str, v: Any, cin: int | None) -> Any:
        role = _layouts.ARGUMENT_ROLES.get(name)
        if role == "activation":
            return _user_array(v, self.act)
        if role == "weight":
            return _user_array(v, self.wl, cin)
        if role == "activation_shape" and self.act is not None:
            return _layouts.shape_to_layout(v, self.act)
        if role == "weight_shape" and self.wl is not None:
            return _layouts.shape_to_layout(v, self.wl, in_channels=cin)
        return v

    def from_user(self, y: Any) -> Any:
        from .isolation import to_array

        if isinstance(y, (tuple, list)):
            return type(y)(self.from_user(v) for v in y)
        lay = self.result_layout
        if lay is None:
            return y
        try:
            a = to_array(y)
        except TypeError:
            return y
        if a.ndim != len(lay.name):
            return y  # not in the layout: the check says what shape came back
        return np.ascontiguousarray(_layouts.from_layout(a, lay, argument="result"))


def in_layouts(fn: Callable, op: str, layout: Any = None, weight_layout: Any = None) -> Callable:
    """``fn``, whose arrays are in ``layout`` / ``weight_layout``, as a callable with ``op``'s canonical signature.

    The canonical arrays are converted to the function's layouts (in the same
    kind of memory layout: contiguous, strided, read-only...), the shapes
    ``input_shape`` / ``weight_shape`` too, and its results back to the
    canonical layouts.  A result whose rank does not fit the layout is
    returned as it is (the check reports its shape).  A depthwise ``HWIM``
    weight needs ``groups = C_in`` (the check offers only such cases).

    >>> def nwc_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):   # max pooling on (N, W, C)
    ...     from refconv import oracle
    ...     return oracle.max_pool(x, kernel_size, stride=stride, padding=padding, layout='NWC')
    >>> f = in_layouts(nwc_pool, 'max_pool', 'NWC')
    >>> f(np.array([[[1., 3., 2., 5.]]]), (2,), stride=(2,), padding=((0, 0),), dilation=(1,), ceil_mode=False).tolist()
    [[[3.0, 5.0]]]
    """
    conv = _InLayouts(op, *check_layouts(op, None, layout, weight_layout))
    names = _POSITIONAL[op]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        cin = conv.channels_in(dict(zip(names, args), **kwargs))
        args2 = [conv.to_user(n, a, cin) for n, a in zip(names, args)]
        kw2 = {k: conv.to_user(k, v, cin) for k, v in kwargs.items()}
        return conv.from_user(fn(*args2, **kw2))

    try:
        wrapped.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]  # the keywords it accepts
    except (TypeError, ValueError):
        pass
    wrapped.__name__ = getattr(fn, "__name__", "target")
    wrapped.__doc__ = getattr(fn, "__doc__", None)
    return wrapped


def _depthwise(case: Any) -> bool:
    """Depthwise: every group one input channel (``groups = C_in``), what a ``HWIM`` weight can hold."""
    return case.groups == case.cin


def with_layouts(target: Target, layout: Any = None, weight_layout: Any = None) -> Target:
    """``target`` (a function) called with its arrays in ``layout`` / ``weight_layout`` (:func:`in_layouts`).

    Its declared dims become the layouts' rank; a depthwise ``HWIM`` weight
    limits the cases to ``groups = C_in``.  Built-in adapters take canonical
    arrays: a TargetError.
    """
    if layout is None and weight_layout is None:
        return target
    if not target.is_function:
        raise TargetError(f"layout={layout!r}, weight_layout={weight_layout!r}: target {target.name!r} is a built-in "
                          "adapter, which takes canonical arrays; layouts apply to a function target")
    act = None if layout is None else _layouts.layout(layout, kind="activation")
    wl = None if weight_layout is None else _layouts.layout(weight_layout, argument="weight_layout")
    if wl is not None and wl.kind == "activation":
        _layouts.layout(weight_layout, kind="weight", argument="weight_layout")  # the error naming the kinds
    first = act or wl
    assert first is not None  # both None returned above
    rank = first.dims
    spec = None if target.spec is None else layout_spec(split_layout_spec(target.spec)[0], layout, weight_layout)
    name = layout_spec(split_layout_spec(target.name)[0], layout, weight_layout)
    base_functions, base_caps = target._functions, target._caps

    def functions(op: str) -> Callable:
        return in_layouts(base_functions(op), op, layout, weight_layout)

    def caps(op: str, dims: int, dtype: str) -> Capabilities:
        c = base_caps(op, dims, dtype)
        c = dataclasses.replace(c, dims=tuple(d for d in c.dims if d == rank) or (rank,))
        if wl is not None and wl.depthwise and _weight_kind(op) == "weight":
            rule = c.rule

            def depthwise(case: Any, _rule: Any = rule) -> bool:
                return _depthwise(case) and (_rule is None or bool(_rule(case)))

            depthwise.__doc__ = "a depthwise HWIM weight holds groups = C_in only"
            c = dataclasses.replace(c, groups=True, rule=depthwise)
        return c

    setup = (target.setup + "\nfrom refconv.conformance.targets import in_layouts\n"
             f"target = in_layouts(target, '{{op}}', {layout!r}, {weight_layout!r})")
    out = Target(name, functions, caps, setup, spec, target.keywords, signature=target.signature,
                 callable=target.callable, is_function=True)
    out.layouts = (layout, weight_layout)  # type: ignore[attr-defined]
    return out


def check(target: Any, *, layout: Any = None, weight_layout: Any = None, op: str | None = None,
          dims: int | None = None, **kwargs: Any) -> Any:
    """:func:`refconv.conformance.engine.check` of a function whose arrays are in ``layout`` / ``weight_layout``.

    Every keyword of the engine's ``check`` is accepted.  ``layout`` names the
    activation layout the function takes and returns (``'NHWC'``...;
    :mod:`refconv.layouts`), ``weight_layout`` its weight layout (``'HWIO'``,
    ``'OHWI'``, depthwise ``'HWIM'``; ``'HWOI'`` for a transposed
    convolution).  These are the target's *logical* layouts; the memory
    layouts of the catalogue (``Case.layout``: contiguous, strided,
    channels-last strides...) still vary how the arrays lie in memory.
    ``dims`` defaults to the layouts' rank (2 without them).  A failing
    function is probed for the layouts its results match, and the report's
    diagnosis names them.

    >>> import numpy as np
    >>> from refconv import oracle
    >>> def nhwc(x, w, b, *, stride, padding, dilation, groups):
    ...     return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,
    ...                        layout='NHWC', weight_layout='HWIO')
    >>> check(nhwc, layout='NHWC', weight_layout='HWIO', max_examples=5, seed=0).verdict
    'PASS'
    >>> r = check(nhwc, max_examples=0, seed=0)          # taken for channels first
    >>> r.verdict, [d for d in r.failure.diagnosis if 'layout' in d][:1]
    ('FAIL', ["the results match layout='NHWC', weight_layout='HWIO' (command: --layout NHWC --weight-layout HWIO)"])
    """
    from . import engine

    isolate = bool(kwargs.get("isolate", False))
    caps = kwargs.pop("capabilities", None)
    if layout is None and weight_layout is None:
        tgt: Any = target
        rank = 2 if dims is None else dims
    else:
        first = _layouts.layout(layout, kind="activation") if layout is not None else \
            _layouts.layout(weight_layout, argument="weight_layout")
        rank = first.dims if dims is None else dims
        if isinstance(target, str) and not is_adapter(target) and split_layout_spec(target)[0] == target:
            tgt = layout_spec(target, layout, weight_layout) if isolate else \
                resolve(layout_spec(target, layout, weight_layout), capabilities=caps)
            caps = None if not isolate else caps
        elif isinstance(target, str):
            tgt = resolve(target)  # an adapter: a TargetError saying that layouts apply to functions
            tgt = with_layouts(tgt, layout, weight_layout)
        else:
            tgt = with_layouts(resolve(target, capabilities=caps), layout, weight_layout)
            caps = None
        if not isolate and isinstance(tgt, Target):
            chosen = op or (infer_op(tgt) if tgt.is_function else None) or "conv"
            check_layouts(chosen, rank, layout, weight_layout)
    report = engine.check(tgt, op=op, dims=rank, capabilities=caps, **kwargs)
    # only a failure of the values, shapes or a raised exception can be a layout mismatch (a target that hung,
    # crashed or tampered is never called again here)
    if (report.verdict == "FAIL" and not isolate and report.failure is not None
            and report.failure.kind in ("value", "shape", "exception")):
        before = engine._snapshot()
        try:
            _diagnose_layouts(tgt if isinstance(tgt, Target) else None, target, report, layout, weight_layout, caps)
        finally:
            engine._replaced(before)  # the probes' calls may not leave refconv's functions replaced either
    return report


def _diagnose_layouts(tgt: Target | None, target: Any, report: Any, layout: Any, weight_layout: Any, caps: Any) -> None:
    """Add to a failure's diagnosis the layouts the function's results match, when they differ from those declared."""
    try:
        if tgt is None:
            if isinstance(target, str) and is_adapter(target):
                return
            tgt = resolve(target, capabilities=caps)
        if not tgt.is_function or tgt.callable is None:
            return
        from .identify import detect_layouts, shaped_pair

        found, tried = detect_layouts(tgt.callable, report.op, report.dims)
    except Exception:  # noqa: BLE001 - a diagnosis that cannot be made is left out, never a new failure
        return
    declared = (layout, weight_layout)
    how = "the results match"
    pair = shaped_pair(tried)
    if not found and pair is not None:  # other conventions too: the shapes alone name the layouts
        found, how = [pair], "the results have the shapes (not the values) of"
    for act, wl in found:
        canon = (act == _layouts.canonical(act)) and (wl is None or wl == _layouts.canonical(wl))
        same = (act == (layout or _layouts.canonical(act))) and (wl is None or wl == (weight_layout or _layouts.canonical(wl)))
        if same or (canon and declared == (None, None)):
            continue
        words = f"layout={act!r}" + (f", weight_layout={wl!r}" if wl else "")
        cmd = f"--layout {act}" + (f" --weight-layout {wl}" if wl else "")
        report.failure.diagnosis.insert(0, f"{how} {words} (command: {cmd})")
