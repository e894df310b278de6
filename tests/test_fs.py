"""nntui.fs: run directories made exclusively, files written through a checked directory, never a link."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from nntui.fs import AppendFile, ForeignPathError, OwnDir, RunDir, StorageError, own_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def fail_writes_to(monkeypatch, name_part: str, code: int = errno.ENOSPC, after: int = 0) -> list[int]:
    """`os.write` raises OSError(code) for a file whose path holds `name_part`, after `after` good writes."""
    real, seen = os.write, [0]

    def write(fd: int, data) -> int:
        if name_part in os.readlink(f"/proc/self/fd/{fd}"):
            seen[0] += 1
            if seen[0] > after:
                raise OSError(code, os.strerror(code))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return seen


pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")


def test_run_dir_is_made_exclusively_private_and_umask_proof(tmp_path: Path) -> None:
    old = os.umask(0o777)  # without the fchmods, the directory and its files would be mode 0000
    try:
        with RunDir(tmp_path / "runs" / "a").create() as directory:
            directory.write_atomic("config.toml", b"x = 1\n")
            appended = directory.open_append("metrics.jsonl")
            appended.write(b"{}\n")
            appended.close()
    finally:
        os.umask(old)
    run = tmp_path / "runs" / "a"
    assert mode(run) == 0o700
    assert mode(run / "config.toml") == mode(run / "metrics.jsonl") == 0o600
    with pytest.raises(ForeignPathError, match="already exists"):
        RunDir(run).create()


def test_a_planted_link_at_the_run_dir_name_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a").symlink_to(target)
    (tmp_path / "runs" / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("a", "dangling"):
        with pytest.raises(ForeignPathError, match="already exists; refusing"):
            RunDir(tmp_path / "runs" / name).create()
        with pytest.raises(ForeignPathError, match="is a symbolic link; refusing"):
            RunDir(tmp_path / "runs" / name).open()
    assert os.listdir(target) == [] and not (tmp_path / "nowhere").exists()


def test_files_are_never_opened_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    with OwnDir.create(tmp_path / "run") as directory:
        (tmp_path / "run" / "metrics.jsonl").symlink_to(victim)
        (tmp_path / "run" / "checkpoints").symlink_to(tmp_path)
        with pytest.raises(ForeignPathError, match="symbolic link"):
            directory.open_append("metrics.jsonl")
        with pytest.raises(ForeignPathError, match="symbolic link"):
            directory.subdir("checkpoints", create=True)
        directory.write_atomic("metrics.jsonl", b"new\n")  # a replace swaps the link itself
    assert victim.read_text() == "precious"
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == b"new\n"


def test_a_directory_renamed_away_keeps_its_writes(tmp_path: Path) -> None:
    """A swapped run directory: the writer goes on in its own directory, not in the one now at its path."""
    with OwnDir.create(tmp_path / "run") as directory:
        records = directory.open_append("metrics.jsonl")
        os.rename(tmp_path / "run", tmp_path / "moved")
        decoy = tmp_path / "run"
        decoy.mkdir()
        records.write(b"line\n")
        directory.write_atomic("summary.json", b"{}")
        records.close()
    assert os.listdir(decoy) == []
    assert (tmp_path / "moved" / "metrics.jsonl").read_bytes() == b"line\n"
    assert (tmp_path / "moved" / "summary.json").read_bytes() == b"{}"


def test_another_owner_is_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "run").mkdir()
    owner = os.stat(tmp_path / "run").st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)
    with pytest.raises(ForeignPathError, match=rf"owned by uid {owner}, not by you"):
        RunDir(tmp_path / "run").open()


@pytest.mark.parametrize("code, cause", [(errno.ENOSPC, "no space left on device"),
                                         (errno.EIO, "input/output error")])
def test_a_failed_atomic_write_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch, code, cause) -> None:
    with OwnDir.create(tmp_path / "run") as directory:
        directory.write_atomic("last.pt", b"good")
        fail_writes_to(monkeypatch, "last.pt", code)
        with pytest.raises(StorageError) as raised:
            directory.write_atomic("last.pt", b"new" * 1000)
    assert str(raised.value) == f"{cause}: {tmp_path / 'run' / 'last.pt'}"
    assert raised.value.errno == code
    assert os.listdir(tmp_path / "run") == ["last.pt"]
    assert (tmp_path / "run" / "last.pt").read_bytes() == b"good"


def test_a_failed_append_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch) -> None:
    real = os.write
    with OwnDir.create(tmp_path / "run") as directory:
        records = directory.open_append("metrics.jsonl")
        records.write(b"one\n")

        def half_then_full(fd: int, data) -> int:  # a short write, then the disk is full
            if fd == records.fd and len(data) > 2:
                return real(fd, bytes(data[:2]))
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", half_then_full)
        with pytest.raises(StorageError, match="no space left on device: .*metrics.jsonl"):
            records.write(b"two\n")
        monkeypatch.setattr(os, "write", real)
        records.write(b"three\n")
        records.close()
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == b"one\nthree\n"


def test_own_dir_hands_out_the_held_directory(tmp_path: Path) -> None:
    from nntui import fs

    with OwnDir.create(tmp_path / "run") as run, run.subdir("checkpoints", create=True) as held:
        fs.hold(held)
        try:
            os.rename(tmp_path / "run", tmp_path / "moved")
            with own_dir(tmp_path / "run" / "checkpoints") as directory:
                assert directory is held
                directory.write_atomic("last.pt", b"x")
        finally:
            fs.release(held)
    assert (tmp_path / "moved" / "checkpoints" / "last.pt").read_bytes() == b"x"
    assert not (tmp_path / "run").exists()


def test_remove_takes_only_its_own_directory(tmp_path: Path) -> None:
    with OwnDir.create(tmp_path / "run") as directory:
        directory.write_atomic("config.toml", b"")
        directory.subdir("checkpoints", create=True).close()
        directory.remove()
    assert not (tmp_path / "run").exists()
    with OwnDir.create(tmp_path / "run") as directory:
        os.rename(tmp_path / "run", tmp_path / "moved")
        (tmp_path / "run").mkdir()  # another directory now at its path stays
        directory.remove()
    assert (tmp_path / "run").is_dir() and os.listdir(tmp_path / "moved") == []  # emptied, its name unknown


def test_run_dir_names() -> None:
    run = RunDir("runs/x")
    assert run.last_checkpoint == Path("runs/x/checkpoints/last.pt")
    assert run.pid_file == Path("runs/x/control/pid") and run.acks == Path("runs/x/control/acks")
    assert isinstance(AppendFile, type)
