"""Convolution padding_mode (reflect, replicate, circular) as a checked keyword of conv and both gradients."""

import numpy as np
import pytest

from refconv import oracle
from refconv.conformance import check, ops
from refconv.conformance.cases import ALL, Case, catalogue
from refconv.params import ConvParamError

MODES = ("reflect", "replicate", "circular")


def test_the_catalogue_reaches_every_mode_and_its_limits():
    for op in ("conv", "conv_grad_input", "conv_grad_weight"):
        cases = catalogue(op, 2)
        assert {c.padding_mode for c in cases} == {"zeros", *MODES}
        assert any(c.expect_refusal and c.padding_mode == "reflect" for c in cases)
    # a target without the keyword is checked at 'zeros' only
    assert {c.padding_mode for c in catalogue("conv", 2, ALL.replace(padding_mode=False))} == {"zeros"}


def test_a_mode_is_passed_only_when_not_zeros():
    c = Case("conv", spatial=(5,), kernel=(3,), padding=((2, 1),), padding_mode="reflect")
    assert "padding_mode='reflect'" in ops.repro_call(c)
    assert "padding_mode" not in ops.repro_call(Case("conv", spatial=(5,), kernel=(3,)))
    with pytest.raises(ConvParamError, match="padding_mode='reflect' allows at most 4 per side"):
        Case("conv", spatial=(5,), kernel=(3,), padding=((5, 0),), padding_mode="reflect").validate()


@pytest.mark.parametrize("mode", MODES)
def test_gradients_accumulate_on_the_copied_samples(mode):
    # <conv(x), dy> = <x, grad_input(dy)> = <w, grad_weight(x, dy)>: the padded copies send their gradient home
    rng = np.random.default_rng(1)
    x, w = rng.integers(-3, 4, (2, 2, 5, 4)), rng.integers(-3, 4, (4, 1, 3, 2))
    kw = dict(stride=(2, 1), padding=((2, 1), (1, 1)), dilation=(1, 2), groups=2, padding_mode=mode)
    y = oracle.conv(x, w, **kw)
    dy = rng.integers(-3, 4, y.shape)
    gi = oracle.conv_grad_input(dy, w, x.shape, **kw)
    gw = oracle.conv_grad_weight(x, dy, w.shape, **kw)
    assert (y * dy).sum() == (x * gi).sum() == (w * gw).sum()


@pytest.mark.parametrize("op", ["conv", "conv_grad_input", "conv_grad_weight"])
def test_the_oracle_passes(op):
    assert check("refconv.oracle", op=op, dims=2, dtype="float64", max_examples=5, seed=0).verdict == "PASS"


@pytest.mark.parametrize("op", ["conv", "conv_grad_input", "conv_grad_weight"])
def test_torch_passes_with_its_modules_padding(op):
    pytest.importorskip("torch")
    r = check("torch", op=op, dims=2, dtype="float32", max_examples=5, seed=0)
    assert r.verdict == "PASS", str(r)
    assert "padding_mode" not in " ".join(r.skipped)


def _entries():
    from broken.new_ops import MODE_BROKEN, MODE_CORRECT

    return [(d, True) for d in MODE_BROKEN] + [(d, False) for d in MODE_CORRECT]


@pytest.mark.parametrize("entry,broken", _entries(), ids=[d["name"] for d, _ in _entries()])
def test_broken_and_correct_padding_modes_are_classified(entry, broken):
    r = check(entry["fn"], op=entry["op"], dims=entry.get("dims", 2), dtype=entry.get("dtype", "float32"), seed=0)
    if not broken:
        assert r.ok, str(r)
        return
    assert not r.ok and r.failure.case.padding_mode != "zeros", str(r)
    assert entry["diagnosis"] in " ".join(r.failure.diagnosis), r.failure.diagnosis
