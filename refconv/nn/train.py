"""The training loop: minibatches, loss, backward pass, weight update, epochs, testing.

One step, as in the seed: forward pass, loss, backward pass, weight update.

    logits = model.forward(x_batch, training=True)
    L, dL/dlogits = loss(logits, labels)
    model.backward(dL/dlogits)               # every layer's grads
    clip_grad_norm(grads, clip_norm)         # optional
    optimizer.step(params, grads)            # lr follows the schedule below

Learning rate: ``'cosine'`` decays it from ``lr`` to 0 over all steps,
``lr_t = lr * (1 + cos(pi * t / T)) / 2`` with ``t`` the steps done and ``T =
epochs * batches per epoch``; ``'constant'`` keeps it.

Determinism: ``SeedSequence(seed)`` spawns two generators, one for the initial
weights and one for the epoch shuffles and the dropout masks; nothing else is
random.  After every epoch a checkpoint (:mod:`refconv.nn.checkpoint`) stores
the model, the optimizer, the history and the state of the second generator,
so a run resumed from it continues exactly as if it had not stopped (with the
same ``epochs``: the schedule depends on it).

Examples
--------
>>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).tolist()
[[1, 0], [1, 1]]
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..fast.parallel import single_threaded_blas
from .checkpoint import FORMAT, CheckpointError, load_npz, remove_stale_temporaries, save_npz
from .data import Dataset, batches
from .losses import LOSSES
from .model import Model, ModelError, description_from_json, description_to_json, lenet
from .optim import Optimizer, clip_grad_norm, make_optimizer

__all__ = [
    "TrainConfig",
    "History",
    "TrainResult",
    "train",
    "evaluate",
    "confusion_matrix",
    "format_confusion",
    "save_checkpoint",
    "load_checkpoint",
    "initial_model",
    "CHECKPOINT_NAME",
]

#: file name of the checkpoint in the output directory
CHECKPOINT_NAME = "checkpoint.npz"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one run (stored in checkpoints)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    clip_norm: float | None = None
    schedule: str = "cosine"
    loss: str = "cross_entropy"
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "seed" else 1):
                raise ValueError(f"{name}={v!r}: must be an integer >= {0 if name == 'seed' else 1}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule={self.schedule!r}: expected 'cosine' or 'constant'")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: expected one of {sorted(LOSSES)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype={self.dtype!r}: expected 'float32' or 'float64'")
        if self.clip_norm is not None and (
            isinstance(self.clip_norm, bool) or not isinstance(self.clip_norm, (int, float))
            or not math.isfinite(self.clip_norm) or not self.clip_norm > 0
        ):
            raise ValueError(f"clip_norm={self.clip_norm!r}: must be a finite number > 0 or None")
        make_optimizer(self.optimizer, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class History:
    """Per-epoch curves."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: Model
    history: History
    test_accuracy: float
    confusion: np.ndarray
    predictions: np.ndarray
    epochs_done: int
    resumed_from: int
    checkpoint: str | None


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``M[i, j]`` = number of examples of class ``i`` predicted as ``j``."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def format_confusion(m: np.ndarray) -> str:
    """The confusion matrix as text: rows true class, columns predicted class.

    >>> print(format_confusion(np.array([[3, 0], [1, 2]])))
    confusion matrix (rows: true class, columns: predicted)
          0  1
       0  3  .
       1  1  2
    """
    k = m.shape[0]
    width = max(2, len(str(int(m.max()))) if m.size else 1) + 1
    lines = ["confusion matrix (rows: true class, columns: predicted)"]
    lines.append(" " * 4 + "".join(f"{j:>{width}}" for j in range(k)))
    for i in range(k):
        cells = "".join(f"{(str(int(v)) if (v or i == j) else '.'):>{width}}" for j, v in enumerate(m[i]))
        lines.append(f"{i:>4}{cells}")
    return "\n".join(lines)


def evaluate(model: Model, x: np.ndarray, y: np.ndarray, loss: str = "cross_entropy", batch_size: int = 512) -> tuple[float, float, np.ndarray]:
    """``(mean loss, accuracy, predictions)`` in evaluation mode."""
    fn = LOSSES[loss]
    total, preds = 0.0, []
    for i in range(0, len(x), batch_size):
        out = model.forward(x[i : i + batch_size])
        total += fn(out, y[i : i + batch_size])[0] * len(out)
        preds.append(out.argmax(axis=1))
    p = np.concatenate(preds)
    return total / len(x), float(np.mean(p == y)), p


def _lr(config: TrainConfig, step: int, total: int) -> float:
    if config.schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def _meta(config: TrainConfig, model: Model, dataset: Dataset, epochs_done: int, history: History, rng: np.random.Generator) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "network": description_to_json(model.description),
        "input_shape": list(model.input_shape),
        "num_classes": int(model.output_shape[0]),
        "data": dataset.name,
        "scale": int(dataset.scale),
        "config": config.to_dict(),
        "epochs_done": epochs_done,
        "history": dataclasses.asdict(history),
        "rng_state": rng.bit_generator.state,
    }


def initial_model(description: Any, input_shape: tuple[int, ...], config: TrainConfig) -> Model:
    """The model as :func:`train` initializes it for ``config.seed`` (before any step).

    >>> from refconv import summary as S
    >>> a = initial_model(S.Sequential([S.Flatten(), S.Linear(2)]), (1, 2, 2), TrainConfig(seed=1))
    >>> b = initial_model(S.Sequential([S.Flatten(), S.Linear(2)]), (1, 2, 2), TrainConfig(seed=1))
    >>> bool(np.array_equal(a.parameters()['1.weight'], b.parameters()['1.weight']))
    True
    """
    init_seq = np.random.SeedSequence(config.seed).spawn(2)[0]
    return Model(description, tuple(input_shape), rng=np.random.default_rng(init_seq), dtype=np.dtype(config.dtype))


def save_checkpoint(path: str, model: Model, optimizer: Optimizer, meta: dict[str, Any]) -> None:
    """Model and optimizer state plus ``meta`` to ``path`` (atomic)."""
    arrays = dict(model.state_dict())
    arrays.update({f"opt/{k}": v for k, v in optimizer.state_dict().items()})
    save_npz(path, arrays, meta)


def load_checkpoint(path: str) -> tuple[Model, dict[str, np.ndarray], dict[str, Any]]:
    """``(model, optimizer state arrays, meta)`` from a checkpoint file."""
    arrays, meta = load_npz(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint={path!r}: format {meta.get('format')!r}, expected {FORMAT!r}")
    for key, a in arrays.items():
        # a diverged run saves NaN or infinite weights; a model made of them predicts nonsense with confidence
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            raise CheckpointError(f"checkpoint={path!r}: entry {key!r} holds NaN or infinite values (a diverged run?)")
    try:
        desc = description_from_json(meta["network"])
        dtype = meta["config"]["dtype"]
        shape = tuple(meta["input_shape"])
        # the model allocates what its description declares: it must be what the file holds, no more
        declared = desc.num_params(shape) + desc.num_buffers(shape)
        held = sum(int(a.size) for k, a in arrays.items() if k.startswith(("param/", "buffer/")))
        if declared != held:
            raise ModelError(f"the network declares {declared} parameters and buffers, the file holds {held}")
        model = Model(desc, shape, rng=np.random.default_rng(0), dtype=dtype)
        model.load_state_dict(arrays)
    except (KeyError, ModelError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint={path!r}: inconsistent contents ({exc})") from None
    opt_state = {k[len("opt/"):]: v for k, v in arrays.items() if k.startswith("opt/")}
    return model, opt_state, meta


def train(
    dataset: Dataset,
    config: TrainConfig = TrainConfig(),
    *,
    description: Any = None,
    out_dir: str | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, History], None] | None = None,
) -> TrainResult:
    """Train ``description`` on ``dataset``; returns the model, history and test results.

    Parameters
    ----------
    dataset : Dataset
        Training and test images (:mod:`refconv.nn.data`).
    config : TrainConfig
        Hyperparameters and seed.
    description : refconv.summary.Layer, optional
        The network; default :func:`~refconv.nn.model.lenet` for the image size.
    out_dir : str, optional
        Where ``checkpoint.npz`` is written after every epoch.
    resume : bool
        Continue from ``out_dir``'s checkpoint; its configuration must match
        ``config`` except for ``epochs``.
    progress : bool
        The tqdm bar and one line per epoch.
    on_epoch : callable, optional
        ``on_epoch(epoch, history)`` after each epoch's checkpoint.

    Notes
    -----
    BLAS runs single-threaded throughout, as in the fast engine (whose
    convolutions parallelize over fixed blocks of samples instead): the small
    products of this network gain nothing from BLAS threads, which on a busy
    machine cost a great deal of time, and the bits of the result then do not
    depend on the BLAS thread count.
    """
    with single_threaded_blas():
        return _train(dataset, config, description, out_dir, resume, progress, on_epoch)


def _train(
    dataset: Dataset,
    config: TrainConfig,
    description: Any,
    out_dir: str | None,
    resume: bool,
    progress: bool,
    on_epoch: Callable[[int, History], None] | None,
) -> TrainResult:
    dtype = np.dtype(config.dtype)
    if description is None:
        description = lenet(dataset.image_shape[-1], dataset.num_classes)
    model = initial_model(description, dataset.image_shape, config)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(2)[1])
    optimizer = make_optimizer(config.optimizer, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    history = History()
    start = 0
    ckpt = os.path.join(out_dir, CHECKPOINT_NAME) if out_dir else None
    if ckpt is not None:
        remove_stale_temporaries(ckpt, before=time.time())  # left by a run killed while writing
    if resume:
        if ckpt is None:
            raise ValueError("resume=True needs out_dir (where the checkpoint is)")
        model, opt_state, meta = load_checkpoint(ckpt)
        _check_resumable(ckpt, meta, config, description, dataset)
        optimizer.load_state_dict(opt_state)
        history = History(**meta["history"])
        rng.bit_generator.state = meta["rng_state"]
        start = int(meta["epochs_done"])

    x_tr, y_tr = dataset.x_train.astype(dtype, copy=False), dataset.y_train
    x_te, y_te = dataset.x_test.astype(dtype, copy=False), dataset.y_test
    loss_fn = LOSSES[config.loss]
    per_epoch = math.ceil(len(x_tr) / config.batch_size)
    total_steps = config.epochs * per_epoch
    params = model.parameters()

    bar = _progress(range(start, config.epochs), total=config.epochs, initial=start, enabled=progress)
    for epoch in bar:
        t0 = time.perf_counter()
        loss_sum, correct = 0.0, 0
        for idx in batches(len(x_tr), config.batch_size, rng):
            out = model.forward(x_tr[idx], training=True, rng=rng)
            loss, dout = loss_fn(out, y_tr[idx])
            model.backward(dout, input_grad=False)
            grads = model.gradients()
            if config.clip_norm is not None:
                clip_grad_norm(grads, config.clip_norm)
            optimizer.lr = _lr(config, optimizer.steps, total_steps)
            optimizer.step(params, grads)
            loss_sum += loss * len(idx)
            correct += int(np.sum(out.argmax(axis=1) == y_tr[idx]))
        test_loss, test_acc, _ = evaluate(model, x_te, y_te, config.loss)
        history.train_loss.append(loss_sum / len(x_tr))
        history.train_acc.append(correct / len(x_tr))
        history.test_loss.append(test_loss)
        history.test_acc.append(test_acc)
        history.seconds.append(time.perf_counter() - t0)
        if progress:
            bar.set_postfix(loss=f"{history.train_loss[-1]:.4f}", acc=f"{history.train_acc[-1]:.4f}", test_acc=f"{test_acc:.4f}")
            bar.write(
                f"epoch {epoch + 1:>3}/{config.epochs}  loss {history.train_loss[-1]:.4f}  "
                f"acc {history.train_acc[-1]:.4f}  test loss {test_loss:.4f}  test acc {test_acc:.4f}"
            )
        if ckpt is not None:
            save_checkpoint(ckpt, model, optimizer, _meta(config, model, dataset, epoch + 1, history, rng))
        if on_epoch is not None:
            on_epoch(epoch + 1, history)
    if progress:
        bar.close()
    _, acc, pred = evaluate(model, x_te, y_te, config.loss)
    return TrainResult(
        model, history, acc, confusion_matrix(y_te, pred, dataset.num_classes), pred, max(start, config.epochs), start, ckpt
    )


def _check_resumable(path: str, meta: dict[str, Any], config: TrainConfig, description: Any, dataset: Dataset) -> None:
    saved = dict(meta.get("config", {}))
    now = config.to_dict()
    diff = sorted(k for k in now if k != "epochs" and saved.get(k) != now[k])
    if diff:
        pairs = ", ".join(f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in diff)
        raise CheckpointError(f"checkpoint={path!r}: cannot resume with a different configuration ({pairs})")
    if meta.get("data") != dataset.name or tuple(meta.get("input_shape", ())) != dataset.image_shape:
        raise CheckpointError(
            f"checkpoint={path!r}: trained on {meta.get('data')!r} {tuple(meta.get('input_shape', ()))}, "
            f"not {dataset.name!r} {dataset.image_shape}"
        )
    if meta.get("network") != description_to_json(description):
        raise CheckpointError(f"checkpoint={path!r}: the network differs from the one requested")


class _NoBar:
    def __init__(self, it: Any) -> None:
        self.it = it

    def __iter__(self) -> Any:
        return iter(self.it)

    def set_postfix(self, **kw: Any) -> None:  # pragma: no cover - trivial
        pass

    def write(self, s: str) -> None:  # pragma: no cover - trivial
        pass

    def close(self) -> None:
        pass


def _progress(it: Any, *, total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar(it)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the nn extra
        return _NoBar(it)
    return tqdm(it, total=total, initial=initial, desc="train", unit="epoch", dynamic_ncols=True)
