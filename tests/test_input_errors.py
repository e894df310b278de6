"""Bad input found late (when the data is loaded) is still bad input: exit 2, one line, no run dir.

And what can be found earlier is refused with the configuration: a validation metric monitored
with no validation split.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, wait_until
from typer.testing import CliRunner

from nntui.cli import app
from nntui.config import ConfigError, load_config
from nntui.data.progress import HeldNotes

runner = CliRunner()


def assert_one_line_exit_2_no_run_dir(result, expected: str, runs: Path) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not runs.exists()


@pytest.mark.parametrize("rows, sets, expected", [
    (None, [], "csv data.csv: no such file"),
    (["a,b,y", "1,2,0", "3,oops,1", "5,6,0"], [], "csv data.csv: line 3, column 'b': 'oops' is not a number"),
    (["a,y", "1,0.5", "2,cat", "3,1.5"], ["task=regression"], "line 3, target column 'y': 'cat' is not a number"),
    (["a,y", "1,0.5", "2,1.25", "3,1.5"], [], "line 2, target column 'y': '0.5' is not a class label"),
    # the data set is read before the split is known to leave no validation sample (after a loading note)
    (["a,y", "1,0", "2,1", "3,0", "4,1"], ["data.val_split=0.1"], "data.val_split 0.1 leaves no validation"),
])
def test_a_csv_that_does_not_fit_exits_2_with_one_line_and_no_run_dir(tmp_path, rows, sets, expected):
    if rows is not None:
        (tmp_path / "data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    common = ["data.dataset=csv", "data.path=data.csv", "data.test_split=0", "schedule.name=constant"]
    overrides = [arg for override in common + sets for arg in ("--set", override)]
    result = run_cli("run", "digits-mlp", "--headless", *overrides, cwd=tmp_path, timeout=120)
    assert_one_line_exit_2_no_run_dir(result, expected, tmp_path / "runs")


def test_a_validation_split_too_small_for_the_digits_is_one_line_with_no_loading_note(tmp_path):
    # found once the digits are loaded (a split of 1797 samples that rounds to none): the error is the
    # only line (scikit-learn's data sets load with no note; others' notes are held while loading is quick)
    result = run_cli("run", "digits-mlp", "--headless", "--set", "data.val_split=0.0001", cwd=tmp_path, timeout=120)
    assert_one_line_exit_2_no_run_dir(result, "leaves no validation sample", tmp_path / "runs")


@pytest.mark.parametrize("sets, expected", [
    (["task=regression"], "--set: task: digits is a classification data set"),
    (["data.val_split=0"], "--set: early_stopping.monitor: val_loss needs a validation split, and data.val_split is 0"),
    (["data.val_split=0", "early_stopping.enabled=false"], "--set: schedule.monitor: val_loss needs a validation split"),
    (["data.val_split=0", "early_stopping.monitor=val_acc", "schedule.name=constant"],
     "--set: early_stopping.monitor: val_acc needs a validation split"),
])
def test_a_config_that_does_not_fit_its_data_is_refused_before_anything_loads(tmp_path, sets, expected):
    args = ["run", "digits-mlp", "--headless", "--runs-dir", str(tmp_path / "runs")]
    result = runner.invoke(app, args + [arg for override in sets for arg in ("--set", override)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nntui: {expected}"), result.output
    assert not (tmp_path / "runs").exists()


def test_without_a_validation_split_only_inactive_or_training_monitors_are_accepted():
    no_val = ["data.val_split=0"]
    assert load_config("digits-mlp", no_val + ["early_stopping.enabled=false", "schedule.name=step"])
    assert load_config("digits-mlp", no_val + ["early_stopping.monitor=train_loss", "schedule.monitor=train_loss"])
    with pytest.raises(ConfigError, match="schedule.monitor: val_loss needs a validation split"):
        load_config("digits-mlp", no_val + ["early_stopping.monitor=train_loss"])


# --------------------------------------------------------------------------- loading notes


def test_held_notes_of_a_quick_load_are_never_shown():
    shown: list[str] = []
    with HeldNotes(shown.append, delay_s=30.0) as note:
        note("digits: loading")
    note("after the load")
    assert shown == []


def test_held_notes_of_a_slow_load_are_shown_in_order_then_at_once():
    shown: list[str] = []
    with HeldNotes(shown.append, delay_s=0.05) as note:
        note("mnist: loading")
        note("mnist: downloading")
        wait_until(lambda: len(shown) == 2, timeout=30, what="the held notes")
        note("mnist: unpacking")
        assert shown == ["mnist: loading", "mnist: downloading", "mnist: unpacking"]
    note("too late")
    assert shown[-1] == "mnist: unpacking"


SLOW_FAILING_LOAD = """
import sys, time
import nntui.data
from nntui.data import DataError
LOAD_S = float(sys.argv[2])
def build_data(cfg, device, data_dir, progress=None):
    progress("slow: loading")
    time.sleep(LOAD_S)
    raise DataError("slow: the files are damaged")
nntui.data.build_data = build_data
from nntui.cli import main
sys.argv = ["nntui", "run", "digits-mlp", "--headless", "--runs-dir", sys.argv[1]]
main()
"""


@pytest.mark.parametrize("load_s, lines", [(0.0, ["nntui: error: slow: the files are damaged"]),
                                            (6.0, ["slow: loading", "nntui: error: slow: the files are damaged"])])
def test_the_runner_shows_a_loading_note_only_for_a_slow_load(tmp_path, load_s, lines):
    result = subprocess.run([sys.executable, "-c", SLOW_FAILING_LOAD, str(tmp_path / "runs"), str(load_s)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.splitlines() == lines, result.stderr
    assert not (tmp_path / "runs").exists()
