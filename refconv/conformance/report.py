"""The verdict of a conformance check: readable as text in ten seconds, exportable as JSON.

``report.verdict`` is one of:

``PASS``
    every case ran and was judged within its bound (and at least half of the
    cases had a bound: see INCONCLUSIVE); with ``allow_known``, cases that
    failed with a recorded known divergence are listed and not held against
    the target;
``FAIL``
    the target is wrong on a case: ``report.failure`` holds it, shrunk, with a
    reproduction (and the known divergence that explains it, if one is
    recorded);
``ERROR``
    refconv itself failed (``report.error`` holds the traceback): a bug in
    refconv, not in the target;
``INCONCLUSIVE``
    no case was run, or more than half of the cases could not be judged (no
    error bound exists in the claimed precision for reductions that long) or
    were accepted known divergences: claim the precision the implementation
    accumulates in.

``report.ok`` is True for PASS only.

Examples
--------
>>> r = Report(target='t', op='conv', dims=1, dtype='float32', precision='float32', bound='elementwise',
...            catalogue_cases=10)
>>> r.ok, r.verdict
(True, 'PASS')
>>> print(str(r).splitlines()[0])
PASS  t  conv 1-D float32 (precision float32, elementwise bound): 10 cases, no counterexample
>>> r.unjudged_cases, r.unjudged_reason = 6, 'no float16 bound for reductions this long'
>>> r.verdict
'INCONCLUSIVE'
>>> r.to_dict()['ok']
False
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..atomic import atomic_write
from .cases import Case

__all__ = ["Failure", "Report", "repro", "SCHEMA_VERSION", "case_error"]

#: the version of the JSON form of every report (specs/report.schema.json); raised when a field changes meaning
SCHEMA_VERSION = 1
#: per-case (error, bound) points kept in a report at most (the plots of the HTML report read them)
MAX_CASE_ERRORS = 2000


@dataclass
class Failure:
    """One counterexample, shrunk, with what was expected and what came back."""

    #: 'value', 'shape', 'nonfinite', 'exception', 'unsupported', 'timeout', 'crash', 'mutation', 'type',
    #: 'tampering', 'accepted-invalid'
    kind: str
    case: Case
    message: str
    expected_shape: tuple[int, ...] | None = None
    actual_shape: tuple[int, ...] | None = None
    worst: dict[str, Any] | None = None  # index, expected, actual, error, bound
    violations: int = 0
    diagnosis: list[str] = field(default_factory=list)
    shape_formulas: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    repro: str = ""
    traceback: str = ""
    original: str = ""  # the case before shrinking
    shrink_steps: int = 0
    #: "id: reason" of each recorded known divergence that explains this case (refconv.conformance.divergences)
    known: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["case"] = {k: v for k, v in asdict(self.case).items()}
        d["case"]["description"] = self.case.describe()
        return d

    def text(self) -> list[str]:
        lines = [f"  {self.kind.upper()}: {self.message}"]
        for k in self.known:
            lines.append(f"  known divergence: {k} (accept known divergences with --allow-known)")
        lines.append(f"  case: {self.case.describe()}")
        if self.original and self.shrink_steps:
            lines.append(f"  (shrunk in {self.shrink_steps} steps from: {self.original})")
        if self.worst:
            w = self.worst
            lines.append(
                f"  worst element {tuple(w['index'])}: expected {w['expected']!r}, got {w['actual']!r}, "
                f"error {w['error']:.3g} > bound {w['bound']:.3g} ({self.violations} element(s) out of bound)"
            )
        if self.expected_shape is not None and self.actual_shape is not None and self.kind == "shape":
            lines.append(f"  shape: expected {tuple(self.expected_shape)}, got {tuple(self.actual_shape)}")
        for f in self.shape_formulas:
            lines.append(f"    {f}")
        if self.diagnosis:
            lines.append("  diagnosis:")
            lines += [f"    - {d}" for d in self.diagnosis]
        if self.traceback:
            lines.append("  traceback (last lines):")
            lines += ["    " + t for t in self.traceback.rstrip().splitlines()[-6:]]
        if self.repro:
            lines.append("  reproduce:")
            lines += ["    " + t for t in self.repro.splitlines()]
        return lines


@dataclass
class Report:
    """Result of :func:`refconv.conformance.check`; ``ok`` is the verdict."""

    target: str
    op: str
    dims: int
    dtype: str
    precision: str
    bound: str
    failure: Failure | None = None
    catalogue_cases: int = 0
    explored_cases: int = 0
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seed: int | None = None
    elapsed_s: float = 0.0
    time_to_failure_s: float | None = None
    profile: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)
    #: cases whose values were not (all) judged: no error bound in the claimed precision
    unjudged_cases: int = 0
    unjudged_reason: str = ""
    #: refconv's own failure: the traceback, and what refconv was doing
    error: str = ""
    error_stage: str = ""
    #: known divergences accepted (``allow_known``): id -> {"reason", "cases", "example"}
    accepted_known: dict[str, Any] = field(default_factory=dict)
    #: what the cases run reached (refconv.conformance.cases.coverage): sizes, features, layouts, value classes
    coverage: dict[str, Any] = field(default_factory=dict)
    #: per judged case: {"case", "error", "bound", "ratio"} of its element closest to (or furthest past) the bound
    case_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return self.catalogue_cases + self.explored_cases

    @property
    def verdict(self) -> str:
        """``'PASS'``, ``'FAIL'``, ``'ERROR'`` or ``'INCONCLUSIVE'`` (see the module docstring)."""
        if self.error:
            return "ERROR"
        if self.failure is not None:
            return "FAIL"
        if self.cases == 0 or 2 * (self.unjudged_cases + self.known_cases) > self.cases:
            return "INCONCLUSIVE"
        return "PASS"

    @property
    def known_cases(self) -> int:
        """Cases that failed with an accepted known divergence (``allow_known``): run, judged, not counted."""
        return sum(v["cases"] for v in self.accepted_known.values())

    @property
    def ok(self) -> bool:
        """True for a PASS only."""
        return self.verdict == "PASS"

    def __bool__(self) -> bool:
        return self.ok

    def _judged_how(self) -> str:
        """How values are judged: against the error bound of a precision, or bit for bit (integer ops)."""
        try:
            from .registry import get

            quantized = get(self.op).family == "quantized"
        except Exception:  # noqa: BLE001 - an op the registry does not know: the float wording
            quantized = False
        if quantized:
            return "exact, bit for bit"
        return f"precision {self.precision}, {self.bound} bound"

    def headline(self) -> str:
        head = self.verdict
        n = self.cases
        what = f"{self.target}  {self.op} {self.dims}-D {self.dtype} ({self._judged_how()})"
        unjudged = f", {self.unjudged_cases} not judged ({self.unjudged_reason})" if self.unjudged_cases else ""
        if self.accepted_known:
            unjudged += (f", {self.known_cases} failed with accepted known divergences "
                         f"({', '.join(sorted(self.accepted_known))})")
        if head == "ERROR":
            last = (self.error.strip().splitlines() or ["unknown error"])[-1]
            last = last if len(last) <= 240 else last[:237] + "..."  # the whole text follows the headline
            return (f"{head}  {what}: refconv failed {self.error_stage or 'during the check'} after {n} cases: {last} "
                    "(this is a bug in refconv, not in the target: please report it with this output and the seed)")
        if head == "FAIL":
            assert self.failure is not None  # a FAIL verdict has its counterexample
            known = f" (known divergence: {', '.join(k.split(':')[0] for k in self.failure.known)})" if self.failure.known else ""
            return f"{head}  {what}: {self.failure.kind} after {n} cases{known}"
        if head == "INCONCLUSIVE":
            if n == 0:
                return (f"{head}  {what}: no case was run (the declared capabilities exclude every case of the "
                        "catalogue and max_examples is 0): nothing was judged")
            return (f"{head}  {what}: {n} cases{unjudged}: too few judged for a verdict; claim the precision the "
                    "implementation accumulates in (e.g. --precision float32, Python: precision='float32') so that "
                    "a bound exists")
        return f"{head}  {what}: {n} cases{unjudged}, no counterexample"

    def __str__(self) -> str:
        lines = [self.headline()]
        if self.failure is not None:
            lines += self.failure.text()
        if self.error:
            lines.append("  refconv traceback:")
            lines += ["    " + t for t in self.error.rstrip().splitlines()]
        if self.notes:
            lines += [f"  note: {n}" for n in self.notes]
        for k, v in sorted(self.accepted_known.items()):
            lines.append(f"  accepted known divergence {k} in {v['cases']} case(s), e.g. {v['example']}: {v['reason']}")
        if self.skipped:
            lines.append(f"  not checked (declared unsupported): {', '.join(self.skipped)}")
        if self.coverage.get("cases"):
            lines.append("  covered: " + coverage_text(self.coverage))
        extra = f"  {self.catalogue_cases} catalogue + {self.explored_cases} explored cases in {self.elapsed_s:.2f} s"
        if self.time_to_failure_s is not None:
            extra += f" (first counterexample after {self.time_to_failure_s:.2f} s)"
        if self.seed is not None:
            extra += f", seed {self.seed}"
        if self.profile:
            extra += f"; profile {self.profile}"
        lines.append(extra)
        return "\n".join(lines)

    def note_case(self, case: Case, actual: Any, expected: Any, bound: Any) -> None:
        """Keep the (error, bound) point of one judged case (:func:`case_error`), up to :data:`MAX_CASE_ERRORS`."""
        if len(self.case_errors) >= MAX_CASE_ERRORS:
            return
        point = case_error(actual, expected, bound)
        if point is not None:
            self.case_errors.append({"case": case.describe(), **point})

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "failure"}
        d["schema_version"] = SCHEMA_VERSION
        d["kind"] = "check"
        d["verdict"] = self.verdict
        d["ok"] = self.ok
        d["failure"] = None if self.failure is None else self.failure.to_dict()
        return d

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), default=_jsonable, **kw)

    def save_json(self, path: str | os.PathLike) -> None:
        """Write the JSON report atomically (temporary file, then rename)."""
        atomic_write(path, self.to_json(indent=2))


def case_error(actual: Any, expected: Any, bound: Any) -> dict[str, float] | None:
    """The element of largest ``error / bound`` of one case: its ``error``, ``bound`` and ``ratio``; None if nothing to compare.

    Elements with an infinite or NaN expectation (compared exactly) and with no
    bound (infinite) are left out; an exact element has error 0.

    >>> case_error(np.array([1.0, 2.5]), np.array([1.0, 2.0]), np.array([0.1, 1.0]))
    {'error': 0.5, 'bound': 1.0, 'ratio': 0.5}
    >>> case_error(np.array([]), np.array([]), np.array([])) is None
    True
    """
    if actual is None or expected is None or bound is None:
        return None
    try:
        a = np.asarray(actual, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
        b = np.asarray(bound, dtype=np.float64)
        if a.shape != e.shape:
            return None
        b = np.broadcast_to(b, e.shape)
    except (TypeError, ValueError):
        return None
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(a - e)
        keep = np.isfinite(e) & np.isfinite(b) & np.isfinite(err)
        if not keep.any():
            return None
        err, b = err[keep], b[keep]
        ratio = np.where(err == 0, 0.0, err / np.where(b > 0, b, np.finfo(float).tiny))
    i = int(np.argmax(ratio))
    return {"error": float(err[i]), "bound": float(b[i]), "ratio": float(ratio[i])}


def coverage_text(cov: dict[str, Any]) -> str:
    """One line from :func:`refconv.conformance.cases.coverage`: largest sizes, features, layouts, value classes.

    >>> coverage_text({'cases': 3, 'sizes': {'N': {'max': 9, 'past': [8]}}, 'features': {'bias': 2, 'groups > 1': 0},
    ...                'layouts': {'contiguous': 3}, 'values': {'normal': 2, 'dyadic': 1}, 'invalid': 1})
    'sizes N<=9; features bias 2; layouts contiguous 3; values normal 2, dyadic 1; 1 invalid configuration(s)'
    """
    sizes = ", ".join(f"{k}<={v['max']}" for k, v in cov.get("sizes", {}).items())
    feats = ", ".join(f"{k} {n}" for k, n in cov.get("features", {}).items() if n)
    lays = ", ".join(f"{k} {n}" for k, n in cov.get("layouts", {}).items())
    vals = ", ".join(f"{k} {n}" for k, n in cov.get("values", {}).items())
    parts = [f"sizes {sizes}" if sizes else "", f"features {feats}" if feats else "", f"layouts {lays}" if lays else "",
             f"values {vals}" if vals else "", f"{cov['invalid']} invalid configuration(s)" if cov.get("invalid") else ""]
    return "; ".join(p for p in parts if p)


# --------------------------------------------------------------------------- reproduction


def _number_src(v: float) -> str:
    if math.isnan(v):
        return "np.nan"
    if math.isinf(v):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(v)


def _array_src(a: np.ndarray, dtype: str) -> str:
    """Source that rebuilds ``a`` (any shape, empty included) with its values and dtype."""
    a = np.asarray(a)
    if a.dtype.kind in "iub":  # indices (int64) keep their own integer type and values
        dt = f"np.{a.dtype.name}"
        if a.size == 0:
            return f"np.zeros({a.shape!r}, dtype={dt})"
        return f"np.array([{', '.join(str(int(v)) for v in a.ravel().tolist())}], dtype={dt}).reshape({a.shape!r})"
    dt = f"np.{dtype}" if dtype != "bfloat16" else "ml_dtypes.bfloat16"
    if a.size == 0:
        return f"np.zeros({a.shape!r}, dtype={dt})"
    vals = ", ".join(_number_src(v) for v in a.astype(np.float64).ravel().tolist())
    return f"np.array([{vals}], dtype={dt}).reshape({a.shape!r})"


def repro(target: Any, op: str, case: Case, dtype: str, max_literal: int = 300) -> str:
    """Python source that calls the target on ``case`` and prints its largest difference from the exact result."""
    from . import ops
    from . import registry

    arrays = case.arrays(dtype)
    lines = ["import numpy as np", "from refconv import oracle"]
    if dtype == "bfloat16":
        lines.append("import ml_dtypes")
    lines.append(target.setup.format(op=op))
    # inputs in a memory layout other than C order are rebuilt by the case itself
    literal = getattr(case, "layout", "contiguous") == "contiguous" and sum(a.size for a in arrays.values()) <= max_literal
    if literal:
        for k, a in arrays.items():
            lines.append(f"{k} = {_array_src(a, dtype)}")
    else:
        lines.append("from refconv.conformance.cases import Case")
        lines.append(f"case = {dataclasses.replace(case, label='')!r}")
        lines.append(f"{', '.join(arrays)} = case.arrays({dtype!r}).values()")
    out = "y" if "y" not in arrays else "result"  # the result's name, never an input's (max_unpool takes y)
    lines.append(f"{out} = {ops.repro_call(case)}")
    if getattr(case, "expect_refusal", False):
        lines.append(f"print(np.shape({out}))  # the definition rejects this configuration: the call should have raised")
        return "\n".join(lines)
    module, _, fn = registry.get(op).oracle.partition(":")
    if module != ".oracle":  # an exact function outside refconv.oracle (max_pool_indices, the quantized ops)
        lines.append(f"from refconv{module} import {fn} as exact_{fn}")
    exp_call = ops.repro_call(case, f"oracle.{fn}" if module == ".oracle" else f"exact_{fn}")
    for k in (k for k, a in arrays.items() if np.asarray(a).dtype.kind == "f"):  # exact values in float64
        exp_call = exp_call.replace(f"({k},", f"({k}.astype(np.float64),").replace(f" {k},", f" {k}.astype(np.float64),")
    if registry.get(op).window:
        exp_call = exp_call.replace(f"{fn}(x,", f"{fn}(x.astype(np.float64),")
    lines.append(f"expected = {exp_call}  # exact, correctly rounded to float64")
    # the shapes first: broadcasting must not hide a wrong shape behind a zero difference
    if len(registry.get(op).outputs) > 1:  # several results: each compared (the indices exactly)
        lines.append(f"for got, want in zip({out}, expected):")
        lines.append("    assert np.shape(got) == np.shape(want), ('shape', np.shape(got), np.shape(want))")
        lines.append("    print(np.max(np.abs(np.asarray(got, dtype=np.float64) - want), initial=0.0))")
        return "\n".join(lines)
    lines.append(f"assert np.shape({out}) == expected.shape, ('shape', np.shape({out}), expected.shape)")
    lines.append(f"print(np.max(np.abs(np.asarray({out}, dtype=np.float64) - expected), initial=0.0))")
    return "\n".join(lines)


def _inputs_for_report(case: Case, dtype: str, limit: int = 120) -> dict[str, Any]:
    arrays = case.arrays(dtype)
    if sum(a.size for a in arrays.values()) > limit:
        return {k: f"array of shape {a.shape} (see the reproduction)" for k, a in arrays.items()}
    return {k: np.asarray(a).astype(np.float64).tolist() for k, a in arrays.items()}


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    return repr(v)
