"""Pilot tests of the monitor: replayed runs, a live fake trainer, a launched child, the real keys."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import pilot_wait_until as wait_until
from textual.widgets import Input, Label

from nntui.engine.events import from_record
from nntui.runs import read_records
from nntui.tui.app import create_app
from nntui.tui.dialogs import LearningRateDialog, QuitDialog
from nntui.tui.follow import EventsArrived
from nntui.tui.formatting import fmt_percent
from nntui.tui.launcher import ChildRun
from nntui.tui.monitor import MonitorScreen

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = FIXTURES / "runs"
FAKE_TRAINER = FIXTURES / "fake_trainer.py"


def load_fake_trainer():
    spec = importlib.util.spec_from_file_location("fake_trainer", FAKE_TRAINER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module




def monitor(app) -> MonitorScreen:
    assert isinstance(app.screen, MonitorScreen), app.screen
    return app.screen


# ---------------------------------------------------------------------------------- replay


async def test_monitor_replays_a_recorded_run_through_messages():
    run_dir = RUNS / "digits-mlp-complete"
    records = read_records(run_dir)
    seen: list[EventsArrived] = []
    app = create_app(mode="show", runs_dir=RUNS, run_dir=run_dir)
    hook = lambda message: seen.append(message) if isinstance(message, EventsArrived) else None  # noqa: E731
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        screen = monitor(app)
        await wait_until(pilot, lambda: screen.state.ended is not None, what="the end record")
        await pilot.pause(0.3)
        events = [event for message in seen for event in message.events]
        assert all(isinstance(message.events, tuple) for message in seen)
        assert events == [from_record(record) for record in records]
        last_epoch = [r for r in records if r["event"] == "epoch"][-1]
        chart = screen.query_one("#chart-accuracy")
        shown = f"val {fmt_percent(last_epoch['val_acc'])}"
        await wait_until(pilot, lambda: shown in str(chart.border_title), what="the last val acc in its chart")
        assert screen.query_one("#results").display
        assert "test acc" in str(screen.query_one("#results").render())


async def test_show_mode_is_read_only(tmp_path):
    app = create_app(mode="show", runs_dir=RUNS, run_dir=RUNS / "digits-mlp-paused")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = monitor(app)
        await wait_until(pilot, lambda: screen.state.status == "paused", what="the paused state")
        shown = {active.binding.action for active in app.active_bindings.values()}
        assert {"toggle_pause", "set_lr", "checkpoint"}.isdisjoint(shown), shown
        await pilot.press("space", "l", "s")
        await pilot.pause()
        assert not isinstance(app.screen, LearningRateDialog)
        assert not [worker for worker in app.workers if worker.group == "steer"]
        titles = [command.title for command in app.get_system_commands(screen)]
        assert "Pause / resume" not in titles and "Quit monitor" in titles
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0


async def test_attaching_to_a_finished_run_shows_it_read_only():
    app = create_app(mode="attach", runs_dir=RUNS, run_dir=RUNS / "digits-mlp-complete")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = monitor(app)
        assert screen.mode == "show"
        await pilot.pause()
        assert "not running" in screen.state.log[0].text


async def test_diverged_run_shows_the_message_prominently():
    app = create_app(mode="show", runs_dir=RUNS, run_dir=RUNS / "digits-mlp-diverged")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = monitor(app)
        await wait_until(pilot, lambda: screen.state.status == "diverged (paused)", what="divergence")
        await pilot.pause(0.2)
        alert = screen.query_one("#alert")
        assert alert.display and "weights restored" in str(alert.render())
        assert "DIVERGED (PAUSED)" in str(screen.query_one("#status").render())


# ---------------------------------------------------------------------------------- live (fake trainer)


@pytest.fixture
def live_run(tmp_path):
    fake = load_fake_trainer()
    trainer, thread = fake.start_thread(tmp_path / "live", interval=0.05)
    yield trainer
    trainer.halt.set()
    thread.join(5)


@contextlib.asynccontextmanager
async def attached(live_run):
    """The app attached to the live fake run at 80x24, once it shows steps: (app, pilot, screen)."""
    app = create_app(mode="attach", runs_dir=live_run.run_dir.parent, run_dir=live_run.run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = monitor(app)
        await wait_until(pilot, lambda: screen.state.step > 0, what="steps")
        yield app, pilot, screen


async def test_space_pauses_and_resumes_a_live_run(live_run):
    async with attached(live_run) as (app, pilot, screen):
        await pilot.press("space")
        await wait_until(pilot, lambda: screen.state.status == "paused", what="paused")
        assert live_run.commands == [("pause", None)] and live_run.paused
        paused_at = live_run.step
        await pilot.pause(0.3)
        assert live_run.step == paused_at
        await pilot.press("space")
        await wait_until(pilot, lambda: screen.state.status == "running", what="resumed")
        assert live_run.commands[-1] == ("resume", None)
        await pilot.press("s")
        await wait_until(pilot, lambda: ("checkpoint", None) in live_run.commands, what="checkpoint")
        await pilot.press("q")  # attached to a live run: q asks too
        await pilot.pause()
        assert isinstance(app.screen, QuitDialog)
        await pilot.press("d")  # leave it running
        await pilot.pause()
    assert app.return_value == 0
    assert not live_run.stopping and not live_run.halt.is_set()
    assert screen.left_running


async def test_lr_dialog_rejects_nan_and_applies_3e_4(live_run):
    async with attached(live_run) as (app, pilot, screen):
        await pilot.press("l")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, LearningRateDialog)
        field = dialog.query_one("#lr-input", Input)
        assert field.value == "0.001" and field.selection.start != field.selection.end  # all selected
        await pilot.press("n", "a", "n", "enter")  # typing replaces the selected text
        await pilot.pause()
        assert app.screen is dialog
        assert "learning rate must be" in str(dialog.query_one("#lr-error", Label).render())
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, LearningRateDialog)
        assert live_run.commands == []
        await pilot.press("l")
        await pilot.pause()
        await pilot.press(*"3e-4", "enter")
        await wait_until(pilot, lambda: live_run.commands == [("lr", 3e-4)], what="the lr command")
        await wait_until(pilot, lambda: screen.state.lr == 3e-4, what="the lr record")
        step_after = screen.state.step
        await wait_until(pilot, lambda: screen.state.step > step_after + 2, what="more steps")
        assert screen.state.series["lr"].latest == 3e-4


async def test_palette_offers_the_monitor_actions(live_run):
    async with attached(live_run) as (app, pilot, screen):
        titles = [command.title for command in app.get_system_commands(screen)]
        for title in ("Pause / resume", "Set learning rate", "Checkpoint now", "Detach", "Stop the run", "Help: keys"):
            assert title in titles
        footer_keys = {key for key, active in app.active_bindings.items() if active.binding.show}
        assert {"space", "l", "s", "q", "question_mark"} <= footer_keys


# ---------------------------------------------------------------------------------- launched child


@pytest.fixture
def fake_child(monkeypatch):
    """The app launches tests/fixtures/fake_trainer.py instead of the real runner."""
    extra: list[str] = []

    def command(self: ChildRun) -> list[str]:
        return [sys.executable, str(FAKE_TRAINER), "run", str(self.config_path), "--headless",
                "--name", self.name, "--runs-dir", str(self.runs_dir), *extra]

    monkeypatch.setattr(ChildRun, "command", command)
    return extra


async def launched(pilot, app) -> tuple[MonitorScreen, ChildRun]:
    """Start the highlighted preset from the setup screen; the monitor and its child, once stepping."""
    await pilot.press("enter")  # enter on the highlighted preset starts it
    await pilot.pause()
    screen = monitor(app)
    await wait_until(pilot, lambda: screen.state.step > 0, what="steps")
    return screen, screen.child


def stop_over_the_channel(run_dir: Path) -> None:
    """What `nntui ctl RUN stop` does."""
    from nntui.channel import send_command

    assert send_command(run_dir, "stop", None, source="ctl", timeout=15).ok


def wait_for(predicate, timeout: float = 15.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def test_quit_asks_escape_cancels_and_s_stops_the_launched_run(tmp_path, fake_child):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, child = await launched(pilot, app)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitDialog)
        assert app.screen.focused.id == "detach"  # enter would leave it running, never stop it
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is screen and child.running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("s")
        await wait_until(pilot, lambda: not child.running, what="the child to exit")
        await wait_until(pilot, lambda: app.return_value is not None, what="the app to exit")
    assert app.return_value == 0
    assert read_records(child.run_dir)[-1]["event"] == "end"
    assert read_records(child.run_dir)[-1]["status"] == "stopped"


async def test_quit_then_enter_leaves_the_run_going_and_attach_stops_it(tmp_path, fake_child):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, child = await launched(pilot, app)
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("right", "left")  # the highlight moves, and comes back
        await pilot.pause()
        assert app.screen.focused.id == "detach"
        await pilot.press("enter")
        await pilot.pause()
    assert app.return_value == 0 and screen.left_running
    assert app.release_child() is None  # nothing stops it on the way out
    steps = len([r for r in read_records(child.run_dir) if r["event"] == "step"])
    wait_for(lambda: len([r for r in read_records(child.run_dir) if r["event"] == "step"]) > steps + 5,
             what="more steps after detaching")
    assert child.running

    again = create_app(mode="attach", runs_dir=tmp_path, run_dir=child.run_dir)
    async with again.run_test(size=(80, 24)) as pilot:
        screen = monitor(again)
        assert screen.mode == "attach"
        await wait_until(pilot, lambda: screen.state.step > steps and screen.steerable, what="the whole history")
        assert screen.state.series["step_loss"].first[0] == 1  # from the first step (xs are bucket ends)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(again.screen, QuitDialog)
        await pilot.press("s")  # stop: the app leaves once the run has ended
        await wait_until(pilot, lambda: again.return_value is not None, what="the app to exit")
    assert read_records(child.run_dir)[-1]["status"] == "stopped"
    assert child.wait(10) == 0


async def test_tab_moves_the_highlight_and_enter_takes_it(tmp_path, fake_child):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, child = await launched(pilot, app)
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("tab")
        await pilot.pause()
        assert app.screen.focused.id == "cancel"
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.screen is screen and child.running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("left")
        await pilot.pause()
        assert app.screen.focused.id == "stop"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.return_value is not None, what="the app to exit")
    assert read_records(child.run_dir)[-1]["status"] == "stopped"


async def test_child_failing_before_start_shows_its_error(tmp_path, fake_child):
    fake_child.append("--fail")
    from nntui.config import load_config

    app = create_app(mode="run", runs_dir=tmp_path, config=load_config("digits-mlp"), run_name="failing")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = monitor(app)
        await wait_until(pilot, lambda: screen.state.status == "failed", what="failure")
        await pilot.pause(0.2)
        assert screen.state.alert == "fake: something went wrong (exit 1)"
        assert screen.query_one("#alert").display
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 1


async def test_app_exit_or_crash_leaves_the_child_running(tmp_path, fake_child):
    from nntui.config import load_config

    app = create_app(mode="run", runs_dir=tmp_path, config=load_config("digits-mlp"), run_name="orphan")
    with pytest.raises(RuntimeError, match="outside the monitor"):
        async with app.run_test(size=(80, 24)) as pilot:
            screen = monitor(app)
            await wait_until(pilot, lambda: screen.state.step > 0, what="steps")
            child = screen.child
            app._handle_exception(RuntimeError("a bug outside the monitor's guards"))  # the app dies
            await pilot.pause(0.3)
    assert app.release_child() is None
    assert child.running
    assert os.getsid(child.pid) == child.pid  # its own session: a hangup of our terminal misses it
    stop_over_the_channel(child.run_dir)
    assert child.wait(15) == 0
    assert read_records(child.run_dir)[-1]["status"] == "stopped"


async def test_palette_runs_pause(live_run):
    async with attached(live_run) as (app, pilot, screen):
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"pause")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.state.status == "paused", what="paused from the palette")
        assert live_run.commands == [("pause", None)]


async def test_attached_run_whose_process_dies_is_shown_crashed(tmp_path):
    run_dir = tmp_path / "external"
    child = subprocess.Popen([sys.executable, str(FAKE_TRAINER), "run", "x.toml", "--headless",
                              "--name", run_dir.name, "--runs-dir", str(tmp_path)])
    try:
        deadline = time.monotonic() + 20
        while not (run_dir / "metrics.jsonl").exists() or not (run_dir / "control" / "pid").exists():
            assert time.monotonic() < deadline, "the fake trainer did not start"
            time.sleep(0.05)
        app = create_app(mode="attach", runs_dir=tmp_path, run_dir=run_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = monitor(app)
            assert screen.mode == "attach"
            await wait_until(pilot, lambda: screen.state.step > 0, what="steps")
            child.kill()
            child.wait(5)
            await wait_until(pilot, lambda: screen.state.status == "crashed", what="crashed")
            assert not screen.steerable
    finally:
        child.kill()
        child.wait(5)


async def test_hangup_exits_at_once_and_leaves_the_run_going(tmp_path, fake_child):
    from nntui.config import load_config

    handler_before = signal.getsignal(signal.SIGHUP)
    app = create_app(mode="run", runs_dir=tmp_path, config=load_config("digits-mlp"), run_name="hangup")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = monitor(app)
        await wait_until(pilot, lambda: screen.state.step > 0, what="steps")
        child = screen.child
        os.kill(os.getpid(), signal.SIGHUP)  # the terminal went away
        await wait_until(pilot, lambda: app.return_value is not None, 5, what="the app to exit")
    assert app.return_value == 129 and app.terminal_lost
    assert child.running
    steps = len([r for r in read_records(child.run_dir) if r["event"] == "step"])
    wait_for(lambda: len([r for r in read_records(child.run_dir) if r["event"] == "step"]) > steps + 5,
             what="more steps after the hangup")
    stop_over_the_channel(child.run_dir)
    assert child.wait(15) == 0
    assert signal.getsignal(signal.SIGHUP) == handler_before  # the app's handler is gone with it


# ---------------------------------------------------------------------------------- resumed in the app

RESUMED_CHILD = '''
import json, os, sys, time
from pathlib import Path
from nntui.engine.events import EpochEnded, RunEnded, RunStarted, StepLogged, to_record

argv = sys.argv[1:]
run_dir = Path(argv[argv.index("--resume") + 1])
(run_dir.parent / "argv.json").write_text(json.dumps(argv))
epochs, per_epoch, step = int(argv[argv.index("--epochs") + 1]), 144, 432  # last.pt was at epoch 3
time.sleep(float(os.environ.get("FAKE_START_DELAY", "0")))  # torch is slow to import
with open(run_dir / "metrics.jsonl", "a") as out:
    def write(event):
        out.write(json.dumps(to_record(event)) + "\\n")
        out.flush()
    write(RunStarted("digits-mlp", "cpu", 17226, 1150, 288, 359, step, epochs=epochs, steps_per_epoch=per_epoch,
                     batch_size=8, optimizer="adam", lr=float(argv[argv.index("--lr") + 1]), pid=os.getpid()))
    while step < epochs * per_epoch:
        step += 16
        write(StepLogged(step, (step - 1) // per_epoch + 1, 0.1, 5e-4, 1.0, 900.0))
        if step % per_epoch == 0:
            write(EpochEnded(step // per_epoch, step, 0.1, 0.2, 5e-4, train_acc=0.99, val_acc=0.97))
        time.sleep(0.02)
    write(RunEnded("completed", epochs, step, test_loss=0.2, test_acc=0.96, wall_s=9.0))
'''


async def test_run_resume_replays_the_old_records_then_follows_the_resumed_run(tmp_path, monkeypatch):
    import shutil

    from nntui.tui.launcher import resume_options

    run_dir = tmp_path / "runs" / "killed"
    shutil.copytree(RUNS / "digits-mlp-paused", run_dir)  # no end record: as a killed run leaves it
    old_epochs = [r for r in read_records(run_dir) if r["event"] == "epoch"]
    script = tmp_path / "resumed_child.py"
    script.write_text(RESUMED_CHILD)
    real_command = ChildRun.command
    monkeypatch.setattr(ChildRun, "command", lambda self: [sys.executable, str(script), *real_command(self)[3:]])
    monkeypatch.setenv("FAKE_START_DELAY", "1.0")
    with pytest.raises(ValueError):
        create_app(mode="attach", runs_dir=tmp_path, run_dir=run_dir, resume_dir=run_dir)

    app = create_app(mode="run", runs_dir=tmp_path / "elsewhere", resume_dir=run_dir,
                     resume_args=resume_options(lr=5e-4, epochs=6))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = monitor(app)
        state = screen.state
        await wait_until(pilot, lambda: len(state.series["val_loss"].values()) == len(old_epochs), what="the history")
        assert state.status == "resuming" and state.started.resumed_from is None  # the old run's start
        assert not screen.steerable and screen.check_action("toggle_pause", ()) is True  # it would be queued
        await pilot.pause(0.2)
        assert "RESUMING" in str(screen.query_one("#status").render())
        await wait_until(pilot, lambda: state.started.resumed_from == 432, what="the resumed start")
        assert state.status == "running" and screen.check_action("toggle_pause", ()) is True
        assert any("epochs from 4 on are trained again" in line.text for line in state.log)
        await wait_until(pilot, lambda: state.status == "finished", what="the resumed run's end")
        await pilot.press("q")  # the run is over: no question
        await pilot.pause()
    argv = json.loads((run_dir.parent / "argv.json").read_text())
    assert argv[:6] == ["run", "--resume", str(run_dir), "--headless", "--runs-dir", str(run_dir.parent)]
    assert argv[argv.index("--lr") + 1] == "0.0005" and argv[argv.index("--epochs") + 1] == "6"
    val_loss = state.series["val_loss"]
    assert val_loss.xs() == [144 * epoch for epoch in range(1, 7)]  # epochs 4 and 5 once, not twice
    assert val_loss.values()[3:] == [0.2, 0.2, 0.2]
    assert state.series["step_loss"].xs() == sorted(set(state.series["step_loss"].xs()))
    assert state.epoch == 6 and app.return_value == 0


async def test_q_twice_while_a_stop_is_slow_leaves_the_app(live_run, monkeypatch):
    def slow_to_stop(command):  # acknowledges the stop, but keeps training (a long checkpoint)
        live_run.commands.append((command.action, command.value))
        if command.reply:
            command.reply(True, "stopping after a checkpoint")

    monkeypatch.setattr(live_run, "obey", slow_to_stop)
    async with attached(live_run) as (app, pilot, screen):
        await pilot.press("q", "s")
        await wait_until(pilot, lambda: ("stop", None) in live_run.commands, what="the stop command")
        await pilot.press("q")  # still waiting: says so, stays
        await pilot.pause(0.3)
        assert app.return_value is None and app.screen is screen
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value is not None, 5, what="the app to leave")
    assert app.return_value == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_signal_to_the_app_leaves_it_cleanly_and_the_run_going(tmp_path, fake_child, signum):
    from nntui.config import load_config

    handler_before = signal.getsignal(signum)
    app = create_app(mode="run", runs_dir=tmp_path, config=load_config("digits-mlp"), run_name="stopsig")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = monitor(app)
        await wait_until(pilot, lambda: screen.state.step > 0, what="steps")
        child = screen.child
        assert getattr(signal.getsignal(signum), "__self__", None) is app  # else the signal would end pytest
        os.kill(os.getpid(), signum)
        await wait_until(pilot, lambda: app.return_value is not None, 5, what="the app to exit")
    assert app.return_value == 128 + signum and not app.terminal_lost
    assert child.running
    stop_over_the_channel(child.run_dir)
    assert child.wait(15) == 0
    assert signal.getsignal(signum) == handler_before
