"""Ends its process while being imported."""

import os

os._exit(3)


def conv(x, w, b, *, stride, padding, dilation, groups):  # pragma: no cover - never reached
    return x
