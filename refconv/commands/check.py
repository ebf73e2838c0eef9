"""Conformance check of an implementation against the oracle.

Examples::

    refconv check torch --op conv --dims 2
    refconv check mypkg.kernels:conv2d --dims 2 --dtype float32 --precision tf32
    refconv check path/to/impl.py:conv --max-examples 200 --seed 1 --json report.json

TARGET is a built-in adapter (torch, onnxruntime, jax, scipy, numpy,
refconv.fast) or ``module:function`` / ``path/to/file.py:function`` with the
canonical signature of the op (see ``refconv.conformance.ops``).  Exit status
0 conforming, 1 not conforming, 2 usage error.
"""

from __future__ import annotations

import argparse

OPS = ("conv", "conv_transpose", "max_pool", "avg_pool", "conv_grad_input", "conv_grad_weight")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="adapter name, module:function or path/to/file.py:function")
    parser.add_argument("--op", default="conv", choices=OPS + ("all",),
                        help="operation to check (default conv; all: every op the target declares)")
    parser.add_argument("--dims", type=int, default=2, choices=(1, 2, 3), help="spatial axes (default 2)")
    parser.add_argument("--dtype", default="float32", help="input dtype: float64, float32, float16, bfloat16")
    parser.add_argument("--precision", default=None,
                        help="claimed precision profile: float64, float32, tf32, bfloat16, float16 (default: the dtype)")
    parser.add_argument("--max-examples", type=int, default=None, metavar="N",
                        help="hypothesis examples after the catalogue (default 100; 0: catalogue only)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="exploration seed (default: random, printed)")
    parser.add_argument("--bound", default="elementwise", choices=("elementwise", "normwise"),
                        help="normwise: allowance for FFT-based algorithms (conv only)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per-call timeout (default 10)")
    parser.add_argument("--isolate", action="store_true", help="run the target in a subprocess (native code)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON (atomically)")
    parser.add_argument("--specials", action="store_true",
                        help="also report NaN / infinity / signed-zero handling (separately; never changes the exit status)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..conformance.engine import DEFAULT_MAX_EXAMPLES, check
    from ..conformance.targets import TargetError

    n = DEFAULT_MAX_EXAMPLES if args.max_examples is None else args.max_examples
    if n < 0:
        raise UsageError(f"--max-examples={n}: must be >= 0")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout={args.timeout}: must be > 0")
    try:
        if args.op == "all":
            from ..conformance.targets import resolve, supported_ops

            ops = supported_ops(resolve(args.target))
        else:
            ops = [args.op]
        reports = [check(args.target, op=op, dims=args.dims, dtype=args.dtype, precision=args.precision,
                         max_examples=n, seed=args.seed, bound=args.bound, timeout=args.timeout, isolate=args.isolate,
                         progress=not args.quiet) for op in ops]
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _save(args.json, reports)
    for report in reports:
        print(report)
    if args.specials:
        from ..conformance.specials import check_specials

        for op in ops:
            print(check_specials(args.target, op=op, dims=args.dims, dtype=args.dtype))
    return 0 if all(r.ok for r in reports) else 1


def _save(path: str, reports: list) -> None:
    """One report as its JSON object; several (``--op all``) as a list; written atomically."""
    if len(reports) == 1:
        reports[0].save_json(path)
        return
    import json
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".refconv-", suffix=".json", dir=os.path.dirname(os.path.abspath(path)))
    with os.fdopen(fd, "w") as f:
        f.write("[" + ",\n".join(r.to_json(indent=2) for r in reports) + "]")
    os.replace(tmp, path)
