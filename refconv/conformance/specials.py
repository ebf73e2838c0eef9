"""IEEE special values, checked separately: NaN, infinities and signed zero.

Many fast kernels legitimately differ here (a NaN dropped by a max, ``inf*0``
skipped for a padding zero), so this is an opt-in report that never enters
the main verdict of :func:`refconv.conformance.check`.  The expectation is
the oracle's: the literal sum (a NaN anywhere in a window gives NaN, ``inf *
0`` is NaN, padding zeros included, ``inf + (-inf)`` is NaN) and, for max
pooling, a NaN is the maximum.  Signed zero is reported, not judged (the
oracle does not track the sign of zero).

Examples
--------
>>> r = check_specials('refconv.oracle', op='conv', dims=1)
>>> r.ok, len(r.findings) > 3
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import bounds
from . import registry
from .cases import Case
from .engine import Runner
from .targets import resolve

__all__ = ["check_specials", "SpecialsReport"]


@dataclass
class SpecialsReport:
    target: str
    op: str
    findings: list[tuple[str, bool, str]] = field(default_factory=list)  # (scenario, agrees, detail)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(agree for _, agree, _ in self.findings)

    def __str__(self) -> str:
        lines = [f"IEEE special values (reported separately, not part of the verdict): {self.target} {self.op}"]
        for name, agree, detail in self.findings:
            lines.append(f"  {'agrees ' if agree else 'DIFFERS'}  {name}: {detail}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _base(op: str, dims: int) -> Case:
    sp = (5, 4, 3)[:dims]
    rec = registry.get(op)
    if rec.window:
        return Case(op, 1, 1, 1, sp, (2,) * dims, stride=(1,) * dims, padding=((1, 1),) + ((0, 0),) * (dims - 1))
    if rec.transposed:
        return Case(op, 1, 1, 1, (3, 3, 2)[:dims], (2,) * dims)
    return Case(op, 1, 1, 1, sp, (2,) * dims, padding=((1, 1),) + ((0, 0),) * (dims - 1))


def _scenarios(case: Case, arrays: dict[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    first = next(iter(arrays))
    mid = tuple(s // 2 for s in arrays[first].shape)
    out = []

    def put(name: str, value: float, where: str | None = None, idx: tuple[int, ...] | None = None) -> None:
        a = {k: v.copy() for k, v in arrays.items()}
        k = where or first
        a[k][idx if idx is not None else tuple(s // 2 for s in a[k].shape)] = value
        out.append((name, a))

    put(f"NaN in {first}", np.nan)
    put(f"+inf in {first}", np.inf)
    put(f"-inf in {first}", -np.inf)
    if not case.record.window:
        second = list(arrays)[1]
        put(f"inf in {second}", np.inf, second)
        a = {k: v.copy() for k, v in arrays.items()}
        a[first][mid] = np.inf
        a[second][...] = 0  # every product with the infinity is inf * 0
        out.append((f"inf in {first} times zero weights (inf*0 = NaN)", a))
        a = {k: v.copy() for k, v in arrays.items()}
        flat = a[first].reshape(-1)
        flat[0], flat[1] = np.inf, -np.inf
        out.append((f"+inf and -inf in one window of {first}", a))
    return out


def check_specials(target: Any, *, op: str = "conv", dims: int = 2, dtype: str = "float32") -> SpecialsReport:
    """Report how ``target`` handles NaN, infinities and signed zero (opt-in; separate from the verdict)."""
    tgt = resolve(target)
    runner = Runner(tgt, op, dtype, bounds.profile(dtype, dtype))
    case = _base(op, dims)
    base = case.arrays(dtype)
    rep = SpecialsReport(tgt.name, op)
    for name, arrays in _scenarios(case, base):
        with np.errstate(all="ignore"):
            out = runner.evaluate_arrays(case, arrays)
        if out.ok:
            rep.findings.append((name, True, "same NaN/inf pattern as the definition"))
        elif out.kind in ("value", "nonfinite") and out.worst:
            w = out.worst
            rep.findings.append((name, False, f"{out.violations} element(s) differ, e.g. at {tuple(w['index'])}: "
                                               f"expected {w['expected']!r}, got {w['actual']!r}"))
        else:
            rep.findings.append((name, False, out.message))
    zeros = {k: np.full_like(v, -0.0) for k, v in base.items()}
    try:
        with np.errstate(all="ignore"):
            y = np.asarray(runner.invoke(case, zeros), dtype=np.float64)
        neg = int(np.signbit(y).sum())
        rep.notes.append(f"all inputs -0.0: {neg} of {y.size} outputs are -0.0 (IEEE sums of -0.0 give -0.0; "
                         "the definition does not fix the sign of zero)")
    except Exception as exc:  # noqa: BLE001
        rep.notes.append(f"all inputs -0.0: the target raised {getattr(exc, 'type_name', type(exc).__name__)}")
    return rep
