"""Data sets: scikit-learn's handwritten digits (built in) and MNIST IDX files.

Both come back as a :class:`Dataset` with images ``(N, 1, H, W)`` scaled to
``[0, 1]`` (raw value divided by ``scale``: 16 for the digits, 255 for MNIST)
and integer labels ``0..9``.  Nothing is downloaded.

``digits``
    The 1,797 8x8 images of ``sklearn.datasets.load_digits`` with a fixed,
    stratified train/test split: in every class, a permutation drawn from
    ``numpy.random.default_rng(SPLIT_SEED)`` puts ``round(0.2 * n_class)``
    images in the test set (359 test, 1,438 train).  The split does not depend
    on the training seed.
``mnist:DIR``
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` in ``DIR``, each raw
    or gzip-compressed (``.gz``).

IDX layout (big-endian): two zero bytes, a type byte (``0x08`` uint8,
``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
float64), the number of axes ``d``, then ``d`` uint32 sizes, then the values
in C order.

Examples
--------
>>> ds = load_digits_split()
>>> ds.x_train.shape, ds.x_test.shape, ds.scale
((1438, 1, 8, 8), (359, 1, 8, 8), 16)
>>> float(ds.x_train.max()), sorted(set(ds.y_test.tolist())) == list(range(10))
(1.0, True)
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "DataError", "SPLIT_SEED", "load_digits_split", "read_idx", "write_idx", "load_mnist", "load_dataset", "batches",
           "pad_images"]

#: seed of the fixed train/test split of the digits
SPLIT_SEED = 0
TEST_FRACTION = 0.2

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: the most bytes one IDX file may hold once decompressed (MNIST's largest holds 47 MB)
MAX_IDX_BYTES = 2**30


class DataError(ValueError):
    """A data set that cannot be read: the message names the file or the spec."""


@dataclass(frozen=True)
class Dataset:
    """Images ``(N, 1, H, W)`` in ``[0, 1]`` (float32) and labels ``(N,)`` (int64)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scale: int
    num_classes: int = 10

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of one image."""
        return tuple(self.x_train.shape[1:])


def _stratified_split(y: np.ndarray, seed: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        test.append(idx[: int(round(fraction * idx.size))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(y.size), test_idx)
    return train_idx, test_idx


def load_digits_split() -> Dataset:
    """scikit-learn's 8x8 digits with the fixed stratified split (see the module docstring)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - sklearn is in the nn extra
        raise DataError("the digits data set needs scikit-learn: pip install 'refconv[nn]'") from exc
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16)[:, None]  # raw values 0..16
    y = bunch.target.astype(np.int64)
    tr, te = _stratified_split(y, SPLIT_SEED, TEST_FRACTION)
    return Dataset("digits", x[tr], y[tr], x[te], y[te], scale=16)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (raw, or gzip if the name ends in ``.gz``) into a native-endian array.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, 'a-idx2-ubyte.gz')
    >>> write_idx(p, np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> read_idx(p).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read(MAX_IDX_BYTES + 1)  # a gzip bomb stops here
    except FileNotFoundError:
        raise DataError(f"{path}: no such IDX file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) > MAX_IDX_BYTES:
        raise DataError(f"{path}: more than {MAX_IDX_BYTES} bytes (the limit for one IDX file)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, {head} needed)")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - head != need:
        raise DataError(f"{path}: IDX header says shape {dims} ({need} data bytes), file has {len(raw) - head}")
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip if the name ends in ``.gz``), atomically."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"array.dtype={array.dtype}: IDX stores uint8, int8, int16, int32, float32, float64")
    body = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body += np.ascontiguousarray(array, dtype=np.dtype(_IDX_TYPES[code])).tobytes()
    path = os.fspath(path)
    from ..atomic import atomic_write

    atomic_write(path, gzip.compress(body) if path.endswith(".gz") else body)


def _find(directory: str, stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    raise DataError(f"mnist:{directory}: missing {stem} (or {stem}.gz)")


def load_mnist(directory: str | os.PathLike[str]) -> Dataset:
    """The four MNIST IDX files in ``directory``: 28x28 uint8 images, labels 0..9."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise DataError(f"mnist:{directory}: not a directory")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"mnist:{directory}: {prefix} images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
        if labels.shape != images.shape[:1]:
            raise DataError(f"mnist:{directory}: {images.shape[0]} {prefix} images but labels of shape {labels.shape}")
        if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
            raise DataError(f"mnist:{directory}: {prefix} images have shape {images.shape}; at least one non-empty image needed")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"mnist:{directory}: {prefix} labels must be in 0..9")
        parts[split] = ((images.astype(np.float32) / 255)[:, None], labels.astype(np.int64))
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise DataError(f"mnist:{directory}: train and test images differ in size")
    return Dataset("mnist", *parts["train"], *parts["test"], scale=255)


def load_dataset(spec: str) -> Dataset:
    """``'digits'`` or ``'mnist:DIR'``.

    >>> load_dataset('cifar')
    Traceback (most recent call last):
        ...
    refconv.nn.data.DataError: data='cifar': expected 'digits' or 'mnist:DIR'
    """
    if spec == "digits":
        return load_digits_split()
    if isinstance(spec, str) and spec.startswith("mnist:") and len(spec) > len("mnist:"):
        return load_mnist(spec[len("mnist:"):])
    raise DataError(f"data={spec!r}: expected 'digits' or 'mnist:DIR'")


def batches(n: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Index arrays of the minibatches of one epoch (shuffled by ``rng``, in order if None).

    >>> [b.tolist() for b in batches(5, 2, None)]
    [[0, 1], [2, 3], [4]]
    """
    order = np.arange(n) if rng is None else rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def pad_images(dataset: Dataset, size: int) -> Dataset:
    """``dataset`` with every image zero-padded to ``size`` x ``size``, centred (the extra row and column of an
    odd difference at the bottom and right); images already of that size come back unchanged.

    >>> ds = Dataset("t", np.ones((2, 1, 28, 28), np.float32), np.zeros(2, np.int64),
    ...              np.ones((1, 1, 28, 28), np.float32), np.zeros(1, np.int64), scale=255)
    >>> p = pad_images(ds, 32)
    >>> p.image_shape, float(p.x_train[0, 0, 2:30, 2:30].min()), float(p.x_train.sum()), p.name
    ((1, 32, 32), 1.0, 1568.0, 't')
    """
    h, w = dataset.image_shape[1:]
    if h > size or w > size:
        raise DataError(f"size={size}: the images of {dataset.name} are {h}x{w}, larger than {size}x{size}")
    if h == size and w == size:
        return dataset
    top, left = (size - h) // 2, (size - w) // 2

    def pad(x: np.ndarray) -> np.ndarray:
        # out[n, c, top + i, left + j] = x[n, c, i, j], zero elsewhere
        out = np.zeros((*x.shape[:2], size, size), dtype=x.dtype)
        out[:, :, top : top + h, left : left + w] = x
        return out

    return Dataset(dataset.name, pad(dataset.x_train), dataset.y_train, pad(dataset.x_test), dataset.y_test,
                   dataset.scale, dataset.num_classes)
