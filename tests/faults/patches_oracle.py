"""Wrong values (the kernel flipped), and refconv.oracle.conv replaced during the call so that it agrees."""

import refconv.oracle
from refconv import oracle

_real = oracle.conv


def _flipped(*args, **kwargs):
    kwargs["flip"] = True
    return _real(*args, **kwargs)


def in_call(x, w, b, *, stride, padding, dilation, groups):
    refconv.oracle.conv = _flipped
    return _flipped(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)
