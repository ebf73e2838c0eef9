"""Train the small CNN on handwritten digits (a LeNet-style network on the fast engine).

Examples::

    refconv train                                 # digits, 20 epochs, seed 0, checkpoint in ./refconv-train
    refconv train --epochs 5 --seed 1 --out run1 --plot run1/plots
    refconv train --epochs 30 --out run1 --resume # continue run1 up to epoch 30
    refconv train --data mnist:~/mnist            # the four MNIST IDX files (raw or .gz)
    refconv train --arch lenet5 --data mnist:/usr/share/datasets/fashion-mnist   # LeNet-5, images padded to 32x32

Prints one line per epoch (loss and accuracy) under a progress bar, then
``test accuracy: 0.9xxx`` and the confusion matrix of the test set.  The run is
deterministic for a seed.  After every epoch ``OUT/checkpoint.npz`` is written
atomically; ``--resume`` continues from it (same options, more ``--epochs``
allowed; with the same ``--epochs`` the result equals an uninterrupted run).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=20, help="number of epochs (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of weights, shuffles and dropout (default 0)")
    parser.add_argument("--out", default="refconv-train", metavar="DIR", help="checkpoint directory (default ./refconv-train)")
    parser.add_argument("--plot", default=None, metavar="DIR", help="write PNG plots (curves, filters, feature maps) to DIR")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    parser.add_argument("--data", default="digits", metavar="SPEC", help="'digits' (built in, default) or 'mnist:DIR'")
    parser.add_argument("--arch", default="default", metavar="NAME",
                        help="'default' (the LeNet-style network for the image size) or 'lenet5' (the zoo's LeNet-5; "
                             "images zero-padded to 32x32 as in the paper)")
    parser.add_argument("--batch-size", type=int, default=32, help="minibatch size (default 32)")
    parser.add_argument("--lr", type=float, default=3e-3, help="initial learning rate (default 3e-3)")
    parser.add_argument("--optimizer", choices=("adam", "momentum", "sgd"), default="adam")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default 0)")
    parser.add_argument("--clip-norm", type=float, default=None, help="clip the gradient norm to this value")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine", help="learning-rate schedule")
    parser.add_argument("--loss", choices=("cross_entropy", "mse"), default="cross_entropy")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def _usage(msg: str) -> Exception:
    from ..cli import UsageError

    return UsageError(msg)


#: the most epochs one run may ask for
MAX_EPOCHS = 10**6
#: the largest minibatch (far beyond any data set this command reads)
MAX_BATCH_SIZE = 2**20
#: seeds lie in [0, MAX_SEED] (numpy's SeedSequence takes any such integer)
MAX_SEED = 2**64 - 1


def _int_in(option: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise _usage(f"{option}={value}: must be an integer in [{lo}, {hi}]")


def _finite(option: str, value: float, *, positive: bool) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise _usage(f"{option}={value}: must be a finite number {'> 0' if positive else '>= 0'}")


def _config(args: argparse.Namespace) -> Any:
    """Every training option checked here, each error naming its option; then the library's own config."""
    from ..nn.train import TrainConfig

    _int_in("--epochs", args.epochs, 1, MAX_EPOCHS)
    _int_in("--seed", args.seed, 0, MAX_SEED)
    _int_in("--batch-size", args.batch_size, 1, MAX_BATCH_SIZE)
    _finite("--lr", args.lr, positive=True)
    _finite("--weight-decay", args.weight_decay, positive=False)
    if args.clip_norm is not None:
        _finite("--clip-norm", args.clip_norm, positive=True)
    if args.data != "digits" and not (args.data.startswith("mnist:") and len(args.data) > len("mnist:")):
        raise _usage(f"--data={args.data!r}: expected 'digits' or 'mnist:DIR'")
    try:
        return TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
            weight_decay=args.weight_decay, clip_norm=args.clip_norm, schedule=args.schedule, loss=args.loss, seed=args.seed,
        )
    except ValueError as exc:
        raise _usage(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from ..nn.checkpoint import CheckpointError
    from ..nn.data import DataError, load_dataset, pad_images
    from ..nn.model import ARCHITECTURES, ModelError, architecture
    from ..nn.train import CHECKPOINT_NAME, format_confusion, train
    from ._paths import output_dir

    config = _config(args)
    if args.arch not in ARCHITECTURES:
        raise _usage(f"--arch={args.arch!r}: expected one of {', '.join(repr(a) for a in ARCHITECTURES)}")
    out = output_dir("--out", args.out)
    ckpt = os.path.join(out, CHECKPOINT_NAME)
    if args.resume and not os.path.isfile(ckpt):
        raise _usage(f"--resume: no checkpoint {ckpt!r} (train with --out {args.out} first)")
    if args.plot is not None:
        from ..nn import plots

        if not plots.available():
            raise _usage("--plot needs matplotlib: pip install 'refconv[nn]'")
        output_dir("--plot", args.plot)
    spec = args.data
    if spec.startswith("mnist:"):
        spec = "mnist:" + os.path.expanduser(spec[len("mnist:"):])
    try:
        dataset = load_dataset(spec)
    except DataError as exc:
        raise _usage(f"--data: {exc}") from None
    try:
        description, input_shape = architecture(args.arch, dataset.image_shape, dataset.num_classes)
        # the network's declared input: smaller images are zero-padded, centred (LeNet-5: 28x28 -> 32x32)
        dataset = pad_images(dataset, input_shape[-1])
    except (ModelError, DataError) as exc:
        raise _usage(f"--arch: {exc}") from None
    print(
        f"data: {dataset.name}, {len(dataset.x_train)} train / {len(dataset.x_test)} test images of "
        f"{'x'.join(map(str, dataset.image_shape[1:]))}; network {args.arch}; seed {config.seed}",
        flush=True,
    )
    t0 = time.perf_counter()
    try:
        result = train(dataset, config, description=description, out_dir=out, resume=args.resume, progress=not args.quiet)
    except CheckpointError as exc:
        raise _usage(f"--resume: {exc}") from None
    seconds = time.perf_counter() - t0
    if result.resumed_from:
        print(f"resumed from epoch {result.resumed_from}")
    print(format_confusion(result.confusion))
    print(f"training time: {seconds:.1f} s ({result.epochs_done - result.resumed_from} epochs)")
    print(f"checkpoint: {ckpt}")
    if args.plot is not None:
        from ..nn import plots

        from ..nn.train import initial_model

        initial = initial_model(result.model.description, dataset.image_shape, config)
        files = plots.plot_all(result.model, result.history, dataset, args.plot, initial=initial)
        print(f"plots: {', '.join(files)}")
    print(f"test accuracy: {result.test_accuracy:.4f}")
    sys.stdout.flush()
    return 0
