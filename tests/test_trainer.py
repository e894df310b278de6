"""The trainer in-process: reproducibility, commands at step boundaries, resume, divergence."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
import torch

from nntui.data import build_data
from nntui.engine import checkpoints
from nntui.engine.control import Command, Controls
from nntui.engine.events import ControlApplied, EpochEnded, RunEnded, StepLogged
from nntui.engine.optim import LRSchedule, current_lr
from nntui.engine.trainer import Trainer
from nntui.models import build_model

CPU = torch.device("cpu")


def make_trainer(cfg, tmp_path: Path | None = None, controls: Controls | None = None, events=None,
                 on_divergence: str = "stop") -> tuple[Trainer, list]:
    torch.manual_seed(cfg.train.seed)
    data = build_data(cfg, CPU, Path("/nonexistent"))
    model = build_model(cfg.model, data.input_shape, data.num_outputs)
    events = [] if events is None else events
    ckpt = tmp_path / "checkpoints" if tmp_path else None
    return Trainer(cfg, data, model, CPU, events.append, controls, ckpt, on_divergence=on_divergence), events


def epochs_of(events):
    return [e for e in events if isinstance(e, EpochEnded)]


def strip_time(event):
    return {k: v for k, v in event.__dict__.items() if k not in ("time", "epoch_s")} if hasattr(event, "__dict__") \
        else {f: getattr(event, f) for f in event.__dataclass_fields__ if f not in ("time", "epoch_s")}


def run_with_snapshots(cfg, tmp_path):
    """Train `cfg` to the end, copying the weights at every epoch end: (trainer, end, events, epoch -> weights)."""
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    events: list = []

    def sink(event):
        events.append(event)
        if isinstance(event, EpochEnded):
            snapshots[event.epoch] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    trainer, _ = make_trainer(cfg, tmp_path, events=events)
    trainer.emit = sink
    return trainer, trainer.run(), events, snapshots


def test_same_seed_same_metrics_twice(small_digits):
    cfg = small_digits()
    a, events_a = make_trainer(cfg)
    a.run()
    b, events_b = make_trainer(cfg)
    b.run()
    assert [strip_time(e) for e in epochs_of(events_a)] == [strip_time(e) for e in epochs_of(events_b)]
    assert len(epochs_of(events_a)) == 3
    other, events_c = make_trainer(small_digits("train.seed=1"))
    other.run()
    assert strip_time(epochs_of(events_c)[0]) != strip_time(epochs_of(events_a)[0])


def test_classification_reaches_good_accuracy_and_reports_test_metrics(small_digits):
    trainer, events = make_trainer(small_digits("train.epochs=8"))
    end = trainer.run()
    assert end.status == "completed" and end.epoch == 8
    assert max(e.val_acc for e in epochs_of(events)) > 0.9
    assert all(0 < e.epoch_s < 60 for e in epochs_of(events))
    assert end.test_acc is not None and end.test_acc > 0.85 and end.test_mae is None
    steps = [e for e in events if isinstance(e, StepLogged)]
    assert [s.step for s in steps][:3] == [5, 10, 15] and all(s.grad_norm > 0 for s in steps)


def test_regression_reports_mae_and_r2():
    from nntui.config import load_config

    cfg = load_config("diabetes-mlp", ["train.epochs=30", "early_stopping.enabled=false"])
    trainer, events = make_trainer(cfg)
    end = trainer.run()
    last = epochs_of(events)[-1]
    assert last.val_acc is None and last.val_mae is not None and 0.0 < last.val_r2 < 1.0
    assert end.test_mae is not None and end.test_r2 is not None and end.test_acc is None


def test_pause_lr_resume_stop_at_step_boundaries(small_digits, tmp_path):
    controls = Controls()
    events: list = []
    trainer, _ = make_trainer(small_digits("train.epochs=50"), tmp_path, controls, events)
    replies: list = []
    controls.submit(Command("pause", source="tui", reply=lambda ok, msg: replies.append(msg)))
    thread = threading.Thread(target=trainer.run)
    thread.start()
    try:
        for _ in range(200):
            if replies:
                break
            threading.Event().wait(0.02)
        steps_while_paused = sum(isinstance(e, StepLogged) for e in events)
        threading.Event().wait(0.3)
        assert sum(isinstance(e, StepLogged) for e in events) == steps_while_paused  # nothing trains
        controls.submit(Command("lr", "2.5e-4", "ctl"))
        controls.submit(Command("resume", source="ctl"))
        for _ in range(500):
            if sum(isinstance(e, StepLogged) for e in events) > 2:
                break
            threading.Event().wait(0.02)
    finally:
        controls.submit(Command("stop", source="ctl"))
        thread.join(30)
    assert replies == ["paused at step 0"]
    actions = [(e.action, e.source) for e in events if isinstance(e, ControlApplied)]
    assert actions == [("pause", "tui"), ("lr", "ctl"), ("resume", "ctl"), ("stop", "ctl")]
    assert all(e.lr == pytest.approx(2.5e-4) for e in events if isinstance(e, StepLogged))
    end = events[-1]
    assert isinstance(end, RunEnded) and end.status == "stopped" and end.test_loss is None
    saved = checkpoints.load(tmp_path / "checkpoints" / "last.pt")
    assert saved["progress"]["step"] == end.step  # the stop checkpoint is the very last state


def run_to_end(cfg, tmp_path, stop_at_step=None):
    controls = Controls()
    trainer, events = make_trainer(cfg, tmp_path, controls)
    if stop_at_step is not None:
        def after_step(_optimizer, _args, _kwargs):  # the stop arrives during step `stop_at_step`
            if trainer.progress.step == stop_at_step:
                controls.submit(Command("stop", "SIGTERM", "signal"))
        trainer.optimizer.register_step_post_hook(after_step)
    return trainer, trainer.run(), events


@pytest.mark.parametrize("stop_at", [7, 36, 50])
def test_stopped_and_resumed_run_equals_an_uninterrupted_one(small_digits, tmp_path, stop_at):
    cfg = small_digits()  # dropout 0.1 and a plateau schedule: RNG and scheduler state matter
    whole, whole_end, whole_events = run_to_end(cfg, tmp_path / "whole")
    _, first_end, first_events = run_to_end(cfg, tmp_path / "parts", stop_at_step=stop_at)
    assert first_end.status == "stopped" and first_end.step == stop_at
    resumed, events = make_trainer(cfg, tmp_path / "parts")
    resumed.resume_from(tmp_path / "parts" / "checkpoints" / "last.pt")
    end = resumed.run()
    assert end.status == "completed" and end.step == whole_end.step
    assert events[0].resumed_from == stop_at
    joined = [strip_time(e) for e in epochs_of(first_events) + epochs_of(events)]
    assert joined == [strip_time(e) for e in epochs_of(whole_events)]
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert end.test_loss == whole_end.test_loss


def test_divergence_stops_with_status_diverged_and_keeps_the_last_good_checkpoint(small_digits, tmp_path):
    trainer, events = make_trainer(small_digits("optim.lr=10", "optim.name='sgd'", "model.init='normal'",
                                                "train.epochs=20"), tmp_path)
    end = trainer.run()
    assert end.status == "diverged" and "non-finite" in end.error or "became" in end.error
    good = checkpoints.load(tmp_path / "checkpoints" / "last.pt")
    assert all(torch.isfinite(t).all() for t in good["model"].values())


def test_divergence_in_pause_mode_restores_and_waits(small_digits, tmp_path):
    controls = Controls()
    trainer, events = make_trainer(small_digits("optim.lr=10", "optim.name='sgd'", "train.epochs=20"),
                                   tmp_path, controls, on_divergence="pause")
    thread = threading.Thread(target=trainer.run)
    thread.start()
    for _ in range(500):
        if any(isinstance(e, ControlApplied) and e.source == "divergence" for e in events):
            break
        threading.Event().wait(0.02)
    assert trainer.paused
    note = next(e for e in events if isinstance(e, ControlApplied) and e.source == "divergence")
    assert "restored from" in note.message and "last.pt" in note.message
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    controls.submit(Command("stop", source="tui"))
    thread.join(30)
    assert events[-1].status == "stopped"


def test_early_stopping_restores_best_weights(small_digits, tmp_path):
    cfg = small_digits("train.epochs=60", "early_stopping.patience=2", "early_stopping.restore_best=true",
                       "optim.lr=0.01", "schedule.name='constant'")
    trainer, events = make_trainer(cfg, tmp_path)
    end = trainer.run()
    assert end.status == "early_stopped" and end.epoch < 60
    assert end.best == min(e.val_loss for e in epochs_of(events))
    best = checkpoints.load(tmp_path / "checkpoints" / "best.pt")
    for name, tensor in best["model"].items():
        assert torch.equal(tensor, trainer.model.state_dict()[name])
    assert int(best["progress"]["epoch"]) - 1 == end.best_epoch


def test_grad_clip_bounds_the_update(small_digits):
    trainer, events = make_trainer(small_digits("train.grad_clip=0.001", "optim.name='sgd'", "optim.lr=1.0",
                                                "train.epochs=1"))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.run()
    steps = trainer.progress.step
    moved = math.sqrt(sum(((p.detach() - b) ** 2).sum().item() for p, b in zip(trainer.model.parameters(), before)))
    assert moved <= 1.0 * 0.001 * steps * 1.001


def test_best_weights_are_those_of_the_best_epoch(small_digits, tmp_path):
    """Several improvements reuse one buffer for the best weights: what is restored and saved must
    still be the weights as they were at the end of the best epoch, not later ones."""
    cfg = small_digits("train.epochs=12", "early_stopping.patience=3", "early_stopping.restore_best=true",
                       "optim.lr=0.05", "schedule.name='constant'")
    trainer, end, events, snapshots = run_with_snapshots(cfg, tmp_path)
    improvements = [e.epoch for e in epochs_of(events) if e.early_stop and e.early_stop.wait == 0]
    assert len(improvements) >= 2 and end.best_epoch == improvements[-1]
    expected = snapshots[end.best_epoch]
    assert any(not torch.equal(expected[k], snapshots[max(snapshots)][k]) for k in expected)  # weights moved on
    saved = checkpoints.load(tmp_path / "checkpoints" / "best.pt")["model"]
    for name, tensor in expected.items():
        assert torch.equal(saved[name], tensor), name
        assert torch.equal(trainer.best.weights[name], tensor), name


@pytest.mark.parametrize("schedule", [
    ["schedule.name='onecycle'", "optim.lr=0.01"],
    ["schedule.name='cosine'", "schedule.warmup_epochs=1"],
])
def test_per_batch_schedules_move_the_lr_within_an_epoch(small_digits, schedule):
    """onecycle and warmup act after every batch: the step records of one epoch see the LR move
    as torch's schedulers move it (the trainer skips the per-batch call only when it does nothing);
    a step record has the LR that step trained at, set after the step before it."""
    cfg = small_digits("train.epochs=2", *schedule)
    trainer, events = make_trainer(cfg)
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim.lr)
    expected = LRSchedule(reference, cfg, len(trainer.data.train))
    lrs = {0: current_lr(reference)}
    for step in range(1, len(trainer.data.train) + 1):
        expected.after_batch(step)
        lrs[step] = current_lr(reference)
    trainer.run()
    logged = [(e.step, e.lr) for e in events if isinstance(e, StepLogged) and e.epoch == 1]
    assert len(logged) > 3 and len({lr for _, lr in logged}) == len(logged)  # a new LR at every record
    assert all(lr == pytest.approx(lrs[step - 1], rel=1e-12) for step, lr in logged)


def test_validation_runs_in_evaluation_mode_and_training_in_training_mode(small_digits):
    trainer, events = make_trainer(small_digits("model.dropout=0.5", "train.epochs=2"))
    dropouts = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Dropout)]
    seen: set[tuple[bool, bool]] = set()  # (gradients on, dropout in training mode) per forward pass
    for dropout in dropouts:
        dropout.register_forward_pre_hook(lambda module, args: seen.add((torch.is_grad_enabled(), module.training)))
    checked = []

    def check_val_loss(event):
        events.append(event)
        if isinstance(event, EpochEnded):
            model, val = trainer.model, trainer.data.val
            assert model.training  # evaluation handed the model back in training mode
            model.eval()
            with torch.no_grad():
                expected = torch.nn.functional.cross_entropy(model(val.x), val.y).item()
            model.train()
            checked.append(event.val_loss == pytest.approx(expected, rel=1e-5))

    trainer.emit = check_val_loss
    assert trainer.run().status == "completed"
    assert dropouts and seen == {(True, True), (False, False)}
    assert checked == [True, True]


def test_a_completed_run_with_restore_best_is_tested_with_the_best_epochs_weights(small_digits, tmp_path):
    """Keras 3 restores the best weights at the end of training, early-stopped or not."""
    from nntui.engine.evaluate import evaluate

    # Adam at lr 0.1 makes the validation loss jump about: its best epoch comes before the last
    cfg = small_digits("train.epochs=7", "early_stopping.enabled=true", "early_stopping.patience=100",
                       "early_stopping.restore_best=true", "optim.lr=0.1", "schedule.name='constant'")
    trainer, end, events, snapshots = run_with_snapshots(cfg, tmp_path)
    assert end.status == "completed" and end.best_epoch < 7  # the best is not the last epoch
    for name, tensor in snapshots[end.best_epoch].items():
        assert torch.equal(trainer.model.state_dict()[name], tensor), name
    trainer.model.load_state_dict(snapshots[end.best_epoch])
    expected = evaluate(trainer.model, trainer.data.test.batches(0), "classification", CPU)
    assert end.test_loss == expected.loss and end.test_acc == expected.acc
    last = checkpoints.load(tmp_path / "checkpoints" / "last.pt")["model"]
    assert any(not torch.equal(last[k], snapshots[end.best_epoch][k]) for k in last)  # resumable as it was


def test_start_from_epoch_and_baseline_reach_the_trainer(small_digits):
    cfg = small_digits("train.epochs=4", "early_stopping.enabled=true", "early_stopping.patience=10",
                       "early_stopping.start_from_epoch=2", "early_stopping.baseline=0.0")
    trainer, events = make_trainer(cfg)
    trainer.run()
    statuses = [e.early_stop for e in epochs_of(events)]
    assert [s.best_epoch for s in statuses[:2]] == [None, None] and statuses[2].best_epoch == 3
    assert [s.wait for s in statuses] == [0, 0, 1, 2]  # no loss beats a baseline of 0: nothing resets wait
