"""Every invalid argument raises ConvParamError naming the argument, its value and the rule."""

import numpy as np
import pytest

from refconv import oracle
from refconv.params import ConvParamError, conv_params, conv_transpose_params, pool_params

X1 = (1, 1, 5)
W1 = (1, 1, 3)

# (the call as a user writes it, a fragment the message must contain)
INVALID = [
    ("conv_params(X1, W1, stride=0)", "stride=0"),
    ("conv_params(X1, W1, stride=-2)", "stride=-2"),
    ("conv_params(X1, W1, stride=1.5)", "stride=1.5"),
    ("conv_params(X1, W1, stride=True)", "stride=True"),
    ("conv_params(X1, W1, stride=(1, 1))", "expected one int or 1 ints"),
    ("conv_params(X1, W1, dilation=0)", "dilation=0"),
    ("conv_params(X1, W1, padding=-1)", "padding=-1"),
    ("conv_params(X1, W1, padding=((0, -1),))", "padding=((0, -1),)"),
    ("conv_params(X1, W1, padding=True)", "padding=True"),
    ("conv_params(X1, W1, padding=1.0)", "padding=1.0"),
    ("conv_params(X1, W1, padding='SAME')", "padding strings are"),
    ("conv_params(X1, W1, padding=(1, 1))", "one entry per spatial axis"),
    ("conv_params((1, 3, 5), (2, 1, 3), groups=2)", "groups must divide C_in=3"),
    ("conv_params((1, 4, 5), (3, 2, 3), groups=2)", "groups must divide C_out=3"),
    ("conv_params((1, 4, 5), (2, 4, 3), groups=2)", "w.shape[1]=4: must equal C_in / groups = 4 / 2 = 2"),
    ("conv_params(X1, W1, groups=0)", "groups=0"),
    ("conv_params(X1, W1, groups=True)", "groups=True"),
    ("conv_params(X1, (1, 1, 3, 3))", "w.ndim=4"),
    ("conv_params((1, 5), (1, 1))", "x.ndim=2"),
    ("conv_params(X1, (1, 1, 7))", "the dilated kernel spans 7"),
    ("conv_params(X1, W1, dilation=3)", "the dilated kernel spans 7"),
    ("conv_params(X1, (1, 1, 0))", "every kernel size must be >= 1"),
    ("conv_params(X1, W1, (2,))", "b.shape=(2,)"),
    ("conv_params(X1, W1, flip='yes')", "flip='yes'"),
    ("conv_params((1, 1, -5), W1)", "every dimension must be an integer >= 0"),
    ("conv_transpose_params((1, 1, 4), (1, 1, 3), stride=2, output_padding=2)", "output_padding=(2,)"),
    ("conv_transpose_params((1, 1, 4), (1, 1, 3), output_padding=1)", "smaller than its stride"),
    ("conv_transpose_params((1, 2, 4), (1, 1, 3))", "w.shape[0]=1"),
    ("conv_transpose_params((1, 1, 1), (1, 1, 1), padding=1)", "crops the whole output"),
    ("pool_params((1, 1, 5), 2, divisor_override=0)", "divisor_override=0"),
    ("pool_params((1, 1, 1), 3, dilation=2)", "larger than the padded input 1"),
    ("oracle.max_unpool(np.ones((1, 1, 2)), np.array([[[0, 9]]]), 2)", "indices[0, 0, 1]=9"),
    ("oracle.lp_pool(np.ones((1, 1, 4)), 0.5, 2)", "p=0.5"),
    ("oracle.adaptive_avg_pool(np.ones((1, 1, 4)), 0)", "output_size=0"),
    ("pool_params((1, 1, 5), 0)", "kernel_size=0"),
    ("pool_params((1, 1, 5), 2, stride=0)", "stride=0"),
    ("pool_params((1, 1, 5), 2, ceil_mode=1)", "ceil_mode=1"),
    ("pool_params((1, 1, 5), 2, count_include_pad=None)", "count_include_pad=None"),
    ("pool_params((1, 1, 2), 3, padding=0)", "larger than the padded input"),
    ("oracle.conv(np.zeros(5), np.zeros((1, 1, 3)))", "x.ndim=1"),
    ("oracle.max_pool(np.zeros(5), (2, 2))", "x.ndim=1: expected 4 axes (N, C, *spatial) or 3 (C, *spatial)"),
    ("oracle.fractional_max_pool(np.zeros(X1), 2, 3, [[[2.0]]])", "samples[0, 0, 0]=2.0"),
    ("oracle.fractional_max_pool(np.zeros(X1), 2, 3, [[['a']]])", "samples.dtype=<U1"),
    ("oracle.fractional_max_pool(np.zeros(X1), 2, 0, [[[0.5]]])", "output_size=0"),
    ("oracle.conv(np.zeros((1, 1, 5)), np.zeros((1, 1, 3), dtype=bool))", "w.dtype=bool"),
    ("oracle.conv(np.zeros((1, 1, 5)), np.zeros((1, 1, 3), dtype=complex))", "w.dtype=complex128"),
    ("oracle.conv(np.array([[['a', 'b']]]), np.zeros((1, 1, 1)))", "x.dtype=<U1"),
    ("oracle.conv_grad_input(np.zeros((1, 1, 2)), np.zeros(W1), X1)", "dy.shape=(1, 1, 2)"),
    ("oracle.conv_grad_weight(np.zeros(X1), np.zeros((1, 1, 4)), W1)", "dy.shape=(1, 1, 4)"),
    ("oracle.max_pool_grad(np.zeros((1, 1, 1)), np.zeros(X1), 2)", "dy.shape=(1, 1, 1)"),
    ("oracle.correlate([1, 2], [1], mode='middle')", "mode='middle'"),
    ("oracle.correlate([1, 2], [1], odd_zero='left')", "odd_zero='left'"),
    ("oracle.correlate([[1, 2]], [1])", "a.ndim=2, v.ndim=1"),
    ("oracle.convolve([[1, 2, 3]], [[1], [2]], mode='valid')", "one input must be at least as large"),
]


@pytest.mark.parametrize("call, fragment", INVALID, ids=[c for c, _ in INVALID])
def test_invalid_argument_is_named(call, fragment):
    ns = dict(
        conv_params=conv_params, conv_transpose_params=conv_transpose_params, pool_params=pool_params,
        oracle=oracle, np=np, X1=X1, W1=W1,
    )
    with pytest.raises(ConvParamError) as info:
        eval(call, ns)
    assert fragment in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError)


VALID_FORMS = [
    ("padding=1", dict(padding=1), ((1, 1), (1, 1))),
    ("padding=(1, 2)", dict(padding=(1, 2)), ((1, 1), (2, 2))),
    ("padding=((0, 1), (2, 0))", dict(padding=((0, 1), (2, 0))), ((0, 1), (2, 0))),
    ("padding=[(0, 1), 3]", dict(padding=[(0, 1), 3]), ((0, 1), (3, 3))),
    ("padding='valid'", dict(padding="valid"), ((0, 0), (0, 0))),
    ("padding='full'", dict(padding="full"), ((2, 2), (2, 2))),
    ("padding='same'", dict(padding="same"), ((1, 1), (1, 1))),
    ("padding='same', stride=2", dict(padding="same", stride=2), ((0, 1), (0, 1))),
    ("padding='same_lower', stride=2", dict(padding="same_lower", stride=2), ((1, 0), (1, 0))),
    ("padding=np.int64(1)", dict(padding=np.int64(1)), ((1, 1), (1, 1))),
]


@pytest.mark.parametrize("form, kwargs, expected", VALID_FORMS, ids=[f for f, _, _ in VALID_FORMS])
def test_padding_forms_normalize(form, kwargs, expected):
    p = conv_params((1, 1, 6, 6), (1, 1, 3, 3), **kwargs)
    assert p.padding == expected


def test_params_are_frozen():
    p = conv_params((1, 1, 5), (1, 1, 3))
    with pytest.raises(AttributeError):
        p.stride = (2,)  # type: ignore[misc]


def test_same_padding_gives_ceil_output():
    for n in range(1, 12):
        for k in range(1, 6):
            for s in range(1, 4):
                for d in range(1, 3):
                    p = conv_params((1, 1, n), (1, 1, k), padding="same", stride=s, dilation=d) if d * (k - 1) + 1 <= n + 2 * d * k else None
                    assert p.output_spatial == (-(-n // s),)
