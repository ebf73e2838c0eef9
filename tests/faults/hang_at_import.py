"""Never finishes being imported."""

import time

while True:
    time.sleep(0.05)


def conv(x, w, b, *, stride, padding, dilation, groups):  # pragma: no cover - never reached
    return x
