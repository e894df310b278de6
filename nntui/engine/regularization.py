"""Weight penalties added to the loss, named and scaled as in scikit-learn's SGDClassifier.

    l1:          alpha * sum |w|
    l2:          alpha / 2 * sum w^2
    elastic_net: alpha * (l1_ratio * sum |w| + (1 - l1_ratio) / 2 * sum w^2)

Only weights count (matrices and kernels): biases and normalization parameters are not penalized.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nntui.config import RegularizationConfig

Penalty = Callable[[], torch.Tensor]


def penalized_weights(model: nn.Module) -> list[torch.Tensor]:
    """The parameters a penalty applies to: weights with at least two dimensions."""
    return [param for name, param in model.named_parameters()
            if param.requires_grad and param.dim() > 1 and name.endswith("weight")]


def build_penalty(model: nn.Module, cfg: RegularizationConfig) -> Penalty | None:
    """A function computing the penalty term, or None when there is none."""
    if cfg.penalty == "none" or cfg.alpha == 0:
        return None
    weights = penalized_weights(model)
    l1_share = {"l1": 1.0, "l2": 0.0, "elastic_net": cfg.l1_ratio}[cfg.penalty]
    alpha = cfg.alpha

    def penalty() -> torch.Tensor:
        total = weights[0].new_zeros(())
        if l1_share > 0:
            total = total + l1_share * torch.stack([w.abs().sum() for w in weights]).sum()
        if l1_share < 1:
            total = total + (1 - l1_share) / 2 * torch.stack([w.pow(2).sum() for w in weights]).sum()
        return alpha * total

    return penalty
