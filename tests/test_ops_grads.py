"""Gradients and unpooling as checked ops: conv_grad_bias, conv_transpose_grad_input/weight, max_pool_grad,
avg_pool_grad, max_unpool; their fast versions, the torch adapter, tests/broken entries, PyTorch's divergence."""

import subprocess
import sys

import numpy as np
import pytest

from refconv import fast, oracle
from refconv.conformance import check, ops, registry
from refconv.conformance.cases import Case, catalogue
from refconv.conformance.divergences import load
from refconv.params import ConvParamError

NEW = ("conv_grad_bias", "conv_transpose_grad_input", "conv_transpose_grad_weight", "max_pool_grad", "avg_pool_grad",
       "max_unpool")


@pytest.mark.parametrize("op", NEW)
@pytest.mark.parametrize("target", ["refconv.fast", "refconv.oracle"])
def test_refconv_engines_pass(op, target):
    for dims in (1, 2, 3):
        r = check(target, op=op, dims=dims, dtype="float64", max_examples=5, seed=dims)
        assert r.verdict == "PASS", str(r)
        assert r.catalogue_cases > 20


@pytest.mark.parametrize("op", [op for op in NEW if op != "avg_pool_grad"])  # (the divisions of avg_pool_grad round)
def test_fast_is_exact_on_integers(op):
    # every catalogue case with small integers: sums exact in float64, so the fast engine equals the oracle
    for dims in (1, 2):
        for c in catalogue(op, dims):
            if c.expect_refusal:
                continue
            a = {k: v if v.dtype.kind in "iu" else np.rint(v * 3) for k, v in c.arrays("float64").items()}
            if op == "max_unpool":
                a = c.arrays("float64")  # y and its indices come together
            want, got = ops.expected(c, a), ops.expected(c, a, approximate=True)
            assert got.shape == want.shape and np.array_equal(got, want), c.describe()


def test_the_gradients_are_registered_with_their_forward_ops():
    assert registry.get("conv").grad_ops == ("conv_grad_input", "conv_grad_weight", "conv_grad_bias")
    assert registry.get("conv_transpose").grad_ops == ("conv_transpose_grad_input", "conv_transpose_grad_weight")
    assert registry.get("max_pool").grad_ops == ("max_pool_grad",)
    assert registry.get("avg_pool").grad_ops == ("avg_pool_grad",)


# --------------------------------------------------------------------------- the transposed convolution's gradients


@pytest.mark.parametrize("stride,dilation,output_padding", [(1, 2, 1), (2, 3, 2), (1, 3, 2), (2, 1, 1), (3, 2, 2)])
def test_transposed_gradients_are_the_adjoints(stride, dilation, output_padding):
    # <conv_transpose(x, w), dy> = <x, grad_input(dy)> = <w, grad_weight(x, dy)>, exactly on integers
    rng = np.random.default_rng(stride * 10 + dilation)
    x = rng.integers(-3, 4, (2, 4, 5, 3)).astype(np.int64)
    w = rng.integers(-3, 4, (4, 3, 2, 3)).astype(np.int64)
    kw = dict(stride=stride, padding=1, dilation=dilation, output_padding=output_padding, groups=2)
    y = oracle.conv_transpose(x, w, **kw)
    dy = rng.integers(-3, 4, y.shape).astype(np.int64)
    gi = oracle.conv_transpose_grad_input(dy, w, **kw)
    gw = oracle.conv_transpose_grad_weight(x, dy, w.shape, **kw)
    assert gi.shape == x.shape and gw.shape == w.shape
    assert (y * dy).sum() == (x * gi).sum() == (w * gw).sum()
    assert np.array_equal(fast.conv_transpose_grad_input(dy.astype(float), w.astype(float), **kw), gi)
    assert np.array_equal(fast.conv_transpose_grad_weight(x.astype(float), dy.astype(float), w.shape, **kw), gw)


def test_output_padding_at_least_the_stride_cuts_the_trailing_outputs():
    # stride 1, dilation 2, output_padding 1: y has one more sample; its adjoint is x's length, not one more
    y = oracle.conv_transpose(np.ones((1, 1, 3)), np.ones((1, 1, 2)), dilation=2, output_padding=1)
    assert y.shape == (1, 1, 6)
    assert oracle.conv_transpose_grad_input(np.ones(y.shape), np.ones((1, 1, 2)), dilation=2, output_padding=1).shape == (1, 1, 3)
    assert oracle.conv_transpose_grad_weight(np.ones((1, 1, 3)), np.ones(y.shape), (1, 1, 2), dilation=2,
                                             output_padding=1).tolist() == [[[3.0, 3.0]]]


@pytest.mark.parametrize("fn", [oracle.conv_transpose_grad_input, fast.conv_transpose_grad_input])
def test_output_padding_not_below_stride_or_dilation_is_refused(fn):
    with pytest.raises(ConvParamError, match=r"output_padding=\(2,\): must be smaller than the stride"):
        fn(np.ones((1, 1, 6)), np.ones((1, 1, 2)), stride=2, dilation=1, output_padding=2)


# --------------------------------------------------------------------------- pooling gradients and unpooling


def test_max_pool_grad_magnitude_keeps_x_signed():
    # the bound's magnitude is the gradient of |dy| routed by x itself: |x| would choose another element
    c = Case("max_pool_grad", spatial=(2,), kernel=(2,), values="small")
    a = {"dy": np.array([[[-2.0]]]), "x": np.array([[[-5.0, 1.0]]])}
    assert ops.magnitude(c, a).tolist() == [[[0.0, 2.0]]]


def test_unpool_inputs_are_max_pooled_values_and_indices():
    c = Case("max_unpool", n=2, cin=3, cout=3, spatial=(7, 6), kernel=(3, 2), stride=(2, 1), padding=((1, 1), (1, 1)),
             values="positive")  # (positive: the zeros between the maxima never win when pooled again)
    a = c.arrays("float32")
    assert a["indices"].dtype == np.int64 and a["y"].dtype == np.float32
    # unpooling then pooling again gives y back, with the same indices
    x = oracle.max_unpool(a["y"], a["indices"], c.kernel, stride=c.stride, padding=c.padding, output_size=c.spatial)
    y, i = oracle.max_pool(x.astype(np.float64), c.kernel, stride=c.stride, padding=c.padding, return_indices=True)
    assert np.array_equal(i, a["indices"]) and np.array_equal(y, a["y"])


@pytest.mark.parametrize("fn", [oracle.max_unpool, fast.max_unpool])
def test_max_unpool_refuses_what_it_cannot_place(fn):
    y, i = np.ones((1, 1, 2)), np.array([[[0, 3]]])
    with pytest.raises(ConvParamError, match=r"output_size=7: must lie in \[3, 5\]"):
        fn(y, i, 2, output_size=7)
    with pytest.raises(ConvParamError, match=r"indices\[0, 0, 1\]=4: outside the unpooled plane of 4"):
        fn(y, np.array([[[0, 4]]]), 2)
    with pytest.raises(ConvParamError, match="indices must be integers"):
        fn(y, i.astype(float), 2)


def test_empty_batch_unpools_to_an_empty_batch():
    y, i = np.zeros((0, 2, 3)), np.zeros((0, 2, 3), np.int64)
    assert fast.max_unpool(y, i, 2).shape == oracle.max_unpool(y, i, 2).shape == (0, 2, 6)


# --------------------------------------------------------------------------- tests/broken entries


def _entries():
    from broken.new_ops import GRAD_BROKEN, GRAD_CORRECT

    return [(d, True) for d in GRAD_BROKEN] + [(d, False) for d in GRAD_CORRECT]


@pytest.mark.parametrize("entry,broken", _entries(), ids=[d["name"] for d, _ in _entries()])
def test_broken_and_correct_implementations_are_classified(entry, broken):
    r = check(entry["fn"], op=entry["op"], dims=entry.get("dims", 2), dtype=entry.get("dtype", "float32"), seed=0)
    if not broken:
        assert r.ok, str(r)
        return
    assert not r.ok and r.failure.kind == "value", str(r)
    assert entry["diagnosis"] in " ".join(r.failure.diagnosis), r.failure.diagnosis


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("op", NEW)
def test_torch_passes(op):
    pytest.importorskip("torch")
    r = check("torch", op=op, dims=2, dtype="float32", max_examples=3, seed=0)  # the whole catalogue, 2-D
    assert r.verdict == "PASS", str(r)


_LEAK = """
import os, torch
import torch.nn.functional as F
# one window (dilation 3, padding 1) reads padded positions -1 and 2 of a 2-sample input: padding only
x = torch.tensor([[[2.0, 0.0], [-1.0, -1.0]]]).requires_grad_(True)
y = F.max_pool1d(x, 2, 1, 1, 3)
g, = torch.autograd.grad(y, x, torch.tensor([[[1.0], [10.0]]]))
print(g.tolist(), flush=True)
os._exit(0)  # before the heap, written past the gradient tensor, is touched again
"""


def test_torch_max_pool_grad_of_a_padding_only_window_is_written_past_its_plane():
    pytest.importorskip("torch")
    x = np.array([[[2.0, 0.0], [-1.0, -1.0]]])
    assert oracle.max_pool_grad(np.array([[[1.0], [10.0]]]), x, 2, stride=1, padding=1, dilation=3).tolist() == \
        [[[0.0, 0.0], [0.0, 0.0]]]
    out = subprocess.run([sys.executable, "-c", _LEAK], capture_output=True, text=True, timeout=120)
    # today's PyTorch: channel 0's gradient lands on channel 1's first element (channel 1's past the tensor)
    assert out.stdout.strip() == "[[[0.0, 0.0], [1.0, 0.0]]]", (out.returncode, out.stdout, out.stderr[-500:])
    # the divergence is recorded, and the torch adapter declares the cases instead of corrupting its process
    d = [e for e in load() if e.id == "torch-maxpool-grad-window-in-padding"]
    c = Case("max_pool_grad", n=1, cin=2, spatial=(2,), kernel=(2,), padding=((1, 1),), dilation=(3,))
    assert d and d[0].explains("torch", c)
    from refconv.conformance import adapters

    assert not adapters.get("torch").capabilities("max_pool_grad", 1, "float32").admits(c)


@pytest.mark.parametrize("op", [op for op in NEW if op != "max_unpool"])
def test_jax_passes_through_vjp(op):
    pytest.importorskip("jax")
    # XLA on the CPU flushes subnormals (a recorded divergence): everything else is checked strictly
    r = check("jax", op=op, dims=2, dtype="float32", precision="float32-ftz", max_examples=3, seed=0)
    assert r.verdict == "PASS", str(r)


def test_onnxruntime_max_unpool_passes_and_takes_any_output_shape():
    pytest.importorskip("onnxruntime")
    r = check("onnxruntime", op="max_unpool", dims=2, dtype="float32", max_examples=3, seed=0)
    assert r.verdict == "PASS", str(r)
    from refconv.conformance.adapters.onnx_adapter import run_node

    # ONNX pads to any output_shape; the definition (PyTorch's) refuses one more than a stride past the default
    y = run_node("MaxUnpool", [np.array([[[7.0, 9.0]]], np.float32), np.array([[[1, 2]]]), np.array([1, 1, 7])],
                 opset=11, kernel_shape=[2], strides=[2], pads=[0, 0])
    assert y.tolist() == [[[0.0, 7.0, 9.0, 0.0, 0.0, 0.0, 0.0]]]
    with pytest.raises(ConvParamError, match="output_size=7"):
        oracle.max_unpool(np.array([[[7.0, 9.0]]]), np.array([[[1, 2]]]), 2, output_size=7)
