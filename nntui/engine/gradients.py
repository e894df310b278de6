"""Per-parameter gradient norms and update-to-weight ratios with fused foreach kernels: a few
launches at a log step, no host sync (the caller's one sync reads them with the loss)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

RATIO_COST_SHARE = 0.002  # update ratios are measured at most about this share of the time


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
    the size of the model made here; `ratios` (after the step) subtracts in place. Asked at log
    steps only, it measures at most about `cost_share` of the time: its few fused ops stream the
    model through memory three times, which on an MNIST-sized MLP on a CPU took about 2 ms (1% of
    the training time at every 0.2 s step record); a small model's are measured at every log step.
    """

    def __init__(self, model: nn.Module, cost_share: float = RATIO_COST_SHARE,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._params = [param for _, param in model.named_parameters() if param.requires_grad]
        self._copies = [torch.empty_like(param) for param in self._params]
        self._weight_norms: list[torch.Tensor] = []
        self.cost_share, self.clock = cost_share, clock
        self._noted = False  # `before` noted the weights since the last `ratios`
        self._last = -math.inf  # when the last measurement began
        self._cost_s = 0.0  # how long it took (host time: on a GPU, launching its kernels)

    @torch.no_grad()
    def before(self) -> bool:
        """Note the weights as they are before the optimizer step, if a measurement is due; whether it is."""
        now = self.clock()
        if not self._params or (now - self._last) * self.cost_share < self._cost_s:
            return False
        self._last = now
        torch._foreach_copy_(self._copies, self._params)
        self._weight_norms = list(torch._foreach_norm(self._copies))
        self._noted = True
        self._cost_s = self.clock() - now
        return True

    @torch.no_grad()
    def ratios(self) -> torch.Tensor | None:
        """A 1-D float32 tensor, one ratio per parameter (NaN where the weights were all zero, as
        biases start), on the device like `GradNormProbe.norms`; None without a `before` that noted."""
        if not self._noted:
            return None
        started = self.clock()
        self._noted = False
        torch._foreach_sub_(self._copies, self._params)  # w_before - w_after: the update (negated), in place
        updates = torch.stack(torch._foreach_norm(self._copies)).float()
        weights = torch.stack(self._weight_norms).float()
        ratios = torch.where(weights > 0, updates / weights, torch.full_like(weights, math.nan))
        self._cost_s += self.clock() - started
        return ratios


def global_norm(per_parameter: Sequence[float]) -> float:
    """The L2 norm of all gradients together, from the per-parameter norms (on the host, after the sync)."""
    return math.hypot(*per_parameter)
