"""Output paths of the subcommands: refused before any work starts when nothing can be written there.

A command that will write a file (``--json FILE``) or fill a folder (``--out
DIR``, ``--plot DIR``) checks the path first, so that a long job never ends
in a traceback over a typo.  The test is real: a temporary file is created
and removed in the folder that will receive the output (a permission bit
says nothing on a read-only file system or for the superuser).

Examples
--------
>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> output_file('--json', os.path.join(d, 'out.json')) == os.path.join(d, 'out.json')
True
>>> output_file('--json', os.path.join(d, 'missing', 'out.json'))
Traceback (most recent call last):
    ...
refconv.cli.UsageError: --json='.../missing/out.json': the folder '.../missing' does not exist
>>> output_dir('--out', os.path.join(d, 'new', 'run1')) == os.path.join(d, 'new', 'run1')  # created later
True
"""

from __future__ import annotations

import os
import tempfile

__all__ = ["output_file", "output_dir"]


def _usage(msg: str) -> Exception:
    from ..cli import UsageError

    return UsageError(msg)


def _writable(option: str, text: str, folder: str) -> None:
    """Create and remove one temporary file in ``folder``; a usage error naming ``option`` if that fails."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".refconv-probe-", dir=folder)
    except OSError as exc:
        raise _usage(f"{option}={text!r}: cannot write in {folder!r} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)


def output_file(option: str, path: str) -> str:
    """Check that ``path`` can be written as a file; returns it with ``~`` expanded.

    Its folder must exist and accept a new file, and ``path`` must not be a folder.
    """
    if not path:
        raise _usage(f"{option}={path!r}: expected a file name")
    full = os.path.expanduser(path)
    if os.path.isdir(full):
        raise _usage(f"{option}={path!r}: is a folder; expected a file name")
    folder = os.path.dirname(os.path.abspath(full))
    if not os.path.exists(folder):
        raise _usage(f"{option}={path!r}: the folder {folder!r} does not exist")
    if not os.path.isdir(folder):
        raise _usage(f"{option}={path!r}: {folder!r} is not a folder")
    _writable(option, path, folder)
    return full


def output_dir(option: str, path: str) -> str:
    """Check that ``path`` is a writable folder or can be created; returns it with ``~`` expanded.

    A missing folder is fine (the command creates it) when its nearest existing
    ancestor is a folder that accepts new entries.
    """
    if not path:
        raise _usage(f"{option}={path!r}: expected a folder name")
    full = os.path.expanduser(path)
    probe = os.path.abspath(full)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        what = "exists and is not a folder" if probe == os.path.abspath(full) else f"{probe!r} is not a folder"
        raise _usage(f"{option}={path!r}: {what}")
    _writable(option, path, probe)
    return full
