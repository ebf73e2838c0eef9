"""Output-size and padding formulas: integers in, integers out.

Every function states its formula; :mod:`refconv.symbolic` holds the sympy
twins and proves them against the oracle.  ``padding`` is an int (both sides)
or a ``(lo, hi)`` pair.  The seed examples:

>>> conv_output_size(32, 5)                    # 32x32x3 input, 5x5x3 filter
28
>>> conv_output_size(227, 11, stride=4)        # AlexNet conv1
55
>>> conv_geometry(224, 11, stride=4).unread    # at 224 the last column is never read
1
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Sequence

__all__ = [
    "conv_output_size",
    "pool_output_size",
    "conv_transpose_output_size",
    "adaptive_bins",
    "fractional_starts",
    "max_unpool_output_size",
    "same_padding",
    "full_padding",
    "output_padding_for",
    "conv_transpose_reachable_sizes",
    "conv_input_sizes",
    "sizes_text",
    "conv_geometry",
    "AxisGeometry",
    "UnreadInputWarning",
    "receptive_field",
    "LayerRF",
]


#: the padding of one axis: both sides, or ``(lo, hi)``
PadSides = int | Sequence[int]


class UnreadInputWarning(UserWarning):
    """A stride leaves trailing input rows that no output reads."""


def _err(msg: str) -> ValueError:
    # imported lazily to keep the import direction params -> shapes
    from .params import ConvParamError

    return ConvParamError(msg)


def _int(name: str, v: Any, minimum: int) -> int:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < minimum:
        raise _err(f"{name}={v!r}: must be an integer >= {minimum}")
    return int(v)


def _pair(padding: Any) -> tuple[int, int]:
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        lo, hi = padding
        return _int("padding[0]", lo, 0), _int("padding[1]", hi, 0)
    p = _int("padding", padding, 0)
    return p, p


def conv_output_size(n: int, k: int, stride: int = 1, padding: PadSides = 0, dilation: int = 1) -> int:
    """Output length of a convolution: ``floor((n + lo + hi - d*(k-1) - 1) / s) + 1``, at least 0.

    Parameters
    ----------
    n, k : int
        Input and kernel length.
    stride, dilation : int
    padding : int or (int, int)
        Both sides, or ``(lo, hi)``.

    Examples
    --------
    >>> conv_output_size(4, 3, padding=2)          # full mode: n + k - 1
    6
    >>> conv_output_size(7, 3, stride=2, padding=(0, 1), dilation=2)
    2
    >>> conv_output_size(2, 3)
    0
    """
    n, k = _int("n", n, 0), _int("k", k, 1)
    s, d = _int("stride", stride, 1), _int("dilation", dilation, 1)
    lo, hi = _pair(padding)
    span = n + lo + hi - d * (k - 1) - 1
    return span // s + 1 if span >= 0 else 0


def pool_output_size(
    n: int, k: int, stride: int, padding: PadSides = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Output length of pooling.

    ``floor((n + lo + hi - d*(k-1) - 1) / s) + 1`` (at least 0); with
    ``ceil_mode`` the ceiling instead, then minus one if the last window would
    start at or after ``n + lo`` (in the right padding): PyTorch's rule, so that
    every window starts inside the input or the left padding.  With
    ``ceil_mode`` a window may hang past the padded input, even one wider than
    it, as long as it starts inside.

    Examples
    --------
    >>> pool_output_size(5, 2, 2), pool_output_size(5, 2, 2, ceil_mode=True)
    (2, 3)
    >>> pool_output_size(5, 2, 2, padding=1, ceil_mode=True)   # a 4th window would start in the right pad
    3
    >>> pool_output_size(1, 2, 2), pool_output_size(1, 2, 2, ceil_mode=True)   # a window wider than the input
    (0, 1)
    """
    n, k = _int("n", n, 0), _int("k", k, 1)
    s, d = _int("stride", stride, 1), _int("dilation", dilation, 1)
    lo, hi = _pair(padding)
    span = n + lo + hi - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1 if span >= 0 else 0
    out = -(-span // s) + 1  # ceiling division, also for a negative span
    if out > 0 and (out - 1) * s >= n + lo:
        out -= 1
    return max(out, 0)


def conv_transpose_output_size(
    n: int, k: int, stride: int = 1, padding: PadSides = 0, output_padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a transposed convolution.

    ``(n - 1)*s - lo - hi + d*(k - 1) + output_padding + 1``: the full
    scattered length ``(n-1)*s + d*(k-1) + 1``, cropped by the padding, plus
    ``output_padding`` zeros' worth of rows at the end.

    Examples
    --------
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1)
    5
    >>> conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)
    6
    """
    n, k = _int("n", n, 0), _int("k", k, 1)
    s, d = _int("stride", stride, 1), _int("dilation", dilation, 1)
    op = _int("output_padding", output_padding, 0)
    lo, hi = _pair(padding)
    return (n - 1) * s - lo - hi + d * (k - 1) + op + 1


def adaptive_bins(n: int, o: int) -> list[tuple[int, int]]:
    """Adaptive pooling's windows on an axis of ``n`` samples pooled to ``o``: PyTorch's bins.

    Output ``i`` pools ``[floor(i*n/o), ceil((i+1)*n/o))``; bins of uneven
    lengths overlap by at most one sample, and every sample is in some bin.

    Examples
    --------
    >>> adaptive_bins(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    >>> adaptive_bins(2, 4)                        # o > n: bins repeat samples
    [(0, 1), (0, 1), (1, 2), (1, 2)]
    """
    n, o = _int("n", n, 1), _int("o", o, 1)
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


def fractional_starts(n: int, k: int, o: int, u: float | Fraction) -> list[int]:
    """Window starts of fractional max pooling on an axis of ``n`` samples: ``o`` windows of ``k``, sample ``u``.

    PyTorch's interval sequence in exact arithmetic: with
    ``alpha = (n - k) / (o - 1)``, window ``i < o - 1`` starts at
    ``floor((i + u) * alpha) - floor(u * alpha)`` and the last at ``n - k``.
    ``u`` (in ``[0, 1)``) is read exactly: a float is the dyadic rational it stores.

    Examples
    --------
    >>> fractional_starts(10, 2, 4, 0.5)            # alpha = 8/3
    [0, 3, 5, 8]
    >>> fractional_starts(5, 2, 1, 0.25)
    [3]
    """
    n, k, o = _int("n", n, 1), _int("k", k, 1), _int("o", o, 1)
    if o + k - 1 > n:
        raise _err(f"o={o}, k={k}: o + k - 1 must be at most n={n}")
    if isinstance(u, bool) or not isinstance(u, numbers.Real) or u != u or abs(u) == float("inf"):
        raise _err(f"u={u!r}: must be a real number in [0, 1)")
    u = Fraction(u) if isinstance(u, numbers.Rational) else Fraction(float(u))  # a float's exact value
    if not 0 <= u < 1:
        raise _err(f"u={float(u)!r}: must lie in [0, 1)")
    if o == 1:
        return [n - k]
    alpha = Fraction(n - k, o - 1)
    # floor((i + u) * alpha) - floor(u * alpha): the window starts relative to the first
    return [math.floor((i + u) * alpha) - math.floor(u * alpha) for i in range(o - 1)] + [n - k]


def max_unpool_output_size(n: int, k: int, stride: int, padding: PadSides = 0) -> int:
    """Default output length of max unpooling: ``(n - 1)*s - lo - hi + k`` (the pooled input's length).

    Examples
    --------
    >>> max_unpool_output_size(2, 2, 2), max_unpool_output_size(3, 3, 2, padding=1)
    (4, 5)
    """
    n, k = _int("n", n, 0), _int("k", k, 1)
    s = _int("stride", stride, 1)
    lo, hi = _pair(padding)
    return (n - 1) * s - lo - hi + k


def same_padding(n: int, k: int, stride: int = 1, dilation: int = 1, lower: bool = False) -> tuple[int, int]:
    """``(lo, hi)`` padding giving ``O = ceil(n / s)``.

    Total ``max((O - 1)*s + d*(k - 1) + 1 - n, 0)``, never negative; an odd
    total puts the extra zero at the end (``lower=False``: TF ``SAME``, ONNX
    ``SAME_UPPER``) or at the start (``lower=True``: ONNX ``SAME_LOWER``).

    Examples
    --------
    >>> same_padding(5, 3)
    (1, 1)
    >>> same_padding(5, 4), same_padding(5, 4, lower=True)
    ((1, 2), (2, 1))
    >>> same_padding(7, 3, stride=2)
    (1, 1)
    >>> same_padding(8, 1, stride=3)
    (0, 0)
    """
    n, k = _int("n", n, 0), _int("k", k, 1)
    s, d = _int("stride", stride, 1), _int("dilation", dilation, 1)
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def full_padding(k: int, dilation: int = 1) -> tuple[int, int]:
    """``(d*(k-1), d*(k-1))``: every partial overlap, output ``n + d*(k-1)``.

    >>> full_padding(3)
    (2, 2)
    """
    k, d = _int("k", k, 1), _int("dilation", dilation, 1)
    return d * (k - 1), d * (k - 1)


def output_padding_for(
    n: int, wanted: int, k: int, stride: int = 1, padding: PadSides = 0, dilation: int = 1
) -> int:
    """The ``output_padding`` that makes a transposed convolution of ``n`` produce ``wanted``.

    ``output_padding = wanted - ((n-1)*s - lo - hi + d*(k-1) + 1)``; it must lie
    in ``[0, max(s, d))``, otherwise ``wanted`` is not reachable and the error
    lists the reachable sizes.

    Examples
    --------
    >>> output_padding_for(3, 6, 3, stride=2, padding=1)
    1
    >>> output_padding_for(3, 8, 3, stride=2, padding=1)
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: wanted=8: not reachable from n=3; reachable sizes are [5, 6]
    """
    base = conv_transpose_output_size(n, k, stride, padding, 0, dilation)
    op = _int("wanted", wanted, 0) - base
    reach = conv_transpose_reachable_sizes(n, k, stride, padding, dilation)
    if wanted not in reach:
        raise _err(f"wanted={wanted}: not reachable from n={n}; reachable sizes are {sizes_text(reach)}")
    return op


def conv_transpose_reachable_sizes(n: int, k: int, stride: int = 1, padding: PadSides = 0, dilation: int = 1) -> range:
    """Output sizes a transposed convolution of ``n`` can produce: ``base + [0, max(s, d))``.

    They are exactly the input sizes that a forward convolution with the same
    parameters maps to ``n`` (when ``s >= d``), which is why
    ``output_padding`` exists.

    >>> conv_transpose_reachable_sizes(3, 3, stride=2, padding=1)
    range(5, 7)
    >>> conv_input_sizes(3, 3, stride=2, padding=1)
    range(5, 7)
    """
    s, d = _int("stride", stride, 1), _int("dilation", dilation, 1)
    base = conv_transpose_output_size(n, k, s, padding, 0, d)
    return range(max(base, 1), base + max(s, d))


def conv_input_sizes(out: int, k: int, stride: int = 1, padding: PadSides = 0, dilation: int = 1) -> range:
    """All input lengths ``n`` with ``conv_output_size(n, ...) == out`` (for ``out >= 1``).

    ``n`` ranges over ``(out-1)*s + d*(k-1) + 1 - lo - hi + [0, s)``, clipped at 0.

    >>> conv_input_sizes(55, 11, stride=4)
    range(227, 231)
    """
    out = _int("out", out, 1)
    k, s, d = _int("k", k, 1), _int("stride", stride, 1), _int("dilation", dilation, 1)
    lo, hi = _pair(padding)
    first = (out - 1) * s + d * (k - 1) + 1 - lo - hi
    return range(max(first, 0), first + s)


#: ranges longer than this are written as their ends, not listed
LIST_LIMIT = 8


def sizes_text(sizes: range) -> str:
    """A range of sizes as text in O(1): listed when short, else its ends and its length.

    A stride ``s`` makes ``s`` input sizes share an output size, and ``s`` may
    be astronomically large, so the text never enumerates a long range.

    >>> sizes_text(range(223, 227))
    '[223, 224, 225, 226]'
    >>> sizes_text(range(3, 50000003))
    '3..50000002 (50000000 sizes)'
    >>> sizes_text(range(7, 7 + 2**64))
    '7..18446744073709551622 (18446744073709551616 sizes)'
    """
    count = max(0, sizes.stop - sizes.start)  # len() overflows past sys.maxsize; the step is 1
    if count <= LIST_LIMIT:
        return str(list(sizes))
    return f"{sizes.start}..{sizes.stop - 1} ({count} sizes)"


@dataclass(frozen=True)
class AxisGeometry:
    """One axis of a convolution: sizes, and the trailing rows no window reads."""

    n: int
    k: int
    stride: int
    padding: tuple[int, int]
    dilation: int
    output: int
    #: rows of the padded input no window reads (``r`` in the gradient formulas)
    unread: int
    #: how many of those are real input rows rather than right padding
    unread_input: int

    @property
    def formula(self) -> str:
        lo, hi = self.padding
        return (
            f"floor(({self.n} + {lo} + {hi} - {self.dilation}*({self.k} - 1) - 1) / {self.stride}) + 1 = {self.output}"
        )


def conv_geometry(
    n: int, k: int, stride: int = 1, padding: PadSides = 0, dilation: int = 1, *, warn: bool = False
) -> AxisGeometry:
    """Output size plus what a stride leaves unread; warns with :class:`UnreadInputWarning` if asked.

    >>> g = conv_geometry(224, 11, stride=4)
    >>> g.output, g.unread, g.unread_input
    (54, 1, 1)
    >>> conv_geometry(227, 11, stride=4).unread
    0
    """
    out = conv_output_size(n, k, stride, padding, dilation)
    lo, hi = _pair(padding)
    used = (out - 1) * stride + dilation * (k - 1) + 1 if out > 0 else 0
    unread = n + lo + hi - used if out > 0 else 0
    unread_input = max(0, unread - hi)
    geo = AxisGeometry(n, k, stride, (lo, hi), dilation, out, unread, unread_input)
    if warn and unread_input > 0:
        warnings.warn(
            f"stride {stride} leaves the last {unread_input} input row(s) of {n} unread "
            f"(kernel {k}, padding {(lo, hi)}, dilation {dilation}); inputs of size "
            f"{sizes_text(conv_input_sizes(out, k, stride, (lo, hi), dilation))} give the same output {out}",
            UnreadInputWarning,
            stacklevel=2,
        )
    return geo


@dataclass(frozen=True)
class LayerRF:
    """Receptive field after a layer: ``size`` inputs wide, ``jump`` apart, first centred at ``start``."""

    size: int
    jump: int
    start: float


def receptive_field(layers: Iterable[Sequence[int]]) -> list[LayerRF]:
    """Receptive field and jump after each layer of a stack.

    Each layer is ``(k, stride)``, ``(k, stride, padding)`` or ``(k, stride,
    padding, dilation)`` (padding may be an int or the left side of a pair).
    Recurrence: ``jump_l = jump_{l-1} * s_l``;
    ``rf_l = rf_{l-1} + d_l*(k_l - 1) * jump_{l-1}``;
    ``start_l = start_{l-1} + (d_l*(k_l-1)/2 - lo_l) * jump_{l-1}``.

    Examples
    --------
    >>> [r.size for r in receptive_field([(3, 1, 1)] * 3)]   # three 3x3 convs see 7x7
    [3, 5, 7]
    >>> r = receptive_field([(11, 4), (3, 2), (5, 1, 2)])   # AlexNet conv1, pool1, conv2
    >>> r[-1].size, r[-1].jump
    (51, 8)
    """
    rf, jump, start = 1, 1, 0.5
    out = []
    for i, layer in enumerate(layers):
        layer = tuple(layer)
        if not 2 <= len(layer) <= 4:
            raise _err(f"layers[{i}]={layer!r}: expected (k, stride[, padding[, dilation]])")
        k, s = _int(f"layers[{i}].k", layer[0], 1), _int(f"layers[{i}].stride", layer[1], 1)
        pad = layer[2] if len(layer) > 2 else 0
        lo = _pair(pad)[0]
        d = _int(f"layers[{i}].dilation", layer[3], 1) if len(layer) > 3 else 1
        span = d * (k - 1)
        start = start + (span / 2 - lo) * jump
        rf = rf + span * jump
        jump = jump * s
        out.append(LayerRF(rf, jump, start))
    return out


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers, without floats.

    >>> ceil_div(7, 2), ceil_div(-7, 2)
    (4, -3)
    """
    return -(-a // b)

