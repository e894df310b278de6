"""The step losses `nntui.Monitor` keeps: whatever mix of floats, scalar and non-scalar tensors a
loop gives, read at whatever steps, the step records and epoch means are the plain means, and the
kept list stays short however long an interval runs."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import records_of
from hypothesis import given, settings
from hypothesis import strategies as st

import nntui
from nntui.watch_parts import StepLosses

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
loss_values = st.one_of(
    finite.map(float),
    finite.map(torch.tensor),
    st.lists(finite, min_size=1, max_size=3).map(torch.tensor),  # a per-sample loss counts as its mean
)


def as_number(loss) -> float:
    return float(loss.float().mean()) if isinstance(loss, torch.Tensor) else float(loss)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(loss_values, st.booleans()), max_size=200))
def test_intervals_and_epoch_mean_are_the_plain_sums(steps):
    losses = StepLosses()
    read_total, read_count, expected = 0.0, 0, []
    for loss, read_here in steps:
        losses.kept.append(loss)
        expected.append(as_number(loss))
        losses.fold_if_long()
        assert len(losses.kept) < StepLosses.FOLD_EVERY
        if read_here:
            total, count, norms = losses.read_interval(torch.tensor([3.0, 4.0]))
            assert norms == [3.0, 4.0]
            read_total, read_count = read_total + total, read_count + count
    assert read_count <= len(expected)
    mean = losses.epoch_mean()
    if expected:
        assert mean == pytest.approx(sum(expected) / len(expected), rel=1e-5, abs=1e-3)
    else:
        assert math.isnan(mean)
    assert math.isnan(losses.epoch_mean())  # the next epoch starts empty


def test_a_log_every_beyond_the_fold_keeps_few_losses_and_logs_at_its_steps(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with nntui.Monitor(model, optimizer, name="long", runs_dir=tmp_path, log_every=101, log_interval_s=0,
                       handle_signals=False) as monitor:
        longest = 0
        for step in range(1, 304):
            optimizer.zero_grad()
            loss = model(torch.randn(8, 4)).pow(2).mean()
            loss.backward()
            optimizer.step()
            monitor.step(loss=torch.full((), float(step)))
            longest = max(longest, len(monitor._losses.kept))
        monitor.epoch()
    assert longest <= StepLosses.FOLD_EVERY  # 101 is prime: checked every step, folded at 64
    steps = records_of(tmp_path / "long", "step")
    assert [s["step"] for s in steps] == [101, 202, 303]
    assert [s["loss"] for s in steps] == [51.0, 152.0, 253.0]  # the mean of each interval's losses
    assert records_of(tmp_path / "long", "epoch")[0]["train_loss"] == 152.0
