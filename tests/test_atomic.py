"""refconv.atomic: saved files get the umask's mode, a failed save changes nothing, and callers use it."""

from __future__ import annotations

import json
import os
import stat
import time

import numpy as np
import pytest

from refconv import atomic
from refconv.atomic import atomic_open, atomic_write, current_umask, file_mode


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _save_bench(p):
    from refconv.bench import write_json

    write_json(str(p), {"a": 1})


def _save_network(p):
    from refconv.summary import io, zoo

    io.save(zoo.lenet5(), p)


def _save_checkpoint(p):
    from refconv.nn.checkpoint import save_npz

    save_npz(p, {"w": np.arange(3)}, {"epoch": 1})


def _save_golden(p):
    from refconv.golden import write_cases

    p.mkdir()
    write_cases(p)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o027, 0o002])
def test_mode_follows_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask and file_mode() == 0o666 & ~mask
    p = tmp_path / "f.txt"
    atomic_write(p, "text\n")
    assert _mode(p) == 0o666 & ~mask
    umask(0o022)
    atomic_write(p, b"again\n")  # replacing an existing file: the new file's mode, from the umask now
    assert _mode(p) == 0o644 and p.read_bytes() == b"again\n"


@pytest.mark.parametrize("save", [_save_bench, _save_network, _save_checkpoint, _save_golden])
@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_callers_save_with_the_umask_mode(tmp_path, umask, save, mask):
    umask(mask)
    p = tmp_path / "saved"
    save(p)
    files = [q for q in p.iterdir()] if p.is_dir() else [p]
    assert files and all(_mode(q) == 0o666 & ~mask for q in files)  # mkstemp alone gives 0o600
    assert sorted(os.listdir(tmp_path)) == ["saved"]  # no temporary file left


def test_umask_fallback_without_proc(monkeypatch, umask):
    umask(0o037)
    monkeypatch.setattr(atomic, "_PROC_STATUS", "/nonexistent/status")
    assert current_umask() == 0o037
    assert umask(0o022) == 0o037  # read without changing it


@pytest.mark.parametrize("exc", [RuntimeError("mid-write"), KeyboardInterrupt()])
def test_exception_mid_write_keeps_the_old_file(tmp_path, exc):
    p = tmp_path / "keep.json"
    p.write_text("old\n")
    with pytest.raises(type(exc)):
        with atomic_open(p) as f:
            f.write("new, half")
            f.flush()
            assert len(os.listdir(tmp_path)) == 2  # the temporary file exists while writing
            raise exc
    assert p.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["keep.json"]


def test_failed_fsync_or_rename_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "keep.bin"
    p.write_bytes(b"old")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write(p, b"new")
    monkeypatch.undo()
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["keep.bin"]
    d = tmp_path / "adir"
    d.mkdir()
    with pytest.raises(OSError):  # os.replace of a file onto a folder fails
        atomic_write(d, "x")
    assert d.is_dir() and sorted(os.listdir(tmp_path)) == ["adir", "keep.bin"]


def test_failed_checkpoint_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    from refconv.nn.checkpoint import load_npz, save_npz

    p = tmp_path / "checkpoint.npz"
    save_npz(p, {"w": np.arange(3)}, {"epoch": 1})
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError, match="I/O error"):
        save_npz(p, {"w": np.arange(5)}, {"epoch": 2})
    monkeypatch.undo()
    arrays, meta = load_npz(p)
    assert np.array_equal(arrays["w"], np.arange(3)) and meta == {"epoch": 1}
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_checkpoint_stale_cleanup_finds_the_temporaries_a_killed_save_leaves(tmp_path, monkeypatch):
    from refconv.nn.checkpoint import remove_stale_temporaries, save_npz

    p = tmp_path / "checkpoint.npz"

    def killed(src, dst):
        raise SystemExit("killed before the rename")

    # a process killed before os.replace runs no cleanup: the temporary file stays
    monkeypatch.setattr(atomic.os, "replace", killed)
    monkeypatch.setattr(atomic.os, "unlink", lambda path: None)
    with pytest.raises(SystemExit):
        save_npz(p, {"w": np.arange(3)}, {"epoch": 1})
    monkeypatch.undo()
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith(".checkpoint.npz.") and left[0].endswith(".tmp")
    removed = remove_stale_temporaries(p, before=time.time() + 1)
    assert [os.path.basename(r) for r in removed] == left and os.listdir(tmp_path) == []


def test_prefix_and_suffix_name_the_temporary(tmp_path, monkeypatch):
    seen = []
    real = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda src, dst: (seen.append(os.path.basename(src)), real(src, dst)))
    atomic_write(tmp_path / "a.json", "{}")
    atomic_write(tmp_path / "b.json", "{}", prefix="tmp-", suffix=".part")
    assert seen[0].startswith(".a.json.") and seen[0].endswith(".tmp") and len(seen[0]) == len(".a.json.") + 8 + 4
    assert seen[1].startswith("tmp-") and seen[1].endswith(".part")


def test_text_is_utf8_and_bytes_are_exact(tmp_path):
    p = tmp_path / "t"
    atomic_write(p, "σ = 1\n")
    assert p.read_bytes() == "σ = 1\n".encode("utf-8")
    atomic_write(p, bytes(range(256)))
    assert p.read_bytes() == bytes(range(256))
    with atomic_open(p, "wb") as f:
        np.save(f, np.arange(4))
    assert json.dumps(np.load(p).tolist()) == "[0, 1, 2, 3]"


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"mode='a'"):
        with atomic_open(tmp_path / "x", "a"):
            pass
    with pytest.raises(TypeError, match="data: expected str or bytes, got int"):
        atomic_write(tmp_path / "x", 3)
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "x", "data")
    assert os.listdir(tmp_path) == []
