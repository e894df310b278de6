"""Per-parameter gradient norms with fused foreach kernels: one launch, one host sync at most."""

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


def global_norm(per_parameter: Sequence[float]) -> float:
    """The L2 norm of all gradients together, from the per-parameter norms (on the host, after the sync)."""
    return math.hypot(*per_parameter)
