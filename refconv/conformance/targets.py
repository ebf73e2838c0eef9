"""What is checked: a built-in adapter by name, a callable, or ``module:function`` / ``file.py:function``.

A :class:`Target` gives, per op, a callable with the canonical signature of
:mod:`refconv.conformance.ops`, the :class:`~refconv.conformance.cases.Capabilities`
it declares, and the source lines that rebuild it in a reproduction.

A plain callable declares its capabilities by the keywords it accepts (a
missing ``dilation`` keyword means "dilation 1 only"), or explicitly with an
attribute ``refconv_capabilities`` (a ``Capabilities`` or a dict of its
fields), or through ``check(..., capabilities=...)``.

Examples
--------
>>> def conv(x, w, b, *, stride, padding, groups):
...     raise NotImplementedError
>>> t = resolve(conv)
>>> t.capabilities('conv', 2, 'float32').dilation
False
>>> resolve('nonexistent')
Traceback (most recent call last):
    ...
refconv.conformance.targets.TargetError: target='nonexistent': not a built-in adapter (torch, onnxruntime, jax, scipy, numpy, refconv.fast, refconv.oracle) nor 'module:function' or 'path/to/file.py:function'
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from typing import Any, Callable

from .cases import ALL, OPS, Capabilities
from .ops import accepted_keywords

__all__ = ["Target", "TargetError", "resolve", "load_function", "ADAPTER_NAMES"]

ADAPTER_NAMES = ("torch", "onnxruntime", "jax", "scipy", "numpy", "refconv.fast", "refconv.oracle")


class TargetError(ValueError):
    """A target that cannot be resolved or loaded; the message names it."""


class Target:
    """Something to check: callables per op, declared capabilities, and how to rebuild it."""

    def __init__(self, name: str, functions: Callable[[str], Callable], caps: Callable[[str, int, str], Capabilities],
                 setup: str, spec: str | None = None, keywords: Any = "inspect") -> None:
        self.name = name
        self._functions = functions
        self._caps = caps
        self.setup = setup          # source lines that define `target` (per op: {op} is substituted)
        self.spec = spec            # importable description for subprocess isolation
        self.keywords = keywords

    def function(self, op: str) -> Callable:
        return self._functions(op)

    def capabilities(self, op: str, dims: int, dtype: str) -> Capabilities:
        return self._caps(op, dims, dtype)

    def __repr__(self) -> str:
        return f"Target({self.name!r})"


def _caps_from_callable(fn: Callable, op: str, override: Any) -> Capabilities:
    caps = ALL
    declared = override if override is not None else getattr(fn, "refconv_capabilities", None)
    if isinstance(declared, Capabilities):
        caps = declared
    elif isinstance(declared, dict):
        caps = dataclasses.replace(ALL, **declared)
    elif declared is not None:
        raise TargetError(f"capabilities={declared!r}: expected a Capabilities or a dict of its fields")
    names, _ = accepted_keywords(fn)
    if names is not None:
        # a keyword the callable lacks is a parameter it does not support
        for kw, field in (("stride", "stride"), ("dilation", "dilation"), ("groups", "groups"),
                          ("output_padding", "output_padding"), ("ceil_mode", "ceil_mode")):
            if kw not in names and getattr(caps, field):
                caps = dataclasses.replace(caps, **{field: False})
        if "padding" not in names:
            caps = dataclasses.replace(caps, padding=frozenset({"valid"}))
        if op == "avg_pool" and "count_include_pad" not in names:
            caps = dataclasses.replace(caps, count_include_pad=(True,))
    return caps


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
    except TargetError:
        raise
    except Exception as exc:  # an import error of the user's module is a usage error here
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
    return Target(name, lambda op: fn, lambda op, dims, dtype: _caps_from_callable(fn, op, override), setup, spec)


def resolve(target: Any, *, capabilities: Any = None) -> Target:
    """A :class:`Target` from an adapter name, a target string or a callable."""
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        if target in ADAPTER_NAMES:
            from . import adapters

            t = adapters.get(target)
            if capabilities is not None:
                base = t._caps

                def caps(op: str, dims: int, dtype: str) -> Capabilities:
                    c = base(op, dims, dtype)
                    return dataclasses.replace(c, **capabilities) if isinstance(capabilities, dict) else capabilities

                t._caps = caps
            return t
        if ":" in target:
            fn = load_function(target)
            mod_part, _, attr = target.rpartition(":")
            if mod_part.endswith(".py") or "/" in mod_part:
                setup = (
                    "import importlib.util\n"
                    f"_spec = importlib.util.spec_from_file_location('target_module', {os.path.abspath(mod_part)!r})\n"
                    "_mod = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(_mod)\n"
                    f"target = _mod.{attr}"
                )
            else:
                setup = f"from {mod_part} import {attr.split('.')[0]} as target" + (
                    "" if "." not in attr else "\ntarget = target." + attr.split(".", 1)[1]
                )
            return _from_callable(fn, target, setup, target, capabilities)
        raise TargetError(
            f"target={target!r}: not a built-in adapter ({', '.join(ADAPTER_NAMES)}) nor 'module:function' or "
            "'path/to/file.py:function'"
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


def supported_ops(target: Target) -> list[str]:
    """The ops the target declares (those whose capabilities include it in some dimension)."""
    out = []
    for op in OPS:
        try:
            c = target.capabilities(op, 2, "float32")
        except Exception:
            continue
        if op in c.ops:
            out.append(op)
    return out
