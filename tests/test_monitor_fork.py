"""`f` in the monitor: fork the run at the current step. A live run is asked for a checkpoint
first; the setup form opens in fork mode with the run's settings; Start launches the fork as a
child process with `--fork RUN@last` (from a private copy of last.pt while the parent goes on)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import pilot_wait_until as wait_until
from conftest import records

from nntui.config import load_config
from nntui.runs import config_of_run, read_records
from nntui.tui.app import create_app
from nntui.tui.launcher import ChildRun
from nntui.tui.monitor import MonitorScreen
from nntui.tui.monitor_keys import Situation, why_not
from nntui.tui.setup import SetupScreen

FIXTURES = Path(__file__).parent / "fixtures"
FAKE_TRAINER = FIXTURES / "fake_trainer.py"
CHECKPOINT_BYTES = b"the weights at the fork step"


def notices(app) -> list[str]:
    return [notification.message for notification in app._notifications]


def footer_keys(app) -> set[str]:
    return {key for key, active in app.active_bindings.items() if active.binding.show and active.enabled}


@pytest.fixture
def live_run(tmp_path):
    """The fake trainer in a thread, in a run directory with a config.toml and a last.pt."""
    spec = importlib.util.spec_from_file_location("fake_trainer", FAKE_TRAINER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run_dir = tmp_path / "runs" / "live"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.toml").write_text(load_config("digits-mlp", ["optim.lr=0.003"]).to_toml())
    (run_dir / "checkpoints" / "last.pt").write_bytes(CHECKPOINT_BYTES)
    trainer, thread = module.start_thread(run_dir, interval=0.05)
    yield trainer
    trainer.halt.set()
    thread.join(5)


@pytest.fixture
def launched(monkeypatch):
    """ChildRun starts the fake trainer (which ignores --fork) and is kept for a look at its argv."""
    children: list[ChildRun] = []
    real_command = ChildRun.command

    def command(self: ChildRun) -> list[str]:
        children.append(self)
        return [sys.executable, str(FAKE_TRAINER), *real_command(self)[3:]]

    monkeypatch.setattr(ChildRun, "command", command)
    yield children
    for child in children:  # the fake trainer runs until told to go
        child.signal()
        child.wait(10)


@pytest.fixture
def finished(tmp_path) -> Path:
    """A finished run (recorded) with its last.pt."""
    run_dir = tmp_path / "runs" / "digits-mlp-complete"
    shutil.copytree(FIXTURES / "runs" / "digits-mlp-complete", run_dir)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(CHECKPOINT_BYTES)
    return run_dir


def checkpoint_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in read_records(run_dir) if r.get("event") == "checkpoint" and r.get("kind") == "last"]


async def test_f_on_a_live_run_checkpoints_then_opens_the_fork_form_and_start_forks(live_run, launched, tmp_path):
    run_dir = live_run.run_dir
    app = create_app(mode="attach", runs_dir=run_dir.parent, run_dir=run_dir)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        monitor = app.screen
        await wait_until(pilot, lambda: monitor.state.step > 0, what="steps")
        assert "f" in footer_keys(app)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="the fork form")
        assert live_run.commands == [("checkpoint", None)]
        step = checkpoint_steps(run_dir)[-1]
        form = app.screen
        assert form.fork_title == f"fork live at step {step:,}"
        assert form.config == config_of_run(run_dir)  # the run's settings, unchanged
        assert str(form.query_one("#start").label) == "Fork ▶"
        (run_dir / "checkpoints" / "last.pt").write_bytes(b"a later epoch's weights")  # the parent goes on
        await pilot.click("#start")
        await wait_until(pilot, lambda: launched and isinstance(app.screen, MonitorScreen)
                         and app.screen is not monitor, what="the fork's monitor")
        child = launched[0]
        fork_option = child.command()[child.command().index("--fork") + 1]
        copy, _, which = fork_option.rpartition("@")
        assert which == "last" and Path(copy).name == "live" and Path(copy) != run_dir
        assert (Path(copy) / "checkpoints" / "last.pt").read_bytes() == CHECKPOINT_BYTES
        assert config_of_run(Path(copy)) == config_of_run(run_dir)
        assert child.config == config_of_run(run_dir)
        await wait_until(pilot, lambda: app.screen.state.started is not None, what="the fork's start")


async def test_f_on_a_finished_run_forks_from_its_last_checkpoint(finished, launched):
    app = create_app(mode="show", runs_dir=finished.parent, run_dir=finished)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        monitor = app.screen
        await wait_until(pilot, lambda: monitor.state.ended is not None, what="the end record")
        await pilot.pause(0.1)
        assert "f" in footer_keys(app)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="the fork form")
        form = app.screen
        assert form.fork_title == f"fork digits-mlp-complete at step {checkpoint_steps(finished)[-1]:,}"
        assert list(form.presets) == ["digits-mlp (fork)"] and form.config.train.epochs == 40
        assert not (finished / "control").exists()  # read-only: nothing was sent
        done = max(r["epoch"] for r in records(finished) if r["event"] == "epoch")
        short = form.config.model_copy(update={"train": form.config.train.model_copy(update={"epochs": done})})
        form.on_start(short)  # would train nothing: said on the form, nothing launched
        await pilot.pause()
        assert app.screen is form and not launched
        assert f"the checkpoint ends epoch {done}" in str(form.query_one("#start-failed").render())
        form.on_start(form.config)
        await wait_until(pilot, lambda: launched, what="the fork's launch")
        assert launched[0].fork_args == ["--fork", f"{finished}@last"]
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen) and app.screen.state.started,
                         what="the fork's start")


async def test_escape_leaves_the_fork_form_for_the_monitor_and_drops_the_copy(live_run, runtime_dir):
    run_dir = live_run.run_dir
    app = create_app(mode="attach", runs_dir=run_dir.parent, run_dir=run_dir)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        monitor = app.screen
        await wait_until(pilot, lambda: monitor.state.step > 0, what="steps")
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="the fork form")
        assert list((runtime_dir / "nntui").glob("fork-*/live/checkpoints/last.pt"))
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is monitor
        assert not list((runtime_dir / "nntui").glob("fork-*"))


async def test_f_without_a_checkpoint_says_why(tmp_path):
    run_dir = tmp_path / "runs" / "no-checkpoint"
    shutil.copytree(FIXTURES / "runs" / "digits-mlp-complete", run_dir)
    app = create_app(mode="show", runs_dir=run_dir.parent, run_dir=run_dir)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.state.ended is not None, what="the end record")
        await pilot.pause(0.1)
        assert "f" not in footer_keys(app)
        await pilot.press("f")
        await pilot.pause()
        assert app.screen is screen
        assert "the run has no checkpoint to fork from" in notices(app)


@pytest.mark.parametrize("situation, says", [
    (Situation("attach", live=True, starting=False, quitting=False), ""),
    (Situation("run", live=True, starting=True, quitting=False), "starting"),
    (Situation("run", live=True, starting=False, quitting=True), "stopping"),
    (Situation("show", live=True, starting=False, quitting=False, has_checkpoint=True), ""),
    (Situation("show", live=False, starting=False, quitting=False, end_status="failed"), "no checkpoint"),
    (Situation("run", live=False, starting=False, quitting=False, end_status="completed", has_checkpoint=True), ""),
])
def test_when_f_forks(situation, says):
    reason = why_not("fork_run", situation)
    assert says in reason and bool(reason) == bool(says)


@pytest.mark.parametrize("action", ["fork_run", "new_run", "continue_run"])
def test_a_run_of_the_users_own_loop_is_not_trained_on_by_nntui(action):
    """nntui.Monitor's runs hold no preset nntui could train: f, n and e say so."""
    ended = Situation("attach", live=False, starting=False, quitting=False, end_status="completed",
                      has_checkpoint=True)
    assert not why_not(action, ended)
    assert "your own loop" in why_not(action, replace(ended, own_loop=True))
