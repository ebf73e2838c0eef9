"""``refconv identify`` detects the activation and weight layouts of an unknown function in 1-D, 2-D and 3-D."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from refconv import oracle
from refconv.conformance.identify import detect_layouts, identify

SP = {1: "W", 2: "HW", 3: "DHW"}


def _conv_in(act, wl, flip=False):
    def conv(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip,
                           layout=act, weight_layout=wl)

    return conv


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("pattern", [("NSC", "SIO"), ("NSC", "OSI"), ("NCS", "SIO"), ("NCS", "OIS")])
def test_conv_layouts_detected_in_every_dims(d, pattern):
    act, wl = (p.replace("S", SP[d]) for p in pattern)
    fp = identify(_conv_in(act, wl), ops=("conv",), dims=d)
    assert fp["conv.layout"].split()[0] == act, fp
    assert fp["conv.weight_layout"] == wl, fp
    # the other rows are probed through the layouts found
    assert fp["conv.kernel"] == "cross-correlation (no flip)"
    assert fp["conv.groups"] == "contiguous blocks (o // (C_out/groups))"


def test_detect_layouts_tells_every_pair_apart():
    found, tried = detect_layouts(_conv_in("NHWC", "HWIO"), "conv", 2)
    assert found == [("NHWC", "HWIO")]
    assert tried["NHWC/HWIO"] == "match" and sum(v == "match" for v in tried.values()) == 1
    assert len(tried) == 6  # two activation layouts times three weight layouts, each judged


def test_depthwise_hwim_detected():
    def depthwise(x, w, b, *, stride, padding, dilation):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, layout="NHWC",
                           weight_layout="HWIM")

    fp = identify(depthwise, ops=("conv",), dims=2)
    assert fp["conv.layout"].startswith("NHWC") and fp["conv.weight_layout"] == "HWIM (depthwise: groups = C_in)"
    assert fp["conv.groups"].startswith("not offered: a depthwise HWIM weight")


@pytest.mark.parametrize("d", [1, 3])
def test_pooling_and_transposed_layouts(d):
    sp = SP[d]

    def pool(x, kernel_size, *, stride, padding, count_include_pad, ceil_mode):
        return oracle.avg_pool(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                               count_include_pad=count_include_pad, layout=f"N{sp}C")

    fp = identify(pool, ops=("avg_pool",), dims=d)
    assert fp["pool.layout"] == f"N{sp}C (channels last)"
    assert fp["avg_pool.divisor_include_pad"] == "window inside input + padding"

    def ct(x, w, b, *, stride, padding, output_padding, dilation, groups):
        return oracle.conv_transpose(x, w, b, stride=stride, padding=padding, output_padding=output_padding,
                                     dilation=dilation, groups=groups, layout=f"N{sp}C", weight_layout=f"{sp}OI")

    fp = identify(ct, ops=("conv_transpose",), dims=d)
    assert fp["conv_transpose.layout"] == f"N{sp}C (channels last)"
    assert fp["conv_transpose.weight"].startswith(f"{sp}OI (*K, C_out/groups, C_in)")
    assert fp["conv_transpose.crop"] == "lo from the start, hi from the end"


def test_layouts_found_by_shapes_when_the_values_follow_other_conventions():
    fp = identify(_conv_in("NHWC", "HWIO", flip=True), ops=("conv",), dims=2)
    assert fp["conv.layout"].startswith("NHWC (channels last) (by the shapes")
    assert fp["conv.kernel"] == "convolution (kernel flipped)"


def test_undecidable_rows_say_why():
    def refuses(x, w, b, *, stride, padding, dilation, groups):
        raise ValueError("no")

    fp = identify(refuses, ops=("conv",), dims=2)
    assert fp["conv.layout"] == "raises ValueError: no"
    assert fp["conv.weight_layout"] == "raises ValueError: no"

    def garbage(x, w, b, *, stride, padding, dilation, groups):
        return np.zeros((1, 1))

    fp = identify(garbage, ops=("conv",), dims=1)
    assert fp["conv.layout"].startswith("none matched: NCW/OIW: none matched: output shape (1, 1)")
    assert fp["conv.weight_layout"].startswith("undecided: no activation and weight layout pair fits")


def test_declared_layouts_are_rows_and_bad_ones_are_errors():
    from refconv.params import ConvParamError

    fp = identify(_conv_in("NDHWC", "DHWIO"), ops=("conv",), layout="NDHWC", weight_layout="DHWIO")
    assert fp["conv.layout"] == "NDHWC (declared)" and fp["conv.weight_layout"] == "DHWIO (declared)"
    assert fp["conv.kernel"] == "cross-correlation (no flip)"
    with pytest.raises(ConvParamError, match=r"layout='NHWC': 2 spatial axes, not 3 \(dims=3\)"):
        identify(_conv_in("NHWC", "HWIO"), ops=("conv",), dims=3, layout="NHWC")


def test_identify_command_finds_nhwc_hwio(tmp_path):
    (tmp_path / "tf_like.py").write_text(
        "from refconv import oracle\n"
        "def conv2d(x, w, b, *, stride, padding, dilation, groups):\n"
        "    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,\n"
        "                       layout='NHWC', weight_layout='HWIO')\n"
        "def pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):\n"
        "    return oracle.max_pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation,\n"
        "                           ceil_mode=ceil_mode, layout='NWC')\n"
    )
    r = subprocess.run([sys.executable, "-m", "refconv", "identify", f"{tmp_path}/tf_like.py:conv2d", "--dims", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "| activation layout (NC* channels first, N*C channels last) | NHWC (channels last) |" in r.stdout
    assert "| convolution weight layout | HWIO |" in r.stdout
    r = subprocess.run([sys.executable, "-m", "refconv", "identify", f"{tmp_path}/tf_like.py:pool", "--dims", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "| pooling activation layout | NWC (channels last) |" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "refconv", "identify", "refconv.oracle", "--layout", "NHWC"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "built-in adapter" in r.stderr


def test_an_adapter_names_its_librarys_own_layouts():
    from refconv.conformance.targets import resolve

    import copy

    t = copy.copy(resolve("refconv.oracle"))  # the adapter's Target is shared: a copy declares them
    t.native_layouts = {"conv": ("NHWC", "HWIO"), "max_pool": ("NHWC", None), "conv_transpose": ("NHWC", "HWOI")}
    fp = identify(t, ops=("conv", "max_pool", "conv_transpose"), dims=2)
    assert fp["conv.layout"] == "NHWC (the library's own; the adapter translates)"
    assert fp["conv.weight_layout"] == "HWIO" and fp["conv_transpose.weight_layout"] == "HWOI"
    assert fp["pool.layout"].startswith("NHWC")
    assert fp["conv.kernel"] == "cross-correlation (no flip)"  # the adapter's canonical calls, as before
    assert "conv.layout" not in identify("refconv.oracle", ops=("conv",), dims=1)  # no declaration: no row
