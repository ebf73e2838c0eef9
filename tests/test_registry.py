"""The registry of operations: complete, read by the suite, documented; third-party adapters; function sizes."""

import ast
import importlib.metadata
import pathlib

import pytest

from refconv import fast, oracle
from refconv.conformance import adapters, registry
from refconv.conformance.cases import OPS, Case, catalogue
from refconv.conformance.targets import is_adapter, not_offered_reason, resolve
from refconv.params import ConvParamError

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "example_adapter"


def test_every_op_has_a_complete_record():
    assert set(OPS) == set(registry.names()) and OPS
    for rec in registry.records():
        # the oracle's own function, or the exact function of its own module (quantized ops), or (an op with
        # indices) the canonical call of it in conformance.ops: named as the op, inside refconv
        fn = rec.oracle_function()
        assert fn is getattr(oracle, rec.name, None) or (fn.__name__ == rec.name and fn.__module__.startswith("refconv."))
        assert rec.fast_function() is getattr(fast, rec.name)
        assert rec.bound in ("abs", "max") and rec.bound_modes()
        assert rec.adapters and set(rec.adapters) <= set(adapters.FAMILIES)
        for g in rec.grad_ops:
            assert registry.get(g).grad_of == rec.name
        for dims in (1, 2, 3):
            cases = catalogue(rec.name, dims)
            # refusal cases wherever the canonical call can carry a configuration the definition rejects
            assert any(not c.expect_refusal for c in cases) and any(c.expect_refusal for c in cases) == rec.refuses
        assert rec.build_candidates(catalogue(rec.name, 2)[0])


def test_the_oracle_functions_of_the_checked_ops_are_all_registered():
    # every function of the oracle that takes a case's canonical arrays is a registered op
    for name in ("conv", "conv_transpose", "conv_grad_input", "conv_grad_weight", "max_pool", "avg_pool", "lp_pool",
                 "adaptive_avg_pool", "adaptive_max_pool", "conv_grad_bias", "conv_transpose_grad_input",
                 "conv_transpose_grad_weight", "max_pool_grad", "avg_pool_grad", "max_unpool"):
        assert registry.get(name).oracle == f".oracle:{name}"
    # max pooling with indices: max_pool(..., return_indices=True)
    assert registry.get("max_pool_indices").oracle_function().__doc__.startswith("The exact ``max_pool(")


def test_the_declared_adapter_families_offer_the_op():
    # the capabilities are declared without importing the library: every family can be asked
    for rec in registry.records():
        for family in adapters.FAMILIES:
            t = adapters.get(family)
            caps = t.capabilities(rec.name, 2, "float64")
            offered = rec.name in caps.ops
            # an op whose library does not load here (torchvision) is declared with its reason instead
            unavailable = bool(not_offered_reason(caps, rec.name))
            assert offered == (family in rec.adapters) or (unavailable and family in rec.adapters), (family, rec.name)


def test_an_unknown_op_is_named():
    with pytest.raises(ConvParamError, match="op='deconv': ops are 'conv'"):
        registry.get("deconv")
    with pytest.raises(ConvParamError, match="op='deconv'"):
        Case("deconv")


def test_a_registered_op_reaches_the_case_model_through_its_record(monkeypatch):
    # a new record is all the case model needs: the arrays, the call and the shapes come from it
    base = registry.get("conv")
    rec = registry.OpRecord(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, "name": "conv_copy"})
    monkeypatch.setitem(registry._REGISTRY, "conv_copy", rec)
    c = Case("conv_copy", spatial=(5,), kernel=(3,), bias=True)
    assert c.output_shape == (1, 1, 3) and sorted(c.arrays("float64")) == ["b", "w", "x"]
    assert c.describe().startswith("conv_copy(x(1, 1, 5), w(1, 1, 3), b(1,); stride=(1,)")


def test_the_docs_table_is_the_generated_one():
    text = (ROOT / "specs" / "conformance.md").read_text()
    start = text.index(registry.DOCS_BEGIN) + len(registry.DOCS_BEGIN)
    assert text[start:text.index(registry.DOCS_END)].strip() == registry.docs_table()


def test_write_docs_table_replaces_only_the_table(tmp_path):
    p = tmp_path / "doc.md"
    p.write_text(f"before\n{registry.DOCS_BEGIN}\nstale\n{registry.DOCS_END}\nafter\n")
    assert registry.write_docs_table(str(p)) is True
    assert p.read_text() == f"before\n{registry.DOCS_BEGIN}\n{registry.docs_table()}\n{registry.DOCS_END}\nafter\n"
    assert registry.write_docs_table(str(p)) is False


def _long_functions(root, limit):
    """Functions whose code (the signature and body, without the docstring) is over ``limit`` lines."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = node.body[0] if ast.get_docstring(node) is not None else None
                n = node.end_lineno - node.lineno + 1 - (doc.end_lineno - doc.lineno + 1 if doc else 0)
                if n > limit:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    return out


#: functions still over the limit, to be split (each entry names one; the list may only shrink)
_STILL_LONG = {"_functions"}  # the adapters' tables of canonical functions (one closure per op)


def test_no_function_in_conformance_is_over_60_lines():
    long = _long_functions(ROOT / "refconv" / "conformance", 60)
    assert [f for f in long if f.split(" ")[1] not in _STILL_LONG] == []


# --------------------------------------------------------------------------- third-party adapters


class _EP:
    """An entry point as importlib.metadata gives it (name, value, load)."""

    def __init__(self, name, value):
        self.name, self.value, self.group = name, value, adapters.ENTRY_POINT_GROUP

    def load(self):
        mod, _, attr = self.value.partition(":")
        return getattr(__import__(mod, fromlist=[attr]), attr)


@pytest.fixture
def example_registered(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    real = importlib.metadata.entry_points

    def entry_points(**kw):
        if kw.get("group") == adapters.ENTRY_POINT_GROUP:
            return [_EP("example-direct", "refconv_example_adapter:make")]
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    adapters._cache.pop("example-direct", None)
    yield
    adapters._cache.pop("example-direct", None)


def test_an_entry_point_adapter_is_found_by_name(example_registered):
    assert is_adapter("example-direct") and not is_adapter("example-other")
    t = resolve("example-direct")
    assert t.name == "example-direct" and t.capabilities("conv", 2, "float64").ops == ("conv",)


def test_a_broken_entry_point_is_named(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: [_EP("broken-one", "refconv_no_such_module:make")] if kw.get("group") else [])
    adapters._cache.pop("broken-one", None)
    with pytest.raises(adapters.TargetError, match="target='broken-one': the adapter registered as"):
        resolve("broken-one")


def test_an_entry_point_adapter_is_checked_end_to_end(example_registered):
    from refconv.conformance.engine import check

    report = check("example-direct", op="conv", dims=1, dtype="float64", max_examples=10, seed=0)
    assert report.verdict == "PASS", report
    assert report.cases > 10


def test_the_example_package_declares_its_entry_point():
    text = (EXAMPLE / "pyproject.toml").read_text()
    assert '[project.entry-points."refconv.adapters"]' in text
    assert 'example-direct = "refconv_example_adapter:make"' in text


# --------------------------------------------------------------------------- one case model


def test_the_engine_explores_with_the_exported_strategy():
    from refconv.conformance import engine, strategies

    assert engine.cases is strategies.cases


def test_hypothesis_shrinks_an_explored_case():
    from hypothesis import find, settings

    from refconv.conformance.strategies import cases

    c = find(cases("conv", 1), lambda c: c.stride[0] > 1, settings=settings(database=None, max_examples=500))
    # every other choice shrinks to its simplest: no padding, kernel 1, one sample and channel, contiguous
    assert (c.stride, c.kernel, c.padding, c.n, c.cin, c.cout, c.layout) == ((2,), (1,), ((0, 0),), 1, 1, 1, "contiguous")
