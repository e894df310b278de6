"""No host sync per training step: the calls that make the host wait for the device (`item`,
`tolist`, `bool`, `float`, `int`, `.cpu()`, `.numpy()`) happen at log steps only.

The real trainer runs in-process on digits-mlp with those Tensor methods wrapped; each call is
put down to the step being trained when it is made (counted from the batches the loop takes).
"""

from __future__ import annotations

import pytest
import torch
from test_trainer import make_trainer

from nntui.engine.events import StepLogged

SYNCING_METHODS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy")


def syncs_by_step(monkeypatch, cfg, loss_with_sync: bool = False) -> tuple[dict[int, list[str]], set[int]]:
    """Train `cfg`; the syncing calls made while training, by the step being trained, and the
    steps that were logged. `loss_with_sync` puts an `.item()` into the loss function (a bug)."""
    trainer, events = make_trainer(cfg)
    current = {"step": 0}
    calls: dict[int, list[str]] = {}

    def counted(name: str, method):
        def wrapper(self, *args, **kwargs):
            if trainer.phase == "training":
                calls.setdefault(current["step"], []).append(name)
            return method(self, *args, **kwargs)
        return wrapper

    for name in SYNCING_METHODS:
        monkeypatch.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))
    split, batches = trainer.data.train, trainer.data.train.batches

    def counting_batches(epoch: int, start: int = 0):
        for batch in batches(epoch, start):
            current["step"] = trainer.progress.step + 1  # the step this batch trains
            yield batch
    monkeypatch.setattr(split, "batches", counting_batches)
    if loss_with_sync:
        loss_fn = trainer.loss_fn
        trainer.loss_fn = lambda outputs, targets: (loss_fn(outputs, targets), loss_fn(outputs, targets).item())[0]
    assert trainer.run().status == "completed"
    monkeypatch.undo()
    return calls, {event.step for event in events if isinstance(event, StepLogged)}


@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_no_host_sync_between_log_steps(monkeypatch, small_digits, precision):
    cfg = small_digits(f"train.precision={precision}", "train.log_every=10", "train.epochs=2")
    calls, logged = syncs_by_step(monkeypatch, cfg)
    assert logged and all(calls.get(step) for step in logged)  # the counting sees the log steps' reads
    assert {step: names for step, names in calls.items() if step not in logged} == {}


def test_a_sync_in_the_step_is_caught(monkeypatch, small_digits):
    calls, logged = syncs_by_step(monkeypatch, small_digits("train.log_every=10", "train.epochs=1"), loss_with_sync=True)
    unlogged = {step: names for step, names in calls.items() if step not in logged}
    assert len(unlogged) >= 30 and all("item" in names for names in unlogged.values())
