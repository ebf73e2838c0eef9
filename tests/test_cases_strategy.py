"""One case model: the engine explores with the hypothesis strategy refconv.conformance.strategies.cases.

Every choice of an explored case is a hypothesis draw, so hypothesis shrinks it
to the simplest case with the property; the same model drawn with a
random.Random (random_case) keeps the weights; the same seed explores the same
cases; a failure found while exploring is shrunk by hypothesis, then by the
engine's shrinker.
"""

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import seed as hseed

from refconv.conformance import check, engine, registry, strategies
from refconv.conformance.cases import ALL, Case, Draws, RandomChooser, draw_case, random_case
from refconv.oracle import conv as oracle_conv

NO_DB = settings(database=None, max_examples=1000)


def test_the_strategy_shrinks_to_the_simplest_case_with_the_property():
    c = find(strategies.cases("conv", 2, ALL), lambda c: c.kernel[0] >= 3, settings=NO_DB)
    # kernel 3 on the first axis; every other choice at its first option: no padding, stride, dilation, groups,
    # bias, one sample and channel, one output per axis, normal values of seed 0, contiguous memory, zeros padding
    assert c == Case("conv", n=1, cin=1, cout=1, spatial=(3, 1), kernel=(3, 1), seed=0)
    pool = find(strategies.cases("avg_pool", 1, ALL), lambda c: c.ceil_mode and c.divisor_override, settings=NO_DB)
    assert pool == Case("avg_pool", spatial=(1,), kernel=(1,), ceil_mode=True, divisor_override=1, seed=0)


def test_the_strategy_draws_within_the_capabilities_without_rejecting():
    caps = ALL.replace(stride=False, groups=False, padding=frozenset({"symmetric"}), batch=False)
    c = find(strategies.cases("conv", 1, caps), lambda c: c.padding[0][0] >= 2 and c.cin >= 2, settings=NO_DB)
    assert c == Case("conv", spatial=(1,), kernel=(1,), padding=((2, 2),), cin=2, seed=0)
    # the transposed convolution's padding is drawn below its full output: nothing to reject
    rng = random.Random(0)
    assert all(ALL.supports(random_case("conv_transpose", 3, ALL, rng)) for _ in range(300))


@pytest.mark.parametrize("op", registry.names())
def test_every_registered_op_is_drawn(op):
    drawn = []

    @settings(database=None, max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategies.cases(op, 2, ALL))
    def draw(c):
        drawn.append(c)

    draw()
    assert drawn and all(c.op == op and c.label == "explored" and ALL.supports(c) for c in drawn)


def test_random_case_is_the_same_model_with_a_random_chooser():
    a = random_case("conv", 2, ALL, random.Random(5))
    assert a == draw_case("conv", 2, ALL, RandomChooser(random.Random(5)))
    assert a != random_case("conv", 2, ALL, random.Random(6))


def _drawn_with_hypothesis(op, dims, caps, n, seed):
    out = []

    @hseed(seed)
    @settings(max_examples=n, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategies.cases(op, dims, caps))
    def draw(c):
        out.append(c)

    draw()
    return out


def test_the_weights_survive_hypothesis():
    """Weighted choices are drawn by hypothesis in small whole units: their shares stay near RandomChooser's."""
    hyp = _drawn_with_hypothesis("conv", 2, ALL, 600, seed=1)
    rng = random.Random(1)
    rnd = [random_case("conv", 2, ALL, rng) for _ in range(600)]

    def shares(cs):
        return np.array([np.mean([f(c) for c in cs]) for f in (
            lambda c: c.kernel[0] > 1, lambda c: c.stride[0] > 1, lambda c: c.groups > 1, lambda c: c.bias,
            lambda c: c.n > 1, lambda c: c.values == "dyadic", lambda c: c.layout != "contiguous")])

    # hypothesis adds its own share of simplest draws (zeros): within 0.2 of every share, never the other way round
    assert np.all(np.abs(shares(hyp) - shares(rnd)) < 0.2), (shares(hyp), shares(rnd))


def _good(x, w, b, *, stride, padding, dilation, groups):
    return oracle_conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _explored(monkeypatch, seed, max_examples=12):
    """The explored cases of one check of a correct target, and the capabilities the engine drew them within."""
    seen, drawn_with = [], []
    real_evaluate, real_cases = engine.Runner.evaluate, engine.cases

    def evaluate(self, case):
        if case.label == "explored":
            seen.append(case)
        return real_evaluate(self, case)

    def cases(op, dims, caps):
        drawn_with.append((op, dims, caps))
        return real_cases(op, dims, caps)

    with monkeypatch.context() as mp:
        mp.setattr(engine.Runner, "evaluate", evaluate)
        mp.setattr(engine, "cases", cases)
        r = check(_good, dims=1, max_examples=max_examples, seed=seed)
    assert r.ok and r.explored_cases == len(seen) == max_examples
    return seen, drawn_with


def test_the_engine_explores_with_the_exported_strategy(monkeypatch):
    assert engine.cases is strategies.cases and isinstance(Draws, type)
    seen, drawn_with = _explored(monkeypatch, seed=3)
    [(op, dims, caps)] = drawn_with
    # exactly the cases hypothesis draws from strategies.cases under the same seed: no second model
    assert seen == _drawn_with_hypothesis(op, dims, caps, len(seen), seed=3)


def test_the_same_seed_explores_the_same_cases(monkeypatch):
    first, _ = _explored(monkeypatch, seed=11)
    again, _ = _explored(monkeypatch, seed=11)
    other, _ = _explored(monkeypatch, seed=12)
    assert first == again and first != other


def test_an_explored_failure_is_shrunk_by_hypothesis_then_by_the_engine(monkeypatch):
    def grouped_wrong(x, w, b, *, stride, padding, dilation, groups):
        y = _good(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        return y + 1 if groups > 1 else y

    monkeypatch.setattr(engine, "catalogue", lambda op, dims, caps: [])  # only the exploration can find it
    calls = []
    real = engine.Runner.evaluate
    monkeypatch.setattr(engine.Runner, "evaluate", lambda self, c: calls.append(c) or real(self, c))
    r = check(grouped_wrong, dims=2, max_examples=100, seed=0, diagnose=False)
    assert not r.ok and r.failure.kind == "value" and r.explored_cases <= 100
    assert r.failure.case == Case("conv", cin=2, cout=2, groups=2, spatial=(1, 1), kernel=(1, 1), seed=0, values="small")
    assert r.failure.original != r.failure.case.describe()  # the case as explored, before any shrinking
    # hypothesis' share of the calls stays within its budget (each distinct case judged once)
    assert len(calls) - r.explored_cases - r.failure.shrink_steps <= engine.EXPLORE_SHRINK_CALLS + 150
