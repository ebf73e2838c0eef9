"""Layer table of a network: output shapes, parameters, multiply-adds, activation memory, receptive field.

``refconv summary vgg16 --input 3x224x224``;
``refconv summary my_net.toml --input 1x32x32 --batch 64 --dtype float16``;
``refconv summary resnet18 --input 3xHxW`` gives the shapes as formulas;
``refconv summary resnet18 --dtype int8`` an int8 network's memory: int8 weights and activations, int32 biases.
NAME is a zoo name (``lenet5``, ``alexnet``, ``alexnet_original``, ``vgg11`` ...
``vgg19``, ``vgg11_bn`` ..., ``googlenet``, ``googlenet_aux``, ``googlenet_original``,
``resnet18`` ...
``resnet152``); FILE a ``.toml`` or ``.json`` network description.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

FORMATS = ("table", "json", "markdown", "csv")
#: the largest size --input may give (a network file's limit too)
MAX_SIZE = 2**63 - 1
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", metavar="NAME|FILE", help="zoo name or .toml/.json network file")
    parser.add_argument(
        "--input", metavar="CxHxW", default=None,
        help="input shape per image, e.g. 3x224x224, or 3xHxW for formulas (default: the network's own)",
    )
    parser.add_argument("--batch", type=int, default=1, help="images per batch for the memory totals (default 1)")
    parser.add_argument(
        "--dtype", default="float32",
        help="element type for bytes: float64, float32, tf32, bfloat16, float16, float8, int64 ... (default float32)",
    )
    parser.add_argument("--format", default="table", choices=FORMATS, help="output format (default table)")
    parser.add_argument(
        "--no-bias-macs", action="store_true",
        help="table column counts multiply-adds without the bias additions (totals always show both)",
    )
    parser.add_argument(
        "--inplace", action="store_true", help="count ReLU and Dropout as in place (they store no new tensor)"
    )
    parser.add_argument("--num-classes", type=int, default=None, help="classifier size of a zoo network")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when there are warnings")


def parse_input(text: str) -> tuple[Any, ...]:
    """``'3x224x224'`` -> ``(3, 224, 224)``; names become positive integer sympy symbols.

    >>> parse_input('3x224x224')
    (3, 224, 224)
    >>> parse_input('3xHxW')
    (3, H, W)
    >>> parse_input('3x0x5')
    Traceback (most recent call last):
        ...
    refconv.cli.UsageError: --input='3x0x5': each size must be an integer >= 1 or a name such as H; got '0'
    """
    from ..cli import UsageError

    tokens = [t.strip() for t in re.split(r"[x,]", text)] if text else []
    if len(tokens) < 2:
        raise UsageError(f"--input={text!r}: expected C x spatial sizes, e.g. 3x224x224 or 3xHxW")
    out: list[Any] = []
    for t in tokens:
        if t.isdigit() and len(t.lstrip("0")) > 19 or t.isdigit() and int(t) > MAX_SIZE:
            raise UsageError(f"--input={_clip(text)!r}: size {_clip(t)} is larger than 2**63 - 1")
        if t.isdigit() and int(t) >= 1:
            out.append(int(t))
        elif _SYMBOL.match(t):
            import sympy

            out.append(sympy.Symbol(t, positive=True, integer=True))
        else:
            raise UsageError(
                f"--input={text!r}: each size must be an integer >= 1 or a name such as H; got {t!r}"
            )
    return tuple(out)


def _clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for a one-line message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _network(args: argparse.Namespace) -> Any:
    from ..cli import UsageError
    from ..summary import io, zoo

    spec = args.network
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    if spec in zoo.ZOO:
        if args.num_classes is not None and not 1 <= args.num_classes <= MAX_SIZE:
            raise UsageError(f"--num-classes={args.num_classes}: must be an integer in [1, 2**63 - 1]")
        return zoo.get(spec, **kwargs)
    if spec.lower().endswith((".toml", ".json")):
        if args.num_classes is not None:
            raise UsageError("--num-classes applies to zoo networks only")
        return io.load(spec)
    raise UsageError(
        f"network={spec!r}: neither a zoo name nor a .toml/.json file; zoo names are {', '.join(zoo.ZOO)}"
    )


def run(args: argparse.Namespace) -> int:
    from ..summary.render import render
    from ..summary.table import summarize

    from ..cli import UsageError

    if not 1 <= args.batch <= MAX_SIZE:
        raise UsageError(f"--batch={args.batch}: must be an integer in [1, 2**63 - 1]")
    net = _network(args)
    shape = parse_input(args.input) if args.input is not None else None
    summary = summarize(net, shape, batch=args.batch, dtype=args.dtype, inplace=args.inplace)
    sys.stdout.write(render(summary, args.format, bias_macs=not args.no_bias_macs))
    if args.format == "csv":
        for w in summary.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 1 if (args.strict and summary.warnings) else 0
