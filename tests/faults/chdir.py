"""Right values; changes the working directory on every call."""

import os
import tempfile

from refconv import oracle

_elsewhere = tempfile.gettempdir()  # another folder, and nothing left behind


def conv(x, w, b, *, stride, padding, dilation, groups):
    os.chdir(_elsewhere)
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)
