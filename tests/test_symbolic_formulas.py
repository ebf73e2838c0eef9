"""Symbolic shape formulas: the integer formula, the sympy formula substituted, and (where the
oracle is used) the oracle's output shape agree; the inverse questions answered symbolically."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv import oracle, shapes
from refconv.params import ConvParamError
from refconv import symbolic as S

N, K, STRIDE, LO, HI, DIL, OP = S.size_symbols("N K STRIDE LO HI DIL OP")
SYMS = (N, K, STRIDE, LO, HI, DIL)


def _subs(expr, **vals):
    table = {N: vals["n"], K: vals["k"], STRIDE: vals["s"], LO: vals.get("lo", 0), HI: vals.get("hi", 0), DIL: vals["d"]}
    table[OP] = vals.get("op", 0)
    out = sp.sympify(expr).subs(table)
    assert out.is_Integer, out
    return int(out)


@functools.cache
def _general(name):
    """The fully symbolic formulas, built once."""
    return {
        "same": lambda: S.same_padding(N, K, STRIDE, DIL),
        "same_lower": lambda: S.same_padding(N, K, STRIDE, DIL, lower=True),
        "gap": lambda: S.same_alignment_gap(N, K, STRIDE, DIL),
        "half": lambda: S.half_padding_agrees_with_same(N, K, STRIDE),
    }[name]()


@st.composite
def conv_axes(draw, *, max_n=40):
    """One axis of a valid convolution: the dilated kernel fits in the padded input."""
    k = draw(st.integers(1, 6))
    d = draw(st.integers(1, 3))
    s = draw(st.integers(1, 5))
    lo = draw(st.integers(0, 4))
    hi = draw(st.integers(0, 4))
    low = max(0, d * (k - 1) + 1 - lo - hi)
    n = draw(st.integers(low, max(low, max_n)))
    return dict(n=n, k=k, s=s, lo=lo, hi=hi, d=d)


# Symbols in every slot: the general formula, later given numbers.  Zero paddings are
# symbols too, so the positive-symbol formula is evaluated at lo, hi = 0 by substitution.
LO0, HI0 = sp.symbols("LO0 HI0", integer=True, nonnegative=True)


@settings(max_examples=150)
@given(conv_axes())
def test_conv_output_size_symbolic_equals_integer(a):
    general = S.conv_output_size(N, K, STRIDE, (LO0, HI0), DIL)
    got = general.subs({N: a["n"], K: a["k"], STRIDE: a["s"], LO0: a["lo"], HI0: a["hi"], DIL: a["d"]})
    want = shapes.conv_output_size(a["n"], a["k"], a["s"], (a["lo"], a["hi"]), a["d"])
    assert got == want
    assert S.conv_output_size(a["n"], a["k"], a["s"], (a["lo"], a["hi"]), a["d"]) == want


@settings(max_examples=150)
@given(st.integers(0, 30), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.integers(0, 3), st.integers(1, 3))
def test_conv_output_size_numeric_everywhere(n, k, s, lo, hi, d):
    # with numbers for every argument, including windows that do not fit (then 0)
    assert S.conv_output_size(n, k, s, (lo, hi), d) == shapes.conv_output_size(n, k, s, (lo, hi), d)


@st.composite
def pool_axes(draw):
    """One axis of a valid pooling: padding up to the window and a stride past it (windows of padding only)."""
    k = draw(st.integers(1, 6))
    d = draw(st.integers(1, 3))
    s = draw(st.integers(1, 5))
    wide = d * (k - 1) + s + 2  # past d*(k-1): several windows may start in the right padding
    lo, hi = draw(st.integers(0, wide)), draw(st.integers(0, wide))
    n = draw(st.integers(max(0, d * (k - 1) + 1 - lo - hi), 40))
    return dict(n=n, k=k, s=s, lo=lo, hi=hi, d=d)


@settings(max_examples=200)
@given(pool_axes(), st.booleans())
def test_pool_output_size_symbolic_equals_integer(a, ceil_mode):
    want = shapes.pool_output_size(a["n"], a["k"], a["s"], (a["lo"], a["hi"]), a["d"], ceil_mode)
    # fully general symbols: the Min form
    general = S.pool_output_size(N, K, STRIDE, (LO0, HI0), DIL, ceil_mode)
    got = general.subs({N: a["n"], K: a["k"], STRIDE: a["s"], LO0: a["lo"], HI0: a["hi"], DIL: a["d"]})
    assert got == want
    # numbers for the window and a symbol for n: the simplified forms
    partial = S.pool_output_size(N, a["k"], a["s"], (a["lo"], a["hi"]), a["d"], ceil_mode)
    assert partial.subs(N, a["n"]) == want
    assert S.pool_output_size(a["n"], a["k"], a["s"], (a["lo"], a["hi"]), a["d"], ceil_mode) == want


def test_pool_ceil_mode_with_padding_past_the_window():
    # hi > d*(k-1): two windows would start in the right padding and the rule drops only one; the symbolic
    # formula follows it (the plain Min form gave 1 here)
    assert shapes.pool_output_size(1, 1, 1, (0, 2), 1, True) == 2
    assert S.pool_output_size(1, 1, 1, (0, 2), 1, True) == 2
    assert S.pool_output_size(N, 1, 1, (0, 2), 1, True).subs(N, 1) == 2
    for n in range(0, 12):
        for hi in range(0, 7):
            want = shapes.pool_output_size(n, 2, 3, (1, hi), 1, True)
            assert S.pool_output_size(N, 2, 3, (1, hi), 1, True).subs(N, n) == want, (n, hi)
            assert S.pool_output_size(N, K, STRIDE, (LO0, HI0), DIL, True).subs(
                {N: n, K: 2, STRIDE: 3, LO0: 1, HI0: hi, DIL: 1}) == want, (n, hi)


@settings(max_examples=150)
@given(conv_axes(max_n=12), st.integers(0, 4))
def test_conv_transpose_output_size_symbolic_equals_integer(a, op):
    general = S.conv_transpose_output_size(N, K, STRIDE, (LO0, HI0), OP, DIL)
    vals = {N: a["n"], K: a["k"], STRIDE: a["s"], LO0: a["lo"], HI0: a["hi"], DIL: a["d"], OP: op}
    assert general.subs(vals) == shapes.conv_transpose_output_size(a["n"], a["k"], a["s"], (a["lo"], a["hi"]), op, a["d"])


@settings(max_examples=150)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(1, 3), st.booleans())
def test_same_padding_symbolic_equals_integer(n, k, s, d, lower):
    general = _general("same_lower" if lower else "same")
    got = tuple(e.subs({N: n, K: k, STRIDE: s, DIL: d}) for e in general)
    assert got == shapes.same_padding(n, k, s, d, lower)
    assert S.same_padding(n, k, s, d, lower) == shapes.same_padding(n, k, s, d, lower)


def test_same_padding_simplifies_for_stride_one():
    lo, hi = S.same_padding(N, K, 1, DIL)
    assert sp.simplify(lo + hi - DIL * (K - 1)) == 0
    assert S.same_padding(N, 3, 1, DIL) == (DIL, DIL)


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3)), max_size=5))
def test_receptive_field_symbolic_equals_integer(layers):
    want = shapes.receptive_field(layers)
    got = S.receptive_field(layers)
    assert [(r.size, r.jump, r.start) for r in got] == [(r.size, r.jump, sp.Rational(r.start)) for r in want]


def test_receptive_field_general_recurrence():
    k1, k2, s1 = S.size_symbols("k1 k2 s1")
    r = S.receptive_field([(k1, s1), (k2, 1)])
    assert sp.expand(r[-1].size - (k1 + (k2 - 1) * s1)) == 0
    assert r[-1].jump == s1


# ------------------------------------------------------------------ network level


@st.composite
def layer_stacks(draw):
    """A stack of conv / pool / conv_transpose layers with the input size that keeps every layer valid."""
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "pool", "conv_transpose"]))
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2))
        if kind == "pool":
            half = (d * (k - 1) + 1) // 2
            pad = (draw(st.integers(0, half)), draw(st.integers(0, half)))
            layers.append(("pool", k, s, pad, d, draw(st.booleans())))
        elif kind == "conv":
            layers.append(("conv", k, s, (draw(st.integers(0, 2)), draw(st.integers(0, 2))), d))
        else:
            p = draw(st.integers(0, 1))
            layers.append(("conv_transpose", k, s, p, d, draw(st.integers(0, max(s, d) - 1))))
    return layers


def _integer_stack(layers, n):
    sizes = []
    for kind, k, s, pad, d, extra in layers:
        if kind == "conv":
            if n < d * (k - 1) + 1 - sum(pad):
                return None
            n = shapes.conv_output_size(n, k, s, pad, d)
        elif kind == "pool":
            if n < d * (k - 1) + 1 - sum(pad):
                return None
            n = shapes.pool_output_size(n, k, s, pad, d, extra)
        else:
            n = shapes.conv_transpose_output_size(n, k, s, pad, extra, d)
            if n < 1:
                return None
        sizes.append(n)
    return sizes


@settings(max_examples=120)
@given(layer_stacks(), st.integers(1, 60))
def test_stack_output_sizes_equal_integer_chain(layers, n):
    full = [tuple(layer) + (None,) * (6 - len(layer)) for layer in layers]
    full = [(kind, k, s, pad, d, bool(extra) if kind == "pool" else (extra or 0)) for kind, k, s, pad, d, extra in full]
    want = _integer_stack(full, n)
    if want is None:
        return
    H = S.size_symbols("H")
    formulas = S.stack_output_sizes(layers, H)
    assert [f.subs(H, n) for f in formulas] == want
    assert S.stack_output_sizes(layers, n) == want


def test_stack_output_size_two_axes_and_strings():
    H, W = S.size_symbols("H W")
    vgg_block = [("conv", 3, 1, 1)] * 2 + [("pool", 2)]
    assert S.stack_output_size(vgg_block * 5, (H, W))[0].subs(H, 224) == 7
    out = S.stack_output_size([("conv", (7, 5), 2, "same"), {"kind": "pool", "k": 3, "stride": 2, "padding": "valid"}], (H, W))
    assert out[0].subs(H, 224) == shapes.pool_output_size(shapes.conv_output_size(224, 7, 2, shapes.same_padding(224, 7, 2)), 3, 2)
    assert S.stack_output_size([("conv", 3, 1, "full")], H) == H + 2
    assert S.stack_output_size([("conv", 3, 1, (0, 1))], (H, W)) == (H - 2, W)
    # 'same' transposed convolution: n * s, as refconv.params chooses padding and output_padding
    assert S.stack_output_size([("conv_transpose", 3, 2, "same")], H) == 2 * H
    from refconv.params import conv_transpose_params
    assert conv_transpose_params((1, 1, 5), (1, 1, 3), stride=2, padding="same").output_spatial == (10,)


@pytest.mark.parametrize(
    "layers, match",
    [
        ([("dense", 3)], "kind='dense'"),
        ([("conv", 0)], "k=0"),
        ([("conv", 3, 1, "same_upper")], "padding='same_upper'"),
        ([("conv", 3, (1, 2))], r"stride=\(1, 2\)"),
        ([{"kind": "conv", "k": 3, "strides": 2}], "unknown keys"),
    ],
)
def test_stack_output_size_bad_layers(layers, match):
    with pytest.raises(ConvParamError, match=match):
        S.stack_output_size(layers, S.size_symbols("H"))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: S.conv_output_size(-1, 3), "n=-1"),
        (lambda: S.conv_output_size(5, 3, stride=0), "stride=0"),
        (lambda: S.conv_output_size(5, True), "k=True"),
        (lambda: S.conv_output_size(5, 2.5), "k=2.5"),
        (lambda: S.conv_output_size(5, sp.Rational(1, 2)), "k=1/2"),
        (lambda: S.conv_output_size(5, 3, padding=(1, 2, 3)), "padding="),
        (lambda: S.conv_output_size(sp.Symbol("x", negative=True), 3), "n=x"),
        (lambda: S.pool_output_size(5, 3, 2, ceil_mode=1), "ceil_mode=1"),
    ],
)
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ConvParamError, match=match):
        call()


# ------------------------------------------------------------------ inverse questions


@settings(max_examples=100)
@given(st.integers(1, 30), st.integers(1, 5), st.integers(1, 20), st.integers(1, 4), st.integers(1, 3))
def test_padding_for_output_is_exactly_the_padding_giving_out(n, k, out, s, d):
    first, last = S.padding_for_output(N, K, sp.Symbol("O", integer=True, positive=True), STRIDE, DIL)
    vals = {N: n, K: k, sp.Symbol("O", integer=True, positive=True): out, STRIDE: s, DIL: d}
    first, last = int(first.subs(vals)), int(last.subs(vals))
    assert last - first == s - 1
    # every total padding up to a bound: those giving `out` are exactly [first, last] (>= 0)
    hits = [p for p in range(0, last + 2 * s + 1) if d * (k - 1) + 1 <= n + p and shapes.conv_output_size(n, k, s, (0, p), d) == out]
    assert hits == [p for p in range(max(first, 0), last + 1) if d * (k - 1) + 1 <= n + p]


def test_padding_for_output_symbolic_statements():
    # keep the length at stride 1: total d*(k-1), whatever n
    first, last = S.padding_for_output(N, K, N, 1, DIL)
    assert first == last and sp.expand(first - DIL * (K - 1)) == 0


@settings(max_examples=100)
@given(conv_axes(max_n=30))
def test_input_sizes_with_the_same_output_and_output_padding(a):
    out = shapes.conv_output_size(a["n"], a["k"], a["s"], (a["lo"], a["hi"]), a["d"])
    if out < 1:
        return
    O = sp.Symbol("O", integer=True, positive=True)
    first, last = S.conv_input_size_range(O, K, STRIDE, (LO0, HI0), DIL)
    vals = {O: out, K: a["k"], STRIDE: a["s"], LO0: a["lo"], HI0: a["hi"], DIL: a["d"]}
    first, last = int(first.subs(vals)), int(last.subs(vals))
    preimage = [m for m in range(0, 80) if m + a["lo"] + a["hi"] >= a["d"] * (a["k"] - 1) + 1
                and shapes.conv_output_size(m, a["k"], a["s"], (a["lo"], a["hi"]), a["d"]) == out]
    assert preimage == [m for m in range(max(first, 0), last + 1)]
    assert a["n"] in preimage
    # a transposed convolution of `out` reaches exactly those sizes when s >= d
    if a["s"] >= a["d"]:
        t_first, t_last = S.conv_transpose_reachable_range(O, K, STRIDE, (LO0, HI0), DIL)
        assert (int(t_first.subs(vals)), int(t_last.subs(vals))) == (first, last)


def test_many_to_one_symbolically():
    # floor((n - k)/s) + 1 takes the same value on s consecutive sizes
    O = sp.Symbol("O", integer=True, positive=True)
    first, last = S.conv_input_size_range(O, K, STRIDE)
    for j in range(4):
        e = S.conv_output_size(first + j, K, STRIDE)
        # first + j - k = s*(O - 1) + j + 1 - 1: floor((s*(O-1) + j)/s) = O - 1 for 0 <= j < s
        assert [e.subs({STRIDE: s, K: 3, O: 5}) for s in range(j + 1, j + 4)] == [5, 5, 5]
    assert sp.expand(last - first) == STRIDE - 1


@settings(max_examples=150)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(1, 3))
def test_same_upper_equals_lower_iff_total_even(n, k, s, d):
    lo, hi = _general("same")
    # hi - lo = T mod 2 as an identity in the total T
    T = lo + hi
    assert sp.simplify(hi - lo - (T - 2 * sp.floor(T / 2))) == 0
    vals = {N: n, K: k, STRIDE: s, DIL: d}
    upper = shapes.same_padding(n, k, s, d)
    lower = shapes.same_padding(n, k, s, d, lower=True)
    assert (upper == lower) == (int(T.subs(vals)) % 2 == 0)


def test_same_upper_equals_lower_at_stride_one_iff_k_odd_or_d_even():
    lo, hi = S.same_padding(N, K, 1, DIL)
    parity = sp.expand(hi - lo)
    for k in range(1, 8):
        for d in range(1, 4):
            assert (parity.subs({K: k, DIL: d}) == 0) == (k % 2 == 1 or d % 2 == 0)


@settings(max_examples=150)
@given(st.integers(1, 60), st.integers(1, 4), st.integers(1, 4))
def test_half_padding_equals_tf_same_when(n, half, s):
    # odd kernel k = 2*half + 1; PyTorch padding=k//2 vs TF SAME (upper)
    k = 2 * half + 1
    pt_out = S.conv_output_size(N, k, STRIDE, k // 2)
    tf_out = sp.ceiling(N / STRIDE)
    # the output sizes agree for every n and s: floor((n - 1)/s) + 1 == ceiling(n/s)
    assert pt_out.subs({N: n, STRIDE: s}) == tf_out.subs({N: n, STRIDE: s})
    # the paddings (and so the values) agree exactly when s divides n - 1
    same = S.same_padding(n, k, s)
    assert (same == (k // 2, k // 2)) == ((n - 1) % s == 0)


def test_half_padding_even_kernel_never_same():
    # even k: padding k//2 on both sides gives n + 1 at stride 1
    half = sp.Symbol("h", integer=True, positive=True)
    assert sp.expand(S.conv_output_size(N, 2 * half, 1, half) - N) == 1


# ------------------------------------------------------------------ three witnesses


@settings(max_examples=60)
@given(conv_axes(max_n=12), st.booleans())
def test_oracle_output_lengths_equal_the_formulas(a, ceil_mode):
    n, k, s, lo, hi, d = a["n"], a["k"], a["s"], a["lo"], a["hi"], a["d"]
    vals = {N: n, K: k, STRIDE: s, LO0: lo, HI0: hi, DIL: d}
    if n >= 1:
        y = oracle.conv(np.zeros((1, 1, n), dtype=int), np.zeros((1, 1, k), dtype=int), stride=s, padding=[(lo, hi)], dilation=d)
        assert y.shape[-1] == S.conv_output_size(N, K, STRIDE, (LO0, HI0), DIL).subs(vals) == shapes.conv_output_size(n, k, s, (lo, hi), d)
        span = d * (k - 1) + 1
        if max(lo, hi) <= span // 2 and span <= n + lo + hi:
            m = oracle.max_pool(np.zeros((1, 1, n)), k, stride=s, padding=[(lo, hi)], dilation=d, ceil_mode=ceil_mode)
            assert m.shape[-1] == S.pool_output_size(N, K, STRIDE, (LO0, HI0), DIL, ceil_mode).subs(vals)
    out = shapes.conv_output_size(n, k, s, (lo, hi), d)
    if out >= 1:
        op = (n + lo + hi - (d * (k - 1) + 1)) % s if s > 1 else 0
        op = min(op, max(s, d) - 1)
        formula = S.conv_transpose_output_size(N, K, STRIDE, (LO0, HI0), OP, DIL).subs({**vals, N: out, OP: op})
        if formula >= 1:
            t = oracle.conv_transpose(np.zeros((1, 1, out), dtype=int), np.zeros((1, 1, k), dtype=int), stride=s,
                                      padding=[(lo, hi)], output_padding=op, dilation=d)
            assert t.shape[-1] == formula


@settings(max_examples=80)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(1, 3))
def test_same_alignment_gap_is_zero_iff_upper_equals_lower(n, k, s, d):
    gap = _general("gap").subs({N: n, K: k, STRIDE: s, DIL: d})
    assert (gap == 0) == (shapes.same_padding(n, k, s, d) == shapes.same_padding(n, k, s, d, lower=True))


@settings(max_examples=200)
@given(st.integers(1, 60), st.integers(1, 8), st.integers(1, 5))
def test_half_padding_condition_is_exact(n, k, s):
    # brute force from the integer functions: padding k//2 on both sides versus TF SAME
    agree = shapes.same_padding(n, k, s) == (k // 2, k // 2)
    general = _general("half")
    assert bool(general.subs({N: n, K: k, STRIDE: s})) == agree
    assert bool(S.half_padding_agrees_with_same(n, k, s)) == agree


def test_collapsed_stack_formulas_equal_the_integer_chain():
    H = S.size_symbols("H")
    vgg = ([("conv", 3, 1, 1)] * 2 + [("pool", 2)]) * 5
    assert S.stack_output_size(vgg, H) == sp.floor(H / 32)
    resnet_stem = [("conv", 7, 2, 3), ("pool", 3, 2, 1), ("conv", 3, 2, 1), ("conv", 3, 2, 1), ("conv", 3, 2, 1)]
    formula = S.stack_output_size(resnet_stem, H)
    for n in range(32, 300):
        m = n
        for _ in range(5):  # every layer above maps m to floor((m - 1)/2) + 1
            m = shapes.conv_output_size(m, 3, 2, 1)
        assert formula.subs(H, n) == m
        assert sp.floor(sp.Integer(n) / 32) == n // 32


@settings(max_examples=100)
@given(st.integers(1, 4), st.integers(0, 3), st.integers(1, 4), st.integers(1, 5), st.integers(0, 2), st.booleans(),
       st.integers(8, 80), st.sampled_from([sp.floor, sp.ceiling]))
def test_collapse_is_an_identity(a, c, k, s, p, ceil_mode, n, rounding):
    # n = floor(H/a) + c (or ceiling): the collapsed and the nested formulas agree at every H
    H = S.size_symbols("H")
    inner = rounding(H / a) + c
    for f in (
        lambda collapse: S.conv_output_size(inner, k, s, p, collapse=collapse),
        lambda collapse: S.pool_output_size(inner, k, s, (p, 0) if p <= k // 2 else 0, 1, ceil_mode, collapse=collapse),
    ):
        plain, collapsed = f(False), f(True)
        assert plain.subs(H, n) == collapsed.subs(H, n)


@settings(max_examples=40)
@given(conv_axes(max_n=9), conv_axes(max_n=9))
def test_two_axis_formula_equals_oracle_shape(a, b):
    if a["n"] < 1 or b["n"] < 1:
        return
    H, W = S.size_symbols("H W")
    layer = ("conv", (a["k"], b["k"]), (a["s"], b["s"]), ((a["lo"], a["hi"]), (b["lo"], b["hi"])), (a["d"], b["d"]))
    formula = S.stack_output_size([layer], (H, W))
    y = oracle.conv(np.zeros((1, 1, a["n"], b["n"]), dtype=int), np.zeros((1, 1, a["k"], b["k"]), dtype=int),
                    stride=(a["s"], b["s"]), padding=[(a["lo"], a["hi"]), (b["lo"], b["hi"])], dilation=(a["d"], b["d"]))
    assert y.shape[2:] == (formula[0].subs(H, a["n"]), formula[1].subs(W, b["n"]))


# --------------------------------------------------------------------------- pooling variants and output_size


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 30), st.integers(1, 30))
def test_adaptive_bin_twin_equals_the_integer_bins(n, o):
    i = sp.Symbol("i", integer=True, nonnegative=True)
    lo, hi = S.adaptive_bin(i, n, o)
    assert [(int(lo.subs(i, j)), int(hi.subs(i, j))) for j in range(o)] == shapes.adaptive_bins(n, o)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 9), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2), st.integers(0, 2))
def test_unpool_and_output_padding_twins_equal_the_integer_formulas(n, k, s, lo, hi):
    sym = S.max_unpool_output_size(N, K, STRIDE, (LO, HI))
    assert _subs(sym, n=n, k=k, s=s, lo=lo, hi=hi, d=1) == shapes.max_unpool_output_size(n, k, s, (lo, hi))
    reach = shapes.conv_transpose_reachable_sizes(n, k, s, (lo, hi), 1)
    W = sp.Symbol("W", integer=True)
    op = S.output_padding_for(N, W, K, STRIDE, (LO, HI), DIL)
    for wanted in reach:
        got = op.subs({N: n, W: wanted, K: k, STRIDE: s, LO: lo, HI: hi, DIL: 1})
        assert got == shapes.output_padding_for(n, wanted, k, s, (lo, hi), 1)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(2, 12), st.integers(1, 4), st.integers(0, 63))
def test_fractional_start_twin_equals_the_exact_starts(n, k, u64):
    if n - k + 1 < 2:
        return
    for o in range(2, n - k + 2):
        u = u64 / 64
        starts = shapes.fractional_starts(n, k, o, u)
        assert [int(S.fractional_start(i, n, k, o, u)) for i in range(o - 1)] == starts[:-1]


def test_fractional_start_reads_a_float_exactly():
    # alpha = 10/3; the float 0.3 lies below 3/10, so floor(0.3 * alpha) = 0 (it would be 1 for 3/10)
    assert S.fractional_start(1, 11, 1, 4, 0.3) == 4 == shapes.fractional_starts(11, 1, 4, 0.3)[1]
    assert S.fractional_start(1, 11, 1, 4, sp.Rational(3, 10)) == 3
