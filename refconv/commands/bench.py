"""Benchmark the fast engine side by side with PyTorch (CPU) and scipy.signal.

Runs the fixed suite of :mod:`refconv.bench` in one process, interleaved,
median of repeats; prints time, GFLOP/s, the ratio to PyTorch and the
percentage of the measured GEMM speed; ``--json FILE`` saves everything.
For figures, run it as ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE refconv bench``.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 rounds (a smoke test, not figures)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds to take the median of (default 7, quick 2)")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    parser.add_argument("--mode", choices=("forward", "forward+gradients", "both"), default="both")
    parser.add_argument("--cases", default=None, help="comma-separated case letters, e.g. a,d,i (default: all)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    parser.add_argument("--no-training", action="store_true", help="leave out the training-step comparison")
    parser.add_argument("--no-memory", action="store_true", help="leave out the peak-memory check of case d")
    parser.add_argument("--threads", type=int, default=None,
                        help="run refconv and torch on N of this process's CPUs (default: all; torch's own setting)")
    parser.add_argument("--json", metavar="FILE", default=None, help="write all results to FILE (atomically)")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..bench import format_report, run_suite, suite, write_json

    if args.json is not None:
        from ._paths import output_file

        output_file("--json", args.json)  # before the benchmark, not after it
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 7)
    if repeats < 1:
        raise UsageError(f"--repeats={repeats}: must be at least 1")
    cases = None
    if args.cases:
        cases = tuple(c.strip() for c in args.cases.split(",") if c.strip())
        known = {c.name for c in suite()}
        bad = [c for c in cases if c not in known]
        if bad:
            raise UsageError(f"--cases={args.cases}: unknown case(s) {bad}; the suite has {sorted(known)}")
    if args.threads is not None and not 1 <= args.threads <= len(os.sched_getaffinity(0)):
        raise UsageError(f"--threads={args.threads}: must be from 1 to {len(os.sched_getaffinity(0))} (the CPUs this process may use)")
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    modes = ("forward", "forward+gradients") if args.mode == "both" else (args.mode,)
    result = run_suite(
        quick=args.quick, repeats=repeats, dtypes=dtypes, modes=modes, cases=cases, torch=not args.no_torch,
        training=not args.no_training, memory=not args.no_memory, threads=args.threads,
        progress=lambda s: print(f"... {s}", file=sys.stderr, flush=True),
    )
    print(format_report(result))
    if args.json is not None:
        write_json(os.path.expanduser(args.json), result)
        print(f"wrote {args.json}")
    return 0
