"""What check-shape runs: a shape function, what it offers, and what it declares it does not.

A shape function is ``f(op, input_shape, weight_shape, **params) ->
output_shape``; it raises for a configuration it refuses.  ``op`` is
``'conv'``, ``'conv_transpose'``, ``'max_pool'`` or ``'avg_pool'``;
``input_shape`` is ``(N, C, *S)``; ``weight_shape`` is ``(C_out, C_in/groups,
*K)`` for ``conv``, ``(C_in, C_out/groups, *K)`` for ``conv_transpose`` and the
window ``kernel_size`` ``(*K)`` for pooling.  ``params`` are tuples with one
int per spatial axis (``stride``, ``dilation``, ``output_padding``),
``padding`` as ``(lo, hi)`` pairs per axis or one of the strings ``'valid'``,
``'same'``, ``'same_lower'`` (refconv's meaning: ``padding.md``), ``groups``
(convolutions) and ``ceil_mode`` (pooling).  ``avg_pool`` has no dilation.

>>> def f(op, input_shape, weight_shape, **params):
...     return input_shape
>>> t = resolve(f)
>>> t.ops, t.modes('conv')
(('conv', 'conv_transpose', 'max_pool', 'avg_pool'), ('explicit',))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from ..targets import TargetError, load_function
from .box import MODES, OPS, Cases

__all__ = ["ShapeTarget", "Limit", "resolve", "SIGNATURE"]

SIGNATURE = "f(op, input_shape, weight_shape, **params) -> output_shape"

#: one call of a shape function: ``(input_shape, weight_shape, params)``
Call = tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]
#: a batch function: ``batch(op, calls, refusals_expected)`` -> one answer per call (a shape or the exception raised)
Batch = Callable[[str, list[Call], bool], list[Any]]


@dataclass(frozen=True)
class Limit:
    """A declared limit: the rows of a case table the target does not offer, and why.

    ``applies(t)`` returns a boolean mask over the rows of ``t`` (a
    :class:`~refconv.conformance.shapecheck.box.Cases`).
    """

    reason: str
    applies: Callable[[Cases], np.ndarray]


@dataclass(frozen=True)
class Misbehaved:
    """An answer that is neither a shape nor a refusal: the call exited the interpreter or hung."""

    what: str  # "raised SystemExit: 0", "hung: no result after 10 s"

    def __str__(self) -> str:
        return self.what


@dataclass
class ShapeTarget:
    """A shape function with its declarations.

    ``batch(op, calls, refusals_expected)``, when given, answers many calls
    ``(input_shape, weight_shape, params)`` at once with a list of output
    shapes or exceptions; ``refusals_expected`` only says which kind of calls
    these mostly are (so a target that pays per batch can run them one by one).
    """

    name: str
    fn: Callable[..., Any]
    ops: tuple[str, ...] = OPS
    offered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    limits: Sequence[Limit] = ()
    batch: Batch | None = None
    setup: str = "shape_fn = ...  # the checked function"
    about: str = ""
    #: seconds one call of a plain function may take (None: no limit); an in-process alarm as in ``refconv check``
    timeout: float | None = 10.0

    def modes(self, op: str) -> tuple[str, ...]:
        """The padding modes offered for ``op`` (explicit pairs only for a plain function)."""
        return self.offered.get(op, ("explicit",))

    def run(self, op: str, calls: list[Call], refusals_expected: bool) -> list[Any]:
        """Output shapes or exceptions (or :class:`Misbehaved`), one per call."""
        if self.batch is not None:
            return self.batch(op, calls, refusals_expected)
        from ..isolation import TargetRaised, TargetTimeout, alarm_usable, call_in_process

        timeout = self.timeout if alarm_usable() else None
        out: list[Any] = []
        hung = getattr(self, "_hung", "")  # across the groups of one check too
        for x, w, params in calls:
            if hung:  # one hang is enough: the rest are not called (each would wait out its timeout)
                out.append(Misbehaved(f"not called: the target hung on an earlier call, {hung}"))
                continue
            try:
                # the target's own call: an Exception is a refusal; SystemExit and the like, or a hang, are not
                out.append(call_in_process(functools.partial(self.fn, op, x, w, **params), timeout))
            except TargetRaised as exc:
                if isinstance(exc.original, Exception):
                    out.append(exc.original)
                else:
                    out.append(Misbehaved(f"raised {exc}"))
            except TargetTimeout as exc:
                out.append(Misbehaved(f"hung: {exc}"))
                hung = f"shape_fn({op!r}, {x}, {w}, {', '.join(f'{k}={v!r}' for k, v in params.items())})"
                self._hung = hung
        return out


def _setup_of(spec: str) -> str:
    mod_part, _, attr = spec.rpartition(":")
    if mod_part.endswith(".py") or "/" in mod_part:
        return ("import importlib.util, os\n"
                f"_spec = importlib.util.spec_from_file_location('target_module', {mod_part!r})\n"
                "_mod = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(_mod)\n"
                f"shape_fn = _mod.{attr}")
    return f"from {mod_part} import {attr.split('.')[0]} as shape_fn" + (
        "" if "." not in attr else "\nshape_fn = shape_fn." + attr.split(".", 1)[1])


#: what names a shape function: a built-in adapter name, ``'module:function'``, ``'path/to/file.py:function'``,
#: a callable, or a :class:`ShapeTarget`
TargetLike = Union[str, Callable[..., Any], "ShapeTarget"]


def resolve(target: TargetLike) -> ShapeTarget:
    """A :class:`ShapeTarget` from an adapter name, ``module:function``, ``path/to/file.py:function`` or a callable."""
    from .. import shape_adapters

    if isinstance(target, ShapeTarget):
        return target
    if isinstance(target, str):
        if shape_adapters.is_adapter(target):
            return shape_adapters.get(target)
        if ":" in target:
            return ShapeTarget(target, load_function(target), setup=_setup_of(target))
        raise TargetError(f"target={target!r}: not a built-in shape adapter ({', '.join(shape_adapters.NAMES)}) "
                          "nor 'module:function' or 'path/to/file.py:function'")
    if callable(target):
        mod, qual = getattr(target, "__module__", None), getattr(target, "__qualname__", None)
        if mod and qual and "<" not in qual and mod != "__main__":
            return ShapeTarget(f"{mod}:{qual}", target, setup=_setup_of(f"{mod}:{qual}"))
        return ShapeTarget(repr(target), target)
    raise TargetError(f"target={target!r}: expected a shape adapter name, 'module:function', or a callable {SIGNATURE}")


def check_modes(target: ShapeTarget, op: str, padding: str | Sequence[str] | None) -> tuple[str, ...]:
    """The padding modes to check for ``op``: those asked for (each must be offered), or all offered."""
    from ...params import ConvParamError

    offered = target.modes(op)
    if padding is None:
        return offered
    asked = tuple(padding.split(",")) if isinstance(padding, str) else tuple(padding)
    for m in asked:
        if m not in MODES:
            raise ConvParamError(f"padding={m!r}: modes are {', '.join(MODES)}")
    if target.offered:  # an adapter: what it offers is fixed
        missing = [m for m in asked if m not in offered]
        if missing:
            raise ConvParamError(f"padding={missing[0]!r}: {target.name} offers {', '.join(offered)} for {op}")
    return asked
