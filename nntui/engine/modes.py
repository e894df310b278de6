"""Switching a model between training and evaluation mode, twice per epoch."""

from __future__ import annotations

from torch import nn


class ModeSwitch:
    """Sets `training` on every module of a model whose module tree is fixed from here on.

    `Module.train` walks the tree through `Module.__setattr__`: about 45 µs for a five-layer MLP
    here, more than the ops of a small validation pass, and it runs twice per epoch. When no
    module overrides `train`, setting each flag directly is the same change in about 1.5 µs; a
    model with a module that does override it is switched with `Module.train`.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        modules = list(model.modules())
        self._modules = modules if all(type(module).train is nn.Module.train for module in modules) else None

    def set(self, training: bool) -> None:
        """Put every module in training (True) or evaluation (False) mode."""
        if self._modules is None:
            self.model.train(training)
            return
        for module in self._modules:
            object.__setattr__(module, "training", training)  # what Module.train ends up doing per module
