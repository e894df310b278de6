"""Update-to-weight ratios: ||w_after - w_before|| / ||w_before|| per parameter, at log steps."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nntui.data import build_data
from nntui.engine.events import GradNorms, from_record, to_record
from nntui.engine.gradients import UpdateRatioProbe
from nntui.engine.trainer import Trainer
from nntui.models import build_model

CPU = torch.device("cpu")


def plain_sgd_ratios(weights: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], lr: float) -> dict[str, float]:
    """One plain SGD step moves each parameter by lr * its gradient (no ratio for weights all zero)."""
    return {name: lr * grads[name].norm().item() / weights[name].norm().item() if weights[name].any() else math.nan
            for name in weights}


def test_the_probe_gives_lr_times_grad_over_weight_for_one_sgd_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model(torch.randn(16, 5)).square().mean().backward()
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    probe = UpdateRatioProbe(model, cost_share=math.inf)  # measured whenever asked
    for _ in range(2):  # the second time through reuses the probe's buffers
        assert probe.before()
        optimizer.step()
        expected = plain_sgd_ratios(weights, grads, 0.05)
        assert probe.ratios().tolist() == pytest.approx(list(expected.values()), rel=1e-5)
        weights = {name: p.detach().clone() for name, p in model.named_parameters()}


def test_weights_that_were_zero_have_no_ratio():
    model = nn.Linear(3, 2)
    nn.init.zeros_(model.bias)
    model(torch.ones(4, 3)).sum().backward()
    probe = UpdateRatioProbe(model)
    assert probe.before()  # the first time, always
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    weight, bias = probe.ratios().tolist()
    assert weight > 0 and math.isnan(bias)
    assert probe.ratios() is None  # no `before` since: nothing measured


def test_measurements_take_at_most_their_share_of_the_time():
    model = nn.Linear(3, 2)
    model(torch.ones(4, 3)).sum().backward()
    times = iter([0.0, 1.0,  # the first `before`, taking 1 s
                  1.0, 2.0,  # its `ratios`, 1 s more: 2 s a measurement
                  50.0,  # 50 s on: 1% of that is less than 2 s, so nothing is measured
                  300.0, 300.5, 300.5, 301.0])  # 300 s on: 3 s, due again
    probe = UpdateRatioProbe(model, cost_share=0.01, clock=lambda: next(times))
    assert probe.before() and probe.ratios() is not None
    assert not probe.before() and probe.ratios() is None
    assert probe.before() and probe.ratios() is not None


def test_the_trainer_emits_the_ratios_of_its_logged_steps(small_digits):
    cfg = small_digits("optim.name='sgd'", "optim.lr=0.1", "train.epochs=1", "train.log_every=3",
                       "model.dropout=0.0", "schedule.name='constant'")
    torch.manual_seed(cfg.train.seed)
    data = build_data(cfg, CPU, Path("/nonexistent"))
    model = build_model(cfg.model, data.input_shape, data.num_outputs)
    events: list = []
    trainer = Trainer(cfg, data, model, CPU, events.append)
    trainer.update_probe.cost_share = math.inf  # at every log step, however fast the steps
    expected: dict[int, dict[str, float]] = {}

    def before_step(_optimizer, _args, _kwargs):
        step = trainer.progress.step  # counted before the optimizer steps
        weights = {name: p.detach().clone() for name, p in model.named_parameters()}
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        expected[step] = plain_sgd_ratios(weights, grads, 0.1)

    trainer.optimizer.register_step_pre_hook(before_step)
    end = trainer.run()
    assert end.status == "completed", end.error
    logged = [e for e in events if isinstance(e, GradNorms)]
    assert [e.step for e in logged][:3] == [3, 6, 9]
    for event in logged:
        assert [name for name, _ in event.update_ratios] == [name for name, _ in event.norms]
        ratios = dict(event.update_ratios)
        assert ratios == pytest.approx(expected[event.step], rel=1e-4, nan_ok=True), event.step
        assert all(1e-6 < value < 1 for value in ratios.values() if not math.isnan(value))
    record = to_record(logged[-1])
    assert record["update_ratios"] == dict(logged[-1].update_ratios)
    assert from_record(record) == logged[-1]
    unmeasured = GradNorms(9, logged[-1].norms)
    assert "update_ratios" not in to_record(unmeasured) and from_record(to_record(unmeasured)) == unmeasured
