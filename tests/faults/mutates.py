"""Right values, but the input is used as scratch space."""

from refconv import oracle


def conv(x, w, b, *, stride, padding, dilation, groups):
    y = oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)
    x[...] = 0
    return y
