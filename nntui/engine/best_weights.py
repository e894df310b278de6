"""The best epoch's weights, for Keras's `restore_best_weights` and for best.pt.

They are copied in memory when an epoch improves on the best, and handed to the trainer to be
written as best.pt with the next last.pt (epochs can be very short: writing best.pt at every
improvement would cost more than the epoch). best.pt holds the model, not the optimizer: it is
for using the model, while last.pt is for resuming.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nntui.engine.checkpoint_files import FORMAT


class BestWeights:
    """The weights of the best epoch so far of `model`, and the best.pt content not yet written."""

    def __init__(self, model: nn.Module, config: dict[str, Any]) -> None:
        self.model, self.config = model, config
        self.weights: dict[str, torch.Tensor] | None = None
        self._model_state: dict[str, torch.Tensor] | None = None  # the model's state_dict, made once
        self._unsaved: dict[str, Any] | None = None  # the best epoch not yet in best.pt

    def keep(self, progress: dict[str, int], early: Any) -> None:
        """Copy the model's weights as the best epoch's; `progress` (epoch, batch, step) is where the
        loop stands, `early` the EarlyStopping whose best they are."""
        if self._model_state is None:  # views of the weights: they follow every in-place update
            self._model_state = self.model.state_dict()
        state = self._model_state
        if self.weights is None or self.weights.keys() != state.keys():
            self.weights = {name: tensor.detach().clone() for name, tensor in state.items()}
        else:  # one fused copy into the previous best's buffers (best.pt already has it, or gets this one)
            torch._foreach_copy_(list(self.weights.values()), list(state.values()))
        self._unsaved = {
            "format": FORMAT, "model": self.weights, "config": self.config, "progress": dict(progress),
            "best": {"monitor": early.monitor, "value": early.best, "epoch": early.best_epoch},
        }

    def take_unsaved(self) -> dict[str, Any] | None:
        """The content of best.pt not written yet (then it counts as written), or None."""
        unsaved, self._unsaved = self._unsaved, None
        return unsaved

    def restore(self) -> bool:
        """Put the best epoch's weights back into the model; whether there were any."""
        if self.weights is None:
            return False
        self.model.load_state_dict(self.weights)
        return True
