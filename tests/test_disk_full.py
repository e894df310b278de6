"""A full disk or an I/O error: one line naming the file, end `failed`, exit 1, last.pt untouched, resumable."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import finish_cli, records, run_cli, start_cli, superseded_dropped, wait_until

from nntui.runs import read_records

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")

QUICK = ["train.epochs=3", "train.log_interval_s=0", "train.log_every=4", "train.checkpoint_every_s=0"]


def fail_writes_to(monkeypatch, name_part: str, code: int = errno.ENOSPC, after: int = 0,
                   times: int = 10**9) -> None:
    """`os.write` to a file whose path holds `name_part` raises OSError(code) after `after` good writes,
    `times` times (then the disk has room again)."""
    real, seen = os.write, [0]

    def write(fd: int, data) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if name_part in target:
            seen[0] += 1
            if after < seen[0] <= after + times:
                raise OSError(code, os.strerror(code))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)


def train(tmp_path: Path, run_dir: Path, resume: bool = False, sets: list[str] = QUICK) -> int:
    from nntui.config import load_config
    from nntui.runner import RunRequest, run_headless

    return run_headless(RunRequest(load_config("digits-mlp", sets), run_dir, tmp_path / "data", resume=resume))


def checkpoint_step(path: Path) -> int:
    from nntui.engine import checkpoints

    return int(checkpoints.load(path)["progress"]["step"])


def temp_files(run_dir: Path) -> list[str]:
    return [name for _, _, names in os.walk(run_dir) for name in names if name.endswith(".tmp")]


@pytest.mark.parametrize("name, code, after, times, cause", [
    ("metrics.jsonl", errno.ENOSPC, 40, 1, "no space left on device"),        # a record; the end fits
    ("metrics.jsonl", errno.EIO, 40, 10**9, "input/output error"),            # nothing more can be written
    ("checkpoints/.last.pt", errno.ENOSPC, 1, 10**9, "no space left on device"),  # the first last.pt is kept
    ("checkpoints/.best.pt", errno.ENOSPC, 0, 10**9, "no space left on device"),
    ("summary.json", errno.ENOSPC, 0, 10**9, "no space left on device"),
])
def test_a_write_error_fails_the_run_in_one_line(tmp_path, monkeypatch, capsys, name, code, after, times,
                                                  cause) -> None:
    run_dir = tmp_path / "runs" / "x"
    fail_writes_to(monkeypatch, name, code, after, times)
    assert train(tmp_path, run_dir) == 1
    err = capsys.readouterr().err
    file = name.replace("/.", "/")
    assert err.strip().splitlines()[-1] == f"nntui: error: {cause}: {run_dir / file}", err
    assert "Traceback" not in err
    recs = read_records(run_dir)
    ends = [r for r in recs if r["event"] == "end"]
    if times == 1 or name != "metrics.jsonl":  # the end record could still be written
        assert recs[-1]["event"] == "end" and recs[-1]["status"] == "failed"
        assert f"{cause}: {run_dir / file}" in recs[-1]["error"]
    else:
        assert ends == []
    assert [r["event"] for r in recs].count("start") == 1  # every line whole: no record lost in a cut one
    log = (run_dir / "error.log").read_text()
    assert "Traceback" in log and cause in log and os.stat(run_dir / "error.log").st_mode & 0o777 == 0o600
    assert temp_files(run_dir) == []
    if name == "checkpoints/.last.pt":
        assert checkpoint_step(run_dir / "checkpoints" / "last.pt") == 0  # the last good one, untouched
    if name == "summary.json":
        assert not (run_dir / "summary.json").exists()


def test_a_full_disk_at_the_start_leaves_no_run_dir(tmp_path, monkeypatch, capsys) -> None:
    run_dir = tmp_path / "runs" / "x"
    for name in ("config.toml", "metrics.jsonl"):
        fail_writes_to(monkeypatch, name)
        assert train(tmp_path, run_dir) == 1
        err = capsys.readouterr().err
        assert f"no space left on device: {run_dir / name}" in err.strip().splitlines()[-1] and "Traceback" not in err
        assert not run_dir.exists()
        monkeypatch.undo()
    assert train(tmp_path, run_dir, sets=[*QUICK, "train.epochs=1"]) == 0  # the same name can be used again


def epochs(recs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "epoch_s")} for r in recs if r["event"] == "epoch"]


def test_resumed_after_a_full_disk_equals_the_uninterrupted_run(tmp_path, monkeypatch, capsys) -> None:
    whole, broken = tmp_path / "runs" / "whole", tmp_path / "runs" / "broken"
    assert train(tmp_path, whole) == 0
    fail_writes_to(monkeypatch, "metrics.jsonl", after=60)  # in the second epoch (27 steps each)
    assert train(tmp_path, broken) == 1
    monkeypatch.undo()  # space freed
    assert train(tmp_path, broken, resume=True) == 0
    assert epochs(superseded_dropped(read_records(broken))) == epochs(read_records(whole))
    capsys.readouterr()


# ---------------------------------------------------------------------------------------- a real full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (root and `mount` needed), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("cannot run mount")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30, check=False)


def fill(path: Path) -> None:
    """Take every free byte of the file system of `path`."""
    with open(path, "wb", buffering=0) as handle:
        for size in (1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC


@pytest.mark.slow
def test_a_real_full_disk_mid_run_then_resume(tmp_path, small_disk) -> None:
    runs = small_disk / "runs"
    args = ["--epochs", "4", "--seed", "5", "--set", "train.log_interval_s=0", "--set", "train.log_every=1",
            "--set", "train.checkpoint_every_s=0"]
    proc = start_cli("run", "digits-mlp", "--headless", "--runs-dir", str(runs), "--name", "x", *args,
                     cwd=tmp_path)
    wait_until(lambda: sum(r["event"] == "epoch" for r in read_records(runs / "x")) >= 1 or proc.poll() is not None,
               interval=0.005, what="the first epoch record")
    proc.send_signal(signal.SIGSTOP)
    good = (runs / "x" / "checkpoints" / "last.pt").read_bytes()
    fill(small_disk / "filler")
    proc.send_signal(signal.SIGCONT)
    result = finish_cli(proc)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert lines[-1].startswith("nntui: error: no space left on device: ") and "Traceback" not in result.stderr
    last = (runs / "x" / "checkpoints" / "last.pt").read_bytes()
    assert last == good or checkpoint_step(runs / "x" / "checkpoints" / "last.pt") >= 0  # whole: it loads
    assert temp_files(runs / "x") == []
    (small_disk / "filler").unlink()
    resumed = run_cli("run", "--resume", "x", "--headless", "--runs-dir", str(runs), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    whole = run_cli("run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--name", "whole",
                    *args, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert epochs(superseded_dropped(records(runs / "x"))) == epochs(records(tmp_path / "runs" / "whole"))


@pytest.mark.parametrize("past_the_guard", [False, True])
def test_an_error_at_the_end_fails_the_run_in_one_line(tmp_path, monkeypatch, capsys, past_the_guard) -> None:
    """Caught by the trainer's own guard, or by the runner when the guard itself fails."""
    from nntui.engine.trainer import Trainer

    def broken(self, *args):
        raise RuntimeError("boom")

    monkeypatch.setattr(Trainer, "_finish", broken)
    if past_the_guard:
        monkeypatch.setattr(Trainer, "_failed", broken)
    run_dir = tmp_path / "runs" / "x"
    assert train(tmp_path, run_dir, sets=[*QUICK, "train.epochs=1"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"nntui: error: RuntimeError: boom (traceback in {run_dir / 'error.log'})"
    end = read_records(run_dir)[-1]
    assert (end["event"], end["status"], end["error"]) == ("end", "failed", "RuntimeError: boom")
    assert "Traceback" in (run_dir / "error.log").read_text() and "Traceback" not in err
