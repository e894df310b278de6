"""Early stopping and the plateau schedule against Keras 3: the sequences of Keras's own callback tests
(keras/src/callbacks/early_stopping_test.py, reduce_lr_on_plateau_test.py at Keras 3.16), then
Keras's `on_epoch_end` transcribed and compared with ours on random sequences, NaN included."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nntui.engine.early_stopping import EarlyStopping
from nntui.engine.plateau import Plateau

# --------------------------------------------------------------------------- Keras, transcribed


class KerasEarlyStopping:
    """keras/src/callbacks/early_stopping.py `on_epoch_end` (0-based epochs), with the weights
    standing for the epoch they were taken at, as in Keras's DummyModel."""

    def __init__(self, patience=0, min_delta=0.0, mode="min", baseline=None, restore=False, start_from_epoch=0):
        self.patience, self.baseline, self.restore, self.start = patience, baseline, restore, start_from_epoch
        self.op = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
        self.min_delta = abs(min_delta) if mode == "max" else -abs(min_delta)
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def _is_improvement(self, value, reference):
        return reference is None or self.op(value - self.min_delta, reference)

    def on_epoch_end(self, epoch, current, weights):
        """Returns model.stop_training."""
        if current is None or epoch < self.start:
            return False
        if self.restore and self.best_weights is None:
            self.best_weights, self.best_epoch = weights, epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore:
                self.best_weights = weights
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return False
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            return True
        return False


def keras_plateau_lrs(values, lr, factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0.0, mode="min"):
    """keras/src/callbacks/reduce_lr_on_plateau.py `on_epoch_end`: the LR after each epoch."""
    op = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    delta = abs(min_delta) if mode == "max" else -abs(min_delta)
    best, wait, cooldown_counter, out = None, 0, 0, []
    for current in values:
        if cooldown_counter > 0:
            cooldown_counter -= 1
            wait = 0
        if best is None or op(current - delta, best):
            best, wait = current, 0
        elif not cooldown_counter > 0:
            wait += 1
            if wait >= patience:
                reduced = False
                if lr > min_lr:
                    lr, reduced = max(lr * factor, min_lr), True
                if reduced:
                    cooldown_counter, wait = cooldown, 0
        out.append(lr)
    return out


# --------------------------------------------------------------------------- ours, driven the same way


def ours_early(values, **kwargs):
    """(stop epoch from 1 or None, epochs trained, the restored epoch from 1 or None)."""
    early = EarlyStopping(**kwargs)
    trained = 0
    for epoch, value in enumerate(values, start=1):
        trained += 1
        if early.update(epoch, value)[1]:
            return epoch, trained, early.best_epoch
    return None, trained, early.best_epoch


def ours_plateau_lrs(values, lr, **kwargs):
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=lr)
    plateau = Plateau(optimizer, **kwargs)
    out = []
    for value in values:
        plateau.step(value)
        out.append(optimizer.param_groups[0]["lr"])
    return out


# --------------------------------------------------------------------------- Keras's own test cases


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_early_stopping_patience(patience):
    """test_early_stopping_patience: stopped_epoch == max(patience, 1) + 2, counted from 0."""
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    stopped, _, _ = ours_early(losses, monitor="loss", mode="min", patience=patience)
    assert stopped == max(patience, 1) + 2 + 1


def test_early_stopping_restores_the_best_epoch():
    """test_early_stopping_final_weights_when_restoring_model_weights, first case."""
    stopped, trained, restored = ours_early([0.2, 0.15, 0.1, 0.11, 0.12], patience=2, restore_best=True)
    assert (stopped, trained, restored) == (5, 5, 3)  # Keras: weights of epoch 2 counted from 0


def test_early_stopping_baseline_never_beaten():
    """Second case: no epoch beats the baseline, so patience runs out after 5 epochs; the best
    epoch is still the best seen (0.7, the third)."""
    stopped, trained, restored = ours_early([0.9, 0.8, 0.7, 0.71, 0.72, 0.73], patience=5, baseline=0.5,
                                            restore_best=True)
    assert (trained, restored) == (5, 3)


def test_early_stopping_start_from_epoch():
    """test_early_stopping_with_start_from_epoch: at least patience + start_from_epoch epochs are
    trained (with patience 0, at least start_from_epoch)."""
    flat = [1.0] * 20
    for start, patience in ((2, 3), (2, 0)):
        stopped, trained, best = ours_early(flat, patience=patience, start_from_epoch=start)
        keras = KerasEarlyStopping(patience=patience, start_from_epoch=start)
        keras_trained = next(e + 1 for e, v in enumerate(flat) if keras.on_epoch_end(e, v, e))
        assert trained == keras_trained >= patience + start
        assert best == start + 1  # the first epoch looked at


def test_plateau_reduces_lr():
    """test_reduces_lr_with_model_fit: patience 1, min_delta 100 (nothing improves), 2 epochs."""
    assert ours_plateau_lrs([0.5, 0.4], 0.1, factor=0.1, patience=1, min_delta=100)[-1] == pytest.approx(0.01)


def test_plateau_honors_min_lr():
    """test_honors_min_lr: patience 1, min_delta 10, min_lr 0.005, 4 epochs."""
    lrs = ours_plateau_lrs([0.5, 0.4, 0.3, 0.2], 0.1, factor=0.1, patience=1, min_delta=10, min_lr=0.005)
    assert lrs == pytest.approx([0.1, 0.01, 0.005, 0.005])


def test_plateau_cooldown():
    """test_cooldown: with a cooldown of 2 the LR is cut every other epoch: twice in 4 epochs."""
    lrs = ours_plateau_lrs([0.5, 0.4, 0.3, 0.2], 0.1, factor=0.1, patience=1, min_delta=100, cooldown=2)
    assert lrs[-1] == pytest.approx(0.001)
    assert lrs == pytest.approx(keras_plateau_lrs([0.5, 0.4, 0.3, 0.2], 0.1, 0.1, 1, 100, cooldown=2))


def test_plateau_has_no_hidden_floor():
    """torch's ReduceLROnPlateau stops cutting near 1e-8 (its eps); Keras cuts on down to min_lr."""
    lrs = ours_plateau_lrs([1.0] * 12, 1e-6, factor=0.1, patience=1, min_delta=0.0)
    assert lrs[-1] == pytest.approx(1e-17)
    torch_lrs = []
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1e-6)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=0)
    for _ in range(12):
        scheduler.step(1.0)
        torch_lrs.append(optimizer.param_groups[0]["lr"])
    assert torch_lrs[-1] > 1e-9  # what this replaces


def test_nan_is_no_improvement_in_both():
    """A NaN after the first epoch compares False: `wait` grows as for a worse value."""
    values = [1.0, math.nan, math.nan, math.nan]
    stopped, _, best = ours_early(values, patience=2)
    assert (stopped, best) == (3, 1)
    lrs = ours_plateau_lrs(values, 0.1, factor=0.5, patience=2, min_delta=0.0)
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05])
    early = EarlyStopping(patience=2)
    early.update(1, 1.0)
    early.update(2, math.nan)
    assert early.wait == 1 and early.best == 1.0


# --------------------------------------------------------------------------- ours == Keras on any sequence

values_strategy = st.lists(st.one_of(st.floats(0.0, 2.0), st.just(math.nan)), min_size=1, max_size=25)


@settings(max_examples=300, deadline=None)
@given(values=values_strategy, patience=st.integers(0, 5), min_delta=st.sampled_from([0.0, 0.01, 0.2]),
       mode=st.sampled_from(["min", "max"]), baseline=st.one_of(st.none(), st.floats(0.0, 2.0)),
       start=st.integers(0, 4))
def test_early_stopping_equals_keras(values, patience, min_delta, mode, baseline, start):
    keras = KerasEarlyStopping(patience, min_delta, mode, baseline, restore=True, start_from_epoch=start)
    keras_trained = len(values)
    for epoch0, value in enumerate(values):
        if keras.on_epoch_end(epoch0, value, epoch0):
            keras_trained = epoch0 + 1
            break
    stopped, trained, best = ours_early(values, patience=patience, min_delta=min_delta, mode=mode,
                                        baseline=baseline, start_from_epoch=start, restore_best=True)
    assert trained == keras_trained
    assert stopped == (keras.stopped_epoch + 1 if keras.stopped_epoch else None)
    restored = None if keras.best_weights is None else keras.best_weights + 1
    assert best == restored


@settings(max_examples=300, deadline=None)
@given(values=values_strategy, patience=st.integers(0, 4), min_delta=st.sampled_from([0.0, 0.01, 0.2]),
       cooldown=st.integers(0, 3), min_lr=st.sampled_from([0.0, 1e-3]), factor=st.sampled_from([0.1, 0.5]),
       mode=st.sampled_from(["min", "max"]))
def test_plateau_equals_keras(values, patience, min_delta, cooldown, min_lr, factor, mode):
    expected = keras_plateau_lrs(values, 0.1, factor, patience, min_delta, cooldown, min_lr, mode)
    got = ours_plateau_lrs(values, 0.1, factor=factor, patience=patience, min_delta=min_delta,
                           cooldown=cooldown, min_lr=min_lr, mode=mode)
    assert got == expected


# --------------------------------------------------------------------------- checkpointed counters


def test_plateau_state_resumes_mid_cooldown_exactly():
    values = [1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    kwargs = dict(factor=0.5, patience=1, min_delta=0.0, cooldown=2)
    whole = ours_plateau_lrs(values, 0.1, **kwargs)
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    first = Plateau(optimizer, **kwargs)
    for value in values[:3]:
        first.step(value)
    assert first.cooldown_counter > 0
    second = Plateau(optimizer, **kwargs)
    second.load_state_dict(first.state_dict())
    rest = []
    for value in values[3:]:
        second.step(value)
        rest.append(optimizer.param_groups[0]["lr"])
    assert whole[:3] + rest == whole


def test_early_stopping_state_keeps_a_wait_that_the_baseline_did_not_reset():
    first = EarlyStopping(patience=3, baseline=0.1)
    for epoch, value in enumerate([0.9, 0.8], start=1):
        first.update(epoch, value)
    second = EarlyStopping(patience=3, baseline=0.1)
    second.load_state_dict(first.state_dict())
    assert second.wait == 2 and second.update(3, 0.85) == (False, True)


def test_plateau_reads_the_state_torchs_scheduler_left_in_older_checkpoints():
    optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    old = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=4, cooldown=3)
    for value in (1.0, 0.5, 0.6, 0.7):
        old.step(value)
    plateau = Plateau(optimizer, patience=5, cooldown=3)
    plateau.load_state_dict(old.state_dict())
    assert (plateau.best, plateau.wait, plateau.cooldown_counter) == (0.5, 2, 0)
    fresh = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    plateau.load_state_dict(fresh.state_dict())
    assert plateau.best is None and plateau.wait == 0
