"""The pooling operations of refconv.pooling against PyTorch (float64 CPU, integer-valued data) and ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv import exact, oracle, shapes
from refconv.params import ConvParamError
from refconv.pooling import onnx_indices

torch = pytest.importorskip("torch")
F = torch.nn.functional

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


@st.composite
def pool_case(draw, *, dilated=True, pad_limit=True):
    """A 1-D or 2-D pooling problem PyTorch accepts: padding at most half the kernel size."""
    nd = draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd)) if dilated else (1,) * nd
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    n = tuple(draw(st.integers(di * (ki - 1) + 1, 7)) for ki, di in zip(k, d))
    ceil = draw(st.booleans())
    seed = draw(st.integers(0, 2**31))
    # few distinct values: ties happen
    x = np.random.default_rng(seed).integers(-3, 4, size=(2, 2, *n)).astype(np.float64)
    return x, dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)


def _torch_pool(name, nd):
    return getattr(F, f"{name}{nd}d")


@SETTINGS
@given(pool_case())
def test_max_pool_values_and_indices_equal_pytorch(case):
    x, kw = case
    y, i = oracle.max_pool(x, **kw, return_indices=True)
    ty, ti = _torch_pool("max_pool", x.ndim - 2)(torch.from_numpy(x), **kw, return_indices=True)
    assert np.array_equal(y, ty.numpy()) and np.array_equal(i, ti.numpy())
    assert i.dtype == np.int64


@SETTINGS
@given(pool_case(), st.booleans())
def test_max_unpool_equals_pytorch(case, bigger):
    x, kw = case
    kw = {k: v for k, v in kw.items() if k in ("kernel_size", "stride", "padding")}
    y, i = oracle.max_pool(x, **kw, return_indices=True)
    default = tuple(shapes.max_unpool_output_size(n, k, s, p) for n, k, s, p in
                    zip(y.shape[2:], kw["kernel_size"], kw["stride"], kw["padding"]))
    # any size within one stride of the default that still holds every index
    size = tuple(max(dd + (s - 1 if bigger else 0), n) for dd, s, n in zip(default, kw["stride"], x.shape[2:]))
    if any(not dd - s < o < dd + s for dd, s, o in zip(default, kw["stride"], size)):
        return
    out = oracle.max_unpool(y, i, **kw, output_size=size)
    t = _torch_pool("max_unpool", x.ndim - 2)(torch.from_numpy(y), torch.from_numpy(i), **kw, output_size=size)
    assert np.array_equal(out, t.numpy())


@SETTINGS
@given(pool_case(dilated=False), st.booleans(), st.sampled_from([None, 1, 3, -2]))
def test_avg_pool_divisor_override_equals_pytorch(case, cip, div):
    x, kw = case
    kw.pop("dilation")
    if x.ndim == 3:
        # avg_pool1d has no divisor_override: the same problem in 2-D with a trailing axis of one
        x = x[..., None]
        kw = {k: (*v, 1 if k != "padding" else 0) if isinstance(v, tuple) else v for k, v in kw.items()}
    y = oracle.avg_pool(x, **kw, count_include_pad=cip, divisor_override=div)
    t = F.avg_pool2d(torch.from_numpy(x), **kw, count_include_pad=cip, divisor_override=div)
    # integer sums over small divisors: both are the correctly rounded quotient
    assert np.array_equal(y, t.numpy())


@SETTINGS
@given(st.integers(1, 2).flatmap(lambda nd: st.tuples(
    st.tuples(*[st.integers(1, 9)] * nd), st.tuples(*[st.integers(1, 6)] * nd))), st.integers(0, 2**31))
def test_adaptive_pools_equal_pytorch(sizes, seed):
    n, o = sizes
    x = np.random.default_rng(seed).integers(-3, 4, size=(2, 2, *n)).astype(np.float64)
    nd = len(n)
    y, i = oracle.adaptive_max_pool(x, o, return_indices=True)
    ty, ti = getattr(F, f"adaptive_max_pool{nd}d")(torch.from_numpy(x), o, return_indices=True)
    assert np.array_equal(y, ty.numpy()) and np.array_equal(i, ti.numpy())
    a = oracle.adaptive_avg_pool(x, o, exact=True)
    ta = getattr(F, f"adaptive_avg_pool{nd}d")(torch.from_numpy(x), o).numpy()
    # each bin's exact mean against PyTorch's float64 sum / count: within one rounding of the sum and one of the division
    bound = np.array([float(abs(v)) for v in a.flat]).reshape(a.shape) * 2 * 2.0**-53 * max(n) ** nd
    assert np.all(np.abs(np.vectorize(float)(a) - ta) <= bound)
    assert np.array_equal(oracle.adaptive_avg_pool(x, o), np.vectorize(float)(a))


def test_adaptive_bins_are_pytorchs_uneven_bins():
    x = np.arange(5.0).reshape(1, 1, 5)
    assert oracle.adaptive_max_pool(x, 3).tolist() == [[[1.0, 3.0, 4.0]]]  # bins [0,2) [1,4) [3,5)
    assert oracle.adaptive_avg_pool(x, 3, exact=True).tolist() == [[[exact.Fraction(1, 2), 2, exact.Fraction(7, 2)]]]
    assert oracle.global_max_pool(x).tolist() == [[[4.0]]] and oracle.global_avg_pool(x).tolist() == [[[2.0]]]


def test_windows_of_padding_only_are_defined():
    x = np.array([[[1.0, 2.0]]])
    # padding 2 > half of k=2: the first and last windows read padding only
    assert oracle.max_pool(x, 2, stride=1, padding=2).tolist() == [[[-np.inf, 1.0, 2.0, 2.0, -np.inf]]]
    assert oracle.max_pool(x, 2, stride=1, padding=2, return_indices=True)[1].tolist() == [[[-1, 0, 1, 1, -1]]]
    assert oracle.avg_pool(x, 2, stride=1, padding=2).tolist() == [[[0.0, 0.5, 1.5, 1.0, 0.0]]]
    y = oracle.avg_pool(x, 2, stride=1, padding=2, count_include_pad=False)
    assert np.isnan(y[0, 0, [0, 4]]).all() and y[0, 0, 1:4].tolist() == [1.0, 1.5, 2.0]
    with pytest.raises(ConvParamError, match="divides by 0"):
        oracle.avg_pool(x, 2, stride=1, padding=2, count_include_pad=False, exact=True)
    with pytest.raises(ConvParamError, match="integer inputs cannot represent"):
        oracle.max_pool(np.array([[[1, 2]]]), 2, stride=1, padding=2)


def test_avg_pool_dilation_is_a_spaced_window():
    x = np.array([[[1, 2, 3, 4, 6]]])
    # taps p, p + 2: means of (1, 3), (2, 4), (3, 6)
    assert oracle.avg_pool(x, 2, stride=1, dilation=2).tolist() == [[[2.0, 3.0, 4.5]]]
    g = oracle.avg_pool_grad(np.array([[[2, 4, 6]]]), (1, 1, 5), 2, stride=1, dilation=2)
    assert g.tolist() == [[[1.0, 2.0, 4.0, 2.0, 3.0]]]


def test_max_unpool_last_write_wins_and_refuses_bad_indices():
    assert oracle.max_unpool(np.array([[[1, 2]]]), np.array([[[3, 3]]]), 2).tolist() == [[[0, 0, 0, 2]]]
    with pytest.raises(ConvParamError, match=r"indices\[0, 0, 0\]=-1"):
        oracle.max_unpool(np.array([[[1, 2]]]), np.array([[[-1, 3]]]), 2)
    with pytest.raises(ConvParamError, match="output_size"):
        oracle.max_unpool(np.array([[[1, 2]]]), np.array([[[0, 3]]]), 2, output_size=9)


@SETTINGS
@given(pool_case(dilated=False), st.sampled_from([1, 2, 3]))
def test_lp_pool_is_the_correctly_rounded_norm(case, p):
    x, kw = case
    kw.pop("dilation")
    y = oracle.lp_pool(x, p, **kw)
    # reference: the exact window sums of |x|**p (avg_pool with divisor 1), then the correctly rounded root
    sums = oracle.avg_pool(np.abs(x) ** p, **kw, divisor_override=1)
    ref = np.vectorize(lambda v: exact.round_root(int(v), 1, p, exact.FORMATS["float64"]))(sums)
    assert np.array_equal(y, ref)


def test_lp_pool_differs_from_pytorch_where_stated():
    x = np.array([[[1.0, -2.0, 3.0]]])
    # odd p: PyTorch sums x**p with its sign, the norm sums |x|**p
    assert oracle.lp_pool(x, 1, 2, stride=1).tolist() == [[[3.0, 5.0]]]
    assert F.lp_pool1d(torch.from_numpy(x), 1, 2, stride=1).tolist() == [[[-1.0, 1.0]]]
    # ceil_mode: PyTorch scales a window cut short to the full window (avg_pool * k)
    x = np.array([[[3.0, 4.0, 2.0]]])
    assert oracle.lp_pool(x, 2, 2, ceil_mode=True).tolist() == [[[5.0, 2.0]]]
    assert F.lp_pool1d(torch.from_numpy(x), 2, 2, ceil_mode=True).tolist() == [[[5.0, 2.0 * 2**0.5]]]


def test_lp_pool_even_p_equals_pytorch_without_ceil_mode():
    x = np.random.default_rng(1).integers(-3, 4, size=(2, 3, 6, 5)).astype(np.float64)
    y = oracle.lp_pool(x, 2, (2, 3), stride=(1, 2))
    t = F.lp_pool2d(torch.from_numpy(x), 2, (2, 3), stride=(1, 2)).numpy()
    # PyTorch rounds the mean, the product by 6 and the square root: three roundings of a value near y
    assert np.all(np.abs(y - t) <= np.abs(y) * 4 * 2.0**-53)


# --------------------------------------------------------------------------- ONNX Runtime

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _run_onnx(op, inputs, attrs, out_dtypes, opset=18):
    from onnx import TensorProto, helper

    names = [f"i{j}" for j in range(len(inputs))]
    outs = [f"o{j}" for j in range(len(out_dtypes))]
    node = helper.make_node(op, names, outs, **attrs)
    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(nm, types[a.dtype], a.shape) for nm, a in zip(names, inputs)],
        [helper.make_tensor_value_info(o, types[np.dtype(t)], None) for o, t in zip(outs, out_dtypes)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, inputs)))


@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_equal_onnx_runtime(storage_order):
    x = np.random.default_rng(2).permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6).astype(np.float32)
    y, i = oracle.max_pool(x, (2, 3), stride=(2, 1), padding=1, return_indices=True)
    oy, oi = _run_onnx("MaxPool", [x], dict(kernel_shape=[2, 3], strides=[2, 1], pads=[1, 1, 1, 1],
                                           storage_order=storage_order), [np.float32, np.int64])
    assert np.array_equal(y, oy) and np.array_equal(onnx_indices(i, x.shape, storage_order), oi)


def test_max_unpool_equals_onnx_runtime():
    x = np.random.default_rng(3).permutation(2 * 2 * 4 * 4).reshape(2, 2, 4, 4).astype(np.float32)
    y, i = oracle.max_pool(x, 2, return_indices=True)
    (out,) = _run_onnx("MaxUnpool", [y, onnx_indices(i, x.shape)], dict(kernel_shape=[2, 2], strides=[2, 2]), [np.float32])
    assert np.array_equal(oracle.max_unpool(y, i, 2), out)


def test_lp_pool_equals_onnx_runtime_with_pads():
    x = np.random.default_rng(4).integers(-3, 4, size=(1, 2, 5, 5)).astype(np.float32)
    y = oracle.lp_pool(x, 2, 3, stride=2, padding=1)
    (o,) = _run_onnx("LpPool", [x], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], p=2), [np.float32])
    # ONNX Runtime sums in float32 and takes a float32 root: two roundings (the sums are exact small integers)
    assert np.all(np.abs(y - o) <= np.abs(y) * 2 * 2.0**-24)


# --------------------------------------------------------------------------- convolution variants


@SETTINGS
@given(st.integers(1, 2), st.sampled_from(["zeros", "reflect", "replicate", "circular"]), st.integers(0, 2**31),
       st.integers(1, 2), st.integers(1, 2))
def test_padding_modes_and_their_gradients_equal_pytorch(nd, mode, seed, stride, dilation):
    rng = np.random.default_rng(seed)
    n, k, pad = 5, 3, int(rng.integers(0, 3))
    x = rng.integers(-3, 4, size=(2, 2, *[n] * nd)).astype(np.float64)
    w = rng.integers(-3, 4, size=(3, 2, *[k] * nd)).astype(np.float64)
    mod = getattr(torch.nn, f"Conv{nd}d")(2, 3, k, stride=stride, padding=pad, dilation=dilation, padding_mode=mode,
                                          bias=False).double()
    mod.weight.data = torch.from_numpy(w)
    tx = torch.from_numpy(x).requires_grad_()
    ty = mod(tx)
    dy = rng.integers(-3, 4, size=ty.shape).astype(np.float64)
    ty.backward(torch.from_numpy(dy))
    kw = dict(stride=stride, padding=pad, dilation=dilation, padding_mode=mode)
    assert np.array_equal(oracle.conv(x, w, **kw), ty.detach().numpy())
    assert np.array_equal(oracle.conv_grad_input(dy, w, x.shape, **kw), tx.grad.numpy())
    assert np.array_equal(oracle.conv_grad_weight(x, dy, w.shape, **kw), mod.weight.grad.numpy())


def test_padding_mode_limits_are_named():
    with pytest.raises(ConvParamError, match="padding_mode='reflect' allows at most 1"):
        oracle.conv(np.ones((1, 1, 2)), np.ones((1, 1, 1)), padding=2, padding_mode="reflect")
    with pytest.raises(ConvParamError, match="padding_mode='mirror'"):
        oracle.conv(np.ones((1, 1, 2)), np.ones((1, 1, 1)), padding=1, padding_mode="mirror")


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2**31))
def test_conv_transpose_output_size_and_gradients_equal_pytorch(stride, dilation, pad, extra, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(2, 2, 4)).astype(np.float64)
    w = rng.integers(-3, 4, size=(2, 3, 3)).astype(np.float64)
    base = shapes.conv_transpose_output_size(4, 3, stride, pad, 0, dilation)
    # PyTorch's modules accept base + [0, stride); the oracle also output_padding < dilation, as F.conv_transpose1d
    size = base + extra % stride
    if base < 1:
        return
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    mod = torch.nn.ConvTranspose1d(2, 3, 3, stride=stride, padding=pad, dilation=dilation, bias=False).double()
    mod.weight = torch.nn.Parameter(tw)
    ty = mod(tx, output_size=[size])
    y = oracle.conv_transpose(x, w, stride=stride, padding=pad, dilation=dilation, output_size=size)
    assert np.array_equal(y, ty.detach().numpy())
    dy = rng.integers(-3, 4, size=ty.shape).astype(np.float64)
    ty.backward(torch.from_numpy(dy))
    kw = dict(stride=stride, padding=pad, dilation=dilation)
    assert np.array_equal(oracle.conv_transpose_grad_input(dy, w, **kw), tx.grad.numpy())
    assert np.array_equal(oracle.conv_transpose_grad_weight(x, dy, w.shape, **kw), mod.weight.grad.numpy())


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_transpose_output_shape_equals_onnx_runtime(auto_pad):
    x = np.random.default_rng(5).integers(-3, 4, size=(1, 2, 4)).astype(np.float32)
    w = np.random.default_rng(6).integers(-3, 4, size=(2, 3, 3)).astype(np.float32)
    (o,) = _run_onnx("ConvTranspose", [x, w], dict(strides=[2], output_shape=[6], auto_pad=auto_pad), [np.float32])
    preset = "same" if auto_pad == "SAME_UPPER" else "same_lower"
    assert np.array_equal(oracle.conv_transpose(x, w, stride=2, padding=preset, output_size=6), o)
