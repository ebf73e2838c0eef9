"""Every worked example of the documents the project started from, reproduced with refconv."""

import numpy as np

from refconv import oracle, shapes


def test_one_d_full_convolution_and_lengths():
    x, w = [1, 2, 3, 4], [5, 6, 7]
    y = oracle.convolve(x, w)
    assert y.tolist() == [5, 16, 34, 52, 45, 28]
    # full has N + n - 1 outputs, valid N - n + 1
    assert len(y) == 4 + 3 - 1 and len(oracle.convolve(x, w, "valid")) == 4 - 3 + 1
    # the nonlinearity is applied elementwise to the feature map: f(xW) = [f(5), ..., f(28)]
    assert np.tanh(y).tolist() == [np.tanh(v) for v in [5, 16, 34, 52, 45, 28]]


def test_valid_step_is_a_dot_product():
    assert oracle.correlate([1, 2, 3], [5, 6, 7], "valid").tolist() == [38]


def test_matlab_xcorr_is_conv_with_flipped_kernel():
    x, y = np.array([1, 2, 3, 4]), np.array([5, 6, 7])
    assert np.array_equal(oracle.correlate(x, y), oracle.convolve(x, y[::-1]))


def test_windows_times_weight_matrix():
    """a_i = sigma(x_{i:i+n} . w); two filters stacked as W = [w1 w2] give A = sigma(X W)."""
    x = np.array([1, 2, 3, 4, 5, 6])
    w1, w2 = np.array([5, 6, 7]), np.array([1, 0, -1])
    windows = np.lib.stride_tricks.sliding_window_view(x, 3)  # rows x_{i:i+n}
    xw = windows @ np.stack([w1, w2], axis=1)
    y = oracle.conv(x[None, None], np.stack([w1, w2])[:, None])
    assert np.array_equal(xw.T, y[0])


def test_image_32x32x3_with_5x5x3_filters():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 3, 32, 32))  # pixel intensities 0..255
    w = np.ones((1, 3, 5, 5), dtype=np.int64)
    y = oracle.conv(x, w)
    assert y.shape == (1, 1, 28, 28) and 28 * 28 == 784
    # every position is one dot product of 5*5*3 = 75 multiplications
    assert y[0, 0, 7, 11] == x[0, :, 7:12, 11:16].sum()
    two = oracle.conv(x, rng.integers(-2, 3, (2, 3, 5, 5)))
    assert two.shape == (1, 2, 28, 28)  # two filters -> 28x28x2


def test_alexnet_first_layer():
    assert (227 - 11) // 4 + 1 == 55 == shapes.conv_output_size(227, 11, stride=4)
    x = np.ones((1, 3, 227, 227), dtype=np.int64)
    w = np.ones((96, 3, 11, 11), dtype=np.int64)
    y = oracle.conv(x, w, stride=4)
    assert y.shape == (1, 96, 55, 55) and (y == 11 * 11 * 3).all()
    assert shapes.conv_geometry(224, 11, stride=4).unread_input == 1


def test_convolution_layer_is_a_sparse_tied_fully_connected_layer():
    w = np.array([[[5, 6, 7]]])
    m = oracle.conv_matrix(w, (1, 6))
    assert m.shape == (4, 6)
    # each row is the kernel shifted by one: tied weights; everything else is zero
    for i in range(4):
        assert m[i].tolist() == [0] * i + [5, 6, 7] + [0] * (3 - i)
    # the backward pass through the matrix is the transposed matrix, i.e. the input gradient
    g = np.array([1, -2, 3, 4])
    assert np.array_equal(m.T @ g, oracle.conv_grad_input(g[None, None], w, (1, 1, 6))[0, 0])
    # tied weights receive the sum of their gradients: dL/dw_k = sum_i g_i x_{i+k}
    x = np.arange(1, 7)
    dw = oracle.conv_grad_weight(x[None, None], g[None, None], (1, 1, 3))[0, 0]
    assert dw.tolist() == [sum(g[i] * x[i + k] for i in range(4)) for k in range(3)]
