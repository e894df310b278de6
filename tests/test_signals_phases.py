"""SIGINT, SIGTERM and SIGHUP keep the contract at every phase of a headless run: right after the
process starts (Python's and torch's imports), during the final test pass, and a SIGKILL of a
short run loses little (epoch-end checkpoints adapt to how cheap they are)."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import pytest
from conftest import count_records, finish_cli, records, run_cli, start_cli, wait_until

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler installed for `signum` (SigCgt of /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) & (1 << (signum - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("signum", list(CODES))
def test_a_signal_right_after_start_exits_with_its_code_and_writes_nothing(tmp_path, signum):
    """Sent as soon as `main()` has installed its handlers, while torch is still being imported:
    before this, SIGINT gave a KeyboardInterrupt traceback and SIGTERM and SIGHUP a silent death."""
    proc = start_cli("run", "digits-mlp", "--headless", "--runs-dir", "runs", "--epochs", "2", cwd=tmp_path)
    wait_until(lambda: catches(proc.pid, signal.SIGHUP) or proc.poll() is not None, timeout=60, interval=0.002,
               what="the handlers of main()")
    proc.send_signal(signum)
    done = finish_cli(proc, timeout=60)
    assert done.returncode == CODES[signum], done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing written" in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "runs").exists()


def write_wide_csv(path: Path, rows: int = 12_000, columns: int = 32) -> None:
    generator = random.Random(0)
    lines = [",".join([f"x{i}" for i in range(columns)] + ["label"])]
    for _ in range(rows):
        values = [generator.random() for _ in range(columns)]
        lines.append(",".join(f"{v:.3f}" for v in values) + f",{int(values[0] > 0.5)}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("signum", list(CODES))
def test_a_signal_during_the_test_pass_stops_it_and_exits_with_its_code(tmp_path, signum):
    """One short epoch, then a test pass over 95% of 12,000 rows through a wide MLP (seconds, in
    23 batches): the signal lands in it and stops it at the next batch."""
    write_wide_csv(tmp_path / "wide.csv")
    proc = start_cli("run", "digits-mlp", "--headless", "--runs-dir", "runs", "--name", "r", "--epochs", "1",
                     "--set", f"data.path='{tmp_path / 'wide.csv'}'", "--set", "data.dataset='csv'",
                     "--set", "data.test_split=0.95", "--set", "data.val_split=0.05",
                     "--set", "model.hidden=[2048, 2048]", "--set", "early_stopping.enabled=false",
                     "--set", "train.log_interval_s=0", cwd=tmp_path)
    run_dir = tmp_path / "runs" / "r"
    wait_until(lambda: count_records(run_dir, "epoch") or proc.poll() is not None, timeout=120,
               what="the end of the only epoch")
    proc.send_signal(signum)
    done = finish_cli(proc, timeout=120)
    assert done.returncode == CODES[signum], done.stderr
    assert "Traceback" not in done.stderr
    saved = records(run_dir)
    control = [r for r in saved if r["event"] == "control"]
    assert [(c["action"], c["source"]) for c in control] == [("stop", "signal")]
    assert "test pass" in json.dumps(control[0])
    end = saved[-1]
    assert end["event"] == "end" and end["status"] == "stopped"
    assert all(end.get(key) is None for key in ("test_loss", "test_acc")), end
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    if signum == signal.SIGTERM:  # what was cut short is done on --resume: the test pass alone
        resumed = run_cli("run", "--resume", "r", "--headless", "--runs-dir", "runs", cwd=tmp_path, timeout=240)
        assert resumed.returncode == 0, resumed.stderr
        end = records(run_dir)[-1]
        assert end["status"] == "completed" and end["test_acc"] is not None and end["epoch"] == 1


def test_a_short_run_killed_resumes_from_a_recent_epoch(tmp_path):
    """With `checkpoint_every_s` out of the way, only the adaptive rule (a checkpoint whenever the
    last one cost at most SAVE_COST_SHARE of the time since) can save a later epoch than the first
    step's. Early stopping is off: it must not end the run (with its own checkpoint) before that."""
    proc = start_cli("run", "digits-mlp", "--headless", "--runs-dir", "runs", "--name", "k", "--epochs", "5000",
                     "--set", "train.checkpoint_every_s=100000", "--set", "early_stopping.enabled=false",
                     cwd=tmp_path)
    last = tmp_path / "runs" / "k" / "checkpoints" / "last.pt"
    first = wait_until(lambda: last.exists() and last.stat().st_ino, timeout=120, what="the first checkpoint")
    wait_until(lambda: last.exists() and last.stat().st_ino != first, timeout=120, what="an epoch-end checkpoint")
    assert proc.poll() is None
    proc.kill()
    proc.wait(30)
    resumed = start_cli("run", "--resume", "k", "--headless", "--runs-dir", "runs", cwd=tmp_path,
                        stdout_path=tmp_path / "resumed.log")
    run_dir = tmp_path / "runs" / "k"
    wait_until(lambda: count_records(run_dir, "start") == 2 or resumed.poll() is not None, timeout=120,
               what="the resumed run's start record")
    resumed.send_signal(signal.SIGTERM)
    done = finish_cli(resumed, timeout=120)
    assert done.returncode == 143, done.stderr
    start = [r for r in records(run_dir) if r["event"] == "start"][-1]
    assert start["resumed_from"] is not None and start["resumed_from"] > 0
