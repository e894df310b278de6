"""`nntui run --replay RUN`: a steered run trained again with its recorded commands at the same
steps; on the CPU its epoch records equal the original's bit for bit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import records, run_cli
from typer.testing import CliRunner

from nntui import runner
from nntui.cli import app
from nntui.config import load_config
from nntui.engine.control import Command, Controls
from nntui.engine.events import EpochEnded, StepLogged
from nntui.engine.replay import RecordedCommand, ReplayControls, plan_from_records
from nntui.runner import RunRequest, run_headless

TIME_LIKE = {"time", "wall_s", "epoch_s", "samples_per_s", "paused_s", "message", "source", "pid", "run_name",
             "replayed_from", "path"}


def steered_run(run_dir: Path, data_dir: Path, steer: dict, epochs: int = 3) -> None:
    """A digits-mlp run in this process whose commands come at known steps: `steer` maps an event
    (("step", N) after step N is logged, ("epoch", E) after epoch E's record) to the commands
    submitted then, as `nntui ctl` would; the trainer obeys them before its next batch."""
    cfg = load_config("digits-mlp", [f"train.epochs={epochs}", "train.log_interval_s=0", "train.log_every=1"])
    made: list[Controls] = []

    class Recorded(Controls):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    def console(event) -> None:
        key = ("step", event.step) if isinstance(event, StepLogged) else \
            ("epoch", event.epoch) if isinstance(event, EpochEnded) else None
        for action, value in steer.get(key, ()):
            made[0].submit(Command(action, value, "ctl"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "Controls", Recorded)
        code = run_headless(RunRequest(cfg, run_dir, data_dir, console=console))
    assert code == 0


def without_time(recs: list[dict], event: str) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIME_LIKE} for record in recs if record["event"] == event]


def replay(original: Path, cwd: Path, name: str, *more: str):
    return run_cli("run", "--replay", str(original), "--headless", "--name", name, *more, cwd=cwd)


@pytest.fixture(scope="module")
def steered(tmp_path_factory) -> Path:
    """lr at step 10, checkpoint at step 20, lr sent while epoch 1 validated (applies at step 36,
    before epoch 2's first batch); then replayed."""
    root = tmp_path_factory.mktemp("steered")
    original = root / "runs" / "original"
    steer = {("step", 10): [("lr", 0.004)], ("step", 20): [("checkpoint", None)],
             ("epoch", 1): [("lr", 0.0005)]}
    steered_run(original, root / "data", steer)
    done = replay(original, root, "again")
    assert done.returncode == 0, done.stderr
    return original


def test_a_steered_run_replays_to_equal_epoch_records(steered):
    again = steered.parent / "again"
    original_epochs, replayed_epochs = without_time(records(steered), "epoch"), without_time(records(again), "epoch")
    assert len(original_epochs) == 3
    assert replayed_epochs == original_epochs
    assert without_time(records(again), "step") == without_time(records(steered), "step")


def test_the_replays_control_records_have_the_same_steps_and_values(steered):
    steps_per_epoch = records(steered)[0]["steps_per_epoch"]
    expected = [(10, "lr", 0.004), (20, "checkpoint", None), (steps_per_epoch, "lr", 0.0005)]
    for run_dir in (steered, steered.parent / "again"):
        controls = [(r["step"], r["action"], r["value"]) for r in records(run_dir) if r["event"] == "control"]
        assert controls == expected
    assert {r["source"] for r in records(steered.parent / "again") if r["event"] == "control"} == {"replay"}


def test_the_replays_start_record_names_the_original(steered):
    assert records(steered)[0]["replayed_from"] is None
    start = records(steered.parent / "again")[0]
    assert start["replayed_from"] == "original" and start["forked_from"] is None
    assert json.loads((steered.parent / "again" / "summary.json").read_text())["status"] == "completed"
    assert (steered.parent / "again" / "config.toml").read_text() == (steered / "config.toml").read_text()


def test_a_stopped_run_replays_to_stopped_at_the_same_step(tmp_path):
    original = tmp_path / "runs" / "stopped"
    steered_run(original, tmp_path / "data", {("step", 50): [("lr", 0.01), ("stop", None)]})
    done = replay(original, tmp_path, "stopped-again")
    assert done.returncode == 0, done.stderr
    again = tmp_path / "runs" / "stopped-again"
    ends = [without_time(records(run_dir), "end")[-1] for run_dir in (original, again)]
    assert ends[0]["status"] == "stopped" and ends[0]["step"] == 50
    reasons = [end.pop("reason") for end in ends]
    assert reasons == ["stop requested (ctl) at step 50", "stop requested (replay) at step 50"]
    assert ends[1] == ends[0]
    assert without_time(records(again), "epoch") == without_time(records(original), "epoch")


def test_a_run_without_commands_replays_plainly(tmp_path):
    original = tmp_path / "runs" / "plain"
    steered_run(original, tmp_path / "data", {}, epochs=1)
    done = replay(original, tmp_path, "plain-again")
    assert done.returncode == 0, done.stderr
    assert "no recorded commands: replaying it plainly" in done.stderr
    assert without_time(records(tmp_path / "runs" / "plain-again"), "epoch") == \
        without_time(records(original), "epoch")


# ---------------------------------------------------------------- refusals (no training)


@pytest.fixture
def recorded_run(tmp_path) -> Path:
    """A run directory as written: its configuration and a start record."""
    run_dir = tmp_path / "runs" / "recorded"
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(load_config("digits-mlp").to_toml())
    (run_dir / "metrics.jsonl").write_text(json.dumps({"event": "start", "preset": "digits-mlp",
                                                       "resumed_from": None, "forked_from": None}) + "\n")
    return run_dir


@pytest.mark.parametrize("args, expected", [
    (["--fork", "recorded"], "cannot go with --resume or --fork"),
    (["--resume", "recorded"], "cannot go with --resume or --fork"),
    (["--epochs", "5"], "--epochs cannot change it"),
    (["--set", "optim.lr=0.1"], "--set cannot change it"),
    (["--name", "recorded"], "already exists"),
    (["diabetes-mlp"], "leave out PRESET"),
])
def test_replay_refuses_what_would_not_reproduce_the_run(recorded_run, args, expected):
    result = CliRunner().invoke(app, ["run", "--replay", "recorded", "--headless",
                                      "--runs-dir", str(recorded_run.parent), *args])
    assert result.exit_code == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(path.name for path in recorded_run.parent.iterdir()) == ["recorded"]


def test_replay_refuses_a_fork_and_a_missing_run(recorded_run):
    fork = recorded_run.parent / "a-fork"
    shutil.copytree(recorded_run, fork)
    (fork / "metrics.jsonl").write_text(json.dumps({"event": "start", "forked_from": {"run": "p", "step": 9}}) + "\n")
    for run, expected in (("a-fork", "is a fork of p"), ("nothing", "--replay: no run 'nothing'")):
        result = CliRunner().invoke(app, ["run", "--replay", run, "--headless", "--runs-dir", str(recorded_run.parent)])
        assert result.exit_code == 2 and expected in result.stderr, result.stderr


# ---------------------------------------------------------------- the plan and its delivery


def control(step: int, action: str, value=None, source: str = "ctl") -> dict:
    return {"event": "control", "step": step, "action": action, "value": value, "source": source}


def test_the_plan_keeps_lr_checkpoint_stop_and_skips_pauses():
    plan = plan_from_records("r", [
        {"event": "start", "resumed_from": None}, control(3, "pause"), control(3, "lr", 0.1),
        control(3, "resume"), control(7, "checkpoint"), control(9, "lr", "nonsense"), control(12, "stop", "SIGINT")])
    assert plan.commands == (RecordedCommand(3, "lr", 0.1), RecordedCommand(7, "checkpoint"),
                             RecordedCommand(12, "stop", "SIGINT"))
    assert not plan.pauses_on_divergence


def test_the_plan_of_a_resumed_run_drops_what_its_resume_undid():
    plan = plan_from_records("r", [
        {"event": "start", "resumed_from": None}, control(4, "lr", 0.1), control(8, "lr", 0.2),
        control(9, "stop", "SIGTERM"), {"event": "start", "resumed_from": 5}, control(5, "lr", 0.3, "resume")])
    assert plan.commands == (RecordedCommand(4, "lr", 0.1), RecordedCommand(5, "lr", 0.3))


def test_the_plan_resumes_after_a_divergence_pause_only():
    plan = plan_from_records("r", [control(6, "pause", source="divergence"), control(6, "lr", 0.01),
                                   control(6, "resume"), control(9, "pause"), control(9, "resume")])
    assert plan.commands == (RecordedCommand(6, "lr", 0.01), RecordedCommand(6, "resume"))
    assert plan.pauses_on_divergence


class Standing:
    """A trainer as ReplayControls sees it: where its progress stands."""

    def __init__(self) -> None:
        self.progress = type("Progress", (), {"step": 0})()


def test_recorded_commands_are_due_at_their_step_in_order():
    controls = ReplayControls([RecordedCommand(2, "lr", 0.1), RecordedCommand(2, "checkpoint"),
                               RecordedCommand(5, "stop")])
    assert not controls.waiting  # not following a trainer yet
    trainer = Standing()
    controls.follow(trainer)
    trainer.progress.step = 1
    assert not controls.waiting and controls.drain() == []
    controls.submit(Command("pause", None, "ctl"))
    assert controls.waiting
    assert [command.action for command in controls.drain()] == ["pause"]
    trainer.progress.step = 2
    drained = controls.drain()
    assert [(c.action, c.value, c.source) for c in drained] == [("lr", 0.1, "replay"), ("checkpoint", None, "replay")]
    assert not controls.waiting and controls.pending == (RecordedCommand(5, "stop"),)

