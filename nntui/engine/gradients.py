"""Per-parameter gradient norms with fused foreach kernels: one launch, one host sync at most."""

from __future__ import annotations

import torch
from torch import nn


class GradNormProbe:
    """Computes the L2 norm of every parameter's gradient, and the global norm, as one tensor."""

    def __init__(self, model: nn.Module) -> None:
        named = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
        self.names = tuple(name for name, _ in named)
        self._params = [param for _, param in named]

    def norms(self) -> torch.Tensor:
        """A 1-D tensor: each parameter's gradient norm (0 where there is none), then the global norm.

        Stays on the device: nothing here waits for the GPU.
        """
        grads = [param.grad for param in self._params]
        present = [grad for grad in grads if grad is not None]
        if not present:
            return torch.zeros(len(grads) + 1)
        norms = iter(torch._foreach_norm(present))
        device = present[0].device
        zero = torch.zeros((), device=device)
        per_param = torch.stack([next(norms) if grad is not None else zero for grad in grads])
        return torch.cat([per_param.float(), torch.linalg.vector_norm(per_param.float()).reshape(1)])
