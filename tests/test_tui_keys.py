"""Every key of the monitor answers, in every state of a run: starting, running, paused, finished
and read-only (`show`). A key in the footer does what it says; one that is not says why; keys
pressed while the run is starting are queued and applied once it is live."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from conftest import pilot_wait_until as wait_until
from textual.widgets import Input, Label

from nntui.runs import read_records
from nntui.tui.app import create_app
from nntui.tui.dialogs import EpochsDialog, HelpScreen, LearningRateDialog
from nntui.tui.launcher import ChildRun
from nntui.tui.monitor import MonitorScreen
from nntui.tui.monitor_keys import QueuedCommands, Situation, why_not

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = FIXTURES / "runs"
FAKE_TRAINER = FIXTURES / "fake_trainer.py"
WAITING_CHILD = """
import runpy, sys, time
from pathlib import Path
go = Path(sys.argv[1])
while not go.exists():  # the app sees a run that is starting (no start record yet)
    time.sleep(0.02)
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def load_fake_trainer():
    spec = importlib.util.spec_from_file_location("fake_trainer", FAKE_TRAINER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def footer_keys(app) -> set[str]:
    return {key for key, active in app.active_bindings.items() if active.binding.show and active.enabled}


def notices(app) -> list[str]:
    return [notification.message for notification in app._notifications]


@pytest.fixture
def live_run(tmp_path):
    trainer, thread = load_fake_trainer().start_thread(tmp_path / "live", interval=0.05)
    yield trainer
    trainer.halt.set()
    thread.join(5)


@contextlib.asynccontextmanager
async def attached(run_dir: Path, size=(100, 30)):
    app = create_app(mode="attach", runs_dir=run_dir.parent, run_dir=run_dir)
    async with app.run_test(size=size, notifications=True) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.state.step > 0, what="steps")
        yield app, pilot, screen


async def ended(pilot, screen: MonitorScreen, live_run) -> None:
    """Stop the fake run from outside (as `nntui ctl RUN stop` would); wait for its end record."""
    live_run.stopping = True
    await wait_until(pilot, lambda: screen.state.ended is not None, what="the end record")
    await pilot.pause(0.1)


# ---------------------------------------------------------------------------------- the rules


def test_steering_keys_are_offered_while_starting_and_live_and_never_read_only() -> None:
    starting = Situation("run", live=True, starting=True, quitting=False)
    running = Situation("attach", live=True, starting=False, quitting=False)
    over = Situation("attach", live=False, starting=False, quitting=False, end_status="completed",
                     has_checkpoint=True)
    shown = Situation("show", live=False, starting=False, quitting=False, end_status="completed")
    for action in ("toggle_pause", "set_lr", "checkpoint"):
        assert why_not(action, starting) == why_not(action, running) == ""
        assert "over" in why_not(action, over)
        assert "read-only" in why_not(action, shown)
    assert why_not("new_run", over) == why_not("new_run", shown) == ""
    assert why_not("new_run", running) and why_not("new_run", starting)
    assert why_not("continue_run", over) == ""
    assert "read-only" in why_not("continue_run", shown)
    assert why_not("continue_run", running)


@pytest.mark.parametrize("status, checkpoint, says", [
    ("early_stopped", True, "stopped early"), ("failed", True, "failed"), ("completed", False, "no checkpoint"),
    ("stopped", True, ""),
])
def test_more_epochs_only_for_a_run_that_can_go_on(status, checkpoint, says) -> None:
    over = Situation("run", live=False, starting=False, quitting=False, end_status=status, has_checkpoint=checkpoint)
    reason = why_not("continue_run", over)
    assert (says in reason) if says else reason == ""


def test_queued_commands_keep_the_last_of_each_kind_and_a_resume_cancels_a_pause() -> None:
    queue = QueuedCommands()
    assert queue.add("pause") == "queued: pause — applied when the run starts"
    assert queue.add("lr", 1e-3).startswith("queued: lr 0.001")
    queue.add("lr", 3e-4)
    assert "cancelled" in queue.add("resume")
    queue.add("checkpoint")
    assert queue.take() == [("lr", 3e-4), ("checkpoint", None)] and not queue


# ---------------------------------------------------------------------------------- starting


@pytest.fixture
def waiting_child(tmp_path, monkeypatch):
    """The app launches the fake trainer, which writes nothing until the test creates `go`."""
    script = tmp_path / "waiting_child.py"
    script.write_text(WAITING_CHILD)
    go = tmp_path / "go"

    def command(self: ChildRun) -> list[str]:
        return [sys.executable, str(script), str(go), str(FAKE_TRAINER), "run", str(self.config_path),
                "--headless", "--name", self.name, "--runs-dir", str(self.runs_dir)]

    monkeypatch.setattr(ChildRun, "command", command)
    return go


async def test_keys_pressed_while_starting_are_queued_then_applied(tmp_path, waiting_child):
    from nntui.config import load_config

    app = create_app(mode="run", runs_dir=tmp_path / "runs", config=load_config("digits-mlp"), run_name="queued")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen) and screen.state.launching
        assert {"space", "l", "s", "q"} <= footer_keys(app)
        assert not {"n", "e"} & footer_keys(app)
        await pilot.press("space")
        await pilot.pause()
        assert "queued: pause — applied when the run starts" in notices(app)
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LearningRateDialog)
        await pilot.press(*"3e-4", "enter")
        await pilot.pause()
        assert screen.queued.commands == [("pause", None), ("lr", 3e-4)]
        waiting_child.touch()
        await wait_until(pilot, lambda: screen.state.status == "paused", what="the queued pause")
        await wait_until(pilot, lambda: screen.state.lr == 3e-4, what="the queued lr")
        assert not screen.queued
        controls = [(r["action"], r["source"]) for r in read_records(screen.run_dir) if r["event"] == "control"]
        assert controls == [("pause", "tui"), ("lr", "tui")]
        await pilot.press("q", "s")
        await wait_until(pilot, lambda: app.return_value is not None, what="the app to exit")


# ---------------------------------------------------------------------------------- running and paused


async def test_running_and_paused_footer_and_the_after_run_keys_say_why_not(live_run):
    async with attached(live_run.run_dir) as (app, pilot, screen):
        assert {"space", "l", "s", "m", "x", "enter", "q", "question_mark"} <= footer_keys(app)
        assert not {"n", "e"} & footer_keys(app)
        for key in ("n", "e"):
            await pilot.press(key)
            await pilot.pause()
        said = notices(app)
        assert any("once this one is over" in text for text in said)
        assert any("once the run is over" in text for text in said)
        await pilot.press("space")
        await wait_until(pilot, lambda: screen.state.status == "paused", what="paused")
        assert {"space", "l", "s"} <= footer_keys(app)
        await pilot.press("s")
        await wait_until(pilot, lambda: ("checkpoint", None) in live_run.commands, what="a checkpoint while paused")


async def test_chart_keys_smooth_cycle_the_x_axis_and_open_a_chart_full_screen(live_run):
    from nntui.tui.charts import ChartScreen, ChartsPane

    async with attached(live_run.run_dir) as (app, pilot, screen):
        charts = screen.query_one(ChartsPane)
        await pilot.press("m", "x")
        await pilot.pause()
        assert {"smoothing 0.6 on", "x axis: epoch"} <= set(notices(app))
        assert charts.view.smoothing == 0.6 and charts.view.x_mode == "epoch"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChartScreen) and app.screen.view == charts.view
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


# ---------------------------------------------------------------------------------- finished


async def test_after_the_run_the_footer_offers_new_run_and_more_epochs(live_run):
    (live_run.run_dir / "checkpoints").mkdir()
    (live_run.run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    async with attached(live_run.run_dir) as (app, pilot, screen):
        continued: list[tuple[Path, int]] = []
        app.continue_run = lambda run_dir, epochs: continued.append((run_dir, epochs))
        await ended(pilot, screen, live_run)
        keys = footer_keys(app)
        assert {"n", "e", "q", "question_mark"} <= keys and not {"space", "l", "s"} & keys
        await pilot.press("space")
        await pilot.pause()
        assert any("the run is over" in text for text in notices(app))
        assert not [worker for worker in app.workers if worker.group == "steer"]
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, EpochsDialog)
        field = dialog.query_one("#epochs-input", Input)
        assert int(field.value) == 2 * live_run.epochs  # as many again as planned
        await pilot.press(*str(screen.state.epoch), "enter")  # no more than it has: refused
        await pilot.pause()
        assert app.screen is dialog and "above" in str(dialog.query_one("#epochs-error", Label).render())
        field.value = ""
        await pilot.press(*"1500", "enter")
        await pilot.pause()
        assert continued == [(live_run.run_dir, 1500)]
        await pilot.press("q")  # over: no question
        await pilot.pause()
    assert app.return_value == 0


async def test_n_opens_the_setup_screen_with_the_run_settings():
    app = create_app(mode="show", runs_dir=RUNS, run_dir=RUNS / "digits-mlp-complete")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.state.ended is not None, what="the end record")
        opened: list[tuple[object, str]] = []
        app.open_setup = lambda config=None, error="": opened.append((config, error))
        await pilot.press("n")
        await pilot.pause()
    assert len(opened) == 1
    config, error = opened[0]
    assert error == "" and config.name == "digits-mlp"
    assert config.train.epochs == 40  # the run's own config.toml


# ---------------------------------------------------------------------------------- read-only


async def test_read_only_header_footer_and_keys_that_say_why():
    app = create_app(mode="show", runs_dir=RUNS, run_dir=RUNS / "digits-mlp-complete")
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.state.ended is not None, what="the end record")
        await pilot.pause(0.2)
        title = str(screen.query_one("#title").render())
        assert title.startswith("digits-mlp-complete (read-only) · digits-mlp")  # at 80 columns too
        keys = footer_keys(app)
        assert {"n", "q"} <= keys and not {"space", "l", "s", "e"} & keys
        for key in ("space", "l", "s", "e"):
            await pilot.press(key)
            await pilot.pause()
        assert not isinstance(app.screen, (LearningRateDialog, EpochsDialog))
        said = notices(app)
        assert sum("read-only" in text for text in said) >= 2
        assert not [worker for worker in app.workers if worker.group == "steer"]
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_the_header_names_a_live_run(live_run):
    async with attached(live_run.run_dir) as (app, pilot, screen):
        await pilot.pause(0.2)
        title = str(screen.query_one("#title").render())
        assert title.startswith("live · fake · cpu") and "read-only" not in title


# ---------------------------------------------------------------------------------- screenshot


async def test_the_palette_screenshot_saves_into_the_run_dir(live_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with attached(live_run.run_dir) as (app, pilot, screen):
        commands = [command for command in app.get_system_commands(screen) if command.title == "Screenshot"]
        assert len(commands) == 1  # the monitor's, in place of the app's
        commands[0].callback()
        await pilot.pause()
    shots = list(live_run.run_dir.glob("screenshot-live-*.svg"))
    assert len(shots) == 1 and shots[0].read_text().startswith("<svg")
    assert stat.S_IMODE(os.stat(shots[0]).st_mode) == 0o600
    assert any(f"saved to {shots[0]}" in text for text in notices(app))


async def test_a_screenshot_of_a_run_dir_not_writable_goes_to_the_working_dir(tmp_path, monkeypatch):
    run_dir = tmp_path / "theirs"
    shutil.copytree(RUNS / "digits-mlp-complete", run_dir)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("nntui.tui.monitor_keys.OwnDir.open", refuse)  # as for another user's run
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    app = create_app(mode="show", runs_dir=tmp_path, run_dir=run_dir)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        app.screen.action_save_screenshot()
        await pilot.pause()
    shots = list(here.glob("screenshot-theirs-*.svg"))
    assert len(shots) == 1 and not list(run_dir.glob("*.svg"))
    assert any(f"cannot write to {run_dir}" in text and str(shots[0]) in text for text in notices(app))

