"""Run a sweep plan: a matrix of targets, ops, dims, dtypes, precisions, layouts, networks and seeds.

Examples::

    refconv sweep plan.toml --list
    refconv sweep plan.toml --shard 2/3 --json shard-2.json
    refconv sweep plan.toml --shard 2/3 --json shard-2.json --resume
    refconv report merge shard-*.json -o merged.json

Each cell is one ``refconv check`` (an op cell) or one ``refconv check
--network`` (a network cell); the plan's format and the sharding rule are in
specs/sweeps.md.  ``--json`` rewrites its file atomically after every cell,
so a killed sweep keeps its finished cells, and ``--resume`` skips them.
Exit status: 0 when no cell fails (cells the target declares unsupported are
listed), 1 when a cell FAILs, 2 usage error, 3 when a cell is ERROR or
INCONCLUSIVE.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", help="the plan: a .toml (or .json) file (specs/sweeps.md)")
    parser.add_argument("--list", action="store_true", help="print the cells (of the shard) and run nothing")
    parser.add_argument("--shard", default=None, metavar="K/N", help="run the K-th of N disjoint, balanced shards")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="write the results as JSON, rewritten atomically after every finished cell")
    parser.add_argument("--resume", action="store_true",
                        help="with --json: skip the cells the file already holds (same plan and shard)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..conformance import sweep
    from ..params import ConvParamError
    from ._paths import output_file

    try:
        plan = sweep.load(args.plan)
        k, n = sweep.parse_shard(args.shard) if args.shard is not None else (None, None)
    except ConvParamError as exc:
        raise UsageError(str(exc)) from None
    cells = sweep.expand(plan)
    if k is not None and n is not None:
        cells = sweep.shard(cells, k, n)
    if args.list:
        for c in cells:
            print(c.id)
        return 0
    if args.resume and not args.json:
        raise UsageError("--resume: needs --json FILE (the results to resume from)")
    json_path = os.path.abspath(output_file("--json", args.json)) if args.json else None

    def say(rec: dict) -> None:
        line = f"{rec['verdict']:<12} {rec['cell']}  ({rec.get('elapsed_s', 0.0):.1f} s)"
        if rec["verdict"] != "PASS" and rec.get("message"):
            line += f": {rec['message'].strip().splitlines()[-1][:200]}"
        print(line, flush=True)

    try:
        doc = sweep.run_cells(plan, cells, k=k, n=n, json_path=json_path, resume=args.resume,
                              progress=not args.quiet, on_result=say)
    except ConvParamError as exc:
        raise UsageError(str(exc)) from None
    counts: dict[str, int] = {}
    for r in doc["results"]:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    where = f" -> {args.json}" if args.json else ""
    print(f"{len(doc['results'])} of {len(cells)} cells: "
          + ", ".join(f"{v} {c}" for v, c in sorted(counts.items())) + where, file=sys.stdout)
    return sweep.status(doc["results"])
