"""Regenerate or verify the golden vectors (specs/cases/*.json)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="specs/cases", help="directory of the golden files (default: specs/cases)")
    parser.add_argument("--check", action="store_true", help="verify the files instead of writing them; exit 1 if stale")


def run(args: argparse.Namespace) -> int:
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
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".schema.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(SCHEMA, fh, indent=1)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out / "schema.json")
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"wrote {out / 'schema.json'}")
    return 0
