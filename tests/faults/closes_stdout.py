"""Right values; standard output closed on the way (the Python object, or file descriptor 1)."""

import os
import sys

from refconv import oracle


def _conv(x, w, b, stride, padding, dilation, groups):
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)


def closes_object(x, w, b, *, stride, padding, dilation, groups):
    sys.stdout.close()
    return _conv(x, w, b, stride, padding, dilation, groups)


def closes_fd(x, w, b, *, stride, padding, dilation, groups):
    try:
        os.close(1)
    except OSError:
        pass
    return _conv(x, w, b, stride, padding, dilation, groups)
