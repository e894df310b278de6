"""ModeSwitch: the same effect as Module.train, without its walk when nothing overrides it."""

from __future__ import annotations

import torch
from torch import nn

from nntui.engine.modes import ModeSwitch


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm1d(8)), nn.Linear(8, 2))


def test_it_sets_every_module_as_module_train_would() -> None:
    ours, theirs = mlp(), mlp()
    switch = ModeSwitch(ours)
    for training in (False, True, False):
        switch.set(training)
        theirs.train(training)
        assert [m.training for m in ours.modules()] == [m.training for m in theirs.modules()] == [training] * 7


def test_evaluation_mode_turns_dropout_and_batch_statistics_off() -> None:
    torch.manual_seed(0)
    model, x = mlp(), torch.randn(16, 4)
    switch = ModeSwitch(model)
    switch.set(False)
    running_mean = model[3][0].running_mean.clone()
    assert torch.equal(model(x), model(x))  # no dropout
    assert torch.equal(model[3][0].running_mean, running_mean)  # batch norm uses, not updates, its statistics
    switch.set(True)
    model(x)
    assert not torch.equal(model[3][0].running_mean, running_mean)


class Frozen(nn.Module):
    """A module whose own `train` keeps its child in evaluation mode."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Dropout(0.5)
        self.calls: list[bool] = []

    def train(self, mode: bool = True) -> "Frozen":
        self.calls.append(mode)
        super().train(mode)
        self.inner.eval()
        return self


def test_a_module_that_overrides_train_gets_its_override_called() -> None:
    frozen = Frozen()
    model = nn.Sequential(nn.Linear(2, 2), frozen)
    switch = ModeSwitch(model)
    switch.set(False)
    switch.set(True)
    assert frozen.calls == [False, True]
    assert model.training and frozen.training and not frozen.inner.training
