"""Absurd arguments are usage errors (exit 2, one line naming the argument), in bounded time and memory."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest

from refconv import cli


def _main(capsys, *argv):
    """``refconv ARGV`` in-process, with only the command under test registered; ``(status, out, err)``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "COMMANDS", {argv[0]: cli.COMMANDS[argv[0]]})
        code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _usage(capsys, option, *argv):
    """Exit status 2 and one stderr line naming ``option``; returns that line."""
    code, _, err = _main(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"refconv {argv[0]}: error: ") and option in lines[0], err
    return lines[0]


def _refconv(*argv, timeout):
    """``python -m refconv ARGV`` in a subprocess that must end within ``timeout`` seconds (not hang)."""
    return subprocess.run([sys.executable, "-m", "refconv", *argv], capture_output=True, text=True, timeout=timeout)


# ---- output paths, checked before any work ------------------------------------------------


def _forbid(monkeypatch, module, name):
    """Make ``module.name`` fail the test if called: the refusal must come before the work."""
    def work(*a, **k):
        raise AssertionError(f"{module.__name__}.{name} ran before the output path was checked")

    monkeypatch.setattr(module, name, work)


def test_bench_json_into_a_missing_folder_is_refused_before_the_benchmark(tmp_path, capsys, monkeypatch):
    from refconv import bench

    _forbid(monkeypatch, bench, "run_suite")
    line = _usage(capsys, "--json", "bench", "--quick", "--json", str(tmp_path / "missing" / "r.json"))
    assert "does not exist" in line


def test_identify_json_into_a_file_as_folder_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    line = _usage(capsys, "--json", "identify", "refconv.oracle", "--json", str(tmp_path / "file" / "fp.json"))
    assert "is not a folder" in line


def test_golden_out_below_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    line = _usage(capsys, "--out", "golden", "--out", str(tmp_path / "file" / "cases"))
    assert "is not a folder" in line


def test_train_out_and_plot_are_checked_before_the_data_is_loaded(tmp_path, capsys, monkeypatch):
    from refconv.nn import data

    _forbid(monkeypatch, data, "load_dataset")
    (tmp_path / "file").write_text("x")
    _usage(capsys, "--out", "train", "--out", str(tmp_path / "file"))
    _usage(capsys, "--plot", "train", "--out", str(tmp_path / "run"), "--plot", str(tmp_path / "file" / "plots"))


def test_output_path_helper(tmp_path):
    from refconv.cli import UsageError
    from refconv.commands._paths import output_dir, output_file

    assert output_file("--json", str(tmp_path / "a.json")) == str(tmp_path / "a.json")
    assert output_dir("--out", str(tmp_path / "new" / "deeper")) == str(tmp_path / "new" / "deeper")
    assert os.listdir(tmp_path) == []  # the probes leave nothing behind, and nothing is created early
    with pytest.raises(UsageError, match=r"--json=.*: is a folder"):
        output_file("--json", str(tmp_path))
    with pytest.raises(UsageError, match=r"--json='': expected a file name"):
        output_file("--json", "")


def test_output_path_in_an_unwritable_folder(tmp_path):
    from refconv.cli import UsageError
    from refconv.commands._paths import output_file

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        try:  # the superuser writes anyway: then there is nothing to refuse
            (locked / "probe").write_text("")
            pytest.skip("this user can write in a read-only folder")
        except PermissionError:
            pass
        with pytest.raises(UsageError, match=r"--json=.*: cannot write in"):
            output_file("--json", str(locked / "out.json"))
    finally:
        locked.chmod(0o700)


# ---- shape: a stride does not make the warning enumerate its input sizes ---------------------


@pytest.mark.parametrize("stride", [50_000_000, 2**37, 2**63 - 1])
def test_shape_warning_summarizes_the_input_range(stride, capsys):
    code, out, err = _main(capsys, "shape", "conv", "--input", "1x1x7x7", "--kernel", "3", "--stride", str(stride))
    assert code == 0 and out.strip().endswith("output: 1x1x1x1")
    # n + 0 + 0 - 1*(3 - 1) - 1 in [0, stride): n = 3 .. stride + 2
    assert f"inputs of size 3..{stride + 2} ({stride} sizes) give the same output 1" in err
    assert len(err) < 1000


def test_unread_warning_with_a_stride_of_2_to_the_64():
    import warnings

    from refconv import shapes

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = shapes.conv_geometry(7, 3, stride=2**64, warn=True)
    assert g.output == 1 and g.unread_input == 4
    assert f"inputs of size 3..{2**64 + 2} ({2**64} sizes) give the same output 1" in str(caught[0].message)


def test_sizes_text_lists_short_ranges_only():
    from refconv import shapes

    assert shapes.sizes_text(range(223, 227)) == "[223, 224, 225, 226]"
    assert shapes.sizes_text(range(5, 5 + 2**100)) == f"5..{4 + 2**100} ({2**100} sizes)"
    with pytest.raises(ValueError, match=r"reachable sizes are \d+\.\.\d+ \(18446744073709551616 sizes\)"):
        shapes.output_padding_for(3, 1, 3, stride=2**64)


# ---- derive: numbers are exact, small, and checked before they are parsed ---------------------


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--x", "1/0,1,1,1", "'1/0' divides by zero"),
        ("--x", "1e100000,1,1,1", "'1e100000' has an exponent beyond +-30"),
        ("--x", "1" * 31 + ",1,1,1", "has more than 30 digits"),
        ("--x", "0" * 5000 + "1,1,1,1", "is longer than"),
        ("--x", "nan,1,1,1", "'nan' is not a number"),
        ("--lr", "1/0", "'1/0' divides by zero"),
        ("--lr", "1e-99999", "has an exponent beyond"),
    ],
)
def test_derive_refuses_bad_numbers(option, value, message, capsys):
    argv = ["derive", "conv", "--input", "4", "--kernel", "3"]
    argv += [option, value] if option == "--x" else ["--x", "1,2,3,4", option, value]
    assert message in _usage(capsys, option, *argv)


def test_derive_huge_exponent_is_refused_at_once():
    r = _refconv("derive", "conv", "--input", "4", "--kernel", "3", "--x", "1e999999999,1,1,1", timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        "refconv derive: error: --x='1e999999999,1,1,1': '1e999999999' has an exponent beyond +-30"
    )


def test_derive_exact_numbers_still_work(capsys):
    code, out, _ = _main(capsys, "derive", "conv", "--input", "4", "--kernel", "3", "--x", "0.5,-1e-1,1/3,+2",
                         "--w", "1,0,0", "--lr", "1/10")
    assert code == 0
    assert "y = [[[b0 + 1/2, b0 - 1/10]]]" in out


# ---- summary: every field of a network file, and linear time in the depth --------------------


def _net(tmp_path, text, name="net.json"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    "text,message",
    [
        ('{"layers": [{"type": ["conv"]}]}', "layers[0]: unknown type ['conv']"),
        ('{"layers": [{"type": "relu"}, {"type": "conv", "out_channels": ' + "9" * 5000 + ', "kernel_size": 3}]}',
         "layers[1].out_channels=<an integer of 5000 digits>: out of range"),
        ('{"layers": [{"type": "conv", "out_channels": 9223372036854775808, "kernel_size": 3}]}',
         "layers[0].out_channels=9223372036854775808: out of range"),
        ('{"input": [1, 8, 8], "layers": [{"type": "dropout", "p": NaN}]}', "layers[0].p=nan: must be a finite number"),
        ('{"input": [1, 8, 8], "layers": [{"type": "leakyrelu", "negative_slope": 1e999}]}',
         "layers[0].negative_slope=inf: must be a finite number"),
        ('{"layers": [{"type": "conv", "out_channels": 2, "kernel_size": 3, "padding": [[[1]]]}]}',
         "layers[0] (conv).padding=[[[1]]]: lists nest at most 2 deep"),
        ('{"layers": [{"type": "conv", "out_channels": 2, "kernel_size": {"a": 1}}]}',
         "layers[0] (conv).kernel_size={'a': 1}: expected a number"),
    ],
)
def test_summary_refuses_bad_fields_naming_layer_field_and_value(text, message, tmp_path, capsys):
    assert message in _usage(capsys, "net.json", "summary", _net(tmp_path, text))


def test_summary_layer_fields_must_be_finite():
    from refconv.params import ConvParamError
    from refconv.summary import LRN

    with pytest.raises(ConvParamError, match=r"LRN.k=inf: must be a finite number in \[0.0, inf\)"):
        LRN(size=3, k=float("inf"))


def test_summary_input_size_beyond_the_int_limit(capsys):
    line = _usage(capsys, "--input", "summary", "lenet5", "--input", "1x" + "9" * 5000 + "x32")
    assert "is larger than 2**63 - 1" in line


@pytest.mark.parametrize("option,value", [("--batch", "0"), ("--batch", str(2**80)), ("--num-classes", str(2**63))])
def test_summary_counts_in_range(option, value, capsys):
    assert "must be an integer in [1, 2**63 - 1]" in _usage(capsys, option, "summary", "lenet5", option, value)


def test_summary_of_10000_layers_takes_seconds(tmp_path):
    layers = [{"type": "conv", "out_channels": 2, "kernel_size": 3, "padding": 1}, {"type": "relu"}] * 5000
    path = _net(tmp_path, json.dumps({"input": [2, 16, 16], "layers": layers}))
    r = _refconv("summary", path, "--format", "json", timeout=60)  # quadratic in the depth, this took hours
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert len(s["layers"]) == 10000
    # 5000 stacked 3x3 convolutions: the receptive field grows by 2 per convolution
    assert s["layers"][-1]["receptive_field"] == [10001, 10001]


def test_toml_reader_is_tomllib_here_and_tomli_is_declared_for_python_3_10():
    import pathlib
    import tomllib

    from refconv.summary import io as sio

    assert sio._toml_module() is tomllib
    pyproject = tomllib.loads((pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert "tomli>=2; python_version < '3.11'" in pyproject["project"]["dependencies"]


# ---- train: every option finite and in range, refused before any data is read -------------------


@pytest.mark.parametrize(
    "option,value",
    [
        ("--clip-norm", "inf"), ("--clip-norm", "nan"), ("--clip-norm", "0"),
        ("--lr", "inf"), ("--lr", "nan"), ("--lr", "1e999"),
        ("--weight-decay", "inf"), ("--weight-decay", "-1"),
        ("--epochs", "10000001"), ("--seed", "-1"), ("--seed", str(2**64)),
        ("--batch-size", "0"), ("--batch-size", str(2**21)),
        ("--data", "cifar"), ("--data", "mnist:"),
    ],
)
def test_train_options_are_validated_first(option, value, tmp_path, capsys, monkeypatch):
    from refconv.nn import data

    _forbid(monkeypatch, data, "load_dataset")
    line = _usage(capsys, option, "train", "--out", str(tmp_path / "run"), option, value)
    assert f"{option}=" in line


def test_train_config_refuses_an_infinite_clip_norm():
    from refconv.nn.train import TrainConfig

    with pytest.raises(ValueError, match=r"clip_norm=inf: must be a finite number > 0"):
        TrainConfig(clip_norm=float("inf"))


def test_idx_file_beyond_the_size_limit_is_a_data_error(tmp_path, monkeypatch):
    from refconv.nn import data

    p = str(tmp_path / "a-idx1-ubyte.gz")
    data.write_idx(p, np.zeros(4096, np.uint8))  # compresses to a few dozen bytes
    monkeypatch.setattr(data, "MAX_IDX_BYTES", 1024)
    with pytest.raises(data.DataError, match=r"more than 1024 bytes"):
        data.read_idx(p)


def test_mnist_folder_without_images_is_a_data_error(tmp_path):
    from refconv.nn.data import DataError, load_mnist, write_idx

    for prefix in ("train", "t10k"):
        write_idx(str(tmp_path / f"{prefix}-images-idx3-ubyte"), np.zeros((0, 28, 28), np.uint8))
        write_idx(str(tmp_path / f"{prefix}-labels-idx1-ubyte"), np.zeros(0, np.uint8))
    with pytest.raises(DataError, match=r"images have shape \(0, 28, 28\)"):
        load_mnist(str(tmp_path))


# ---- checkpoints and images: refused before anything large is allocated -----------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of one epoch on 16 digits (seconds), and the folder it is in."""
    from refconv.nn.data import Dataset, load_digits_split
    from refconv.nn.train import TrainConfig, train

    ds = load_digits_split()
    small = Dataset("digits", ds.x_train[:16], ds.y_train[:16], ds.x_test[:8], ds.y_test[:8], scale=16)
    out = tmp_path_factory.mktemp("ckpt")
    train(small, TrainConfig(epochs=1, batch_size=8), out_dir=str(out), progress=False)
    return str(out / "checkpoint.npz")


def _digit(tmp_path):
    p = tmp_path / "d.npy"
    np.save(p, np.full((8, 8), 8.0))
    return str(p)


def test_predict_refuses_a_checkpoint_with_nan_parameters(checkpoint, tmp_path, capsys):
    from refconv.nn.checkpoint import load_npz, save_npz

    arrays, meta = load_npz(checkpoint)
    key = next(k for k in sorted(arrays) if k.startswith("param/"))
    arrays[key] = arrays[key].copy()
    arrays[key].flat[0] = np.nan
    bad = str(tmp_path / "nan.npz")
    save_npz(bad, arrays, meta)
    line = _usage(capsys, "nan.npz", "predict", bad, _digit(tmp_path))
    assert f"entry {key!r} holds NaN or infinite values" in line


def test_predict_refuses_a_forward_pass_beyond_the_memory_limit(checkpoint, tmp_path, capsys, monkeypatch):
    from refconv.commands import predict

    monkeypatch.setattr(predict, "MAX_FORWARD_BYTES", 10_000)  # the 8x8 digits network stores 42,792 bytes per image
    line = _usage(capsys, "checkpoint.npz", "predict", checkpoint, *[_digit(tmp_path)] * 3)
    assert "its forward pass over 3 image(s) stores" in line


def _npy_bytes(shape, data=b"\0" * 16):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def test_predict_refuses_a_checkpoint_whose_header_declares_a_huge_array(checkpoint, tmp_path, capsys):
    bad = str(tmp_path / "huge.npz")
    with zipfile.ZipFile(checkpoint) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info) if info.filename == "meta.npy" else _npy_bytes((10**6, 10**6)))
    line = _usage(capsys, "huge.npz", "predict", bad, _digit(tmp_path))
    assert "declares shape (1000000, 1000000)" in line


def test_predict_refuses_a_checkpoint_declaring_more_parameters_than_it_holds(checkpoint, tmp_path, capsys):
    from refconv.nn.checkpoint import load_npz, save_npz

    arrays, meta = load_npz(checkpoint)
    meta["input_shape"] = [1, 10**5, 10**5]  # the network would allocate a 10**10-wide linear layer
    bad = str(tmp_path / "wide.npz")
    save_npz(bad, arrays, meta)
    line = _usage(capsys, "wide.npz", "predict", bad, _digit(tmp_path))
    assert "inconsistent contents" in line


def test_predict_refuses_an_npy_image_declaring_a_huge_array(checkpoint, tmp_path, capsys):
    p = tmp_path / "huge.npy"
    p.write_bytes(_npy_bytes((10**6, 10**6)))
    line = _usage(capsys, "huge.npy", "predict", checkpoint, str(p))
    assert "declares shape (1000000, 1000000)" in line


def _png(path, width, height):
    """A PNG that declares ``width`` x ``height`` 1-bit pixels; only its header matters here."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    return str(path)


@pytest.mark.parametrize("side", [3000, 100_000])
def test_predict_refuses_decompression_bombs(side, checkpoint, tmp_path, capsys):
    line = _usage(capsys, "bomb.png", "predict", checkpoint, _png(tmp_path / "bomb.png", side, side))
    assert "bomb.png" in line


def test_stale_temporary_checkpoints_are_removed_by_the_next_run(tmp_path):
    from refconv.nn.checkpoint import save_npz
    from refconv.nn.data import Dataset, load_digits_split
    from refconv.nn.train import TrainConfig, train

    orphan = tmp_path / ".checkpoint.npz.k1ll3d_x.tmp"  # what a run killed inside save_npz leaves
    legacy = tmp_path / ".tmp-abcd1234.npz"
    other = tmp_path / "notes.tmp"
    for p in (orphan, legacy, other):
        p.write_bytes(b"partial")
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    ds = load_digits_split()
    small = Dataset("digits", ds.x_train[:8], ds.y_train[:8], ds.x_test[:4], ds.y_test[:4], scale=16)
    train(small, TrainConfig(epochs=1, batch_size=8), out_dir=str(tmp_path), progress=False)
    assert not orphan.exists() and not legacy.exists()
    assert other.exists() and (tmp_path / "checkpoint.npz").exists()
    # the writer's own temporary files follow the pattern the cleanup looks for
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", spy)
        save_npz(str(tmp_path / "checkpoint.npz"), {"a": np.zeros(1)}, {})
    assert len(seen) == 1 and seen[0].startswith(".checkpoint.npz.") and seen[0].endswith(".tmp")


# ---- identify: --dims, --op, and undecided rows that say why --------------------------------------


def conv2d_only(x, w, b=None, *, stride, padding, dilation, groups):
    from refconv import oracle

    if x.ndim != 4:
        raise ValueError("2-D only")
    return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


conv2d_only.refconv_capabilities = {"dims": (2,)}


def test_identify_probes_a_2d_only_function_in_2d(capsys):
    from refconv.conformance.identify import identify

    fp = identify(conv2d_only, ops=("conv",))  # the fewest axes it declares: 2
    assert fp["conv.kernel"] == "cross-correlation (no flip)"
    assert fp["conv.padding"] == "(lo, hi) as given" and fp["conv.stride"] == "offset 0"
    assert fp["conv.dilation"] == "counted from 1 (dilation 1 is dense)"
    one = identify(conv2d_only, ops=("conv",), dims=1)
    assert one["conv.kernel"] == "not offered: the target declares dims (2,), not 1-D"


def test_identify_2d_probes_tell_conventions_apart():
    from refconv import oracle
    from refconv.conformance.identify import identify

    def flipped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, flip=True)

    def swapped(x, w, b, *, stride, padding, dilation, groups):
        return oracle.conv(x, w, b, stride=stride, padding=[(h, lo) for lo, h in padding], dilation=dilation, groups=groups)

    assert identify(flipped, ops=("conv",), dims=2)["conv.kernel"] == "convolution (kernel flipped)"
    assert identify(swapped, ops=("conv",), dims=3)["conv.padding"] == "(hi, lo): sides swapped"


def test_identify_command_dims_and_op(capsys):
    code, out, _ = _main(capsys, "identify", "refconv.oracle", "--op", "max_pool", "--dims", "2")
    assert code == 0
    assert "ceil_mode rule" in out and "avg pool divisor" not in out and "kernel flip" not in out
    code, out, _ = _main(capsys, "identify", "scipy", "--op", "conv")
    assert code == 0
    assert "| dilation counted from 0 or 1 | not offered: the target declares no dilation > 1 |" in out


def test_identify_framework_table_keeps_the_short_form():
    from refconv.conformance.identify import FRAMEWORK_COLUMNS, framework_table

    fp = {p: "not offered: the target declares no dilation > 1" for _, p in FRAMEWORK_COLUMNS}
    assert framework_table({"t": fp}).splitlines()[-1] == "| `t` | " + " | ".join(["not offered"] * len(FRAMEWORK_COLUMNS)) + " |"
