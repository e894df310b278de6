"""Running sums of a training epoch, gathered without launching a kernel per step."""

from __future__ import annotations

from typing import Any

import torch

_FLUSH_EVERY = 64  # steps; bounds the memory held by pending outputs


class EpochSums:
    """The epoch's loss * samples and correct predictions (on the device) and sample count (host).

    Each step only keeps references to its detached loss and outputs; `flush` folds them in with
    a handful of batched ops. Nothing here waits for the device: reading values is the caller's
    (log-interval) sync.
    """

    def __init__(self, device: torch.device, loss: torch.Tensor | None = None,
                 correct: torch.Tensor | None = None, count: int = 0) -> None:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.loss = loss if loss is not None else torch.zeros((), dtype=dtype, device=device)
        self.correct = correct if correct is not None else torch.zeros((), dtype=torch.int64, device=device)
        self.count = count
        self._losses: list[torch.Tensor] = []
        self._sizes: list[int] = []
        self._outputs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, size: int, outputs: torch.Tensor | None = None,
            targets: torch.Tensor | None = None) -> None:
        """Record one step (outputs and targets only for classification)."""
        self._losses.append(loss.detach())
        self._sizes.append(size)
        self.count += size
        if outputs is not None:
            self._outputs.append(outputs.detach())
            self._targets.append(targets)  # type: ignore[arg-type]
        if len(self._losses) >= _FLUSH_EVERY:
            self.flush()

    def _pending_loss(self) -> torch.Tensor:
        losses, sizes = torch.stack(self._losses), self._sizes
        if len(set(sizes)) == 1:
            return losses.sum() * sizes[0]
        # an epoch's short last batch: python scalars, so no host-to-device copy
        return torch.stack([loss * size for loss, size in zip(losses, sizes)]).sum()

    def flush(self) -> None:
        if not self._losses:
            return
        self.loss += self._pending_loss()
        if self._outputs:
            predicted = torch.cat(self._outputs).argmax(1)
            self.correct += (predicted == torch.cat(self._targets)).sum()
        self._losses, self._sizes, self._outputs, self._targets = [], [], [], []

    def running_total(self) -> tuple[torch.Tensor, int]:
        """(loss * samples, samples) so far, pending steps included, without folding them in:
        folds happen at fixed steps only, so when and how often the caller looks (log intervals,
        resumes) never changes the floating-point sums of the epoch."""
        if not self._losses:
            return self.loss.clone(), self.count
        return self.loss + self._pending_loss(), self.count

    def totals(self) -> tuple[float, int, int]:
        self.flush()
        return float(self.loss), int(self.correct), self.count

    def to_state(self) -> dict[str, Any]:
        """Sums and the steps not folded in yet: folding at the same steps after a resume keeps
        the floating-point sums, and so the epoch metrics, bit-identical."""
        def on_host(items: list[torch.Tensor]) -> list[torch.Tensor]:
            return [item.detach().cpu() for item in items]

        return {"loss": self.loss.detach().cpu(), "correct": self.correct.detach().cpu(), "count": self.count,
                "pending_losses": on_host(self._losses), "pending_sizes": list(self._sizes),
                "pending_outputs": on_host(self._outputs), "pending_targets": on_host(self._targets)}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> "EpochSums":
        sums = cls(device, state["loss"].to(device), state["correct"].to(device), int(state["count"]))
        sums._losses = [item.to(device) for item in state.get("pending_losses", [])]
        sums._sizes = [int(size) for size in state.get("pending_sizes", [])]
        sums._outputs = [item.to(device) for item in state.get("pending_outputs", [])]
        sums._targets = [item.to(device) for item in state.get("pending_targets", [])]
        return sums
