"""The pieces of `nntui.Monitor` that touch torch: step losses summed on the device, the learning
rate set across parameter groups, the checkpoint's contents, signals turned into `stop` commands."""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable

import torch

from nntui.engine.control import Command, Controls

STOP_SIGNALS = ("SIGINT", "SIGTERM")


class StepLosses:
    """The losses given to `Monitor.step`, kept where they are (no host sync per step).

    A tensor loss is kept as it comes in a list and the list summed on its device (under
    `no_grad`) every `FOLD_EVERY` losses and when read, as the trainer's `EpochSums` does: a detach
    or an add per step would cost more than the rest of `step`, and after the backward pass a
    loss's graph holds no saved tensors, only a few nodes until the next fold. A float loss is
    added to a float. `interval_sum` is read (synced) at a log step, then folded into the epoch's.
    """

    FOLD_EVERY = 64

    def __init__(self) -> None:
        self._kept: list[torch.Tensor] = []
        self._interval: torch.Tensor | None = None  # float32, on the losses' device
        self._interval_float = 0.0
        self.interval_count = 0
        self._epoch: torch.Tensor | None = None
        self._epoch_float = 0.0
        self.epoch_count = 0

    def add(self, loss: Any) -> None:
        if isinstance(loss, torch.Tensor):
            self._kept.append(loss)
            if len(self._kept) >= self.FOLD_EVERY:
                self._sum_kept()
        else:
            self._interval_float += float(loss)
        self.interval_count += 1

    @torch.no_grad()
    def _sum_kept(self) -> None:
        """The kept losses added to the interval's sum, on their device (a loss that is not a
        scalar counts as its mean)."""
        kept, self._kept = self._kept, []
        try:
            stacked = torch.stack(kept)  # one op for losses alike (the usual case)
        except RuntimeError:  # of different shapes, dtypes or devices
            stacked = torch.stack([value.float().mean().to(kept[0].device) for value in kept])
        total = (stacked.flatten(1).mean(1) if stacked.dim() > 1 else stacked).float().sum()
        self._interval = total if self._interval is None else self._interval + total.to(self._interval.device)

    @torch.no_grad()
    def interval_sum(self, like: torch.Tensor) -> torch.Tensor:
        """The interval's sum as a 1-element float32 tensor on `like`'s device (not synced)."""
        if self._kept:
            self._sum_kept()
        total = like.new_full((1,), self._interval_float, dtype=torch.float32)
        return total if self._interval is None else total + self._interval.reshape(1).to(total.device)

    @torch.no_grad()
    def fold_interval(self) -> None:
        """Move the interval's losses into the epoch's sums (after the interval was read)."""
        if self._kept:
            self._sum_kept()
        if self._interval is not None:
            self._epoch = self._interval if self._epoch is None else self._epoch + self._interval
            self._interval = None
        self._epoch_float += self._interval_float
        self._interval_float = 0.0
        self.epoch_count += self.interval_count
        self.interval_count = 0

    def epoch_mean(self) -> float:
        """The mean loss of the epoch's steps (NaN without any); the epoch's sums start again."""
        self.fold_interval()
        total = self._epoch_float + (float(self._epoch) if self._epoch is not None else 0.0)
        mean = total / self.epoch_count if self.epoch_count else float("nan")
        self._epoch, self._epoch_float, self.epoch_count = None, 0.0, 0
        return mean


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The first parameter group's learning rate becomes `lr`; the others keep their ratio to it
    (a group at a tenth of the first stays at a tenth). A tensor LR is changed in place."""
    groups = optimizer.param_groups
    first = float(groups[0]["lr"])
    for group in groups:
        old = group["lr"]
        new = lr * float(old) / first if first > 0 else lr
        if isinstance(old, torch.Tensor):
            old.fill_(new)
        else:
            group["lr"] = new


def metric_value(name: str, value: Any) -> float:
    """A metric given to `Monitor.epoch` as a float (a tensor is read here: an epoch end may sync)."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        value = value.float().mean() if value.dim() else value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"nntui.Monitor.epoch: {name} must be a number or a tensor, not {type(value).__name__}") \
            from None


class SignalStops:
    """SIGINT and SIGTERM become `stop` commands (source `signal`), obeyed at the next step
    boundary; a second SIGINT raises KeyboardInterrupt as usual (a loop stuck elsewhere can still
    be interrupted). Installed only from the main thread, where Python runs handlers."""

    def __init__(self, controls: Controls) -> None:
        self.controls = controls
        self.received: list[str] = []
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for name in STOP_SIGNALS:
            signum = getattr(signal, name)
            self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if name == "SIGINT" and "SIGINT" in self.received:
            raise KeyboardInterrupt
        self.received.append(name)  # a deque's and a list's append are atomic: safe in a handler
        self.controls.submit(Command("stop", name, "signal"))

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()


def checkpoint_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, progress: dict[str, Any],
                     config: dict[str, Any], state: Callable[[], Any] | None) -> dict[str, Any]:
    """What checkpoints/last.pt holds: the model's and the optimizer's state, where the loop stood,
    the script's `config=`, and what `state()` returns (under "state")."""
    from nntui.engine.checkpoint_files import FORMAT

    saved = {"format": FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "progress": progress, "config": config}
    if state is not None:
        saved["state"] = state()
    return saved
