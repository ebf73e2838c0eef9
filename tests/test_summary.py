"""refconv.summary: the vocabulary, the zoo against published figures, the table, warnings, symbolic mode."""

from __future__ import annotations

import sympy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv.params import ConvParamError
from refconv.summary import (
    LRN,
    AdaptiveAvgPool,
    BatchNorm,
    Concat,
    Conv,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool,
    ReLU,
    Residual,
    Sequential,
    zoo,
)
from refconv.summary.table import LayerError, summarize

# ---- published figures (torchvision's model documentation; LeCun et al. 1998) ---------

PUBLISHED_PARAMS = {
    "lenet5": 61_706,
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


@pytest.mark.parametrize("name,count", list(PUBLISHED_PARAMS.items()))
def test_published_parameter_counts(name, count):
    assert zoo.get(name).num_params() == count


def test_alexnet_original_parameters_by_hand():
    # conv1 96*3*11*11+96, conv2 256*48*25+256, conv3 384*256*9+384, conv4 384*192*9+384,
    # conv5 256*192*9+256, fc6 4096*9216+4096, fc7 4096*4096+4096, fc8 1000*4096+1000
    by_hand = [34_944, 307_456, 885_120, 663_936, 442_624, 37_752_832, 16_781_312, 4_097_000]
    rows = [r for r in summarize(zoo.get("alexnet_original")).rows if r.params]
    assert [r.params for r in rows] == by_hand
    assert sum(by_hand) == 60_965_224 == zoo.get("alexnet_original").num_params()


def test_seed_shape_examples():
    assert Conv(1, 5).output_shape((3, 32, 32)) == (1, 28, 28)  # 32x32x3 input, 5x5x3 filter
    assert Conv(96, 11, stride=4).output_shape((3, 227, 227)) == (96, 55, 55)  # AlexNet conv1
    first = summarize(zoo.get("alexnet_original")).rows[0]
    assert (first.path, first.output_shape) == ("conv1", (96, 55, 55))


def test_published_multiply_adds():
    # torchvision reports 15.47 GFLOPS (multiply-adds) for VGG-16, 4.09 for ResNet-50, 0.71 for AlexNet
    assert round(summarize(zoo.get("vgg16")).macs / 1e9, 2) == 15.47
    assert round(summarize(zoo.get("resnet50")).macs / 1e9, 2) == 4.09
    assert round(summarize(zoo.get("alexnet")).macs / 1e9, 2) == 0.71


def test_receptive_fields_published():
    # Araujo, Norris, Sim (Distill 2019): AlexNet 195, VGG-16 212 at the last pooling layer
    s = summarize(zoo.get("vgg16"))
    by_path = {r.path: r for r in s.rows}
    assert by_path["features.30"].receptive_field == (212, 212) and by_path["features.30"].jump == (32, 32)
    assert by_path["features.28"].receptive_field == (196, 196)  # conv5_3
    pool5 = {r.path: r for r in summarize(zoo.get("alexnet_original")).rows}["pool5"]
    assert pool5.receptive_field == (195, 195)
    assert pool5.jump == (32, 32)


# ---- the table on a network small enough to count by hand -------------------------


def _tiny():
    return Sequential([Conv(2, 3, padding=1), BatchNorm(), ReLU(), MaxPool(2), Flatten(), Linear(3)])


def test_tiny_network_by_hand():
    s = summarize(_tiny(), (1, 4, 4), batch=8, dtype="float16")
    assert [r.output_shape for r in s.rows] == [(2, 4, 4), (2, 4, 4), (2, 4, 4), (2, 2, 2), (8,), (3,)]
    assert [r.params for r in s.rows] == [20, 4, 0, 0, 0, 27]  # 2*1*9+2; gamma, beta; 3*8+3
    assert [r.buffers for r in s.rows] == [0, 4, 0, 0, 0, 0]  # running mean and variance
    assert [r.macs for r in s.rows] == [288, 0, 0, 0, 0, 24]  # 32 outputs * 9; 3 * 8
    assert [r.macs_bias for r in s.rows] == [320, 0, 0, 0, 0, 27]
    assert (s.params, s.buffers, s.macs, s.macs_bias) == (51, 4, 312, 347)
    # input 16 + conv 32 + bn 32 + relu 32 + pool 8 + flatten (a view) 0 + linear 3
    assert s.forward_elements == 123 and s.training_elements == 246
    t = s.totals()
    assert t["forward_bytes_per_image"] == 246 and t["training_bytes_per_image"] == 492
    assert t["forward_bytes_batch"] == 246 * 8 and t["param_bytes"] == 110
    assert summarize(_tiny(), (1, 4, 4), inplace=True).forward_elements == 123 - 32


def test_receptive_field_by_hand():
    s = summarize(Sequential([Conv(1, 3), Conv(1, 3, stride=2), Conv(1, 3, dilation=2), Flatten()]), (1, 20, 20))
    # 3; 3 + 2 = 5 (jump 2); 5 + 2*2*2 = 13; flatten mixes the axes
    assert [r.receptive_field for r in s.rows] == [(3, 3), (5, 5), (13, 13), None]
    assert [r.jump for r in s.rows] == [(1, 1), (2, 2), (2, 2), None]


def test_branches_and_residual_rows():
    inc = Concat([Conv(4, 1), Sequential([Conv(2, 1), Conv(6, 5, padding=2)]), MaxPool(3, 1, padding=1)], name="inc")
    net = Sequential([inc, Residual(Conv(13, 3, padding=1), name="res")])
    s = summarize(net, (3, 8, 8))
    by_path = {r.path: r for r in s.rows}
    assert by_path["inc"].kind == "concat" and by_path["inc"].output_shape == (13, 8, 8)
    assert by_path["inc.b1.1"].receptive_field == (5, 5)  # the widest branch sets the merge's field
    assert by_path["inc"].receptive_field == (5, 5)
    assert by_path["res"].kind == "add" and by_path["res"].receptive_field == (7, 7)
    assert s.params == (4 * 3 + 4) + (2 * 3 + 2) + (6 * 2 * 25 + 6) + (13 * 13 * 9 + 13)


def test_googlenet_aux_side_outputs():
    s = summarize(zoo.get("googlenet_aux"))
    assert [p for p, _ in s.side_outputs] == ["aux1", "aux2"]
    assert s.output_shape == (1000,)
    assert s.params - summarize(zoo.get("googlenet")).params == 2 * (128 * 512 + 2 * 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000) + 128 * 16


# ---- warnings ------------------------------------------------------------------------


def test_alexnet_224_versus_227():
    at224 = summarize(zoo.get("alexnet_original"), (3, 224, 224))
    unread = [w for w in at224.warnings if w.category == "unread" and w.path == "conv1"]
    assert len(unread) == 2 and "last 1 of 224" in unread[0].message and "223..226" in unread[0].message
    channels = [w for w in at224.warnings if w.category == "channels"]
    assert [w.path for w in channels] == ["fc6"] and "9216" in channels[0].message and "6400" in channels[0].message
    assert summarize(zoo.get("alexnet_original"), (3, 227, 227)).warnings == ()
    # torchvision's variant pads conv1 by 2: at 224 every input row is read
    assert not [w for w in summarize(zoo.get("alexnet")).warnings if w.path.startswith("features.0")]


def test_channel_and_window_warnings():
    s = summarize(Sequential([Conv(4, 3, in_channels=3), BatchNorm(num_features=5), Conv(2, 5, padding=2)]), (1, 3, 3))
    cats = [(w.path, w.category) for w in s.warnings]
    assert ("0", "channels") in cats and ("1", "channels") in cats
    assert ("2", "window") in cats  # a 5-wide window on a 1x1 map fits only with the padding
    assert s.rows[0].params == 4 * 3 * 9 + 4  # counted for the declared 3 input channels


@pytest.mark.parametrize("name", ["alexnet", "alexnet_original", "vgg16", "googlenet", "googlenet_original", "resnet18"])
def test_zoo_declares_three_input_channels(name):
    s = summarize(zoo.get(name), (1, 224, 224))  # a grey image given to a colour network
    assert [w.category for w in s.warnings if w.category == "channels"][:1] == ["channels"]
    assert s.params == PUBLISHED_PARAMS.get(name, zoo.get(name).num_params())  # counted as written: 3 channels


def test_zoo_at_its_own_input_is_clean():
    assert {name: summarize(zoo.get(name)).warnings for name in zoo.names()} == {name: () for name in zoo.names()}


def test_resnet_projection_is_not_flagged():
    # a 1x1 stride-2 projection skips every other row by design: no unread warning
    assert not [w for w in summarize(zoo.get("resnet50")).warnings if w.category == "unread"]


# ---- errors name the layer and the field ---------------------------------------------


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda: Conv(0, 3), "Conv.out_channels=0"),
        (lambda: Conv(4, 3, stride=0), "Conv.stride=0"),
        (lambda: Conv(True, 3), "Conv.out_channels=True"),
        (lambda: Conv(4, 3, padding="SAME"), "Conv.padding='SAME'"),
        (lambda: Conv(4, 3, padding=((1, -1),)), "Conv.padding="),
        (lambda: Conv(4, 3, groups=3), "Conv.groups=3"),
        (lambda: Conv(4, 3, groups=2, in_channels=3), "Conv.groups=2: must divide in_channels=3"),
        (lambda: MaxPool(0), "MaxPool.kernel_size=0"),
        (lambda: MaxPool(2, ceil_mode=1), "MaxPool.ceil_mode=1"),
        (lambda: BatchNorm(momentum=2), "BatchNorm.momentum=2"),
        (lambda: Dropout(1.5), "Dropout.p=1.5"),
        (lambda: LRN(size=0), "LRN.size=0"),
        (lambda: Linear(10, in_features=0), "Linear.in_features=0"),
        (lambda: AdaptiveAvgPool(0), "AdaptiveAvgPool.output_size=0"),
        (lambda: Sequential(Conv(4, 3)), "Sequential.layers="),
        (lambda: Concat([]), "Concat.branches=[]"),
        (lambda: Residual("conv"), "Residual.body='conv'"),
    ],
)
def test_field_errors(make, needle):
    with pytest.raises(ConvParamError) as e:
        make()
    assert needle in str(e.value)


@pytest.mark.parametrize(
    "net,shape,needle",
    [
        (Sequential([Conv(4, 3), Linear(10)]), (1, 8, 8), "layer '1' (linear): input shape (4, 6, 6): Linear needs a flat input"),
        (Sequential([Conv(4, 7, name="big")]), (1, 5, 5), "layer 'big' (conv): Conv.kernel_size=7"),
        (Sequential([MaxPool(7)]), (1, 5, 5), "layer '0' (maxpool): "),
        (Sequential([Residual(Conv(8, 3, padding=1), name="r")]), (4, 5, 5), "layer 'r' (residual)"),
        (Sequential([Concat([Conv(2, 1), Conv(2, 3)], name="c")]), (1, 5, 5), "layer 'c' (concat): Concat.branches[1]"),
        (Sequential([Conv(4, 3, groups=2)]), (3, 5, 5), "layer '0' (conv): groups=2"),
    ],
)
def test_shape_errors_name_the_layer(net, shape, needle):
    with pytest.raises(LayerError) as e:
        summarize(net, shape)
    assert needle in str(e.value)


def test_summarize_argument_errors():
    with pytest.raises(ConvParamError, match="dtype='float13'"):
        summarize(zoo.get("lenet5"), dtype="float13")
    with pytest.raises(ConvParamError, match=r"input_shape=\(1, 0, 32\)"):
        summarize(zoo.get("lenet5"), (1, 0, 32))
    with pytest.raises(ConvParamError, match="no input shape"):
        summarize(Sequential([ReLU()]))
    with pytest.raises(ConvParamError, match="network='resnet51'"):
        zoo.get("resnet51")


# ---- symbolic input ------------------------------------------------------------------

H, W = sympy.symbols("H W", positive=True, integer=True)


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "alexnet_original", "vgg11", "googlenet", "resnet18", "resnet50"])
def test_symbolic_shapes_agree_with_numbers(name):
    c = 1 if name == "lenet5" else 3
    sym = summarize(zoo.get(name), (c, H, W))
    sizes = [(32, 32), (40, 37)] if name == "lenet5" else [(224, 224), (227, 230), (193, 256)]
    for h, w in sizes:
        num = summarize(zoo.get(name), (c, h, w))
        subs = [tuple(int(sympy.sympify(v).subs({H: h, W: w})) for v in r.output_shape) for r in sym.rows]
        assert subs == [r.output_shape for r in num.rows], (name, h, w)
        assert int(sympy.sympify(sym.macs).subs({H: h, W: w})) == num.macs
        assert int(sympy.sympify(sym.forward_elements).subs({H: h, W: w})) == num.forward_elements


def test_symbolic_parameters_of_a_flattened_head():
    net = Sequential([Conv(6, 5), Flatten(), Linear(10)])
    p = net.num_params((1, H, W))
    assert sympy.expand(p - (156 + 10 * 6 * (H - 4) * (W - 4) + 10)) == 0


def test_symbolic_same_padding_and_ceil_mode():
    out = Sequential([Conv(8, 3, stride=2, padding="same"), MaxPool(3, 2, ceil_mode=True)]).output_shape((3, H, W))
    for h in range(5, 40):
        num = Sequential([Conv(8, 3, stride=2, padding="same"), MaxPool(3, 2, ceil_mode=True)]).output_shape((3, h, h))
        assert int(out[1].subs(H, h)) == num[1]


@settings(max_examples=40)
@given(
    k=st.integers(1, 6), stride=st.integers(1, 3), pad=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.integers(1, 2), n=st.integers(1, 30),
)
def test_conv_symbolic_twin(k, stride, pad, dilation, n):
    layer = Conv(2, (k, 1), stride=stride, padding=(pad, 0), dilation=dilation)
    sym = layer.output_shape((1, H, 4))[1]
    span = dilation * (k - 1) + 1
    if span > n + sum(pad):
        with pytest.raises(ConvParamError):
            layer.output_shape((1, n, 4))
        return
    # the defining count: window starts 0, s, 2s, ... with start + span <= n + lo + hi
    by_count = len(range(0, n + sum(pad) - span + 1, stride))
    assert layer.output_shape((1, n, 4))[1] == by_count == int(sym.subs(H, n))


def test_global_pool_and_adaptive():
    assert GlobalAvgPool().output_shape((7, 3, 5)) == (7, 1, 1)
    s = summarize(Sequential([Conv(4, 3), AdaptiveAvgPool(6)]), (1, 4, 4))
    assert [w.category for w in s.warnings] == ["window", "window"]  # 6 bins on a 2x2 map
    # 3 bins over 9 rows are 3-wide windows 3 apart; over 8 rows they are uneven and the field ends
    even = summarize(Sequential([Conv(4, 3), AdaptiveAvgPool(3), Conv(2, 1)]), (1, 11, 11))
    assert [r.receptive_field for r in even.rows] == [(3, 3), (5, 5), (5, 5)]
    uneven = summarize(Sequential([Conv(4, 3), AdaptiveAvgPool(3), Conv(2, 1)]), (1, 10, 10))
    assert [r.receptive_field for r in uneven.rows] == [(3, 3), None, None]


def test_symbolic_pool_padding_over_half_the_window_is_defined():
    # windows entirely in the padding exist (specs/pooling.md): the shape is the pooling formula all the same
    assert MaxPool(2, padding=2).output_shape((1, H, W)) == (1, sympy.floor(H / 2) + 2, sympy.floor(W / 2) + 2)
    with pytest.raises(ConvParamError):
        MaxPool(2, padding=-1).output_shape((1, H, W))
