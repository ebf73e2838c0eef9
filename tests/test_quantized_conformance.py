"""The quantized ops in the conformance suite: broken conventions caught and named, correct orders passing."""

import pytest

from refconv.conformance import check
from refconv.conformance.cases import Case, catalogue

from broken.quantized import QUANT_BROKEN, QUANT_CORRECT


def _run(entry, seed=0):
    return check(entry["fn"], op=entry["op"], dims=entry.get("dims", 2), max_examples=3, seed=seed, timeout=60)


@pytest.mark.parametrize("entry", QUANT_BROKEN, ids=[e["name"] for e in QUANT_BROKEN])
def test_each_wrong_convention_is_caught_and_named(entry):
    r = _run(entry)
    assert r.verdict == "FAIL", str(r)
    if entry.get("kind"):
        assert r.failure.kind == entry["kind"], str(r)
    if entry.get("diagnosis"):
        assert any(entry["diagnosis"] in d for d in r.failure.diagnosis), str(r)


@pytest.mark.parametrize("entry", QUANT_CORRECT, ids=[e["name"] for e in QUANT_CORRECT])
def test_correct_accumulation_orders_pass(entry):
    r = _run(entry, seed=3)
    assert r.verdict == "PASS", str(r)


@pytest.mark.parametrize("op", ["conv_integer", "qlinear_conv"])
def test_the_catalogue_reaches_the_quantized_edges(op):
    from refconv.conformance.quantized_ops import quant_of

    cases = catalogue(op, 2)
    labels = " | ".join(c.label for c in cases)
    for what in ("padding with a non-zero zero point", "zero points at the range ends", "decades apart",
                 "long reduction at int32's limit", "past int16", "groups not dividing"):
        assert what in labels, what
    q = [quant_of(c) for c in cases]
    assert {x.x_zero_point for x in q} >= {-128, 255} and any(x.per_channel for x in q)
    assert any(max(x.w_scale) / min(x.w_scale) >= 1e3 for x in q)
    if op == "qlinear_conv":
        for what in ("exact ties", "saturation at both ends (uint8)", "saturation at both ends (int8)",
                     "accumulator beyond int32", "bias near int32's limits", "float32 scale path"):
            assert what in labels, what


def test_ties_case_holds_exact_ties_and_the_long_reduction_approaches_int32():
    from fractions import Fraction

    from refconv import quantized as Q

    ties = next(c for c in catalogue("qlinear_conv", 1) if c.label == "exact ties in the requantization")
    a = ties.arrays()
    acc = Q.conv_integer(a["x"], a["w"], 128, 0)
    m = Fraction(1, 8)  # 0.5 * 0.25 / 1
    assert sum((v * m).denominator == 2 for v in acc.ravel().tolist()) >= 16  # ties k + 1/2
    big = next(c for c in catalogue("conv_integer", 1) if c.label.startswith("long reduction at int32"))
    a = big.arrays()
    assert Q.conv_integer(a["x"], a["w"], 0, -128).tolist() == [[[2147450625]]]
    assert 0 < 2**31 - 1 - 2147450625 < 2**16  # within 33022 of int32's limit


def test_a_failure_reproduction_runs(tmp_path):
    entry = next(e for e in QUANT_BROKEN if e["name"] == "qlinear_conv: ties away from zero")
    r = _run(entry)
    assert r.verdict == "FAIL" and "quantized.qlinear_conv(" in r.failure.repro
    assert isinstance(r.failure.case, Case) and r.failure.case.quant is not None
