"""Targets that never return."""

import time


def sleeps(x, w, b, *, stride, padding, dilation, groups):
    while True:
        time.sleep(0.05)


def swallows_the_alarm(x, w, b, *, stride, padding, dilation, groups):
    """Catches everything once, then returns late with a right answer."""
    from refconv import oracle

    try:
        while True:
            time.sleep(0.05)
    except BaseException:  # noqa: BLE001 - deliberately hostile
        pass
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
