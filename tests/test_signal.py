"""Signal-style convolve/correlate against numpy and scipy.signal, where conventions match and where not."""

import numpy as np
import pytest
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st

from refconv import oracle
from refconv.params import ConvParamError

SEEDS = st.integers(0, 2**32 - 1)
MODES = st.sampled_from(["full", "valid", "same"])


@given(st.integers(1, 3).flatmap(lambda nd: st.tuples(*[st.tuples(st.integers(1, 6), st.integers(1, 6))] * nd)), MODES, SEEDS)
def test_agrees_with_scipy_signal_in_every_mode(dims, mode, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-9, 10, [d[0] for d in dims])
    v = rng.integers(-9, 10, [d[1] for d in dims])
    for ours, theirs in ((oracle.correlate, scipy.signal.correlate), (oracle.convolve, scipy.signal.convolve)):
        try:
            expected = theirs(a, v, mode=mode, method="direct")
        except ValueError:
            # scipy refuses 'valid' when neither input is at least as large on every axis; so do we
            with pytest.raises(ConvParamError, match="at least as large"):
                ours(a, v, mode)
            continue
        assert np.array_equal(ours(a, v, mode), expected)


@given(st.integers(1, 8), st.integers(1, 8), MODES, SEEDS)
def test_agrees_with_numpy_except_same_with_longer_kernel(n, m, mode, seed):
    rng = np.random.default_rng(seed)
    a, v = rng.integers(-9, 10, n), rng.integers(-9, 10, m)
    for ours, theirs in ((oracle.correlate, np.correlate), (oracle.convolve, np.convolve)):
        got, expected = ours(a, v, mode), theirs(a, v, mode)
        if mode == "same" and m > n:
            # documented difference: numpy's 'same' returns max(n, m) samples, scipy's (and ours) n
            assert len(expected) == m and len(got) == n
        else:
            assert np.array_equal(got, expected)


def test_even_kernel_alignment():
    a, v = [1, 2, 3, 4], [1, 10]
    # numpy/scipy put the extra zero of an even kernel at the start of 'same'
    assert oracle.correlate(a, v, "same").tolist() == np.correlate(a, v, "same").tolist() == [10, 21, 32, 43]
    # TF SAME puts it at the end: the same values shifted by one
    assert oracle.correlate(a, v, "same", odd_zero="end").tolist() == [21, 32, 43, 4]
    assert oracle.convolve(a, v, "same", odd_zero="end").tolist() == [12, 23, 34, 40]


def test_seed_examples():
    # x = [1, 2, 3, 4], W = [5, 6, 7]: x * W = [5, 16, 34, 52, 45, 28]
    assert oracle.convolve([1, 2, 3, 4], [5, 6, 7]).tolist() == [5, 16, 34, 52, 45, 28]
    # a valid correlation step: 1*5 + 2*6 + 3*7 = 38
    assert oracle.correlate([1, 2, 3], [5, 6, 7], "valid").tolist() == [1 * 5 + 2 * 6 + 3 * 7] == [38]
    # the convolution as a matrix with tied and zero weights
    m = oracle.conv_matrix(np.array([[[5, 6, 7]]]), (1, 4), padding="full", flip=True)
    assert (m @ np.array([1, 2, 3, 4])).tolist() == [5, 16, 34, 52, 45, 28]
    assert sorted(set(m[m != 0].tolist())) == [5, 6, 7] and (m == 0).sum() == 6 * 4 - 12
