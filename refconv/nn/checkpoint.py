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

Writing goes to a temporary file in the same directory, then ``os.replace``
puts it in place, so a reader sees the old checkpoint or the new one, never a
torn file.  Reading uses ``numpy.load(..., allow_pickle=False)``.

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
import os
import tempfile
import zipfile
from typing import Any, Mapping

import numpy as np

__all__ = ["CheckpointError", "save_npz", "load_npz", "FORMAT"]

#: format tag stored in ``meta['format']``
FORMAT = "refconv.nn.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable or not ours: the message names the path."""


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write ``arrays`` and the JSON ``meta`` to ``path`` atomically (temp file + ``os.replace``)."""
    path = os.fspath(path)
    if "meta" in arrays:
        raise ValueError("arrays: the key 'meta' is reserved")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(dict(meta), sort_keys=True)), **{k: np.asarray(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what :func:`save_npz` wrote: ``(arrays, meta)``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint={path!r}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"checkpoint={path!r}: not a readable .npz file ({exc})") from None
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint={path!r}: no 'meta' entry; not a refconv checkpoint")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint={path!r}: 'meta' is not JSON ({exc})") from None
    return arrays, meta
