"""Pilot tests of the setup screen (the real keys), and the no-torch guarantee of the app."""

from __future__ import annotations

import pytest
from conftest import assert_app_never_imports_torch, records_of
from conftest import pilot_wait_until as wait_until
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from nntui.runs import config_of_run
from nntui.tui.app import create_app
from nntui.tui.monitor import MonitorScreen
from nntui.tui.setup import FROM_RUN, SetupScreen

# ---------------------------------------------------------------------------------- no torch


def test_app_module_and_setup_screen_do_not_import_torch(tmp_path):
    assert_app_never_imports_torch("setup", tmp_path, (80, 24), """
await pilot.pause()
assert type(app.screen).__name__ == "SetupScreen"
""")


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
        assert screen.field_shown("regularization.alpha")
        assert not screen.field_shown("regularization.l1_ratio")  # only for elastic_net
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
        assert not screen.field_shown("optim.betas") and screen.field_shown("optim.eps")
        assert not screen.field_shown("regularization.alpha")  # penalty none
        await pilot.press(*["tab"] * 6)  # lr, eps, weight decay, batch size, epochs, device (betas hidden)
        assert app.focused is screen.query_one("#f-train-device", Select)
        screen.query_one("#f-regularization-penalty", Select).focus()
        await pilot.press("enter", "down", "down", "enter")  # none -> l1 -> l2
        await pilot.pause()
        assert screen.field_shown("regularization.alpha")
        await pilot.press("tab")
        assert app.focused is screen.query_one("#f-regularization-alpha", Input)
        await pilot.press(*"1e-3")
        await pilot.pause()
        config = screen.config
        chosen = (config.optim.name, config.regularization.penalty, config.regularization.alpha)
        assert chosen == ("rmsprop", "l2", 1e-3)
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
        assert not screen.field_shown("schedule.cooldown")
        assert not screen.field_shown("early_stopping.start_from_epoch")


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
        app.open_setup(config_of_run(monitor.run_dir))  # `n`: back to the form, as it was (the same config)
        await pilot.pause()
        assert app.screen is setup and setup.preset_name == "mine (yours)"
        assert not any(name.endswith(FROM_RUN) for name in setup.presets)
    (start,) = records_of(monitor.run_dir, "start")
    (end,) = records_of(monitor.run_dir, "end")
    assert start["preset"] == "mine" and monitor.run_dir.name.endswith("-mine")
    assert end["status"] == "completed" and end["epoch"] == 1


# ---------------------------------------------------------------------------------- edits, fields, devices


async def _type_into(pilot, field: Input, text: str) -> None:
    field.focus()
    await pilot.pause()
    field.select_all()
    await pilot.press(*text)
    await pilot.pause()


async def test_edits_survive_moving_the_preset_cursor_and_are_marked(tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        table = screen.query_one("#presets", DataTable)
        lr = screen.query_one("#f-optim-lr", Input)
        assert screen.check_action("reset_preset", ()) is None  # nothing to undo: dimmed in the footer
        await _type_into(pilot, lr, "0.02")
        assert screen.check_action("reset_preset", ())
        await pilot.press("escape", "up")  # back to the list, and to diabetes-mlp
        await pilot.pause()
        assert screen.preset_name == "diabetes-mlp" and lr.value == "0.01"
        shown = [str(table.get_row_at(row)[0]) for row in range(table.row_count)]
        assert "digits-mlp *" in shown and "diabetes-mlp" in shown
        await pilot.press("down")
        await pilot.pause()
        assert screen.preset_name == "digits-mlp" and lr.value == "0.02"
        assert screen.config is not None and screen.config.optim.lr == 0.02
        await pilot.press("ctrl+r")  # undo this preset's edits
        await pilot.pause()
        assert lr.value == "0.001" and "digits-mlp" not in screen.edits
        assert str(table.get_row_at(table.cursor_row)[0]) == "digits-mlp"


SCHEDULE_SETTINGS = {
    "constant": {"schedule.warmup_epochs"},
    "step": {"schedule.step_size", "schedule.gamma", "schedule.warmup_epochs"},
    "exponential": {"schedule.gamma", "schedule.warmup_epochs"},
    "plateau": {"schedule.factor", "schedule.patience", "schedule.min_delta", "schedule.cooldown",
                "schedule.min_lr", "schedule.warmup_epochs"},
    "cosine": {"schedule.t_max", "schedule.min_lr", "schedule.warmup_epochs"},
    "onecycle": {"schedule.max_lr"},
}
OPTIMIZER_SETTINGS = {"sgd": set(), "momentum": {"optim.momentum"}, "nesterov": {"optim.momentum"},
                      "adagrad": {"optim.eps"}, "rmsprop": {"optim.eps"}, "adam": {"optim.betas", "optim.eps"},
                      "adamw": {"optim.betas", "optim.eps"}}


def _shown_of(screen, prefix: str, always: set[str]) -> set[str]:
    from nntui.tui.formfields import FIELDS

    return {f.key for f in FIELDS if f.key.startswith(prefix) and screen.field_shown(f.key)} - always


async def test_each_schedule_and_optimizer_shows_only_its_own_settings(tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        schedule = screen.query_one("#f-schedule-name", Select)
        schedule.focus()
        await pilot.press("enter", "up", "up", "enter")  # plateau -> exponential -> step, from the keyboard
        await pilot.pause()
        assert schedule.value == "step"
        for name, settings in SCHEDULE_SETTINGS.items():
            schedule.value = name
            await pilot.pause()
            assert _shown_of(screen, "schedule.", {"schedule.name"}) == settings, name
        optimizer = screen.query_one("#f-optim-name", Select)
        for name, settings in OPTIMIZER_SETTINGS.items():
            optimizer.value = name
            await pilot.pause()
            assert _shown_of(screen, "optim.", {"optim.name", "optim.lr", "optim.weight_decay", "optim.impl"}) == settings, name


async def test_the_chosen_schedules_settings_reach_the_config(tmp_path):
    """Typed into the fields the step schedule shows; gamma left empty is the schedule's own
    default, and follows a change of schedule; a hidden field never blocks Start."""
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#f-schedule-name", Select).value = "step"
        await pilot.pause()
        gamma = screen.query_one("#f-schedule-gamma", Input)
        assert gamma.value == "" and gamma.placeholder == "0.1"
        await _type_into(pilot, screen.query_one("#f-schedule-step-size", Input), "7")
        await _type_into(pilot, screen.query_one("#f-schedule-warmup-epochs", Input), "2")
        config = screen.config
        assert (config.schedule.name, config.schedule.step_size, config.schedule.gamma) == ("step", 7, 0.1)
        assert config.schedule.warmup_epochs == 2
        await _type_into(pilot, screen.query_one("#f-schedule-step-size", Input), "x")
        assert screen.config is None
        screen.query_one("#f-schedule-name", Select).value = "exponential"
        await pilot.pause()
        assert screen.config is not None and screen.config.schedule.gamma == 0.95  # the bad step size is hidden
        assert gamma.placeholder == "0.95"


async def test_the_two_patiences_are_named_apart(tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)):
        screen = app.screen

        def label_of(key: str) -> str:
            row = screen.query_one(f"#row-f-{key.replace('.', '-').replace('_', '-')}")
            return str(row.query_one(Label).render())

        assert label_of("schedule.patience") == "plateau patience"
        assert label_of("early_stopping.patience") == "stop patience"
        assert screen.field_shown("schedule.patience") and screen.field_shown("early_stopping.patience")


async def test_a_device_the_machine_lacks_is_flagged_before_start(tmp_path, monkeypatch):
    from nntui.tui import setup

    monkeypatch.setattr(setup, "probe_devices", lambda cancelled: setup.Devices(cuda_count=0, mps=False))
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.devices is not None, 10, "the device probe")
        device = screen.query_one("#f-train-device", Select)
        row = screen.query_one("#row-f-train-device")
        device.focus()
        await pilot.press("enter", "down", "down", "enter")  # auto -> cpu -> cuda
        await pilot.pause()
        assert device.value == "cuda"
        assert row.has_class("-flagged") and screen.query_one("#start", Button).disabled
        assert "no CUDA device" in str(screen.query_one("#form-error", Label).render())
        await pilot.press("enter", "down", "enter")  # -> mps
        await pilot.pause()
        assert device.value == "mps" and row.has_class("-flagged")
        await pilot.press("enter", "up", "up", "enter")  # -> cpu
        await pilot.pause()
        assert device.value == "cpu" and not row.has_class("-flagged")
        assert not screen.query_one("#start", Button).disabled


def test_device_problems_name_what_the_machine_has():
    from nntui.tui.devices import Devices

    assert Devices().problem("cpu") == Devices().problem("auto") == ""
    assert "no CUDA device" in Devices().problem("cuda")
    assert Devices(cuda_count=2).problem("cuda:1") == ""
    assert "2 CUDA device(s)" in Devices(cuda_count=2).problem("cuda:2")
    assert "MPS" in Devices(cuda_count=1).problem("mps") and Devices(mps=True).problem("mps") == ""


def test_the_torch_probe_agrees_with_torch():
    import torch

    from nntui.tui.devices import devices_from_torch, devices_without_torch

    found = devices_from_torch()
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert found is not None and found.cuda_count == cuda
    quick = devices_without_torch()
    assert quick is None or quick == found  # what the file system settles, torch says too


# ---------------------------------------------------------------------------------- the app's flows


async def test_focused_field_and_open_lists_are_visible_and_clear_of_the_footer(tmp_path):
    """At 80x24 every select's open list has a border, lies inside the screen and never over the
    footer; the focused field's label is lit."""
    from textual.widgets import Footer
    from textual.widgets._select import SelectOverlay

    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        footer = screen.query_one(Footer).region
        selects = [select for select in screen.query(Select) if select.parent.display]
        assert len(selects) >= 6
        for select in selects:
            select.focus()
            await pilot.pause()
            label = select.parent.query_one(Label)
            assert label.styles.background != screen.query_one("#row-f-optim-lr Label").styles.background
            await pilot.press("enter")
            await pilot.pause()
            overlay = select.query_one(SelectOverlay)
            assert select.expanded and overlay.styles.border_top[0] != ""
            region = overlay.region
            assert region.height >= 3 and not region.overlaps(footer), (select.id, region, footer)
            assert screen.region.contains_region(region), (select.id, region)
            await pilot.press("escape")
            await pilot.pause()


def _skip_if_machine_may_have_cuda():
    from nntui.tui.devices import devices_without_torch

    if devices_without_torch() is None:
        pytest.skip("this machine may have a CUDA device: the run would start")


@pytest.mark.slow
async def test_a_run_that_fails_to_start_comes_back_to_setup_with_its_error_and_the_edits(tmp_path, monkeypatch):
    _skip_if_machine_may_have_cuda()
    from nntui.tui import setup

    monkeypatch.setattr(setup, "probe_devices", lambda cancelled: None)  # not known: the child finds out
    app = create_app(mode="setup", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await _type_into(pilot, screen.query_one("#f-optim-lr", Input), "0.02")
        await pilot.press("escape", "up")  # another preset's edit is kept too
        await _type_into(pilot, screen.query_one("#f-train-epochs", Input), "3")
        await pilot.press("escape", "down")
        screen.query_one("#f-train-device", Select).value = "cuda"
        await pilot.pause()
        await pilot.press("escape", "enter")  # enter on the preset starts it
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), 10, "the monitor")
        await wait_until(pilot, lambda: app.screen is screen, 60, "the setup screen again")
        failed = str(screen.query_one("#start-failed", Label).render())
        assert "did not start" in failed and "no such CUDA device" in failed and "\n" not in failed
        assert screen.query_one("#f-optim-lr", Input).value == "0.02"
        assert screen.query_one("#f-train-device", Select).value == "cuda"
        assert screen.edits["diabetes-mlp"]["train.epochs"] == "3"
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


async def test_open_setup_prefills_the_form_with_a_runs_config(tmp_path):
    from nntui.config import load_config

    config = load_config("digits-mlp", ["optim.lr=0.0123", "schedule.name=step", "schedule.step_size=7",
                                        "train.epochs=3", "train.log_interval_s=0"])
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_setup(config, error="nntui: something went wrong")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SetupScreen) and screen.preset_name == "digits-mlp (last run)"
        table = screen.query_one("#presets", DataTable)
        assert str(table.get_row_at(0)[0]) == "digits-mlp (last run)" and table.cursor_row == 0
        assert screen.query_one("#f-optim-lr", Input).value == "0.0123"
        assert screen.query_one("#f-schedule-step-size", Input).value == "7"
        assert screen.config == config  # keys the form has no field for (log_interval_s) kept too
        assert str(screen.query_one("#start-failed", Label).render()).endswith("something went wrong")
        await pilot.press("down")  # away and back: the run's settings are still there
        await pilot.pause()
        await pilot.press("up")
        await pilot.pause()
        assert screen.config == config


def test_config_of_run_reads_its_config_toml(tmp_path):
    from nntui.config import ConfigError, load_config

    config = load_config("diabetes-mlp", ["optim.lr=0.02"])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text(config.to_toml())
    assert config_of_run(tmp_path / "run") == config
    with pytest.raises(ConfigError, match="cannot read its config.toml"):
        config_of_run(tmp_path / "missing")


@pytest.mark.slow
async def test_continue_run_resumes_an_ended_run_for_more_epochs(tmp_path):
    from conftest import run_cli

    done = run_cli("run", "digits-mlp", "--headless", "--epochs", "1", "--name", "first", "--runs-dir",
                   str(tmp_path / "runs"), "--set", "train.log_interval_s=0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "runs" / "first"
    app = create_app(mode="show", runs_dir=tmp_path / "runs", run_dir=run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        ended = app.screen
        app.continue_run(run_dir, 2)
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor is not ended and monitor.mode == "run"
        assert ended not in app.screen_stack
        assert monitor.child.resume_dir == run_dir.absolute()
        await wait_until(pilot, lambda: not monitor.child.running, 90, "the resumed run to end")
    starts, (end,) = records_of(run_dir, "start"), records_of(run_dir, "end")[-1:]
    assert len(starts) == 2 and starts[1]["resumed_from"] is not None
    assert end["status"] == "completed" and end["epoch"] == 2


async def test_open_setup_from_a_shown_run_takes_the_monitors_place(tmp_path):
    """`n` from `nntui show RUN` (or `nntui run`): the setup screen replaces the monitor, with the
    run's settings; starting from it puts a monitor over it again."""
    from pathlib import Path

    run_dir = Path(__file__).parent / "fixtures" / "runs" / "diabetes-mlp-complete"
    app = create_app(mode="show", runs_dir=tmp_path, run_dir=run_dir)
    started = []
    async with app.run_test(size=(80, 24)) as pilot:
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        app.open_setup(config_of_run(run_dir))
        await pilot.pause()
        setup = app.screen
        assert isinstance(setup, SetupScreen) and monitor not in app.screen_stack
        assert setup.preset_name == "diabetes-mlp (last run)" and setup.config == config_of_run(run_dir)
        setup.on_start = started.append  # what Start hands on, without launching a run
        await pilot.press("enter")
        await pilot.pause()
    assert started == [config_of_run(run_dir)]


@pytest.mark.slow
async def test_a_run_from_the_command_line_that_fails_to_start_stays_on_its_monitor(tmp_path):
    """`nntui run PRESET` (no setup screen below): the monitor shows the failure, as before."""
    _skip_if_machine_may_have_cuda()
    from nntui.config import load_config

    config = load_config("digits-mlp", ["train.device=cuda"])
    app = create_app(mode="run", runs_dir=tmp_path / "runs", config=config)
    async with app.run_test(size=(80, 24)) as pilot:
        monitor = app.screen
        await wait_until(pilot, lambda: monitor.child_code is not None, 60, "the child to exit")
        await pilot.pause()
        assert app.screen is monitor and monitor.state.status.startswith("failed")


def test_the_torch_probe_gives_up_when_cancelled():
    import time

    from nntui.tui.devices import devices_from_torch

    began = time.monotonic()
    assert devices_from_torch(cancelled=lambda: time.monotonic() - began > 0.2) is None
    assert time.monotonic() - began < 30  # it did not wait for torch's import (generous)


# ---------------------------------------------------------------------------------- where augmentation runs


async def _choose(pilot, select: Select, value: str) -> None:
    """`value` in the select of `data.augment.on`, from the keyboard: open it, move to the option, enter."""
    from nntui.tui.formfields import AUGMENT_PLACES as options

    select.focus()
    await pilot.press("enter")
    moves = options.index(value) - options.index(select.value)
    await pilot.press(*(["down"] * moves if moves > 0 else ["up"] * -moves), "enter")
    await pilot.pause()
    assert select.value == value


async def test_augment_on_is_in_the_form_only_for_a_preset_that_augments(tmp_path):
    app = create_app(mode="setup", runs_dir=tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        assert screen.preset_name == "digits-mlp" and not screen.field_shown("data.augment.on")
        names = list(screen.presets)
        await pilot.press(*["up"] * (names.index("digits-mlp") - names.index("cifar10-vgg")))
        await pilot.pause()
        assert screen.preset_name == "cifar10-vgg" and screen.field_shown("data.augment.on")
        augment_on = screen.query_one("#f-data-augment-on", Select)
        assert augment_on.value == "auto"
        await _choose(pilot, augment_on, "workers")
        config = screen.config
        assert config is not None and config.data.augment.on == "workers"
        assert config.data.augment.rotation == 15.0  # the rest of the preset's augmentation as it was
        assert screen.edits["cifar10-vgg"]["data.augment.on"] == "workers"
        await pilot.press("escape", *["down"] * (names.index("digits-mlp") - names.index("cifar10-vgg")))
        await pilot.pause()
        assert screen.preset_name == "digits-mlp" and not screen.field_shown("data.augment.on")


AUGMENTED = MINE.replace('name = "mine"', 'name = "augmented"') + "[data.augment]\nrotation = 10.0\n"


@pytest.mark.slow
async def test_a_run_started_from_the_form_augments_where_the_form_says(tmp_path, monkeypatch):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "augmented.toml").write_text(AUGMENTED)
    monkeypatch.chdir(tmp_path)
    app = create_app(mode="setup", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 40)) as pilot:
        setup = app.screen
        await pilot.press(*["up"] * list(setup.presets).index("digits-mlp"))
        await pilot.pause()
        assert setup.preset_name == "augmented (yours)" and setup.field_shown("data.augment.on")
        await _choose(pilot, setup.query_one("#f-data-augment-on", Select), "workers")
        await pilot.press("escape", "enter")  # enter on the preset starts it
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await wait_until(pilot, lambda: not monitor.child.running, 90, "the run to end")
    assert config_of_run(monitor.run_dir).data.augment.on == "workers"
    (start,) = records_of(monitor.run_dir, "start")
    (end,) = records_of(monitor.run_dir, "end")
    assert start["augment_on"] == "workers" and end["status"] == "completed"


def test_the_preset_summary_names_only_what_its_model_kind_uses():
    from nntui.config import load_config
    from nntui.tui.setup import model_summary

    assert model_summary(load_config("digits-mlp").model) == "mlp [128, 64] relu"
    assert model_summary(load_config("cifar10-resnet18").model) == "resnet18"
    assert model_summary(load_config("cifar10-vgg").model).startswith("vgg ")
