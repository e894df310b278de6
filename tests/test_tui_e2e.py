"""End to end: the app launches a REAL headless digits-mlp run and steers it with the real keys."""

from __future__ import annotations

import pytest
from conftest import pilot_wait_until as wait_until
from conftest import records_of

from nntui.config import load_config
from nntui.runs import read_records
from nntui.tui.app import create_app
from nntui.tui.dialogs import LearningRateDialog, QuitDialog
from nntui.tui.monitor import MonitorScreen


@pytest.mark.slow
async def test_real_run_pause_lr_resume_quit(tmp_path):
    # small batches: thousands of steps, so the run is still going when we steer it
    config = load_config("digits-mlp", ["data.batch_size=4", "train.epochs=30", "train.log_every=5", "train.log_interval_s=0",
                                        "schedule.name=\"constant\"", "early_stopping.enabled=false"])
    app = create_app(mode="run", runs_dir=tmp_path, config=config, run_name="e2e")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        run_dir = screen.run_dir
        await wait_until(pilot, lambda: screen.state.step >= 20 and screen.state.layers, 90, "steps")
        await pilot.pause(0.3)
        assert screen.state.status == "running"
        chart = screen.query_one("#chart-loss")  # it takes new data at most twice a second
        await wait_until(pilot, lambda: any(char.isdigit() for char in str(chart.border_title)), 10, "the loss in its chart")

        await pilot.press("space")
        await wait_until(pilot, lambda: screen.state.status == "paused", 20, "pause")
        steps_when_paused = len(records_of(run_dir, "step"))
        await pilot.pause(1.0)
        assert len(records_of(run_dir, "step")) == steps_when_paused, "steps went on while paused"

        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LearningRateDialog)
        await pilot.press(*"3e-4", "enter")
        await wait_until(pilot, lambda: screen.state.lr == 3e-4, 20, "the lr record")

        await pilot.press("space")
        await wait_until(pilot, lambda: len(records_of(run_dir, "step")) > steps_when_paused + 2, 30, "new steps")
        # the file runs ahead of the screen by up to one poll
        await wait_until(pilot, lambda: screen.state.status == "running", 5, "the screen to show it running")
        records = read_records(run_dir)
        lr_at = max(i for i, r in enumerate(records) if r.get("event") == "control" and r.get("action") == "lr")
        later_steps = [r for r in records[lr_at:] if r.get("event") == "step"]
        assert later_steps and all(r["lr"] == pytest.approx(3e-4) for r in later_steps)

        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitDialog)
        await pilot.press("s")
        await wait_until(pilot, lambda: not screen.child.running, 60, "the run to stop")
        await pilot.pause(0.5)
    end = read_records(run_dir)[-1]
    assert end["event"] == "end" and end["status"] == "stopped"
    assert app.return_value == 0
    assert (run_dir / "checkpoints" / "last.pt").exists()
