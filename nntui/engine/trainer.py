"""The training loop. Its only way out is a stream of events; its only way in is `Controls`."""

from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from nntui.config import RunConfig
from nntui.engine import checkpoints
from nntui.engine.best_weights import BestWeights
from nntui.engine.checkpoint_files import FORMAT, CheckpointError, load_model_weights, load_trainer_state
from nntui.engine.control import Command, Controls
from nntui.engine.early_stopping import EarlyStopping
from nntui.engine.epoch_sums import EpochSums, difference
from nntui.engine.evaluate import Evaluation, evaluate, loss_function, until_stopped
from nntui.engine.events import (
    CheckpointSaved,
    ControlApplied,
    EpochEnded,
    Event,
    ForkSource,
    GradNorms,
    RunEnded,
    RunStarted,
    StepLogged,
)
from nntui.engine.failures import one_line
from nntui.engine.gradients import GradNormProbe, UpdateRatioProbe, global_norm
from nntui.engine.modes import ModeSwitch
from nntui.engine.optim import LRSchedule, build_optimizer, current_lr, implementation
from nntui.engine.precision import compile_ahead, prepare_forward, step_functions
from nntui.engine.regularization import build_penalty
from nntui.engine.steering import Diverged, Steering, StopRequested
from nntui.engine.system import SystemSampler
from nntui.fs import RunDir

Emit = Callable[[Event], None]
SAVE_COST_SHARE = 0.002  # epoch-end checkpoints take at most about this share of the training time
CHECKPOINT_FILES = {"last": RunDir.LAST, "best": RunDir.BEST}  # a checkpoint's kind -> its file


@dataclass
class Progress:
    """Where the loop stands: `batch` is the next batch of `epoch` to train."""

    epoch: int = 1
    batch: int = 0
    step: int = 0
    wall_s: float = 0.0  # trained, over the earlier sessions (pauses left out)
    paused_s: float = 0.0  # paused, over the earlier sessions

    @property
    def last_epoch(self) -> int:
        """The last epoch trained in (0 before the first step)."""
        return self.epoch if self.batch else self.epoch - 1


class Trainer(Steering):
    """Trains `model` on `data` as `cfg` says, emitting events and obeying commands at step boundaries."""

    def __init__(self, cfg: RunConfig, data: Any, model: nn.Module, device: torch.device, emit: Emit,
                 controls: Controls | None = None, checkpoint_dir: Path | None = None,
                 run_name: str = "", on_divergence: str = "stop") -> None:
        self.cfg, self.data, self.model, self.device = cfg, data, model, device
        self.emit, self.controls = emit, controls if controls is not None else Controls()
        self.checkpoint_dir, self.run_name, self.on_divergence = checkpoint_dir, run_name, on_divergence
        self.task = cfg.task
        self._config_dict = cfg.to_dict()
        self.loss_fn = loss_function(cfg.task)
        self.forward, self.channels_last = prepare_forward(model, cfg, device)  # None: the model itself
        self.optimizer = build_optimizer(model.parameters(), cfg.optim, device)
        self.steps = step_functions(self.optimizer, cfg.train.precision, device)
        self.schedule = LRSchedule(self.optimizer, cfg, len(data.train))
        self.penalty = build_penalty(model, cfg.regularization)
        self.probe = GradNormProbe(model)
        self.update_probe = UpdateRatioProbe(model)
        self.system = SystemSampler(device)
        self.modes = ModeSwitch(model)
        self._trained_params = [p for p in model.parameters() if p.requires_grad]  # once: a walk over the modules costs ~80 µs
        self.early = EarlyStopping.from_config(cfg.early_stopping)
        self.progress = Progress()
        self.resumed_from: int | None = None
        self.forked_from: ForkSource | None = None  # set by `engine.fork.start_fork`
        self.replayed_from: str | None = None  # set by `engine.replay.Replay.attach`
        self.paused = False
        self.best = BestWeights(model, self._config_dict)
        self.error_traceback: str | None = None
        self._session_start = time.monotonic()
        self._epoch_sums = self._new_epoch_sums()
        self._last_saved = -math.inf
        self._last_save_s = math.inf  # how long the last checkpoint took to write
        self.phase = "starting"  # what the loop is doing, for an out-of-memory message
        self._last_log_s = -math.inf
        self._epoch_started = time.monotonic()
        self._log_mark: tuple[tuple[torch.Tensor | None, int], float] = ((None, 0), self._epoch_started)
        self._paused_s = 0.0  # paused in this session
        self._epoch_paused_from = 0.0  # `_paused_s` when the epoch began
        self._epoch_lr = math.nan  # a per-batch schedule's LR at the epoch's last step
        self._logged_lr = math.nan  # the LR of the step being logged

    # ------------------------------------------------------------------ state

    def _new_epoch_sums(self) -> EpochSums:
        return EpochSums(self.device, self.task == "classification")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the loop stands (plain types and tensors)."""
        progress = self.progress
        return {
            "format": FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "early_stopping": self.early.state_dict(),
            "rng": checkpoints.rng_state(),
            "progress": {"epoch": progress.epoch, "batch": progress.batch, "step": progress.step,
                         "wall_s": self._wall_s(), "paused_s": self._total_paused_s()},
            "epoch_sums": self._epoch_sums.to_state(),
            "config": self._config_dict,
            **self.steps.state_dict(),  # the gradient scaler's, for float16
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"], steps_done=int(state["progress"]["step"]))
        self.early.load_state_dict(state["early_stopping"])
        self.steps.load_state_dict(state)
        checkpoints.set_rng_state(state["rng"])
        p = state["progress"]
        self.progress = Progress(int(p["epoch"]), int(p["batch"]), int(p["step"]), float(p["wall_s"]),
                                 float(p.get("paused_s", 0.0)))
        self._epoch_sums = EpochSums.from_state(state["epoch_sums"], self.device, self.task == "classification")
        self._session_start, self._paused_s = time.monotonic(), 0.0

    def resume_from(self, path: Path) -> None:
        """Continue from a checkpoint written by `state_dict` (CheckpointError for one that is not)."""
        state = load_trainer_state(path, self.device)
        best = self.checkpoint_dir / RunDir.BEST if self.checkpoint_dir else None
        best_weights = load_model_weights(best, self.device) if best and best.is_file() and self.early.restore_best \
            else None
        try:
            self.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as error:
            raise CheckpointError(f"{path} does not fit this run: {one_line(error)[:200]}") from None
        self.resumed_from = self.progress.step
        self.best.weights = best_weights

    def _wall_s(self) -> float:
        """Seconds trained over all sessions, pauses left out."""
        return self.progress.wall_s + (time.monotonic() - self._session_start) - self._paused_s

    def _total_paused_s(self) -> float:
        return self.progress.paused_s + self._paused_s

    def save_checkpoint(self, kind: str = "last") -> Path | None:
        """Write the `kind` checkpoint (last.pt comes with best.pt when the best epoch is not written
        yet); its path, or None when the trainer has no checkpoint directory."""
        if self.checkpoint_dir is None:
            return None
        started = time.monotonic()
        if kind == "last":
            self._save_best()
        path = self.checkpoint_dir / CHECKPOINT_FILES[kind]
        checkpoints.save_atomic(self.state_dict(), path)
        if kind == "last":
            self._last_saved = time.monotonic()
            self._last_save_s = self._last_saved - started
        self.emit(CheckpointSaved(self.progress.step, self.progress.epoch, kind, str(path)))
        return path

    def _save_best(self) -> None:
        """Write best.pt: the best epoch's weights, kept in memory until the next checkpoint."""
        best = self.best.take_unsaved()
        if best is not None and self.checkpoint_dir is not None:
            path = self.checkpoint_dir / RunDir.BEST
            checkpoints.save_atomic(best, path)
            self.emit(CheckpointSaved(int(best["progress"]["step"]), int(best["progress"]["epoch"]) - 1,
                                      "best", str(path)))

    def _checkpoint_due(self) -> bool:
        """At an epoch end: as often as writing costs at most SAVE_COST_SHARE of the time (so a short
        run killed at any point loses little), and at least every `train.checkpoint_every_s`."""
        since = time.monotonic() - self._last_saved
        return since >= self.cfg.train.checkpoint_every_s or since * SAVE_COST_SHARE >= self._last_save_s

    # ------------------------------------------------------------------ run

    def run(self) -> RunEnded:
        """Train to the end (completed, early-stopped, stopped, diverged or failed); never raises."""
        self.emit(self._started_event())
        try:
            if self.resumed_from is None:
                self.save_checkpoint("last")  # a good state to return to if the first epoch diverges
            if self.cfg.train.compile:
                compile_ahead(self)
            status, reason = self._train()
        except Diverged as error:
            status, reason = "diverged", str(error)
        except Exception as error:  # noqa: BLE001 -- any failure ends the run with a record
            return self._failed(error)
        try:
            return self._finish(status, reason)
        except Exception as error:  # noqa: BLE001 -- the test pass too
            return self._failed(error)

    def _failed(self, error: Exception) -> RunEnded:
        self.error_traceback = traceback.format_exc()
        message = one_line(error, self.cfg, self.phase)
        return self._end("failed", reason=message, error=message)

    def _started_event(self) -> RunStarted:
        cfg, data = self.cfg, self.data
        return RunStarted(
            preset=cfg.name, device=str(self.device), params=sum(p.numel() for p in self.model.parameters()),
            train_size=data.train.num_samples, val_size=data.val.num_samples, test_size=data.test.num_samples,
            resumed_from=self.resumed_from, task=cfg.task, epochs=cfg.train.epochs,
            steps_per_epoch=len(data.train), batch_size=cfg.data.batch_size, optimizer=cfg.optim.name,
            lr=current_lr(self.optimizer), run_name=self.run_name, pid=os.getpid(),
            layers=self.probe.names, early_stop=self.early.status() if cfg.early_stopping.enabled else None,
            forked_from=self.forked_from, replayed_from=self.replayed_from,
            optim_impl=implementation(self.optimizer), channels_last=self.channels_last,
            augment_on=data.train.augment_on)

    def _train(self) -> tuple[str, str]:
        while self.progress.epoch <= self.cfg.train.epochs:
            try:
                self._train_epoch()
                stop_early = self._end_epoch()
            except StopRequested as stop:
                self.save_checkpoint("last")
                return "stopped", str(stop)
            if stop_early:
                return "early_stopped", f"no improvement of {self.early.monitor} in {self.early.patience} epochs"
        return "completed", f"trained {self.cfg.train.epochs} epochs"

    def _finish(self, status: str, reason: str) -> RunEnded:
        if status == "stopped":
            return self._end(status, reason)
        if status == "diverged":
            self._save_best()
            return self._end(status, reason, error=reason)
        if self.cfg.early_stopping.enabled and self.early.restore_best:
            # as Keras 3 at the end of training, early-stopped or not; last.pt keeps the last weights
            self.best.restore()
        self.phase = "testing"
        stopped: list[str] = []
        test = evaluate(self.model, until_stopped(self.data.test.batches(0), self.controls,
                                                  lambda command: self._stop_testing(command, stopped)),
                        self.task, self.device, self.modes, self.forward)
        if stopped:  # the test pass was cut short: its partial metrics would mislead, so none are reported
            return self._end("stopped", stopped[0])
        return self._end(status, reason, test=test)

    def _stop_testing(self, command: Command, stopped: list[str]) -> str:
        message = f"stopping the test pass at step {self.progress.step} ({command.source})"
        self.emit(ControlApplied(self.progress.step, "stop", command.value, command.source, message))
        stopped.append(f"stop requested ({command.source}) during the test pass")
        return message

    def _end(self, status: str, reason: str, test: Evaluation | None = None, error: str | None = None) -> RunEnded:
        metrics = test.as_dict("test") if test else {}
        if self.system.due(time.monotonic()) or not self.system.taken:
            with contextlib.suppress(OSError):  # the writer keeps its error; the end record must come
                self._sample_system()  # a short run has one too
        end = RunEnded(status=status, epoch=min(self.progress.last_epoch, self.cfg.train.epochs),
                       step=self.progress.step, best_epoch=self.early.best_epoch, best=self.early.best,
                       wall_s=round(self._wall_s(), 3), error=error, reason=reason,
                       paused_s=round(self._total_paused_s(), 3), **metrics)
        self.emit(end)
        return end

    # ------------------------------------------------------------------ epochs and steps

    def _train_epoch(self) -> None:
        progress, optimizer = self.progress, self.optimizer
        forward = self.forward if self.forward is not None else self.model  # compiled, autocast: see precision
        backward, optimizer_step = self.steps.backward, self.steps.step  # plain in float32: Tensor.backward, optimizer.step
        log_every, clip = self.cfg.train.log_every, self.cfg.train.grad_clip
        min_log_s, last_batch = self.cfg.train.log_interval_s, len(self.data.train)
        final_epoch = progress.epoch == self.cfg.train.epochs  # its last step is always logged
        sums, penalty, loss_fn, controls, trained = self._epoch_sums, self.penalty, self.loss_fn, self.controls, \
            self._trained_params
        commands_waiting = controls.waiting
        schedule = self.schedule if self.schedule.acts_after_batches else None
        self._epoch_started, self._epoch_paused_from = time.monotonic(), self._paused_s
        self._log_mark = (sums.running_total(), self._epoch_started)
        self.phase = "training"
        self.modes.set(True)
        for inputs, targets in self.data.train.batches(progress.epoch, progress.batch):
            if commands_waiting:
                self._obey(controls.drain())
            for param in trained:  # zero_grad(set_to_none=True) without its profiler scaffolding (7 µs a step)
                param.grad = None  # before the forward pass: the memory can be reused
            outputs = forward(inputs)
            loss = loss_fn(outputs, targets)
            objective = loss + penalty() if penalty is not None else loss
            backward(objective)
            progress.step += 1
            progress.batch += 1
            at_end = progress.batch == last_batch
            logging = ((progress.step % log_every == 0 or at_end)
                       and (time.monotonic() - self._last_log_s >= min_log_s or at_end and final_epoch))
            norms = self._before_logged_step() if logging else None
            if clip:
                torch.nn.utils.clip_grad_norm_(self._trained_params, clip, foreach=True)
            optimizer_step()
            if schedule is not None:
                if at_end:
                    self._epoch_lr = current_lr(optimizer)  # the LR its last step trained at
                schedule.after_batch(progress.step)
            sums.add(loss, outputs, targets)
            if logging:
                self._log_step(norms)
                sums = self._epoch_sums  # new ones after a divergence restored the weights
        progress.batch = 0

    def _before_logged_step(self) -> torch.Tensor:
        """The gradient norms; the weights noted for the update ratios and the LR the step trains at
        (a log step, before its update and a per-batch schedule's next LR)."""
        self.update_probe.before()
        self._logged_lr = current_lr(self.optimizer)
        return self.probe.norms()

    def _log_step(self, norms: torch.Tensor) -> None:
        """The one host sync of a log interval: interval loss, gradient norms, update ratios, throughput."""
        (marked_loss, marked_count), marked_time = self._log_mark
        current_loss, current_count = self._epoch_sums.running_total()
        interval_loss = difference(current_loss, marked_loss, like=norms)
        ratios = self.update_probe.ratios()  # None when not measured at this step
        values = torch.cat([interval_loss.reshape(1), norms.to(interval_loss),
                            *([] if ratios is None else [ratios.to(interval_loss)])]).tolist()
        now = self._last_log_s = time.monotonic()
        self._log_mark = ((current_loss, current_count), now)
        count = current_count - marked_count
        grad_values, ratio_values = values[1:1 + len(norms)], values[1 + len(norms):]
        loss = values[0] / count if count else float("nan")
        if not math.isfinite(loss):
            self._diverged(f"the loss became {loss} by step {self.progress.step}")
        step, epoch = self.progress.step, self.progress.epoch
        self.emit(StepLogged(step, epoch, loss, self._logged_lr, global_norm(grad_values),
                             count / max(now - marked_time, 1e-9)))
        self.emit(GradNorms(step, tuple(zip(self.probe.names, grad_values)),
                            tuple(zip(self.probe.names, ratio_values))))
        if self.system.due(now):
            self._sample_system()

    def _end_epoch(self) -> bool:
        """Validate, schedule, checkpoint and report an epoch. Returns whether to stop early.

        A diverged epoch (a non-finite loss) is reported as it was, but neither early stopping
        nor the plateau schedule sees it: it never becomes the best."""
        epoch = self.progress.epoch
        metrics = self._epoch_metrics()
        lr = self._epoch_lr if self.schedule.acts_after_batches else current_lr(self.optimizer)
        diverged = not all(math.isfinite(v) for k, v in metrics.items() if k.endswith("loss"))
        if diverged:  # raises when the run stops on divergence; else restores the weights and waits
            self._diverged(f"non-finite loss at the end of epoch {epoch} (step {self.progress.step})")
        improved, stop = (False, False) if diverged else self.early.update(epoch, metrics.get(self.early.monitor))
        stop = stop and self.cfg.early_stopping.enabled
        if not diverged:
            self.schedule.after_epoch(epoch, metrics.get(self.cfg.schedule.monitor))
        self.progress.epoch += 1
        self._epoch_sums = self._new_epoch_sums()
        if improved:
            progress = self.progress
            self.best.keep({"epoch": progress.epoch, "batch": progress.batch, "step": progress.step}, self.early)
        paused = self._paused_s - self._epoch_paused_from
        self.emit(EpochEnded(epoch=epoch, step=self.progress.step, val_loss=metrics.get("val_loss"), lr=lr,
                             train_loss=metrics["train_loss"], train_acc=metrics.get("train_acc"),
                             val_acc=metrics.get("val_acc"), val_mae=metrics.get("val_mae"),
                             val_r2=metrics.get("val_r2"),
                             epoch_s=time.monotonic() - self._epoch_started - paused, paused_s=paused,
                             early_stop=self.early.status() if self.cfg.early_stopping.enabled else None))
        if stop or self.progress.epoch > self.cfg.train.epochs or self._checkpoint_due():
            self.save_checkpoint("last")
        if self.system.due(time.monotonic()):
            self._sample_system()
        return stop

    def _epoch_metrics(self) -> dict[str, float]:
        """The epoch's training metrics, and validation's."""
        self.phase = "validating"
        val = evaluate(self.model, self.data.val.batches(0), self.task, self.device, self.modes, self.forward)
        # folded right after validation, whose argmax-compare-sum kernels are then still warm
        loss_sum, correct, count = self._epoch_sums.totals()
        metrics = {"train_loss": loss_sum / count if count else math.nan, **(val.as_dict("val") if val else {})}
        if self.task == "classification":
            metrics["train_acc"] = correct / count if count else math.nan
        return metrics
