"""Pilot tests of the setup screen (the real keys), and the no-torch guarantee of the app."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import pilot_wait_until as wait_until
from conftest import records_of
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from nntui.tui.app import create_app
from nntui.tui.monitor import MonitorScreen
from nntui.tui.setup import SetupScreen

# ---------------------------------------------------------------------------------- no torch


def test_app_module_and_setup_screen_do_not_import_torch(tmp_path):
    code = f"""
import asyncio, sys
from pathlib import Path
from nntui.tui.app import create_app
assert "torch" not in sys.modules, "importing the app imported torch"
async def main():
    app = create_app(mode="setup", runs_dir=Path({str(tmp_path)!r}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "SetupScreen"
asyncio.run(main())
print("torch" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------------------- setup


async def test_setup_flags_a_bad_learning_rate_and_disables_start(tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, SetupScreen)
        lr_field = screen.query_one("#f-optim-lr", Input)
        start = screen.query_one("#start", Button)
        assert lr_field.value == "0.001" and not start.disabled
        await pilot.press("tab", "tab")  # presets -> optimizer -> learning rate (its text selected)
        assert app.focused is lr_field
        for bad in ("abc", "-1", "nan"):
            lr_field.select_all()
            await pilot.press(*bad)
            await pilot.pause()
            assert lr_field.value == bad
            assert lr_field.has_class("-invalid"), bad
            assert start.disabled, bad
            assert "learning rate" in str(screen.query_one("#form-error", Label).render())
        lr_field.select_all()
        await pilot.press(*"3e-4")
        await pilot.pause()
        assert not lr_field.has_class("-invalid") and not start.disabled
        assert screen.config is not None and screen.config.optim.lr == 3e-4


async def test_setup_whole_config_is_validated(tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        epochs = screen.query_one("#f-train-epochs", Input)
        epochs.focus()
        await pilot.pause()
        epochs.select_all()
        await pilot.press("0")
        await pilot.pause()
        assert screen.query_one("#start", Button).disabled
        assert screen.field_problem("train.epochs").startswith("must be between 1")


async def test_choosing_a_preset_fills_the_form(tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert screen.preset_name == "digits-mlp"
        await pilot.press("up")  # presets are sorted: diabetes-mlp is just above
        await pilot.pause()
        assert screen.preset_name == "diabetes-mlp"
        assert screen.query_one("#f-optim-lr", Input).value == "0.01"
        assert screen.query_one("#f-regularization-penalty", Select).value == "l2"
        assert screen.query_one("#f-regularization-alpha", Input).value == "0.001"
        assert not screen.query_one("#f-regularization-alpha", Input).disabled
        assert screen.query_one("#f-regularization-l1-ratio", Input).disabled  # only for elastic_net
        assert screen.query_one("#f-train-epochs", Input).value == "200"


async def test_changing_optimizer_and_penalty_from_the_keyboard(tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("tab")  # the optimizer select
        assert app.focused is screen.query_one("#f-optim-name", Select)
        await pilot.press("enter", "up", "enter")  # adam -> rmsprop, the option above it
        await pilot.pause()
        assert screen.query_one("#f-optim-name", Select).value == "rmsprop"
        alpha = screen.query_one("#f-regularization-alpha", Input)
        assert alpha.disabled  # penalty none
        await pilot.press(*["tab"] * 6)  # lr, batch size, epochs, schedule, device, penalty
        assert app.focused is screen.query_one("#f-regularization-penalty", Select)
        await pilot.press("enter", "down", "down", "enter")  # none -> l1 -> l2
        await pilot.pause()
        assert not alpha.disabled
        await pilot.press("tab")
        assert app.focused is alpha
        await pilot.press(*"1e-3")
        await pilot.pause()
        config = screen.config
        assert (config.optim.name, config.regularization.penalty, config.regularization.alpha) == ("rmsprop", "l2", 1e-3)
        assert not screen.query_one("#start", Button).disabled


async def test_keras_keys_of_plateau_and_early_stopping_are_in_the_form(tmp_path):
    """min lr, cooldown and min delta of the plateau schedule; keep best, baseline and the first
    epoch looked at of early stopping: typed in, they reach the config; an empty baseline is none."""
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert screen.query_one("#f-schedule-name", Select).value == "plateau"  # digits-mlp's
        assert screen.query_one("#f-early-stopping-baseline", Input).value == ""
        typed = {"#f-schedule-min-lr": "1e-5", "#f-schedule-cooldown": "2", "#f-schedule-min-delta": "0.01",
                 "#f-early-stopping-baseline": "0.5", "#f-early-stopping-start-from-epoch": "3"}
        for selector, text in typed.items():
            field = screen.query_one(selector, Input)
            field.focus()
            await pilot.pause()
            field.select_all()
            await pilot.press(*text)
        await pilot.pause()
        config = screen.config
        assert config is not None, str(screen.query_one("#form-error", Label).render())
        assert (config.schedule.min_lr, config.schedule.cooldown, config.schedule.min_delta) == (1e-5, 2, 0.01)
        assert (config.early_stopping.baseline, config.early_stopping.start_from_epoch) == (0.5, 3)
        baseline = screen.query_one("#f-early-stopping-baseline", Input)
        baseline.focus()
        baseline.select_all()
        await pilot.press(*"abc")
        await pilot.pause()
        assert screen.query_one("#start", Button).disabled and screen.field_problem("early_stopping.baseline")
        baseline.select_all()
        await pilot.press("backspace")
        await pilot.pause()
        assert screen.config is not None and screen.config.early_stopping.baseline is None
        screen.query_one("#f-schedule-name", Select).value = "step"
        screen.query_one("#f-early-stopping-enabled", Select).value = "off"
        await pilot.pause()
        assert screen.query_one("#f-schedule-cooldown", Input).disabled
        assert screen.query_one("#f-early-stopping-start-from-epoch", Input).disabled


# ---------------------------------------------------------------------------------- the user's own presets

MINE = """name = "mine"
description = "my quick digits"
[data]
dataset = "digits"
[optim]
lr = 0.02
[early_stopping]
enabled = false
[train]
epochs = 1
log_interval_s = 0
"""


@pytest.fixture
def user_presets(tmp_path, monkeypatch):
    """`mine` in ./presets; in $XDG_CONFIG_HOME/nntui/presets a `digits-mlp` of the user's (shadowing
    the built-in one) and a file that is no valid preset. Returns the directory the app runs in."""
    cwd = tmp_path / "project"
    (cwd / "presets").mkdir(parents=True)
    (cwd / "presets" / "mine.toml").write_text(MINE)
    config_presets = tmp_path / "xdg" / "nntui" / "presets"
    config_presets.mkdir(parents=True)
    (config_presets / "digits-mlp.toml").write_text('description = "my digits"\n[data]\ndataset = "digits"\n'
                                                    '[optim]\nlr = 0.05\n')
    (config_presets / "broken.toml").write_text('[optim]\nlr = "fast"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(cwd)
    return cwd


async def test_setup_lists_the_users_own_presets_marked_first(user_presets, tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        table = screen.query_one("#presets", DataTable)
        shown = [str(table.get_row_at(row)[0]) for row in range(table.row_count)]
        assert shown[:2] == ["mine (yours)", "digits-mlp (yours)"]
        assert "digits-mlp" in shown[2:] and "broken (yours)" not in shown and "broken" not in shown
        assert [note.title for note in app._notifications] == ["presets left out"]
        assert "broken.toml" in next(iter(app._notifications)).message
        assert screen.preset_name == "digits-mlp"  # the built-in one is still the default
        assert screen.query_one("#f-optim-lr", Input).value == "0.001"
        await pilot.press(*["up"] * shown.index("digits-mlp"))
        await pilot.pause()
        assert screen.preset_name == "mine (yours)"
        assert screen.query_one("#f-optim-lr", Input).value == "0.02"
        assert screen.query_one("#f-train-epochs", Input).value == "1"
        assert "my quick digits" in str(screen.query_one("#preset-description", Static).render())
        await pilot.press("down")
        await pilot.pause()
        assert screen.preset_name == "digits-mlp (yours)"
        assert screen.query_one("#f-optim-lr", Input).value == "0.05"
        assert str(screen.query_one("#form-error", Label).render()) == "digits-mlp (yours): ready"


@pytest.mark.slow
async def test_enter_on_a_users_preset_starts_a_run_of_it(user_presets, tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        setup = app.screen
        await pilot.press(*["up"] * list(setup.presets).index("digits-mlp"))
        await pilot.pause()
        assert setup.preset_name == "mine (yours)"
        await pilot.press("enter")
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await wait_until(pilot, lambda: not monitor.child.running, 90, "the run to end")
    (start,) = records_of(monitor.run_dir, "start")
    (end,) = records_of(monitor.run_dir, "end")
    assert start["preset"] == "mine" and monitor.run_dir.name.endswith("-mine")
    assert end["status"] == "completed" and end["epoch"] == 1
