"""`nntui run --fork RUN[@last|@best]`: a new run from another run's checkpoint, with changed
settings; the parent is left as it was, to the byte."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import records_of, run_cli
from typer.testing import CliRunner

from nntui.cli import app
from nntui.config import apply_overrides, tomllib
from nntui.data import build_data
from nntui.engine.events import ForkSource, RunStarted, from_record, to_record
from nntui.engine.fork import Fork, start_fork
from nntui.engine.trainer import Trainer
from nntui.models import build_model
from nntui.runs import config_of_run
from nntui.tui.state_text import started_line

CPU = torch.device("cpu")
EPOCH_METRICS = ("epoch", "step", "train_loss", "val_loss", "train_acc", "val_acc", "lr")


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> Path:
    """A real headless digits-mlp run of 3 epochs (never changed by a test: forks go elsewhere)."""
    cwd = tmp_path_factory.mktemp("parent")
    done = run_cli("run", "digits-mlp", "--headless", "--epochs", "3", "--name", "parent",
                   "--set", "train.log_interval_s=0", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return cwd / "runs" / "parent"


def snapshot(directory: Path) -> dict[str, tuple]:
    """Every file's and directory's content hash, mode and modification time under `directory`."""
    found = {}
    for path in sorted([directory, *directory.rglob("*")]):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        found[str(path.relative_to(directory))] = (digest, info.st_mode, info.st_mtime_ns, info.st_size)
    return found


def epoch_metrics(run_dir: Path) -> list[tuple]:
    return [tuple(record.get(key) for key in EPOCH_METRICS) for record in records_of(run_dir, "epoch")]


def test_a_fork_starts_from_the_parents_last_checkpoint_with_its_new_lr(parent, tmp_path):
    before = snapshot(parent)
    forked = run_cli("run", "--fork", f"{parent}@last", "--lr", "3e-4", "--epochs", "5", "--headless",
                     "--set", "train.log_every=1", "--name", "fork", cwd=tmp_path)
    assert forked.returncode == 0, forked.stderr
    assert snapshot(parent) == before
    fork_dir, parent_end = tmp_path / "runs" / "fork", records_of(parent, "end")[-1]
    start = records_of(fork_dir, "start")[0]
    assert start["forked_from"] == {"run": "parent", "step": parent_end["step"]}
    assert start["resumed_from"] is None and start["lr"] == 3e-4 and start["epochs"] == 5
    assert f"forked from parent at step {parent_end['step']}" in forked.stdout
    first_step = records_of(fork_dir, "step")[0]
    assert (first_step["step"], first_step["epoch"], first_step["lr"]) == (parent_end["step"] + 1, 4, 3e-4)
    assert [record["epoch"] for record in records_of(fork_dir, "epoch")] == [4, 5]
    expected = tomllib.loads((parent / "config.toml").read_text())
    expected["optim"]["lr"], expected["train"]["epochs"], expected["train"]["log_every"] = 3e-4, 5, 1
    assert tomllib.loads((fork_dir / "config.toml").read_text()) == expected
    # the same weights, optimizer state and random state: the fork trains as the parent resumed would
    copy = tmp_path / "copy"
    shutil.copytree(parent, copy)
    resumed = run_cli("run", "--resume", str(copy), "--lr", "3e-4", "--epochs", "5", "--headless", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert epoch_metrics(copy)[-2:] == epoch_metrics(fork_dir)


def test_a_fork_at_best_starts_at_the_best_checkpoints_step(parent, tmp_path):
    # best.pt of a run whose best epoch was its 2nd, not its last (the 3rd)
    other = tmp_path / "runs" / "other"
    shutil.copytree(parent, other)
    best = torch.load(other / "checkpoints" / "best.pt", weights_only=True)
    steps_per_epoch = records_of(parent, "start")[0]["steps_per_epoch"]
    best["progress"] = {"epoch": 3, "batch": 0, "step": 2 * steps_per_epoch}
    torch.save(best, other / "checkpoints" / "best.pt")
    forked = run_cli("run", "--fork", "other@best", "--epochs", "3", "--set", "train.log_every=1", "--headless",
                     "--name", "at-best", cwd=tmp_path)
    assert forked.returncode == 0, forked.stderr
    fork_dir = tmp_path / "runs" / "at-best"
    assert records_of(fork_dir, "start")[0]["forked_from"] == {"run": "other", "step": 2 * steps_per_epoch}
    assert [record["epoch"] for record in records_of(fork_dir, "epoch")] == [3]
    assert records_of(fork_dir, "step")[0]["step"] == 2 * steps_per_epoch + 1


def test_the_app_launches_a_fork_as_a_new_run_with_the_fork_source(parent, tmp_path):
    from nntui.tui.launcher import ChildRun

    parent_config = config_of_run(parent)
    config = apply_overrides(parent_config.to_dict(), "fork", ["train.epochs=4", "optim.lr=0.0005"])
    fork = Fork(parent / "checkpoints" / "last.pt", "parent", parent_config)
    child = ChildRun(config, tmp_path / "runs", name="from-app", fork_args=fork.argv())
    child.start()
    assert child.wait(timeout=120) == 0, child.last_error_line()
    child.cleanup()
    start = records_of(tmp_path / "runs" / "from-app", "start")[0]
    assert start["forked_from"] == {"run": "parent", "step": records_of(parent, "end")[-1]["step"]}
    assert start["lr"] == 0.0005 and records_of(tmp_path / "runs" / "from-app", "epoch")[0]["epoch"] == 4


def test_a_new_run_has_no_fork_source(parent):
    assert records_of(parent, "start")[0]["forked_from"] is None


@pytest.mark.parametrize("source", [ForkSource("parent", 108), None])
def test_the_fork_source_goes_through_a_record_and_back(source):
    started = RunStarted("digits-mlp", "cpu", 10, 5, 2, 2, None, forked_from=source, time=1.0)
    record = json.loads(json.dumps(to_record(started)))
    assert record["forked_from"] == (None if source is None else {"run": "parent", "step": 108})
    assert from_record(record) == started
    assert ("forked from parent at step 108" in started_line(started)) == (source is not None)


def _trainer(cfg, checkpoint_dir: Path) -> Trainer:
    torch.manual_seed(cfg.train.seed)
    data = build_data(cfg, CPU, Path("/nonexistent"))
    return Trainer(cfg, data, build_model(cfg.model, data.input_shape, data.num_outputs), CPU, lambda _: None,
                   checkpoint_dir=checkpoint_dir)


def test_the_optimizer_state_is_kept_for_the_same_optimizer_and_fresh_for_another(small_digits, tmp_path):
    parent_cfg = small_digits("train.epochs=1", "early_stopping.enabled=false")
    (tmp_path / "parent").mkdir()
    parent = _trainer(parent_cfg, tmp_path / "parent")
    assert parent.run().status == "completed"
    saved = torch.load(tmp_path / "parent" / "last.pt", weights_only=True)
    fork = Fork(tmp_path / "parent" / "last.pt", "parent", parent_cfg)

    same = _trainer(small_digits("train.epochs=2", "optim.weight_decay=0.01", "schedule.name='cosine'"), None)
    assert start_fork(same, fork) is None
    assert all(torch.equal(same.model.state_dict()[name], saved["model"][name]) for name in saved["model"])
    moments = same.optimizer.state_dict()["state"]
    assert torch.equal(moments[0]["exp_avg"], saved["optimizer"]["state"][0]["exp_avg"])
    group = same.optimizer.param_groups[0]
    assert group["weight_decay"] == 0.01 and group["lr"] == parent_cfg.optim.lr  # a new cosine, from the config's LR
    assert same.progress.step == saved["progress"]["step"] and same.forked_from.step == saved["progress"]["step"]

    other = _trainer(small_digits("train.epochs=2", "optim.name='momentum'", "optim.lr=0.05"), None)
    assert start_fork(other, fork) is None
    assert not other.optimizer.state and other.optimizer.param_groups[0]["lr"] == 0.05
    assert torch.equal(other.model.state_dict()["fc1.weight"], saved["model"]["fc1.weight"])
    assert math.isfinite(other.run().test_loss)


def test_a_fork_of_another_model_is_one_line(small_digits, tmp_path):
    parent_cfg = small_digits("train.epochs=1")
    parent = _trainer(parent_cfg, tmp_path)
    assert parent.run().status == "completed"
    wider = _trainer(small_digits("train.epochs=2", "model.hidden=[16]"), None)
    problem = start_fork(wider, Fork(tmp_path / "last.pt", "parent", parent_cfg))
    assert problem is not None and "does not fit this run" in problem and "\n" not in problem


runner = CliRunner()


@pytest.mark.parametrize("args,expected", [
    (["--fork", "no-such-run"], "--fork: no run 'no-such-run'"),
    (["--fork", "PARENT@foo"], "@foo is not a checkpoint (use RUN@last or RUN@best)"),
    (["--fork", "NOCHECKPOINT"], "has no checkpoints/last.pt to fork from"),
    (["--fork", "NOCHECKPOINT@best"], "has no checkpoints/best.pt to fork from"),
    (["--fork", "PARENT", "--set", "optim.bogus=1"], "unknown key 'bogus' in optim"),
    (["--fork", "PARENT", "--lr", "-1"], "--lr: Input should be greater than 0"),
    (["--fork", "PARENT", "--resume", "PARENT"], "--resume continues a run, --fork starts a new one"),
    (["--fork", "PARENT"], "the checkpoint of parent ends epoch 3: pass --epochs N (more than 3)"),
])
def test_a_bad_fork_is_one_line_exit_2_and_no_run_dir(parent, tmp_path, args, expected):
    (tmp_path / "nocheckpoint").mkdir()
    shutil.copy(parent / "config.toml", tmp_path / "nocheckpoint" / "config.toml")
    places = {"PARENT": str(parent), "NOCHECKPOINT": str(tmp_path / "nocheckpoint")}
    args = [arg.replace(name, place) for arg in args for name, place in [_placeholder(arg, places)]]
    before = snapshot(parent)
    result = runner.invoke(app, ["run", *args, "--headless", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.output
    assert not (tmp_path / "runs").exists() and snapshot(parent) == before


def _placeholder(arg: str, places: dict[str, str]) -> tuple[str, str]:
    """The placeholder in `arg` and the path it stands for (none: `arg` stays as it is)."""
    return next(((name, place) for name, place in places.items() if arg.startswith(name)), ("", ""))


def test_the_forks_lr_is_set_over_the_checkpoints_even_when_it_is_the_configured_one(small_digits, tmp_path):
    parent_cfg = small_digits("train.epochs=1")
    assert _trainer(parent_cfg, tmp_path).run().status == "completed"
    steered = torch.load(tmp_path / "last.pt", weights_only=True)
    steered["optimizer"]["param_groups"][0]["lr"] = 1e-4  # as `nntui ctl RUN lr 1e-4` leaves it
    torch.save(steered, tmp_path / "last.pt")
    for lr, expected in ((None, 1e-4), (parent_cfg.optim.lr, parent_cfg.optim.lr)):
        fork = _trainer(small_digits("train.epochs=2"), None)
        assert start_fork(fork, Fork(tmp_path / "last.pt", "parent", parent_cfg, lr)) is None
        assert fork.optimizer.param_groups[0]["lr"] == expected
