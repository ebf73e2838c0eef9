"""Wrong values (the kernel flipped), and refconv.oracle.conv replaced when this module is imported."""

import refconv.oracle
from refconv import oracle

_real = oracle.conv


def _flipped(*args, **kwargs):
    kwargs["flip"] = True
    return _real(*args, **kwargs)


def conv(x, w, b, *, stride, padding, dilation, groups):
    return _flipped(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)


refconv.oracle.conv = _flipped
