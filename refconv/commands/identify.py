"""Fingerprint the conventions of an unknown implementation.

Examples::

    refconv identify torch
    refconv identify mypkg.kernels:conv2d --op conv --dims 2 --json conventions.json
    refconv identify mypkg.tf_ops:conv2d --dims 3

Probes with impulses and small integers: correlation or convolution, padding
sides, dilation counted from 0 or 1, stride phase, group mapping, layout, the
library's odd 'same' zero side, the pooling ceil rule, the average divisor at
borders, the transposed-convolution weight layout and crop side.  A
function's activation layout (channels first or last) and weight layout
(``OIHW``, ``HWIO``, ``OHWI``, depthwise ``HWIM``; ``IOHW`` or ``HWOI`` for a
transposed convolution) are detected with probes whose axes all differ in
length, and its other rows are probed through them; ``--layout`` /
``--weight-layout`` declare them instead.  A function's op is read from its
signature unless ``--op`` says it.  ``--dims``
repeats each probe's geometry on every spatial axis (default: 1, or the fewest
axes the target declares); ``--op`` keeps only that op's rows.  A row that
cannot be decided says why.  Output: a table, and JSON with --json.
"""

from __future__ import annotations

import argparse

from ..conformance.registry import probed

#: the ops identify has probes for (from the registry)
OPS = probed()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="adapter name, module:function or path/to/file.py:function")
    parser.add_argument("--op", action="append", choices=OPS, default=None,
                        help="op(s) to probe (repeatable; default: all for an adapter, conv for a function)")
    parser.add_argument("--dims", type=int, choices=(1, 2, 3), default=None,
                        help="spatial axes of the probes (default: 1, or the fewest the target declares)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="seconds one probe call may take (default 10; inf: no limit)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the findings as JSON (atomically)")
    parser.add_argument("--layout", default=None, metavar="NAME",
                        help="declare a function's activation layout (NHWC...) instead of detecting it")
    parser.add_argument("--weight-layout", default=None, metavar="NAME",
                        help="declare a function's weight layout (HWIO, OHWI, HWIM; HWOI) instead of detecting it")
    parser.add_argument("--quantized", action="store_true",
                        help="probe the target's qlinear_conv instead: rounding (crafted ties), float32 scale path, "
                             "padding with the zero point, saturation, int32 accumulator, per-channel scales")


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write
    from ..cli import UsageError
    from ..conformance.identify import identify, missing_ops, table, to_json
    from ..conformance.targets import TargetError, is_adapter
    from ..params import ConvParamError
    from ._paths import output_file

    out = None if args.json is None else output_file("--json", args.json)
    if args.quantized:
        return _quantized(args, out)
    try:
        ops = tuple(dict.fromkeys(args.op)) if args.op else (OPS if is_adapter(args.target) else _own_op(args.target))
        if (args.layout or args.weight_layout) and is_adapter(args.target):
            raise UsageError(f"--layout/--weight-layout: {args.target!r} is a built-in adapter, which takes canonical "
                             "arrays; layouts apply to a function target")
        fp = identify(args.target, ops=ops, dims=args.dims, timeout=args.timeout, layout=args.layout,
                      weight_layout=args.weight_layout)
        missing = missing_ops(args.target, ops)
    except (TargetError, ConvParamError) as exc:
        raise UsageError(str(exc)) from None
    if out is not None:
        atomic_write(out, to_json({args.target: fp}))
    print(table({args.target: fp}))
    for op, why in missing.items():
        print(f"{op}: no rows, {why}")
    return 0


def _own_op(target: str) -> tuple[str, ...]:
    """The op a function's signature names, among those identify probes (conv when it names none of them)."""
    from ..conformance.targets import infer_op, resolve
    from ..params import ConvParamError

    try:
        op = infer_op(resolve(target))
    except ConvParamError:
        op = None
    return (op,) if op in OPS else ("conv",)


def _quantized(args: argparse.Namespace, out: str | None) -> int:
    """``--quantized``: the qlinear_conv table (refconv.conformance.identify_quantized)."""
    import json

    from ..atomic import atomic_write
    from ..cli import UsageError
    from ..conformance.identify_quantized import identify_quantized, table
    from ..conformance.targets import TargetError
    from ..params import ConvParamError

    try:
        fp = identify_quantized(args.target, timeout=args.timeout)
    except (TargetError, ConvParamError, KeyError) as exc:
        raise UsageError(f"target={args.target!r}: no qlinear_conv to probe ({exc})") from None
    if out is not None:
        atomic_write(out, json.dumps({args.target: fp}, indent=2) + "\n")
    print(table({args.target: fp}))
    return 0
