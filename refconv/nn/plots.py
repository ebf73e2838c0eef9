"""PNG pictures of a training run (matplotlib, an optional extra).

``plot_all`` writes three files into a directory:

``curves.png``
    training and test loss and accuracy per epoch.
``filters.png``
    the learned first-layer convolution kernels, one tile per output channel
    (input channel 0), on a diverging scale symmetric around 0 (red positive,
    blue negative), and below them what training changed (learned minus
    initial weights, on its own scale) with the relative change
    ``||w - w0|| / ||w0||`` in the title.  On the 8x8 digits the 3x3 kernels
    stay close to their random start (about 15 % for the default network,
    seed 0): the picture shows how much, rather than suggesting clean edge
    detectors.
``feature_maps.png``
    one test digit (the first one the model classifies correctly) through the
    network: the input, then for every convolution, activation and pooling
    layer its first channels (the activation maps, one colour scale per
    layer), and the class probabilities at the end.

Only the object-oriented matplotlib API is used (no ``pyplot``, no global
state); each file is written to a temporary name and moved into place.

Examples
--------
>>> available()
True
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..atomic import atomic_open

__all__ = ["available", "plot_curves", "plot_filters", "plot_feature_maps", "plot_all"]

#: channels shown per layer in the feature-map picture
MAX_CHANNELS = 16


def available() -> bool:
    """True if matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - matplotlib is in the nn extra
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def plot_curves(history: Any, path: str) -> str:
    """Loss and accuracy per epoch (train and test) to ``path``."""
    epochs = np.arange(1, len(history.train_loss) + 1)
    fig = _figure(10, 4)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, history.train_loss, "o-", label="train")
    ax1.plot(epochs, history.test_loss, "s-", label="test")
    ax1.set_yscale("log")
    ax1.set(xlabel="epoch", ylabel="loss (log scale)", title="loss")
    ax1.legend()
    ax2.plot(epochs, history.train_acc, "o-", label="train")
    ax2.plot(epochs, history.test_acc, "s-", label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy", title=f"accuracy (final test {history.test_acc[-1]:.4f})")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _first_conv_weight(model: Any) -> np.ndarray:
    for layer in model.layers:
        w = layer.params.get("weight")
        if w is not None and w.ndim == 4:
            return w
    raise ValueError("model: no 2-D convolution layer to show filters of")


def _tiles(fig: Any, grid: Any, row0: int, w: np.ndarray, cols: int, title: str, sym: str) -> None:
    lim = float(np.abs(w).max()) or 1.0
    ax = fig.add_subplot(grid[row0, :])
    ax.set_axis_off()
    ax.text(0.5, 0.2, f"{title} (red > 0 > blue, {sym} <= {lim:.2f})", ha="center", va="center", fontsize=11)
    for i in range(w.shape[0]):
        ax = fig.add_subplot(grid[row0 + 1 + i // cols, i % cols])
        ax.imshow(w[i], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(str(i), fontsize=7, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])


def plot_filters(model: Any, path: str, initial: Any = None) -> str:
    """The first convolution's kernels ``w[o, 0]`` as tiles; with ``initial`` (the model before
    training) also the change ``w - w0``."""
    w = _first_conv_weight(model)[:, 0].astype(np.float64)
    n = w.shape[0]
    cols = min(8, n)
    rows = -(-n // cols)
    panels = [(w, f"learned first-layer filters {w.shape[1]}x{w.shape[2]}", "|w|")]
    if initial is not None:
        w0 = _first_conv_weight(initial)[:, 0].astype(np.float64)
        rel = float(np.linalg.norm(w - w0) / (np.linalg.norm(w0) or 1.0))
        panels.append((w - w0, f"change since initialization, ||w - w0|| / ||w0|| = {rel:.2f}", "|w - w0|"))
    fig = _figure(1.3 * cols, len(panels) * (1.3 * rows + 0.5))
    grid = fig.add_gridspec(len(panels) * (rows + 1), cols, height_ratios=([0.35] + [1] * rows) * len(panels))
    for j, (tiles, title, sym) in enumerate(panels):
        _tiles(fig, grid, j * (rows + 1), tiles, cols, title, sym)
    fig.tight_layout()
    return _save(fig, path)


def plot_feature_maps(model: Any, image: np.ndarray, path: str, *, label: int | None = None) -> str:
    """One image ``(C, H, W)`` through the network: activation maps of every spatial layer."""
    from .losses import softmax

    from .layers import BatchNorm

    trace = model.trace(image[None])
    # batch-norm outputs look like the convolution before them (an affine map per channel): skipped
    spatial = [(name, out[0]) for (name, out), layer in zip(trace, model.layers) if out.ndim == 4 and not isinstance(layer, BatchNorm)]
    probs = softmax(trace[-1][1].astype(np.float64))[0]
    rows = len(spatial) + 2
    fig = _figure(1.0 * MAX_CHANNELS, 1.15 * rows + 0.5)
    grid = fig.add_gridspec(rows, MAX_CHANNELS)
    ax = fig.add_subplot(grid[0, 0:2])
    ax.imshow(image[0], cmap="gray", interpolation="nearest")
    ax.set_title("input" + (f" (label {label})" if label is not None else ""), fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax = fig.add_subplot(grid[0, 3:MAX_CHANNELS])
    ax.set_axis_off()
    ax.text(0, 0.5, f"rows: layer outputs, channels 0..{MAX_CHANNELS - 1}; colour scale shared within a row", fontsize=9, va="center")
    for r, (name, maps) in enumerate(spatial, start=1):
        shown = maps[:MAX_CHANNELS].astype(np.float64)
        lo, hi = float(shown.min()), float(shown.max())
        for c in range(shown.shape[0]):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(shown[c], cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{name}\n{maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}", fontsize=7)
    ax = fig.add_subplot(grid[rows - 1, 2 : MAX_CHANNELS - 2])
    ax.bar(np.arange(probs.size), probs, color="tab:blue")
    ax.set_xticks(np.arange(probs.size))
    ax.set_ylim(0, 1)
    ax.set_title(f"class probabilities (predicted {int(probs.argmax())})", fontsize=8)
    fig.suptitle(f"feature maps of one test digit (first {MAX_CHANNELS} channels per layer)")
    fig.tight_layout()
    return _save(fig, path)


def plot_all(
    model: Any, history: Any, dataset: Any, directory: str, *, initial: Any = None, index: int | None = None
) -> list[str]:
    """``curves.png``, ``filters.png`` and ``feature_maps.png`` in ``directory``.

    ``initial`` is the model before training (for the change of the filters).
    The feature maps show test image ``index``; by default the first test
    image the model classifies correctly (else image 0).
    """
    directory = os.path.expanduser(directory)
    if index is None:
        ok = np.flatnonzero(model.predict(dataset.x_test) == dataset.y_test)
        index = int(ok[0]) if ok.size else 0
    x = dataset.x_test[index].astype(model.dtype)
    return [
        plot_curves(history, os.path.join(directory, "curves.png")),
        plot_filters(model, os.path.join(directory, "filters.png"), initial),
        plot_feature_maps(model, x, os.path.join(directory, "feature_maps.png"), label=int(dataset.y_test[index])),
    ]
