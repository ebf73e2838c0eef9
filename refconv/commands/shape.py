"""Output shape of one layer, with the formula and the numbers substituted.

Examples::

    refconv shape conv --input 1x3x227x227 --kernel 96x3x11x11 --stride 4
    refconv shape conv --input 1x3x32x32 --kernel 5 --out-channels 6
    refconv shape pool --input 1x96x55x55 --kernel 3 --stride 2 --ceil-mode
    refconv shape conv_transpose --input 1x16x7x7 --kernel 16x8x3x3 --stride 2 --padding 1 --output-padding 1

A warning goes to standard error when a stride leaves input rows that no
output reads (they get an exact zero gradient, and other input sizes give the
same output: the list is printed).
"""

from __future__ import annotations

import argparse

OPS = ("conv", "pool", "conv_transpose")

#: a per-axis option as parsed: one int for every axis, or one int per axis
Ints = int | tuple[int, ...]
#: ``--padding`` as parsed: an int, one int or ``(lo, hi)`` pair per axis, or a padding string
PaddingText = int | str | tuple[int | tuple[int, int], ...]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("op", choices=OPS, help="the layer kind")
    parser.add_argument("--input", required=True, metavar="NxCxHxW", help="input shape (N, C, *spatial), e.g. 1x3x227x227")
    parser.add_argument(
        "--kernel",
        required=True,
        metavar="SHAPE",
        help="conv: the weight shape C_out x C_in/groups x K... or only the spatial kernel K... (then "
        "--out-channels); conv_transpose: C_in x C_out/groups x K... or K...; pool: the window K...",
    )
    parser.add_argument("--stride", default=None, metavar="S", help="one int or one per axis (2,1); pool default: the kernel")
    parser.add_argument(
        "--padding",
        default="0",
        metavar="P",
        help="int, one per axis (1,2), lo:hi pairs per axis (0:1,1:0), or valid|same|same_lower|full",
    )
    parser.add_argument("--dilation", default="1", metavar="D", help="one int or one per axis")
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--out-channels", type=int, default=None, help="with a spatial-only --kernel (default: C_in)")
    parser.add_argument("--output-padding", default="0", metavar="OP", help="conv_transpose: one int or one per axis")
    parser.add_argument("--ceil-mode", action="store_true", help="pool: PyTorch's ceil_mode")


def _usage(msg: str) -> Exception:
    from ..cli import UsageError

    return UsageError(msg)


def parse_dims(name: str, text: str) -> tuple[int, ...]:
    """``'1x3x32x32'`` -> ``(1, 3, 32, 32)``; a clear error naming the option otherwise.

    >>> parse_dims('--input', '1x3x32x32')
    (1, 3, 32, 32)
    >>> parse_dims('--input', '1x3xa')
    Traceback (most recent call last):
        ...
    refconv.cli.UsageError: --input='1x3xa': expected sizes separated by 'x', like 1x3x32x32
    """
    try:
        dims = tuple(int(t) for t in text.lower().split("x"))
    except ValueError:
        raise _usage(f"{name}={text!r}: expected sizes separated by 'x', like 1x3x32x32") from None
    if any(v < 0 for v in dims):
        raise _usage(f"{name}={text!r}: sizes must be >= 0")
    return dims


def parse_ints(name: str, text: str) -> Ints:
    """``'2'`` -> ``2``; ``'2,1'`` -> ``(2, 1)``.

    >>> parse_ints('--stride', '2,1')
    (2, 1)
    """
    try:
        vals = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise _usage(f"{name}={text!r}: expected an int or comma-separated ints, like 2 or 2,1") from None
    return vals[0] if len(vals) == 1 else vals


def parse_padding(text: str) -> PaddingText:
    """``'1'``, ``'1,2'``, ``'0:1,1:0'`` or a padding string.

    >>> parse_padding('0:1,2')
    ((0, 1), 2)
    >>> parse_padding('same')
    'same'
    """
    if text in ("valid", "same", "same_lower", "full"):
        return text
    items: list[int | tuple[int, int]] = []
    try:
        for part in text.split(","):
            if ":" in part:
                lo, hi = part.split(":")
                items.append((int(lo), int(hi)))
            else:
                items.append(int(part))
    except ValueError:
        raise _usage(
            f"--padding={text!r}: expected an int, one per axis (1,2), lo:hi pairs (0:1,1:0), "
            "or valid, same, same_lower, full"
        ) from None
    if len(items) == 1 and not isinstance(items[0], tuple):
        return items[0]
    return tuple(items)


def weight_shape(op: str, input_shape: tuple[int, ...], kernel: tuple[int, ...], out_channels: int | None, groups: int) -> tuple[int, ...]:
    """The full weight shape from ``--kernel``: as given when it has the input's rank, else built."""
    ndim = len(input_shape) - 2
    if len(kernel) == len(input_shape):
        if out_channels is not None:
            raise _usage("--out-channels: only with a spatial-only --kernel (the full weight shape already says it)")
        return kernel
    if len(kernel) not in (1, ndim):
        raise _usage(
            f"--kernel={'x'.join(map(str, kernel))}: expected the weight shape ({len(input_shape)} sizes) "
            f"or the spatial kernel ({ndim} sizes or 1)"
        )
    spatial = kernel * ndim if len(kernel) == 1 else kernel
    cin = input_shape[1]
    cout = cin if out_channels is None else out_channels
    if groups < 1 or cin % groups or cout % groups:
        return (cout, cin, *spatial)  # conv_params reports the groups error with its values
    if op == "conv":
        return (cout, cin // groups, *spatial)
    return (cin, cout // groups, *spatial)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in shape)


def _reject_unused(args: argparse.Namespace) -> None:
    """Options that the chosen layer does not have are errors, not silently ignored."""
    unused = {
        "pool": [("--out-channels", args.out_channels is not None), ("--groups", args.groups != 1),
                 ("--output-padding", args.output_padding != "0")],
        "conv": [("--ceil-mode", args.ceil_mode), ("--output-padding", args.output_padding != "0")],
        "conv_transpose": [("--ceil-mode", args.ceil_mode)],
    }[args.op]
    for option, given in unused:
        if given:
            raise _usage(f"{option}: not an option of '{args.op}'")


def run(args: argparse.Namespace) -> int:
    import sys

    _reject_unused(args)
    x_shape = parse_dims("--input", args.input)
    if len(x_shape) < 3:
        raise _usage(f"--input={args.input!r}: expected (N, C, *spatial) with at least one spatial axis, like 1x3x32x32")
    kernel = parse_dims("--kernel", args.kernel)
    padding = parse_padding(args.padding)
    dilation = parse_ints("--dilation", args.dilation)
    if args.op == "pool":
        lines, notes, out_shape = _pool_lines(args, x_shape, kernel, padding, dilation)
    elif args.op == "conv":
        lines, notes, out_shape = _conv_lines(args, x_shape, kernel, padding, dilation)
    else:
        lines, notes, out_shape = _transpose_lines(args, x_shape, kernel, padding, dilation)
    lines.append(f"output: {_fmt_shape(out_shape)}")
    print("\n".join(lines))
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    return 0


#: what one layer kind prints: the formula lines, the unread-input warnings, the output shape
_Explained = tuple[list[str], list[str], tuple[int, ...]]


def _pool_lines(args: argparse.Namespace, x_shape: tuple[int, ...], kernel: tuple[int, ...], padding: PaddingText, dilation: Ints) -> _Explained:
    """``refconv shape pool``: the window, the (ceil_mode) output formula per axis."""
    from .. import params as P

    ndim = len(x_shape) - 2
    if len(kernel) not in (1, ndim):
        raise _usage(f"--kernel={args.kernel!r}: a pooling window has {ndim} sizes (or 1 for all axes)")
    stride = None if args.stride is None else parse_ints("--stride", args.stride)
    ks = kernel[0] if len(kernel) == 1 else kernel
    p = P.pool_params(x_shape, ks, stride=stride, padding=padding, dilation=dilation, ceil_mode=args.ceil_mode)
    lines = [
        f"pool: x {_fmt_shape(x_shape)}, window {_fmt_shape(p.kernel_size)}, stride {p.stride}, "
        f"padding {p.padding}, dilation {p.dilation}, ceil_mode {p.ceil_mode}"
    ]
    notes: list[str] = []
    lines += _padding_lines(padding, x_shape[2:], p.kernel_size, p.stride, p.dilation, p.padding)
    if p.ceil_mode:
        lines.append("O = ceiling((n + lo + hi - d*(k - 1) - 1) / s) + 1, minus 1 if the last window starts in the right padding")
    else:
        lines.append("O = floor((n + lo + hi - d*(k - 1) - 1) / s) + 1")
    for i, (n, k, s, (lo, hi), d, o) in enumerate(zip(x_shape[2:], p.kernel_size, p.stride, p.padding, p.dilation, p.output_spatial)):
        rnd = "ceiling" if p.ceil_mode else "floor"
        span = n + lo + hi - d * (k - 1) - 1
        extra = ""
        if p.ceil_mode and -(-span // s) * s >= n + lo:
            extra = f" - 1 (window {-(-span // s)} would start at {-(-span // s) * s} >= n + lo = {n + lo})"
        lines.append(f"  axis {i}: {rnd}(({n} + {lo} + {hi} - {d}*({k} - 1) - 1) / {s}) + 1{extra} = {o}")
        if not p.ceil_mode:
            notes += _unread(n, k, s, (lo, hi), d, i)
    return lines, notes, p.output_shape


def _conv_lines(args: argparse.Namespace, x_shape: tuple[int, ...], kernel: tuple[int, ...], padding: PaddingText, dilation: Ints) -> _Explained:
    """``refconv shape conv``: the padding preset resolved, the output formula per axis, the parameters."""
    from .. import params as P

    ws = weight_shape("conv", x_shape, kernel, args.out_channels, args.groups)
    stride = parse_ints("--stride", args.stride or "1")
    p = P.conv_params(x_shape, ws, stride=stride, padding=padding, dilation=dilation, groups=args.groups)
    lines = [
        f"conv: x {_fmt_shape(x_shape)}, w {_fmt_shape(ws)}, stride {p.stride}, padding {p.padding}, "
        f"dilation {p.dilation}, groups {p.groups}"
    ]
    notes: list[str] = []
    lines += _padding_lines(padding, x_shape[2:], ws[2:], p.stride, p.dilation, p.padding)
    lines.append("O = floor((n + lo + hi - d*(k - 1) - 1) / s) + 1")
    for i, (n, k, s, (lo, hi), d, o) in enumerate(zip(x_shape[2:], ws[2:], p.stride, p.padding, p.dilation, p.output_spatial)):
        lines.append(f"  axis {i}: floor(({n} + {lo} + {hi} - {d}*({k} - 1) - 1) / {s}) + 1 = {o}")
        notes += _unread(n, k, s, (lo, hi), d, i)
    lines.append(f"parameters: {_prod(ws)} weights + {ws[0]} {'bias' if ws[0] == 1 else 'biases'}")
    return lines, notes, p.output_shape


def _transpose_lines(args: argparse.Namespace, x_shape: tuple[int, ...], kernel: tuple[int, ...], padding: PaddingText, dilation: Ints) -> _Explained:
    """``refconv shape conv_transpose``: the output formula per axis and the sizes output_padding reaches."""
    from .. import params as P
    from .. import shapes

    ws = weight_shape("conv_transpose", x_shape, kernel, args.out_channels, args.groups)
    stride = parse_ints("--stride", args.stride or "1")
    op = parse_ints("--output-padding", args.output_padding)
    p = P.conv_transpose_params(
        x_shape, ws, stride=stride, padding=padding, output_padding=op, dilation=dilation, groups=args.groups
    )
    lines = [
        f"conv_transpose: x {_fmt_shape(x_shape)}, w {_fmt_shape(ws)}, stride {p.stride}, padding {p.padding}, "
        f"output_padding {p.output_padding}, dilation {p.dilation}, groups {p.groups}"
    ]
    lines.append("O = (n - 1)*s - lo - hi + d*(k - 1) + output_padding + 1")
    for i, (n, k, s, (lo, hi), o_p, d, o) in enumerate(
        zip(x_shape[2:], ws[2:], p.stride, p.padding, p.output_padding, p.dilation, p.output_spatial)
    ):
        reach = shapes.conv_transpose_reachable_sizes(n, k, s, (lo, hi), d)
        lines.append(
            f"  axis {i}: ({n} - 1)*{s} - {lo} - {hi} + {d}*({k} - 1) + {o_p} + 1 = {o}"
            f"   (output_padding reaches {reach.start}..{reach.stop - 1})"
        )
    return lines, [], p.output_shape


def _padding_lines(
    padding: PaddingText,
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    chosen: tuple[tuple[int, int], ...],
) -> list[str]:
    """How a padding string became numbers, per axis."""
    if padding not in ("same", "same_lower", "full"):
        return []
    lines = []
    for i, (n, k, s, d, (lo, hi)) in enumerate(zip(spatial, kernel, stride, dilation, chosen)):
        if padding == "full":
            lines.append(f"  padding 'full', axis {i}: d*(k - 1) = {d}*({k} - 1) = {lo} on both sides")
            continue
        total = lo + hi
        side = "start" if padding == "same_lower" else "end"
        lines.append(
            f"  padding {padding!r}, axis {i}: T = max((ceiling({n}/{s}) - 1)*{s} + {d}*({k} - 1) + 1 - {n}, 0) = {total}"
            f" -> ({lo}, {hi})" + (f", the odd zero at the {side}" if total % 2 else "")
        )
    return lines


def _prod(vals: tuple[int, ...]) -> int:
    out = 1
    for v in vals:
        out *= v
    return out


def _unread(n: int, k: int, s: int, pad: tuple[int, int], d: int, axis: int) -> list[str]:
    """The :class:`refconv.shapes.UnreadInputWarning` of one axis, as lines for standard error."""
    import warnings

    from .. import shapes

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shapes.conv_geometry(n, k, s, pad, d, warn=True)
    return [f"axis {axis}: {w.message}" for w in caught if issubclass(w.category, shapes.UnreadInputWarning)]
