"""Regenerate or verify the golden vectors (specs/cases/*.json)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="specs/cases", help="directory of the golden files (default: specs/cases)")
    parser.add_argument("--check", action="store_true", help="verify the files instead of writing them; exit 1 if stale")


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write
    from ..cli import UsageError
    from ..golden import SCHEMA, check_cases, write_cases
    from ._paths import output_dir

    out = Path(os.path.expanduser(args.out))
    if args.check:
        if not out.is_dir():
            raise UsageError(f"--out={args.out!r}: no such directory")
        stale = check_cases(out)
        for name in stale:
            print(f"stale or missing: {out / name}")
        print("golden vectors up to date" if not stale else f"{len(stale)} golden file(s) differ; run: refconv golden --out {args.out}")
        return 1 if stale else 0
    out = Path(output_dir("--out", args.out))
    for path in write_cases(out):
        print(f"wrote {path}")
    atomic_write(out / "schema.json", json.dumps(SCHEMA, indent=1) + "\n")
    print(f"wrote {out / 'schema.json'}")
    return 0
