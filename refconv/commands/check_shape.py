"""Verify another tool's output-shape function against the definition, for every size.

Examples::

    refconv check-shape onnx
    refconv check-shape torch --op max_pool --dims 2
    refconv check-shape onnxruntime.opset11 --padding same,same_lower --max-size 16
    refconv check-shape mypkg.shapes:infer --padding explicit,same --json report.json

TARGET is a built-in shape adapter (onnx, onnxruntime, torch, tensorflow,
keras, refconv.summary; onnx.opsetN / onnxruntime.opsetN) or
``module:function`` / ``path/to/file.py:function`` with the signature
``f(op, input_shape, weight_shape, **params) -> output_shape`` (raising for a
configuration it refuses).  Every case of the box is run; agreement on the
whole box proves agreement for every size for rules that are floors or ceilings
of affine functions of the size (specs/shapes.md, section 7).  Exit status 0
agrees, 1 a counterexample, 2 usage error, 3 refconv's own error.
"""

from __future__ import annotations

import argparse
import sys

OPS = ("conv", "conv_transpose", "max_pool", "avg_pool")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..conformance.shapecheck.box import Box

    d = Box()
    parser.add_argument("target", help="shape adapter name, module:function or path/to/file.py:function")
    parser.add_argument("--op", default="all", choices=OPS + ("all",), help="operation (default all the target offers)")
    parser.add_argument("--dims", default="1,2,3", metavar="D[,D...]", help="spatial dimension counts (default 1,2,3)")
    parser.add_argument("--padding", default=None, metavar="MODE[,MODE...]",
                        help="padding modes from explicit, valid, same, same_lower (default: all an adapter offers; "
                             "explicit for a function)")
    for name, help_text in (("size", "input lengths 1..N"), ("kernel", "kernel sizes 1..N"),
                            ("stride", "strides 1..N"), ("dilation", "dilations 1..N"),
                            ("padding-side", "explicit padding 0..N each side")):
        field = "max_padding" if name == "padding-side" else f"max_{name}"
        parser.add_argument(f"--max-{name}", dest=field, type=int, default=getattr(d, field), metavar="N",
                            help=f"box: {help_text} (default {getattr(d, field)})")
    parser.add_argument("--all-cases", action="store_true",
                        help="also run the cases the target declares it does not offer")
    parser.add_argument("--no-refusals", action="store_true",
                        help="run only configurations the definition accepts (do not check refusals)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="seconds one call of a function target may take (default 10; inf: no limit)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON (atomically)")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..conformance.shapecheck import check_shape
    from ..conformance.shapecheck.box import Box
    from ..conformance.targets import TargetError
    from ..params import ConvParamError

    if args.json:
        from ._paths import output_file

        args.json = output_file("--json", args.json)  # refused before any work starts
    try:
        box = Box(args.max_size, args.max_kernel, args.max_stride, args.max_dilation, args.max_padding)
        report = check_shape(args.target, op=args.op, dims=args.dims, padding=args.padding, box=box,
                             declared=not args.all_cases, refusals=not args.no_refusals, timeout=args.timeout)
    except (TargetError, ConvParamError) as exc:
        raise UsageError(_option_names(str(exc))) from None
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - refconv itself failed: exit 3, named, with the traceback to report
        import traceback

        print(f"refconv check-shape: internal error: {type(exc).__name__}: {exc} (a bug in refconv, not in the "
              "target; please report it with this output)", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return 3
    if args.json:
        report.save_json(args.json)
    print(report)
    return 0 if report.ok else 1


def _option_names(message: str) -> str:
    """A message naming a Python argument names the command-line option instead."""
    for py, cli in (("timeout=", "--timeout="), ("max_size=", "--max-size="), ("max_kernel=", "--max-kernel="), ("max_stride=", "--max-stride="),
                    ("max_dilation=", "--max-dilation="), ("max_padding=", "--max-padding-side="),
                    ("dims=", "--dims="), ("padding=", "--padding=")):
        if message.startswith(py):
            return cli + message[len(py):]
    return message
