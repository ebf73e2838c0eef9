"""Combine and render JSON reports: ``merge`` sweep shards, ``html`` one self-contained page.

Examples::

    refconv report merge shard-1.json shard-2.json shard-3.json -o merged.json
    refconv report html merged.json check.json network.json -o report.html
    refconv report validate merged.json

``merge`` fails (exit 1) on cells found twice, cells missing, or shards of
different plans.  ``html`` reads ``refconv check --json`` reports (one or a
list), ``refconv check --network --json`` reports and sweep files, and writes
one static page with no external assets: the verdict matrix, every failure
with its diagnosis and a copyable reproduction, and per op a log-scale plot of
each case's measured error against its bound.  ``validate`` checks files
against the published schema (specs/report.schema.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    m = sub.add_parser("merge", help="merge sweep shard results into one file (fails on duplicate or missing cells)")
    m.add_argument("files", nargs="+", metavar="RESULTS.json")
    m.add_argument("-o", "--output", required=True, metavar="FILE", help="the merged results (written atomically)")
    h = sub.add_parser("html", help="one self-contained HTML page from JSON reports")
    h.add_argument("files", nargs="+", metavar="RESULTS.json")
    h.add_argument("-o", "--output", required=True, metavar="FILE", help="the page (written atomically)")
    h.add_argument("--title", default="refconv conformance report", help="the page's title")
    v = sub.add_parser("validate", help="validate JSON reports against specs/report.schema.json")
    v.add_argument("files", nargs="+", metavar="RESULTS.json")


def _read(path: str) -> object:
    from ..cli import UsageError

    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise UsageError(f"{path!r}: cannot be read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path!r}: not JSON ({exc})") from None


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write
    from ..cli import UsageError
    from ..conformance import html_report, sweep
    from ..params import ConvParamError
    from ._paths import output_file

    if args.action is None:
        raise UsageError("ACTION: missing (merge, html or validate)")
    if args.action == "validate":
        bad = 0
        for f in args.files:
            errors = html_report.validate(_read(f))
            for e in errors:
                print(f"{f}: {e}", file=sys.stderr)
            bad += bool(errors)
            if not errors:
                print(f"{f}: valid (schema version {html_report.SCHEMA_VERSION})")
        return 1 if bad else 0
    out = os.path.abspath(output_file("--output", args.output))
    if args.action == "merge":
        docs = []
        for f in args.files:
            try:
                docs.append((f, sweep.read_results(f)))
            except ConvParamError as exc:
                raise UsageError(str(exc)) from None
        try:
            doc = sweep.merge(docs)
        except sweep.MergeError as exc:
            print(f"refconv report merge: {exc}", file=sys.stderr)
            return 1
        from ..conformance.report import _jsonable

        atomic_write(out, json.dumps(doc, default=_jsonable, indent=1))
        counts: dict[str, int] = {}
        for r in doc["results"]:
            counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
        print(f"{out}: {len(doc['results'])} cells from {len(docs)} file(s): "
              + ", ".join(f"{v} {c}" for v, c in sorted(counts.items())))
        return 0
    pages: list[tuple[str, Any]] = [(f, _read(f)) for f in args.files]
    try:
        page = html_report.render(pages, title=args.title)
    except ConvParamError as exc:
        raise UsageError(str(exc)) from None
    atomic_write(out, page)
    print(f"{out}: {len(page)} bytes")
    return 0
