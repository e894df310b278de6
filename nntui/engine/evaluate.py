"""Loss functions and evaluation passes: sums stay on the device, one host sync per pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import nn


def loss_function(task: str) -> nn.Module:
    """Cross-entropy on logits for classification, mean squared error for regression."""
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


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
             device: torch.device) -> Evaluation | None:
    """Mean loss and the task's metrics over `batches`, in eval mode; None when there are none."""
    was_training = model.training
    model.eval()
    dtype = torch.float32 if device.type == "mps" else torch.float64
    # loss sum, count, then correct (classification) or |err| sum, sum y, sum y^2, sum err^2 (regression)
    sums = torch.zeros(6, dtype=dtype, device=device)
    for inputs, targets in batches:
        outputs = model(inputs)
        n = targets.shape[0]
        if task == "classification":
            loss = nn.functional.cross_entropy(outputs, targets, reduction="sum")
            extra = [(outputs.argmax(1) == targets).sum()]
        else:
            err = outputs - targets
            loss = err.pow(2).sum()
            extra = [err.abs().sum(), targets.sum(), targets.pow(2).sum(), err.pow(2).sum()]
        sums[: 2 + len(extra)] += torch.stack([loss.to(dtype), torch.tensor(n, dtype=dtype, device=device),
                                               *[value.to(dtype) for value in extra]])
    model.train(was_training)
    loss_sum, count, *rest = sums.tolist()
    if count == 0:
        return None
    if task == "classification":
        return Evaluation(loss_sum / count, acc=rest[0] / count)
    abs_sum, y_sum, y2_sum, sq_sum = rest[:4]
    total_var = y2_sum - y_sum * y_sum / count
    r2 = 1.0 - sq_sum / total_var if total_var > 0 else float("nan")
    return Evaluation(loss_sum / count, mae=abs_sum / count, r2=r2)
