"""Right values through a thread-affine resource: an SQLite connection made at import, used in every call.

sqlite3 objects raise ProgrammingError when used from a thread other than the one that created them.
"""

import sqlite3

from refconv import oracle

_db = sqlite3.connect(":memory:")


def conv(x, w, b, *, stride, padding, dilation, groups):
    (one,) = _db.execute("select 1").fetchone()
    y = oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (y * one).astype(x.dtype)
