"""Loss functions and evaluation passes: on an accelerator the sums stay on the device, one host sync per pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from nntui.engine.control import Command, Controls
from nntui.engine.modes import ModeSwitch

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_function(task: str) -> LossFunction:
    """Cross-entropy on logits for classification, mean squared error for regression: the functions,
    as `nn.CrossEntropyLoss()`/`nn.MSELoss()` compute them, without a module call's hook checks
    (2-3 µs of every training step, about 1% of a digits-mlp step)."""
    return nn.functional.cross_entropy if task == "classification" else nn.functional.mse_loss


def predicted_classes(outputs: torch.Tensor) -> torch.Tensor:
    """The argmax over classes, the first one on ties; `max` gives the same indices and, on a CPU,
    in two thirds of `argmax`'s time."""
    return outputs.max(1).indices


@dataclass(frozen=True)
class Evaluation:
    loss: float
    acc: float | None = None
    mae: float | None = None
    r2: float | None = None

    def as_dict(self, prefix: str) -> dict[str, Any]:
        values = {"loss": self.loss, "acc": self.acc, "mae": self.mae, "r2": self.r2}
        return {f"{prefix}_{key}": value for key, value in values.items() if value is not None}


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], task: str,
             device: torch.device, modes: ModeSwitch | None = None,
             forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Evaluation | None:
    """Mean loss and the task's metrics over `batches`, in eval mode; None when there are none.

    `modes` is the model's switch, made once by a caller that evaluates the same model often;
    `forward` what gives the outputs when not the model itself (compiled, under autocast)."""
    modes = modes if modes is not None else ModeSwitch(model)
    was_training = model.training
    modes.set(False)
    classification = task == "classification"
    sums = _PassSums(device)
    forward = forward if forward is not None else model
    for inputs, targets in batches:
        sums.add(_batch_sums(forward(inputs), targets, classification), targets.shape[0])
    modes.set(was_training)
    if sums.count == 0:
        return None
    totals, count = sums.totals(), sums.count
    if classification:
        return Evaluation(totals[0] / count, acc=totals[1] / count)
    sq_sum, abs_sum, y_sum, y2_sum = totals
    total_var = y2_sum - y_sum * y_sum / count
    r2 = 1.0 - sq_sum / total_var if total_var > 0 else float("nan")
    return Evaluation(sq_sum / count, mae=abs_sum / count, r2=r2)


def until_stopped(batches: Iterable[Any], controls: Controls, on_stop: Callable[[Command], str]) -> Iterator[Any]:
    """`batches` until a `stop` command arrives; `on_stop` records it and returns the reply. Other
    commands are refused: an evaluation pass has nothing to pause, steer or checkpoint."""
    for batch in batches:
        stop_message = None
        for command in controls.drain() if controls.waiting else ():
            if command.action == "stop" and stop_message is None:
                message = stop_message = on_stop(command)
            else:
                message = stop_message or "training is over; the test pass is running"
            if command.reply is not None:
                command.reply(command.action == "stop", message)
        if stop_message is not None:
            return
        yield batch


def _batch_sums(outputs: torch.Tensor, targets: torch.Tensor, classification: bool) -> list[torch.Tensor]:
    """Loss sum, then correct (classification) or |err|, y, y^2 sums (regression)."""
    if classification:
        return [nn.functional.cross_entropy(outputs, targets, reduction="sum"),
                predicted_classes(outputs).eq(targets).sum()]
    err = outputs - targets
    return [err.pow(2).sum(), err.abs().sum(), targets.sum(), targets.pow(2).sum()]


class _PassSums:
    """Per-batch sums of an evaluation pass, added up with one host sync for the whole pass.

    On an accelerator each batch's sums are stacked on the device and read once at the end. On
    the CPU reading a value waits for nothing, so they are read as they come: that spares the
    stacking and casting ops, which cost more than the reads there.
    """

    def __init__(self, device: torch.device) -> None:
        self.on_host = device.type == "cpu"
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.count = 0
        self._rows: list[torch.Tensor] = []
        self._host: list[float] | None = None

    def add(self, values: list[torch.Tensor], batch_size: int) -> None:
        self.count += batch_size
        if not self.on_host:
            self._rows.append(torch.stack(values).to(self.dtype))  # counts exact as floats below 2**24
        elif self._host is None:
            self._host = [value.item() for value in values]
        else:
            self._host = [total + value.item() for total, value in zip(self._host, values)]

    def totals(self) -> list[float]:
        if self.on_host:
            return [float(total) for total in self._host or []]
        rows = self._rows
        return (rows[0] if len(rows) == 1 else torch.stack(rows).sum(0)).tolist()  # the pass's one host sync
