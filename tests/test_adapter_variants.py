"""Adapters exercise the library's own API paths as named variants, and never route around its bugs."""

import numpy as np
import pytest

from refconv import oracle
from refconv.conformance import check, divergences
from refconv.conformance.cases import Case

ort = pytest.importorskip("onnxruntime")
from refconv.conformance.adapters import onnx_adapter  # noqa: E402


def _ints(shape, seed=0):
    return np.random.default_rng(seed).integers(-3, 4, size=shape).astype(np.float32)


@pytest.mark.parametrize("name", onnx_adapter.VARIANTS)
def test_every_onnx_variant_builds_and_computes_a_plain_case_exactly(name):
    f = onnx_adapter.make(name).function("conv")
    x, w = _ints((1, 2, 5, 4)), _ints((3, 2, 2, 3), 1)
    got = f(x, w, None, stride=(1, 1), padding=((1, 0), (1, 1)), dilation=(1, 1), groups=1)
    assert np.array_equal(got, oracle.conv(x, w, padding=((1, 0), (1, 1))))


def test_conv_transpose_auto_pad_is_sent_and_agrees_with_the_definition(monkeypatch):
    sent = []
    real = onnx_adapter.run_node
    monkeypatch.setattr(onnx_adapter, "run_node", lambda *a, **k: sent.append(k.get("auto_pad")) or real(*a, **k))
    f = onnx_adapter.make("onnxruntime").function("conv_transpose")
    x, w = _ints((1, 1, 3)), _ints((1, 1, 3), 2)
    for pads, mode in ((((0, 1),), "SAME_UPPER"), (((1, 0),), "SAME_LOWER")):
        got = f(x, w, None, stride=(2,), padding=pads, output_padding=(0,), dilation=(1,), groups=1)
        assert np.array_equal(got, oracle.conv_transpose(x, w, stride=2, padding=pads))
        assert sent[-1] == mode


def test_onnx_same_with_a_stride_beyond_the_window_is_found_not_routed_around():
    # the case is SAME by the definition (ceil(8/4) = 2 windows, no padding): the adapter sends auto_pad SAME_UPPER
    case = Case("avg_pool", spatial=(8,), kernel=(1,), stride=(4,), values="small")
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 1, 8)
    kw = dict(stride=case.stride, padding=case.padding, ceil_mode=False, count_include_pad=True)
    assert onnx_adapter.padding_attrs(case.padding, case.spatial, case.kernel, case.stride, (1,)) == {"auto_pad": "SAME_UPPER"}
    want = oracle.avg_pool(x, case.kernel, **kw)
    assert not np.array_equal(onnx_adapter.make("onnxruntime").function("avg_pool")(x, case.kernel, **kw), want)
    assert np.array_equal(onnx_adapter.make("onnxruntime.explicit").function("avg_pool")(x, case.kernel, **kw), want)
    known = divergences.find("onnxruntime", case, divergences.load())
    assert [d.id for d in known] == ["ort-same-negative-total"]


def test_a_known_divergence_explains_only_the_cases_its_predicate_names():
    entries = divergences.load()
    same = Case("conv", spatial=(8,), kernel=(1,), stride=(4,))
    other = Case("conv", spatial=(8,), kernel=(3,), stride=(1,), padding=((2, 0),))
    assert [d.id for d in divergences.find("onnxruntime.opset11", same, entries)] == ["ort-same-negative-total"]
    assert divergences.find("onnxruntime", other, entries) == []
    assert divergences.find("torch", same, entries) == []
    assert divergences.find("onnxruntime.explicit", same, entries) == []


def test_divergence_files_are_validated(tmp_path):
    from refconv.params import ConvParamError

    bad = tmp_path / "d.json"
    bad.write_text('{"divergences": [{"target": "x", "reason": "r", "when": "nonsense"}]}')
    with pytest.raises(ConvParamError, match="when='nonsense'"):
        divergences.load(bad)
    with pytest.raises(ConvParamError, match="cannot read"):
        divergences.load(tmp_path / "missing.json")
    good = tmp_path / "g.json"
    good.write_text('{"divergences": [{"target": "mylib", "op": "conv", "reason": "r"}]}')
    (entry,) = divergences.load(good, packaged=False)
    assert entry.explains("mylib", Case("conv")) and not entry.explains("mylib", Case("max_pool"))


torch = pytest.importorskip("torch")
from refconv.conformance.adapters import torch_adapter  # noqa: E402


def _record(monkeypatch, name):
    seen = []
    real = getattr(torch.nn.functional, name)

    def spy(*args, **kwargs):
        seen.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, name, spy)
    return seen


def test_channels_last_variant_passes_channels_last_tensors(monkeypatch):
    seen = _record(monkeypatch, "conv2d")
    f = torch_adapter.make("torch.channels_last").function("conv")
    x, w, b = _ints((2, 3, 5, 4)), _ints((4, 3, 2, 2), 1), _ints((4,), 2)
    got = f(x, w, b, stride=(1, 2), padding=((1, 1), (0, 0)), dilation=(1, 1), groups=1)
    assert np.array_equal(got, oracle.conv(x, w, b, stride=(1, 2), padding=((1, 1), (0, 0))))
    tx, tw = seen[-1][0][:2]
    assert tx.is_contiguous(memory_format=torch.channels_last) and not tx.is_contiguous()
    assert tw.is_contiguous(memory_format=torch.channels_last)
    assert torch_adapter.make("torch.channels_last").capabilities("conv", 1, "float32").dims == (2, 3)


def test_strings_variant_uses_the_padding_strings(monkeypatch):
    seen = _record(monkeypatch, "conv1d")
    f = torch_adapter.make("torch.strings").function("conv")
    x, w = _ints((1, 1, 6)), _ints((1, 1, 4), 1)
    for pads, word in ((((0, 0),), "valid"), (((1, 2),), "same")):
        got = f(x, w, None, stride=(1,), padding=pads, dilation=(1,), groups=1)
        assert np.array_equal(got, oracle.conv(x, w, padding=pads))
        assert seen[-1][0][4] == word


@pytest.mark.parametrize("name", torch_adapter.VARIANTS)
def test_torch_variants_conform_on_every_op(name):
    for op in ("conv", "conv_transpose", "max_pool", "avg_pool", "conv_grad_input", "conv_grad_weight"):
        r = check(torch_adapter.make(name), op=op, dims=2, seed=0, max_examples=10)
        assert r.ok, str(r)


@pytest.mark.parametrize("op", ["conv", "avg_pool", "max_pool"])
def test_the_catalogue_reaches_onnx_same_with_a_negative_total(op):
    # the catalogue alone (no exploration) sends a case that is 'same' by the definition with stride > window
    r = check("onnxruntime", op=op, dims=1, seed=0, max_examples=0, allow_known=True)
    assert r.verdict == "PASS" and "ort-same-negative-total" in r.accepted_known, str(r)
