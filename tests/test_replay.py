"""`nntui run --replay RUN`: a steered run trained again with its recorded commands at the same
steps; on the CPU its epoch records equal the original's bit for bit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import conftest
import pytest
from conftest import count_records, finish_cli, records, run_cli, start_cli, wait_until
from typer.testing import CliRunner

from nntui import runner
from nntui.channel import send_command
from nntui.cli import app
from nntui.config import load_config
from nntui.engine.control import Command, Controls
from nntui.engine.events import ControlApplied, EpochEnded, StepLogged
from nntui.engine.replay import RecordedCommand, ReplayControls, plan_from_records
from nntui.runner import RunRequest, run_headless

TIME_LIKE = {"time", "wall_s", "epoch_s", "samples_per_s", "paused_s", "message", "source", "pid", "run_name",
             "replayed_from", "path"}


def steered_run(run_dir: Path, data_dir: Path, steer: dict, epochs: int = 3, sets: tuple[str, ...] = (),
                on_divergence: str = "stop") -> None:
    """A digits-mlp run in this process whose commands come at known steps: `steer` maps an event
    (("step", N) after step N is logged, ("epoch", E) after epoch E's record, ("diverged",) after
    a divergence paused the run) to the commands submitted then, as `nntui ctl` would; the trainer
    obeys them before its next batch (or in its pause)."""
    cfg = load_config("digits-mlp", [f"train.epochs={epochs}", "train.log_interval_s=0", "train.log_every=1",
                                     *sets])
    made: list[Controls] = []

    class Recorded(Controls):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    def console(event) -> None:
        key = ("step", event.step) if isinstance(event, StepLogged) else \
            ("epoch", event.epoch) if isinstance(event, EpochEnded) else \
            ("diverged",) if isinstance(event, ControlApplied) and event.source == "divergence" else None
        for action, value in steer.get(key, ()):
            made[0].submit(Command(action, value, "ctl"))

    with pytest.MonkeyPatch.context() as patch, conftest.fresh_process_threads():
        patch.setattr(runner, "Controls", Recorded)
        code = run_headless(RunRequest(cfg, run_dir, data_dir, console=console, on_divergence=on_divergence))
    assert code == 0


def without_time(recs: list[dict], event: str) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIME_LIKE} for record in recs if record["event"] == event]


def replay(original: Path, name: str, subprocess: bool = False):
    """`nntui run --replay ORIGINAL --headless --name NAME` next to the original: in a subprocess,
    or (faster: torch is imported already) in this process; (exit code, stderr)."""
    args = ["run", "--replay", str(original), "--headless", "--name", name, "--runs-dir", str(original.parent)]
    if subprocess:
        done = run_cli(*args, cwd=original.parent.parent)
        return done.returncode, done.stderr
    with conftest.fresh_process_threads():
        result = CliRunner().invoke(app, args, env={"NNTUI_DATA_DIR": str(original.parent.parent / "data")})
    return result.exit_code, result.stderr


@pytest.fixture(scope="module")
def steered(tmp_path_factory) -> Path:
    """lr at step 10, checkpoint at step 20, lr sent while epoch 1 validated (applies at step 36,
    before epoch 2's first batch); then replayed."""
    root = tmp_path_factory.mktemp("steered")
    original = root / "runs" / "original"
    steer = {("step", 10): [("lr", 0.004)], ("step", 20): [("checkpoint", None)],
             ("epoch", 1): [("lr", 0.0005)]}
    steered_run(original, root / "data", steer)
    code, stderr = replay(original, "again", subprocess=True)
    assert code == 0, stderr
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
    from nntui.engine.events import from_record
    from nntui.tui.state_text import started_line

    assert records(steered)[0]["replayed_from"] is None
    start = records(steered.parent / "again")[0]
    assert start["replayed_from"] == "original" and start["forked_from"] is None
    assert started_line(from_record(start)).endswith(" · replaying the commands of original")
    assert json.loads((steered.parent / "again" / "summary.json").read_text())["status"] == "completed"
    assert (steered.parent / "again" / "config.toml").read_text() == (steered / "config.toml").read_text()


@pytest.mark.parametrize("when, reason", [
    (("step", 50), "stop requested ({}) at step 50"),
    (("epoch", 2), "stop requested ({}) during the test pass"),  # after the last epoch: in the test pass
])
def test_a_stopped_run_replays_to_stopped_at_the_same_step(tmp_path, when, reason):
    original = tmp_path / "runs" / "stopped"
    steered_run(original, tmp_path / "data", {when: [("lr", 0.01), ("stop", None)]}, epochs=2)
    step = 50 if when[0] == "step" else 2 * records(original)[0]["steps_per_epoch"]
    code, stderr = replay(original, "stopped-again")
    assert code == 0, stderr
    again = tmp_path / "runs" / "stopped-again"
    ends = [without_time(records(run_dir), "end")[-1] for run_dir in (original, again)]
    assert ends[0]["status"] == "stopped" and ends[0]["step"] == step
    reasons = [end.pop("reason") for end in ends]
    assert reasons == [reason.format("ctl"), reason.format("replay")]
    assert ends[1] == ends[0]
    assert without_time(records(again), "epoch") == without_time(records(original), "epoch")
    controls = [[(r["step"], r["action"]) for r in records(run_dir) if r["event"] == "control"]
                for run_dir in (original, again)]
    assert controls[1] == controls[0]


def test_a_run_steered_over_its_channel_while_paused_replays_equal(tmp_path):
    """`nntui ctl` as a user would: pause, lr, checkpoint, resume; later pause, lr, resume; stop.
    The pauses are left out of the replay; the rest comes at the same steps."""
    proc = start_cli("run", "digits-mlp", "--headless", "--epochs", "500", "--set", "train.log_interval_s=0",
                     "--set", "train.log_every=1", "--name", "by-hand", cwd=tmp_path)
    run_dir = tmp_path / "runs" / "by-hand"
    try:
        wait_until(lambda: (run_dir / "control" / "pid").is_file() or proc.poll() is not None, what="the channel")
        for action, value in [("pause", None), ("lr", 0.003), ("checkpoint", None), ("resume", None)]:
            assert send_command(run_dir, action, value).ok
        paused_at = [r["step"] for r in records(run_dir) if r["event"] == "control"][0]
        wait_until(lambda: count_records(run_dir, "step") > paused_at + 30, what="steps after the resume")
        for action, value in [("pause", None), ("lr", 0.0007), ("resume", None), ("stop", None)]:
            assert send_command(run_dir, action, value).ok
    finally:
        original = finish_cli(proc)
    assert original.returncode == 0, original.stderr
    code, stderr = replay(run_dir, "by-hand-again")
    assert code == 0, stderr
    again = tmp_path / "runs" / "by-hand-again"
    recorded = [(r["step"], r["action"]) for r in records(run_dir) if r["event"] == "control"]
    assert [action for _, action in recorded] == ["pause", "lr", "checkpoint", "resume", "pause", "lr", "resume",
                                                  "stop"]
    assert recorded[1][0] < recorded[5][0]
    assert [(r["step"], r["action"]) for r in records(again) if r["event"] == "control"] == \
        [item for item in recorded if item[1] not in ("pause", "resume")]
    assert without_time(records(again), "epoch") == without_time(records(run_dir), "epoch")
    assert without_time(records(again), "end")[-1]["step"] == without_time(records(run_dir), "end")[-1]["step"]


def test_a_run_that_diverged_and_was_resumed_with_a_lower_lr_replays_equal(tmp_path):
    original = tmp_path / "runs" / "diverged"
    steered_run(original, tmp_path / "data", {("diverged",): [("lr", 0.01), ("resume", None)]}, epochs=2,
                sets=("optim.name=sgd", "optim.lr=10", "model.init=normal"), on_divergence="pause")
    code, stderr = replay(original, "diverged-again")
    assert code == 0, stderr
    again = tmp_path / "runs" / "diverged-again"
    controls = [[(r["step"], r["action"], r["source"]) for r in records(run_dir) if r["event"] == "control"]
                for run_dir in (original, again)]
    (step, _, _), *_ = controls[0]
    assert controls[0] == [(step, "pause", "divergence"), (step, "lr", "ctl"), (step, "resume", "ctl")]
    assert controls[1] == [(step, "pause", "divergence"), (step, "lr", "replay"), (step, "resume", "replay")]
    assert without_time(records(again), "epoch") == without_time(records(original), "epoch")
    assert records(again)[-1]["status"] == "completed"


def test_a_run_without_commands_replays_plainly(tmp_path):
    original = tmp_path / "runs" / "plain"
    steered_run(original, tmp_path / "data", {}, epochs=1)
    code, stderr = replay(original, "plain-again")
    assert code == 0, stderr
    assert "no recorded commands: replaying it plainly" in stderr
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



def test_the_app_launches_a_replay_as_its_child_does_a_fork(steered):
    """`nntui run --replay RUN` on a terminal: the app's child gets RUN's config as a file and
    `--replay RUN` (ChildRun's fork_args), and trains the replay."""
    from nntui.runs import config_of_run
    from nntui.tui.launcher import ChildRun

    child = ChildRun(config_of_run(steered), steered.parent, name="from-app", fork_args=["--replay", str(steered)])
    child.start()
    assert child.wait(timeout=240) == 0, child.last_error_line()
    child.cleanup()
    again = steered.parent / "from-app"
    assert records(again)[0]["replayed_from"] == "original"
    assert without_time(records(again), "epoch") == without_time(records(steered), "epoch")
