"""Divergence, pauses and the LR read right in the records: a diverged epoch is never the best,
a restore says where the weights came from, an epoch's `lr` is the one it trained at, and pauses
are left out of `epoch_s`, `wall_s` and the throughput (`paused_s` says how long they were)."""

from __future__ import annotations

import math
import statistics
import threading
from pathlib import Path

import pytest
import torch

from nntui.console import EtaClock, end_line
from nntui.data import build_data
from nntui.engine import checkpoints
from nntui.engine import trainer as trainer_module
from nntui.engine.control import Command, Controls
from nntui.engine.evaluate import Evaluation
from nntui.engine.events import ControlApplied, EpochEnded, RunEnded, StepLogged, from_record, to_record
from nntui.engine.trainer import Trainer
from nntui.models import build_model

CPU = torch.device("cpu")


def make_trainer(cfg, tmp_path: Path, controls: Controls, on_divergence: str = "pause") -> tuple[Trainer, list]:
    torch.manual_seed(cfg.train.seed)
    data = build_data(cfg, CPU, Path("/nonexistent"))
    model = build_model(cfg.model, data.input_shape, data.num_outputs)
    events: list = []
    return Trainer(cfg, data, model, CPU, events.append, controls, tmp_path / "checkpoints",
                   on_divergence=on_divergence), events


def wait_for(condition, timeout: float = 60.0) -> None:
    """Wait (generously) until `condition()` holds."""
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("timed out")


def run_answering_divergences(trainer: Trainer, controls: Controls, events: list, lr: float = 1e-3) -> RunEnded:
    """Run; at every divergence pause, lower the learning rate and resume. Returns the end."""
    thread = threading.Thread(target=trainer.run)
    thread.start()
    answered = 0
    try:
        while thread.is_alive():
            pauses = [e for e in events if isinstance(e, ControlApplied) and e.source == "divergence"]
            if len(pauses) > answered and trainer.paused:
                answered = len(pauses)
                controls.submit(Command("lr", lr, "tui"))
                controls.submit(Command("resume", source="tui"))
            thread.join(0.02)
    finally:
        if thread.is_alive():
            controls.submit(Command("stop", source="tui"))
            thread.join(30)
    return events[-1]


def diverged_pauses(events: list) -> list[ControlApplied]:
    return [e for e in events if isinstance(e, ControlApplied) and e.source == "divergence"]


def test_a_restore_names_the_step_restored_and_the_epoch_then_ends_sound(small_digits, tmp_path):
    controls = Controls()
    trainer, events = make_trainer(small_digits("optim.lr=10", "optim.name='sgd'", "model.init='normal'",
                                                "train.epochs=3"), tmp_path, controls)
    end = run_answering_divergences(trainer, controls, events)
    assert isinstance(end, RunEnded) and end.status == "completed", end
    (pause,) = diverged_pauses(events)  # once: the epoch it happened in ends with sound sums
    assert pause.restored_step == 0 and pause.step > 0  # last.pt of the start; the counters went on
    assert f"(step {pause.restored_step})" in pause.message and f"go on from step {pause.step}" in pause.message
    assert from_record(to_record(pause)) == pause
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in epochs] == [1, 2, 3] and all(math.isfinite(e.train_loss) for e in epochs)


def test_a_diverged_epoch_is_never_the_best(small_digits, tmp_path, monkeypatch):
    """Epoch 1's validation comes out NaN: reported as it was, but neither early stopping (with
    restore_best and best.pt) nor the plateau schedule counts it."""
    real_evaluate = trainer_module.evaluate
    validations = []

    def evaluate(*args, **kwargs):
        validations.append(1)
        result = real_evaluate(*args, **kwargs)
        return Evaluation(math.nan, acc=0.1) if len(validations) == 1 else result

    monkeypatch.setattr(trainer_module, "evaluate", evaluate)
    controls = Controls()
    cfg = small_digits("train.epochs=4", "early_stopping.restore_best=true", "schedule.name='plateau'",
                       "schedule.patience=0")
    trainer, events = make_trainer(cfg, tmp_path, controls)
    end = run_answering_divergences(trainer, controls, events, lr=cfg.optim.lr)
    assert end.status == "completed"
    first = next(e for e in events if isinstance(e, EpochEnded))
    assert first.epoch == 1 and math.isnan(first.val_loss) and first.early_stop.best_epoch is None
    assert end.best_epoch != 1 and math.isfinite(end.best)
    assert checkpoints.load(tmp_path / "checkpoints" / "best.pt")["progress"]["epoch"] - 1 == end.best_epoch
    assert trainer.schedule.main.best is not None and math.isfinite(trainer.schedule.main.best)


@pytest.mark.parametrize("schedule", [["schedule.name='step'", "schedule.step_size=1", "schedule.gamma=0.5"],
                                      ["schedule.name='onecycle'", "optim.lr=0.01"]])
def test_an_epochs_lr_is_the_one_it_trained_at(small_digits, tmp_path, schedule):
    cfg = small_digits("train.epochs=3", "train.log_every=1", "early_stopping.enabled=false", *schedule)
    trainer, events = make_trainer(cfg, tmp_path, Controls())
    trained_at: dict[int, float] = {}
    trainer.optimizer.register_step_pre_hook(
        lambda optimizer, _args, _kwargs: trained_at.__setitem__(trainer.progress.step, optimizer.param_groups[0]["lr"]))
    trainer.run()
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    steps = {e.step: e for e in events if isinstance(e, StepLogged)}
    assert len(epochs) == 3 and len(steps) == trainer.progress.step
    for epoch in epochs:  # the LR of its last step, as that step's record says too
        assert epoch.lr == trained_at[epoch.step] == steps[epoch.step].lr
    assert all(steps[step].lr == lr for step, lr in trained_at.items())
    if "step" in schedule[0]:
        assert [e.lr for e in epochs] == [cfg.optim.lr * 0.5**k for k in range(3)]


def test_paused_time_is_left_out_and_said(small_digits, tmp_path):
    controls = Controls()
    trainer, events = make_trainer(small_digits("train.epochs=2", "train.log_every=2"), tmp_path, controls)
    replies: list[str] = []
    pause_at = 10

    def pause_once(_optimizer, _args, _kwargs):
        if trainer.progress.step == pause_at:
            controls.submit(Command("pause", source="ctl", reply=lambda ok, message: replies.append(message)))

    trainer.optimizer.register_step_post_hook(pause_once)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    wait_for(lambda: replies)
    threading.Event().wait(1.0)
    controls.submit(Command("resume", source="ctl"))
    thread.join(60)
    end = events[-1]
    assert isinstance(end, RunEnded) and end.status == "completed"
    first, second = (e for e in events if isinstance(e, EpochEnded))
    assert first.paused_s >= 0.95 and second.paused_s == 0.0
    assert first.epoch_s < first.time - events[0].time - 0.95  # the pause is not in the epoch's time
    assert end.paused_s == pytest.approx(first.paused_s, abs=1e-3)
    assert end.wall_s < end.time - events[0].time - 0.95
    assert f"{end.paused_s:.1f}s paused" in end_line(end)
    rates = [e.samples_per_s for e in events if isinstance(e, StepLogged) and e.epoch == 1]
    after_pause = next(e for e in events if isinstance(e, StepLogged) and e.step > pause_at)
    # counting the 1 s pause would give about 2 batches a second (log_every=2); a cold first step after
    # the pause on a loaded machine may still be several times slower than the median
    assert after_pause.samples_per_s > statistics.median(rates) / 50


def test_the_console_eta_leaves_pauses_out():
    now = [0.0]
    clock = EtaClock(clock=lambda: now[0])
    clock.total_steps = 300
    clock.eta(0)
    now[0] = 10.0
    assert clock.eta(100) == pytest.approx(20.0)
    clock.control(ControlApplied(100, "pause", None, "tui"))
    now[0] = 70.0
    clock.control(ControlApplied(100, "resume", None, "tui"))
    now[0] = 80.0
    assert clock.eta(200) == pytest.approx(10.0)  # 20 s for 200 steps, not 80 s
