"""Checking a function in its own layouts: ``refconv check --layout NHWC --weight-layout HWIO``, the Python API and
the pytest plugin; a function in another layout than declared fails with a diagnosis naming the layouts it uses."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from refconv.conformance import check
from refconv.conformance.targets import in_layouts, layout_spec, resolve, split_layout_spec

# a channels-last convolution written with numpy alone: x (N, *S, C), w (*K, C/groups, O), float64 inside
NHWC_SOURCE = textwrap.dedent('''
    import numpy as np

    refconv_capabilities = {"refuses_invalid": False}


    def conv(x, w, b, *, stride, padding, dilation, groups):
        x, w = np.asarray(x), np.asarray(w)
        dtype, d = x.dtype, x.ndim - 2
        xp = np.pad(x.astype(np.float64), [(0, 0), *padding, (0, 0)])
        k, c, o = w.shape[:d], x.shape[-1], w.shape[-1]
        out = [max((xp.shape[1 + i] - dilation[i] * (k[i] - 1) - 1) // stride[i] + 1, 0) for i in range(d)]
        y = np.zeros((x.shape[0], *out, o))
        cg, og = c // groups, o // groups
        if all(out):
            for tap in np.ndindex(*k):
                win = tuple(slice(tap[i] * dilation[i], tap[i] * dilation[i] + (out[i] - 1) * stride[i] + 1, stride[i])
                            for i in range(d))
                patch = xp[(slice(None), *win, slice(None))]
                for g in range(groups):
                    y[..., g * og:(g + 1) * og] += patch[..., g * cg:(g + 1) * cg] @ w[tap][:, g * og:(g + 1) * og]
        if b is not None:
            y = y + np.asarray(b, np.float64)
        return y.astype(dtype)

    conv.refconv_capabilities = refconv_capabilities


    def conv_nchw(x, w, b, *, stride, padding, dilation, groups):
        """The same function called with channels-first arrays: transposes in and out."""
        d = np.ndim(x) - 2
        y = conv(np.moveaxis(x, 1, -1), np.moveaxis(np.moveaxis(w, 0, -1), 0, -2), b, stride=stride, padding=padding,
                 dilation=dilation, groups=groups)
        return np.moveaxis(y, -1, 1)

    conv_nchw.refconv_capabilities = refconv_capabilities


    def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        """Channels-last max pooling without ceil_mode (raises when asked)."""
        if ceil_mode:
            raise NotImplementedError("ceil_mode")
        x = np.asarray(x)
        d = x.ndim - 2
        xp = np.pad(x, [(0, 0), *padding, (0, 0)], constant_values=-np.inf)
        out = [max((xp.shape[1 + i] - dilation[i] * (kernel_size[i] - 1) - 1) // stride[i] + 1, 0) for i in range(d)]
        y = np.full((x.shape[0], *out, x.shape[-1]), -np.inf, dtype=x.dtype)
        if all(out):
            for tap in np.ndindex(*kernel_size):
                win = tuple(slice(tap[i] * dilation[i], tap[i] * dilation[i] + (out[i] - 1) * stride[i] + 1, stride[i])
                            for i in range(d))
                y = np.maximum(y, xp[(slice(None), *win, slice(None))])
        return y

    max_pool.refconv_capabilities = {"refuses_invalid": False, "ceil_mode": False}
''')


@pytest.fixture(scope="module")
def impl(tmp_path_factory):
    path = tmp_path_factory.mktemp("nhwc") / "nhwc_impl.py"
    path.write_text(NHWC_SOURCE)
    return str(path)


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "refconv", "check", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_nhwc_function_passes_with_its_layouts(impl):
    r = _cli(f"{impl}:conv", "--layout", "NHWC", "--weight-layout", "HWIO", "--max-examples", "10", "--seed", "1",
             "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout and "layout=NHWC, weight_layout=HWIO" in r.stdout


def test_cli_nhwc_function_fails_as_channels_first_with_a_layout_diagnosis(impl):
    r = _cli(f"{impl}:conv", "--max-examples", "0", "--seed", "1", "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the results match layout='NHWC', weight_layout='HWIO' (command: --layout NHWC --weight-layout HWIO)" in r.stdout


def test_cli_channels_first_function_fails_as_nhwc_with_a_layout_diagnosis(impl):
    r = _cli(f"{impl}:conv_nchw", "--layout", "NHWC", "--weight-layout", "HWIO", "--max-examples", "0", "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the results match layout='NCHW', weight_layout='OIHW'" in r.stdout


def test_cli_isolated_worker_translates_too(impl):
    r = _cli(f"{impl}:conv", "--layout", "NWC", "--weight-layout", "WIO", "--max-examples", "3", "--seed", "2",
             "--isolate", "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1-D" in r.stdout or "dims=1" in r.stdout or "dims 1" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--layout", "nhwc"], "--layout='nhwc': not a layout name"),
    (["--layout", "NHWC", "--dims", "3"], "--layout=NHWC: 2 spatial axes, but --dims=3"),
    (["--weight-layout", "NHWC"], "--weight-layout='NHWC': an activation layout, not a convolution weight layout"),
    (["--layout", "NHWC", "--weight-layout", "HWOI"],
     "weight_layout='HWOI': a transposed-convolution weight layout, not a convolution weight layout"),
])
def test_cli_bad_layouts_are_usage_errors(impl, args, message):
    r = _cli(f"{impl}:conv", *args, "--max-examples", "0", "--quiet")
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_layout_on_an_adapter_is_a_usage_error():
    r = _cli("refconv.oracle", "--layout", "NHWC", "--max-examples", "0")
    assert r.returncode == 2 and "built-in adapter" in r.stderr


def test_python_api_pooling_in_ndhwc(impl):
    from refconv.conformance.targets import load_function

    pool = load_function(f"{impl}:max_pool")
    r = check(pool, layout="NDHWC", max_examples=5, seed=0)
    assert r.verdict == "PASS", str(r)
    assert r.dims == 3
    with pytest.raises(ValueError, match="weight_layout='DHWIO': op 'max_pool' takes no weight"):
        check(pool, layout="NDHWC", weight_layout="DHWIO", max_examples=0)


def test_python_api_depthwise_hwim():
    from refconv import oracle

    def depthwise(x, w, b, *, stride, padding, dilation):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, layout="NHWC",
                           weight_layout="HWIM")

    r = check(depthwise, layout="NHWC", weight_layout="HWIM", max_examples=10, seed=0)
    assert r.verdict == "PASS", str(r)
    assert r.catalogue_cases > 0 and "groups = C_in only" in str(r)  # the other cases are said to be left out


def test_transposed_hwoi_and_gradients():
    from refconv import oracle

    def ct(x, w, b, *, stride, padding, output_padding, dilation, groups):
        return oracle.conv_transpose(x, w, b, stride=stride, padding=padding, output_padding=output_padding,
                                     dilation=dilation, groups=groups, layout="NHWC", weight_layout="HWOI")

    assert check(ct, op="conv_transpose", layout="NHWC", weight_layout="HWOI", max_examples=3, seed=0).ok

    def gw(x, dy, weight_shape, *, stride, padding, dilation, groups):
        return oracle.conv_grad_weight(x, dy, weight_shape, stride=stride, padding=padding, dilation=dilation,
                                       groups=groups, layout="NWC", weight_layout="WIO")

    assert check(gw, op="conv_grad_weight", layout="NWC", weight_layout="WIO", max_examples=3, seed=0).ok


def test_jax_nhwc_conv_passes():
    jax = pytest.importorskip("jax")
    from jax import lax

    def conv(x, w, b, *, stride, padding, dilation, groups):
        y = lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation, feature_group_count=groups,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=lax.Precision.HIGHEST)
        return np.asarray(y if b is None else y + b)

    conv.refconv_capabilities = {"refuses_invalid": False, "empty_batch": False}
    assert jax is not None
    # XLA's CPU kernels flush subnormals to zero: claimed as such
    r = check(conv, layout="NHWC", weight_layout="HWIO", max_examples=0, seed=0, precision="float32-ftz")
    assert r.verdict == "PASS", str(r)


def test_layout_spec_round_trip_and_memory_layouts_reach_the_function():
    assert split_layout_spec(layout_spec("m:f", "NHWC", None)) == ("m:f", "NHWC", None)
    assert split_layout_spec("m:f") == ("m:f", None, None)
    assert split_layout_spec("m:f[weight_layout=HWIO]") == ("m:f", None, "HWIO")
    assert split_layout_spec("m:f[layout=NHWC, weight_layout=HWIO]") == ("m:f", "NHWC", "HWIO")
    assert split_layout_spec("m:f[]") == ("m:f[]", None, None)
    seen = []

    def f(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        seen.append((x.shape, x.flags.c_contiguous, x.flags.writeable))
        return np.zeros((1, 1, 1))

    from refconv.conformance.cases import Case, in_layout

    g = in_layouts(f, "max_pool", "NHWC")
    a = np.arange(24.0).reshape(1, 2, 3, 4)
    g(a, (1, 1), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), ceil_mode=False)
    g(in_layout(a, "readonly"), (1, 1), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), ceil_mode=False)
    g(in_layout(a, "fortran"), (1, 1), stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), ceil_mode=False)
    assert seen == [((1, 3, 4, 2), True, True), ((1, 3, 4, 2), True, False), ((1, 3, 4, 2), False, True)]
    assert Case  # the memory layouts are those of the catalogue's cases
    t = resolve(layout_spec("refconv.oracle:max_pool", "NHWC"))
    assert t.name.endswith("[layout=NHWC]") and "in_layouts(target, '{op}', 'NHWC', None)" in t.setup


def test_pytest_plugin_layouts(tmp_path):
    import os

    (tmp_path / "nhwc_impl.py").write_text(NHWC_SOURCE)
    import refconv

    root = os.path.dirname(os.path.dirname(os.path.abspath(refconv.__file__)))  # this checkout, also when installed elsewhere
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), root]))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=300)

    r = run("--refconv-target=nhwc_impl:conv", "--refconv-layout=NWC", "--refconv-weight-layout=WIO",
            "--refconv-max-examples=3", "-rA")
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    assert "op='conv', dims=1, dtype='float32')" in r.stdout  # the dims follow the layout
    r = run("--refconv-target=nhwc_impl:conv", "--refconv-max-examples=0")
    assert r.returncode == 1 and "the results match layout='NHWC', weight_layout='HWIO'" in r.stdout, r.stdout
    r = run("--refconv-target=nhwc_impl:conv", "--refconv-layout=NHCW")
    assert r.returncode == 4 and "--refconv-layout='NHCW': not a layout name" in r.stderr, r.stdout + r.stderr


def test_tensorflow_nhwc_conv2d_passes():
    tf = pytest.importorskip("tensorflow")

    def conv2d(x, w, b, *, stride, padding, dilation):
        pads = [[0, 0], *[list(p) for p in padding], [0, 0]]
        y = tf.nn.conv2d(x, w, strides=[1, *stride, 1], padding=pads, dilations=[1, *dilation, 1],
                         data_format="NHWC")
        return (y if b is None else y + b).numpy()

    def no_strided_dilation(case):
        """TensorFlow's CPU convolution takes strides > 1 or dilations > 1, not both"""
        return not (any(s > 1 for s in case.stride) and any(d > 1 for d in case.dilation))

    conv2d.refconv_capabilities = {"refuses_invalid": False, "empty_batch": False, "rule": no_strided_dilation}
    r = check(conv2d, layout="NHWC", weight_layout="HWIO", max_examples=0, seed=0, precision="float32-ftz")
    assert r.verdict == "PASS" and r.catalogue_cases > 0, str(r)
