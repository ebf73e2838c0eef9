"""Canonical signatures of the checked operations, and the exact expectations for each.

A target for ``op`` is a callable on numpy arrays in ``(N, C, *S)`` layout,
with every parameter explicit: ``stride``, ``dilation``, ``kernel_size`` and
``output_padding`` are tuples with one int per spatial axis, ``padding`` is a
tuple of ``(lo, hi)`` pairs (``lo`` zeros before the first sample, ``hi``
after the last), and ``b`` may be ``None``.

==================  ==========================================================================
op                  canonical signature
==================  ==========================================================================
``conv``            ``fn(x, w, b, *, stride, padding, dilation, groups)``;
                    ``w`` is ``(C_out, C_in // groups, *K)``; cross-correlation
``conv_transpose``  ``fn(x, w, b, *, stride, padding, output_padding, dilation, groups)``;
                    ``w`` is ``(C_in, C_out // groups, *K)`` as in PyTorch; ``padding``
                    crops ``lo``/``hi`` rows of the full output
``max_pool``        ``fn(x, kernel_size, *, stride, padding, dilation, ceil_mode)``
``avg_pool``        ``fn(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad)``;
                    optional ``dilation`` and ``divisor_override``
``conv_grad_input`` ``fn(dy, w, input_shape, *, stride, padding, dilation, groups)``
``conv_grad_weight`` ``fn(x, dy, weight_shape, *, stride, padding, dilation, groups)``
``max_pool_indices`` ``fn(x, kernel_size, *, stride, padding, dilation, ceil_mode)`` returning
                    ``(values, indices)``, indices int64 flat within each ``(n, c)`` plane
``lp_pool``         ``fn(x, p, kernel_size, *, stride, padding, dilation, ceil_mode)``
``conv_grad_bias``  ``fn(dy, *)``
``conv_transpose_grad_input`` ``fn(dy, w, *, stride, padding, output_padding, dilation, groups)``
``conv_transpose_grad_weight`` ``fn(x, dy, weight_shape, *, stride, padding, output_padding, dilation, groups)``
``max_pool_grad``   ``fn(dy, x, kernel_size, *, stride, padding, dilation, ceil_mode)``
``avg_pool_grad``   ``fn(dy, input_shape, kernel_size, *, stride, padding, ceil_mode, count_include_pad)``;
                    optional ``dilation`` and ``divisor_override``
``max_unpool``      ``fn(y, indices, kernel_size, *, stride, padding, output_size)``; ``indices`` int64
``adaptive_*_pool`` ``fn(x, output_size)`` (``adaptive_avg_pool``, ``adaptive_max_pool``)
==================  ==========================================================================

These are the signatures of :mod:`refconv.oracle` with the parameters in
normalized form.  A callable that lacks one of the keywords (say ``dilation``)
is called without it and checked only at its default value; the second
positional argument of the pooling ops (the last for ``lp_pool``) and the
third of the gradients may also be keyword-only parameters of the same name.

Examples
--------
>>> import numpy as np
>>> from refconv.conformance.cases import Case
>>> c = Case('conv', spatial=(4,), kernel=(2,), values='small')
>>> a = c.arrays('float64')
>>> y = call(lambda x, w, b, *, stride, padding, dilation, groups: np.zeros((1, 1, 3)), c, a)
>>> y.shape
(1, 1, 3)
>>> expected(c, a).shape
(1, 1, 3)
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from . import registry
from .cases import Case

__all__ = ["SIGNATURES", "call", "accepted_keywords", "expected", "general_expected", "magnitude", "repro_call",
           "max_pool_indices", "values_of"]

#: op name -> its canonical signature (from the registry)
SIGNATURES: dict[str, str] = {r.name: r.signature for r in registry.records()}


def accepted_keywords(fn: Callable) -> tuple[set[str] | None, set[str]]:
    """``(keywords, keyword_only)`` that ``fn`` accepts; keywords is None for ``**kwargs`` or unknown."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, set()
    names: set[str] = set()
    kwonly: set[str] = set()
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return None, kwonly
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
        if p.kind is p.KEYWORD_ONLY:
            kwonly.add(p.name)
    return names, kwonly


def _default(case: Case, k: str, v: Any) -> bool:
    """Whether ``k=v`` is an optional keyword of the op (registry.OpRecord.optional) at its default."""
    return case.record.at_default(k, v)


def _args(case: Case, arrays: dict[str, np.ndarray]) -> tuple[list[Any], dict[str, Any]]:
    # the record's positional arguments; the keywords without the ones passed positionally (kernel_size)
    rec = case.record
    args = rec.positional(case, arrays)
    kw = {k: v for k, v in case.kwargs().items() if k != rec.second}
    return args, kw


def call(fn: Callable, case: Case, arrays: dict[str, np.ndarray], keywords: Any = "inspect") -> Any:
    """Call ``fn`` with the canonical arguments of ``case``; keywords it does not accept are left out.

    ``keywords`` is the set of accepted keywords (``None``: all), or
    ``'inspect'`` to read them from the signature.
    """
    args, kw = _args(case, arrays)
    if keywords == "inspect":
        keywords, kwonly = accepted_keywords(fn)
    else:
        kwonly = set()
    if keywords is not None:
        kw = {k: v for k, v in kw.items() if k in keywords}
    # the pooling kernel size / gradient shape may be declared keyword-only
    second = case.record.second
    if second is not None and second in kwonly:
        kw[second] = args.pop()
    return fn(*args, **kw)


def _oracle():
    from .. import oracle

    return oracle


def max_pool_indices(x: Any, kernel_size: Any, *, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                     ceil_mode: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``max_pool(..., return_indices=True)``: values and int64 indices flat within each ``(n, c)`` plane.

    >>> y, i = max_pool_indices(np.array([[[1., 3., 3., 2.]]]), (2,), stride=(1,), padding=((0, 0),))
    >>> y.tolist(), i.tolist()
    ([[[3.0, 3.0, 3.0]]], [[[1, 1, 2]]])
    """
    return _oracle().max_pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                              return_indices=True)


def values_of(case: Case, result: Any) -> Any:
    """The first result of an op with several (the values beside their indices); ``result`` itself otherwise."""
    return result[0] if len(case.record.outputs) > 1 else result


def _abs(arrays: dict[str, np.ndarray], keep: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Absolute values of the magnitudes; the arrays in ``keep`` (selectors: indices, a max-pooled ``x``) as they are."""
    return {k: v if k in keep else np.abs(v) for k, v in arrays.items()}


def _f64(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every array as float64 (exactly), integer arrays (indices) as int64."""
    return {k: np.asarray(v).astype(np.int64 if np.asarray(v).dtype.kind in "iu" else np.float64)
            for k, v in arrays.items()}


def _engine(approximate: bool) -> Any:
    if approximate:
        from .. import fast

        return fast
    return _oracle()


def expected(case: Case, arrays: dict[str, np.ndarray], *, approximate: bool = False) -> np.ndarray:
    """The exact result, correctly rounded to float64, computed by :mod:`refconv.oracle`.

    The inputs are the target's own values (converted to float64 exactly).
    ``approximate=True`` computes it with :mod:`refconv.fast` in float64 by
    direct summation instead (error at most ``gamma_n(2**-53) * S``), for a
    quick screen of many candidates whose survivors are then computed exactly.
    """
    rec = case.record
    fn = rec.fast_function() if approximate else rec.oracle_function()
    args, kw = _args(case, _f64(arrays))
    names: set[str] | None = None
    if approximate:
        names, _ = accepted_keywords(fn)
        if names is not None and any(k not in names and not _default(case, k, v) for k, v in kw.items()):
            fn, approximate = rec.oracle_function(), False  # the fast engine lacks the keyword: the oracle computes it
        elif names is not None:
            kw = {k: v for k, v in kw.items() if k in names}
    if approximate and rec.family == "conv" and (names is None or "algorithm" in names):
        kw["algorithm"] = "direct"  # direct summation: the error bound gamma_n(2**-53) * S holds
    return fn(*args, **kw)


def general_expected(case: Case, arrays: dict[str, np.ndarray], padding: Any, *, approximate: bool = False) -> np.ndarray:
    """:func:`expected` of a convolution through the general operation, with any (also negative, cropping) ``padding``."""
    a = _f64(arrays)
    kw = {"algorithm": "direct"} if approximate else {}
    return _engine(approximate).general_conv(a["x"], a["w"], a.get("b"), stride=case.stride, padding=padding,
                                             dilation=case.dilation, groups=case.groups, **kw)


def magnitude(case: Case, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """``S`` of the error bound per output element: the same op on absolute values.

    For the bilinear ops this is ``|b| + sum |x_i w_i|`` (correctly rounded);
    for average pooling ``sum |x_i| / divisor``; for max pooling ``|y|``.
    """
    if case.record.bound == "max":
        return np.abs(values_of(case, expected(case, arrays)))
    return values_of(case, expected(case, _abs(_f64(arrays), case.record.selectors)))


class _Name:
    """A placeholder argument standing for the array named ``name`` in a reproduction."""

    def __init__(self, name: str) -> None:
        self.name = name


def repro_call(case: Case, target_expr: str = "target") -> str:
    """The canonical call of ``case`` as Python source (arrays named as in :meth:`Case.input_shapes`)."""
    names = case.input_shapes()
    # array arguments by name, any other positional argument (a shape, the kernel size) by value
    fake = {k: _Name(k) for k in names}
    if case.record.has_bias and "b" not in fake:
        fake["b"] = _Name("None")
    args, kw = _args(case, fake)  # type: ignore[arg-type]
    kw = {k: v for k, v in kw.items() if not _default(case, k, v)}
    pos = ", ".join(a.name if isinstance(a, _Name) else ("None" if a is None else repr(a)) for a in args)
    kws = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    return f"{target_expr}({pos}, {kws})"
