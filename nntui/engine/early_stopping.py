"""Early stopping with the semantics of Keras 3's `EarlyStopping` callback (keras/src/callbacks/
early_stopping.py and monitor_callback.py, read at Keras 3.16)."""

from __future__ import annotations

from typing import Any

from nntui import metrics
from nntui.engine.events import EarlyStopStatus


def default_mode(monitor: str) -> str:
    """Keras's `auto` mode: accuracy and R² improve upwards, everything else (losses) downwards."""
    return metrics.better_mode(monitor)


def is_improvement(value: float, reference: float | None, mode: str, min_delta: float) -> bool:
    """Keras's `MonitorCallback._is_improvement`: anything beats no reference; otherwise `value` must
    beat `reference` by more than `min_delta`. A NaN on either side compares False: no improvement."""
    if reference is None:
        return True
    if mode == "min":
        return value + abs(min_delta) < reference
    return value - abs(min_delta) > reference


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    As in Keras 3 (epochs here count from 1, Keras's from 0):
    - epochs up to `start_from_epoch` are not looked at;
    - every epoch looked at adds one to `wait`; an improvement on the best so far (the first epoch
      looked at always is one, even a NaN) makes it the best, and sets `wait` back to 0 only if it
      also beats `baseline` (when there is one);
    - a value that is not an improvement (a NaN never is) stops training once `wait >= patience`,
      but never at the first epoch;
    - with `restore_best`, the best epoch's weights are restored when training ends, however it
      ends (the trainer does so before its test pass).
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 0,
                 min_delta: float = 0.0, restore_best: bool = False, baseline: float | None = None,
                 start_from_epoch: int = 0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, not {mode!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = abs(min_delta), restore_best
        self.baseline, self.start_from_epoch = baseline, start_from_epoch
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    @classmethod
    def from_config(cls, config: Any) -> "EarlyStopping":
        """From the `early_stopping` section of a RunConfig."""
        return cls(config.monitor, config.mode, config.patience, config.min_delta, config.restore_best,
                   config.baseline, config.start_from_epoch)

    def is_improvement(self, value: float) -> bool:
        """Whether `value` improves on the best so far."""
        return is_improvement(value, self.best, self.mode, self.min_delta)

    def update(self, epoch: int, value: float | None) -> tuple[bool, bool]:
        """Record epoch `epoch`'s (from 1) value. Returns (improved on the best, should stop)."""
        if value is None or epoch <= self.start_from_epoch:
            return False, False
        self.wait += 1
        if self.is_improvement(value):
            self.best, self.best_epoch = value, epoch
            if self.baseline is None or is_improvement(value, self.baseline, self.mode, self.min_delta):
                self.wait = 0
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
