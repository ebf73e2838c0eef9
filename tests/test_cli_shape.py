"""`refconv shape`: the formula with the numbers substituted next to the result, warnings for
unread rows, exit status 2 with a message naming the bad argument."""

from __future__ import annotations

import pytest

from refconv import shapes
from refconv.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_alexnet_conv1(capsys):
    code, out, err = run(capsys, "shape", "conv", "--input", "1x3x227x227", "--kernel", "96x3x11x11", "--stride", "4")
    assert code == 0
    assert "floor((227 + 0 + 0 - 1*(11 - 1) - 1) / 4) + 1 = 55" in out
    assert out.strip().endswith("output: 1x96x55x55")
    assert err == ""


def test_unread_rows_warn_on_stderr(capsys):
    code, out, err = run(capsys, "shape", "conv", "--input", "1x3x224x224", "--kernel", "96x3x11x11", "--stride", "4")
    assert code == 0
    assert "output: 1x96x54x54" in out
    g = shapes.conv_geometry(224, 11, stride=4)
    assert f"leaves the last {g.unread_input} input row(s) of 224 unread" in err
    assert str(list(shapes.conv_input_sizes(54, 11, stride=4))) in err


def test_seed_32x32x3_with_spatial_kernel(capsys):
    code, out, _ = run(capsys, "shape", "conv", "--input", "1x3x32x32", "--kernel", "5", "--out-channels", "6")
    assert code == 0
    assert "= 28" in out and "output: 1x6x28x28" in out
    assert "parameters: 450 weights + 6 biases" in out


def test_asymmetric_padding_and_same(capsys):
    code, out, _ = run(capsys, "shape", "conv", "--input", "1x1x7x6", "--kernel", "1x1x3x2", "--padding", "0:1,2")
    assert code == 0
    assert "floor((7 + 0 + 1 - 1*(3 - 1) - 1) / 1) + 1 = 6" in out
    assert "floor((6 + 2 + 2 - 1*(2 - 1) - 1) / 1) + 1 = 9" in out
    code, out, _ = run(capsys, "shape", "conv", "--input", "1x1x7", "--kernel", "4", "--stride", "2", "--padding", "same")
    assert "T = max((ceiling(7/2) - 1)*2 + 1*(4 - 1) + 1 - 7, 0) = 3 -> (1, 2), the odd zero at the end" in out
    assert "output: 1x1x4" in out
    code, out, _ = run(capsys, "shape", "conv", "--input", "1x1x7", "--kernel", "4", "--stride", "2", "--padding", "same_lower")
    assert "-> (2, 1), the odd zero at the start" in out


def test_pool_ceil_mode(capsys):
    code, out, err = run(capsys, "shape", "pool", "--input", "1x1x5x4", "--kernel", "2", "--padding", "1", "--ceil-mode")
    assert code == 0
    # axis 0: a 4th window would start at 6 >= n + lo = 6, in the right padding: dropped (PyTorch's rule)
    assert "ceiling((5 + 1 + 1 - 1*(2 - 1) - 1) / 2) + 1 - 1 (window 3 would start at 6 >= n + lo = 6) = 3" in out
    assert "ceiling((4 + 1 + 1 - 1*(2 - 1) - 1) / 2) + 1 = 3" in out
    assert shapes.pool_output_size(5, 2, 2, 1, 1, True) == 3
    assert "output: 1x1x3x3" in out


def test_pool_default_stride_is_the_window(capsys):
    code, out, _ = run(capsys, "shape", "pool", "--input", "1x96x55x55", "--kernel", "3", "--stride", "2")
    assert code == 0 and "output: 1x96x27x27" in out
    code, out, _ = run(capsys, "shape", "pool", "--input", "1x1x6x6", "--kernel", "2")
    assert "output: 1x1x3x3" in out


def test_conv_transpose_reachable_sizes(capsys):
    code, out, _ = run(capsys, "shape", "conv_transpose", "--input", "1x16x7x7", "--kernel", "16x8x3x3",
                       "--stride", "2", "--padding", "1", "--output-padding", "1")
    assert code == 0
    assert "(7 - 1)*2 - 1 - 1 + 1*(3 - 1) + 1 + 1 = 14" in out
    assert "output_padding reaches 13..14" in out
    assert "output: 1x8x14x14" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["conv", "--input", "1x3xq", "--kernel", "2x3x3"], "--input='1x3xq'"),
        (["conv", "--input", "1x1x5", "--kernel", "1x1x3", "--stride", "0"], "stride=0"),
        (["conv", "--input", "1x1x5", "--kernel", "1x1x7"], "larger than the padded input"),
        (["conv", "--input", "1x1x5", "--kernel", "1x1x3", "--padding", "SAME"], "--padding='SAME'"),
        (["conv", "--input", "5", "--kernel", "3"], "--input='5'"),
        (["pool", "--input", "1x1x2x2", "--kernel", "5"], "larger than the padded input"),
        (["conv_transpose", "--input", "1x1x4", "--kernel", "1x1x3", "--stride", "2", "--output-padding", "2"],
         "output_padding"),
        (["conv", "--input", "1x4x5", "--kernel", "2x4x3", "--groups", "3"], "groups=3"),
        (["pool", "--input", "1x1x5", "--kernel", "2", "--groups", "2"], "--groups: not an option of 'pool'"),
        (["conv", "--input", "1x1x5", "--kernel", "2", "--ceil-mode"], "--ceil-mode: not an option of 'conv'"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, match):
    code, out, err = run(capsys, "shape", *argv)
    assert code == 2
    assert match in err
    assert "Traceback" not in err
