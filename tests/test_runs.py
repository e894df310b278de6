"""`nntui runs`, `latest` and the run-dir readers, over handwritten run directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nntui.cli import app
from nntui.cli.runs import format_duration
from nntui.runs import RunNotFound, last_end, list_runs, read_records, resolve_run, run_info, tail_records

cli = CliRunner()
T0 = 1_700_000_000.0


def start(t: float, preset: str = "digits-mlp", resumed_from: int | None = None, monitor: str = "val_loss") -> dict:
    return {"event": "start", "preset": preset, "device": "cpu", "params": 10, "train_size": 8, "val_size": 2,
            "test_size": 2, "resumed_from": resumed_from, "time": t,
            "early_stop": {"monitor": monitor, "best": None, "best_epoch": None, "wait": 0, "patience": 3}}


def epoch(t: float, n: int, best: float, monitor: str = "val_loss") -> dict:
    return {"event": "epoch", "epoch": n, "step": 10 * n, "train_loss": 1.0 / n, "val_loss": best, "lr": 1e-3,
            "time": t, "early_stop": {"monitor": monitor, "best": best, "best_epoch": n, "wait": 0, "patience": 3}}


def end(t: float, status: str, n: int, best: float | None, wall_s: float) -> dict:
    return {"event": "end", "status": status, "epoch": n, "step": 10 * n, "best_epoch": n, "best": best,
            "test_loss": None, "wall_s": wall_s, "error": None, "time": t}


def write_run(root: Path, name: str, recs: list[dict], pid: int | None = None, partial: str = "") -> Path:
    run_dir = root / name
    (run_dir / "control").mkdir(parents=True)
    text = "".join(json.dumps(record) + "\n" for record in recs)
    (run_dir / "metrics.jsonl").write_text(text + partial)
    if pid is not None:
        (run_dir / "control" / "pid").write_text(f"{pid}\n")
    return run_dir


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def runs_root(tmp_path):
    """Five runs whose names do not sort in the order they started."""
    root = tmp_path / "runs"
    write_run(root, "b-completed", [start(T0 + 100), epoch(T0 + 110, 1, 0.5), epoch(T0 + 120, 2, 0.25),
                                    end(T0 + 121, "completed", 2, 0.25, 75.0)])
    write_run(root, "z-early", [start(T0 + 200, "diabetes-mlp", monitor="val_r2"),
                                epoch(T0 + 201, 1, 0.4, "val_r2"), end(T0 + 202, "early_stopped", 1, 0.4, 3725.0)])
    write_run(root, "a-stopped-then-resumed", [
        start(T0 + 300), epoch(T0 + 301, 1, 0.9), end(T0 + 302, "stopped", 1, 0.9, 2.0),
        start(T0 + 400, resumed_from=10), epoch(T0 + 401, 2, 0.7), end(T0 + 402, "completed", 2, 0.7, 4.0)])
    write_run(root, "m-crashed", [start(T0 + 500), epoch(T0 + 530, 1, 0.8)], pid=dead_pid(),
              partial='{"event":"step","st')
    write_run(root, "c-running", [start(T0 + 600), epoch(T0 + 610, 1, 0.6)], pid=os.getpid())
    (root / "not-a-run").mkdir()
    return root


def rows(output: str) -> list[list[str]]:
    lines = [line.split() for line in output.strip().splitlines()]
    assert lines[0] == ["name", "preset", "status", "epochs", "best", "wall", "time"], output
    return lines[1:]


def test_runs_lists_newest_first_with_every_column(runs_root):
    result = cli.invoke(app, ["runs", "--runs-dir", str(runs_root)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert rows(result.output) == [
        ["c-running", "digits-mlp", "running", "1", "0.6", "val_loss", "0m10s"],
        ["m-crashed", "digits-mlp", "crashed", "1", "0.8", "val_loss", "0m30s"],
        ["a-stopped-then-resumed", "digits-mlp", "completed", "2", "0.7", "val_loss", "0m04s"],
        ["z-early", "diabetes-mlp", "early_stopped", "1", "0.4", "val_r2", "1h02m"],
        ["b-completed", "digits-mlp", "completed", "2", "0.25", "val_loss", "1m15s"],
    ]


def test_runs_on_an_empty_or_missing_dir_says_so(tmp_path):
    for root in (tmp_path, tmp_path / "nothing-here"):
        result = cli.invoke(app, ["runs", "--runs-dir", str(root)])
        assert result.exit_code == 0 and result.output.strip() == f"no runs under {root}"


def test_runs_dir_from_the_environment(runs_root, monkeypatch):
    monkeypatch.setenv("NNTUI_RUNS_DIR", str(runs_root))
    assert [info.name for info in list_runs()][0] == "c-running"
    assert resolve_run("latest") == runs_root / "c-running"


def test_latest_and_names_resolve(runs_root, tmp_path, monkeypatch):
    assert resolve_run("latest", runs_root) == runs_root / "c-running"
    assert resolve_run("z-early", runs_root) == runs_root / "z-early"
    assert resolve_run(str(runs_root / "b-completed"), tmp_path / "elsewhere") == runs_root / "b-completed"
    with pytest.raises(RunNotFound, match="no run 'not-a-run'"):
        resolve_run("not-a-run", runs_root)
    with pytest.raises(RunNotFound, match="no runs under"):
        resolve_run("latest", tmp_path / "empty")
    monkeypatch.chdir(tmp_path)
    result = cli.invoke(app, ["ctl", "latest", "pause", "--runs-dir", str(runs_root / "nothing")])
    assert result.exit_code == 2 and result.output.strip() == f"nntui: no runs under {runs_root / 'nothing'}"


def test_readers_skip_a_partial_last_line(runs_root):
    run_dir = runs_root / "m-crashed"
    assert [r["event"] for r in read_records(run_dir)] == ["start", "epoch"]
    complete_lines = (run_dir / "metrics.jsonl").read_bytes().split(b"\n")[:-1]
    size = len(complete_lines[-1]) + 40  # the epoch record, the partial line, and a cut piece of the start record
    assert [r["event"] for r in tail_records(run_dir, max_bytes=size)] == ["epoch"]
    assert last_end(run_dir) is None and read_records(runs_root / "absent") == []
    assert last_end(runs_root / "a-stopped-then-resumed")["status"] == "completed"


def test_run_info_of_a_resumed_run_counts_each_epoch_once(runs_root):
    info = run_info(runs_root / "a-stopped-then-resumed")
    assert (info.status, info.epochs, info.best, info.wall_s) == ("completed", 2, 0.7, 4.0)


def test_monitor_falls_back_to_the_summary(tmp_path):
    run_dir = write_run(tmp_path, "r", [{**start(T0), "early_stop": None},
                                        {**epoch(T0 + 1, 1, 0.9), "early_stop": None},
                                        end(T0 + 2, "completed", 1, 0.9, 1.0)])
    (run_dir / "summary.json").write_text(json.dumps({"monitor": "val_acc"}))
    assert run_info(run_dir).monitor == "val_acc"


@pytest.mark.parametrize("monitor,mode,best", [("val_loss", "min", 0.5), ("val_acc", "max", 0.9),
                                               ("val_acc", None, 0.9)])
def test_best_of_a_running_run_without_early_stopping(tmp_path, monitor, mode, best):
    """Early stopping off: no record carries a best; it comes from the epochs' monitored metric."""
    records = [{**start(T0), "early_stop": None}]
    for n, (loss, acc) in enumerate([(0.9, 0.6), (0.5, 0.8), (0.7, 0.9)], start=1):
        records.append({**epoch(T0 + n, n, loss), "val_acc": acc, "early_stop": None})
    run_dir = write_run(tmp_path, "r", records, pid=os.getpid())
    table = f'monitor = "{monitor}"\n' + (f'mode = "{mode}"\n' if mode else "")
    (run_dir / "config.toml").write_text(f'name = "digits-mlp"\n[early_stopping]\nenabled = false\n{table}')
    info = run_info(run_dir)
    assert (info.status, info.monitor, info.best) == ("running", monitor, best)


@pytest.mark.parametrize("seconds,text", [(None, "-"), (0, "0m00s"), (59.9, "0m59s"), (75, "1m15s"),
                                          (3725, "1h02m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
