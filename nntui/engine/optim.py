"""Optimizers and learning-rate schedules, all from `torch.optim`."""

from __future__ import annotations

import copy
import inspect
import warnings
from typing import Any

import torch
from torch.optim import lr_scheduler

from nntui.config import OptimConfig, RunConfig
from nntui.engine.early_stopping import default_mode
from nntui.engine.plateau import Plateau
from nntui.engine.precision import Unsupported

OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def fused_supported(name: str, device: torch.device) -> bool:
    """Whether torch has a fused kernel for optimizer `name` on `device`, by torch's own rule: the
    class takes `fused` and the device is one its fused kernels run on (in torch 2.14: SGD, Adam,
    AdamW and Adagrad; not RMSprop; on the CPU, CUDA, MPS and others)."""
    if "fused" not in inspect.signature(OPTIMIZER_CLASSES[name].__init__).parameters:
        return False
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:  # a torch without the list: the devices it has always had
        return device.type in ("cpu", "cuda")
    return device.type in _get_fused_kernels_supported_devices()


def resolve_impl(cfg: OptimConfig, device: torch.device) -> str:
    """The implementation `cfg.impl` stands for on `device`: `auto` is fused where torch has it,
    else foreach (one kernel launch per op over all tensors); `Unsupported` for fused where
    torch has none."""
    fused = fused_supported(cfg.name, device)
    if cfg.impl == "auto":
        return "fused" if fused else "foreach"
    if cfg.impl == "fused" and not fused:
        raise Unsupported(f"optim.impl = fused: torch has no fused {cfg.name} on the {device.type}; "
                          "use auto, foreach or for_loop")
    return cfg.impl


def build_optimizer(params: Any, cfg: OptimConfig, device: torch.device | None = None) -> torch.optim.Optimizer:
    """The torch.optim optimizer named by `cfg.name`, in the implementation `cfg.impl` resolves
    to on `device` (the CPU when not given)."""
    impl = resolve_impl(cfg, device if device is not None else torch.device("cpu"))
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay,
              **({"fused": True} if impl == "fused" else {"foreach": impl == "foreach"})}
    cls = OPTIMIZER_CLASSES[cfg.name]
    if cfg.name in ("momentum", "nesterov"):
        return cls(params, momentum=cfg.momentum, nesterov=cfg.name == "nesterov", **common)
    if cfg.name in ("adagrad", "rmsprop"):
        return cls(params, eps=cfg.eps, **common)
    if cfg.name in ("adam", "adamw"):
        return cls(params, betas=cfg.betas, eps=cfg.eps, **common)
    return cls(params, **common)


def implementation(optimizer: torch.optim.Optimizer) -> str:
    """The implementation an optimizer's first group runs: fused, foreach or for_loop."""
    group = optimizer.param_groups[0]
    return "fused" if group.get("fused") else "foreach" if group.get("foreach") else "for_loop"


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

    def load_state_dict(self, state: dict[str, Any], steps_done: int | None = None) -> None:
        """The state of `state_dict`, `steps_done` steps into the run. A run continued for more (or
        fewer) epochs than it was planned for keeps the horizon planned now: cosine and onecycle
        run over the run's new length, from where it stands (their LR as if planned so from the
        start), not past their end."""
        planned = self._horizon()
        if self.main is not None and state.get("main") is not None:
            self.main.load_state_dict(state["main"])
        if self.warmup is not None and state.get("warmup") is not None:
            self.warmup.load_state_dict(state["warmup"])
        if planned and self._horizon() != planned:
            self._replan(planned, steps_done)

    def _horizon(self) -> dict[str, Any]:
        """The main scheduler's attributes that depend on the run's length (none for most)."""
        if isinstance(self.main, lr_scheduler.CosineAnnealingLR):
            return {"T_max": self.main.T_max}
        if isinstance(self.main, lr_scheduler.OneCycleLR):
            return {"total_steps": self.main.total_steps, "_schedule_phases": copy.deepcopy(self.main._schedule_phases)}
        return {}

    def _replan(self, horizon: dict[str, Any], steps_done: int | None) -> None:
        """Put `horizon` back into the main scheduler and set the LR its closed form gives now."""
        main = self.main
        for name, value in horizon.items():
            setattr(main, name, value)
        if isinstance(main, lr_scheduler.OneCycleLR) and steps_done is not None:
            main.last_epoch = steps_done  # `after_batch` held it at the old end, a step short
        if isinstance(main, lr_scheduler.CosineAnnealingLR) and self.warmup is not None \
                and self.warmup.last_epoch < self.warmup_steps:
            return  # still warming up: the cosine starts from its base LR as planned
        if isinstance(main, lr_scheduler.OneCycleLR) and main.last_epoch > main.total_steps:
            return  # past the new end already: nothing is left to train
        with warnings.catch_warnings():  # get_lr outside step() warns; here it is the point
            warnings.simplefilter("ignore")
            lrs = main._get_closed_form_lr() if isinstance(main, lr_scheduler.CosineAnnealingLR) else main.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        main._last_lr = list(lrs)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
