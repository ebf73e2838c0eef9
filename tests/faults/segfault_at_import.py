"""A segmentation fault while being imported."""

import ctypes

ctypes.string_at(0)


def conv(x, w, b, *, stride, padding, dilation, groups):  # pragma: no cover - never reached
    return x
