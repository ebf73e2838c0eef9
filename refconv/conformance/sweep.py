"""Sweeps: a plan's matrix expanded into cells, run in disjoint shards, merged back (specs/sweeps.md).

A plan (TOML or JSON) names lists; every combination is a cell:

* op cells: ``targets x ops x dims x dtypes x precisions x layouts x seeds``, each one
  :func:`refconv.conformance.check`;
* network cells: ``targets x networks x dtypes x precisions x seeds``, each one
  :func:`refconv.conformance.network.check_network` (a network fixes its own ops and dims).

The expansion is deterministic (the plan's order, op cells first), and shard
``K/N`` holds the cells whose index is ``K - 1`` modulo ``N``: disjoint,
together complete, sizes within one of each other, the same for the same
plan and ``N`` on every machine.

Examples
--------
>>> plan = loads('targets = ["refconv.fast"]\\nops = ["conv", "max_pool"]\\ndims = [1, 2]\\nseeds = [0, 1]', 'toml')
>>> cells = expand(plan)
>>> len(cells), cells[0].id
(8, 'refconv.fast conv 1-D float32 precision=float32 seed=0')
>>> [len(shard(cells, k, 3)) for k in (1, 2, 3)]
[3, 3, 2]
>>> sorted(c.id for k in (1, 2, 3) for c in shard(cells, k, 3)) == sorted(c.id for c in cells)
True
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from ..atomic import atomic_write
from ..params import ConvParamError
from .report import SCHEMA_VERSION, _jsonable

__all__ = ["Plan", "Cell", "load", "loads", "expand", "shard", "parse_shard", "run_cells", "read_results", "merge",
           "status", "STATUS", "PLAN_KEYS"]

#: plan key -> (type, default); lists are the matrix's axes
PLAN_KEYS: dict[str, tuple[type, Any]] = {
    "name": (str, "sweep"),
    "targets": (list, None),
    "ops": (list, []),
    "dims": (list, [2]),
    "dtypes": (list, ["float32"]),
    "precisions": (list, [None]),
    "layouts": (list, [None]),
    "networks": (list, []),
    "seeds": (list, [0]),
    "max_examples": (int, 20),
    "random_positions": (int, 16),
    "timeout": (float, 10.0),
    "isolate": (bool, False),
}
#: exit status of each cell verdict; UNSUPPORTED (the target declares the combination unsupported) counts as 0
STATUS = {"PASS": 0, "UNSUPPORTED": 0, "FAIL": 1, "ERROR": 3, "INCONCLUSIVE": 3}


@dataclass(frozen=True)
class Plan:
    """A normalized plan: every key of :data:`PLAN_KEYS` present."""

    name: str
    targets: tuple[str, ...]
    ops: tuple[str, ...]
    dims: tuple[int, ...]
    dtypes: tuple[str, ...]
    precisions: tuple[str | None, ...]
    layouts: tuple[str | None, ...]
    networks: tuple[str, ...]
    seeds: tuple[int, ...]
    max_examples: int
    random_positions: int
    timeout: float
    isolate: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def digest(self) -> str:
        """SHA-256 of the plan's canonical JSON: shards and results of one plan carry the same digest."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Cell:
    """One check of the matrix: an op cell (``network`` None) or a network cell (``op`` None)."""

    target: str
    dtype: str
    precision: str
    seed: int
    op: str | None = None
    dims: int | None = None
    layout: str | None = None
    network: str | None = None

    @property
    def id(self) -> str:
        """A stable, readable name: what merge and ``--resume`` match on."""
        tail = f"{self.dtype} precision={self.precision}" + (f" layout={self.layout}" if self.layout else "")
        if self.network is not None:
            return f"{self.target} network={self.network} {tail} seed={self.seed}"
        return f"{self.target} {self.op} {self.dims}-D {tail} seed={self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


# --------------------------------------------------------------------------- plans


def _toml(text: str) -> Any:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConvParamError(f"plan: not valid TOML: {exc}") from None


def loads(text: str, fmt: str = "toml") -> Plan:
    """A :class:`Plan` from TOML or JSON text; ConvParamError naming the bad key and value."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConvParamError(f"plan: not valid JSON: {exc}") from None
    else:
        data = _toml(text)
    return from_dict(data)


def load(path: str | os.PathLike) -> Plan:
    """A plan file (``.toml``, or ``.json``)."""
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as fh:
            text = fh.read(2**20 + 1)
    except OSError as exc:
        raise ConvParamError(f"plan={p!r}: cannot be read ({exc.strerror or exc})") from None
    if len(text) > 2**20:
        raise ConvParamError(f"plan={p!r}: larger than 1 MiB")
    return loads(text, "json" if p.lower().endswith(".json") else "toml")


def _is(v: Any, t: type) -> bool:
    if t is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, t)


def from_dict(data: Any) -> Plan:
    """Validate and normalize a plan's keys (every value checked before anything runs)."""
    if not isinstance(data, dict):
        raise ConvParamError(f"plan: expected a table of keys, got {type(data).__name__}")
    unknown = sorted(set(data) - set(PLAN_KEYS))
    if unknown:
        raise ConvParamError(f"plan key {unknown[0]!r}: unknown; keys are {', '.join(PLAN_KEYS)}")
    out: dict[str, Any] = {}
    for key, (typ, default) in PLAN_KEYS.items():
        v = data.get(key, default)
        if v is None:
            raise ConvParamError(f"plan key {key!r}: required")
        if not _is(v, typ):
            raise ConvParamError(f"plan key {key!r}={v!r}: expected {typ.__name__}")
        if typ is list:
            if len(set(map(repr, v))) != len(v):
                raise ConvParamError(f"plan key {key!r}={v!r}: a value is listed twice")
            v = tuple(v)
        out[key] = v
    _check_values(out)
    out["timeout"] = float(out["timeout"])
    return Plan(**out)


def _check_values(out: dict[str, Any]) -> None:
    """Each value of a plan whose keys have their types: ConvParamError naming the key and the value."""
    from . import bounds, registry
    from .cases import dtype_of

    if not out["targets"]:
        raise ConvParamError("plan key 'targets': at least one target")
    if not out["ops"] and not out["networks"]:
        raise ConvParamError("plan: give 'ops' or 'networks' (or both): nothing to run")
    for t in out["targets"]:
        if not isinstance(t, str) or not t:
            raise ConvParamError(f"plan key 'targets': {t!r} is not a target name")
    for op in out["ops"]:
        if not isinstance(op, str):
            raise ConvParamError(f"plan key 'ops': {op!r} is not an op name")
        registry.get(op)
    for d in out["dims"]:
        if not _is(d, int) or d not in (1, 2, 3):
            raise ConvParamError(f"plan key 'dims': {d!r}: dims are 1, 2 or 3")
    for dt in out["dtypes"]:
        try:
            dtype_of(dt)
        except (ValueError, TypeError) as exc:
            raise ConvParamError(f"plan key 'dtypes': {exc}") from None
    for p in out["precisions"]:
        if p is not None and p not in bounds.PROFILES:
            raise ConvParamError(f"plan key 'precisions': {p!r}: profiles are {', '.join(bounds.PROFILES)}")
        for dt in out["dtypes"]:
            bounds.profile(p or dt, dt)  # the combination exists (ConvParamError otherwise)
    for lay in out["layouts"]:
        if lay is not None:
            _check_layout(lay)
    from .network import load_network

    for net in out["networks"]:
        load_network(net)  # a zoo name or a readable network file
    for s in out["seeds"]:
        if not _is(s, int) or s < 0:
            raise ConvParamError(f"plan key 'seeds': {s!r}: seeds are integers >= 0")
    for key in ("max_examples", "random_positions"):
        if out[key] < 0:
            raise ConvParamError(f"plan key {key!r}={out[key]}: must be >= 0")
    if not out["timeout"] > 0:
        raise ConvParamError(f"plan key 'timeout'={out['timeout']}: must be a number of seconds > 0")


def _check_layout(text: Any) -> None:
    """``'NHWC'`` or ``'NHWC/HWIO'``: an activation layout, then optionally a weight layout (refconv.layouts)."""
    from ..layouts import layout

    if not isinstance(text, str) or not text:
        raise ConvParamError(f"plan key 'layouts': {text!r} is not a layout name such as 'NHWC' or 'NHWC/HWIO'")
    act, _, weight = text.partition("/")
    if act:
        layout(act, kind="activation", argument="plan key 'layouts'")
    if weight:
        layout(weight, argument="plan key 'layouts'")


def expand(plan: Plan) -> list[Cell]:
    """Every cell of ``plan`` in its deterministic order: the op cells, then the network cells (each cell once)."""
    cells = []
    for t in plan.targets:
        for op in plan.ops:
            for d in plan.dims:
                for dt in plan.dtypes:
                    for p in plan.precisions:
                        for lay in plan.layouts:
                            for s in plan.seeds:
                                cells.append(Cell(t, dt, p or dt, s, op=op, dims=d, layout=lay))
    for t in plan.targets:
        for net in plan.networks:
            for dt in plan.dtypes:
                for p in plan.precisions:
                    for s in plan.seeds:
                        cells.append(Cell(t, dt, p or dt, s, network=net))
    # a precision left out means the dtype's own: the same cell as that precision named
    return list(dict.fromkeys(cells))


def parse_shard(text: str) -> tuple[int, int]:
    """``'K/N'`` -> ``(K, N)`` with ``1 <= K <= N``.

    >>> parse_shard('2/3')
    (2, 3)
    >>> parse_shard('0/3')
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: shard='0/3': expected K/N with 1 <= K <= N, e.g. 1/3
    """
    k, sep, n = str(text).partition("/")
    try:
        ki, ni = int(k), int(n)
    except ValueError:
        ki = ni = 0
    if not sep or not 1 <= ki <= ni:
        raise ConvParamError(f"shard={text!r}: expected K/N with 1 <= K <= N, e.g. 1/3")
    return ki, ni


def shard(cells: list[Cell], k: int, n: int) -> list[Cell]:
    """Shard ``k`` of ``n`` (1-based): every ``n``-th cell starting at the ``k``-th."""
    return cells[k - 1::n]


# --------------------------------------------------------------------------- running


def run_cell(cell: Cell, plan: Plan, *, progress: bool = False) -> dict[str, Any]:
    """One cell's result: ``{"cell", "spec", "verdict", "elapsed_s", "report"}`` (``report`` None when not run)."""
    from .network import check_network
    from .targets import check  # the engine's check, with a layout spec's layouts
    from .targets import TargetError

    t0 = time.perf_counter()
    rec: dict[str, Any] = {"cell": cell.id, "spec": cell.to_dict(), "verdict": "ERROR", "report": None, "message": ""}
    r: Any
    try:
        if cell.network is not None:
            r = check_network(cell.target, cell.network, dtype=cell.dtype, precision=cell.precision,
                              random=plan.random_positions, seed=cell.seed, timeout=plan.timeout,
                              isolate=plan.isolate, progress=progress)
        else:
            target = cell.target
            if cell.layout:  # 'NHWC', or 'NHWC/HWIO' with the weight layout (specs/layouts.md)
                from .targets import layout_spec

                act, _, weight = cell.layout.partition("/")
                target = layout_spec(target, act or None, weight or None)
            r = check(target, op=cell.op, dims=cell.dims or 2, dtype=cell.dtype, precision=cell.precision,
                      max_examples=plan.max_examples, seed=cell.seed, timeout=plan.timeout, isolate=plan.isolate,
                      progress=progress, allow_known=True)
        rec["report"] = r.to_dict()
        rec["verdict"] = r.verdict
    except TargetError as exc:
        rec["message"] = f"the target could not be loaded here: {exc}"
    except ConvParamError as exc:
        # the target declares this combination unsupported (or the check refuses it): listed, never a PASS
        rec["verdict"], rec["message"] = "UNSUPPORTED", str(exc)
    except KeyboardInterrupt:
        raise
    except Exception:  # noqa: BLE001 - refconv's own failure: ERROR with the traceback
        rec["message"] = "refconv failed: " + traceback.format_exc()
    rec["elapsed_s"] = time.perf_counter() - t0
    return rec


def _document(plan: Plan, k: int | None, n: int | None, cells: list[Cell], results: list[dict]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "kind": "sweep", "plan": plan.to_dict(), "plan_digest": plan.digest,
            "cells_total": len(expand(plan)), "shard": None if k is None else [k, n],
            "shard_cells": [c.id for c in cells], "complete": len(results) == len(cells), "results": results}


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """A sweep JSON file (a shard's or a merged one); ConvParamError naming the file when it is not one."""
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ConvParamError(f"{p!r}: cannot be read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ConvParamError(f"{p!r}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != "sweep" or not isinstance(data.get("results"), list):
        raise ConvParamError(f"{p!r}: not a sweep results file (kind 'sweep' with a list of results)")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ConvParamError(f"{p!r}: schema_version {data.get('schema_version')!r}, this refconv reads {SCHEMA_VERSION}")
    return data


def run_cells(plan: Plan, cells: list[Cell], *, k: int | None = None, n: int | None = None,
              json_path: str | None = None, resume: bool = False, progress: bool = False,
              on_result: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run ``cells`` in order; with ``json_path`` the document is rewritten atomically after every cell.

    ``resume`` reads ``json_path`` first (it must come from the same plan and
    shard) and skips the cells it already holds.  Returns the document.
    """
    results: list[dict] = []
    if resume and json_path and os.path.exists(json_path):
        old = read_results(json_path)
        if old.get("plan_digest") != plan.digest or old.get("shard") != (None if k is None else [k, n]):
            raise ConvParamError(f"--resume: {json_path!r} holds results of another plan or shard")
        wanted = {c.id for c in cells}
        results = [r for r in old["results"] if r.get("cell") in wanted]
    done = {r["cell"] for r in results}
    todo = [c for c in cells if c.id not in done]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(cells), initial=len(done), desc="sweep", unit="cell", position=0, leave=True)
    try:
        for cell in todo:
            rec = run_cell(cell, plan, progress=progress)
            results.append(rec)
            if json_path:
                atomic_write(json_path, json.dumps(_document(plan, k, n, cells, _ordered(cells, results)),
                                                   default=_jsonable, indent=1))
            if on_result is not None:
                on_result(rec)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    doc = _document(plan, k, n, cells, _ordered(cells, results))
    if json_path and not todo:
        atomic_write(json_path, json.dumps(doc, default=_jsonable, indent=1))
    return doc


def _ordered(cells: list[Cell], results: list[dict]) -> list[dict]:
    order = {c.id: i for i, c in enumerate(cells)}
    return sorted(results, key=lambda r: order.get(r["cell"], len(order)))


def status(results: Iterable[dict]) -> int:
    """1 if a cell FAILs, else 3 if one is ERROR or INCONCLUSIVE, else 0 (UNSUPPORTED cells are listed, not held)."""
    verdicts = {r.get("verdict") for r in results}
    if "FAIL" in verdicts:
        return 1
    return max((STATUS.get(str(v), 3) for v in verdicts), default=0)


class MergeError(ConvParamError):
    """Shard files that do not make one complete sweep (duplicate or missing cells, another plan)."""


def merge(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One document from shard documents ``(name, doc)``: MergeError on another plan, duplicates or missing cells."""
    if not docs:
        raise MergeError("no results files given")
    name0, first = docs[0]
    for name, d in docs[1:]:
        if d.get("plan_digest") != first.get("plan_digest"):
            raise MergeError(f"{name!r} holds results of another plan than {name0!r} (plan digests differ)")
    plan = from_dict(first["plan"])
    if plan.digest != first.get("plan_digest"):
        raise MergeError(f"{name0!r}: its plan does not match its plan_digest (edited by hand?)")
    cells = expand(plan)
    seen: dict[str, str] = {}
    dup: list[str] = []
    results = []
    for name, d in docs:
        for r in d["results"]:
            cid = r.get("cell")
            if cid in seen:
                dup.append(f"{cid!r} in {seen[cid]!r} and {name!r}")
                continue
            seen[cid] = name
            results.append(r)
    if dup:
        raise MergeError(f"{len(dup)} duplicate cell(s): " + "; ".join(dup[:5]) + (" ..." if len(dup) > 5 else ""))
    ids = {c.id for c in cells}
    stray = [cid for cid in seen if cid not in ids]
    if stray:
        raise MergeError(f"{len(stray)} cell(s) not in the plan: " + ", ".join(repr(s) for s in stray[:5]))
    missing = [c.id for c in cells if c.id not in seen]
    if missing:
        raise MergeError(f"{len(missing)} of {len(cells)} cell(s) missing (a shard not run, or killed before it "
                         "finished: run it with --resume): " + ", ".join(repr(m) for m in missing[:5])
                         + (" ..." if len(missing) > 5 else ""))
    return _document(plan, None, None, cells, _ordered(cells, results))
