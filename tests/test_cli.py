"""The CLI's answers to bad input, and the commands that must not import torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nntui.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args,expected", [
    (["run", "no-such-preset", "--headless"], "unknown preset 'no-such-preset'"),
    (["run", "digits-mlp", "--headless", "--set", "optim.bogus=1"], "unknown key 'bogus' in optim"),
    (["run", "digits-mlp", "--headless", "--set", "optim.lr=-1"], "optim.lr: Input should be greater than 0"),
    (["run", "digits-mlp", "--headless", "--set", "model.activation=swish"], "model.activation"),
    (["run", "digits-mlp", "--headless", "--set", "nonsense"], "expected KEY=VALUE"),
    # an option's problem names the option as typed, not the preset key it sets
    (["run", "digits-mlp", "--headless", "--optimizer", "lion"], "nntui: --optimizer: Input should be 'sgd'"),
    (["run", "digits-mlp", "--headless", "--epochs", "0"], "nntui: --epochs: Input should be greater than or equal to 1"),
    (["run", "digits-mlp", "--headless", "--batch-size", "0"], "nntui: --batch-size: Input should be greater"),
    (["run", "digits-mlp", "--headless", "--lr", "nan"], "nntui: --lr: Input should be a finite number"),
    (["run", "digits-mlp", "--headless", "--lr", "0"], "nntui: --lr: Input should be greater than 0 (got 0.0)"),
    (["run", "digits-mlp", "--headless", "--lr", "-1"], "nntui: --lr: Input should be greater than 0 (got -1.0)"),
    (["run", "digits-mlp", "--headless", "--lr", "inf"], "nntui: --lr: Input should be a finite number"),
    (["run", "digits-mlp", "--headless", "--device", "tpu"], "nntui: --device: must be auto, cpu"),
    (["run", "digits-mlp", "--headless", "--seed", "-1"], "nntui: --seed: Input should be greater than or equal to 0"),
    (["run", "digits-mlp", "--headless", "--set", "optim.lr=2", "--lr", "0"], "nntui: --lr: Input should be greater"),
    (["run", "digits-mlp", "--headless", "--lr", "0", "--set", "optim.lr=0.5"], "nntui: --lr: Input should be greater"),
    (["run", "digits-mlp", "--headless", "--set", "early_stopping.monitor=val_r2"], "val_r2 needs task regression"),
    (["run", "digits-mlp", "--headless", "--name", "../escape"], "--name: run name '../escape'"),
    (["run", "digits-mlp", "--headless", "--name", ""], "--name: a run name cannot be empty"),
    (["run", "digits-mlp", "--headless", "--name", " "], "--name: a run name cannot be empty"),
    (["run", "--headless"], "run needs a PRESET"),
    (["run", "--headless", "--resume", "nothing-here"], "no run 'nothing-here'"),
    (["presets", "show", "nope"], "unknown preset 'nope'"),
])
def test_bad_input_is_one_line_exit_2_and_no_run_dir(tmp_path, args, expected):
    result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")] if args[0] == "run" else args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_options_of_a_resume_are_named_as_typed(tmp_path):
    from conftest import run_cli

    finished = run_cli("run", "digits-mlp", "--headless", "--epochs", "1", "--name", "done",
                       "--set", "train.log_interval_s=0", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    config = (tmp_path / "runs" / "done" / "config.toml").read_text()
    for options, expected in ((["--epochs", "0"], "nntui: --epochs: Input should be greater than or equal to 1"),
                              (["--epochs", "3", "--device", "tpu"], "nntui: --device: must be auto, cpu")):
        result = runner.invoke(app, ["run", "--resume", "done", "--headless", "--runs-dir", str(tmp_path / "runs"),
                                     *options])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(expected), result.output
    assert (tmp_path / "runs" / "done" / "config.toml").read_text() == config


@pytest.mark.parametrize("content,expected", [
    ("[optim]\nname = 'adam'\nlr = 'fast'\n", "bad.toml: optim.lr"),
    ("[optim\n", "bad.toml: not valid TOML"),
    ("[trainer]\nepochs = 3\n", "bad.toml: trainer: unknown key; allowed here: name, description, task"),
    ("[data]\ndataset = 'imagenet'\n", "bad.toml: data.dataset: Input should be 'digits'"),
    ("[data]\nval_split = 1.5\n", "bad.toml: data.val_split: Input should be less than 1"),
])
def test_bad_preset_files(tmp_path, content, expected):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    result = runner.invoke(app, ["run", str(path), "--headless", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert expected in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "runs").exists()


def test_device_that_is_missing_fails_cleanly(tmp_path):
    result = runner.invoke(app, ["run", "digits-mlp", "--headless", "--device", "cuda:7",
                                 "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "no such CUDA device" in result.output
    assert not (tmp_path / "runs").exists()


def test_presets_lists_and_shows_resolved_toml():
    from nntui.config import builtin_presets, tomllib

    listed = runner.invoke(app, ["presets"])
    assert listed.exit_code == 0
    for name in ("digits-mlp", "diabetes-mlp", "mnist-mlp", "mnist-mlp-dropout", "fashion-mnist-mlp",
                 "cifar10-vgg", "cifar10-resnet18"):
        assert name in listed.output and name in builtin_presets()
    shown = runner.invoke(app, ["presets", "show", "mnist-mlp-dropout"])
    resolved = tomllib.loads(shown.output)
    assert resolved["model"]["hidden"] == [512, 256] and resolved["model"]["dropout"] == 0.2
    assert resolved["schedule"] == {**resolved["schedule"], "name": "plateau", "factor": 0.1, "patience": 2}
    assert resolved["train"]["grad_clip"] == 0.0  # defaults filled in


@pytest.mark.parametrize("command", [["--help"], ["presets"], ["presets", "show", "digits-mlp"], ["runs"],
                                     ["run", "--help"]])
def test_quick_commands_never_import_torch(tmp_path, command):
    code = ("import sys\nfrom nntui.cli import app\n"
            f"try:\n    app({command!r}, prog_name='nntui')\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'textual', 'sklearn') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_engine_modules_never_import_textual_or_rich():
    modules = ["nntui.config", "nntui.engine.trainer", "nntui.engine.events", "nntui.engine.control",
               "nntui.engine.early_stopping", "nntui.engine.checkpoints", "nntui.engine.gradients",
               "nntui.engine.best_weights", "nntui.data", "nntui.models", "nntui.rundir", "nntui.runner",
               "nntui.channel", "nntui.runs", "nntui.fs", "nntui.ownership"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "print('UI', [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "UI []" in out.stdout, out.stdout + out.stderr


CLI_MODULES = ("nntui.cli.base", "nntui.cli.run", "nntui.cli.presets", "nntui.cli.runs", "nntui.cli.export")


def test_cli_command_modules_import_only_base_never_the_package():
    """No import cycle: `nntui.cli` imports the command modules, which import `nntui.cli.base`
    (and each other), never the package's own names; `base` imports none of them."""
    import ast
    import importlib

    for name in CLI_MODULES:
        tree = ast.parse(open(importlib.util.find_spec(name).origin, encoding="utf-8").read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "nntui.cli" not in imported, name
        if name == "nntui.cli.base":
            assert not {module for module in imported if module and module.startswith("nntui.cli")}


@pytest.mark.parametrize("first", CLI_MODULES)
def test_every_command_is_registered_whichever_cli_module_is_imported_first(first):
    code = (f"import {first}\nfrom nntui.cli import app\n"
            "print([c.name or c.callback.__name__ for c in app.registered_commands], [g.name for g in app.registered_groups])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['run', 'runs', 'attach', 'show', 'ctl', 'export'] ['presets']", out.stderr
