"""Cutting the learning rate on a plateau with the semantics of Keras 3's `ReduceLROnPlateau`
(keras/src/callbacks/reduce_lr_on_plateau.py, read at Keras 3.16), not torch's: torch's scheduler
stops cutting once a cut would change the LR by less than its `eps` (1e-8); Keras cuts down to
`min_lr` and no further."""

from __future__ import annotations

from typing import Any

from nntui.engine.early_stopping import is_improvement


class Plateau:
    """Multiplies the optimizer's learning rates by `factor` after `patience` epochs without an
    improvement of more than `min_delta` in the monitored value, down to `min_lr`.

    Per epoch, as in Keras: during a cooldown, the cooldown counts down and `wait` stays 0; an
    improvement (the first value always is one, a NaN never is after it) becomes the best and
    sets `wait` to 0; otherwise, out of cooldown, `wait` grows and at `patience` every group whose
    LR is above `min_lr` is cut to max(lr x factor, min_lr); if any was, a cooldown of `cooldown`
    epochs starts and `wait` goes back to 0.
    """

    def __init__(self, optimizer: Any, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0) -> None:
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), not {factor}")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.min_delta, self.cooldown, self.min_lr = abs(min_delta), cooldown, min_lr
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def step(self, value: float | None) -> None:
        """One epoch's monitored value (None when it is missing: then nothing changes)."""
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if is_improvement(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and self._cut():
                self.cooldown_counter, self.wait = self.cooldown, 0

    def _cut(self) -> bool:
        cut = False
        for group in self.optimizer.param_groups:
            if group["lr"] > self.min_lr:
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)
                cut = True
        return cut

    def restart_patience(self) -> None:
        """A learning rate set by hand gets a full patience window before it may be cut."""
        self.wait = self.cooldown_counter = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "num_bad_epochs" in state:  # a checkpoint from when torch's ReduceLROnPlateau did this
            best = float(state["best"])
            self.best = best if best not in (float("inf"), float("-inf")) else None
            self.wait, self.cooldown_counter = int(state["num_bad_epochs"]), int(state["cooldown_counter"])
            return
        self.best, self.wait, self.cooldown_counter = state["best"], state["wait"], state["cooldown_counter"]
