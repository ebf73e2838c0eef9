"""Right values; the first call starts a worker thread that never ends (not a daemon)."""

import threading
import time

from refconv import oracle

_started = []


def conv(x, w, b, *, stride, padding, dilation, groups):
    if not _started:
        t = threading.Thread(target=lambda: time.sleep(3600), name="leftover", daemon=False)
        t.start()
        _started.append(t)
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups).astype(x.dtype)
