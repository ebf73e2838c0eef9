"""`refconv train` and `refconv predict` through the real dispatcher (refconv.cli.main)."""

from __future__ import annotations

import gzip
import os
import re
import struct

import numpy as np
import pytest

from refconv import cli
from refconv.nn.data import load_digits_split
from refconv.nn.train import load_checkpoint


def _main(argv, capsys=None):
    # only this test's subcommands are registered, so the test does not depend on the others
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "COMMANDS", {k: cli.COMMANDS[k] for k in ("train", "predict")})
        return cli.main(argv)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 1-epoch training run with plots, its captured output and exit status."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("run")
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        rc = _main(["train", "--epochs", "1", "--seed", "0", "--out", str(out), "--plot", str(out / "plots")])
    return out, rc, buf.getvalue(), err.getvalue()


def test_train_prints_accuracy_and_confusion_matrix(run_dir):
    out, rc, stdout, stderr = run_dir
    assert rc == 0, stderr
    last = stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"test accuracy: (0\.\d{4}|1\.0000)", last)
    assert m, last
    assert float(m.group(1)) > 0.5  # chance is 0.1
    assert "confusion matrix (rows: true class, columns: predicted)" in stdout
    assert "epoch   1/1  loss" in stdout  # one line per epoch, under the bar on stderr
    assert "train: 100%" in stderr
    assert os.path.isfile(out / "checkpoint.npz")


def test_plots_are_pngs(run_dir):
    from PIL import Image

    out = run_dir[0] / "plots"
    for name in ("curves.png", "filters.png", "feature_maps.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] >= 400 and im.size[1] >= 300
            # not a blank canvas
            assert len(set(np.asarray(im.convert("L")).ravel().tolist())) > 10


def test_same_seed_same_checkpoint(run_dir, tmp_path, capsys):
    assert _main(["train", "--epochs", "1", "--seed", "0", "--out", str(tmp_path), "--quiet"]) == 0
    again = capsys.readouterr().out.strip().splitlines()[-1]
    assert again == run_dir[2].strip().splitlines()[-1]
    a, _, _ = load_checkpoint(str(run_dir[0] / "checkpoint.npz"))
    b, _, _ = load_checkpoint(str(tmp_path / "checkpoint.npz"))
    assert all(np.array_equal(a.parameters()[k], b.parameters()[k]) for k in a.parameters())


def test_resume_continues_from_the_checkpoint(run_dir, tmp_path, capsys):
    import shutil

    shutil.copy(run_dir[0] / "checkpoint.npz", tmp_path / "checkpoint.npz")
    assert _main(["train", "--epochs", "2", "--out", str(tmp_path), "--resume", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "resumed from epoch 1" in out and "(1 epochs)" in out
    _, _, meta = load_checkpoint(str(tmp_path / "checkpoint.npz"))
    assert meta["epochs_done"] == 2 and len(meta["history"]["test_acc"]) == 2


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--epochs", "0"], "--epochs=0: must be an integer in [1, "),
        (["--data", "cifar"], "--data='cifar': expected 'digits' or 'mnist:DIR'"),
        (["--data", "mnist:/nonexistent/dir"], "not a directory"),
        (["--resume"], "--resume: no checkpoint"),
        (["--lr", "-1"], "--lr=-1.0: must be a finite number > 0"),
    ],
)
def test_train_usage_errors_exit_2(argv, message, tmp_path, capsys):
    assert _main(["train", "--out", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ---- predict -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def test_predict_npy_and_png_agree_with_the_model(run_dir, digits, tmp_path, capsys):
    from PIL import Image

    ckpt = str(run_dir[0] / "checkpoint.npz")
    model, _, _ = load_checkpoint(ckpt)
    expected = model.predict(digits.x_test[:6])
    paths = []
    for i in range(6):
        raw = np.rint(digits.x_test[i, 0] * 16)  # raw 0..16 values, as load_digits().images
        p = tmp_path / f"d{i}.npy"
        np.save(p, raw)
        paths.append(str(p))
    # the same digit as an 8-bit PNG, and as dark ink on white paper
    raw0 = digits.x_test[0, 0] * 255
    Image.fromarray(np.rint(raw0).astype(np.uint8)).save(tmp_path / "light.png")
    Image.fromarray(np.rint(255 - raw0).astype(np.uint8)).save(tmp_path / "paper.png")
    paths += [str(tmp_path / "light.png"), str(tmp_path / "paper.png")]
    assert _main(["predict", ckpt, *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    got = [int(re.search(r": (\d) \(p=", line).group(1)) for line in lines]
    assert got[:6] == expected.tolist()
    # 255/16 is not the digits' scale exactly, so the PNG may round differently; the class must not change
    assert got[6] == got[7] == expected[0]


def test_predict_errors_exit_2(run_dir, tmp_path, capsys):
    ckpt = str(run_dir[0] / "checkpoint.npz")
    np.save(tmp_path / "big.npy", np.zeros((28, 28)))
    np.save(tmp_path / "odd.npy", np.zeros((5, 7)))
    np.save(tmp_path / "neg.npy", -np.ones((8, 8)))
    (tmp_path / "fake.png").write_text("not an image")
    (tmp_path / "digit.txt").write_text("1")
    cases = [
        ([ckpt, str(tmp_path / "big.npy")], "the image is 28x28 but the checkpoint expects 8x8 images"),
        ([ckpt, str(tmp_path / "odd.npy")], "the image is 5x7; digits must be 8x8 or 28x28"),
        ([ckpt, str(tmp_path / "neg.npy")], "pixel values must be finite and in [0, 16]"),
        ([ckpt, str(tmp_path / "fake.png")], "fake.png: not a readable image"),
        ([ckpt, str(tmp_path / "digit.txt")], "unsupported file type '.txt'"),
        ([ckpt, str(tmp_path / "missing.npy")], "missing.npy: no such file"),
        ([str(tmp_path / "digit.txt"), str(tmp_path / "big.npy")], "not a readable .npz file"),
    ]
    for argv, message in cases:
        assert _main(["predict", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err, err
        assert "Traceback" not in err


def _idx(path, array):
    head = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(gzip.compress(head + array.astype(np.uint8).tobytes()))


def test_train_and_predict_on_mnist_idx_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 32), ("t10k", 16)):
        _idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    out = tmp_path / "run"
    assert _main(["train", "--data", f"mnist:{tmp_path}", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "data: mnist, 32 train / 16 test images of 28x28" in text
    assert re.search(r"test accuracy: \d\.\d{4}$", text.strip())
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (28, 28)))
    assert _main(["predict", str(out / "checkpoint.npz"), str(tmp_path / "x.npy")]) == 0
    assert re.fullmatch(r".*x\.npy: \d \(p=\d\.\d{4}\)", capsys.readouterr().out.strip())


def test_plot_without_matplotlib_is_a_usage_error(tmp_path, capsys, monkeypatch):
    from refconv.nn import plots

    monkeypatch.setattr(plots, "available", lambda: False)
    assert _main(["train", "--out", str(tmp_path), "--plot", str(tmp_path / "p")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_train_arch_lenet5_pads_the_images_to_32x32(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 16), ("t10k", 8)):
        _idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    out = tmp_path / "run"
    argv = ["train", "--arch", "lenet5", "--data", f"mnist:{tmp_path}", "--epochs", "1", "--out", str(out), "--quiet"]
    assert _main(argv) == 0
    text = capsys.readouterr().out
    assert "16 train / 8 test images of 32x32; network lenet5" in text
    model, _, meta = load_checkpoint(str(out / "checkpoint.npz"))
    assert model.input_shape == (1, 32, 32) and model.num_params() == 61706
    # the same options resume from the checkpoint (the network compares equal)
    assert _main(argv[:5] + ["--epochs", "2", "--out", str(out), "--quiet", "--resume"]) == 0
    capsys.readouterr()
    # a 28x28 image is padded to 32x32 for prediction, as the training images were: the same class
    img = rng.integers(0, 256, (28, 28))
    np.save(tmp_path / "x.npy", img)
    assert _main(["predict", str(out / "checkpoint.npz"), str(tmp_path / "x.npy")]) == 0
    got = int(re.search(r"x\.npy: (\d)", capsys.readouterr().out).group(1))
    model, _, _ = load_checkpoint(str(out / "checkpoint.npz"))
    padded = np.zeros((1, 1, 32, 32), np.float32)
    padded[0, 0, 2:30, 2:30] = img / 255
    assert got == int(model.predict(padded)[0])


def test_train_arch_usage_errors(tmp_path, capsys):
    assert _main(["train", "--arch", "resnet", "--out", str(tmp_path / "a")]) == 2
    assert "--arch='resnet': expected one of 'default', 'lenet5'" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 4), ("t10k", 2)):
        _idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 40, 40)))
        _idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    assert _main(["train", "--arch", "lenet5", "--data", f"mnist:{tmp_path}", "--out", str(tmp_path / "b")]) == 2
    assert "at most 32x32, not (1, 40, 40)" in capsys.readouterr().err
