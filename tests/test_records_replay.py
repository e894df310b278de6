"""Pilot tests: the app replays records with non-finite, null and odd values and stays alive."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import pilot_wait_until as wait_until
from conftest import run_cli

from nntui.engine.events import EarlyStopStatus, EpochEnded, GradNorms, RunEnded, RunStarted, StepLogged, to_record
from nntui.records import read_records, record_line
from nntui.tui.app import create_app
from nntui.tui.charts.chart import LineChart
from nntui.tui.monitor import MonitorScreen


@pytest.fixture(scope="module")
def diverged_run(tmp_path_factory) -> Path:
    """A real diverging run: diabetes-mlp with SGD at lr 1 (its losses and norms overflow)."""
    cwd = tmp_path_factory.mktemp("diverging")
    proc = run_cli("run", "diabetes-mlp", "--lr", "1", "--optimizer", "sgd", "--headless", "--name", "boom",
                   "--runs-dir", str(cwd / "runs"), cwd=cwd)
    assert proc.returncode == 1, proc.stderr
    return cwd / "runs" / "boom"


def as_older_file(run_dir: Path, target: Path) -> Path:
    """The run as older nntui versions wrote it: null where a float was not finite."""
    shutil.copytree(run_dir, target)
    text = (run_dir / "metrics.jsonl").read_text()
    for name in ('"NaN"', '"Infinity"', '"-Infinity"'):
        text = text.replace(name, "null")
    (target / "metrics.jsonl").write_text(text)
    return target


async def replay(run_dir: Path) -> tuple[MonitorScreen, list[str]]:
    """Show `run_dir` until its end record is applied and drawn; the app must still be running.
    The screen and the titles of its charts (each holds the latest values), by chart."""
    app = create_app(mode="show", runs_dir=run_dir.parent, run_dir=run_dir)
    async with app.run_test(size=(200, 50)) as pilot:  # every metric has its chart
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.state.ended is not None, what="the end record")
        await wait_until(pilot, lambda: screen.query_one("#results").display, what="the results drawn")
        await pilot.pause(1.5)  # the charts take new data at most twice a second (a loaded machine: later)
        assert app.is_running and app.return_code is None and app.screen is screen
        return screen, {chart.chart_id: str(chart.border_title) for chart in screen.query(LineChart).results(LineChart)}


@pytest.mark.parametrize("older", [False, True], ids=["as-written", "older-nulls"])
async def test_the_records_of_a_diverging_run_replay_in_the_app(diverged_run, tmp_path, older):
    run_dir = as_older_file(diverged_run, tmp_path / "boom") if older else diverged_run
    text = (run_dir / "metrics.jsonl").read_text()
    assert ("null" if older else '"Infinity"') in text and "NaN," not in text and "Infinity," not in text
    steps = [record for record in read_records(run_dir) if record["event"] == "step"]
    screen, values = await replay(run_dir)
    state = screen.state
    assert state.status == "diverged" and "non-finite loss" in state.alert
    assert state.step == steps[-1]["step"] and state.series["grad_norm"].total == len(steps)
    assert not math.isfinite(state.series["grad_norm"].latest)
    assert values["norm"].startswith(("global grad norm · inf", "global grad norm · nan"))  # shown, not a crash


def test_summary_of_a_diverging_run_is_standard_json(diverged_run):
    summary = json.loads((diverged_run / "summary.json").read_text(),
                         parse_constant=lambda name: pytest.fail(f"bare {name} in summary.json"))
    assert summary["status"] == "diverged"


async def test_records_with_odd_values_replay_in_the_app(tmp_path):
    nan, inf = math.nan, math.inf
    stop = EarlyStopStatus("val_loss", nan, None, 2, 3)
    events = [RunStarted("p", "cpu", 10, 5, 2, 2, None, epochs=-1, steps_per_epoch=0, lr=nan, layers=("w", "b"),
                         early_stop=stop, time=100.0),
              StepLogged(1, 1, inf, nan, -inf, nan, time=nan), GradNorms(1, (("w", inf), ("b", nan)), time=101.0),
              EpochEnded(1, 1, nan, inf, -inf, val_acc=nan, train_acc=inf, early_stop=stop, time=102.0),
              StepLogged(2, 1, 1e308, 1e-300, 0.0, -5.0, time=103.0),
              RunEnded("weird-status", 1, 2, best_epoch=1, best=nan, test_loss=inf, test_acc=nan, wall_s=nan)]
    lines = [record_line(to_record(event)) for event in events]
    odd = ['{"event":"step","step":"3","epoch":[1],"loss":{},"lr":true}\n', "garbage\n", "[" * 5000 + "\n",
           '{"event":"grad_norms","step":2,"norms":[1,2]}\n', '{"event":"epoch","epoch":2,"early_stop":7}\n',
           '{"event":"step","step":3,"epoch":1,"loss":null,"lr":null,"grad_norm":null,"samples_per_s":null}\n',
           '{"event":"control","step":3,"action":"lr","value":"Infinity","source":"ctl"}\n', '{"event":"st']
    run_dir = tmp_path / "odd"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(lines[:-1] + odd[:-1] + lines[-1:] + odd[-1:]))
    screen, values = await replay(run_dir)
    assert set(values) == {"loss", "accuracy", "lr", "rate", "norm"}
    assert screen.state.status == "weird-status" and screen.state.step == 3
