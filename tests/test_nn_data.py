"""Data: the fixed digits split and MNIST IDX files written by the test itself."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from refconv.nn.data import DataError, load_dataset, load_digits_split, load_mnist, read_idx


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    # IDX: 0, 0, type code, number of axes, big-endian uint32 sizes, big-endian values
    head = bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, array, code=0x08, gz=False):
    data = _idx_bytes(np.asarray(array), code)
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)


def test_digits_split_is_fixed_stratified_and_complete():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    a, b = load_digits_split(), load_digits_split()
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert len(a.x_train) + len(a.x_test) == 1797
    counts = np.bincount(bunch.target, minlength=10)
    assert np.bincount(a.y_test, minlength=10).tolist() == [int(round(0.2 * c)) for c in counts]
    # the images are the library's, scaled by 1/16, and train and test are disjoint
    rows = {img.tobytes(): i for i, img in enumerate((bunch.images / 16).astype(np.float32))}
    tr = [rows.get(x[0].tobytes()) for x in a.x_train]
    te = [rows.get(x[0].tobytes()) for x in a.x_test]
    assert None not in tr and None not in te
    assert np.array_equal(bunch.target[te], a.y_test)
    assert a.x_train.dtype == np.float32 and a.x_train.min() == 0 and a.x_train.max() == 1


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files_raw_and_gzip(tmp_path, gz):
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    tr_x = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    tr_y = rng.integers(0, 10, 7, dtype=np.uint8)
    te_x = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    te_y = np.array([9, 0, 4], dtype=np.uint8)
    _write(tmp_path / f"train-images-idx3-ubyte{sfx}", tr_x, gz=gz)
    _write(tmp_path / f"train-labels-idx1-ubyte{sfx}", tr_y, gz=gz)
    _write(tmp_path / f"t10k-images-idx3-ubyte{sfx}", te_x, gz=gz)
    _write(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", te_y, gz=gz)
    ds = load_dataset(f"mnist:{tmp_path}")
    assert ds.name == "mnist" and ds.scale == 255 and ds.image_shape == (1, 28, 28)
    assert np.array_equal(ds.x_train[:, 0] * 255, tr_x.astype(np.float32))
    assert ds.y_test.tolist() == [9, 0, 4] and ds.y_train.dtype == np.int64


def test_read_idx_other_types(tmp_path):
    a = np.array([[1.5, -2.0], [3.25, 0.0]])
    _write(tmp_path / "f.idx", a, code=0x0E)
    assert np.array_equal(read_idx(tmp_path / "f.idx"), a)
    b = np.array([-3, 70000], dtype=np.int32)
    _write(tmp_path / "i.idx", b, code=0x0C)
    assert read_idx(tmp_path / "i.idx").tolist() == [-3, 70000]


def test_bad_idx_files_are_named(tmp_path):
    p = tmp_path / "bad-idx1-ubyte"
    p.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")  # header says 5 values, 3 present
    with pytest.raises(DataError, match=r"bad-idx1-ubyte: IDX header says shape \(5,\)"):
        read_idx(p)
    p.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(p)
    with pytest.raises(DataError, match="no such IDX file"):
        read_idx(tmp_path / "nothing")


def test_mnist_missing_file_and_bad_spec(tmp_path):
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        load_dataset(f"mnist:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="data='mnist:'"):
        load_dataset("mnist:")


def test_mnist_label_count_mismatch(tmp_path):
    x = np.zeros((2, 28, 28), np.uint8)
    _write(tmp_path / "train-images-idx3-ubyte", x)
    _write(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    _write(tmp_path / "t10k-images-idx3-ubyte", x)
    _write(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(DataError, match="2 train images but labels of shape"):
        load_mnist(tmp_path)
