"""The specification folder: index, example blocks, seed examples, and the identities it states.

The ``>>>`` examples of ``specs/*.md`` run as doctests (``--doctest-glob='*.md'``); these tests
check what doctests cannot: that the index lists every document, that every example sits in a
fenced ``pycon`` block a reader sees as code, that the seed examples are among them, and the
transposed-convolution identity of ``specs/transposed.md`` over a grid of parameters.
"""

from __future__ import annotations

import doctest
import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from refconv import oracle, params, shapes

SPECS = Path(__file__).resolve().parent.parent / "specs"
DOCUMENTS = ("README.md", "convolution.md", "shapes.md", "pooling.md", "transposed.md")


def examples(name: str) -> list[doctest.Example]:
    return doctest.DocTestParser().get_examples((SPECS / name).read_text(encoding="utf-8"))


def test_index_lists_every_document():
    index = (SPECS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)]+)\)", index))
    present = {p.name for p in SPECS.glob("*.md")} - {"README.md"}
    missing = sorted(present - linked)
    assert not missing, f"specs/README.md does not index {missing}"
    if (SPECS / "cases").is_dir():
        assert "cases/" in linked, "specs/README.md does not index cases/"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_examples_sit_in_closed_pycon_blocks(name):
    """Every ``>>>`` line is inside a ```pycon fence, and the fence closes after a blank line."""
    fence, previous = None, ""
    for number, line in enumerate((SPECS / name).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
            else:
                if fence == "pycon":
                    assert previous == "", f"{name}:{number}: the fence would be read as expected output"
                fence = None
        elif line.startswith(">>>"):
            assert fence == "pycon", f"{name}:{number}: example outside a pycon block: {line!r}"
        previous = line
    assert fence is None, f"{name}: unclosed code block"


@pytest.mark.parametrize(
    "name, call, result",
    [
        ("convolution.md", "oracle.convolve([1, 2, 3, 4], [5, 6, 7])", "[5, 16, 34, 52, 45, 28]"),
        ("convolution.md", "oracle.convolve([1, 2, 3, 4], [5, 6, 7], 'valid')", "[34, 52]"),
        ("convolution.md", "oracle.correlate([1, 2, 3], [5, 6, 7], mode='valid')", "[38]"),
        ("convolution.md", "y.shape, y[0, 0].size, np.unique(y)", "((1, 1, 28, 28), 784, [75])"),
        ("convolution.md", "np.ones((2, 3, 5, 5)", "(1, 2, 28, 28)"),
        ("convolution.md", "(96, 3, 11, 11), stride=4).output_shape", "(1, 96, 55, 55)"),
        ("convolution.md", "oracle.convolve([1, 2, 3], [7, 6, 5])", "[7, 20, 38, 28, 15]"),
        ("convolution.md", "oracle.conv_matrix(np.array([[[5, 6, 7]]]), (1, 4), padding=2, flip=True)", ""),
        ("convolution.md", "'same', odd_zero='end'", "[12, 23, 34, 40]"),
        ("shapes.md", "shapes.conv_output_size(227, 11, stride=4)", "55"),
        ("shapes.md", "g.output, g.unread, g.unread_input", "(54, 1, 1)"),
    ],
)
def test_seed_examples_are_in_the_spec(name, call, result):
    found = [e for e in examples(name) if call in e.source and result in e.want]
    assert found, f"{name}: no example calling {call!r} with result {result!r}"


def test_seed_matrix_has_tied_and_zero_weights():
    """The seed's remark: a convolution is a fully connected layer with tied and zero weights."""
    m = oracle.conv_matrix(np.array([[[5, 6, 7]]]), (1, 4), padding=2, flip=True)
    # tied: every diagonal of the Toeplitz matrix holds one kernel value; zero: all else
    for offset in range(-m.shape[0] + 1, m.shape[1]):
        assert len(set(np.diagonal(m, offset).tolist())) <= 1
    assert sorted(set(m.flatten().tolist())) == [0, 5, 6, 7]
    assert (m @ np.array([1, 2, 3, 4])).tolist() == [5, 16, 34, 52, 45, 28]


def _general_weight(w: np.ndarray, groups: int) -> np.ndarray:
    """(C_in, C_out/G, *K) -> (C_out, C_in/G, *K), transposed within each group."""
    cin, cog, *k = w.shape
    return w.reshape(groups, cin // groups, cog, *k).swapaxes(1, 2).reshape(groups * cog, cin // groups, *k)


GRID = [
    (n, k, s, d, lo, hi, r, g)
    for n, k, s, d, lo, hi, g in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 3), (1, 2), (0, 1, 3), (0, 2), (1, 2))
    for r in range(max(s, d))
]


def test_transposed_is_the_general_operation_on_a_grid():
    """specs/transposed.md §3: input dilation s, flipped channel-transposed kernel, padding (d(K-1)-lo, d(K-1)-hi+r).

    Every grid point whose transposed convolution exists, negative paddings included.
    """
    rng = np.random.default_rng(0)
    checked = 0
    for n, k, s, d, lo, hi, r, g in GRID:
        x = rng.integers(-5, 6, (1, 2 * g, n))
        w = rng.integers(-5, 6, (2 * g, 2, k))
        try:
            y = oracle.conv_transpose(x, w, stride=s, padding=[(lo, hi)], output_padding=r, dilation=d, groups=g)
        except params.ConvParamError:
            continue  # the padding crops the whole output
        pad = (d * (k - 1) - lo, d * (k - 1) - hi + r)
        z = oracle.general_conv(x, _general_weight(w, g), input_dilation=s, padding=[pad], dilation=d, groups=g, flip=True)
        assert np.array_equal(y, z), (n, k, s, d, lo, hi, r, g)
        assert y.shape[2] == shapes.conv_transpose_output_size(n, k, s, (lo, hi), r, d)
        checked += 1
    assert checked > 500
