"""Checkpoints: one ``.npz`` file, written atomically, read without pickle.

Layout of the archive (every entry a plain array; text as a 0-d unicode array):

==================  ==============================================================
``meta``            JSON: format version, network description, input shape,
                    data set name and pixel scale, training configuration,
                    epochs done, history, state of the training random generator
``param/<i>.<p>``   model parameters (``Model.state_dict``)
``buffer/<i>.<b>``  batch-norm running statistics
``opt/...``         optimizer slots and step count (``Optimizer.state_dict``)
==================  ==============================================================

Writing goes to a temporary file in the same directory (``.<name>.XXXXXXXX.tmp``),
then ``os.replace`` puts it in place, so a reader sees the old checkpoint or
the new one, never a torn file; :func:`remove_stale_temporaries` clears the
temporary files of a run killed mid-write.  Reading uses
``numpy.load(..., allow_pickle=False)``, after the header of every array in
the archive has been read and checked: each must declare exactly the bytes
its entry holds, and all together at most :data:`MAX_ARRAY_BYTES`, so a
forged header cannot make the reader allocate without bound.

Examples
--------
>>> import os, tempfile, numpy as np
>>> p = os.path.join(tempfile.mkdtemp(), 'c.npz')
>>> save_npz(p, {'a': np.arange(3)}, {'epoch': 1})
>>> arrays, meta = load_npz(p)
>>> arrays['a'].tolist(), meta
([0, 1, 2], {'epoch': 1})
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from typing import IO, Any, Mapping

import numpy as np

from ..atomic import atomic_open

__all__ = ["CheckpointError", "save_npz", "load_npz", "remove_stale_temporaries", "read_npy_header", "FORMAT",
           "MAX_ARRAY_BYTES"]

#: format tag stored in ``meta['format']``
FORMAT = "refconv.nn.checkpoint/1"

#: the most array bytes a checkpoint may declare (the digits network's checkpoint holds well under 1 MiB)
MAX_ARRAY_BYTES = 2**30

# mkstemp's random part: 8 characters of this alphabet
_RANDOM = r"[a-z0-9_]{8}"


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable or not ours: the message names the path."""


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write ``arrays`` and the JSON ``meta`` to ``path`` atomically (temp file + ``os.replace``)."""
    path = os.fspath(path)
    if "meta" in arrays:
        raise ValueError("arrays: the key 'meta' is reserved")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # atomic_open's temporary file is ``.<name>.XXXXXXXX.tmp``: the pattern remove_stale_temporaries looks for
    with atomic_open(path, "wb") as f:
        named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
        np.savez(f, meta=np.array(json.dumps(dict(meta), sort_keys=True)), **named)


def remove_stale_temporaries(path: str | os.PathLike[str], *, before: float) -> list[str]:
    """Delete the temporary files of :func:`save_npz` for ``path`` last modified before ``before``.

    A run killed while writing leaves ``.<name>.XXXXXXXX.tmp`` (or, from
    earlier versions, ``.tmp-XXXXXXXX.npz``) next to the checkpoint; a new run
    into the same folder calls this with its own start time.  Returns the
    removed paths.

    >>> import os, tempfile, time
    >>> d = tempfile.mkdtemp()
    >>> orphan = os.path.join(d, '.checkpoint.npz.abcd1234.tmp')
    >>> open(orphan, 'wb').close()
    >>> [os.path.basename(p) for p in remove_stale_temporaries(os.path.join(d, 'checkpoint.npz'), before=time.time() + 1)]
    ['.checkpoint.npz.abcd1234.tmp']
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(os.path.basename(path))}\.{_RANDOM}\.tmp\Z|\.tmp-{_RANDOM}\.npz\Z")
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed  # no folder yet: nothing left over
    for name in names:
        if not pattern.match(name):
            continue
        full = os.path.join(directory, name)
        try:
            if os.path.isfile(full) and os.stat(full).st_mtime < before:
                os.unlink(full)
                removed.append(full)
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def read_npy_header(f: IO[bytes], name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, header bytes)`` of the ``.npy`` data in ``f``, without reading the array.

    Raises ``ValueError`` naming ``name`` for a header that is not a plain
    ``.npy`` 1.0 or 2.0 header, or that declares object (pickled) values.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"{name}: .npy format version {version} is not supported")
    except (ValueError, EOFError, SyntaxError) as exc:
        raise ValueError(f"{name}: not a readable .npy header ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects (they need pickle, which is never used)")
    return tuple(int(v) for v in shape), dtype, f.tell()


def _check_archive(path: str) -> None:
    """Every entry a ``.npy`` whose header matches its size; all together within :data:`MAX_ARRAY_BYTES`."""
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"entry {info.filename!r} is not a .npy array")
            with zf.open(info) as f:
                shape, dtype, head = read_npy_header(f, f"entry {info.filename!r}")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes != info.file_size - head:
                raise ValueError(
                    f"entry {info.filename!r} declares shape {shape} of {dtype} ({nbytes} bytes) "
                    f"but holds {info.file_size - head} bytes"
                )
            total += nbytes
            if total > MAX_ARRAY_BYTES:
                raise ValueError(f"the arrays declare more than {MAX_ARRAY_BYTES} bytes (the limit)")


def load_npz(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what :func:`save_npz` wrote: ``(arrays, meta)``; headers are checked before any array is read."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint={path!r}: no such file")
    try:
        _check_archive(path)
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, zlib.error) as exc:
        # RuntimeError: an encrypted entry; NotImplementedError: an unknown compression
        raise CheckpointError(f"checkpoint={path!r}: not a readable .npz file ({exc})") from None
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint={path!r}: no 'meta' entry; not a refconv checkpoint")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint={path!r}: 'meta' is not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint={path!r}: 'meta' is not a JSON object")
    return arrays, meta
