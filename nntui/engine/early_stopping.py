"""Early stopping with the semantics of Keras's `EarlyStopping` callback."""

from __future__ import annotations

import math
from typing import Any

from nntui.engine.events import EarlyStopStatus


def default_mode(monitor: str) -> str:
    """Keras's `auto` mode: accuracy and R² improve upwards, everything else (losses) downwards."""
    return "max" if monitor in ("val_acc", "val_r2") else "min"


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    As in Keras: the first epoch always counts as an improvement; `wait` counts epochs since
    the last improvement; training stops once `wait >= patience` (never after the first
    epoch); the caller restores the best weights only when stopping early.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 0,
                 min_delta: float = 0.0, restore_best: bool = False) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, not {mode!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = abs(min_delta), restore_best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def is_improvement(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < self.best
        return value - self.min_delta > self.best

    def update(self, epoch: int, value: float | None) -> tuple[bool, bool]:
        """Record one epoch's value. Returns (improved, should_stop)."""
        if value is None or math.isnan(value):
            return False, False
        self.wait += 1
        if self.is_improvement(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True, False
        if self.wait >= self.patience and epoch > 1:
            self.stopped_epoch = epoch
            return False, True
        return False, False

    def status(self) -> EarlyStopStatus:
        return EarlyStopStatus(self.monitor, self.best, self.best_epoch, self.wait, self.patience,
                               self.mode, self.restore_best)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
