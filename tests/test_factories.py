"""The user's own model and data in a preset (issue 15, point 1): `model.factory`, `data.factory`.

A factory that cannot be imported or called, raises, or returns what does not fit is one line naming
the preset key, exit 2, no run directory. What works trains like a built-in preset, resumes, and is
shown by `nntui presets show`.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ROOT, records, run_cli

from nntui.config import ConfigError, load_config
from nntui.runner import RunRequest, run_headless

FAST = {"OMP_NUM_THREADS": "1"}  # small models on a shared CPU: threads only wait for each other

MODEL_PY = """
from torch import nn

def build(width=16, classes=10, inputs=64):
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, classes))

def regression(inputs=4, column=True):
    head = [nn.Linear(inputs, 1)] + ([] if column else [nn.Flatten(0)])
    return nn.Sequential(*head)
"""

DATA_PY = """
import torch
from torch.utils.data import Dataset, TensorDataset

def _tensors(samples, task, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(samples, 4, generator=generator)
    if task == "regression":
        return inputs, inputs.sum(dim=1)
    return inputs, (inputs[:, 0] > 0).long() + 2 * (inputs[:, 1] > 0).long()

class Pairs(Dataset):  # declares no `targets`: nntui reads them sample by sample to count the classes
    def __init__(self, inputs, labels):
        self.inputs, self.labels = inputs, labels
    def __len__(self):
        return len(self.inputs)
    def __getitem__(self, index):
        return self.inputs[index], self.labels[index].item()

def make(splits=1, kind="tensors", task="classification", samples=200):
    def one(seed):
        inputs, targets = _tensors(samples, task, seed)
        if kind == "dataset":
            return Pairs(inputs, targets)
        if kind == "tensordataset":
            return TensorDataset(inputs, targets)
        if kind == "images":
            return inputs.reshape(-1, 1, 2, 2), targets
        if kind == "numpy":
            return inputs.numpy(), targets.numpy()
        return inputs, targets
    made = tuple(one(seed) for seed in range(splits))
    return made[0] if splits == 1 else made
"""


def write_project(folder: Path, preset: str) -> Path:
    """model.py, data.py and a preset `p.toml` in `folder`; the preset's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(MODEL_PY)
    (folder / "data.py").write_text(DATA_PY)
    path = folder / "p.toml"
    path.write_text(textwrap.dedent(preset))
    return path


CUSTOM_BOTH = """
    task = "classification"
    [data]
    dataset = "custom"
    factory = "data.py:make"
    batch_size = 16
    [model]
    kind = "custom"
    factory = "model.py:build"
    [model.args]
    classes = 4
    inputs = 4
    [train]
    epochs = 2
    log_interval_s = 0
"""


def run_in_process(tmp_path: Path, preset: Path, sets: list[str], capsys) -> tuple[int, list[str], Path]:
    """The runner in this process: exit code, stderr lines, the run dir it was to make."""
    run_dir = tmp_path / "runs" / "r"
    code = run_headless(RunRequest(load_config(str(preset), sets), run_dir, tmp_path / "data"))
    return code, capsys.readouterr().err.strip().splitlines(), run_dir


# --------------------------------------------------------------------------- errors: one line, exit 2


@pytest.mark.parametrize("sets, expected", [
    (["model.factory=missing.py:build"], "model.factory: no such file"),
    (["model.factory=nntui_no_such_module_x:build"], "model.factory: no module named 'nntui_no_such_module_x'"),
    (["model.factory=model.py:nothing"], "model.factory: "),  # named below: has no 'nothing'
    (["model.factory=broken.py:build"], "model.factory: cannot import"),
    (["model.factory=values.py:NUMBER"], "model.factory: "),
    (["model.args.oops=1"], "model.factory: build(...) raised TypeError"),
    (["model.factory=values.py:not_a_module"], "returned a str, not a torch.nn.Module"),
    (["model.args.classes=3"], "classification needs outputs (batch, classes) with classes >= 4"),
    (["model.args.inputs=5"], "the model fails on a batch of the training data"),
    (["model.factory=model.py:regression", "model.args={}"], "classification needs outputs (batch, classes)"),
    (["data.factory=data.py:missing"], "data.factory: "),
    (["data.args.splits=4"], "data.factory: returned 4 items"),
    (["data.factory=values.py:not_a_module"], "data.factory: the train split is a str"),
    (["data.args.task='regression'"], "data.factory: classification needs integer class ids"),
    (["data.factory=values.py:raises"], "data.factory: raises(...) raised RuntimeError: no data today"),
    (["data.factory=values.py:empty"], "data.factory: the training split has no samples"),
    (["data.factory=values.py:failing"], "the train Dataset fails to give a sample: ZeroDivisionError"),
    (["data.factory=values.py:unpaired"], "a sample of the train Dataset is a Tensor; expected a pair"),
    (["data.augment.hflip=true"], "data.augment: needs the training split as image tensors (N, C, H, W)"),
    (["model.kind=cnn", "model.factory=''", "model.args={}"], "model.kind cnn: needs images"),
])
def test_every_factory_problem_is_one_line_exit_2_and_no_run_dir(tmp_path, capsys, monkeypatch, sets, expected):
    preset = write_project(tmp_path / "project", CUSTOM_BOTH)
    monkeypatch.chdir(tmp_path / "project")  # --set names files from the current directory
    (tmp_path / "project" / "broken.py").write_text("def build(:\n")
    (tmp_path / "project" / "values.py").write_text(
        "import torch\nNUMBER = 3\ndef not_a_module(**args):\n    return 'model'\n"
        "def raises():\n    raise RuntimeError('no data today')\n"
        "def empty():\n    return torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)\n"
        "class Samples(torch.utils.data.Dataset):\n    def __init__(self, sample):\n        self.sample = sample\n"
        "    def __len__(self):\n        return 10\n    def __getitem__(self, index):\n"
        "        return self.sample(index)\n"
        "def failing():\n    return Samples(lambda index: 1 / 0)\n"
        "def unpaired():\n    return Samples(lambda index: torch.zeros(4))\n")
    code, lines, run_dir = run_in_process(tmp_path, preset, sets, capsys)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("nntui: error: ") and expected in lines[0], lines
    assert not run_dir.exists() and not run_dir.parent.exists()
    if "nothing" in sets[0]:
        assert "has no 'nothing'" in lines[0]
    if "NUMBER" in sets[0]:
        assert "is not callable (it is a int)" in lines[0]


@pytest.mark.parametrize("source, expected", [
    ("def build(:\n", "model.factory: cannot import"),  # a syntax error in the user's file
    ("from torch import nn\ndef build(**args):\n    raise ValueError('width must be even')\n",
     "model.factory: build(...) raised ValueError: width must be even"),
])
def test_a_broken_model_factory_from_the_command_line_is_one_line_exit_2(tmp_path, source, expected):
    preset = write_project(tmp_path, CUSTOM_BOTH)
    (tmp_path / "model.py").write_text(source)
    result = run_cli("run", str(preset), "--headless", cwd=tmp_path, env=FAST, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("sets, expected", [
    (["model.kind=custom"], 'model.factory: model.kind = "custom" needs a factory'),
    (["data.dataset=custom"], 'data.factory: data.dataset = "custom" needs a factory'),
    (["model.factory=model.py:build"], 'model.factory: is used only with model.kind = "custom"'),
    (["data.args.samples=3"], 'data.args: is used only with data.dataset = "custom"'),
    (["model.kind=custom", "model.factory=model.py"], "model.factory: must be"),
    (["model.kind=custom", "model.factory=a b:c"], "model.factory: must be"),
])
def test_a_factory_key_that_does_not_fit_is_refused_with_the_configuration(sets, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_config("digits-mlp", sets)


def test_custom_data_is_not_refused_for_either_task_nor_for_image_models():
    custom = ["data.dataset=custom", "data.factory=pkg.data:make"]
    assert load_config("digits-mlp", custom + ["task=regression", "early_stopping.monitor=val_r2"]).task == "regression"
    assert load_config("digits-mlp", custom + ["model.kind=cnn", "data.augment.rotation=10"]).model.kind == "cnn"
    assert load_config("digits-mlp", ["model.kind=custom", "model.factory=pkg.models:Net.create"]).model.kind == "custom"


# --------------------------------------------------------------------------- where a factory's file is


def test_a_relative_factory_file_is_relative_to_the_preset_and_saved_absolute(tmp_path, monkeypatch):
    preset = write_project(tmp_path / "project", CUSTOM_BOTH)
    monkeypatch.chdir(tmp_path)  # elsewhere: the preset's folder counts, not the current directory
    config = load_config(str(preset))
    assert config.model.factory == f"{tmp_path / 'project' / 'model.py'}:build"
    assert config.data.factory == f"{tmp_path / 'project' / 'data.py'}:make"
    assert 'factory = "' + str(tmp_path / "project" / "model.py") in config.to_toml()
    given = load_config("digits-mlp", ["model.kind=custom", "model.factory=here/model.py:build"])
    assert given.model.factory == f"{tmp_path / 'here' / 'model.py'}:build"  # --set: from the current directory
    assert load_config("digits-mlp", ["model.kind=custom", "model.factory=pkg.mod:build"]).model.factory == "pkg.mod:build"


def test_a_file_factory_imports_its_siblings(tmp_path, capsys, monkeypatch):
    preset = write_project(tmp_path, CUSTOM_BOTH)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "layers_of_mine.py").write_text("WIDTH = 8\n")
    (tmp_path / "model.py").write_text(MODEL_PY + "\nimport layers_of_mine\n"
                                       "def sibling(**args):\n    return build(width=layers_of_mine.WIDTH, **args)\n")
    code, lines, run_dir = run_in_process(tmp_path, preset, ["model.factory=model.py:sibling", "train.epochs=1"],
                                          capsys)
    assert code == 0, lines
    assert (run_dir / "metrics.jsonl").is_file()
    assert str(tmp_path) not in sys.path  # the file's folder was on the path only while it loaded


def test_a_module_factory_is_imported_from_the_current_directory(tmp_path, capsys, monkeypatch):
    write_project(tmp_path / "mypkg", CUSTOM_BOTH)
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "mypkg", raising=False)
    sets = ["model.factory=mypkg.model:build", "data.factory=mypkg.data:make", "train.epochs=1"]
    code, lines, run_dir = run_in_process(tmp_path, tmp_path / "mypkg" / "p.toml", sets, capsys)
    assert code == 0, lines
    assert [record["event"] for record in records(run_dir)][-1] == "end"


# --------------------------------------------------------------------------- the splits it returns


@pytest.mark.parametrize("splits, kind, task, expected_sizes", [
    (1, "tensors", "classification", (128, 32, 40)),  # test held out (0.2), then val (0.2 of the rest)
    (2, "tensors", "classification", (160, 200, 40)),    # test held out of train, val given
    (3, "tensors", "regression", (200, 200, 200)),
    (1, "dataset", "classification", (128, 32, 40)),
    (3, "dataset", "regression", (200, 200, 200)),
    (2, "tensordataset", "classification", (160, 200, 40)),
])
def test_the_splits_returned_and_those_made_from_them(tmp_path, splits, kind, task, expected_sizes):
    from nntui.data import build_data

    preset = write_project(tmp_path, CUSTOM_BOTH)
    config = load_config(str(preset), [f"data.args.splits={splits}", f"data.args.kind='{kind}'",
                                       f"data.args.task='{task}'", f"task={task}", "model.kind=mlp",
                                       "model.args={}", "model.factory=''", "schedule.name=constant",
                                       "early_stopping.enabled=false"])
    data = build_data(config, torch.device("cpu"), tmp_path / "data")
    sizes = (data.train.num_samples, data.val.num_samples, data.test.num_samples)
    assert sizes == expected_sizes
    assert data.input_shape == (4,)
    assert (data.num_outputs, data.class_names) == ((4, ("0", "1", "2", "3")) if task == "classification" else (1, ()))
    inputs, targets = next(iter(data.train.batches(0)))
    assert inputs.dtype == torch.float32 and inputs.shape[1:] == (4,)
    if task == "classification":
        assert targets.dtype == torch.int64 and targets.dim() == 1
    else:
        assert targets.dtype == torch.float32 and targets.shape[1:] == (1,)
    if kind == "tensors":  # train-only statistics: the training split is standardized
        train_inputs = data.train.x
        assert train_inputs.mean(0).abs().max() < 1e-4
        assert (train_inputs.std(0, unbiased=False) - 1).abs().max() < 1e-3


@pytest.mark.parametrize("splits, kind", [(1, "numpy"), (2, "dataset"), (3, "tensordataset")])
def test_a_custom_model_trains_on_each_kind_of_split(tmp_path, capsys, splits, kind):
    preset = write_project(tmp_path, CUSTOM_BOTH)
    sets = [f"data.args.splits={splits}", f"data.args.kind='{kind}'", "train.epochs=1"]
    code, lines, run_dir = run_in_process(tmp_path, preset, sets, capsys)
    assert code == 0, lines
    (start,) = [record for record in records(run_dir) if record["event"] == "start"]
    (end,) = [record for record in records(run_dir) if record["event"] == "end"]
    assert end["status"] == "completed" and 0 <= end["test_acc"] <= 1
    assert start["train_size"] + start["val_size"] + start["test_size"] == {1: 200, 2: 400, 3: 600}[splits]


def test_a_built_in_image_model_trains_on_custom_images_with_augmentation(tmp_path, capsys):
    preset = write_project(tmp_path, CUSTOM_BOTH)
    sets = ["data.args.kind='images'", "model.kind=cnn", "model.factory=''", "model.args={}", "model.hidden=[4]",
            "data.augment.hflip=true", "train.epochs=1"]
    code, lines, run_dir = run_in_process(tmp_path, preset, sets, capsys)
    assert code == 0, lines
    (start,) = [record for record in records(run_dir) if record["event"] == "start"]
    assert start["train_size"] == 128


def test_a_regression_model_with_one_output_per_sample_trains(tmp_path, capsys, monkeypatch):
    preset = write_project(tmp_path, CUSTOM_BOTH)
    monkeypatch.chdir(tmp_path)
    sets = ["task=regression", "data.args.task='regression'", "model.factory=model.py:regression",
            "model.args={}", "model.args.column=false", "train.epochs=1"]
    code, lines, run_dir = run_in_process(tmp_path, preset, sets, capsys)
    assert code == 0, lines
    end = [record for record in records(run_dir) if record["event"] == "end"][0]
    assert end["status"] == "completed" and end["test_r2"] > -10


# --------------------------------------------------------------------------- trained like a built-in preset


def test_a_custom_preset_trains_resumes_for_more_epochs_and_is_shown(tmp_path):
    preset = write_project(tmp_path / "project", CUSTOM_BOTH + """
        [optim]
        name = "sgd"
        lr = 0.05
        [regularization]
        penalty = "l2"
        [schedule]
        name = "step"
        step_size = 1
        [early_stopping]
        enabled = true
        patience = 50
    """.replace("\n        ", "\n"))
    result = run_cli("run", str(preset), "--headless", "--name", "mine", cwd=tmp_path, env=FAST, timeout=120)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "mine"
    assert "model.py" in (run_dir / "config.toml").read_text()
    (tmp_path / "elsewhere").mkdir()  # resumed from another directory: config.toml names the files absolutely
    result = run_cli("run", "--resume", str(run_dir), "--epochs", "4", "--headless", cwd=tmp_path / "elsewhere",
                     env=FAST, timeout=120)
    assert result.returncode == 0, result.stderr
    epochs = [record["epoch"] for record in records(run_dir) if record["event"] == "epoch"]
    assert epochs == [1, 2, 3, 4]
    lrs = [record["lr"] for record in records(run_dir) if record["event"] == "epoch"]
    assert lrs[3] < lrs[0]  # the step schedule went on after the resume
    shown = run_cli("presets", "show", str(preset), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert 'kind = "custom"' in shown.stdout and str(tmp_path / "project" / "data.py") + ':make"' in shown.stdout
    assert "[model.args]" in shown.stdout and "classes = 4" in shown.stdout


@pytest.mark.parametrize("preset, epochs", [
    ("examples/custom-model/digits-cnn.toml", 2),
    ("examples/custom-data/waves-mlp.toml", 3),
])
def test_the_examples_run_offline(tmp_path, preset, epochs):
    result = run_cli("run", str(ROOT / preset), "--headless", "--epochs", str(epochs),
                     "--set", "train.log_interval_s=0", cwd=tmp_path, env=FAST, timeout=180)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    end = [record for record in records(run_dir) if record["event"] == "end"][0]
    assert end["status"] == "completed" and end["epoch"] == epochs


# --------------------------------------------------------------------------- in the app


@pytest.mark.slow
async def test_the_app_shows_a_factory_error_as_a_run_that_did_not_start(tmp_path, monkeypatch):
    from conftest import pilot_wait_until

    from nntui.tui.app import create_app
    from nntui.tui.monitor import MonitorScreen

    write_project(tmp_path / "presets", CUSTOM_BOTH.replace("model.py:build", "model.py:nothing_here"))
    monkeypatch.chdir(tmp_path)  # ./presets/p.toml is a preset of the user's: listed first
    app = create_app(mode="setup", runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        setup = app.screen
        await pilot.press(*["up"] * list(setup.presets).index("digits-mlp"))
        await pilot.pause()
        assert setup.preset_name == "p (yours)"
        await pilot.press("enter")
        await pilot_wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), 10, "the monitor")
        await pilot_wait_until(pilot, lambda: app.screen is setup, 90, "the setup screen again")
        failed = str(setup.query_one("#start-failed").render())
        assert "did not start" in failed and "model.factory:" in failed and "has no 'nothing_here'" in failed
        assert "\n" not in failed
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
