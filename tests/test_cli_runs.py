"""`nntui runs --plain` and `--json` over handwritten run directories (CliRunner, no training)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nntui.cli import app
from nntui.records import as_float, record_line
from nntui.runs import list_runs

cli = CliRunner()
T0 = 1_700_000_000.0
JSON_KEYS = ["name", "path", "preset", "status", "epochs", "best", "monitor", "wall_s"]


def write_run(root: Path, name: str, records: list[dict], live: bool = False) -> None:
    run_dir = root / name
    (run_dir / "control").mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(record_line(record) for record in records))
    if live:
        (run_dir / "control" / "pid").write_text(f"{os.getpid()}\n")


def start(t: float, preset: str) -> dict:
    return {"event": "start", "time": t, "preset": preset, "device": "cpu", "params": 10, "train_size": 8,
            "val_size": 2, "test_size": 2, "resumed_from": None,
            "early_stop": {"monitor": "val_loss", "best": None, "best_epoch": None, "wait": 0, "patience": 3}}


def epoch(t: float, n: int, val_loss: float) -> dict:
    return {"event": "epoch", "time": t, "epoch": n, "step": 10 * n, "train_loss": 1.0, "val_loss": val_loss,
            "lr": 1e-3, "early_stop": {"monitor": "val_loss", "best": val_loss, "best_epoch": n, "wait": 0,
                                       "patience": 3}}


def end(t: float, status: str, n: int, best: float | None, wall_s: float) -> dict:
    return {"event": "end", "time": t, "status": status, "epoch": n, "step": 10 * n, "best_epoch": n,
            "best": best, "test_loss": None, "wall_s": wall_s, "error": None}


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """A completed run, a diverged one whose best is infinite, one whose best is NaN, one running."""
    root = tmp_path / "runs"
    write_run(root, "done", [start(T0, "digits-mlp"), epoch(T0 + 5, 1, 0.5), epoch(T0 + 9, 2, 0.25),
                             end(T0 + 10, "completed", 2, 0.25, 10.5)])
    write_run(root, "blown", [start(T0 + 100, "diabetes-mlp"), epoch(T0 + 101, 1, math.inf),
                              end(T0 + 102, "diverged", 1, math.inf, 2.0)])
    write_run(root, "nan", [start(T0 + 200, "digits-mlp"), epoch(T0 + 201, 1, math.nan),
                            end(T0 + 202, "failed", 1, math.nan, 1.0)])
    write_run(root, "going", [start(T0 + 300, "digits-mlp"), epoch(T0 + 310, 1, 0.75)], live=True)
    return root


def strict_lines(output: str) -> list[dict]:
    """Each line parsed as standard JSON (a bare NaN or Infinity would be refused)."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    return [json.loads(line, parse_constant=refuse) for line in output.splitlines()]


def test_runs_json_is_one_standard_object_per_run_and_line(runs_root):
    result = cli.invoke(app, ["runs", "--json", "--runs-dir", str(runs_root)])
    assert result.exit_code == 0, result.output
    objects = strict_lines(result.stdout)
    infos = list_runs(runs_root)
    assert [list(obj) for obj in objects] == [JSON_KEYS] * len(infos) == [JSON_KEYS] * 4
    for obj, info in zip(objects, infos):
        assert obj["name"] == info.name and Path(obj["path"]) == info.path and obj["status"] == info.status
        assert (obj["preset"], obj["epochs"], obj["monitor"], obj["wall_s"]) == (
            info.preset, info.epochs, info.monitor, info.wall_s)
    by_name = {obj["name"]: obj for obj in objects}
    assert [obj["name"] for obj in objects] == ["going", "nan", "blown", "done"]  # newest first
    assert by_name["done"]["best"] == 0.25 and by_name["going"]["status"] == "running"
    assert by_name["blown"]["best"] == "Infinity" and by_name["nan"]["best"] == "NaN"  # as in metrics.jsonl
    assert as_float(by_name["blown"]["best"]) == math.inf and math.isnan(as_float(by_name["nan"]["best"]))


def test_runs_plain_prints_the_table_that_runs_prints(runs_root):
    plain = cli.invoke(app, ["runs", "--plain", "--runs-dir", str(runs_root)])
    default = cli.invoke(app, ["runs", "--runs-dir", str(runs_root)])
    assert plain.exit_code == 0 and default.exit_code == 0, plain.output + default.output
    assert plain.stdout == default.stdout
    lines = plain.stdout.strip().splitlines()
    assert lines[0].split() == ["name", "preset", "status", "epochs", "best", "wall", "time"]
    assert [line.split()[0] for line in lines[1:]] == ["going", "nan", "blown", "done"]
    assert "{" not in plain.stdout


def test_runs_json_of_no_runs_prints_nothing_on_stdout(tmp_path):
    result = cli.invoke(app, ["runs", "--json", "--runs-dir", str(tmp_path / "none")])
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr.strip() == f"no runs under {tmp_path / 'none'}"


def test_runs_plain_and_json_together_is_one_line_of_usage_error(runs_root):
    result = cli.invoke(app, ["runs", "--plain", "--json", "--runs-dir", str(runs_root)])
    assert result.exit_code == 2
    assert result.stdout == "" and result.stderr == "nntui: --plain and --json: pick one\n"


def test_runs_help_says_a_terminal_gets_the_runs_screen():
    result = cli.invoke(app, ["runs", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--plain" in result.stdout and "--json" in result.stdout
    assert "on a terminal, the runs screen" in " ".join(result.stdout.split())
