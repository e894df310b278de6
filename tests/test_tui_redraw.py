"""Rendering is cheap: the monitor redraws only what changed, and the follower backs off when idle."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import pilot_wait_until as wait_until
from textual.widgets import ProgressBar, Static

from nntui.tui.app import create_app
from nntui.tui.charts.chart import LineChart, SparkRow
from nntui.tui.follow import IDLE_POLL_S, POLL_S, Follower
from nntui.tui.monitor import MonitorScreen
from nntui.tui.widgets import FollowingLog

RUNS = Path(__file__).parent / "fixtures" / "runs"


def counted(method, calls: list[str]):
    """`method`, noting `Class.method` in `calls` at each call."""

    def call(self, *args, **kwargs):
        calls.append(f"{type(self).__name__}.{method.__name__}")
        return method(self, *args, **kwargs)

    return call


async def test_a_frame_with_nothing_new_updates_no_widget_and_a_note_only_the_log(monkeypatch):
    app = create_app(mode="show", runs_dir=RUNS, run_dir=RUNS / "digits-mlp-complete")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.state.ended is not None, what="the end record")
        await pilot.pause(1.0)  # past the charts' catch-up (they take new data at most twice a second)
        screen.view.draw(screen.state, screen.header_text(), "")  # whatever a late timer had left
        calls: list[str] = []
        for cls, name in ((Static, "update"), (LineChart, "set_spec"), (SparkRow, "set_values"), (ProgressBar, "update"), (FollowingLog, "write")):
            monkeypatch.setattr(cls, name, counted(getattr(cls, name), calls))
        view = screen.view
        view.draw(screen.state, screen.header_text(), "")
        assert calls == []
        screen.state.note("a line from the monitor")
        view.draw(screen.state, screen.header_text(), "")
        assert calls == ["FollowingLog.write"]


def test_the_follower_backs_off_while_nothing_comes_and_not_after(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("")
    posted: list[object] = []
    follower = Follower(tmp_path, posted.append)
    pauses = []
    for _ in range(8):
        assert follower.poll()
        pauses.append(follower.pause_s())
    assert pauses[0] == POLL_S and pauses[-1] == IDLE_POLL_S
    assert pauses == sorted(pauses)
    with metrics.open("a") as out:
        out.write(json.dumps({"event": "step", "time": 1.0, "step": 1, "epoch": 1, "loss": 1.0, "lr": 0.1,
                              "grad_norm": 1.0, "samples_per_s": 10.0}) + "\n")
    assert follower.poll() and posted
    assert follower.pause_s() == POLL_S
    for _ in range(8):
        follower.poll()
    follower.wake()  # a command was answered: its record is expected now
    assert follower.pause_s() == POLL_S
