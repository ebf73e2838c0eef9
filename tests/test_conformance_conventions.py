"""specs/conventions.md: the generated framework table, and the divergences the suite found."""

import pathlib
import re

import numpy as np
import pytest

from refconv import oracle
from refconv.conformance import check
from refconv.conformance.cases import Case
from refconv.conformance.identify import adapter_fingerprints, framework_table, identify

SPEC = pathlib.Path(__file__).resolve().parent.parent / "specs" / "conventions.md"


def test_regenerating_the_table_gives_the_committed_one():
    text = SPEC.read_text()
    committed = re.search(r"<!-- identify:begin -->\n(.*?)\n<!-- identify:end -->", text, re.S).group(1)
    assert framework_table(adapter_fingerprints()) == committed


def test_identify_tells_conventions_apart():
    """Probes distinguish each convention on implementations built to follow the other one."""

    def flipped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)

    def dilation_from_zero(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=tuple(d + 1 for d in dilation), groups=groups)

    def swapped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=[(h, l) for l, h in padding], dilation=dilation, groups=groups)

    assert identify(flipped, ops=("conv",))["conv.kernel"] == "convolution (kernel flipped)"
    assert identify(dilation_from_zero, ops=("conv",))["conv.dilation"] == "counted from 0 (dilation 0 is dense)"
    assert identify(swapped, ops=("conv",))["conv.padding"] == "(hi, lo): sides swapped"

    def transpose_cout_first(x, w, b, *, stride, padding, output_padding, dilation, groups):
        return oracle.conv_transpose(x, np.swapaxes(w, 0, 1), b, stride=stride, padding=padding,
                                     output_padding=output_padding, dilation=dilation, groups=groups)

    fp = identify(transpose_cout_first, ops=("conv_transpose",))
    assert fp["conv_transpose.weight"] == "(C_out, C_in/groups, *K)"


def test_onnxruntime_max_pool_window_in_padding_is_a_known_divergence():
    from refconv.conformance.plugin import load_divergences

    r = check("onnxruntime.explicit", op="max_pool", dims=1, max_examples=0)
    assert r.failure.kind == "nonfinite" and r.failure.worst["expected"] == -np.inf
    assert r.failure.worst["actual"] == -np.finfo(np.float32).max
    assert any(d.target == "onnxruntime" and "max_pool" in d.ops and d.when == "window_in_padding"
               for d in load_divergences())
    assert r.failure.known and r.failure.known[0].startswith("ort-maxpool-window-in-padding")


def test_torch_pooling_restrictions_are_declared():
    torch = pytest.importorskip("torch")
    from refconv.conformance.adapters import get

    caps = get("torch").capabilities("max_pool", 1, "float32")
    legal = Case("max_pool", 1, 1, 1, (1,), (4,), padding=((3, 3),), dilation=(2,), stride=(1,))
    assert legal.is_valid() and not caps.supports(legal)
    with pytest.raises(RuntimeError, match="at most half of kernel size"):
        torch.nn.functional.max_pool1d(torch.ones(1, 1, 1), 4, stride=1, padding=3, dilation=2)
    caps3 = get("torch").capabilities("avg_pool", 3, "float32")
    small = Case("avg_pool", 1, 1, 1, (1, 1, 1), (1, 2, 1), padding=((0, 0), (1, 1), (0, 0)), stride=(1, 1, 1))
    assert small.is_valid() and not caps3.supports(small)


def test_numpy_same_mode_length():
    assert len(np.correlate([1.0, 2.0], [1.0, 1.0, 1.0], "same")) == 3
    assert oracle.correlate([1.0, 2.0], [1.0, 1.0, 1.0], "same").shape == (2,)


def test_onnxruntime_max_pool_same_ignores_dilation():
    from refconv.conformance.adapters.onnx_adapter import run_node

    x = np.arange(8, dtype=np.float32).reshape(1, 1, 8)
    expected = oracle.max_pool(x, 2, stride=2, dilation=2, padding="same_lower")
    explicit = run_node("MaxPool", [x], kernel_shape=[2], strides=[2], dilations=[2], pads=[1, 0])
    auto = run_node("MaxPool", [x], kernel_shape=[2], strides=[2], dilations=[2], auto_pad="SAME_LOWER")
    assert np.array_equal(explicit, expected) and expected.shape[-1] == 4  # ceil(8 / 2)
    assert auto.shape[-1] == 3
    # the diagnosis of the -inf case says what happened
    r = check("onnxruntime.explicit", op="max_pool", dims=1, max_examples=0)
    assert any("no input element" in d for d in r.failure.diagnosis)


def test_onnxruntime_negative_same_padding_in_pooling():
    from refconv.conformance.adapters.onnx_adapter import run_node

    x = np.array([[[1.0, -1.0, 2.0, 0.0, -1.0, -1.0]]], dtype=np.float32)
    expected = oracle.avg_pool(x, 1, stride=3, padding="same")
    assert np.array_equal(run_node("AveragePool", [x], kernel_shape=[1], strides=[3], auto_pad="SAME_LOWER"), expected)
    assert not np.array_equal(run_node("AveragePool", [x], kernel_shape=[1], strides=[3], auto_pad="SAME_UPPER"), expected)
    with pytest.raises(Exception, match="non-negative"):
        run_node("MaxPool", [x], kernel_shape=[1], strides=[3], auto_pad="SAME_UPPER")
    # the adapter sends SAME_UPPER there (it does not route around the bug): the check finds it, names the known
    # divergence, and accepts it only when asked; explicit pads conform
    from refconv.conformance.adapters import get

    f = get("onnxruntime").function("avg_pool")
    got = f(x, (1,), stride=(3,), padding=((0, 0),), ceil_mode=False, count_include_pad=True)
    assert not np.array_equal(got, expected)
    for seed in (11, 12):
        r = check("onnxruntime.explicit", op="avg_pool", dims=2, seed=seed, max_examples=150, allow_known=True)
        assert r.ok and set(r.accepted_known) <= {"ort-pool-window-beyond-input", "ort-avgpool-window-in-padding"}, str(r)
        r = check("onnxruntime", op="avg_pool", dims=2, seed=seed, max_examples=150, allow_known=True)
        assert r.ok and set(r.accepted_known) <= {"ort-same-negative-total", "ort-pool-window-beyond-input",
                                                  "ort-maxpool-same-dilation", "ort-avgpool-window-in-padding"}, str(r)


def test_onnxruntime_average_of_a_padding_only_window_is_0_not_nan():
    """Known divergence ort-avgpool-window-in-padding, pinned for the installed onnxruntime."""
    pytest.importorskip("onnxruntime")
    from refconv.conformance import divergences
    from refconv.conformance.adapters.onnx_adapter import run_node

    x = np.array([[[1.0]]], dtype=np.float32)
    y = run_node("AveragePool", [x], opset=19, kernel_shape=[2], strides=[1], pads=[1, 1], dilations=[2],
                 count_include_pad=0)
    assert y.tolist() == [[[0.0]]]
    assert np.isnan(oracle.avg_pool(x.astype(np.float64), 2, stride=1, padding=1, dilation=2,
                                    count_include_pad=False)).all()
    case = Case("avg_pool", spatial=(1,), kernel=(2,), stride=(1,), padding=((1, 1),), dilation=(2,),
                count_include_pad=False)
    found = divergences.find("onnxruntime.explicit", case, divergences.load())  # explicit pads (no auto_pad)
    assert [d.id for d in found] == ["ort-avgpool-window-in-padding"]
    # with the padding counted, the average of a padding-only window is 0 by definition too: not this divergence
    counted = Case("avg_pool", spatial=(1,), kernel=(2,), stride=(1,), padding=((1, 1),), dilation=(2,))
    assert "ort-avgpool-window-in-padding" not in [d.id for d in divergences.find("onnxruntime", counted,
                                                                                  divergences.load())]
