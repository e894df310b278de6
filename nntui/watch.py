"""`nntui.Monitor`: a training loop of the user's own, watched and steered like an `nntui run`.

It writes the run directory and records of CONTRACT.md through the engine's own pieces (events,
the run directory's writer, the control channel, checkpoints, gradient norms, system samples,
early stopping), so `nntui attach`, `show`, `runs` and `ctl` work on it as on any run.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from nntui.engine import checkpoints
from nntui.engine.control import Command, Controls, ObeysCommands
from nntui.engine.early_stopping import EarlyStopping
from nntui.engine.events import CheckpointSaved, EpochEnded, GradNorms, RunEnded, RunStarted, StepLogged
from nntui.engine.failures import one_line
from nntui.engine.gradients import GradNormProbe, UpdateRatioProbe, global_norm
from nntui.engine.optim import current_lr
from nntui.engine.system import SystemSampler
from nntui.fs import RunDir
from nntui.watch_parts import SignalStops, StepLosses, checkpoint_state, metric_value, set_learning_rate
from nntui.watch_session import config_text, open_writer, plain, resolve_run_dir, run_config, script_name

MONITOR_RATIO_SHARE = 0.0002  # update ratios are measured at most about this share of the loop's time
EPOCH_FIELDS = ("train_loss", "val_loss", "train_acc", "val_acc", "val_mae", "val_r2")


class Monitor(ObeysCommands):
    """Watch and steer a training loop you wrote; use it as a context manager.

    ```python
    with nntui.Monitor(model, optimizer, epochs=10) as monitor:
        for epoch in range(10):
            for inputs, targets in loader:
                optimizer.zero_grad()
                loss = loss_fn(model(inputs), targets)
                loss.backward()
                optimizer.step()
                monitor.step(loss=loss)
                if monitor.should_stop:
                    break
            monitor.epoch(val_loss=val_loss)
            if monitor.should_stop:
                break
    ```

    `step` is called after `optimizer.step()`: the per-layer gradient norms are read from the
    model's gradients then (at log steps), so call `optimizer.zero_grad()` at the top of the loop,
    not between `optimizer.step()` and `monitor.step()`.

    Arguments beyond the contract's: `log_every` and `log_interval_s` (a step record every
    `log_every` steps and at least that many seconds apart, as `train.log_every` and
    `train.log_interval_s` of a preset), `early_stopping` (options of a preset's
    `[early_stopping]`, e.g. `{"monitor": "val_loss", "patience": 5}`: `should_stop` becomes
    true when it says so), `state` (a callable whose result, plain types and tensors, goes into
    the checkpoint under "state"), `batch_size` (makes the throughput samples per second; else
    steps per second), `steps_per_epoch` (the monitor's progress bar; by default the train size
    over the batch size, when both are given), `train_size`, `val_size` and `test_size` (the
    samples of each split, for the start record and the monitor's header, which leaves them out
    when none is given), `handle_signals` (False leaves SIGINT and SIGTERM to the script).
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, name: str | None = None,
                 config: Mapping[str, Any] | None = None, epochs: int | None = None, task: str = "classification",
                 runs_dir: str | os.PathLike[str] | None = None, *, log_every: int = 10, log_interval_s: float = 0.2,
                 early_stopping: Mapping[str, Any] | None = None, state: Callable[[], Any] | None = None,
                 batch_size: int | None = None, steps_per_epoch: int | None = None,
                 train_size: int | None = None, val_size: int | None = None, test_size: int | None = None,
                 handle_signals: bool = True) -> None:
        if task not in ("classification", "regression"):
            raise ValueError(f"nntui.Monitor: task must be classification or regression, not {task!r}")
        self.model, self.optimizer, self.epochs, self.task = model, optimizer, epochs, task
        self.name, self.config, self.runs_dir = name, plain(dict(config or {})), runs_dir
        self.log_every, self.log_interval_s = max(1, int(log_every)), float(log_interval_s)
        self.early_options = dict(early_stopping) if early_stopping is not None else None
        self.state_fn, self.batch_size = state, batch_size
        self.sizes = (train_size or 0, val_size or 0, test_size or 0)
        if steps_per_epoch is None and batch_size and train_size:
            steps_per_epoch = math.ceil(train_size / batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.handle_signals = handle_signals
        self.run_dir: Path | None = None  # set on entering the block
        self.global_step = 0  # steps so far
        self.epoch_number = 1  # the epoch being trained (from 1)
        self.paused = False
        self._stop_reason = ""  # why should_stop became true ("" while it has not)
        self._status = ""  # stopped or early_stopped once decided
        self.controls = Controls()
        self._commands_waiting = self.controls.waiting  # truthy while commands wait
        # steps between checks: a divisor of log_every (log steps stay where they were) that keeps
        # the kept losses at most about StepLosses.FOLD_EVERY
        self._check_every = max(d for d in range(1, StepLosses.FOLD_EVERY + 1) if self.log_every % d == 0)
        self._signals = SignalStops(self.controls)
        self._losses = StepLosses()
        self._keep_loss = self._losses.kept.append
        self._probe = GradNormProbe(model)
        # a tenth of the trainer's share: run cold inside the user's loop, at every log step they
        # cost a digits-sized loop about 0.8% (measured); this way about 0.1%
        self._update_probe = UpdateRatioProbe(model, cost_share=MONITOR_RATIO_SHARE)
        self._noted_at = -1  # the step after which the update probe noted the weights
        self._writer: Any = None
        self._channel: Any = None
        self._early: EarlyStopping | None = None

    # ------------------------------------------------------------------ the block

    def __enter__(self) -> Monitor:
        cfg = run_config(preset=script_name(), task=self.task, epochs=self.epochs,
                         lr=current_lr(self.optimizer),
                         optimizer=type(self.optimizer).__name__.lower(), device=str(self._device()),
                         log_every=self.log_every, log_interval_s=self.log_interval_s,
                         early_stopping=self.early_options)
        if self.early_options is not None:
            self._early = EarlyStopping.from_config(cfg.early_stopping)
        run_dir, made = resolve_run_dir(self.name, self.runs_dir)
        self._writer = open_writer(run_dir, made, cfg, config_text(cfg, self.config, script_name()))
        self.run_dir = self._writer.run_dir
        try:
            self._open_channel()
            self._start_clocks()
            self._writer(self._started_event(cfg.name))
        except BaseException:
            self._close()
            raise
        if self.handle_signals:
            self._signals.install()
        return self

    def _open_channel(self) -> None:
        from nntui.channel import ChannelServer

        self._channel = ChannelServer(self._writer.run_dir, self.controls, directory=self._writer.directory)
        self._channel.open()

    def _start_clocks(self) -> None:
        self._system = SystemSampler(self._device())
        self._started = self._last_log = self._mark_time = self._epoch_started = time.monotonic()
        self._paused_s = self._epoch_paused_from = 0.0
        self._logged_step = 0
        self._epoch_first_step = 0  # the global step before the epoch's first

    def _device(self) -> torch.device:
        first = next(iter(self.model.parameters()), None)
        return first.device if first is not None else torch.device("cpu")

    def _started_event(self, preset: str) -> RunStarted:
        return RunStarted(
            preset=preset, device=str(self._device()), params=sum(p.numel() for p in self.model.parameters()),
            train_size=self.sizes[0], val_size=self.sizes[1], test_size=self.sizes[2], resumed_from=None,
            task=self.task, epochs=self.epochs or 1,
            steps_per_epoch=self.steps_per_epoch or 0, batch_size=self.batch_size or 0,
            optimizer=type(self.optimizer).__name__, lr=current_lr(self.optimizer), run_name=self.run_dir.name, pid=os.getpid(),
            layers=self._probe.names, early_stop=self._early.status() if self._early else None, own_loop=True)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: Any) -> bool:
        try:
            if self._writer is not None and self._writer.end is None:
                self._write_end(*self._outcome(error))
        finally:
            self._close()
        return False  # an exception goes on up

    def _obey_last_commands(self) -> None:
        """A stop the loop saw through `should_stop` (a signal) before a step obeyed it is carried
        out (recorded, checkpointed); other commands come too late for a loop that has ended."""
        for command in self.controls.drain():
            if command.action == "stop":
                self._apply(command)
            elif command.reply is not None:
                command.reply(False, "the loop has ended")

    def _outcome(self, error: BaseException | None) -> tuple[str, str, str | None]:
        """(status, reason, error text) of the block's end."""
        if isinstance(error, SystemExit) and error.code in (0, None):
            error = None
        if error is None:
            with contextlib.suppress(OSError):  # the writer keeps its error; the end record must come
                self._obey_last_commands()
                if self._logged_step < self.global_step:
                    self._log_step()  # the last steps' record
            if self._status:
                return self._status, self._stop_reason, None
            return "completed", f"trained {self.global_step} steps", None
        if isinstance(error, KeyboardInterrupt):
            return "stopped", "interrupted (KeyboardInterrupt)", None
        message = one_line(error)
        return "failed", message, message

    def _write_end(self, status: str, reason: str, error: str | None) -> None:
        if self._system.due(time.monotonic()) or not self._system.taken:
            self._sample_system()
        best = self._early
        self._writer(RunEnded(status=status, epoch=max(self.epoch_number - (0 if self._epoch_steps else 1), 0),
                              step=self.global_step, best_epoch=best.best_epoch if best else None,
                              best=best.best if best else None, wall_s=round(self._wall_s(), 3), error=error,
                              reason=reason, paused_s=round(self._paused_s, 3)))

    def _close(self) -> None:
        self._signals.restore()
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._writer is not None:
            self._writer.close()

    # ------------------------------------------------------------------ steps

    @property
    def should_stop(self) -> bool:
        """True once a `stop` (command or signal) was obeyed or early stopping said so; a signal
        counts at once, before the next step obeys it."""
        return bool(self._stop_reason) or bool(self._signals.received)

    def step(self, loss: Any = None) -> None:
        """One training step done (call it after `optimizer.step()`). `loss` (a tensor or a float)
        is kept where it is and read on the host only at a log step; commands are obeyed here.
        A step does as little as it can (two checks and an append): it runs as often as the loop."""
        self.global_step = step = self.global_step + 1
        if loss is not None:
            self._keep_loss(loss)
        if self._commands_waiting:
            self._obey(self.controls.drain())
        if step % self._check_every == 0:
            self._check(step)
        if (step + 1) % self.log_every == 0 and self._log_interval_passed() and self._update_probe.before():
            self._noted_at = step  # the weights the next (log) step's update starts from

    def _check(self, step: int) -> None:
        """Every `_check_every` steps: a step record when one is due, else keep the kept losses few."""
        if step % self.log_every == 0 and self._log_interval_passed():
            self._log_step()
        else:
            self._losses.fold_if_long()

    @property
    def _epoch_steps(self) -> int:
        return self.global_step - self._epoch_first_step

    def _log_interval_passed(self) -> bool:
        return time.monotonic() - self._last_log >= self.log_interval_s

    def _log_step(self) -> None:
        """The one host sync of a log interval: the interval's loss and the gradient norms."""
        norms = self._probe.norms()
        # the update of this step, when the step before noted the weights (not at an epoch end's record)
        ratios = self._update_probe.ratios() if self._noted_at == self.global_step - 1 else None
        loss_sum, count, values = self._losses.read_interval(norms if ratios is None else torch.cat([norms, ratios]))
        norms, ratios = values[:len(norms)], values[len(norms):]
        steps = self.global_step - self._logged_step
        now = time.monotonic()
        samples = steps * (self.batch_size or 1)
        loss = loss_sum / count if count else math.nan
        self._writer(StepLogged(self.global_step, self.epoch_number, loss, current_lr(self.optimizer), global_norm(norms),
                                samples / max(now - self._mark_time, 1e-9)))
        self._writer(GradNorms(self.global_step, tuple(zip(self._probe.names, norms)),
                               tuple(zip(self._probe.names, ratios))))
        self._last_log = self._mark_time = now
        self._logged_step = self.global_step
        if self._system.due(now):
            self._sample_system()

    def _sample_system(self) -> None:
        sample = self._system.sample(self.global_step)
        if sample is not None:
            self._writer(sample)

    def _wall_s(self) -> float:
        return time.monotonic() - self._started - self._paused_s

    # ------------------------------------------------------------------ commands

    def _tick_paused(self, now: float) -> None:
        if self._system.due(now):
            self._sample_system()

    def _add_paused(self, seconds: float) -> None:
        self._paused_s += seconds
        self._mark_time += seconds

    def _step_now(self) -> int:
        return self.global_step

    def _change_lr(self, lr: float) -> float:
        old = current_lr(self.optimizer)
        set_learning_rate(self.optimizer, lr)
        return old

    def _checkpoint_now(self, step: int) -> str:
        return f"checkpoint written at step {step}: {self.checkpoint()}"

    def _record_control(self, event: Any) -> None:
        self._writer(event)

    def _command_done(self, command: Command, step: int, message: str) -> None:
        """A stop sets `should_stop` and writes a checkpoint before the reply; the loop ends itself."""
        if command.action == "stop" and not self._stop_reason:
            self._stop(f"stop requested ({command.source}) at step {step}", "stopped")
        if command.reply is not None:
            command.reply(True, message)

    def _stop(self, reason: str, status: str) -> None:
        self._stop_reason, self._status = reason, status
        self.checkpoint()

    def checkpoint(self) -> Path:
        """Write checkpoints/last.pt now (atomically): the model's and the optimizer's state, where
        the loop stands, the `config=` and what `state()` returns. Loads with
        `torch.load(path, weights_only=True)`. Its path."""
        progress = {"epoch": self.epoch_number, "batch": self._epoch_steps, "step": self.global_step,
                    "wall_s": self._wall_s(), "paused_s": self._paused_s}
        path = RunDir(self.run_dir).last_checkpoint
        checkpoints.save_atomic(checkpoint_state(self.model, self.optimizer, progress, self.config, self.state_fn),
                                path)
        self._writer(CheckpointSaved(self.global_step, self.epoch_number, "last", str(path)))
        return path

    # ------------------------------------------------------------------ epochs

    def epoch(self, **metrics: Any) -> None:
        """An epoch has ended: write its record with `metrics` (floats or tensors; `train_loss`
        defaults to the mean of the epoch's step losses). A metric named in `early_stopping`
        decides whether to stop (`should_stop`). Commands waiting are obeyed here too."""
        values = {name: metric_value(name, value) for name, value in metrics.items()}
        final = not self.epochs or self.epoch_number >= self.epochs
        if self._logged_step < self.global_step and (final or self._log_interval_passed()):
            self._log_step()  # the epoch's last steps, as the trainer logs them
        train_loss = self._losses.epoch_mean()
        values.setdefault("train_loss", train_loss)
        epoch, now = self.epoch_number, time.monotonic()
        improved_stop = self._early.update(epoch, values.get(self._early.monitor)) if self._early else (False, False)
        paused = self._paused_s - self._epoch_paused_from
        event = EpochEnded(epoch=epoch, step=self.global_step, lr=current_lr(self.optimizer),
                           **{key: values.get(key) for key in EPOCH_FIELDS}, early_stop=self._early.status()
                           if self._early else None, epoch_s=now - self._epoch_started - paused, paused_s=paused)
        self._writer.write_extra(event, {key: value for key, value in values.items() if key not in EPOCH_FIELDS})
        self.epoch_number += 1
        self._epoch_first_step = self._logged_step = self.global_step  # the next record counts from here
        self._epoch_started, self._epoch_paused_from = now, self._paused_s
        self._mark_time = time.monotonic()  # its throughput leaves the validation out
        if improved_stop[1] and not self._stop_reason:
            self._stop(f"no improvement of {self._early.monitor} in {self._early.patience} epochs",  # type: ignore[union-attr]
                       "early_stopped")
        if self._commands_waiting:
            self._obey(self.controls.drain())
        if self._system.due(now):
            self._sample_system()
