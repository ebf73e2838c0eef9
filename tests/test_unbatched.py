"""Unbatched inputs (no N axis): the fast engine as the oracle, and a checked feature of the conformance suite."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace

import numpy as np
import pytest

from refconv import fast, oracle
from refconv.conformance import ops, registry
from refconv.conformance.adapters import get
from refconv.conformance.cases import ALL, Case, catalogue, coverage
from refconv.params import ConvParamError

RNG = np.random.default_rng(7)
X = RNG.integers(-5, 6, size=(3, 6, 5))  # (C, H, W): 2 spatial axes, no N


def _calls():
    """(name, fast call, oracle call) on the unbatched X, for every function the oracle takes unbatched."""
    w = RNG.integers(-3, 4, size=(4, 3, 2, 2))
    y, idx = oracle.max_pool(X, (2, 2), return_indices=True)
    dy = RNG.integers(-3, 4, size=y.shape)
    k = dict(stride=(1, 2), padding=1)
    return [
        ("conv", lambda m: m.conv(X, w, padding=((1, 0), (0, 1)), stride=2)),
        ("conv padding_mode", lambda m: m.conv(X, w, padding=1, padding_mode="circular")),
        ("conv_transpose", lambda m: m.conv_transpose(X, np.swapaxes(w, 0, 1), stride=2, output_padding=1)),
        ("max_pool", lambda m: m.max_pool(X, (3, 2), **k)),
        ("max_pool_grad", lambda m: m.max_pool_grad(dy, X, (2, 2))),
        ("avg_pool", lambda m: m.avg_pool(X, (3, 2), count_include_pad=False, **k)),
        ("lp_pool", lambda m: m.lp_pool(X, 2, (2, 3))),
        ("adaptive_avg_pool", lambda m: m.adaptive_avg_pool(X, (4, 3))),
        ("adaptive_max_pool", lambda m: m.adaptive_max_pool(X, (4, 3))),
        ("max_unpool", lambda m: m.max_unpool(y, idx, (2, 2), output_size=(6, 5))),
    ]


@pytest.mark.parametrize("name, run", _calls(), ids=[c[0] for c in _calls()])
def test_fast_takes_unbatched_inputs_as_the_oracle(name, run):
    got, want = run(fast), run(oracle)
    assert got.ndim == X.ndim  # no N axis added
    assert np.allclose(got, np.asarray(want, dtype=np.float64), rtol=0, atol=0)


def test_fast_max_pool_indices_unbatched():
    y, i = fast.max_pool_indices(X, (2, 2), stride=(2, 1))
    want_y, want_i = oracle.max_pool(X, (2, 2), stride=(2, 1), return_indices=True)
    assert np.array_equal(y, want_y) and np.array_equal(i, want_i) and y.shape == want_y.shape == (3, 3, 4)


def test_a_wrong_rank_is_refused_alike():
    messages = []
    for m in (oracle, fast):
        with pytest.raises(ConvParamError) as info:
            m.conv(np.ones(5), np.ones((1, 1, 2, 2)))
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "x.ndim=1" in messages[1]


# --------------------------------------------------------------------------- the case model


def test_an_unbatched_case_holds_the_batched_values_without_n():
    c = Case("conv", 1, 2, 3, (5, 4), (3, 2), padding=((1, 0), (0, 1)), bias=True, seed=3, unbatched=True)
    a, b = c.arrays("float64"), replace(c, unbatched=False).arrays("float64")
    assert a["x"].shape == (2, 5, 4) and np.array_equal(a["x"], b["x"][0])
    assert np.array_equal(a["w"], b["w"]) and np.array_equal(a["b"], b["b"])
    assert c.output_shape == (3, 4, 4) and ops.expected(c, a).shape == c.output_shape
    assert "x(2, 5, 4)" in c.describe() and c.describe().endswith("unbatched (no N axis)")


def test_max_unpool_drops_n_from_values_and_indices():
    c = Case("max_unpool", 1, 2, 2, (6, 4), (2, 2), stride=(2, 2), unbatched=True, seed=1)
    a = c.arrays("float32")
    assert a["y"].shape == a["indices"].shape == (2, 3, 2) and a["indices"].dtype == np.int64
    assert ops.expected(c, a).shape == c.output_shape == (2, 6, 4)


@pytest.mark.parametrize("case", [Case("conv", 2, unbatched=True), Case("conv_grad_input", unbatched=True)])
def test_unbatched_needs_one_sample_and_an_op_that_takes_it(case):
    with pytest.raises(ConvParamError, match="unbatched=True"):
        case.validate()
    assert not case.is_valid()


def test_targets_opt_in():
    # the canonical signature is batched: a target that does not declare unbatched never receives such a case
    assert not ALL.unbatched and not ALL.admits(Case("conv", unbatched=True))
    assert ALL.project(Case("conv", unbatched=True)) == Case("conv")
    assert not any(c.unbatched for c in catalogue("conv", 2))


@pytest.mark.parametrize("op", [r.name for r in registry.records() if r.unbatched])
def test_the_catalogue_has_unbatched_cases_for_every_op_that_takes_them(op):
    cat = catalogue(op, 2, ALL.replace(unbatched=True))
    unb = [c for c in cat if c.unbatched]
    assert any(not c.expect_refusal for c in unb) and any(c.expect_refusal for c in unb)
    assert all(c.n == 1 for c in unb)
    assert coverage(cat)["features"]["unbatched"] == sum(not c.expect_refusal for c in unb)
    if op == "conv":
        assert any(c.padding_mode != "zeros" for c in unb)


def test_the_reproduction_shows_the_unbatched_call():
    from refconv.conformance.report import repro

    c = Case("conv", 1, 2, 2, (5,), (3,), padding=((2, 1),), padding_mode="reflect", values="small", unbatched=True)
    src = repro(get("refconv.fast"), "conv", c, "float64")
    assert ".reshape((2, 5))" in src
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(src, {})  # noqa: S102 - the reproduction runs as written
    assert float(out.getvalue()) == 0.0


# --------------------------------------------------------------------------- checked


@pytest.mark.parametrize("target", ["refconv.fast", "torch"])
@pytest.mark.parametrize("op", ["conv", "max_pool_indices", "max_unpool"])
def test_unbatched_catalogue_cases_pass(target, op):
    from refconv.conformance import bounds
    from refconv.conformance.engine import Runner

    if target == "torch":
        pytest.importorskip("torch")
    t = get(target)
    caps = t.capabilities(op, 1, "float32")
    assert caps.unbatched
    runner = Runner(t, op, "float32", bounds.profile("float32"))
    cases = [c for c in catalogue(op, 1, caps) if c.unbatched]
    assert len(cases) >= 3
    for c in cases:
        out = runner.evaluate(c)
        assert out.ok, (c.describe(), out.kind, out.message)
