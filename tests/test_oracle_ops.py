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


# --------------------------------------------------------------------------- unbatched inputs


def test_unbatched_inputs_equal_pytorch():
    rng = np.random.default_rng(11)
    x2 = rng.integers(-3, 4, size=(2, 5, 6)).astype(np.float64)  # (C, H, W)
    t2 = torch.from_numpy(x2)
    w = rng.integers(-3, 4, size=(3, 2, 2, 2)).astype(np.float64)
    b = rng.integers(-3, 4, size=3).astype(np.float64)
    assert np.array_equal(oracle.conv(x2, w, b, padding=1), F.conv2d(t2, torch.from_numpy(w), torch.from_numpy(b), padding=1).numpy())
    x1 = x2[0]  # (C, L) with a 1-D kernel
    w1 = w[:, :, 0]
    assert np.array_equal(oracle.conv(x2[:, 0], w1, stride=2), F.conv1d(t2[:, 0], torch.from_numpy(w1), stride=2).numpy())
    assert np.array_equal(oracle.conv(x2, w, padding=1, padding_mode="circular"),
                          F.conv2d(F.pad(t2[None], (1, 1, 1, 1), mode="circular")[0], torch.from_numpy(w)).numpy())
    wt = rng.integers(-3, 4, size=(2, 3, 2, 2)).astype(np.float64)
    assert np.array_equal(oracle.conv_transpose(x2, wt, stride=2), F.conv_transpose2d(t2, torch.from_numpy(wt), stride=2).numpy())
    y, i = oracle.max_pool(x2, (2, 2), return_indices=True)
    ty, ti = F.max_pool2d(t2, 2, return_indices=True)
    assert y.shape == (2, 2, 3) and np.array_equal(y, ty.numpy()) and np.array_equal(i, ti.numpy())
    assert np.array_equal(oracle.max_unpool(y, i, (2, 2)), F.max_unpool2d(ty, ti, 2).numpy())
    assert np.array_equal(oracle.avg_pool(x2, (2, 3), stride=1), F.avg_pool2d(t2, (2, 3), stride=1).numpy())
    xa = np.abs(x1)  # PyTorch's p = 1 sums without |.| (a stated difference); equal on non-negative input
    assert np.array_equal(oracle.lp_pool(xa, 1, (2,)), F.lp_pool1d(torch.from_numpy(xa), 1, 2).numpy())
    ay, ai = oracle.adaptive_max_pool(x2, (2, 4), return_indices=True)
    tay, tai = F.adaptive_max_pool2d(t2, (2, 4), return_indices=True)
    assert np.array_equal(ay, tay.numpy()) and np.array_equal(ai, tai.numpy())
    assert np.array_equal(oracle.adaptive_avg_pool(x2, (2, 4)), F.adaptive_avg_pool2d(t2, (2, 4)).numpy())
    dy = rng.integers(-3, 4, size=y.shape).astype(np.float64)
    tx = t2.clone().requires_grad_()
    F.max_pool2d(tx, 2).backward(torch.from_numpy(dy))
    assert np.array_equal(oracle.max_pool_grad(dy, x2, (2, 2)), tx.grad.numpy())


def test_unbatched_needs_a_tuple_and_names_a_wrong_rank():
    x = np.arange(12.0).reshape(1, 3, 4)
    # only ints: (N, C, L) as before
    assert oracle.max_pool(x, 2).shape == (1, 3, 2)
    # a 2-tuple names two spatial axes: (C, H, W)
    assert oracle.max_pool(x, (1, 2)).shape == (1, 3, 2)
    with pytest.raises(ConvParamError, match=r"x.ndim=1: expected 4 axes .* \(x.shape=\(12,\)\)"):
        oracle.max_pool(x.reshape(12), (1, 2))
    with pytest.raises(ConvParamError, match=r"x.ndim=2: expected 5 axes"):
        oracle.conv(x[0], np.ones((1, 3, 1, 1, 1)))


# --------------------------------------------------------------------------- fractional max pooling


@st.composite
def fractional_case(draw):
    nd = draw(st.integers(2, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    # PyTorch's 3-D kernel needs o + k - 1 < n on each axis (2-D: <=, as the oracle)
    strict = int(nd == 3)
    n = tuple(draw(st.integers(ki + strict, 9)) for ki in k)
    o = tuple(draw(st.integers(1, ni - ki + 1 - strict)) for ni, ki in zip(n, k))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    x = rng.integers(-4, 5, size=(2, 2, *n)).astype(np.float64)  # ties happen
    u = rng.random((2, 2, nd))
    return x, k, o, u


@SETTINGS
@given(fractional_case())
def test_fractional_max_pool_equals_pytorch(case):
    x, k, o, u = case
    nd = x.ndim - 2
    fn = getattr(F, f"fractional_max_pool{nd}d")
    ty, ti = fn(torch.from_numpy(x), k, output_size=o, _random_samples=torch.from_numpy(u), return_indices=True)
    # PyTorch's 2-D samples list the axes last first (W, H); its 3-D samples are in axis order
    ours = u[..., ::-1] if nd == 2 else u
    y, i = oracle.fractional_max_pool(x, k, o, ours, return_indices=True)
    assert np.array_equal(y, ty.numpy()) and np.array_equal(i, ti.numpy()) and i.dtype == np.int64
    # unbatched: (C, *spatial) with samples (1, C, D)
    ty1 = fn(torch.from_numpy(x[0]), k, output_size=o, _random_samples=torch.from_numpy(u[:1]))
    assert np.array_equal(oracle.fractional_max_pool(x[0], k, o, ours[:1]), ty1.numpy())


def test_fractional_windows_are_the_exact_interval_formula():
    # alpha = 8/3, u = 1/2: starts floor((i + 1/2) * 8/3) - 1 = 0, 3, 5 and the last at n - k = 8
    assert shapes.fractional_starts(10, 2, 4, exact.Fraction(1, 2)) == [0, 3, 5, 8]
    x = np.arange(10).reshape(1, 1, 10)
    assert oracle.fractional_max_pool(x, 2, 4, [[[0.5]]]).tolist() == [[[1, 4, 6, 9]]]
    # integers and Fractions stay exact
    xf = np.array([[[exact.Fraction(1, 3), exact.Fraction(1, 2), 0]]], dtype=object)
    assert oracle.fractional_max_pool(xf, 2, 1, [[[0]]]).tolist() == [[[exact.Fraction(1, 2)]]]
    # o + k - 1 = n is defined (one window per position of a stride-1 pooling); PyTorch's 3-D kernel refuses it
    x3 = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    assert oracle.fractional_max_pool(x3, 2, 1, [[[0.5, 0.5, 0.5]]]).tolist() == [[[[[7.0]]]]]
    with pytest.raises(RuntimeError, match="too large relative to input"):
        F.fractional_max_pool3d(torch.from_numpy(x3), 2, output_size=1, _random_samples=torch.full((1, 1, 3), 0.5, dtype=torch.float64))


def test_fractional_max_pool_refuses_bad_arguments():
    x = np.zeros((1, 1, 5))
    with pytest.raises(ConvParamError, match=r"samples\[0, 0, 0\]=1.5: every sample must lie in \[0, 1\)"):
        oracle.fractional_max_pool(x, 2, 3, [[[1.5]]])
    with pytest.raises(ConvParamError, match=r"samples.shape=\(1, 1\)"):
        oracle.fractional_max_pool(x, 2, 3, [[0.5]])
    with pytest.raises(ConvParamError, match="output_size=5 with kernel_size=\\(2,\\)"):
        oracle.fractional_max_pool(x, 2, 5, [[[0.5]]])
    with pytest.raises(ConvParamError, match=r"samples\[0, 0, 0\]=nan"):
        oracle.fractional_max_pool(x, 2, 3, [[[float("nan")]]])


# --------------------------------------------------------------------------- deformable convolution


def _bilinear(plane, h, w):
    """torchvision's bilinear_interpolate, line by line, in Fractions."""
    H, W = plane.shape
    if h <= -1 or H <= h or w <= -1 or W <= w:
        return 0
    hl, wl = int(np.floor(h)), int(np.floor(w))
    lh, lw = h - hl, w - wl
    hh, hw = 1 - lh, 1 - lw

    def at(i, j):
        return exact.Fraction(plane[i, j]) if 0 <= i < H and 0 <= j < W else 0

    return hh * hw * at(hl, wl) + hh * lw * at(hl, wl + 1) + lh * hw * at(hl + 1, wl) + lh * lw * at(hl + 1, wl + 1)


def _deform_loop(x, off, w, b, mask, s, pad, dil, groups, ogroups):
    """deform_conv2d as torchvision's im2col writes it, one output element at a time."""
    n, cin, _, _ = x.shape
    cout, gin, kh, kw = w.shape
    oh, ow = off.shape[2:]
    y = np.empty((n, cout, oh, ow), dtype=object)
    for b_, o, i, j in np.ndindex(n, cout, oh, ow):
        acc = exact.Fraction(b[o]) if b is not None else exact.Fraction(0)
        for cl in range(gin):
            c = (o // (cout // groups)) * gin + cl
            g = c // (cin // ogroups)
            for ki, kj in np.ndindex(kh, kw):
                t = ki * kw + kj
                dh, dw = (exact.Fraction(off[b_, 2 * (g * kh * kw + t) + e, i, j]) for e in (0, 1))
                h = i * s[0] - pad[0] + ki * dil[0] + dh
                ww = j * s[1] - pad[1] + kj * dil[1] + dw
                m = exact.Fraction(mask[b_, g * kh * kw + t, i, j]) if mask is not None else 1
                acc += exact.Fraction(w[o, cl, ki, kj]) * m * _bilinear(x[b_, c], h, ww)
        y[b_, o, i, j] = acc
    return y


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2), st.integers(0, 1), st.integers(1, 2), st.booleans(),
       st.booleans(), st.integers(0, 2**31))
def test_deform_conv_equals_torchvisions_definition(stride, dil, groups, pad, ogroups, use_mask, use_bias, seed):
    rng = np.random.default_rng(seed)
    cin, cout, k = 2 * groups * ogroups // min(groups, ogroups), 2 * groups, (2, 2)
    x = rng.integers(-4, 5, size=(2, cin, 4, 5)).astype(np.float64)
    w = rng.integers(-3, 4, size=(cout, cin // groups, *k)).astype(np.float64)
    oh, ow = ((4 + 2 * pad - dil * (k[0] - 1) - 1) // stride + 1, (5 + 2 * pad - dil * (k[1] - 1) - 1) // stride + 1)
    # dyadic offsets in quarter samples, reaching past every border: exact in float64
    off = rng.integers(-12, 13, size=(2, 2 * ogroups * 4, oh, ow)) / 4.0
    mask = rng.integers(-4, 5, size=(2, ogroups * 4, oh, ow)) / 4.0 if use_mask else None
    b = rng.integers(-3, 4, size=cout).astype(np.float64) if use_bias else None
    kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups, offset_groups=ogroups)
    want = _deform_loop(x, off, w, b, mask, (stride,) * 2, (pad,) * 2, (dil,) * 2, groups, ogroups)
    got = oracle.deform_conv(x, off, w, b, mask, **kw, exact=True)
    assert got.shape == want.shape and all(a == e for a, e in zip(got.flat, want.flat))
    rounded = oracle.deform_conv(x, off, w, b, mask, **kw)
    assert rounded.dtype == np.float64 and np.array_equal(rounded, np.vectorize(float)(want))


def test_deform_conv_with_zero_or_integer_offsets_is_a_convolution():
    rng = np.random.default_rng(3)
    x = rng.integers(-4, 5, size=(1, 2, 5, 5))
    w = rng.integers(-3, 4, size=(3, 2, 3, 3))
    zero = np.zeros((1, 18, 3, 3), dtype=np.int64)
    assert np.array_equal(oracle.deform_conv(x, zero, w), oracle.conv(x, w))
    # every tap moved one row down: the convolution of the input shifted up, zero in the last row
    down = zero.copy()
    down[:, 0::2] = 1  # channel 2t: the row offset of tap t
    shifted = np.concatenate([x[:, :, 1:], np.zeros_like(x[:, :, :1])], axis=2)
    assert np.array_equal(oracle.deform_conv(x, down, w), oracle.conv(shifted, w))
    # 1-D and 3-D follow the same definition; unbatched input drops N
    x1 = np.array([[2, 4, 8]])
    assert oracle.deform_conv(x1, np.full((1, 3), 0.5), np.array([[[1]]])).tolist() == [[3.0, 6.0, 4.0]]
    x3 = rng.integers(-4, 5, size=(1, 1, 3, 3, 3))
    assert np.array_equal(oracle.deform_conv(x3, np.zeros((1, 3 * 8, 2, 2, 2)), np.ones((1, 1, 2, 2, 2))),
                          oracle.conv(x3, np.ones((1, 1, 2, 2, 2))))


def test_deform_conv_refuses_bad_arguments():
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 3, 3))
    with pytest.raises(ConvParamError, match=r"offset.shape=\(1, 9, 2, 2\)"):
        oracle.deform_conv(x, np.zeros((1, 9, 2, 2)), w)
    with pytest.raises(ConvParamError, match="offset_groups=3"):
        oracle.deform_conv(x, np.zeros((1, 54, 2, 2)), w, offset_groups=3)
    with pytest.raises(ConvParamError, match=r"mask.shape=\(1, 18, 2, 2\)"):
        oracle.deform_conv(x, np.zeros((1, 18, 2, 2)), w, mask=np.zeros((1, 18, 2, 2)))
    with pytest.raises(ConvParamError, match="offset: deform_conv needs finite values"):
        oracle.deform_conv(x, np.full((1, 18, 2, 2), np.nan), w)


@pytest.mark.parametrize("with_mask", [False, True])
def test_deform_conv_equals_onnx_runtime(with_mask):
    rng = np.random.default_rng(8)
    # small integers and quarter-sample offsets: every product and sum exact in float32
    x = rng.integers(-4, 5, size=(2, 4, 4, 5)).astype(np.float32)
    w = rng.integers(-3, 4, size=(4, 2, 2, 2)).astype(np.float32)
    off = (rng.integers(-8, 9, size=(2, 2 * 2 * 4, 4, 5)) / 4).astype(np.float32)
    b = rng.integers(-3, 4, size=4).astype(np.float32)
    inputs = [x, w, off, b]
    mask = None
    if with_mask:
        mask = (rng.integers(-4, 5, size=(2, 2 * 4, 4, 5)) / 4).astype(np.float32)
        inputs.append(mask)
    attrs = dict(kernel_shape=[2, 2], pads=[1, 0, 0, 1], strides=[1, 1], group=2, offset_group=2)
    (o,) = _run_onnx("DeformConv", inputs, attrs, [np.float32], opset=19)
    y = oracle.deform_conv(x, off, w, b, mask, padding=((1, 0), (0, 1)), groups=2, offset_groups=2)
    assert y.dtype == np.float32 and np.array_equal(y, o)
