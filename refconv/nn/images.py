"""Single digit images for prediction: PNG or ``.npy``, 8x8 or 28x28.

The result is one ``(1, H, W)`` float array in ``[0, 1]`` with light ink on a
dark background, as in the training data:

``.npy``
    a 2-D ``(H, W)`` (or ``(1, H, W)``) array of raw pixel values on the data
    set's own scale, ``0..scale`` (16 for the digits, as in
    ``sklearn.datasets.load_digits().images``; 255 for MNIST), divided by
    ``scale``.
``.png``
    converted to 8-bit grey and divided by 255; if the border is mostly light
    (dark ink on white paper), the image is inverted (``1 - v``).

Every problem raises :class:`ImageError` naming the file.  Sizes are checked
before pixels are read: a ``.npy`` header declaring more than
:data:`MAX_PIXELS` values, or a PNG wider and higher than that in pixels (a
decompression bomb), is refused.

Examples
--------
>>> import os, tempfile, numpy as np
>>> p = os.path.join(tempfile.mkdtemp(), 'd.npy')
>>> np.save(p, np.full((8, 8), 8.0))
>>> load_image(p, (8, 8), scale=16)[0, 0].tolist()
[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
>>> load_image(p, (28, 28), scale=255)
Traceback (most recent call last):
    ...
refconv.nn.images.ImageError: ...d.npy: the image is 8x8 but the checkpoint expects 28x28 images
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

__all__ = ["ImageError", "load_image", "SIZES", "MAX_PIXELS"]

#: image sizes a digit may have
SIZES = ((8, 8), (28, 28))

#: the most pixels a file may declare before it is read (a digit has 784 at most)
MAX_PIXELS = 2**20


class ImageError(ValueError):
    """An image file that cannot be used: the message starts with its path."""


def _check_npy(path: str) -> None:
    """The header's shape within :data:`MAX_PIXELS` and matching the file's size, before the array is read."""
    from .checkpoint import read_npy_header

    try:
        with open(path, "rb") as f:
            magic = f.read(6)
            f.seek(0)
            if magic != b"\x93NUMPY":
                return  # not a .npy file at all (an .npz archive, say): np.load says what it is
            shape, dtype, head = read_npy_header(f, "header")
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ImageError(f"{path}: not a readable .npy array ({exc})") from None
    count = math.prod(shape)
    if count > MAX_PIXELS:
        raise ImageError(f"{path}: the header declares shape {shape} ({count} values); a digit image has at most {MAX_PIXELS}")
    if size - head != count * dtype.itemsize:
        raise ImageError(f"{path}: the header declares shape {shape} of {dtype} but the file holds {size - head} data bytes")


def _from_npy(path: str, scale: int) -> np.ndarray:
    _check_npy(path)
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(a, np.ndarray):
        raise ImageError(f"{path}: expected one array, found an archive")
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ImageError(f"{path}: expected a 2-D (H, W) image, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)) or np.issubdtype(a.dtype, np.bool_):
        raise ImageError(f"{path}: expected real pixel values, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > scale:
        raise ImageError(f"{path}: pixel values must be finite and in [0, {scale}] (the data set's scale)")
    return a / scale


def _from_png(path: str) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - pillow is in the nn extra
        raise ImageError(f"{path}: reading PNG needs pillow: pip install 'refconv[nn]'") from None
    try:
        with warnings.catch_warnings():
            # Pillow warns, then raises, past its own pixel limit (89 million): both are refusals here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageError(f"{path}: the image declares {w}x{h} pixels; a digit image has at most {MAX_PIXELS}")
                a = np.asarray(im.convert("L"), dtype=np.float64) / 255
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{path}: not a readable image ({exc})") from None
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 0.5:  # dark ink on a light background: invert to the training polarity
        a = 1 - a
    return a


def load_image(path: str | os.PathLike[str], expected: tuple[int, int], *, scale: int) -> np.ndarray:
    """One digit as ``(1, H, W)`` in ``[0, 1]``; ``expected`` is the model's ``(H, W)`` (a 28x28 image
    for a 32x32 model, LeNet-5, is zero-padded to it, centred, as its training images were)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        a = _from_npy(path, scale)
    elif ext == ".png":
        a = _from_png(path)
    else:
        raise ImageError(f"{path}: unsupported file type {ext or '(none)'!r}; expected .png or .npy")
    h, w = a.shape
    if (h, w) not in SIZES:
        raise ImageError(f"{path}: the image is {h}x{w}; digits must be 8x8 or 28x28")
    eh, ew = expected
    if (h, w) != (eh, ew) and not ((h, w) == (28, 28) and (eh, ew) == (32, 32)):
        raise ImageError(f"{path}: the image is {h}x{w} but the checkpoint expects {eh}x{ew} images")
    if (h, w) != (eh, ew):
        # a 28x28 image for a 32x32 model (LeNet-5): zero-padded, centred, as training padded it
        # (refconv.nn.data.pad_images)
        out = np.zeros((eh, ew), dtype=a.dtype)
        out[(eh - h) // 2 : (eh - h) // 2 + h, (ew - w) // 2 : (ew - w) // 2 + w] = a
        a = out
    return a[None]
