"""The training loop: beats chance quickly, deterministic, exact resume, atomic pickle-free checkpoints."""

from __future__ import annotations

import os

import numpy as np
import pytest

from refconv import summary as S
from refconv.nn import checkpoint as CK
from refconv.nn.data import Dataset, load_digits_split
from refconv.nn.train import TrainConfig, load_checkpoint, train


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits_split()


@pytest.fixture(scope="module")
def small(digits) -> Dataset:
    return Dataset("digits", digits.x_train[:256], digits.y_train[:256], digits.x_test[:96], digits.y_test[:96], 16)


def test_short_training_clearly_beats_chance(digits):
    result = train(digits, TrainConfig(epochs=1, seed=0), progress=False)
    # chance is 0.1; over 359 test images an accuracy of 0.5 is about 25 standard deviations above it
    assert result.test_accuracy > 0.5
    assert result.confusion.sum() == len(digits.y_test)
    assert np.trace(result.confusion) == round(result.test_accuracy * len(digits.y_test))


def _params(model):
    return {k: v.copy() for k, v in model.parameters().items()}


def test_training_is_deterministic_for_a_seed(small):
    a = train(small, TrainConfig(epochs=1, seed=3), progress=False)
    b = train(small, TrainConfig(epochs=1, seed=3), progress=False)
    c = train(small, TrainConfig(epochs=1, seed=4), progress=False)
    pa, pb, pc = _params(a.model), _params(b.model), _params(c.model)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert a.history.train_loss == b.history.train_loss
    assert not np.array_equal(pa["0.weight"], pc["0.weight"])


def test_resume_continues_exactly(small, tmp_path):
    # dropout too, so that the generator state saved in the checkpoint matters
    desc = S.Sequential([S.Conv(4, 3, padding=1), S.ReLU(), S.MaxPool(2), S.Flatten(), S.Dropout(0.25), S.Linear(10)])
    cfg = TrainConfig(epochs=3, seed=1, optimizer="momentum", lr=0.05, clip_norm=1.0)
    straight = train(small, cfg, description=desc, progress=False)

    class Stop(Exception):
        pass

    def stop_after_two(epoch, history):
        if epoch == 2:
            raise Stop

    out = str(tmp_path / "run")
    with pytest.raises(Stop):
        train(small, cfg, description=desc, out_dir=out, progress=False, on_epoch=stop_after_two)
    resumed = train(small, cfg, description=desc, out_dir=out, resume=True, progress=False)
    assert resumed.resumed_from == 2 and resumed.epochs_done == 3
    ps, pr = _params(straight.model), _params(resumed.model)
    assert all(np.array_equal(ps[k], pr[k]) for k in ps)
    assert straight.history.test_acc == resumed.history.test_acc
    # the checkpoint after the resumed epoch describes epoch 3
    _, _, meta = load_checkpoint(os.path.join(out, "checkpoint.npz"))
    assert meta["epochs_done"] == 3


def test_resume_refuses_another_configuration(small, tmp_path):
    out = str(tmp_path)
    desc = S.Sequential([S.Flatten(), S.Linear(10)])
    train(small, TrainConfig(epochs=1, seed=0), description=desc, out_dir=out, progress=False)
    with pytest.raises(CK.CheckpointError, match="lr: checkpoint 0.003, now 0.1"):
        train(small, TrainConfig(epochs=2, seed=0, lr=0.1), description=desc, out_dir=out, resume=True, progress=False)
    with pytest.raises(CK.CheckpointError, match="network differs"):
        train(small, TrainConfig(epochs=2, seed=0), description=S.Sequential([S.Flatten(), S.Linear(10, bias=False)]),
              out_dir=out, resume=True, progress=False)


def test_mse_loss_with_momentum_trains_too(small):
    desc = S.Sequential([S.Flatten(), S.Linear(32), S.Sigmoid(), S.Linear(10)])
    cfg = TrainConfig(epochs=10, loss="mse", optimizer="momentum", lr=0.2, schedule="constant", batch_size=16)
    r = train(small, cfg, description=desc, progress=False)
    assert r.history.train_loss[-1] < r.history.train_loss[0]
    assert r.test_accuracy > 0.3  # 96 test images, chance 0.1


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    CK.save_npz(path, {"a": np.arange(3)}, {"v": 1})

    def broken_savez(f, **arrays):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(CK.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        CK.save_npz(path, {"a": np.arange(5)}, {"v": 2})
    monkeypatch.undo()
    arrays, meta = CK.load_npz(path)
    assert arrays["a"].tolist() == [0, 1, 2] and meta == {"v": 1}
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_checkpoint_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array("{}"), obj=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CK.CheckpointError, match="not a readable .npz"):
        CK.load_npz(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CK.CheckpointError, match="junk.npz"):
        CK.load_npz(tmp_path / "junk.npz")
    with pytest.raises(CK.CheckpointError, match="no such file"):
        CK.load_npz(tmp_path / "absent.npz")


def test_train_config_validation():
    with pytest.raises(ValueError, match="epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        TrainConfig(optimizer="rmsprop")


FASHION = "/usr/share/datasets/fashion-mnist"


def test_lenet5_learns_fashion_mnist_in_one_short_epoch():
    """LeNet-5 from the zoo, Fashion-MNIST padded to 32x32: one epoch on 3,000 images clearly beats chance."""
    if not os.path.isfile(os.path.join(FASHION, "train-images-idx3-ubyte.gz")):
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION} (Debian package dataset-fashion-mnist)")
    from refconv.nn.data import load_mnist, pad_images
    from refconv.nn.model import architecture

    full = pad_images(load_mnist(FASHION), 32)
    assert full.image_shape == (1, 32, 32)
    ds = Dataset("mnist", full.x_train[:3000], full.y_train[:3000], full.x_test[:1000], full.y_test[:1000], 255)
    desc, shape = architecture("lenet5", (1, 28, 28))
    result = train(ds, TrainConfig(epochs=1, seed=0), description=desc, progress=False)
    assert result.model.input_shape == shape == (1, 32, 32) and result.model.num_params() == 61706
    # chance is 0.1; over 1,000 test images (binomial sd 0.0095) 0.6 is over 50 standard deviations above it
    assert result.test_accuracy > 0.6, result.test_accuracy
    assert result.confusion.sum() == 1000
