"""Unit tests of the engine's pieces against independent computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nntui.config import RunConfig, load_config
from nntui.engine.early_stopping import EarlyStopping
from nntui.engine.events import EarlyStopStatus, EpochEnded, GradNorms, RunEnded, RunStarted, from_record, to_record
from nntui.engine.gradients import GradNormProbe, global_norm
from nntui.engine.optim import LRSchedule, build_optimizer
from nntui.engine.regularization import build_penalty


def keras_early_stopping(values, patience, min_delta=0.0, mode="min"):
    """Keras 3 EarlyStopping.on_epoch_end, transcribed; returns the 1-based stop epoch or None."""
    best, wait = None, 0
    delta = min_delta if mode == "max" else -min_delta
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    for epoch0, current in enumerate(values):
        wait += 1
        if best is None or better(current - delta, best):
            best, wait = current, 0
            continue
        if wait >= patience and epoch0 > 0:
            return epoch0 + 1
    return None


def run_ours(values, **kwargs):
    early = EarlyStopping(**kwargs)
    for epoch, value in enumerate(values, start=1):
        _, stop = early.update(epoch, value)
        if stop:
            return epoch, early
    return None, early


@pytest.mark.parametrize("values,patience,min_delta", [
    ([1.0, 0.9, 0.95, 0.96, 0.97, 0.5], 3, 0.0),
    ([1.0, 0.9, 0.95, 0.96, 0.97, 0.5], 4, 0.0),
    ([1.0, 0.99, 0.98, 0.97, 0.96, 0.95], 2, 0.02),
    ([1.0, 1.1, 1.2], 0, 0.0),
    ([0.5, 0.4, 0.3, 0.2], 1, 0.0),
])
def test_early_stopping_stops_where_keras_does(values, patience, min_delta):
    expected = keras_early_stopping(values, patience, min_delta)
    stopped, early = run_ours(values, monitor="val_loss", mode="min", patience=patience, min_delta=min_delta)
    assert stopped == expected


def test_early_stopping_max_mode_and_best_epoch():
    values = [0.5, 0.7, 0.69, 0.71, 0.70, 0.70]
    stopped, early = run_ours(values, monitor="val_acc", mode="max", patience=2, min_delta=0.0)
    assert stopped == keras_early_stopping(values, 2, mode="max") == 6
    assert early.best == 0.71 and early.best_epoch == 4
    status = early.status()
    assert status.wait == 2 and status.patience == 2


def keras_plateau_lrs(values, lr, factor, patience, min_delta=1e-4):
    """Keras ReduceLROnPlateau (mode min, cooldown 0), transcribed: the LR after each epoch."""
    best, wait, out = math.inf, 0, []
    for current in values:
        if current < best - min_delta:
            best, wait = current, 0
        else:
            wait += 1
            if wait >= patience:
                lr, wait = lr * factor, 0
        out.append(lr)
    return out


def test_plateau_cuts_the_lr_when_keras_would():
    cfg = load_config("digits-mlp", ["schedule.name='plateau'", "schedule.factor=0.1", "schedule.patience=2",
                                     "optim.lr=0.01"])
    model = nn.Linear(2, 1)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    schedule = LRSchedule(optimizer, cfg, steps_per_epoch=5)
    values = [1.0, 0.9, 0.9, 0.95, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85]
    seen = []
    for epoch, value in enumerate(values, start=1):
        schedule.after_epoch(epoch, value)
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx(keras_plateau_lrs(values, 0.01, 0.1, 2))
    assert seen[-1] < seen[0]


def test_a_manual_lr_gets_a_full_plateau_patience():
    """Set by hand one epoch before the plateau would cut: it stands for `patience` more
    epochs without improvement, then is cut by the factor (torch alone would cut it at once)."""
    cfg = load_config("digits-mlp", ["schedule.name='plateau'", "schedule.factor=0.5", "schedule.patience=3",
                                     "optim.lr=0.01"])
    optimizer = build_optimizer(nn.Linear(2, 1).parameters(), cfg.optim)
    schedule = LRSchedule(optimizer, cfg, steps_per_epoch=5)
    for epoch, value in enumerate([1.0, 1.0, 1.0], start=1):  # two epochs without improvement
        schedule.after_epoch(epoch, value)
    schedule.set_lr(0.2)
    seen = []
    for epoch in range(4, 8):
        schedule.after_epoch(epoch, 1.0)
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx([0.2, 0.2, 0.1, 0.1])


@pytest.mark.parametrize("name,expected", [
    ("step", [1.0, 0.1, 0.1, 0.01]), ("exponential", [0.95, 0.95**2, 0.95**3, 0.95**4]),
])
def test_epoch_schedules(name, expected):
    cfg = load_config("digits-mlp", [f"schedule.name='{name}'", "schedule.step_size=2", "optim.lr=1.0",
                                     "train.epochs=4"])
    optimizer = build_optimizer(nn.Linear(2, 1).parameters(), cfg.optim)
    schedule = LRSchedule(optimizer, cfg, steps_per_epoch=3)
    seen = []
    for epoch in range(1, 5):
        schedule.after_epoch(epoch, None)
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx(expected)


def test_cosine_with_warmup_ramps_then_decays():
    cfg = load_config("digits-mlp", ["schedule.name='cosine'", "schedule.warmup_epochs=1", "schedule.min_lr=0", "optim.lr=1.0",
                                     "train.epochs=3"])
    optimizer = build_optimizer(nn.Linear(2, 1).parameters(), cfg.optim)
    schedule = LRSchedule(optimizer, cfg, steps_per_epoch=4)
    lrs = [optimizer.param_groups[0]["lr"]]
    for step in range(1, 5):
        schedule.after_batch(step)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.2) and lrs == sorted(lrs) and lrs[-1] == pytest.approx(1.0)
    schedule.after_epoch(1, None)  # warmup epoch: the cosine has not started
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.0)
    schedule.after_epoch(2, None)
    schedule.after_epoch(3, None)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_onecycle_steps_per_batch_and_set_lr_rescales_it():
    cfg = load_config("digits-mlp", ["schedule.name='onecycle'", "optim.lr=0.01", "train.epochs=2"])
    optimizer = build_optimizer(nn.Linear(2, 1).parameters(), cfg.optim)
    schedule = LRSchedule(optimizer, cfg, steps_per_epoch=10)
    for step in range(1, 6):
        schedule.after_batch(step)
    before = optimizer.param_groups[0]["lr"]
    schedule.set_lr(before / 10)
    schedule.after_batch(6)
    after = optimizer.param_groups[0]["lr"]
    assert after < before / 5  # the schedule carries on from the new, lower LR


@pytest.mark.parametrize("penalty,ratio", [("l1", None), ("l2", None), ("elastic_net", 0.3)])
def test_penalties_match_an_independent_computation(penalty, ratio):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    sets = [f"regularization.penalty='{penalty}'", "regularization.alpha=0.01"]
    if ratio is not None:
        sets.append(f"regularization.l1_ratio={ratio}")
    cfg = load_config("digits-mlp", sets)
    weights = [model[0].weight, model[2].weight]  # not biases, not the batch-norm scale
    l1 = sum(w.detach().abs().sum().item() for w in weights)
    l2 = sum((w.detach() ** 2).sum().item() for w in weights)
    share = {"l1": 1.0, "l2": 0.0, "elastic_net": ratio}[penalty]
    expected = 0.01 * (share * l1 + (1 - share) / 2 * l2)
    assert build_penalty(model, cfg.regularization)().item() == pytest.approx(expected, rel=1e-5)


def test_no_penalty_when_none():
    assert build_penalty(nn.Linear(2, 2), RunConfig().regularization) is None


def test_grad_norms_match_per_parameter_norms():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    model(torch.randn(8, 5)).pow(2).sum().backward()
    norms = GradNormProbe(model).norms().tolist()
    expected = [p.grad.norm().item() for p in model.parameters()]
    assert norms == pytest.approx(expected, rel=1e-5)
    all_grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert global_norm(norms) == pytest.approx(all_grads.norm().item(), rel=1e-5)


def test_grad_norms_are_zero_for_parameters_without_gradients():
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3))
    model[1](torch.randn(2, 4)).sum().backward()  # the first layer gets no gradient
    norms = GradNormProbe(model).norms().tolist()
    assert norms[:2] == [0.0, 0.0]
    assert norms[2] == pytest.approx(model[1].weight.grad.norm().item(), rel=1e-5)


@pytest.mark.parametrize("event", [
    RunStarted("digits-mlp", "cpu", 10, 1, 2, 3, None, layers=("fc1.weight",),
               early_stop=EarlyStopStatus("val_loss", None, None, 0, 3)),
    GradNorms(5, (("fc1.weight", 0.5), ("out.bias", 0.1))),
    EpochEnded(1, 10, 0.5, 0.6, 1e-3, train_acc=0.8, val_acc=0.7,
               early_stop=EarlyStopStatus("val_loss", 0.6, 1, 0, 3)),
    RunEnded("completed", 3, 30, best_epoch=2, best=0.4, test_loss=0.5, test_acc=0.9, wall_s=1.0),
])
def test_events_round_trip_through_records(event):
    record = to_record(event)
    assert record["event"] == event.EVENT
    assert from_record(record) == event


def test_records_leave_out_the_other_tasks_metrics():
    record = to_record(EpochEnded(1, 10, 0.5, 0.6, 1e-3, val_mae=3.0, val_r2=0.4))
    assert "val_acc" not in record and record["val_mae"] == 3.0
