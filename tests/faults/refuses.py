"""Targets that refuse what they do not implement, and ones whose signature names their op."""

from refconv import oracle


def conv_without_dilation(x, w, b, *, stride, padding, dilation, groups):
    if any(d != 1 for d in dilation):
        raise NotImplementedError("dilation > 1 is not supported")
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)


def conv_without_groups(x, w, b, *, stride, padding, dilation, groups):
    if groups != 1:
        raise ValueError("grouped convolution: unsupported configuration")
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)


def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    return oracle.max_pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)


def anything(*args, **kwargs):
    return oracle.conv(*args, **kwargs)
