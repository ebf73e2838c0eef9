"""Symbolic derivation of outputs, gradients and shape formulas.

Every entry of the input, the weight, the bias and the upstream gradient ``g``
is a symbol; the output is computed by the oracle, the loss is ``L = sum(g*y)``
and sympy differentiates it.  The closed-form rules are evaluated too and the
command says whether they agree (exit status 1 if they do not).

Numbers for ``--x``, ``--w``, ``--b``, ``--g`` and ``--lr`` are exact: ints,
decimals (``0.25``, ``1e-3``) or fractions (``1/3``), each with at most 30
digits and a decimal exponent within +-30 (anything larger is refused before
it is parsed).

Examples::

    refconv derive conv --input 4 --kernel 3                    # y0 = w0*x0 + w1*x1 + w2*x2, ...
    refconv derive conv --input 4 --kernel 3 --padding full --flip --x 1,2,3,4 --w 5,6,7
    refconv derive conv --input 5x5 --kernel 3x3 --stride 2 --padding 1 --latex
    refconv derive pool --input 4 --kernel 2 [--avg]
    refconv derive conv_transpose --input 3 --kernel 3 --stride 2 --padding 1 --output-padding 1
    refconv derive index                                        # the general 1-D derivation
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..symbolic.gradients import ConvDerivation
    from .shape import Ints, PaddingText

OPS = ("conv", "pool", "conv_transpose", "index")

#: the most symbols (entries of x, w, b and g together) the command prints
PRINT_LIMIT = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("op", choices=OPS, help="what to derive")
    parser.add_argument("--input", default=None, metavar="S", help="spatial input size, e.g. 4 or 5x5 (not for index)")
    parser.add_argument("--kernel", default=None, metavar="K", help="spatial kernel (pooling window) size, e.g. 3 or 3x3")
    parser.add_argument("--stride", default=None, metavar="S", help="one int or one per axis (2,1); pool default: the window")
    parser.add_argument(
        "--padding", default="0", metavar="P",
        help="int, one per axis (1,2), lo:hi pairs per axis (0:1,1:0), or valid|same|same_lower|full",
    )
    parser.add_argument("--dilation", default="1", metavar="D", help="one int or one per axis")
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--in-channels", type=int, default=None, help="default: --groups")
    parser.add_argument("--out-channels", type=int, default=None, help="default: --groups")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--flip", action="store_true", help="conv: flip the kernel (mathematical convolution)")
    parser.add_argument("--no-bias", action="store_true", help="conv, conv_transpose: leave the bias out")
    parser.add_argument("--output-padding", default="0", metavar="OP", help="conv_transpose: one int or one per axis")
    parser.add_argument("--avg", action="store_true", help="pool: average instead of max pooling")
    parser.add_argument("--ceil-mode", action="store_true", help="pool: PyTorch's ceil_mode")
    parser.add_argument("--count-exclude-pad", action="store_true", help="pool --avg: divide by the input elements only")
    parser.add_argument("--x", default=None, metavar="V", help="exact numbers for the input entries, comma-separated (C order): ints, decimals, fractions like 1/2")
    parser.add_argument("--w", default=None, metavar="V", help="numbers for the weight entries")
    parser.add_argument("--b", default=None, metavar="V", help="numbers for the bias entries")
    parser.add_argument("--g", default=None, metavar="V", help="numbers for the upstream gradient (default: all 1, L = sum(y))")
    parser.add_argument("--lr", default=None, metavar="LR", help="with numbers: also show the update w - lr*dL/dw (e.g. 1/10)")
    parser.add_argument("--matrix", action="store_true", help="conv: also print the layer as a matrix (one sample)")
    parser.add_argument("--latex", action="store_true", help="print LaTeX instead of pretty text")


def _usage(msg: str) -> Exception:
    from ..cli import UsageError

    return UsageError(msg)


class _Printer:
    """Equations as pretty text or LaTeX."""

    def __init__(self, latex: bool) -> None:
        import sympy as sp

        self.sp = sp
        self.latex = latex
        self.lines: list[str] = []

    def section(self, title: str) -> None:
        if self.lines:
            self.lines.append("")
        self.lines.append(f"% {title}" if self.latex else f"== {title}")

    def text(self, line: str) -> None:
        self.lines.append(f"% {line}" if self.latex else line)

    def eq(self, lhs: Any, rhs: Any) -> None:
        from ..symbolic.pooling import as_iverson

        sp = self.sp
        e = sp.Eq(lhs, as_iverson(rhs), evaluate=False)
        self.lines.append(sp.latex(e) if self.latex else sp.pretty(e))

    def out(self) -> str:
        return "\n".join(self.lines)


def _name(prefix: str, idx: tuple[int, ...], shape: tuple[int, ...]) -> str:
    keep = [str(i) for i, n in zip(idx, shape) if n > 1]
    return prefix + ("_".join(keep) or "0")


#: the most digits a number of --x, --w, --b, --g or --lr may have (mantissa, numerator or denominator)
MAX_DIGITS = 30
#: the largest decimal exponent (in absolute value) such a number may have
MAX_EXPONENT = 30

_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\Z")
_FRACTION = re.compile(r"([+-]?)(\d+)/(\d+)\Z")


def parse_number(option: str, text: str, token: str) -> Any:
    """One exact number: an int, a decimal (``0.25``, ``1e-3``) or a fraction (``1/3``), as a sympy Rational.

    Digits and exponents are limited (:data:`MAX_DIGITS`, :data:`MAX_EXPONENT`)
    and checked on the text, before anything is parsed: ``1e999999999`` would
    otherwise build a billion-digit integer.

    >>> parse_number('--x', '1/3', '1/3'), parse_number('--x', '-2.5e-1', '-2.5e-1')
    (1/3, -1/4)
    >>> parse_number('--lr', '1/0', '1/0')
    Traceback (most recent call last):
        ...
    refconv.cli.UsageError: --lr='1/0': '1/0' divides by zero
    >>> parse_number('--x', '1e999999999', '1e999999999')
    Traceback (most recent call last):
        ...
    refconv.cli.UsageError: --x='1e999999999': '1e999999999' has an exponent beyond +-30
    """
    import sympy as sp

    t = token.strip()
    expected = "expected numbers like 3, -0.25, 1e-3 or 1/2"
    if len(t) > 2 * MAX_DIGITS + 10:  # longer than any number within the limits, leading zeros included
        raise _usage(f"{option}={_clip(text)!r}: {_clip(t)!r} is longer than {2 * MAX_DIGITS + 10} characters")
    frac = _FRACTION.match(t)
    if frac is not None:  # sign, numerator, denominator
        _check_digits(option, text, t, (frac.group(2), frac.group(3)))
        if int(frac.group(3)) == 0:
            raise _usage(f"{option}={_clip(text)!r}: {t!r} divides by zero")
        value = sp.Rational(int(frac.group(2)), int(frac.group(3)))
        return -value if frac.group(1) == "-" else value
    dec = _DECIMAL.match(t)  # sign, whole part, fraction digits, exponent
    if dec is None or not (dec.group(2) or dec.group(3)):
        raise _usage(f"{option}={_clip(text)!r}: {_clip(t)!r} is not a number; {expected}")
    _check_digits(option, text, t, ((dec.group(2) or "") + (dec.group(3) or ""),))
    exp_text = dec.group(4) or "0"
    if len(exp_text.lstrip("+-").lstrip("0")) > 3 or abs(int(exp_text)) > MAX_EXPONENT:
        raise _usage(f"{option}={_clip(text)!r}: {_clip(t)!r} has an exponent beyond +-{MAX_EXPONENT}")
    whole, part = dec.group(2) or "0", dec.group(3) or ""
    value = sp.Rational(int(whole + part), 10 ** len(part)) * sp.Rational(10) ** int(exp_text)
    return -value if dec.group(1) == "-" else value


def _check_digits(option: str, text: str, token: str, digits: tuple[str, ...]) -> None:
    """No digit string of ``token`` is longer than :data:`MAX_DIGITS` once its leading zeros are dropped."""
    if any(len(d.lstrip("0")) > MAX_DIGITS for d in digits):
        raise _usage(f"{option}={_clip(text)!r}: {_clip(token)!r} has more than {MAX_DIGITS} digits")


def _clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for a one-line message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _values(option: str, text: str | None, arr: Any) -> dict[Any, Any]:
    """``--x 1,2,3`` -> {symbol: number} for the entries of ``arr`` in C order."""
    if text is None:
        return {}
    tokens = text.split(",")
    if len(tokens) != arr.size:
        raise _usage(f"{option}={_clip(text)!r}: expected {arr.size} numbers (one per entry of shape {arr.shape}), got {len(tokens)}")
    vals = [parse_number(option, text, t) for t in tokens]
    return dict(zip(arr.flat, vals))


def _reject_unused(args: argparse.Namespace) -> None:
    """Options that the chosen derivation does not have are errors, not silently ignored."""
    given = {
        "--input": args.input is not None, "--kernel": args.kernel is not None, "--stride": args.stride is not None,
        "--padding": args.padding != "0", "--dilation": args.dilation != "1", "--groups": args.groups != 1,
        "--in-channels": args.in_channels is not None, "--out-channels": args.out_channels is not None,
        "--batch": args.batch != 1, "--flip": args.flip, "--no-bias": args.no_bias,
        "--output-padding": args.output_padding != "0", "--avg": args.avg, "--ceil-mode": args.ceil_mode,
        "--count-exclude-pad": args.count_exclude_pad, "--x": args.x is not None, "--w": args.w is not None,
        "--b": args.b is not None, "--g": args.g is not None, "--lr": args.lr is not None, "--matrix": args.matrix,
    }
    unused = {
        "conv": ["--output-padding", "--avg", "--ceil-mode", "--count-exclude-pad"],
        "conv_transpose": ["--flip", "--avg", "--ceil-mode", "--count-exclude-pad", "--matrix"],
        "pool": ["--groups", "--out-channels", "--flip", "--no-bias", "--output-padding", "--w", "--b", "--lr", "--matrix"]
        + ([] if args.avg else ["--count-exclude-pad"]),
        "index": [k for k in given],
    }[args.op]
    for option in unused:
        if given[option]:
            raise _usage(f"{option}: not an option of 'derive {args.op}'")


def _check_numbers(args: argparse.Namespace) -> None:
    """Parse every number given, before any derivation starts (their count is checked later)."""
    for option, text in (("--x", args.x), ("--w", args.w), ("--b", args.b), ("--g", args.g), ("--lr", args.lr)):
        if text is not None:
            for token in text.split(",") if option != "--lr" else (text,):
                parse_number(option, text, token)


def run(args: argparse.Namespace) -> int:
    _reject_unused(args)
    _check_numbers(args)
    if args.op == "index":
        return _run_index(args)
    from .shape import parse_dims, parse_ints, parse_padding

    if args.input is None or args.kernel is None:
        raise _usage(f"--input and --kernel are required for 'derive {args.op}'")
    spatial = parse_dims("--input", args.input)
    kernel = parse_dims("--kernel", args.kernel)
    if len(kernel) == 1 and len(spatial) > 1:
        kernel = kernel * len(spatial)
    if len(kernel) != len(spatial):
        raise _usage(f"--kernel={args.kernel!r}: expected {len(spatial)} sizes (or 1), like --input={args.input!r}")
    if args.batch < 1:
        raise _usage(f"--batch={args.batch}: must be >= 1")
    padding = parse_padding(args.padding)
    dilation = parse_ints("--dilation", args.dilation)
    cin = args.groups if args.in_channels is None else args.in_channels
    cout = args.groups if args.out_channels is None else args.out_channels
    if args.op == "pool":
        stride = None if args.stride is None else parse_ints("--stride", args.stride)
        return _run_pool(args, (args.batch, cin, *spatial), kernel, stride, padding, dilation)
    stride = parse_ints("--stride", args.stride or "1")
    if args.groups < 1 or cin % args.groups or cout % args.groups:
        raise _usage(f"--groups={args.groups}: must be >= 1 and divide --in-channels={cin} and --out-channels={cout}")
    x_shape = (args.batch, cin, *spatial)
    if args.op == "conv":
        w_shape = (cout, cin // args.groups, *kernel)
    else:
        w_shape = (cin, cout // args.groups, *kernel)
    _check_size(x_shape, w_shape, args)
    return _run_conv(args, x_shape, w_shape, stride, padding, dilation)


def _check_size(x_shape: tuple[int, ...], w_shape: tuple[int, ...], args: argparse.Namespace) -> None:
    """Refuse, before any work, sizes whose symbols would not fit on a screen."""
    from .. import params as P

    if args.op == "conv":
        out = P.conv_params(
            x_shape, w_shape, stride=parse(args.stride or "1"), padding=_pad(args), dilation=parse(args.dilation),
            groups=args.groups, flip=args.flip,
        ).output_shape
    else:
        out = P.conv_transpose_params(
            x_shape, w_shape, stride=parse(args.stride or "1"), padding=_pad(args),
            output_padding=parse(args.output_padding, "--output-padding"), dilation=parse(args.dilation), groups=args.groups,
        ).output_shape
    count = _prod(x_shape) + _prod(w_shape) + _prod(out) + (0 if args.no_bias else out[1])
    if count > PRINT_LIMIT:
        raise _usage(
            f"--input={args.input!r} --kernel={args.kernel!r}: {count} symbols (x {_prod(x_shape)}, w {_prod(w_shape)}, "
            f"output gradient {_prod(out)}, bias {0 if args.no_bias else out[1]}) are too many to print; "
            f"the limit is {PRINT_LIMIT}"
        )


def parse(text: str, name: str = "--stride") -> Ints:
    from .shape import parse_ints

    return parse_ints(name, text)


def _pad(args: argparse.Namespace) -> PaddingText:
    from .shape import parse_padding

    return parse_padding(args.padding)


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for v in shape:
        out *= v
    return out


def _shape_section(pr: _Printer, op: str, p: Any) -> None:
    """The general formula, then each axis with its numbers."""
    sp = pr.sp
    from ..symbolic import formulas as F

    lo, hi = sp.symbols("lo hi", integer=True, nonnegative=True)
    n, k, s, d = F.size_symbols("n k s d")
    O = sp.Symbol("O")
    pr.section("shape")
    if op == "conv":
        pr.eq(O, F.conv_output_size(n, k, s, (lo, hi), d))
        rows = zip(p.input_spatial, p.kernel_spatial, p.stride, p.padding, p.dilation, p.output_spatial)
        for i, (ni, ki, si, (l, h), di, _o) in enumerate(rows):
            pr.text(f"axis {i}: n={ni}, k={ki}, s={si}, lo={l}, hi={h}, d={di}: O = {F.conv_output_size(ni, ki, si, (l, h), di)}"
                    f"   (unread rows r = {p.unread[i]})")
    elif op == "conv_transpose":
        op_ = sp.Symbol("output_padding", integer=True, nonnegative=True)
        pr.eq(O, F.conv_transpose_output_size(n, k, s, (lo, hi), op_, d))
        rows = zip(p.input_shape[2:], p.kernel_spatial, p.stride, p.padding, p.output_padding, p.dilation)
        for i, (ni, ki, si, (l, h), oi_p, di) in enumerate(rows):
            pr.text(f"axis {i}: n={ni}, k={ki}, s={si}, lo={l}, hi={h}, output_padding={oi_p}, d={di}: "
                    f"O = {F.conv_transpose_output_size(ni, ki, si, (l, h), oi_p, di)}")
    else:
        pr.eq(O, F.pool_output_size(n, k, s, (lo, hi), d, p.ceil_mode))
        rows = zip(p.input_shape[2:], p.kernel_size, p.stride, p.padding, p.dilation)
        for i, (ni, ki, si, (l, h), di) in enumerate(rows):
            pr.text(f"axis {i}: n={ni}, k={ki}, s={si}, lo={l}, hi={h}, d={di}: "
                    f"O = {F.pool_output_size(ni, ki, si, (l, h), di, p.ceil_mode)}")


def _array_eqs(pr: _Printer, prefix: str, arr: Any, *, derivative_of: Any = None, wrt: Any = None) -> None:
    import numpy as np

    sp = pr.sp
    for idx in np.ndindex(*arr.shape):
        if wrt is not None:
            lhs = sp.Derivative(derivative_of, wrt[idx], evaluate=False)
        else:
            lhs = sp.Symbol(_name(prefix, idx, arr.shape))
        pr.eq(lhs, arr[idx])


def _run_conv(
    args: argparse.Namespace, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Ints, padding: PaddingText, dilation: Ints
) -> int:
    from ..symbolic import gradients as G

    d: G.ConvDerivation | G.TransposeDerivation
    if args.op == "conv":
        d = G.derive_conv(x_shape, w_shape, stride=stride, padding=padding, dilation=dilation, groups=args.groups,
                          flip=args.flip, bias=not args.no_bias)
    else:
        op = parse(args.output_padding, "--output-padding")
        d = G.derive_conv_transpose(x_shape, w_shape, stride=stride, padding=padding, output_padding=op, dilation=dilation,
                                    groups=args.groups, bias=not args.no_bias)
    pr = _Printer(args.latex)
    sp = pr.sp
    p = d.params
    _shape_section(pr, args.op, p)
    pr.section("output (" + ("convolution, kernel flipped" if getattr(p, "flip", False) else
                             "cross-correlation" if args.op == "conv" else "transposed convolution") + ")")
    _array_eqs(pr, "y", d.y)
    L = sp.Symbol("L")
    pr.section("gradients of L = sum(g*y), by sympy")
    _array_eqs(pr, "", d.dx, derivative_of=L, wrt=d.x)
    _array_eqs(pr, "", d.dw, derivative_of=L, wrt=d.w)
    if d.b is not None:
        _array_eqs(pr, "", d.db, derivative_of=L, wrt=d.b)
    pr.section("closed-form rules")
    if isinstance(d, G.ConvDerivation):
        p = d.params
        pads = G.grad_input_padding(p)
        pr.text(f"dL/dx: transposed convolution of g: input dilation {p.stride}, padding {pads} "
                f"(d*(K-1) - lo, d*(K-1) - hi + r), dilation {p.dilation}, kernel channel-transposed and "
                + ("read unflipped (the forward pass flipped it)" if p.flip else "flipped"))
        pr.text(f"dL/dw: correlation of x with g: stride {p.dilation}, dilation {p.stride} (trading places), padding {p.padding}")
    else:
        pr.text("dL/dx: the forward convolution of g with w (the transposed convolution's adjoint)")
        pr.text("dL/dw: the weight gradient of that forward convolution, with g as its input and x as its output gradient")
    if d.b is not None:
        pr.text("dL/db: the sum of g over batch and positions")
    bad = d.mismatches()
    pr.text("sympy's derivatives equal the rules: " + ("yes" if not bad else f"NO ({len(bad)} entries differ)"))
    for line in bad[:10]:
        pr.text("  " + line)
    if args.matrix:
        assert isinstance(d, G.ConvDerivation)  # _reject_unused allows --matrix for 'derive conv' only
        _matrix_section(pr, d)
    _values_section(pr, args, d)
    print(pr.out())
    return 1 if bad else 0


def _matrix_section(pr: _Printer, d: ConvDerivation) -> None:
    """vec(y) = M vec(x) for one sample: tied and zero weights; M^T is the input gradient."""
    from ..symbolic import matrix as MX

    p = d.params
    m = MX.conv_matrix_symbolic(p.weight_shape, p.input_shape[1:], stride=p.stride, padding=p.padding,
                                dilation=p.dilation, groups=p.groups, flip=p.flip)
    pr.section("matrix form, one sample: vec(y) = M vec(x) (+ b); dL/dx = M^T g")
    pr.eq(pr.sp.Symbol("M"), m.matrix)
    pr.text(f"{m.dense.size} entries, {m.nonzeros()} non-zero, {len(m.distinct_weights())} distinct weights "
            f"(the kernel's {int(m.w.size)}): tied and zero weights of a dense layer")


def _values_section(pr: _Printer, args: argparse.Namespace, d: Any) -> None:
    import numpy as np

    sp = pr.sp
    if args.x is None and args.w is None and args.b is None and args.g is None:
        return
    table = {**_values("--x", args.x, d.x), **_values("--w", args.w, d.w)}
    if d.b is not None:
        table.update(_values("--b", args.b, d.b))
    elif args.b is not None:
        raise _usage("--b: the derivation has no bias (--no-bias)")
    table.update(_values("--g", args.g, d.g) if args.g is not None else {s: sp.Integer(1) for s in d.g.flat})

    def sub(a: Any) -> Any:
        return np.array([sp.sympify(v).xreplace(table) for v in a.flat], dtype=object).reshape(a.shape)

    pr.section("with numbers" + ("" if args.g is not None else " (g = 1: L = sum(y))"))
    for label, arr in (("y", d.y), ("dL/dx", d.dx), ("dL/dw", d.dw), ("dL/db", d.db)):
        if arr is not None:
            pr.text(f"{label} = {sub(arr).tolist()}")
    if args.lr is not None:
        lr = parse_number("--lr", args.lr, args.lr)
        w_new = sub(d.w - lr * d.dw)
        pr.text(f"w - {lr}*dL/dw = {w_new.tolist()}")


def _run_pool(
    args: argparse.Namespace, x_shape: tuple[int, ...], kernel: tuple[int, ...], stride: Ints | None, padding: PaddingText, dilation: Ints
) -> int:
    import numpy as np

    from .. import oracle
    from .. import params as P
    from ..symbolic import pooling as PL

    pp = P.pool_params(x_shape, kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=args.ceil_mode,
                       count_include_pad=not args.count_exclude_pad)
    count = _prod(x_shape) + _prod(pp.output_shape)
    if count > PRINT_LIMIT:
        raise _usage(f"--input={args.input!r}: {count} symbols (x and the output gradient) are too many to print; the limit is {PRINT_LIMIT}")
    if args.avg:
        if any(v != 1 for v in pp.dilation):
            raise _usage(f"--dilation={args.dilation!r}: average pooling has no dilation")
        d = PL.derive_avg_pool(x_shape, kernel, stride=stride, padding=padding, ceil_mode=args.ceil_mode,
                               count_include_pad=not args.count_exclude_pad)
    else:
        d = PL.derive_max_pool(x_shape, kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=args.ceil_mode)
    pr = _Printer(args.latex)
    sp = pr.sp
    _shape_section(pr, "pool", pp)
    pr.section("output (" + ("average" if args.avg else "max, tie rule: the first maximal element in row-major order") + ")")
    if not args.avg:
        pr.text("y = sum_j x_j [x_j > every earlier element][x_j >= every later element] over the window")
    _array_eqs(pr, "y", d.y)
    pr.section("gradients of L = sum(g*y), by sympy")
    _array_eqs(pr, "", d.dx, derivative_of=sp.Symbol("L"), wrt=d.x)
    bad = 0
    if args.x is not None:
        xv = np.array([v for v in _values("--x", args.x, d.x).values()], dtype=object).reshape(x_shape)
        gtab = _values("--g", args.g, d.g) if args.g is not None else {s: sp.Integer(1) for s in d.g.flat}
        gv = np.array(list(gtab.values()), dtype=object).reshape(d.g.shape)
        y, dx = d.at(xv, gv)
        pr.section("with numbers" + ("" if args.g is not None else " (g = 1)"))
        pr.text(f"y = {y.tolist()}")
        pr.text(f"dL/dx = {dx.tolist()}")
        if all(v.is_Integer for v in xv.flat) and all(v.is_Integer for v in gv.flat):
            xi, gi = xv.astype(np.int64), gv.astype(np.int64)
            kw = dict(stride=pp.stride, padding=pp.padding, ceil_mode=pp.ceil_mode)
            if args.avg:
                want = oracle.avg_pool_grad(gi, x_shape, kernel, count_include_pad=pp.count_include_pad, exact=True, **kw)
                same = all(sp.Rational(a) == sp.Rational(b.numerator, b.denominator) for a, b in zip(dx.flat, want.flat))
            else:
                want = oracle.max_pool_grad(gi, xi, kernel, dilation=pp.dilation, exact=False, **kw)
                same = all(sp.Integer(int(b)) == a for a, b in zip(dx.flat, want.flat))
            pr.text("the oracle's gradient agrees: " + ("yes" if same else "NO"))
            bad = 0 if same else 1
    print(pr.out())
    return bad


def _run_index(args: argparse.Namespace) -> int:
    from ..symbolic import index as IX

    pr = _Printer(args.latex)
    D = IX.index_derivation_1d()
    pr.section("1-D convolution layer in index notation (x is zero outside [0, n))")
    for label, expr in D.steps():
        pr.text(label)
        pr.eq(pr.sp.Symbol(label.split(" ")[0].replace(",", "")), expr)
    ok = IX.same_summand(D.dx, D.dx_dilated) and IX.same_summand(D.dx_dilated, D.dx_rule, change=(IX.kp, IX.K - 1 - IX.k, IX.k))
    pr.text("the substitution steps have identical summands: " + ("yes" if ok else "NO"))
    bad = IX.verify_index_derivation(7, 3, stride=2, padding=(1, 0))
    pr.text("checked at n=7, K=3, s=2, padding (1, 0) against the layer's sympy gradient: " + ("yes" if not bad else "NO"))
    print(pr.out())
    return 0 if ok and not bad else 1
