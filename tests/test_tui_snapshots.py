"""Snapshot tests (pytest-textual-snapshot) of the setup screen and the monitor.

The monitor replays recorded run directories; every time it shows comes from record times, so
the pictures do not depend on the wall clock. Update with `pytest --snapshot-update` after an
intended change, and look at the SVGs before committing them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nntui.tui.app import create_app
from nntui.tui.charts import ChartsPane

RUNS = Path(__file__).parent / "fixtures" / "runs"
SIZES = [(80, 24), (120, 40), (200, 50)]


def replayed(until: str):
    """A run_before hook: wait until the monitor has replayed the run into the given status."""

    async def run_before(pilot) -> None:
        screen = pilot.app.screen
        deadline = time.monotonic() + 10
        while screen.state.status != until:
            assert time.monotonic() < deadline, f"status stayed {screen.state.status!r}"
            await pilot.pause(0.05)
        await pilot.pause(0.8)  # the charts take new data at most twice a second
        charts = screen.query_one(ChartsPane)
        while not charts.settled:
            assert time.monotonic() < deadline + 10, "the charts did not catch up"
            await pilot.pause(0.05)
        log = screen.query_one("#log")
        while log.scroll_y < log.max_scroll_y:  # the log follows its last line
            assert time.monotonic() < deadline, "the log did not scroll to its end"
            await pilot.pause(0.05)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_setup_screen(snap_compare, tmp_path, size):
    assert snap_compare(create_app(mode="setup", runs_dir=tmp_path), terminal_size=size)


MONITOR_CASES = {  # fixture run -> the status the monitor reaches when it has replayed it
    "digits-mlp-running": "running",
    "digits-mlp-paused": "paused",
    "digits-mlp-diverged": "diverged (paused)",
    "digits-mlp-complete": "early-stopped",
}


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
@pytest.mark.parametrize("run", list(MONITOR_CASES))
def test_monitor(snap_compare, run, size):
    app = create_app(mode="show", runs_dir=RUNS, run_dir=RUNS / run)
    assert snap_compare(app, terminal_size=size, run_before=replayed(MONITOR_CASES[run]))


def test_monitor_regression_run(snap_compare):
    app = create_app(mode="show", runs_dir=RUNS, run_dir=RUNS / "diabetes-mlp-complete")
    assert snap_compare(app, terminal_size=(120, 40), run_before=replayed("early-stopped"))


def test_quit_dialog_starts_on_leave_it_running(snap_compare):
    from nntui.tui.dialogs import QuitDialog

    wait = replayed("paused")

    async def run_before(pilot) -> None:
        await wait(pilot)
        await pilot.app.push_screen(QuitDialog("digits-mlp-paused"))
        await pilot.pause(0.2)

    app = create_app(mode="show", runs_dir=RUNS, run_dir=RUNS / "digits-mlp-paused")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def two_runs_selected(pilot) -> None:
    """The runs screen with its first two rows selected: overlay, legend, diff and summaries."""
    from nntui.tui.charts.overlay import OverlayCharts

    for key in ("space", "down", "space"):
        await pilot.press(key)
        await pilot.pause(0.1)
    overlay = pilot.app.screen.query_one(OverlayCharts)
    deadline = time.monotonic() + 10
    while len(overlay.runs) < 2:
        assert time.monotonic() < deadline, "the overlay did not take the selected runs"
        await pilot.pause(0.05)
    await pilot.pause(0.5)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_runs_screen(snap_compare, monkeypatch, size):
    # the fixtures' recorded pids belong to no run here, whatever process has that number now
    monkeypatch.setattr("nntui.runs.pid_alive", lambda pid: False)
    relative = RUNS.relative_to(Path.cwd()) if RUNS.is_relative_to(Path.cwd()) else RUNS  # the title shows it
    app = create_app(mode="runs", runs_dir=relative)
    assert snap_compare(app, terminal_size=size, run_before=two_runs_selected)
