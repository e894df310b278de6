"""End to end: `attach` (the monitor over a run of another process) against a REAL headless run,
and a run killed with SIGKILL resumed in the app (`nntui run --resume RUN` without --headless)."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import count_records, finish_cli, start_cli
from conftest import pilot_wait_until as wait_until
from conftest import records_of as of
from conftest import wait_until as wait_on_disk

from nntui.channel import send_command
from nntui.engine.events import StepLogged, from_record
from nntui.runs import is_live, read_records
from nntui.tui.app import create_app
from nntui.tui.dialogs import LearningRateDialog, QuitDialog
from nntui.tui.follow import EventsArrived
from nntui.tui.monitor import MonitorScreen

# thousands of small steps, every one logged: the run is still going whatever we do to it
LONG_RUN = ["--set", "data.batch_size=4", "--set", "train.log_interval_s=0", "--set", "train.log_every=1",
            "--set", "schedule.name=constant", "--set", "early_stopping.enabled=false"]






def start_headless(tmp_path, *args: str):
    proc = start_cli("run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs"), *args, cwd=tmp_path)
    return proc


@pytest.mark.slow
async def test_attach_shows_the_history_follows_steers_and_detaches(tmp_path):
    run_dir = tmp_path / "runs" / "live"
    proc = start_headless(tmp_path, "--name", "live", "--epochs", "400", *LONG_RUN)
    try:
        wait_on_disk(lambda: count_records(run_dir, "step") >= 20 and is_live(run_dir), 60, what="step records")
        delivered: list = []
        hook = lambda message: delivered.extend(message.events) if isinstance(message, EventsArrived) else None  # noqa: E731
        app = create_app(mode="attach", runs_dir=run_dir.parent, run_dir=run_dir)
        at_attach = read_records(run_dir)
        async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
            screen = app.screen
            assert isinstance(screen, MonitorScreen) and screen.mode == "attach"
            steps_then = [r for r in at_attach if r["event"] == "step"]
            await wait_until(pilot, lambda: len(delivered) >= len(at_attach), what="the history")
            assert delivered[:len(at_attach)] == [from_record(r) for r in at_attach]  # all of it, in order
            assert screen.state.series["step_loss"].total >= len(steps_then)
            assert screen.state.step >= steps_then[-1]["step"] and screen.state.epoch >= steps_then[-1]["epoch"]
            followed = screen.state.step
            await wait_until(pilot, lambda: screen.state.step > followed + 20, what="live steps")

            await pilot.press("space")
            await wait_until(pilot, lambda: screen.state.status == "paused", what="paused")
            pause = of(run_dir, "control")[-1]
            assert (pause["action"], pause["source"]) == ("pause", "tui")
            steps_paused = count_records(run_dir, "step")
            await pilot.pause(1.0)
            assert count_records(run_dir, "step") == steps_paused, "steps went on while paused"
            await pilot.press("space")
            await wait_until(pilot, lambda: screen.state.status == "running", what="resumed")
            await wait_until(pilot, lambda: count_records(run_dir, "step") > steps_paused + 5, what="steps again")

            await pilot.press("l")
            await pilot.pause()
            assert isinstance(app.screen, LearningRateDialog)
            await pilot.press(*"1e-4", "enter")
            await wait_until(pilot, lambda: screen.state.lr == pytest.approx(1e-4), what="the lr record")
            await wait_until(pilot, lambda: screen.state.series["lr"].latest == pytest.approx(1e-4),
                             what="a step record at the new lr")

            await pilot.press("q")  # a live run: q asks; enter takes "leave it running"
            await pilot.pause()
            assert isinstance(app.screen, QuitDialog)
            await pilot.press("enter")
            await pilot.pause()
            assert app.return_value == 0
        steps = [e for e in delivered if isinstance(e, StepLogged)]
        assert screen.state.series["step_loss"].total == len(steps)
        assert delivered == [from_record(r) for r in read_records(run_dir)[:len(delivered)]]

        records = read_records(run_dir)
        lr_at = max(i for i, r in enumerate(records) if r["event"] == "control" and r["action"] == "lr")
        assert records[lr_at]["source"] == "tui"
        later = [r for r in records[lr_at:] if r["event"] == "step"]
        assert later and all(r["lr"] == pytest.approx(1e-4) for r in later)

        detached_at = count_records(run_dir, "step")
        assert proc.poll() is None, "detaching stopped the run"
        wait_on_disk(lambda: count_records(run_dir, "step") > detached_at + 20, 20, what="steps after detaching")
        assert send_command(run_dir, "stop", source="ctl", timeout=30).ok
        result = finish_cli(proc, timeout=60)
        assert result.returncode == 0, result.stderr
        end = read_records(run_dir)[-1]
        assert end["event"] == "end" and end["status"] == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.slow
async def test_a_killed_run_resumed_in_the_app_replays_its_epochs_once(tmp_path):
    from nntui.tui.launcher import resume_options

    run_dir = tmp_path / "runs" / "killed"
    # the preset's batches of 32: short epochs, so last.pt (every 1.5 s) is a few epochs behind
    proc = start_headless(tmp_path, "--name", "killed", "--epochs", "400", "--set", "train.checkpoint_every_s=1.5",
                          "--set", "schedule.name=constant", "--set", "early_stopping.enabled=false")

    def epochs_after_last_checkpoint() -> bool:
        last = [r["step"] for r in of(run_dir, "checkpoint") if r["kind"] == "last"]
        return len(of(run_dir, "epoch")) >= 4 and bool(last) and of(run_dir, "epoch")[-1]["step"] > last[-1]

    try:
        wait_on_disk(epochs_after_last_checkpoint, 60, interval=0.005, what="epochs newer than last.pt")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    old_epochs = [r["epoch"] for r in of(run_dir, "epoch")]
    app = create_app(mode="run", runs_dir=run_dir.parent, resume_dir=run_dir, resume_args=resume_options(epochs=400))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        state = screen.state
        await wait_until(pilot, lambda: state.status == "resuming" and state.epoch == old_epochs[-1], what="history")
        await wait_until(pilot, lambda: not state.launching, 60, what="the resumed run's start record")
        resumed_from = state.started.resumed_from
        per_epoch = state.started.steps_per_epoch
        assert resumed_from is not None and resumed_from < per_epoch * old_epochs[-1], "nothing to replay"
        await wait_until(pilot, lambda: state.epoch > old_epochs[-1] + 1, 60, what="epochs past the old ones")
        xs = state.series["val_loss"].xs()
        assert xs == [per_epoch * epoch for epoch in range(1, len(xs) + 1)], "an epoch shown twice (or missing)"
        steps = state.series["step_loss"].xs()
        assert steps == sorted(set(steps))
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitDialog)
        await pilot.press("s")
        await wait_until(pilot, lambda: not screen.child.running, 60, what="the run to stop")
        await wait_until(pilot, lambda: app.return_value is not None, 10, what="the app to exit")
    assert app.return_value == 0
    end = read_records(run_dir)[-1]
    assert end["event"] == "end" and end["status"] == "stopped"
    epochs = [r["epoch"] for r in of(run_dir, "epoch")]
    assert len(epochs) > len(set(epochs)), "the file itself holds the replayed epochs twice"
