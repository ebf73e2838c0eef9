"""Atomic saves: a reader of a file refconv writes sees the old file or the new one, never a torn one.

Every file refconv saves goes through :func:`atomic_open` (or :func:`atomic_write`):
the data is written to a temporary file in the destination's folder
(``.<name>.XXXXXXXX.tmp``, so a glob of the real files never matches it and a
leftover names the file it was for), flushed and ``fsync``-ed, given the mode
the user's umask gives a new file (``0o666 & ~umask``: ``0o644`` under umask
``022``; ``mkstemp`` alone would leave ``0o600``), then ``os.replace``-d over
``path``.  If anything fails on the way, the temporary file is removed and
nothing at ``path`` changes.

Examples
--------
>>> import os, tempfile
>>> p = os.path.join(tempfile.mkdtemp(), 'notes.txt')
>>> atomic_write(p, 'first\\n')
>>> with atomic_open(p) as f:
...     _ = f.write('second\\n')
>>> open(p).read(), os.listdir(os.path.dirname(p))
('second\\n', ['notes.txt'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Any, Iterator

__all__ = ["atomic_open", "atomic_write", "current_umask", "file_mode"]

# where Linux (4.7 and later) reports the process's umask without changing it
_PROC_STATUS = "/proc/self/status"


def current_umask() -> int:
    """The process's umask, read without changing it for good.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting
    a umask of 0 and restoring the old one at once (``os.umask`` returns the
    previous mask).

    Returns
    -------
    int
        The permission bits the umask removes from a new file, e.g. ``0o022``.

    Examples
    --------
    >>> old = os.umask(0o027)
    >>> oct(current_umask())
    '0o27'
    >>> _ = os.umask(old)
    """
    try:
        with open(_PROC_STATUS, encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)  # "Umask:\t0022"
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """The mode ``open(path, 'w')`` would give a new file now: ``0o666 & ~umask``.

    Examples
    --------
    >>> old = os.umask(0o022)
    >>> oct(file_mode())
    '0o644'
    >>> _ = os.umask(old)
    """
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, encoding: str = "utf-8",
                prefix: str | None = None, suffix: str = ".tmp") -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends without an exception.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.  Its folder must exist; the temporary file is made
        there, so the final ``os.replace`` stays on one file system.
    mode : {'w', 'wb'}
        Text (encoded with ``encoding``) or bytes.
    encoding : str
        Encoding of text mode; ignored for ``'wb'``.
    prefix, suffix : str
        Name of the temporary file: ``prefix + 8 random characters + suffix``
        (the random part is ``tempfile.mkstemp``'s, from ``[a-z0-9_]``).  The
        default prefix is ``'.<name of path>.'``, giving ``.<name>.XXXXXXXX.tmp``.

    Yields
    ------
    file object
        The open temporary file.  When the block ends it is flushed, fsynced,
        given :func:`file_mode`, closed and renamed onto ``path``.

    Raises
    ------
    ValueError
        ``mode`` is neither ``'w'`` nor ``'wb'``.
    OSError
        The folder of ``path`` is missing or not writable, or the rename
        failed; the temporary file is removed and ``path`` is as before.

    Examples
    --------
    >>> import tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), 'a.bin')
    >>> with atomic_open(p, 'wb') as f:
    ...     _ = f.write(b'ok')
    >>> try:
    ...     with atomic_open(p, 'wb') as f:
    ...         _ = f.write(b'half')
    ...         raise RuntimeError('interrupted')
    ... except RuntimeError:
    ...     pass
    >>> open(p, 'rb').read(), sorted(os.listdir(os.path.dirname(p)))
    (b'ok', ['a.bin'])
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r}: atomic_open writes a whole new file, mode 'w' (text) or 'wb' (bytes)")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}." if prefix is None else prefix, suffix=suffix,
                               dir=directory)
    try:
        with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding) as f:
            yield f
            os.chmod(tmp, file_mode())  # mkstemp made it 0o600; a saved file gets what the umask gives
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename makes it visible under `path`
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike[str], data: str | bytes, *, encoding: str = "utf-8",
                 prefix: str | None = None, suffix: str = ".tmp") -> None:
    """Replace ``path`` with ``data`` atomically (text for ``str``, bytes for ``bytes``).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    data : str or bytes
        The whole new content.
    encoding, prefix, suffix
        As in :func:`atomic_open`.

    Raises
    ------
    TypeError
        ``data`` is neither ``str`` nor ``bytes``.

    Examples
    --------
    >>> import tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), 'b.txt')
    >>> atomic_write(p, b'bytes\\n'); open(p).read()
    'bytes\\n'
    """
    if isinstance(data, str):
        mode = "w"
    elif isinstance(data, (bytes, bytearray, memoryview)):
        mode = "wb"
    else:
        raise TypeError(f"data: expected str or bytes, got {type(data).__name__}")
    with atomic_open(path, mode, encoding=encoding, prefix=prefix, suffix=suffix) as f:
        f.write(data)
