"""The exhaustive run: every case of the box through the target, compared with the definition."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ...params import ConvParamError
from .box import MODES, OPS, Box, Cases, cases, order_key
from .definition import call_arguments, definition_message, expected, period
from .report import Counterexample, Group, ShapeReport
from .target import Misbehaved, ShapeTarget, TargetLike, check_modes, resolve

__all__ = ["check_shape"]

# status of a target's answer
_SHAPE, _REFUSED, _BAD = 0, 1, 2


def _ops(target: ShapeTarget, op: str | Sequence[str] | None) -> tuple[list[str], list[str]]:
    """``(ops to check, ops asked for that the target does not offer)``."""
    if op is None or op == "all":
        return [o for o in OPS if o in target.ops], [o for o in OPS if o not in target.ops]
    asked = [op] if isinstance(op, str) else list(op)
    for o in asked:
        if o not in OPS:
            raise ConvParamError(f"op={o!r}: ops are {', '.join(OPS)} (or 'all')")
        if o not in target.ops:
            raise ConvParamError(f"op={o!r}: {target.name} does not offer it (it offers {', '.join(target.ops)})")
    return asked, []


def _dims(dims: int | str | Iterable[int]) -> list[int]:
    items: list[Any] = [dims] if isinstance(dims, int) else list(str(dims).split(",") if isinstance(dims, str) else dims)
    out = []
    for d in items:
        try:
            v = int(d)
        except (TypeError, ValueError):
            v = None
        if v is None or v not in (1, 2, 3) or isinstance(d, bool):
            raise ConvParamError(f"dims={dims!r}: each must be 1, 2 or 3")
        out.append(v)
    return sorted(set(out))


def _box(box: Box | dict[str, Any] | None) -> Box:
    if box is None:
        return Box()
    if isinstance(box, Box):
        return box
    if isinstance(box, dict):
        try:
            return Box(**box)
        except TypeError as exc:
            raise ConvParamError(f"box={box!r}: {exc}") from None
    raise ConvParamError(f"box={box!r}: expected a Box or a dict of its fields")


def _normalize(answer: Any, width: int) -> tuple[int, tuple[int, ...] | None, str]:
    """``(status, shape, error)`` of one answer of the target."""
    if isinstance(answer, BaseException):
        return _REFUSED, None, f"{type(answer).__name__}: {answer}".strip()
    if isinstance(answer, Misbehaved):
        return _BAD, None, str(answer)
    try:
        shape = tuple(answer)
        if len(shape) != width or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shape):
            raise TypeError
    except TypeError:
        return _BAD, None, ""
    return _SHAPE, tuple(int(v) for v in shape), ""


def _excluded(target: ShapeTarget, t: Cases, declared: bool) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of the rows a declared limit excludes, and how many each limit takes (the first that applies)."""
    mask = np.zeros(len(t), bool)
    counts: dict[str, int] = {}
    if not declared:
        return mask, counts
    for limit in target.limits:
        hit = np.asarray(limit.applies(t), bool) & ~mask
        if hit.any():
            counts[limit.reason] = counts.get(limit.reason, 0) + int(hit.sum())
            mask |= hit
    return mask, counts


def _coverage(t: Cases, ok: np.ndarray, excluded: np.ndarray, box: Box) -> tuple[int, int, int, int]:
    """``(configurations, proved, refused at every size, not run at all)`` over the rows where one axis runs
    through the box.

    A configuration is proved when none of its rows was left out, it has an
    accepted size, the accepted sizes are exactly ``n_min..max_size`` and
    ``n_min + lcm(s, d) <= max_size``: the box then holds ``lcm(s, d) + 1``
    consecutive accepted sizes (section 7 of ``specs/shapes.md``).
    """
    configs = proved = everywhere = unrun = 0
    for axis in range(t.dims):
        rows = np.flatnonzero(t.axis == axis)
        if rows.size == 0:
            continue
        cfg = t.config[rows]
        count = int(cfg.max()) + 1
        n = t.n[rows, axis]
        acc = ok[rows]
        big = box.max_size + 1
        n_min = np.full(count, big)
        np.minimum.at(n_min, cfg[acc], n[acc])
        accepted = np.bincount(cfg[acc], minlength=count)
        dropped = np.bincount(cfg, weights=excluded[rows], minlength=count)
        left_out = dropped > 0
        per = np.zeros(count, np.int64)
        per[cfg] = period(t)[rows, axis]
        upset = accepted == box.max_size - n_min + 1
        good = (n_min < big) & upset & ~left_out & (n_min + per <= box.max_size)
        configs += count
        proved += int(good.sum())
        everywhere += int(((accepted == 0) & ~left_out).sum())
        unrun += int((dropped == np.bincount(cfg, minlength=count)).sum())
    return configs, proved, everywhere, unrun


def _group(target: ShapeTarget, box: Box, op: str, dims: int, mode: str, declared: bool,
           refusals: bool) -> tuple[Group, Cases, tuple[np.ndarray, np.ndarray]]:
    t = cases(box, op, dims, mode)
    excluded, counts = _excluded(target, t, declared)
    if not refusals:
        refused = ~expected(t)[1] & ~excluded
        if refused.any():
            counts["refused by the definition (refusals not checked)"] = int(refused.sum())
        g = Group(op, dims, mode, cases=len(t), run=int((~(excluded | refused)).sum()), excluded=counts)
        return g, t, (excluded, excluded | refused)
    g = Group(op, dims, mode, cases=len(t), run=int((~excluded).sum()), excluded=counts)
    return g, t, (excluded, excluded)


def _run_group(target: ShapeTarget, g: Group, t: Cases, masks: tuple[np.ndarray, np.ndarray], box: Box) -> None:
    declared, excluded = masks  # left out by a declared limit; not run at all
    shapes, ok = expected(t)
    rows = np.flatnonzero(~excluded)
    status = np.full(len(t), _SHAPE)
    got = np.zeros_like(shapes)
    errors: dict[int, str] = {}
    answers: dict[int, Any] = {}
    for refusals in (False, True):
        part = rows[ok[rows] != refusals]
        if part.size == 0:
            continue
        calls = [call_arguments(t, int(i)) for i in part]
        results = target.run(t.op, calls, refusals)
        if len(results) != len(calls):
            raise RuntimeError(f"target {target.name}: {len(results)} answers to {len(calls)} calls")
        for i, r in zip(part, results):
            st, shp, err = _normalize(r, t.dims + 2)
            status[i] = st
            if shp is not None:
                got[i] = shp
            if err:
                errors[int(i)] = err
            if st == _BAD:
                answers[int(i)] = r
    run = ~excluded
    wrong = run & ok & (status == _SHAPE) & (got != shapes).any(axis=1)
    fails = run & ((ok & (status == _REFUSED)) | (~ok & (status != _REFUSED)) | (status == _BAD) | wrong)
    g.refusals = int((run & ~ok).sum())
    g.failures = int(fails.sum())
    if g.failures:
        order = order_key(t)
        first = int(order[fails[order]][0])
        g.counterexample = _counterexample(t, first, shapes, ok, status, got, errors, answers)
    else:
        g.configs, g.proved, g.refused_everywhere, g.not_run = _coverage(t, ok, declared, box)


def _counterexample(t: Cases, i: int, shapes: np.ndarray, ok: np.ndarray, status: np.ndarray, got: np.ndarray,
                    errors: dict[int, str], answers: dict[int, Any]) -> Counterexample:
    x, w, params = call_arguments(t, i)
    exp, why = definition_message(t.op, x, w, params)
    if exp is not None and tuple(exp) != tuple(int(v) for v in shapes[i]):  # the two forms of the definition
        raise RuntimeError(f"vectorized definition {tuple(shapes[i])} != {exp} for {t.op} {x} {w} {params}")
    if status[i] == _BAD:
        answer = answers.get(i)
        kind = str(answer) if isinstance(answer, Misbehaved) else "not a shape"
    elif status[i] == _REFUSED:
        kind, answer = "refuses a valid configuration", None
    elif not ok[i]:
        kind, answer = "accepts a configuration the definition refuses", tuple(int(v) for v in got[i])
    else:
        kind, answer = "wrong shape", tuple(int(v) for v in got[i])
    total = int((t.n[i] + t.k[i] + t.s[i] - 1 + t.d[i] - 1 + t.lo[i] + t.hi[i] + t.op_pad[i]).sum()
                + t.ceil[i] + t.groups[i] - 1)
    lex = tuple(int(t.column(f)[i, a]) for a in range(t.dims) for f in ("n", "k", "s", "d", "lo", "hi", "op"))
    order = (total, t.dims, *lex, int(t.ceil[i]), int(t.groups[i]), OPS.index(t.op), MODES.index(t.mode))
    return Counterexample(t.op, t.dims, t.mode, x, w, params, None if exp is None else tuple(exp), why,
                          answer, errors.get(i, ""), kind, order)


def check_shape(
    target: TargetLike,
    op: str | Sequence[str] | None = "all",
    dims: int | str | Iterable[int] = (1, 2, 3),
    padding: str | Sequence[str] | None = None,
    box: Box | dict[str, Any] | None = None,
    *,
    declared: bool = True,
    refusals: bool = True,
    timeout: float | None = 10.0,
) -> ShapeReport:
    """Check a shape function against the definition on every case of a box.

    Parameters
    ----------
    target : str, callable or ShapeTarget
        A built-in shape adapter (:data:`refconv.conformance.shape_adapters.NAMES`),
        ``'module:function'``, ``'path/to/file.py:function'``, or a callable
        ``f(op, input_shape, weight_shape, **params) -> output_shape`` that
        raises for a configuration it refuses.
    op : str or list of str
        ``'conv'``, ``'conv_transpose'``, ``'max_pool'``, ``'avg_pool'`` or
        ``'all'`` (every op the target offers).
    dims : int or iterable of int
        Spatial dimension counts, from 1, 2, 3.
    padding : None, str or list of str
        Padding modes, from ``'explicit'``, ``'valid'``, ``'same'``,
        ``'same_lower'``; None: every mode an adapter offers (explicit pairs
        for a plain function).
    box : Box or dict, optional
        The sides of the box (:class:`~refconv.conformance.shapecheck.box.Box`).
    declared : bool
        Leave out the cases the target declares it does not offer (default);
        False runs them too.
    refusals : bool
        Also check that the target refuses what the definition refuses
        (default); False runs only the configurations the definition accepts.
    timeout : float or None
        Seconds one call of a plain function may take (None or ``inf``: no
        limit).  A call that hangs, or that raises ``SystemExit`` (any
        ``BaseException`` but a real Ctrl-C), is a counterexample, not a
        refusal.

    Returns
    -------
    ShapeReport
        ``ok`` when every case run agrees; otherwise the smallest
        counterexample (total size, then lexicographic) with a reproduction.

    Examples
    --------
    >>> from refconv import shapes
    >>> def pool_only(op, input_shape, weight_shape, *, stride, padding, dilation, ceil_mode):
    ...     out = [shapes.pool_output_size(n, k, s, p, d, ceil_mode)
    ...            for n, k, s, p, d in zip(input_shape[2:], weight_shape, stride, padding, dilation)]
    ...     if min(out) < 1:
    ...         raise ValueError('refused')
    ...     return (*input_shape[:2], *out)
    >>> report = check_shape(pool_only, op='max_pool', dims=1, box=dict(max_size=8, max_kernel=2, max_stride=2))
    >>> report.ok
    True
    >>> report.claim()
    'agrees on the whole box (1152 cases); for rules of that form, for all n >= 1 in every configuration run that the definition accepts at some size (144)'
    """
    from dataclasses import replace as _replace

    from ..engine import _timeout

    t = resolve(target)
    t = _replace(t, timeout=_timeout(timeout))  # ConvParamError naming timeout= for nan, <= 0 or not a number
    b = _box(box)
    for name, flag in (("declared", declared), ("refusals", refusals)):
        if not isinstance(flag, bool):
            raise ConvParamError(f"{name}={flag!r}: must be True or False")
    ops, missing = _ops(t, op)
    dim_list = _dims(dims)
    single = not (op is None or op == "all")
    plan: list[tuple[Group, Cases, tuple[np.ndarray, np.ndarray]]] = []
    not_offered = list(missing)
    for o in ops:
        if single or padding is None:
            modes = check_modes(t, o, padding)
        else:
            asked = check_modes(ShapeTarget(t.name, t.fn), o, padding)  # validates the names
            modes = tuple(m for m in asked if m in t.modes(o)) if t.offered else asked
            not_offered += [f"{o} padding {m}" for m in asked if m not in modes]
        for d in dim_list:
            for m in modes:
                plan.append(_group(t, b, o, d, m, declared, refusals))
    if not any(g.run for g, _, _ in plan):
        raise ConvParamError(f"target={t.name!r}: nothing to check: every case asked for is declared unsupported "
                             f"or not offered (op={op!r}, padding={padding!r})")
    for g, cases_, masks in plan:
        if g.run:
            _run_group(t, g, cases_, masks, b)
    return ShapeReport(t.name, b, [g for g, _, _ in plan], not_offered, t.setup, declared, refusals)
