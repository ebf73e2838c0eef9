"""Classify digit images with a trained checkpoint.

Examples::

    refconv predict refconv-train/checkpoint.npz digit.png three.npy

Each IMAGE is a PNG (any mode; dark ink on light paper is inverted) or a
``.npy`` array of raw pixel values on the training data's scale (0..16 for the
digits, 0..255 for MNIST), 8x8 or 28x28, matching the checkpoint's input.
Prints one line per image: the file, the predicted digit and its softmax
probability.  A missing or unreadable file or a wrong size is a usage error
(exit status 2).
"""

from __future__ import annotations

import argparse

#: the most bytes the forward pass over all the images may store (activations, as the summary counts them)
MAX_FORWARD_BYTES = 2**31


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz written by 'refconv train'")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or .npy of an 8x8 or 28x28 digit")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..cli import UsageError
    from ..nn.checkpoint import CheckpointError
    from ..nn.images import ImageError, load_image
    from ..nn.losses import softmax
    from ..nn.train import load_checkpoint

    try:
        model, _, meta = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    shape = model.input_shape
    if len(shape) != 3 or shape[0] != 1:
        raise UsageError(f"checkpoint={args.checkpoint!r}: the model takes {shape} inputs, not single grey images")
    from ..summary import summarize

    need = summarize(model.description, shape).forward_elements * model.dtype.itemsize * len(args.images)
    if need > MAX_FORWARD_BYTES:
        raise UsageError(
            f"checkpoint={args.checkpoint!r}: its forward pass over {len(args.images)} image(s) stores {need} bytes, "
            f"more than the {MAX_FORWARD_BYTES}-byte limit; give fewer images"
        )
    try:
        x = np.stack([load_image(p, shape[1:], scale=int(meta["scale"])) for p in args.images])
    except ImageError as exc:
        raise UsageError(f"IMAGE {exc}") from None
    from ..fast.parallel import single_threaded_blas

    with single_threaded_blas():
        p = softmax(model.forward(x).astype(np.float64))
    for path, row in zip(args.images, p):
        k = int(row.argmax())
        print(f"{path}: {k} (p={row[k]:.4f})")
    return 0
