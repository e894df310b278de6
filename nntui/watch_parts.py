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
    """The losses given to `Monitor.step`, kept as they come: a step only appends to `kept`.

    Nothing is synced or launched per step. At a log step `read_interval` reads the interval's
    losses in the same host sync as the gradient norms (stacked, concatenated with the norms,
    then added up on the host in float64), and `epoch_mean` reads what is left at an epoch end.
    After a backward pass a tensor loss's graph holds no saved tensors, only a few nodes, so
    keeping it costs less than a detach per step would; every FOLD_EVERY kept losses
    (`fold_if_long`, at the monitor's log checks) they are summed on their device under `no_grad`,
    which bounds the list. A float loss is added as it is; a tensor that is not a scalar counts
    as its mean.
    """

    FOLD_EVERY = 64

    def __init__(self) -> None:
        self.kept: list[Any] = []  # losses since the last read or fold: tensors or numbers
        self._folded: torch.Tensor | None = None  # the sum of folded tensor losses, on their device
        self._folded_floats = 0.0
        self._folded_count = 0
        self._epoch_sum = 0.0  # read at log steps, on the host
        self._epoch_count = 0

    def fold_if_long(self) -> None:
        if len(self.kept) >= self.FOLD_EVERY:
            self._fold()

    @torch.no_grad()
    def _fold(self) -> None:
        """The kept losses summed where they are (tensors on their device, numbers on the host)."""
        tensors, floats = _split(self.kept)
        self._folded_count += len(self.kept)
        self.kept.clear()  # in place: the monitor holds its `append`
        self._folded_floats += sum(floats)
        if tensors:
            total = _per_step(tensors).sum()
            self._folded = total if self._folded is None else self._folded + total.to(self._folded.device)

    @torch.no_grad()
    def read_interval(self, norms: torch.Tensor | None = None) -> tuple[float, int, list[float]]:
        """(loss sum, steps with a loss) of the interval and the values of `norms`, in one host
        sync; the interval's sums then go into the epoch's."""
        tensors, floats = _split(self.kept)
        parts = [_per_step(tensors)] if tensors else []
        if self._folded is not None:
            parts.append(self._folded.reshape(1).to(parts[0].device if parts else self._folded.device))
        if norms is not None:
            parts = [part.to(norms.device) for part in parts] + [norms.float()]
        values = (parts[0] if len(parts) == 1 else torch.cat(parts)).tolist() if parts else []
        losses = len(values) - (len(norms) if norms is not None else 0)
        total = sum(values[:losses]) + sum(floats) + self._folded_floats
        count = len(self.kept) + self._folded_count
        self._epoch_sum += total
        self._epoch_count += count
        self.kept.clear()
        self._folded, self._folded_floats, self._folded_count = None, 0.0, 0
        return total, count, values[losses:]

    def epoch_mean(self) -> float:
        """The mean loss of the epoch's steps (NaN without any); the epoch's sums start again."""
        if self.kept or self._folded_count:
            self.read_interval()
        mean = self._epoch_sum / self._epoch_count if self._epoch_count else float("nan")
        self._epoch_sum, self._epoch_count = 0.0, 0
        return mean


def _split(kept: list[Any]) -> tuple[list[torch.Tensor], list[float]]:
    tensors = [value for value in kept if isinstance(value, torch.Tensor)]
    if len(tensors) == len(kept):
        return tensors, []
    return tensors, [float(value) for value in kept if not isinstance(value, torch.Tensor)]


def _per_step(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One float32 value per loss, on the first loss's device (one op for scalar losses alike)."""
    try:
        stacked = torch.stack(tensors)
    except RuntimeError:  # of different shapes, dtypes or devices
        stacked = torch.stack([value.float().mean().to(tensors[0].device) for value in tensors])
    return (stacked.flatten(1).mean(1) if stacked.dim() > 1 else stacked).float()


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
