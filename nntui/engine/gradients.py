"""Per-parameter gradient norms and update-to-weight ratios with fused foreach kernels: a few
launches at a log step, no host sync (the caller's one sync reads them with the loss)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class GradNormProbe:
    """Computes the L2 norm of every parameter's gradient as one tensor."""

    def __init__(self, model: nn.Module) -> None:
        named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
        self.names = tuple(name for name, _ in named)
        self._params = [param for _, param in named]

    def norms(self) -> torch.Tensor:
        """A 1-D float32 tensor: each parameter's gradient norm (0 where there is none).

        Stays on the device: nothing here waits for the GPU.
        """
        grads = [param.grad for param in self._params]
        present = [grad for grad in grads if grad is not None]
        if not present:
            return torch.zeros(len(grads))
        norms = torch._foreach_norm(present)
        if len(present) < len(grads):
            found = iter(norms)
            zero = torch.zeros((), dtype=present[0].dtype, device=present[0].device)
            norms = [next(found) if grad is not None else zero for grad in grads]
        return torch.stack(norms).float()


class UpdateRatioProbe:
    """||w_after - w_before|| / ||w_before|| of every trained parameter over one optimizer step.

    `before` (ahead of the step) keeps the weights' norms and a copy of the weights, in buffers
    made at the first call and reused (the size of the model); `ratios` (after it) subtracts in
    place. Only at log steps: a few fused ops each, nothing at the other steps.
    """

    def __init__(self, model: nn.Module) -> None:
        self._params = [param for _, param in model.named_parameters() if param.requires_grad]
        self._copies: list[torch.Tensor] | None = None
        self._weight_norms: list[torch.Tensor] = []
        self._noted = False  # `before` was called since the last `ratios`

    @torch.no_grad()
    def before(self) -> None:
        """Note the weights as they are before the optimizer step."""
        if not self._params:
            return
        if self._copies is None:
            self._copies = [param.detach().clone() for param in self._params]
        else:
            torch._foreach_copy_(self._copies, self._params)
        self._weight_norms = list(torch._foreach_norm(self._copies))
        self._noted = True

    @torch.no_grad()
    def ratios(self) -> torch.Tensor:
        """A 1-D float32 tensor, one ratio per parameter (NaN where the weights were all zero,
        as biases start; NaN everywhere without a `before`); on the device, like `GradNormProbe.norms`."""
        if not self._noted or self._copies is None:
            return torch.full((len(self._params),), float("nan"))
        self._noted = False
        torch._foreach_sub_(self._copies, self._params)  # w_before - w_after: the update (negated), in place
        updates = torch.stack(torch._foreach_norm(self._copies)).float()
        weights = torch.stack(self._weight_norms).float()
        return torch.where(weights > 0, updates / weights, torch.full_like(weights, float("nan")))


def global_norm(per_parameter: Sequence[float]) -> float:
    """The L2 norm of all gradients together, from the per-parameter norms (on the host, after the sync)."""
    return math.hypot(*per_parameter)
