"""Shape formulas as sympy expressions: the twins of :mod:`refconv.shapes`.

Every argument is an ``int`` or a sympy expression; every result is a sympy
expression.  With all arguments numbers the result is the same integer as the
:mod:`refconv.shapes` function.  With symbols, declare them positive integers
(:func:`size_symbols`) and the floors simplify where they can:

>>> n, k, s = size_symbols('n k s')
>>> conv_output_size(n, k)
-k + n + 1
>>> conv_output_size(n, k, stride=s)
floor((-k + n)/s) + 1
>>> conv_output_size(n, 3, padding=1)
n
>>> H = size_symbols('H')
>>> conv_output_size(H, 11, stride=4)              # AlexNet conv1
floor(H/4 - 11/4) + 1
>>> conv_output_size(H, 11, stride=4).subs(H, 227)
55

Domain of the symbolic expressions: they assume the (dilated) window fits in
the padded input, ``n + lo + hi >= d*(k - 1) + 1``, as :func:`refconv.params.conv_params`
requires.  Outside it the integer functions return 0; with numbers for every
argument these functions return 0 too.
"""

from __future__ import annotations

import numbers
from fractions import Fraction
from typing import Any, NamedTuple, Sequence

import sympy as sp

from ..params import ConvParamError

__all__ = [
    "size_symbols",
    "conv_output_size",
    "pool_output_size",
    "conv_transpose_output_size",
    "same_padding",
    "full_padding",
    "receptive_field",
    "SymbolicRF",
    "stack_output_size",
    "stack_output_sizes",
    "padding_for_output",
    "conv_input_size_range",
    "conv_transpose_reachable_range",
    "same_alignment_gap",
    "half_padding_agrees_with_same",
    "adaptive_bin",
    "max_unpool_output_size",
    "output_padding_for",
    "fractional_start",
]

Expr = Any


def size_symbols(names: str) -> Any:
    """Symbols declared positive integers (sizes, strides, dilations).

    >>> size_symbols('n')
    n
    >>> size_symbols('n k')
    (n, k)
    >>> size_symbols('n').is_positive, size_symbols('n').is_integer
    (True, True)
    """
    return sp.symbols(names, integer=True, positive=True)


def _arg(name: str, v: Any, minimum: int) -> Expr:
    """An int or a sympy expression; numbers must be integers ``>= minimum``."""
    if isinstance(v, bool):
        raise ConvParamError(f"{name}={v!r}: must be an integer >= {minimum} or a sympy expression")
    if isinstance(v, numbers.Integral):
        if v < minimum:
            raise ConvParamError(f"{name}={v!r}: must be an integer >= {minimum}")
        return sp.Integer(int(v))
    if isinstance(v, sp.Basic) and isinstance(v, sp.Expr):
        if v.is_number:
            if not v.is_Integer or v < minimum:
                raise ConvParamError(f"{name}={v!r}: must be an integer >= {minimum}")
            return v
        if v.is_integer is False or (v < minimum) is sp.true:
            raise ConvParamError(f"{name}={v!r}: must be an integer >= {minimum}")
        return v
    raise ConvParamError(f"{name}={v!r}: must be an integer >= {minimum} or a sympy expression")


def _pair(padding: Any) -> tuple[Expr, Expr]:
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ConvParamError(f"padding={padding!r}: expected an int, an expression or a (lo, hi) pair")
        return _arg("padding[0]", padding[0], 0), _arg("padding[1]", padding[1], 0)
    p = _arg("padding", padding, 0)
    return p, p


def _numeric(*vals: Expr) -> bool:
    return all(not sp.sympify(v).free_symbols for v in vals)


def _split_rounded(span: Expr, kind: type) -> tuple[Expr, Expr] | None:
    """``span = kind(u) + m`` with ``m`` an integer expression: ``(u, m)``, else None."""
    terms: list[Any] = [t for t in sp.Add.make_args(sp.expand(span)) if isinstance(t, kind)]
    if len(terms) != 1:
        return None
    rest = sp.expand(span - terms[0])
    return (terms[0].args[0], rest) if rest.is_integer else None


def _floor_div(span: Expr, s: Expr) -> Expr:
    """``floor(span / s)``, using ``floor((floor(u) + m) / s) = floor((u + m) / s)`` for integer ``m``, ``s >= 1``.

    The identity (``floor(floor(v)/s) = floor(v/s)``) collapses the nested
    floors of a stack of layers: ``floor(floor(H/4 - 11/4)/2 - 1)`` is
    ``floor(H/8 - 19/8)``.
    """
    split = _split_rounded(span, sp.floor) if s.is_integer and s.is_positive else None
    if split is not None:
        u, m = split
        return sp.floor((u + m) / s)
    return sp.floor(span / s)


def _ceil_div(span: Expr, s: Expr) -> Expr:
    """``ceiling(span / s)``, using ``ceiling((ceiling(u) + m) / s) = ceiling((u + m) / s)`` likewise."""
    split = _split_rounded(span, sp.ceiling) if s.is_integer and s.is_positive else None
    if split is not None:
        u, m = split
        return sp.ceiling((u + m) / s)
    return sp.ceiling(span / s)


def conv_output_size(
    n: Any, k: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1, *, collapse: bool = False
) -> Expr:
    """``floor((n + lo + hi - d*(k - 1) - 1) / s) + 1``.

    Parameters
    ----------
    n, k : int or sympy expression
        Input and kernel length.
    stride, dilation : int or sympy expression
    padding : int, sympy expression or (lo, hi) pair
    collapse : bool
        When ``n`` is itself ``floor(u) + m`` (the output of an earlier layer),
        write ``floor((floor(u) + m')/s)`` as ``floor((u + m')/s)``: the identity
        ``floor(floor(v)/s) = floor(v/s)`` for integers ``m'`` and ``s >= 1``.

    Examples
    --------
    >>> n, k, s, d, p = size_symbols('n k s d p')
    >>> conv_output_size(n, k, padding=(k - 1, k - 1))          # full: n + k - 1
    k + n - 1
    >>> conv_output_size(n, k, stride=s, padding=p, dilation=d)
    floor((-d*(k - 1) + n + 2*p - 1)/s) + 1
    >>> conv_output_size(32, 5), conv_output_size(2, 3)
    (28, 0)
    >>> H = size_symbols('H')
    >>> conv_output_size(sp.floor(H/2), 3, stride=2), conv_output_size(sp.floor(H/2), 3, stride=2, collapse=True)
    (floor(floor(H/2)/2 - 3/2) + 1, floor(H/4 - 3/2) + 1)
    """
    n, k = _arg("n", n, 0), _arg("k", k, 1)
    s, d = _arg("stride", stride, 1), _arg("dilation", dilation, 1)
    lo, hi = _pair(padding)
    span = n + lo + hi - d * (k - 1) - 1
    if _numeric(span, s) and span < 0:
        return sp.Integer(0)
    return (_floor_div(span, s) if collapse else sp.floor(span / s)) + 1


def pool_output_size(
    n: Any, k: Any, stride: Any, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False, *, collapse: bool = False
) -> Expr:
    """Output length of pooling.

    ``floor(span / s) + 1`` with ``span = n + lo + hi - d*(k - 1) - 1``; with
    ``ceil_mode``, ``c + 1 - [c > f]`` with ``c = ceiling(span / s)`` and
    ``f = floor((n + lo - 1) / s)``: the ceiling, less the last window when it
    would start in the right padding (PyTorch's rule of
    :func:`refconv.shapes.pool_output_size`, which drops that one window
    only).  ``[c > f]`` is ``min(1, max(0, c - f))``.  Where
    ``hi <= d*(k - 1)`` (so ``c <= f + 1``) this is ``min(c, f) + 1``; with more
    padding (pooling padding over half the window is defined) several windows
    may start in the right padding and the two forms differ.
    ``collapse`` as in :func:`conv_output_size` (and likewise
    ``ceiling((ceiling(u) + m)/s) = ceiling((u + m)/s)``).

    Examples
    --------
    >>> n = size_symbols('n')
    >>> pool_output_size(n, 2, 2)
    floor(n/2)
    >>> pool_output_size(n, 3, 2, ceil_mode=True)           # GoogLeNet's pools
    ceiling(n/2 - 3/2) + 1
    >>> pool_output_size(n, 2, 3, ceil_mode=True)
    Min(ceiling(n/3 - 2/3), floor(n/3 - 1/3)) + 1
    >>> pool_output_size(5, 2, 2, ceil_mode=True), pool_output_size(4, 2, 2, padding=1, ceil_mode=True)
    (3, 3)
    >>> pool_output_size(n, 1, 1, (0, 2), ceil_mode=True)   # hi > d*(k-1): one window dropped, not two
    n + 1
    """
    n, k = _arg("n", n, 0), _arg("k", k, 1)
    s, d = _arg("stride", stride, 1), _arg("dilation", dilation, 1)
    if not isinstance(ceil_mode, bool):
        raise ConvParamError(f"ceil_mode={ceil_mode!r}: must be True or False")
    lo, hi = _pair(padding)
    span = n + lo + hi - d * (k - 1) - 1
    if _numeric(span, s, n, lo):
        if span < 0:
            return sp.Integer(0)
        if not ceil_mode:
            return sp.floor(span / s) + 1
        c = sp.ceiling(span / s)
        # the last window starts at c*s; drop it when that is in the right padding
        return c if c * s >= n + lo else c + 1
    fdiv = _floor_div if collapse else (lambda a, b: sp.floor(a / b))
    cdiv = _ceil_div if collapse else (lambda a, b: sp.ceiling(a / b))
    if not ceil_mode:
        return fdiv(span, s) + 1
    # b - a with a = span, b = n + lo - 1: at 0 the two terms are floor and ceiling
    # of one value; at s - 1 or more the ceiling never exceeds the floor
    slack = sp.expand(d * (k - 1) - hi)
    if slack == 0:
        return fdiv(span, s) + 1
    if sp.expand(slack - (s - 1)).is_nonnegative:
        return cdiv(span, s) + 1
    c, f = cdiv(span, s), fdiv(n + lo - 1, s)
    if slack.is_nonnegative:
        return sp.Min(c, f) + 1  # c <= f + 1: at most one window could start in the right padding
    if slack.is_negative and sp.expand(-slack - s).is_nonnegative:
        return c  # hi >= d*(k - 1) + s: the last window starts in the right padding for every n
    # [c > f] for integers c and f
    return c + 1 - sp.Min(1, sp.Max(0, c - f))


def conv_transpose_output_size(
    n: Any, k: Any, stride: Any = 1, padding: Any = 0, output_padding: Any = 0, dilation: Any = 1
) -> Expr:
    """``(n - 1)*s - lo - hi + d*(k - 1) + output_padding + 1``.

    Examples
    --------
    >>> n, s = size_symbols('n s')
    >>> conv_transpose_output_size(n, 3, stride=s, padding=1)
    s*(n - 1) + 1
    >>> conv_transpose_output_size(n, 4, stride=2, padding=1)    # the usual 2x upsampling
    2*n
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)
    6
    """
    n, k = _arg("n", n, 0), _arg("k", k, 1)
    s, d = _arg("stride", stride, 1), _arg("dilation", dilation, 1)
    op = _arg("output_padding", output_padding, 0)
    lo, hi = _pair(padding)
    return (n - 1) * s - lo - hi + d * (k - 1) + op + 1


def same_padding(n: Any, k: Any, stride: Any = 1, dilation: Any = 1, lower: bool = False) -> tuple[Expr, Expr]:
    """``(lo, hi)`` giving ``O = ceiling(n / s)``.

    Total ``T = max((O - 1)*s + d*(k - 1) + 1 - n, 0)``; ``lo = floor(T/2)``,
    ``hi = T - lo`` (``lower=True`` swaps them).  The two alignments differ by
    ``hi - lo = T mod 2``: they coincide exactly when the total is even.

    Examples
    --------
    >>> n, k, d = size_symbols('n k d')
    >>> same_padding(n, k)
    (floor(k/2 - 1/2), k - floor(k/2 - 1/2) - 1)
    >>> same_padding(n, 3, dilation=d)
    (d, d)
    >>> same_padding(n, 3, stride=2)
    (floor(Max(0, -n + 2*ceiling(n/2) + 1)/2), -floor(Max(0, -n + 2*ceiling(n/2) + 1)/2) + Max(0, -n + 2*ceiling(n/2) + 1))
    >>> same_padding(5, 4), same_padding(5, 4, lower=True)
    ((1, 2), (2, 1))
    """
    n, k = _arg("n", n, 0), _arg("k", k, 1)
    s, d = _arg("stride", stride, 1), _arg("dilation", dilation, 1)
    if not isinstance(lower, bool):
        raise ConvParamError(f"lower={lower!r}: must be True or False")
    out = sp.ceiling(n / s)
    total = sp.Max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    small = sp.floor(total / 2)
    big = total - small
    return (big, small) if lower else (small, big)


def full_padding(k: Any, dilation: Any = 1) -> tuple[Expr, Expr]:
    """``(d*(k - 1), d*(k - 1))``: every partial overlap.

    >>> k, d = size_symbols('k d')
    >>> full_padding(k, d)
    (d*(k - 1), d*(k - 1))
    """
    k, d = _arg("k", k, 1), _arg("dilation", dilation, 1)
    return d * (k - 1), d * (k - 1)


class SymbolicRF(NamedTuple):
    """Receptive field after a layer: ``size`` inputs wide, ``jump`` apart, first centred at ``start``."""

    size: Expr
    jump: Expr
    start: Expr


def receptive_field(layers: Sequence[Sequence[Any]]) -> list[SymbolicRF]:
    """Receptive field, jump and centre of the first window after each layer.

    Layers as in :func:`refconv.shapes.receptive_field`: ``(k, stride[, padding[, dilation]])``
    (padding an int, an expression, or a pair whose left side counts).
    ``jump_l = jump_{l-1} * s_l``; ``rf_l = rf_{l-1} + d_l*(k_l - 1)*jump_{l-1}``;
    ``start_l = start_{l-1} + (d_l*(k_l - 1)/2 - lo_l)*jump_{l-1}``, from
    ``rf_0 = jump_0 = 1``, ``start_0 = 1/2``.

    Examples
    --------
    >>> k, s = size_symbols('k s')
    >>> receptive_field([(k, 1), (k, 1)])[-1].size
    2*k - 1
    >>> r = receptive_field([(k, s), (3, 1, 1)])[-1]
    >>> r.size, r.jump
    (k + 2*s, s)
    >>> receptive_field([(3, 1, 1)] * 3)[-1]
    SymbolicRF(size=7, jump=1, start=1/2)
    """
    rf, jump, start = sp.Integer(1), sp.Integer(1), sp.Rational(1, 2)
    out = []
    for i, layer in enumerate(layers):
        layer = tuple(layer)
        if not 2 <= len(layer) <= 4:
            raise ConvParamError(f"layers[{i}]={layer!r}: expected (k, stride[, padding[, dilation]])")
        k = _arg(f"layers[{i}].k", layer[0], 1)
        s = _arg(f"layers[{i}].stride", layer[1], 1)
        lo = _pair(layer[2])[0] if len(layer) > 2 else sp.Integer(0)
        d = _arg(f"layers[{i}].dilation", layer[3], 1) if len(layer) > 3 else sp.Integer(1)
        span = d * (k - 1)
        start = sp.expand(start + (span / 2 - lo) * jump)
        rf = sp.expand(rf + span * jump)
        jump = jump * s
        out.append(SymbolicRF(rf, jump, start))
    return out


# ---------------------------------------------------------------- network level

_KINDS = ("conv", "pool", "max_pool", "avg_pool", "conv_transpose")
_FIELDS = ("kind", "k", "stride", "padding", "dilation", "ceil_mode")


def _layer_dict(i: int, layer: Any) -> dict:
    if isinstance(layer, dict):
        spec = dict(layer)
        unknown = set(spec) - set(_FIELDS) - {"output_padding"}
        if unknown:
            raise ConvParamError(f"layers[{i}]={layer!r}: unknown keys {sorted(unknown)}; expected {_FIELDS + ('output_padding',)}")
    elif isinstance(layer, (tuple, list)) and 2 <= len(layer) <= 6:
        spec = dict(zip(_FIELDS, layer))
    else:
        raise ConvParamError(
            f"layers[{i}]={layer!r}: expected (kind, k[, stride[, padding[, dilation[, ceil_mode]]]]) or a dict"
        )
    if spec.get("kind") not in _KINDS:
        raise ConvParamError(f"layers[{i}].kind={spec.get('kind')!r}: must be one of {_KINDS}")
    if "k" not in spec:
        raise ConvParamError(f"layers[{i}]={layer!r}: the kernel size 'k' is required")
    if spec["kind"] == "conv_transpose" and "ceil_mode" in spec and not isinstance(layer, dict):
        # the sixth tuple slot of a transposed convolution is its output_padding
        spec["output_padding"] = spec.pop("ceil_mode")
    return spec


def _axis_value(i: int, name: str, value: Any, axis: int, ndim: int | None) -> Any:
    if ndim is None:
        return value
    if isinstance(value, (tuple, list)) and not isinstance(value, str):
        if len(value) != ndim:
            raise ConvParamError(f"layers[{i}].{name}={value!r}: expected one value or {ndim} (one per axis)")
        return value[axis]
    return value


def _layer_output(i: int, spec: dict, n: Expr, axis: int, ndim: int | None) -> Expr:
    kind = spec["kind"]
    k = _axis_value(i, "k", spec["k"], axis, ndim)
    default_stride = k if kind in ("pool", "max_pool", "avg_pool") else 1
    s = spec.get("stride")
    s = default_stride if s is None else _axis_value(i, "stride", s, axis, ndim)
    d = _axis_value(i, "dilation", spec.get("dilation", 1) or 1, axis, ndim)
    pad = spec.get("padding", 0)
    pad = 0 if pad is None else pad
    if not isinstance(pad, str):
        pad = _axis_value(i, "padding", pad, axis, ndim)
    try:
        if isinstance(pad, str):
            if pad == "valid":
                pad = 0
            elif pad == "full":
                pad = full_padding(k, d)
            elif pad in ("same", "same_lower"):
                _arg("k", k, 1), _arg("dilation", d, 1)
                if kind == "conv_transpose":  # the adjoint of a 'same' convolution of length n*s
                    return _arg("n", n, 0) * _arg("stride", s, 1)
                return _ceil_div(_arg("n", n, 0), _arg("stride", s, 1))
            else:
                raise ConvParamError(f"layers[{i}].padding={pad!r}: expected an int, a pair, 'valid', 'same', 'same_lower' or 'full'")
        if kind == "conv":
            return conv_output_size(n, k, s, pad, d, collapse=True)
        if kind == "conv_transpose":
            return conv_transpose_output_size(n, k, s, pad, spec.get("output_padding", 0), d)
        return pool_output_size(n, k, s, pad, d, bool(spec.get("ceil_mode", False)), collapse=True)
    except ConvParamError as exc:
        raise ConvParamError(f"layers[{i}] ({kind}): {exc}") from None


def stack_output_sizes(layers: Sequence[Any], n: Any) -> list[Any]:
    """The size after each layer of a stack, as formulas of the input size ``n``.

    Each layer is a tuple ``(kind, k, stride, padding, dilation, ceil_mode)``
    (trailing items optional) or a dict with those keys:

    * ``kind``: ``'conv'``, ``'pool'`` (also ``'max_pool'``, ``'avg_pool'``) or
      ``'conv_transpose'`` (its sixth tuple item, or key ``output_padding``, is
      the ``output_padding``);
    * ``stride``: default 1 for convolutions, ``k`` for pooling (``None`` too);
    * ``padding``: an int or expression (both sides), a ``(lo, hi)`` pair,
      ``'valid'``, ``'full'``, or ``'same'``/``'same_lower'`` (output
      ``ceiling(n / s)``; ``n * s`` for a transposed convolution);
    * ``dilation``: default 1; ``ceil_mode``: pooling only, default False.

    ``n`` is one size, or a tuple ``(H, W, ...)``: then ``k``, ``stride``,
    ``dilation`` and ``padding`` may be one value for every axis or a tuple
    with one value per axis (each padding entry an int or a ``(lo, hi)`` pair),
    and each result is a tuple.  Nested roundings are collapsed
    (``collapse=True`` of :func:`conv_output_size`): a VGG stack of five
    2x2 pools is ``floor(H/32)``.

    Examples
    --------
    >>> H, W = size_symbols('H W')
    >>> alexnet = [('conv', 11, 4), ('pool', 3, 2), ('conv', 5, 1, 2), ('pool', 3, 2)]
    >>> stack_output_sizes(alexnet, H)[:2]           # floor(floor(v)/s) = floor(v/s) collapses the nesting
    [floor(H/4 - 11/4) + 1, floor(H/8 - 19/8) + 1]
    >>> [e.subs(H, 227) for e in stack_output_sizes(alexnet, H)]
    [55, 27, 27, 13]
    >>> stack_output_size([('conv', 3, 1, 1)] * 2 + [('pool', 2)], (H, W))
    (floor(H/2), floor(W/2))
    >>> stack_output_size(([('conv', 3, 1, 1)] * 2 + [('pool', 2)]) * 5, H)
    floor(H/32)
    """
    multi = isinstance(n, (tuple, list))
    ndim = len(n) if multi else None
    sizes = list(n) if multi else [n]
    out = []
    for i, layer in enumerate(layers):
        spec = _layer_dict(i, layer)
        sizes = [_layer_output(i, spec, size, axis, ndim) for axis, size in enumerate(sizes)]
        out.append(tuple(sizes) if multi else sizes[0])
    return out


def stack_output_size(layers: Sequence[Any], n: Any) -> Any:
    """The output size of a stack of layers as a formula of ``n``; see :func:`stack_output_sizes`.

    >>> H = size_symbols('H')
    >>> stack_output_size([('conv', 3), ('conv', 3), ('pool', 2, 2, 0, 1, True)], H)
    ceiling(H/2) - 2
    >>> stack_output_size([('conv_transpose', 3, 2, 1, 1, 1)], H)
    2*H
    >>> stack_output_size([], 7)
    7
    """
    sizes = stack_output_sizes(layers, n)
    if sizes:
        return sizes[-1]
    return tuple(sp.sympify(v) for v in n) if isinstance(n, (tuple, list)) else sp.sympify(n)


# ---------------------------------------------------------------- inverse questions


def padding_for_output(n: Any, k: Any, out: Any, stride: Any = 1, dilation: Any = 1) -> tuple[Expr, Expr]:
    """The total padding ``lo + hi`` that gives ``out``: every value in ``[first, last]``.

    ``floor((n + P - d*(k-1) - 1)/s) + 1 = out`` exactly when
    ``(out - 1)*s <= n + P - d*(k - 1) - 1 <= out*s - 1``, so
    ``P`` ranges over ``(out - 1)*s + d*(k - 1) + 1 - n + [0, s - 1]``
    (values below 0 are not paddings).

    Examples
    --------
    >>> n, k, d, s = size_symbols('n k d s')
    >>> padding_for_output(n, k, n)                     # keep the length: k - 1 in all
    (k - 1, k - 1)
    >>> padding_for_output(n, k, n + k - 1)              # full
    (2*k - 2, 2*k - 2)
    >>> padding_for_output(n, k, n, dilation=d)
    (d*(k - 1), d*(k - 1))
    >>> padding_for_output(224, 7, 112, stride=2)        # ResNet stem: 3 or 4 in total
    (5, 6)
    """
    n, k, out = _arg("n", n, 0), _arg("k", k, 1), _arg("out", out, 1)
    s, d = _arg("stride", stride, 1), _arg("dilation", dilation, 1)
    first = (out - 1) * s + d * (k - 1) + 1 - n
    return first, first + s - 1


def conv_input_size_range(out: Any, k: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> tuple[Expr, Expr]:
    """The input sizes ``[first, last]`` that a convolution maps to ``out``.

    ``first = (out - 1)*s + d*(k - 1) + 1 - lo - hi``, ``last = first + s - 1``:
    ``s`` different inputs give the same output size, because the last
    ``s - 1`` rows may be left unread.  This many-to-one map is why a
    transposed convolution (its adjoint) needs ``output_padding`` to pick one.

    Examples
    --------
    >>> o, k, s = size_symbols('o k s')
    >>> conv_input_size_range(o, k, s)
    (k + s*(o - 1), k + s*(o - 1) + s - 1)
    >>> conv_input_size_range(55, 11, stride=4)
    (227, 230)
    """
    out, k = _arg("out", out, 1), _arg("k", k, 1)
    s, d = _arg("stride", stride, 1), _arg("dilation", dilation, 1)
    lo, hi = _pair(padding)
    first = (out - 1) * s + d * (k - 1) + 1 - lo - hi
    return first, first + s - 1


def conv_transpose_reachable_range(
    n: Any, k: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1
) -> tuple[Expr, Expr]:
    """Output sizes ``[first, last]`` a transposed convolution of ``n`` reaches with ``output_padding``.

    ``first`` is :func:`conv_transpose_output_size` with ``output_padding=0``;
    ``output_padding`` ranges over ``[0, max(s, d) - 1]``.  For ``s >= d`` the
    range is exactly :func:`conv_input_size_range` of ``n``: each input size the
    forward convolution maps to ``n`` is reachable, and only those.

    Examples
    --------
    >>> n, k, s = size_symbols('n k s')
    >>> conv_transpose_reachable_range(n, k, s)
    (k + s*(n - 1), k + s*(n - 1) + s - 1)
    """
    s, d = _arg("stride", stride, 1), _arg("dilation", dilation, 1)
    first = conv_transpose_output_size(n, k, s, padding, 0, d)
    return first, first + sp.Max(s, d) - 1


# ---------------------------------------------------------------- when conventions agree


def same_alignment_gap(n: Any, k: Any, stride: Any = 1, dilation: Any = 1) -> Expr:
    """``hi - lo`` of ``'same'`` padding: ``T mod 2`` for the total ``T``; the two alignments agree iff it is 0.

    ``'same'`` (TF/Keras ``SAME``, ONNX ``SAME_UPPER``) puts the odd zero at the
    end, ``'same_lower'`` (ONNX ``SAME_LOWER``) at the start: they coincide
    exactly when the total padding is even.  At stride 1 the total is
    ``d*(k - 1)``: odd kernels, or even dilations, never differ.

    >>> n, k, d = size_symbols('n k d')
    >>> same_alignment_gap(n, k, dilation=d)
    Mod(d*k - d, 2)
    >>> same_alignment_gap(n, 3), same_alignment_gap(n, 4), same_alignment_gap(n, 4, dilation=2)
    (0, 1, 0)
    >>> same_alignment_gap(6, 3, stride=2), same_alignment_gap(7, 3, stride=2)
    (1, 0)
    """
    lo, hi = same_padding(n, k, stride, dilation)
    return sp.Mod(sp.expand(lo + hi), 2)


def half_padding_agrees_with_same(n: Any, k: Any, stride: Any = 1) -> Any:
    """When PyTorch's ``padding=k//2`` (both sides) is exactly TF/Keras ``SAME``: a sympy condition.

    ``SAME`` pads ``T = max((ceiling(n/s) - 1)*s + k - n, 0)`` in total, the
    odd zero at the end.  It equals ``(k//2, k//2)`` iff ``k = 1`` (both pad
    nothing), or ``k`` is odd and ``T = k - 1``, that is ``(ceiling(n/s) - 1)*s = n - 1``:
    ``s`` divides ``n - 1``.  (For odd ``k`` the output sizes always agree,
    ``floor((n - 1)/s) + 1 = ceiling(n/s)``; for even ``k``, ``k//2`` on both
    sides gives ``n + 1`` outputs at stride 1.)  Dilation 1.

    >>> n, k, s = size_symbols('n k s')
    >>> half_padding_agrees_with_same(n, k, s)
    Eq(k, 1) | (Eq(Mod(k, 2), 1) & Eq(Mod(n + s - 1, s), 0))
    >>> half_padding_agrees_with_same(n, 3)
    True
    >>> half_padding_agrees_with_same(224, 3, 2), half_padding_agrees_with_same(225, 3, 2)
    (False, True)
    """
    n, k, s = _arg("n", n, 1), _arg("k", k, 1), _arg("stride", stride, 1)
    return sp.Or(sp.Eq(k, 1), sp.And(sp.Eq(sp.Mod(k, 2), 1), sp.Eq(sp.Mod(n - 1, s), 0)))


def adaptive_bin(i: Any, n: Any, o: Any) -> tuple[Expr, Expr]:
    """Bin ``i`` of adaptive pooling of ``n`` samples to ``o``: ``(floor(i*n/o), ceiling((i + 1)*n/o))``.

    The twin of :func:`refconv.shapes.adaptive_bins`.  When ``o`` divides
    ``n`` the bins are the windows of a pooling with ``k = s = n/o``:

    >>> i, m, o = size_symbols('i m o')
    >>> adaptive_bin(i, m * o, o)
    (i*m, m*(i + 1))
    >>> adaptive_bin(1, 5, 3)
    (1, 4)
    """
    i, n, o = _arg("i", i, 0), _arg("n", n, 1), _arg("o", o, 1)
    return sp.floor(i * n / o), sp.ceiling((i + 1) * n / o)


def max_unpool_output_size(n: Any, k: Any, stride: Any, padding: Any = 0) -> Expr:
    """``(n - 1)*s - lo - hi + k``: the default output length of max unpooling (:func:`refconv.shapes.max_unpool_output_size`).

    It inverts pooling when the windows tile the input (``n_in = k + s*m``):

    >>> k, s, m = size_symbols('k s m')
    >>> max_unpool_output_size(pool_output_size(k + s * m, k, s), k, s)
    k + m*s
    """
    n, k, s = _arg("n", n, 0), _arg("k", k, 1), _arg("stride", stride, 1)
    lo, hi = _pair(padding)
    return (n - 1) * s - lo - hi + k


def output_padding_for(n: Any, wanted: Any, k: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Expr:
    """``wanted - ((n - 1)*s - lo - hi + d*(k - 1) + 1)``: the ``output_padding`` a requested size needs.

    The twin of :func:`refconv.shapes.output_padding_for` (which also checks
    that the result lies in ``[0, max(s, d))``).  PyTorch's ``output_size=2n``
    after a stride-2, ``k = 3``, padding-1 layer needs ``output_padding = 1``:

    >>> n = size_symbols('n')
    >>> output_padding_for(n, 2 * n, 3, stride=2, padding=1)
    1
    """
    out = _arg("wanted", wanted, 0)
    return sp.expand(out - conv_transpose_output_size(n, k, stride, padding, 0, dilation))


def fractional_start(i: Any, n: Any, k: Any, o: Any, u: Any) -> Expr:
    """Start of window ``i < o - 1`` of fractional max pooling: ``floor((i + u)*a) - floor(u*a)``, ``a = (n - k)/(o - 1)``.

    The twin of :func:`refconv.shapes.fractional_starts` (whose last window
    starts at ``n - k``).  With ``u = 0`` and ``o - 1`` dividing ``n - k`` the
    windows are those of a pooling with stride ``a``:

    >>> i, k, a, o = size_symbols('i k a o')
    >>> fractional_start(i, k + a * (o - 1), k, o, 0)
    a*i
    >>> fractional_start(1, 10, 2, 4, sp.Rational(1, 2))
    3
    """
    i, n, k, o = _arg("i", i, 0), _arg("n", n, 1), _arg("k", k, 1), _arg("o", o, 2)
    if isinstance(u, (float, numbers.Rational)) and not isinstance(u, bool):
        q = Fraction(u) if isinstance(u, numbers.Rational) else Fraction(float(u))  # a float's exact value
        u = sp.Rational(q.numerator, q.denominator)
    else:
        u = sp.sympify(u)
    if u.is_number and not (0 <= u < 1):
        raise ConvParamError(f"u={u}: must lie in [0, 1)")
    a = (n - k) / (o - 1)
    return sp.simplify(sp.floor((i + u) * a) - sp.floor(u * a))
