"""End to end: signals, resume and `nntui ctl` against real headless runs in subprocesses."""

from __future__ import annotations

import json
import os
import pty
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import count_records, finish_cli, records, run_cli, start_cli, superseded_dropped, wait_until

from nntui.config import tomllib
from nntui.runs import read_records

pytestmark = pytest.mark.slow

LONG = ["--epochs", "200", "--set", "train.log_every=2", "--set", "train.log_interval_s=0",
        "--set", "early_stopping.enabled=false", "--set", "data.batch_size=8"]  # minutes, not seconds
PAIR = ["--epochs", "3", "--seed", "3", "--set", "train.log_every=1", "--set", "train.log_interval_s=0"]
EXIT_BY_SIGNAL = {"SIGTERM": 143, "SIGINT": 130, "SIGHUP": 129}


def launch(root: Path, name: str, *args: str, preset: str = "digits-mlp", **kwargs) -> subprocess.Popen:
    return start_cli("run", preset, "--headless", *args, "--runs-dir", str(root / "runs"), "--name", name,
                     cwd=root, stdout_path=root / f"{name}.log", **kwargs)


def drain(fd: int) -> None:
    """Read whatever a child has written to a pseudo-terminal, without blocking."""
    while select.select([fd], [], [], 0)[0]:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def torch_load(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=True)


def without_times(recs: list[dict], event: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "epoch_s", "wall_s", "pid")}
            for r in recs if r["event"] == event]


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def signal_at_step(proc: subprocess.Popen, run_dir: Path, steps: int, signum: int) -> None:
    """Freeze the process as soon as `steps` step records exist, then signal it: the signal lands
    near that step even on a run far faster than our polling."""
    wait_until(lambda: count_records(run_dir, "step") >= steps or proc.poll() is not None, interval=0.005,
               what=f"{steps} step records in {run_dir}")
    proc.send_signal(signal.SIGSTOP)
    proc.send_signal(signum)
    proc.send_signal(signal.SIGCONT)


# ------------------------------------------------------------------------------------- signals


@pytest.fixture(scope="module")
def signalled(tmp_path_factory):
    """Four long runs: SIGTERM, SIGINT and SIGHUP after a few steps; SIGKILL at a random point.

    The SIGHUP run is an SSH session that went away: its stdout is a terminal (a Rich display)
    that is closed and written to before the hangup arrives.
    """
    root = tmp_path_factory.mktemp("signals")
    master, slave = pty.openpty()
    procs = {name: launch(root, name, *LONG) for name in ("SIGTERM", "SIGINT", "SIGKILL")}
    procs["SIGHUP"] = launch(root, "SIGHUP", *LONG, stdout=slave, env={"TERM": "xterm", "NO_COLOR": ""})
    os.close(slave)
    kill_after = random.randint(3, 200)
    for name, proc in procs.items():
        run_dir, steps = root / "runs" / name, kill_after if name == "SIGKILL" else 3
        wait_until(lambda: drain(master) or count_records(run_dir, "step") >= steps or proc.poll() is not None,  # noqa: B023 (called at once)
                   what=f"steps of {name}")
        if name == "SIGHUP":
            epochs = count_records(run_dir, "epoch")
            os.close(master)
            wait_until(lambda: count_records(run_dir, "epoch") > epochs + 1 or proc.poll() is not None,  # noqa: B023 (called at once)
                       what="epochs after the hangup")
        proc.send_signal(getattr(signal, name))
    results = {name: finish_cli(proc, timeout=120) for name, proc in procs.items()}
    return root / "runs", results, kill_after


@pytest.mark.parametrize("name", list(EXIT_BY_SIGNAL))
def test_signal_stops_cleanly_with_checkpoint_and_records(signalled, name):
    runs, results, _ = signalled
    result, run_dir = results[name], runs / name
    assert result.returncode == EXIT_BY_SIGNAL[name], result.stderr
    recs = records(run_dir)
    end = recs[-1]
    assert end["event"] == "end" and end["status"] == "stopped", end
    controls = [r for r in recs if r["event"] == "control"]
    assert [(c["action"], c["source"], c["value"]) for c in controls] == [("stop", "signal", name)]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"
    assert torch_load(run_dir / "checkpoints" / "last.pt")["progress"]["step"] == end["step"] == controls[0]["step"]
    if name != "SIGHUP":  # its terminal is gone
        assert result.stdout.splitlines()[-1].startswith("end stopped")


def test_sigkill_leaves_a_readable_run_dir(signalled):
    runs, results, kill_after = signalled
    run_dir = runs / "SIGKILL"
    assert results["SIGKILL"].returncode == -signal.SIGKILL
    recs = read_records(run_dir)
    assert recs[0]["event"] == "start" and not any(r["event"] == "end" for r in recs)
    assert sum(r["event"] == "step" for r in recs) >= kill_after
    with open(run_dir / "metrics.jsonl", "a") as stream:
        stream.write('{"event":"step","step":99999,"ep')  # a crash in the middle of a line
    assert read_records(run_dir) == recs
    checkpoints = run_dir / "checkpoints"
    assert torch_load(checkpoints / "last.pt")["progress"]["step"] >= 0
    assert all(path.name in ("last.pt", "best.pt") or (path.name.startswith(".") and path.suffix == ".tmp")
               for path in checkpoints.iterdir()), list(checkpoints.iterdir())


@pytest.fixture(scope="module")
def resumed_signalled(signalled):
    """The SIGKILL run resumed (after a crash mid-line and mid-checkpoint), and the SIGTERM run resumed
    with a new learning rate for the rest of its epoch and one more; both at once."""
    runs, _, _ = signalled
    killed, terminated = runs / "SIGKILL", runs / "SIGTERM"
    metrics = killed / "metrics.jsonl"
    if metrics.read_bytes().endswith(b"\n"):
        with open(metrics, "a") as stream:
            stream.write('{"event":"step","step":99999,"ep')
    (killed / "checkpoints" / ".last.pt.deadbeef.tmp").write_bytes(b"half a checkpoint")
    saved = {name: torch_load(runs / name / "checkpoints" / "last.pt")["progress"]["step"]
             for name in ("SIGKILL", "SIGTERM")}
    stopped_in = records(terminated)[-1]["epoch"]
    procs = {
        "SIGKILL": start_cli("run", "--resume", str(killed), "--headless", "--epochs", "1",
                             cwd=runs.parent, stdout_path=runs.parent / "kill-resume.log"),
        "SIGTERM": start_cli("run", "--resume", "SIGTERM", "--runs-dir", str(runs), "--headless", "--lr", "1e-4",
                             "--epochs", str(stopped_in + 1), cwd=runs.parent,
                             stdout_path=runs.parent / "term-resume.log"),
    }
    return runs, {name: finish_cli(proc) for name, proc in procs.items()}, saved


def session(run_dir: Path) -> list[dict]:
    """The records of the run's last session (from its last start record)."""
    recs = records(run_dir)  # json.loads of every line: no partial line is left in the middle
    return recs[max(i for i, r in enumerate(recs) if r["event"] == "start"):]


def test_resume_after_sigkill_cleans_up_and_trains(resumed_signalled):
    runs, results, saved = resumed_signalled
    assert results["SIGKILL"].returncode == 0, results["SIGKILL"].stderr
    assert not (runs / "SIGKILL" / "checkpoints" / ".last.pt.deadbeef.tmp").exists()
    restarted = session(runs / "SIGKILL")
    assert restarted[0]["resumed_from"] == saved["SIGKILL"]
    assert (restarted[-1]["event"], restarted[-1]["status"]) == ("end", "completed")


def test_resume_with_a_new_learning_rate(resumed_signalled):
    runs, results, saved = resumed_signalled
    assert results["SIGTERM"].returncode == 0, results["SIGTERM"].stderr
    restarted = session(runs / "SIGTERM")
    assert restarted[0]["resumed_from"] == saved["SIGTERM"]
    control = next(r for r in restarted if r["event"] == "control")
    assert (control["action"], control["value"], control["source"]) == ("lr", 1e-4, "resume")
    assert {r["lr"] for r in restarted if r["event"] == "step"} == {1e-4}
    assert (restarted[-1]["event"], restarted[-1]["status"]) == ("end", "completed")


# -------------------------------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A: trained without a break. B: the same, SIGTERM at a random step, then resumed."""
    root = tmp_path_factory.mktemp("resume")
    proc_a, proc_b = launch(root, "A", *PAIR), launch(root, "B", *PAIR)
    stop_after = random.randint(2, 100)
    signal_at_step(proc_b, root / "runs" / "B", stop_after, signal.SIGTERM)
    first_a, first_b = finish_cli(proc_a), finish_cli(proc_b)
    assert first_a.returncode == 0, first_a.stderr
    assert first_b.returncode == 143, f"B was not stopped (stop_after={stop_after}): {first_b.stderr}"
    resumed = run_cli("run", "--resume", "B", "--headless", "--runs-dir", str(root / "runs"), cwd=root)
    return root / "runs", resumed, stop_after


def test_resumed_run_equals_the_uninterrupted_one(pair):
    runs, resumed, stop_after = pair
    assert resumed.returncode == 0, resumed.stderr
    recs_a, recs_b = records(runs / "A"), records(runs / "B")
    starts = [r for r in recs_b if r["event"] == "start"]
    stopped = next(r for r in recs_b if r["event"] == "end")
    assert len(starts) == 2 and starts[1]["resumed_from"] == stopped["step"] >= stop_after, (starts, stopped)
    assert without_times(recs_b, "epoch") == without_times(recs_a, "epoch"), f"stop_after={stop_after}"
    ends_a, ends_b = without_times(recs_a, "end"), without_times(recs_b, "end")
    assert ends_b[-1] == ends_a[-1]
    weights_a = torch_load(runs / "A" / "checkpoints" / "last.pt")["model"]
    weights_b = torch_load(runs / "B" / "checkpoints" / "last.pt")["model"]
    import torch

    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[key], weights_b[key]) for key in weights_a)


def test_resume_extends_a_completed_run_and_refuses_nothing_to_do(pair):
    runs, resumed, _ = pair
    assert resumed.returncode == 0
    done = run_cli("run", "--resume", "B", "--headless", "--runs-dir", str(runs), cwd=runs.parent)
    assert done.returncode == 2 and "has completed its 3 epochs" in one_line(done)
    extended = run_cli("run", "--resume", "B", "--headless", "--epochs", "5", "--runs-dir", str(runs),
                       cwd=runs.parent)
    assert extended.returncode == 0, extended.stderr
    recs = records(runs / "B")
    assert [r["epoch"] for r in recs if r["event"] == "epoch"] == [1, 2, 3, 4, 5]
    assert recs[-1]["event"] == "end" and (recs[-1]["status"], recs[-1]["epoch"]) == ("completed", 5)
    assert tomllib.loads((runs / "B" / "config.toml").read_text())["train"]["epochs"] == 5


def test_resume_refuses_changed_settings(pair):
    runs, _, _ = pair
    result = run_cli("run", "--resume", "A", "--headless", "--seed", "4", "--runs-dir", str(runs), cwd=runs.parent)
    assert result.returncode == 2 and "only --epochs, --lr and --device may change" in one_line(result)


# ----------------------------------------------------------------------------------------- ctl


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctl")
    proc = launch(root, "live", "--epochs", "2000", "--set", "train.log_every=2", "--set", "train.log_interval_s=0", "--set", "schedule.name=constant",
                  "--set", "early_stopping.enabled=false")
    run_dir = root / "runs" / "live"
    wait_until(lambda: count_records(run_dir, "step") >= 3 and (run_dir / "control" / "pid").is_file()
               or proc.poll() is not None, what="the live run's first steps")
    assert proc.poll() is None, (root / "live.log.err").read_text()
    yield proc, run_dir
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def ctl(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nntui", "ctl", *args], capture_output=True, text=True,
                          cwd=run_dir.parent, timeout=60)


@pytest.mark.parametrize("args,expected", [
    (["lr", "abc"], "learning rate must be a number"),
    (["lr", "-1"], "learning rate must be finite, > 0"),
    (["lr", "0"], "learning rate must be finite, > 0"),
    (["jump"], "unknown action 'jump'"),
    (["lr"], "lr needs a VALUE"),
    (["pause", "now"], "pause takes no VALUE"),
])
def test_ctl_bad_values_are_refused_before_sending(live, args, expected):
    _, run_dir = live
    controls = count_records(run_dir, "control")
    result = ctl(run_dir, str(run_dir), *args)
    assert result.returncode == 2 and expected in one_line(result) and result.stdout == ""
    assert not list((run_dir / "control" / "inbox").iterdir())
    assert count_records(run_dir, "control") == controls


def test_ctl_pause_lr_resume_checkpoint(live):
    _, run_dir = live
    paused = ctl(run_dir, str(run_dir), "pause")
    assert paused.returncode == 0 and "paused at step" in paused.stdout, paused.stderr
    steps = count_records(run_dir, "step")
    time.sleep(1.0)
    assert count_records(run_dir, "step") == steps
    changed = ctl(run_dir, "latest", "lr", "3e-4", "--runs-dir", str(run_dir.parent))
    assert changed.returncode == 0 and "-> 0.0003" in changed.stdout, changed.stderr
    assert ctl(run_dir, str(run_dir), "resume").returncode == 0
    wait_until(lambda: count_records(run_dir, "step") >= steps + 3, what="steps after resume")
    recs = records(run_dir)
    lr_at = max(i for i, r in enumerate(recs) if r["event"] == "control" and r["action"] == "lr")
    assert (recs[lr_at]["value"], recs[lr_at]["source"]) == (3e-4, "ctl")
    assert {r["lr"] for r in recs[lr_at:] if r["event"] == "step"} == {3e-4}
    saved = ctl(run_dir, str(run_dir), "checkpoint")
    assert saved.returncode == 0 and "checkpoint written at step" in saved.stdout, saved.stderr
    step = int(saved.stdout.split("checkpoint written at step ")[1].split(":")[0])
    assert any(r["event"] == "checkpoint" and r["kind"] == "last" and r["step"] == step for r in records(run_dir))
    assert torch_load(run_dir / "checkpoints" / "last.pt")["progress"]["step"] >= step


def test_ctl_refuses_a_control_dir_others_can_read(live):
    _, run_dir = live
    controls = count_records(run_dir, "control")
    os.chmod(run_dir / "control", 0o755)
    try:
        result = ctl(run_dir, str(run_dir), "pause")
    finally:
        os.chmod(run_dir / "control", 0o700)
    assert result.returncode == 1 and "group/other accessible (mode 0755); refusing" in one_line(result)
    assert not list((run_dir / "control" / "inbox").iterdir())
    assert count_records(run_dir, "control") == controls


def test_resume_of_a_live_run_is_refused(live):
    _, run_dir = live
    result = run_cli("run", "--resume", str(run_dir), "--headless", cwd=run_dir.parent)
    assert result.returncode == 2 and "is still running" in one_line(result)


def test_ctl_stop_ends_the_run_then_it_is_not_running(live):
    proc, run_dir = live
    stopped = ctl(run_dir, str(run_dir), "stop")
    assert stopped.returncode == 0 and "stopping at step" in stopped.stdout, stopped.stderr
    assert finish_cli(proc, timeout=60).returncode == 0
    end = records(run_dir)[-1]
    assert (end["event"], end["status"]) == ("end", "stopped")
    late = ctl(run_dir, str(run_dir), "pause")
    assert late.returncode == 1 and "is not running (status: stopped)" in one_line(late)


@pytest.fixture(scope="module")
def killed_pair(tmp_path_factory):
    """A: trained without a break. K: the same with a checkpoint every epoch, SIGKILLed at a random
    step (no handler runs, nothing is flushed on purpose), then resumed from its last.pt."""
    root = tmp_path_factory.mktemp("killed")
    every_epoch = ("--set", "train.checkpoint_every_s=0")
    proc_a, proc_k = launch(root, "A", *PAIR), launch(root, "K", *PAIR, *every_epoch)
    kill_after = random.randint(40, 100)  # after the first epoch (36 steps) has been checkpointed
    signal_at_step(proc_k, root / "runs" / "K", kill_after, signal.SIGKILL)
    assert finish_cli(proc_a).returncode == 0
    assert finish_cli(proc_k).returncode == -signal.SIGKILL
    resumed = run_cli("run", "--resume", "K", "--headless", "--runs-dir", str(root / "runs"), cwd=root)
    return root / "runs", resumed, kill_after


def test_run_killed_with_sigkill_then_resumed_equals_the_uninterrupted_one(killed_pair):
    import torch

    runs, resumed, kill_after = killed_pair
    assert resumed.returncode == 0, resumed.stderr
    recs_k = records(runs / "K")
    starts = [r for r in recs_k if r["event"] == "start"]
    assert len(starts) == 2 and 36 <= starts[1]["resumed_from"] <= kill_after, (starts, kill_after)
    recs_a = records(runs / "A")
    assert without_times(superseded_dropped(recs_k), "epoch") == without_times(recs_a, "epoch"), kill_after
    assert without_times(recs_k, "end")[-1] == without_times(recs_a, "end")[-1]
    weights_a = torch_load(runs / "A" / "checkpoints" / "last.pt")["model"]
    weights_k = torch_load(runs / "K" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(weights_a[key], weights_k[key]) for key in weights_a)


def test_headless_divergence_ends_diverged_with_exit_1(tmp_path):
    result = run_cli("run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), "--epochs", "20",
                     "--optimizer", "sgd", "--lr", "10", "--set", "model.init=normal", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    end = records(run_dir)[-1]
    assert end["event"] == "end" and end["status"] == "diverged" and "last good checkpoint" in end["error"]
    assert "end diverged" in result.stdout.splitlines()[-1]
    assert torch_load(run_dir / "checkpoints" / "last.pt")["progress"]["step"] < end["step"]
