"""Training-epoch sums (loss, accuracy, interval losses) against independent computations."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nntui.config import load_config
from nntui.engine.epoch_sums import EpochSums
from nntui.engine.evaluate import predicted_classes
from nntui.engine.events import EpochEnded, StepLogged
from tests.test_trainer import make_trainer

CPU = torch.device("cpu")


def steps(classification: bool, count: int = 150):
    """Random (loss, outputs, targets) steps of batch 7, with a short batch of 3 every 50 steps."""
    generator = torch.Generator().manual_seed(0)
    for index in range(count):
        size = 3 if index % 50 == 49 else 7
        outputs = torch.randn(size, 4 if classification else 1, generator=generator)
        targets = (torch.randint(0, 4, (size,), generator=generator) if classification
                   else torch.randn(size, 1, generator=generator))
        loss_fn = nn.functional.cross_entropy if classification else nn.functional.mse_loss
        yield loss_fn(outputs, targets), outputs, targets


def expected_sums(pairs, classification: bool) -> tuple[float, int, int]:
    """Sum over steps of mean loss * batch size, in float64, the way a textbook loop adds them up."""
    loss_fn = nn.CrossEntropyLoss() if classification else nn.MSELoss()
    loss = correct = count = 0
    for _, outputs, targets in pairs:
        loss += loss_fn(outputs.double(), targets if classification else targets.double()).item() * len(targets)
        correct += int((outputs.argmax(1) == targets).sum()) if classification else 0
        count += len(targets)
    return loss, correct, count


@pytest.mark.parametrize("classification", [True, False])
def test_sums_match_per_step_losses_across_folds(classification):
    pairs = list(steps(classification))
    sums = EpochSums(CPU, classification)
    for index, (loss, outputs, targets) in enumerate(pairs, start=1):
        sums.add(loss, outputs, targets)
        if index == 70:  # past the first fold at 64 steps, with 6 steps pending
            running, count = sums.running_total()
            loss, _, expected_count = expected_sums(pairs[:70], classification)
            assert count == expected_count and running.item() == pytest.approx(loss, rel=1e-6)
    loss, correct, count = sums.totals()
    expected_loss, expected_correct, expected_count = expected_sums(pairs, classification)
    assert count == expected_count
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert correct == expected_correct


def test_state_round_trip_keeps_pending_steps():
    pairs = list(steps(True, 80))
    whole, resumed = EpochSums(CPU, True), None
    for index, (loss, outputs, targets) in enumerate(pairs, start=1):
        whole.add(loss, outputs, targets)
        if index == 70:
            resumed = EpochSums.from_state(copy.deepcopy(whole.to_state()), CPU, True)
        elif resumed is not None:
            resumed.add(loss, outputs, targets)
    assert resumed is not None and resumed.totals() == whole.totals()  # bit for bit


def test_epoch_metrics_are_those_of_the_data_seen(tmp_path):
    """With a learning rate too small to move the weights, an epoch's train_loss and train_acc
    are the loss and accuracy of the initial model over the whole training split."""
    cfg = load_config("digits-mlp", ["train.epochs=1", "optim.name='sgd'", "optim.lr=1e-12", "model.dropout=0.0",
                                     "schedule.name='constant'", "train.log_interval_s=0", "train.log_every=5"])
    trainer, events = make_trainer(cfg, tmp_path)
    initial = copy.deepcopy(trainer.model).eval()
    trainer.run()
    with torch.no_grad():
        outputs = initial(trainer.data.train.x)
        expected_loss = nn.functional.cross_entropy(outputs.double(), trainer.data.train.y).item()
        expected_acc = (outputs.argmax(1) == trainer.data.train.y).double().mean().item()
    epoch = next(event for event in events if isinstance(event, EpochEnded))
    assert epoch.train_loss == pytest.approx(expected_loss, rel=1e-5)
    assert epoch.train_acc == pytest.approx(expected_acc, abs=1e-12)
    # step records cover disjoint intervals: their sample-weighted losses add up to the epoch's
    logged = [event for event in events if isinstance(event, StepLogged)]
    batch, total = cfg.data.batch_size, trainer.data.train.num_samples
    sizes = [min(event.step * batch, total) - min(previous * batch, total)
             for previous, event in zip([0] + [e.step for e in logged], logged)]
    assert sum(sizes) == total
    assert sum(event.loss * size for event, size in zip(logged, sizes)) / total == pytest.approx(expected_loss, rel=1e-5)


def test_predicted_classes_are_argmax_with_first_index_on_ties():
    outputs = torch.tensor([[0.1, 2.0, 2.0], [5.0, 5.0, -1.0], [0.0, 0.0, 0.0], [-3.0, -2.0, -1.0]])
    assert predicted_classes(outputs).tolist() == outputs.argmax(1).tolist() == [1, 0, 0, 2]


def test_steps_kept_with_their_graphs_fold_into_plain_tensors():
    """Losses and outputs are kept as the training step made them (requiring grad, not detached);
    the sums built from them must carry no graph, and match a detached computation."""
    model = nn.Linear(5, 4)
    generator = torch.Generator().manual_seed(1)
    sums, kept = EpochSums(CPU, True), []
    for _ in range(70):  # one fold at 64 steps, 6 pending
        inputs, targets = torch.randn(7, 5, generator=generator), torch.randint(0, 4, (7,), generator=generator)
        outputs = model(inputs)
        loss = nn.functional.cross_entropy(outputs, targets)
        loss.backward()
        sums.add(loss, outputs, targets)
        kept.append((loss.detach(), outputs.detach(), targets))
    running, _ = sums.running_total()
    assert loss.requires_grad and not running.requires_grad
    assert not any(tensor.requires_grad for key in ("pending_losses", "pending_outputs")
                   for tensor in sums.to_state()[key])
    loss_sum, correct, count = sums.totals()
    assert not sums.loss.requires_grad and not sums.correct.requires_grad
    assert (loss_sum, correct, count) == pytest.approx(expected_sums(kept, True), rel=1e-6)
