"""The runs screen (`nntui runs` on a terminal) over recorded run directories: filter, sort,
select, overlay, diff and summary, opening a run's monitor; its table's cheap refresh; how
`nntui runs` picks the screen or the table."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_app_never_imports_torch, run_cli
from conftest import pilot_wait_until as wait_until
from rich.console import Console
from textual.widgets import DataTable, Static

from nntui.cli.runs import runs_view
from nntui.fs import RunDir
from nntui.tui import runs_screen_rows
from nntui.tui.app import create_app
from nntui.tui.charts.overlay import OverlayCharts, OverlayLegend
from nntui.tui.runs_screen import SELECTED_MARK, RunMonitorScreen, RunsScreen
from nntui.tui.runs_screen_rows import RunsRows
from nntui.tui.setup import SetupScreen

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
SIZE = (160, 50)


def copy_run(source: str, root: Path, name: str, replace: dict[str, str] | None = None) -> Path:
    """A copy of a recorded run under `root`, its config.toml's text edited by `replace`."""
    run_dir = root / name
    shutil.copytree(FIXTURES / source, run_dir)
    config = run_dir / RunDir.CONFIG
    text = config.read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    return run_dir


@pytest.fixture
def runs_root(tmp_path) -> Path:
    """Three finished runs: adam and sgd (digits, differing in optimizer and LR), and a regression run."""
    root = tmp_path / "runs"
    root.mkdir()
    copy_run("digits-mlp-complete", root, "adam")
    copy_run("digits-mlp-complete", root, "sgd", {'name = "adam"': 'name = "sgd"', "lr = 0.001": "lr = 1e-05"})
    copy_run("diabetes-mlp-complete", root, "diabetes", {"lr = 0.01": "lr = 0.002"})
    return root


def shown_names(screen: RunsScreen) -> list[str]:
    table = screen.query_one("#runs-table", DataTable)
    return [table.get_row_at(index)[1] for index in range(table.row_count)]


def text_of(renderable, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def diff_text(screen: RunsScreen) -> str:
    return text_of(screen.query_one("#runs-diff", Static).content)


async def move_to(pilot, screen: RunsScreen, name: str) -> None:
    table = screen.query_one("#runs-table", DataTable)
    table.move_cursor(row=table.get_row_index(name), animate=False)
    await pilot.pause()


async def test_the_table_lists_the_runs_with_a_column_per_setting_that_differs(runs_root):
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE):
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert sorted(shown_names(screen)) == ["adam", "diabetes", "sgd"]
        keys = [key for key, _ in screen.rows.columns]
        assert keys[:6] == ["name", "preset", "status", "epochs", "best", "wall_s"]
        assert {"optim.name", "optim.lr", "task", "data.dataset"} <= set(keys)
        assert "optim.eps" not in keys  # the same in all three
        assert keys.count("name") == 1 and "description" not in keys  # the preset's: its column says it
        table = screen.query_one("#runs-table", DataTable)
        row = dict(zip(["selected", *keys], table.get_row("sgd")))
        assert (row["preset"], row["status"], row["optim.name"], row["optim.lr"]) == (
            "digits-mlp", "early_stopped", "sgd", "1e-05")


async def test_slash_filters_by_text_in_any_column_and_escape_clears_it(runs_root):
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash", *"sgd")
        await pilot.pause()
        assert shown_names(screen) == ["sgd"]  # only in its optim.name column
        await pilot.press("enter")  # keeps the filter, back to the table
        await pilot.pause()
        assert shown_names(screen) == ["sgd"] and app.focused is screen.query_one("#runs-table")
        assert "filter: 'sgd' (1 of 3)" in str(screen.query_one("#runs-status", Static).content)
        await pilot.press("slash", "ctrl+u", *"REGRESSION")  # any case
        await pilot.pause()
        assert shown_names(screen) == ["diabetes"]
        await pilot.press("escape")
        await pilot.pause()
        assert sorted(shown_names(screen)) == ["adam", "diabetes", "sgd"] and screen.filter_text == ""


async def test_s_sorts_by_the_next_column_S_reverses_and_numbers_sort_as_numbers(runs_root):
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("s")  # newest first -> by name
        await pilot.pause()
        assert screen.sort_by == "name" and shown_names(screen) == ["adam", "diabetes", "sgd"]
        await pilot.press("S")
        await pilot.pause()
        assert shown_names(screen) == ["sgd", "diabetes", "adam"]
        assert "sort: name ▼" in str(screen.query_one("#runs-status", Static).content)
        screen.sort("optim.lr")  # as a click on its header does: 1e-05 < 0.001 < 0.002, though not as text
        await pilot.pause()
        assert shown_names(screen) == ["sgd", "adam", "diabetes"]
        table = screen.query_one("#runs-table", DataTable)
        assert str(table.columns["optim.lr"].label) == "optim.lr ▲"  # type: ignore[index]


async def test_clicking_a_header_sorts_by_it_and_again_reverses(runs_root):
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#runs-table", DataTable)
        column = table.columns["optim.lr"]  # type: ignore[index]
        table.post_message(DataTable.HeaderSelected(table, column.key, table.get_column_index("optim.lr"), column.label))
        await pilot.pause()
        assert (screen.sort_by, screen.descending) == ("optim.lr", False)
        column = table.columns["optim.lr"]  # type: ignore[index]
        table.post_message(DataTable.HeaderSelected(table, column.key, table.get_column_index("optim.lr"), column.label))
        await pilot.pause()
        assert shown_names(screen) == ["diabetes", "adam", "sgd"] and screen.descending


async def test_space_selects_runs_overlays_them_and_diffs_only_what_differs(runs_root):
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#runs-table", DataTable)
        overlay = screen.query_one(OverlayCharts)
        assert "space selects runs" in diff_text(screen)
        await move_to(pilot, screen, "sgd")
        await pilot.press("space")
        await move_to(pilot, screen, "adam")
        await pilot.press("space")
        await pilot.pause()
        assert screen.selected == ["sgd", "adam"]
        assert table.get_row("sgd")[0] == table.get_row("adam")[0] == SELECTED_MARK
        assert table.get_row("diabetes")[0] == ""
        assert [run.name for run in overlay.runs] == ["sgd", "adam"]  # in selection order
        legend = overlay.query_one(OverlayLegend)
        assert [text for text, _ in legend.entries] == ["sgd", "adam"]
        assert len({slot for _, slot in legend.entries}) == 2  # a colour each
        text = diff_text(screen)
        settings = text.split("\n\n")[0]
        assert "optim.name" in settings and "optim.lr" in settings and "1e-05" in settings
        # the same in these two, though not in all three runs: left out
        for same in ("task", "data.dataset", "optim.eps", "model.hidden"):
            assert same not in settings, same
        assert text.count("val loss") == 2 and text.count("val acc") == 2  # a summary per run
        await move_to(pilot, screen, "sgd")
        await pilot.press("space")  # unselected
        await pilot.pause()
        assert screen.selected == ["adam"] and table.get_row("sgd")[0] == ""
        assert [text for text, _ in legend.entries] == ["adam"]
        assert "select another run to compare with" in diff_text(screen)


async def test_the_summary_gives_best_final_min_max_and_the_epoch_of_the_best(runs_root):
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await move_to(pilot, screen, "diabetes")
        await pilot.press("space")
        await pilot.pause()
        records = [json.loads(line) for line in (runs_root / "diabetes" / "metrics.jsonl").read_text().splitlines()]
        epochs = [r for r in records if r["event"] == "epoch"]
        best = min(epochs, key=lambda r: r["val_loss"])
        val_loss_row = next(line for line in diff_text(screen).splitlines() if line.startswith("val loss"))
        assert val_loss_row.split()[2:] == [
            f"{best['val_loss']:.4g}", str(best["epoch"]), f"{epochs[-1]['val_loss']:.4g}",
            f"{best['val_loss']:.4g}", f"{max(r['val_loss'] for r in epochs):.4g}"]
        assert "val R²" in diff_text(screen) and "acc" not in diff_text(screen)


async def test_enter_opens_a_finished_runs_monitor_read_only_and_escape_comes_back(runs_root):
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen
        await move_to(pilot, runs, "sgd")
        await pilot.press("enter")
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, RunMonitorScreen) and monitor.mode == "show"
        assert monitor.run_dir == runs_root / "sgd"
        await wait_until(pilot, lambda: monitor.state.ended is not None, 10, "the records read")
        assert "(read-only)" in monitor.header_text()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is runs and app.monitor is None and app.is_running


async def test_enter_attaches_to_a_live_run(runs_root):
    live = copy_run("digits-mlp-running", runs_root, "live")
    control = live / "control"
    control.mkdir(mode=0o700)
    (control / "pid").write_text(str(os.getpid()))  # a process that is alive: the run counts as live
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen
        assert runs.query_one("#runs-table", DataTable).get_row("live")[3] == "running"
        await move_to(pilot, runs, "live")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RunMonitorScreen) and app.screen.mode == "attach"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is runs


async def test_a_run_that_grows_is_updated_and_a_new_run_appears(runs_root):
    app = create_app(mode="runs", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = screen.query_one("#runs-table", DataTable)
        epochs_column = 1 + [key for key, _ in screen.rows.columns].index("epochs")
        before = int(table.get_row("adam")[epochs_column])
        metrics = runs_root / "adam" / "metrics.jsonl"
        lines = metrics.read_text().splitlines()
        last_epoch = json.loads(next(line for line in reversed(lines) if '"event":"epoch"' in line))
        grown = {**last_epoch, "epoch": last_epoch["epoch"] + 1, "step": last_epoch["step"] + 1}
        with open(metrics, "a") as out:  # as a run appends (an end record before it: a resumed run's)
            out.write(json.dumps(grown) + "\n")
        await wait_until(pilot, lambda: table.get_row("adam")[epochs_column] == str(before + 1), 10, "the epoch")
        copy_run("digits-mlp-complete", runs_root, "newcomer")
        await wait_until(pilot, lambda: "newcomer" in shown_names(screen), 10, "the new run listed")
        assert table.get_row("adam")[epochs_column] == str(before + 1)


def test_refresh_reads_only_what_was_appended_to_the_runs_that_changed(runs_root, monkeypatch):
    rows = RunsRows(runs_root)
    rows.load()
    reads = []
    real_scan = runs_screen_rows.scan_appended
    monkeypatch.setattr(runs_screen_rows, "scan_appended",
                        lambda path, events, start: reads.append((path.parent.name, start)) or real_scan(path, events, start))
    assert rows.refresh() == set() and reads == []
    metrics = runs_root / "sgd" / "metrics.jsonl"
    size = metrics.stat().st_size
    epochs = rows.rows["sgd"].info.epochs
    last_epoch = json.loads(next(line for line in reversed(metrics.read_text().splitlines()) if '"event":"epoch"' in line))
    with open(metrics, "a") as out:
        out.write(json.dumps({**last_epoch, "epoch": last_epoch["epoch"] + 1}) + "\n")
    assert rows.refresh() == {"sgd"} and reads == [("sgd", size)]  # from where the last read ended
    assert rows.rows["sgd"].info.epochs == epochs + 1


def test_a_running_run_whose_process_is_gone_is_read_again(runs_root):
    live = copy_run("digits-mlp-running", runs_root, "live")
    (live / "control").mkdir(mode=0o700)
    (live / "control" / "pid").write_text(str(os.getpid()))
    rows = RunsRows(runs_root)
    rows.load()
    assert rows.rows["live"].info.status == "running"
    (live / "control" / "pid").write_text("0")  # the process went: its files did not change
    assert rows.refresh() == set()  # looked at every LIVE_CHECK_S, not at every refresh
    assert rows.refresh(now=time.monotonic() + runs_screen_rows.LIVE_CHECK_S) == {"live"}
    assert rows.rows["live"].info.status == "crashed"


async def test_r_on_the_setup_screen_opens_the_runs_screen_and_escape_goes_back(runs_root):
    app = create_app(mode="setup", runs_dir=runs_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen) and sorted(shown_names(app.screen)) == ["adam", "diabetes", "sgd"]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)


# ---------------------------------------------------------------------------------- the command


@pytest.mark.parametrize(("plain", "as_json", "terminal", "view"), [
    (False, False, True, "screen"), (False, False, False, "table"), (True, False, True, "table"),
    (False, True, True, "json"), (False, True, False, "json")])
def test_nntui_runs_shows_the_screen_only_on_a_terminal_without_plain_or_json(plain, as_json, terminal, view):
    assert runs_view(plain, as_json, terminal) == view


def test_piped_nntui_runs_still_prints_the_plain_table(runs_root, tmp_path):
    result = run_cli("runs", "--runs-dir", str(runs_root), cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["name", "preset", "status", "epochs", "best", "wall", "time"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["adam", "diabetes", "sgd"]


def test_nntui_runs_on_a_terminal_opens_the_runs_screen(runs_root):
    pid, fd = pty.fork()
    if pid == 0:  # the child: `nntui runs` with the pty as its terminal
        os.environ.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
        os.execv(sys.executable, [sys.executable, "-m", "nntui", "runs", "--runs-dir", str(runs_root)])
    output = b""
    deadline = time.monotonic() + 60
    try:
        while b"3 runs under" not in output and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                output += os.read(fd, 65536)
        assert b"3 runs under" in output, output[-2000:]
        os.write(fd, b"q")
        status = None
        while status is None and time.monotonic() < deadline:
            try:  # keep reading: a full pty would block its exit
                if select.select([fd], [], [], 0.2)[0]:
                    os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                pass
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
        assert status is not None and os.waitstatus_to_exitcode(status) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_the_runs_screen_never_imports_torch():
    assert_app_never_imports_torch("runs", FIXTURES, (120, 40), """
await pilot.pause()
await pilot.press("space", "space", "enter")  # two runs overlaid and diffed, a monitor opened
await pilot.pause(0.5)
assert type(app.screen).__name__ == "RunMonitorScreen"
""")
