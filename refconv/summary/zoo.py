"""The model zoo: published architectures as layer descriptions, named as torchvision spells them.

Each entry: name, usual input, trainable parameters, variant.

* ``lenet5``: 1x32x32, 61,706.  LeCun et al. 1998 with C3 fully connected,
  tanh, parameter-free average subsampling.
* ``alexnet``: 3x224x224, 61,100,840.  torchvision's single-tower AlexNet
  (64-192-384-256-256, no LRN, adaptive 6x6 pooling).
* ``alexnet_original``: 3x227x227, 60,965,224.  Krizhevsky et al. 2012:
  96-256-384-384-256, LRN, two-tower grouping (``groups=2``).
* ``vgg11``, ``vgg13``, ``vgg16``, ``vgg19``: 3x224x224, 132,863,336 /
  133,047,848 / 138,357,544 / 143,667,240.  Simonyan & Zisserman
  configurations A, B, D, E; ``vgg11_bn`` ... ``vgg19_bn`` add batch norm.
* ``googlenet``: 3x224x224, 6,624,904.  torchvision's Inception v1 without
  auxiliary classifiers (convolution + batch norm; a 3x3 convolution in the
  "5x5" branch, as torchvision has it).
* ``googlenet_aux``: 13,004,888, the same with both auxiliary classifiers.
* ``googlenet_original``: 3x224x224, 6,998,552.  Szegedy et al. 2014 as
  published: biases, LRN, true 5x5 branches, no batch norm.
* ``resnet18``, ``resnet34``, ``resnet50``, ``resnet101``, ``resnet152``:
  3x224x224, 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 /
  60,192,808.  He et al. 2015 as in torchvision (v1.5: a bottleneck's stride
  sits in its 3x3 convolution).

Examples
--------
>>> net = get("vgg16")
>>> net.input_shape, net.num_params()
((3, 224, 224), 138357544)
>>> get("alexnet_original").output_shape((3, 227, 227))
(1000,)
>>> get("resnet51")
Traceback (most recent call last):
    ...
refconv.params.ConvParamError: network='resnet51': not in the zoo; names are lenet5, alexnet, alexnet_original, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn, googlenet, googlenet_aux, googlenet_original, resnet18, resnet34, resnet50, resnet101, resnet152
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..params import ConvParamError
from .layers import (
    LRN,
    AdaptiveAvgPool,
    BatchNorm,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Layer,
    Linear,
    MaxPool,
    AvgPool,
    ReLU,
    Residual,
    Sequential,
    SideOutput,
    Tanh,
)

__all__ = ["Network", "ZOO", "get", "names"]


@dataclass(frozen=True)
class Network:
    """A named network: a :class:`~refconv.summary.layers.Sequential` and its usual input shape.

    >>> net = Network("tiny", Sequential([Conv(4, 3), ReLU()]), (1, 8, 8))
    >>> net.output_shape(), net.num_params()
    ((4, 6, 6), 40)
    """

    name: str
    layers: Sequential
    input_shape: Optional[tuple[Any, ...]] = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.layers, Sequential):
            if isinstance(self.layers, (list, tuple)):
                object.__setattr__(self, "layers", Sequential(self.layers))
            elif isinstance(self.layers, Layer):
                object.__setattr__(self, "layers", Sequential([self.layers]))
            else:
                raise ConvParamError(f"Network.layers={self.layers!r}: must be a list of layer descriptions")
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(self.input_shape))

    def _shape(self, shape: Optional[tuple[Any, ...]]) -> tuple[Any, ...]:
        shape = self.input_shape if shape is None else shape
        if shape is None:
            raise ConvParamError(f"network {self.name!r}: no input shape given and none recorded")
        return tuple(shape)

    def output_shape(self, shape: Optional[tuple[Any, ...]] = None) -> tuple[Any, ...]:
        """Output shape for ``shape`` (default: the recorded input shape)."""
        return self.layers.output_shape(self._shape(shape))

    def num_params(self, shape: Optional[tuple[Any, ...]] = None) -> Any:
        """Trainable parameters for ``shape`` (default: the recorded input shape)."""
        return self.layers.num_params(self._shape(shape))


def _net(name: str, layers: list[Layer], shape: tuple[int, ...], description: str) -> Network:
    return Network(name, Sequential(layers), shape, description)


# ---- LeNet-5 -------------------------------------------------------------------------


def lenet5(num_classes: int = 10) -> Network:
    """LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) with every C3 map connected to all S2 maps.

    C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850 = 61,706 parameters;
    the subsampling layers are plain 2x2 averages (the paper's trainable
    coefficient and bias per map, 12 + 32 parameters, are left out) and the
    output is a linear layer (the paper's RBF units hold 840 fixed weights).

    >>> net = lenet5()
    >>> [layer.output_shape(s) for layer, s in zip(net.layers.layers[:3], [(1, 32, 32), (6, 28, 28), (6, 28, 28)])]
    [(6, 28, 28), (6, 28, 28), (6, 14, 14)]
    >>> net.num_params()
    61706
    """
    return _net(
        "lenet5",
        [
            Conv(6, 5, in_channels=1, name="c1"), Tanh(), AvgPool(2, name="s2"),
            Conv(16, 5, name="c3"), Tanh(), AvgPool(2, name="s4"),
            Conv(120, 5, name="c5"), Tanh(), Flatten(),
            Linear(84, in_features=120, name="f6"), Tanh(), Linear(num_classes, name="output"),
        ],
        (1, 32, 32),
        "LeNet-5, LeCun et al. 1998, fully connected C3",
    )


# ---- AlexNet -------------------------------------------------------------------------


def alexnet(num_classes: int = 1000) -> Network:
    """torchvision's AlexNet: one tower, 64-192-384-256-256 channels, no LRN, adaptive 6x6 pooling.

    >>> alexnet().num_params()
    61100840
    """
    features = Sequential([
        Conv(64, 11, stride=4, padding=2, in_channels=3), ReLU(), MaxPool(3, 2),
        Conv(192, 5, padding=2), ReLU(), MaxPool(3, 2),
        Conv(384, 3, padding=1), ReLU(),
        Conv(256, 3, padding=1), ReLU(),
        Conv(256, 3, padding=1), ReLU(), MaxPool(3, 2),
    ], name="features")
    classifier = Sequential([
        Dropout(0.5), Linear(4096), ReLU(), Dropout(0.5), Linear(4096), ReLU(), Linear(num_classes),
    ], name="classifier")
    return _net(
        "alexnet", [features, AdaptiveAvgPool((6, 6), name="avgpool"), Flatten(name="flatten"), classifier],
        (3, 224, 224), "AlexNet, torchvision single-tower variant",
    )


def alexnet_original(num_classes: int = 1000) -> Network:
    """AlexNet as in Krizhevsky, Sutskever, Hinton 2012, on the 227x227 input that its sizes imply.

    conv2, conv4 and conv5 see only the maps of their own GPU (``groups=2``);
    LRN after the first two ReLUs with the paper's ``k=2, n=5, alpha=1e-4,
    beta=0.75`` (``alpha`` here is ``n * 1e-4``: this vocabulary divides it by
    ``size``, as PyTorch and Caffe do).

    >>> net = alexnet_original()
    >>> net.num_params()
    60965224
    >>> net.layers.layers[0].output_shape((3, 227, 227))     # (227 - 11)/4 + 1 = 55
    (96, 55, 55)
    """
    lrn: dict[str, Any] = dict(size=5, alpha=5e-4, beta=0.75, k=2.0)
    return _net(
        "alexnet_original",
        [
            Conv(96, 11, stride=4, in_channels=3, name="conv1"), ReLU(), LRN(**lrn), MaxPool(3, 2, name="pool1"),
            Conv(256, 5, padding=2, groups=2, name="conv2"), ReLU(), LRN(**lrn), MaxPool(3, 2, name="pool2"),
            Conv(384, 3, padding=1, name="conv3"), ReLU(),
            Conv(384, 3, padding=1, groups=2, name="conv4"), ReLU(),
            Conv(256, 3, padding=1, groups=2, name="conv5"), ReLU(), MaxPool(3, 2, name="pool5"),
            Flatten(),
            Linear(4096, in_features=256 * 6 * 6, name="fc6"), ReLU(), Dropout(0.5),
            Linear(4096, name="fc7"), ReLU(), Dropout(0.5),
            Linear(num_classes, name="fc8"),
        ],
        (3, 227, 227),
        "AlexNet, Krizhevsky et al. 2012, two-tower grouping, 227x227 input",
    )


# ---- VGG -----------------------------------------------------------------------------

#: channels of each 3x3 convolution, "M" a 2x2 max pooling (Simonyan & Zisserman, Table 1)
VGG_CONFIGS: dict[str, list[Any]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def vgg(config: str, *, batch_norm: bool = False, num_classes: int = 1000) -> Network:
    """VGG as in torchvision: 3x3 convolutions (padding 1), 2x2 pooling, adaptive 7x7, three FC layers.

    >>> vgg("vgg19").num_params()
    143667240
    """
    if config not in VGG_CONFIGS:
        raise ConvParamError(f"config={config!r}: VGG configurations are {', '.join(VGG_CONFIGS)}")
    feats: list[Layer] = []
    for v in VGG_CONFIGS[config]:
        if v == "M":
            feats.append(MaxPool(2, 2))
        else:
            feats.append(Conv(v, 3, padding=1, in_channels=None if feats else 3))
            if batch_norm:
                feats.append(BatchNorm())
            feats.append(ReLU())
    classifier = Sequential([
        Linear(4096), ReLU(), Dropout(0.5), Linear(4096), ReLU(), Dropout(0.5), Linear(num_classes),
    ], name="classifier")
    name = config + ("_bn" if batch_norm else "")
    return _net(
        name, [Sequential(feats, name="features"), AdaptiveAvgPool((7, 7), name="avgpool"), Flatten(name="flatten"), classifier],
        (3, 224, 224), f"VGG, Simonyan & Zisserman 2014, configuration {config}" + (" with batch norm" if batch_norm else ""),
    )


# ---- GoogLeNet -----------------------------------------------------------------------


def _basic_conv(out: int, k: int, *, name: str = "", **kw: Any) -> Sequential:
    # torchvision's BasicConv2d: convolution without bias, batch norm (eps 1e-3), ReLU
    return Sequential([Conv(out, k, bias=False, **kw), BatchNorm(eps=1e-3), ReLU()], name=name)


def inception(c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int, *, name: str = "") -> Concat:
    """An Inception v1 module as in torchvision: its "5x5" branch uses a 3x3 convolution.

    >>> inception(64, 96, 128, 16, 32, 32).output_shape((192, 28, 28))
    (256, 28, 28)
    """
    return Concat([
        Sequential([_basic_conv(c1, 1)], name="branch1"),
        Sequential([_basic_conv(c3r, 1), _basic_conv(c3, 3, padding=1)], name="branch2"),
        Sequential([_basic_conv(c5r, 1), _basic_conv(c5, 3, padding=1)], name="branch3"),
        Sequential([MaxPool(3, 1, padding=1, ceil_mode=True), _basic_conv(pool_proj, 1)], name="branch4"),
    ], name=name)


def _aux(num_classes: int, name: str) -> SideOutput:
    # torchvision's InceptionAux: 4x4 average, 1x1 conv to 128, FC 2048 -> 1024 -> classes
    return SideOutput(Sequential([
        AdaptiveAvgPool((4, 4)), _basic_conv(128, 1), Flatten(),
        Linear(1024), ReLU(), Dropout(0.7), Linear(num_classes),
    ]), name=name)


def googlenet(*, aux_logits: bool = False, num_classes: int = 1000) -> Network:
    """GoogLeNet (Inception v1, Szegedy et al. 2014) as in torchvision.

    >>> googlenet().num_params(), googlenet(aux_logits=True).num_params()
    (6624904, 13004888)
    """
    pool = dict(ceil_mode=True)
    layers: list[Layer] = [
        _basic_conv(64, 7, stride=2, padding=3, in_channels=3, name="conv1"),
        MaxPool(3, 2, **pool, name="maxpool1"),
        _basic_conv(64, 1, name="conv2"),
        _basic_conv(192, 3, padding=1, name="conv3"),
        MaxPool(3, 2, **pool, name="maxpool2"),
        inception(64, 96, 128, 16, 32, 32, name="inception3a"),
        inception(128, 128, 192, 32, 96, 64, name="inception3b"),
        MaxPool(3, 2, **pool, name="maxpool3"),
        inception(192, 96, 208, 16, 48, 64, name="inception4a"),
    ]
    if aux_logits:
        layers.append(_aux(num_classes, "aux1"))
    layers += [
        inception(160, 112, 224, 24, 64, 64, name="inception4b"),
        inception(128, 128, 256, 24, 64, 64, name="inception4c"),
        inception(112, 144, 288, 32, 64, 64, name="inception4d"),
    ]
    if aux_logits:
        layers.append(_aux(num_classes, "aux2"))
    layers += [
        inception(256, 160, 320, 32, 128, 128, name="inception4e"),
        MaxPool(2, 2, **pool, name="maxpool4"),
        inception(256, 160, 320, 32, 128, 128, name="inception5a"),
        inception(384, 192, 384, 48, 128, 128, name="inception5b"),
        AdaptiveAvgPool((1, 1), name="avgpool"), Flatten(), Dropout(0.2, name="dropout"), Linear(num_classes, name="fc"),
    ]
    name = "googlenet_aux" if aux_logits else "googlenet"
    return _net(name, layers, (3, 224, 224), "GoogLeNet (Inception v1), torchvision" + (", with auxiliary classifiers" if aux_logits else ""))


def _inception_original(c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int, *, name: str = "") -> Concat:
    # the paper's module: convolutions with bias and ReLU, a true 5x5 branch, no batch norm
    return Concat([
        Sequential([Conv(c1, 1), ReLU()], name="branch1"),
        Sequential([Conv(c3r, 1), ReLU(), Conv(c3, 3, padding=1), ReLU()], name="branch2"),
        Sequential([Conv(c5r, 1), ReLU(), Conv(c5, 5, padding=2), ReLU()], name="branch3"),
        Sequential([MaxPool(3, 1, padding=1, ceil_mode=True), Conv(pool_proj, 1), ReLU()], name="branch4"),
    ], name=name)


def _aux_original(num_classes: int, name: str) -> SideOutput:
    # the paper's auxiliary classifier: 5x5/3 average, 1x1 conv 128, FC 1024, dropout 70%
    return SideOutput(Sequential([
        AvgPool(5, 3), Conv(128, 1), ReLU(), Flatten(), Linear(1024), ReLU(), Dropout(0.7), Linear(num_classes),
    ]), name=name)


def googlenet_original(*, aux_logits: bool = False, num_classes: int = 1000) -> Network:
    """GoogLeNet as in Szegedy et al. 2014 (Table 1): biases, no batch norm, LRN, 5x5 branches.

    Pooling rounds up (``ceil_mode``) as in the reference Caffe model; the
    classifier is a 7x7 average, 40% dropout and one linear layer.

    >>> googlenet_original().num_params()
    6998552
    """
    lrn: dict[str, Any] = dict(size=5, alpha=1e-4, beta=0.75)
    pool = dict(ceil_mode=True)
    layers: list[Layer] = [
        Conv(64, 7, stride=2, padding=3, in_channels=3, name="conv1"), ReLU(), MaxPool(3, 2, **pool, name="pool1"), LRN(**lrn),
        Conv(64, 1, name="conv2_reduce"), ReLU(), Conv(192, 3, padding=1, name="conv2"), ReLU(), LRN(**lrn),
        MaxPool(3, 2, **pool, name="pool2"),
        _inception_original(64, 96, 128, 16, 32, 32, name="inception3a"),
        _inception_original(128, 128, 192, 32, 96, 64, name="inception3b"),
        MaxPool(3, 2, **pool, name="pool3"),
        _inception_original(192, 96, 208, 16, 48, 64, name="inception4a"),
    ]
    if aux_logits:
        layers.append(_aux_original(num_classes, "aux1"))
    layers += [
        _inception_original(160, 112, 224, 24, 64, 64, name="inception4b"),
        _inception_original(128, 128, 256, 24, 64, 64, name="inception4c"),
        _inception_original(112, 144, 288, 32, 64, 64, name="inception4d"),
    ]
    if aux_logits:
        layers.append(_aux_original(num_classes, "aux2"))
    layers += [
        _inception_original(256, 160, 320, 32, 128, 128, name="inception4e"),
        MaxPool(3, 2, **pool, name="pool4"),
        _inception_original(256, 160, 320, 32, 128, 128, name="inception5a"),
        _inception_original(384, 192, 384, 48, 128, 128, name="inception5b"),
        AvgPool(7, 1, name="pool5"), Flatten(), Dropout(0.4), Linear(num_classes, in_features=1024, name="fc"),
    ]
    return _net("googlenet_original", layers, (3, 224, 224), "GoogLeNet, Szegedy et al. 2014, as published")


# ---- ResNet --------------------------------------------------------------------------


def _conv_bn(out: int, k: int, stride: int = 1) -> list[Layer]:
    return [Conv(out, k, stride=stride, padding=k // 2, bias=False), BatchNorm()]


def _projection(out: int, stride: int) -> Sequential:
    return Sequential(_conv_bn(out, 1, stride), name="downsample")


def basic_block(planes: int, stride: int = 1, *, project: bool = False, name: str = "") -> Sequential:
    """ResNet's basic block: 3x3, 3x3, plus the shortcut, then ReLU.

    >>> basic_block(128, 2, project=True).output_shape((64, 56, 56))
    (128, 28, 28)
    """
    body = Sequential([*_conv_bn(planes, 3, stride), ReLU(), *_conv_bn(planes, 3)], name="body")
    return Sequential([Residual(body, _projection(planes, stride) if project else None), ReLU()], name=name)


def bottleneck(planes: int, stride: int = 1, *, project: bool = False, name: str = "") -> Sequential:
    """ResNet's bottleneck (v1.5): 1x1 to ``planes``, 3x3 with the stride, 1x1 to ``4 * planes``.

    >>> bottleneck(64, project=True).output_shape((64, 56, 56))
    (256, 56, 56)
    """
    body = Sequential([
        *_conv_bn(planes, 1), ReLU(), *_conv_bn(planes, 3, stride), ReLU(), *_conv_bn(4 * planes, 1),
    ], name="body")
    return Sequential([Residual(body, _projection(4 * planes, stride) if project else None), ReLU()], name=name)


RESNET_DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def resnet(depth: int, *, num_classes: int = 1000) -> Network:
    """ResNet-``depth`` (He, Zhang, Ren, Sun 2015) as in torchvision.

    >>> resnet(50).num_params()
    25557032
    """
    if depth not in RESNET_DEPTHS:
        raise ConvParamError(f"depth={depth!r}: ResNet depths are {', '.join(map(str, RESNET_DEPTHS))}")
    kind, counts = RESNET_DEPTHS[depth]
    block, expansion = (basic_block, 1) if kind == "basic" else (bottleneck, 4)
    layers: list[Layer] = [
        Conv(64, 7, stride=2, padding=3, bias=False, in_channels=3, name="conv1"), BatchNorm(name="bn1"), ReLU(name="relu"),
        MaxPool(3, 2, padding=1, name="maxpool"),
    ]
    channels = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), counts), 1):
        blocks: list[Layer] = []
        for i in range(n):
            stride = 2 if (i == 0 and stage > 1) else 1
            project = i == 0 and (stride != 1 or channels != planes * expansion)
            blocks.append(block(planes, stride, project=project, name=str(i)))
            channels = planes * expansion
        layers.append(Sequential(blocks, name=f"layer{stage}"))
    layers += [AdaptiveAvgPool((1, 1), name="avgpool"), Flatten(), Linear(num_classes, name="fc")]
    return _net(f"resnet{depth}", layers, (3, 224, 224), f"ResNet-{depth}, He et al. 2015, torchvision")


#: zoo name -> builder (each takes ``num_classes``)
ZOO: dict[str, Callable[..., Network]] = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "alexnet_original": alexnet_original,
    **{name: (lambda name=name, **kw: vgg(name, **kw)) for name in VGG_CONFIGS},
    **{f"{name}_bn": (lambda name=name, **kw: vgg(name, batch_norm=True, **kw)) for name in VGG_CONFIGS},
    "googlenet": googlenet,
    "googlenet_aux": lambda **kw: googlenet(aux_logits=True, **kw),
    "googlenet_original": googlenet_original,
    **{f"resnet{d}": (lambda d=d, **kw: resnet(d, **kw)) for d in RESNET_DEPTHS},
}


def names() -> list[str]:
    """Zoo names in a fixed order.

    >>> names()[:3]
    ['lenet5', 'alexnet', 'alexnet_original']
    """
    return list(ZOO)


def get(name: str, **kwargs: Any) -> Network:
    """The zoo network ``name`` (``num_classes=`` to change the classifier)."""
    if not isinstance(name, str) or name not in ZOO:
        raise ConvParamError(f"network={name!r}: not in the zoo; names are {', '.join(ZOO)}")
    return ZOO[name](**kwargs)
