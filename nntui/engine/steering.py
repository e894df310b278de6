"""The trainer's side of steering: commands at step boundaries, pauses (their time kept, to be
left out of durations), divergence, and the system samples that come while paused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from nntui.engine import checkpoints
from nntui.engine.control import Command, Controls, ObeysCommands
from nntui.engine.events import ControlApplied
from nntui.engine.optim import current_lr
from nntui.engine.system import SystemSampler
from nntui.fs import RunDir


class Diverged(Exception):
    """The loss or a validation metric became NaN or infinite."""


class StopRequested(Exception):
    """A `stop` command arrived; the loop unwinds to save and end."""


class Steering(ObeysCommands):
    """A mixin of `Trainer` (engine/trainer.py), which holds the state used here (and whose
    `save_checkpoint` and `_new_epoch_sums` are called)."""

    paused: bool
    controls: Controls
    system: SystemSampler
    emit: Callable[[Any], None]
    progress: Any
    model: Any
    optimizer: Any
    schedule: Any
    device: Any
    checkpoint_dir: Path | None
    on_divergence: str
    _paused_s: float
    _log_mark: tuple[Any, float]

    def _sample_system(self) -> None:
        sample = self.system.sample(self.progress.step)
        if sample is not None:
            self.emit(sample)

    def _tick_paused(self, now: float) -> None:
        if self.system.due(now):
            self._sample_system()

    def _add_paused(self, seconds: float) -> None:
        self._paused_s += seconds
        marked, marked_time = self._log_mark
        self._log_mark = (marked, marked_time + seconds)

    def _step_now(self) -> int:
        return self.progress.step

    def _change_lr(self, lr: float) -> float:
        old = current_lr(self.optimizer)
        self.schedule.set_lr(lr)  # the schedule goes on from the new LR
        return old

    def _checkpoint_now(self, step: int) -> str:
        path = self.save_checkpoint("last")
        return f"checkpoint written at step {step}: {path}" if path else "no run directory to write to"

    def _record_control(self, event: Any) -> None:
        self.emit(event)

    def _command_done(self, command: Command, step: int, message: str) -> None:
        """Reply; a stop then unwinds the loop, which saves and ends the run."""
        if command.reply is not None:
            command.reply(True, message)
        if command.action == "stop":
            raise StopRequested(f"stop requested ({command.source}) at step {step}")

    def _diverged(self, reason: str) -> None:
        """Stop (raise Diverged), or with `on_divergence="pause"` restore the weights of last.pt and
        pause. The step and epoch counters go on from where the run diverged; the control record
        says so and names the step whose weights were restored (`restored_step`)."""
        last = self.checkpoint_dir / RunDir.LAST if self.checkpoint_dir else None
        if self.on_divergence != "pause" or last is None or not last.is_file():
            raise Diverged(f"{reason}; last good checkpoint: {last if last and last.is_file() else 'none'}")
        good = checkpoints.load(last, self.device)
        self.model.load_state_dict(good["model"])
        self.optimizer.load_state_dict(good["optimizer"])
        self.schedule.load_state_dict(good["schedule"])
        self._epoch_sums = self._new_epoch_sums()
        self._log_mark = (self._epoch_sums.running_total(), time.monotonic())
        restored, step = int(good["progress"]["step"]), self.progress.step
        message = (f"{reason}; weights restored from {RunDir.CHECKPOINTS}/{RunDir.LAST} (step {restored}); "
                   f"counters go on from step {step}; paused: lower the learning rate, then resume")
        self.emit(ControlApplied(step, "pause", None, "divergence", message, restored_step=restored))
        self.paused = True
        self._obey([])
