"""`refconv derive`: outputs, gradients and shape formulas, pretty or LaTeX; the seed's 1-D example;
immediate errors for sizes too large to print."""

from __future__ import annotations

import pytest

from refconv.cli import main
from refconv.commands import derive


def run(capsys, *argv):
    code = main(["derive", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_seed_valid_correlation(capsys):
    code, out, err = run(capsys, "conv", "--input", "4", "--kernel", "3")
    assert code == 0, err
    assert "y₀ = b₀ + w₀⋅x₀ + w₁⋅x₁ + w₂⋅x₂" in out
    assert "y₁ = b₀ + w₀⋅x₁ + w₁⋅x₂ + w₂⋅x₃" in out
    assert "sympy's derivatives equal the rules: yes" in out


def test_seed_full_convolution_with_numbers_and_update(capsys):
    code, out, err = run(capsys, "conv", "--input", "4", "--kernel", "3", "--padding", "full", "--flip", "--no-bias",
                         "--x", "1,2,3,4", "--w", "5,6,7", "--lr", "1/10")
    assert code == 0, err
    assert "y = [[[5, 16, 34, 52, 45, 28]]]" in out
    # L = sum(y): every tap meets every x once, so dL/dw_k = 1 + 2 + 3 + 4
    assert "dL/dw = [[[10, 10, 10]]]" in out
    assert "w - 1/10*dL/dw = [[[4, 5, 6]]]" in out


def test_matrix_form(capsys):
    code, out, _ = run(capsys, "conv", "--input", "4", "--kernel", "3", "--padding", "full", "--flip", "--matrix", "--latex")
    assert code == 0
    assert "24 entries, 12 non-zero, 3 distinct weights (the kernel's 3)" in out
    assert r"w_{0} & 0 & 0 & 0" in out


def test_latex_output(capsys):
    code, out, _ = run(capsys, "conv", "--input", "4", "--kernel", "3", "--latex", "--no-bias")
    assert code == 0
    assert r"y_{0} = w_{0} x_{0} + w_{1} x_{1} + w_{2} x_{2}" in out
    assert r"\frac{d}{d x_{1}} L = g_{0} w_{1} + g_{1} w_{0}" in out
    assert r"\left\lfloor{" in out


def test_2d_groups_stride_asymmetric_padding(capsys):
    code, out, err = run(capsys, "conv", "--input", "3x3", "--kernel", "2", "--in-channels", "2", "--out-channels", "4",
                         "--groups", "2", "--stride", "2", "--padding", "0:1,1:0", "--dilation", "1,1")
    assert code == 0, err
    assert "sympy's derivatives equal the rules: yes" in out
    assert "axis 1: n=3, k=2, s=2, lo=1, hi=0, d=1: O = 2" in out


def test_unread_rows_shown(capsys):
    code, out, _ = run(capsys, "conv", "--input", "7", "--kernel", "2", "--stride", "3", "--no-bias")
    assert code == 0
    assert "(unread rows r = 2)" in out
    assert "padding ((1, 3),)" in out  # d*(K-1) - lo = 1, d*(K-1) - hi + r = 3


def test_pool_max_tie_rule_and_avg(capsys):
    code, out, _ = run(capsys, "pool", "--input", "4", "--kernel", "2", "--stride", "1", "--x", "1,3,3,2")
    assert code == 0
    assert "tie rule: the first maximal element" in out
    assert "y₀ = x₀⋅[x₀ ≥ x₁] + x₁⋅[x₀ < x₁]" in out
    assert "dL/dx = [[[0, 2, 1, 0]]]" in out
    assert "the oracle's gradient agrees: yes" in out
    code, out, _ = run(capsys, "pool", "--avg", "--input", "5", "--kernel", "3", "--stride", "2", "--padding", "1",
                       "--count-exclude-pad", "--x", "1,2,3,4,5")
    assert code == 0
    assert "dL/dx = [[[1/2, 5/6, 1/3, 5/6, 1/2]]]" in out
    assert "the oracle's gradient agrees: yes" in out


def test_conv_transpose(capsys):
    code, out, _ = run(capsys, "conv_transpose", "--input", "2", "--kernel", "3", "--stride", "2", "--padding", "1",
                       "--output-padding", "1", "--no-bias")
    assert code == 0
    assert "y₃ = w₂⋅x₁" in out
    assert "sympy's derivatives equal the rules: yes" in out


def test_index_notation(capsys):
    code, out, _ = run(capsys, "index")
    assert code == 0
    assert "the substitution steps have identical summands: yes" in out
    assert "against the layer's sympy gradient: yes" in out


def test_too_large_is_immediate_and_states_the_limit(capsys, monkeypatch):
    from refconv.symbolic import gradients

    def no_derivation(*args, **kwargs):
        raise AssertionError("the size check must come before any symbolic work")

    monkeypatch.setattr(gradients, "derive_conv", no_derivation)
    code, out, err = run(capsys, "conv", "--input", "227x227", "--kernel", "11", "--in-channels", "3", "--out-channels", "96")
    assert code == 2
    assert f"the limit is {derive.PRINT_LIMIT}" in err
    assert out == ""


@pytest.mark.parametrize(
    "argv, match",
    [
        (["conv", "--input", "4"], "--input and --kernel are required"),
        (["conv", "--input", "4", "--kernel", "3", "--x", "1,2"], "expected 4 numbers"),
        (["conv", "--input", "4", "--kernel", "3", "--x", "1,a,3,4"], "--x='1,a,3,4'"),
        (["conv", "--input", "4", "--kernel", "5"], "larger than the padded input"),
        (["conv", "--input", "4x4", "--kernel", "3x3x3"], "--kernel='3x3x3'"),
        (["conv", "--input", "4", "--kernel", "3", "--groups", "2", "--in-channels", "3"], "--groups=2"),
        (["pool", "--input", "4", "--kernel", "2", "--avg", "--dilation", "2"], "average pooling has no dilation"),
        (["pool", "--input", "30x30", "--kernel", "2"], "the limit is"),
        (["pool", "--input", "4", "--kernel", "2", "--flip"], "--flip: not an option of 'derive pool'"),
        (["pool", "--input", "4", "--kernel", "2", "--count-exclude-pad"], "--count-exclude-pad"),
        (["conv", "--input", "4", "--kernel", "2", "--ceil-mode"], "--ceil-mode: not an option"),
        (["index", "--input", "4"], "--input: not an option of 'derive index'"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, match):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert match in err
    assert "Traceback" not in err
