"""The training process's load (CPU, memory; on CUDA, the GPU's), sampled every few seconds.

The trainer asks `due` only where it reads the clock anyway (its log check, epoch ends, the
pause loop), so sampling adds no work to a step. psutil reads the process's CPU time and
resident memory; on CUDA, torch's allocator counters give the memory, and NVML (the optional
`nvidia-ml-py`, the `gpu` extra) the utilisation: without it `gpu_util` is None.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import psutil
import torch

from nntui.engine.events import SystemSampled

EVERY_S = 5.0  # between samples
FIRST_AFTER_S = 0.5  # the first sample, early enough that a short run has one (CPU use needs an interval)


class SystemSampler:
    """Samples of the current process's load on `device`, every `every_s` seconds."""

    def __init__(self, device: torch.device, every_s: float = EVERY_S, first_after_s: float = FIRST_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.device, self.every_s, self.clock = device, every_s, clock
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the reference point of the first sample's CPU use
        self.next_due = clock() + first_after_s
        self._cuda = device.type == "cuda"
        self._nvml = self._cuda  # until NVML is found missing or failing: then not asked again
        self.taken = 0  # samples so far

    def due(self, now: float) -> bool:
        """Whether a sample is due at monotonic time `now`."""
        return now >= self.next_due

    def sample(self, step: int) -> SystemSampled | None:
        """The load now (and the next sample scheduled), or None when the OS would not say."""
        self.next_due = self.clock() + self.every_s
        self.taken += 1
        try:
            with self._process.oneshot():
                cpu, rss = self._process.cpu_percent(None), self._process.memory_info().rss
        except psutil.Error:
            return None
        return SystemSampled(cpu_percent=float(cpu), rss_bytes=int(rss), step=step, **self._gpu())

    def _gpu(self) -> dict[str, Any]:
        if not self._cuda:
            return {}
        cuda = torch.cuda
        try:
            memory = {"gpu_mem_allocated": int(cuda.memory_allocated(self.device)),
                      "gpu_mem_reserved": int(cuda.memory_reserved(self.device)),
                      "gpu_mem_peak": int(cuda.max_memory_allocated(self.device))}
        except RuntimeError:  # a CUDA context broken by the error that is ending the run
            memory = {}
        return {"gpu_util": self._gpu_util(), **memory}

    def _gpu_util(self) -> float | None:
        """The GPU's utilisation in percent from NVML, or None without nvidia-ml-py (or a driver
        that will not say). torch's `cuda.utilization` maps the device to its NVML index,
        CUDA_VISIBLE_DEVICES included."""
        if not self._nvml:
            return None
        try:
            import pynvml  # noqa: F401 -- nvidia-ml-py, optional: imported here, when first needed

            return float(torch.cuda.utilization(self.device))
        except Exception:  # noqa: BLE001 -- missing module, no driver, an NVML error: no utilisation
            self._nvml = False
            return None
