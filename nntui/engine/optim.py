"""Optimizers and learning-rate schedules, all from `torch.optim`."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import lr_scheduler

from nntui.config import OptimConfig, RunConfig
from nntui.engine.early_stopping import default_mode
from nntui.engine.plateau import Plateau


def build_optimizer(params: Any, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The torch.optim optimizer named by `cfg.name`."""
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.name == "sgd":
        return torch.optim.SGD(params, **common)
    if cfg.name in ("momentum", "nesterov"):
        return torch.optim.SGD(params, momentum=cfg.momentum, nesterov=cfg.name == "nesterov", **common)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(params, eps=cfg.eps, **common)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, eps=cfg.eps, **common)
    if cfg.name == "adam":
        return torch.optim.Adam(params, betas=cfg.betas, eps=cfg.eps, **common)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, betas=cfg.betas, eps=cfg.eps, **common)
    raise ValueError(f"unknown optimizer {cfg.name!r}")


class LRSchedule:
    """A schedule from the config: an optional per-step linear warmup, then the main scheduler.

    `onecycle` steps every batch; the others step once per epoch (plateau with the monitored
    value). Plateau is Keras 3's ReduceLROnPlateau (`Plateau`), not torch's.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: RunConfig, steps_per_epoch: int) -> None:
        sched = cfg.schedule
        self.optimizer, self.name = optimizer, sched.name
        self.per_batch = sched.name == "onecycle"
        self.main = self._build_main(optimizer, cfg, steps_per_epoch)
        self.warmup_steps = 0 if self.per_batch else sched.warmup_epochs * steps_per_epoch
        self.warmup = None
        if self.warmup_steps:
            # Built after the main scheduler so that the warmup sets the starting LR.
            self.warmup = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (self.warmup_steps + 1),
                                                total_iters=self.warmup_steps)
        self.warmup_epochs = sched.warmup_epochs if self.warmup else 0

    @staticmethod
    def _build_main(optimizer: torch.optim.Optimizer, cfg: RunConfig, steps_per_epoch: int) -> Any:
        sched = cfg.schedule
        main_epochs = max(1, cfg.train.epochs - sched.warmup_epochs)
        if sched.name == "step":
            return lr_scheduler.StepLR(optimizer, step_size=sched.step_size, gamma=sched.gamma)
        if sched.name == "exponential":
            return lr_scheduler.ExponentialLR(optimizer, gamma=sched.gamma)
        if sched.name == "cosine":
            return lr_scheduler.CosineAnnealingLR(optimizer, T_max=sched.t_max or main_epochs, eta_min=sched.min_lr)
        if sched.name == "plateau":
            return Plateau(optimizer, mode=default_mode(sched.monitor), factor=sched.factor,
                           patience=sched.patience, min_delta=sched.min_delta, cooldown=sched.cooldown,
                           min_lr=sched.min_lr)
        if sched.name == "onecycle":
            return lr_scheduler.OneCycleLR(optimizer, max_lr=sched.max_lr or 10 * cfg.optim.lr,
                                           total_steps=cfg.train.epochs * steps_per_epoch)
        return None

    @property
    def acts_after_batches(self) -> bool:
        """Whether `after_batch` ever does anything (onecycle or a warmup): callers may skip it."""
        return self.per_batch or self.warmup is not None

    def after_batch(self, global_step: int) -> None:
        """Called after each optimizer step (`global_step` counts from 1)."""
        if self.per_batch:
            if self.main.last_epoch + 1 < self.main.total_steps:
                self.main.step()
        elif self.warmup is not None and global_step <= self.warmup_steps:
            self.warmup.step()

    def after_epoch(self, epoch: int, monitored: float | None) -> None:
        """Called after validation of `epoch` (from 1) with the value the plateau watches."""
        if self.main is None or self.per_batch or epoch <= self.warmup_epochs:
            return
        if isinstance(self.main, Plateau):
            self.main.step(monitored)
        else:
            self.main.step()

    def set_lr(self, lr: float) -> None:
        """Make `lr` the learning rate from now on; the schedule carries on relative to it (a plateau
        schedule counts its patience afresh)."""
        for group in self.optimizer.param_groups:
            ratio = lr / group["lr"] if group["lr"] else 1.0
            group["lr"] = lr
            for key in ("initial_lr", "max_lr", "min_lr"):
                if key in group:
                    group[key] = group[key] * ratio
        if isinstance(self.main, Plateau):
            self.main.restart_patience()
        for scheduler in (self.main, self.warmup):
            if scheduler is not None and hasattr(scheduler, "base_lrs"):
                scheduler.base_lrs = [lr for _ in scheduler.base_lrs]
            if scheduler is not None and hasattr(scheduler, "_last_lr"):
                scheduler._last_lr = [lr for _ in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            "main": self.main.state_dict() if self.main is not None else None,
            "warmup": self.warmup.state_dict() if self.warmup is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.main is not None and state.get("main") is not None:
            self.main.load_state_dict(state["main"])
        if self.warmup is not None and state.get("warmup") is not None:
            self.warmup.load_state_dict(state["warmup"])


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
