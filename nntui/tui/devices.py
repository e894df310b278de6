"""Which training devices this machine has, found without importing torch in the app.

The setup screen flags a device the machine does not have before Start. Most machines answer
from the file system alone (no GPU driver, not a Mac: only the CPU). Otherwise a short child
process asks torch, which is what the training process will use: its answer is the one that
counts, and torch's import (seconds, hundreds of MB) stays out of the app.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

GPU_DRIVER_FILES = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")  # NVIDIA, ROCm, WSL
TORCH_PROBE = ("import torch; mps = getattr(torch.backends, 'mps', None); "
               "print(torch.cuda.device_count() if torch.cuda.is_available() else 0, "
               "int(bool(mps is not None and mps.is_available())))")
TORCH_PROBE_TIMEOUT_S = 120.0
POLL_S = 0.05


@dataclass(frozen=True)
class Devices:
    """The accelerators torch can use here."""

    cuda_count: int = 0
    mps: bool = False

    def problem(self, device: str) -> str:
        """Why `device` (auto, cpu, cuda, cuda:N, mps) cannot be used here, or ''."""
        if device == "mps" and not self.mps:
            return "mps: this machine has no Apple GPU (MPS); pick auto or cpu"
        if device.startswith("cuda"):
            index = int(device.partition(":")[2] or 0)
            if self.cuda_count == 0:
                return f"{device}: this machine has no CUDA device; pick auto or cpu"
            if index >= self.cuda_count:
                last = self.cuda_count - 1
                return f"{device}: this machine has {self.cuda_count} CUDA device(s) (cuda:0 to cuda:{last})"
        return ""


def devices_without_torch() -> Devices | None:
    """The devices when the file system settles it (no GPU driver, and not macOS: the CPU
    only), or None when torch must be asked."""
    gpu_driver = any(os.path.exists(path) for path in GPU_DRIVER_FILES) or bool(glob.glob("/dev/nvidia[0-9]*"))
    if gpu_driver or sys.platform == "darwin":
        return None
    return Devices()


def devices_from_torch(timeout: float = TORCH_PROBE_TIMEOUT_S,
                       cancelled: Callable[[], bool] = lambda: False) -> Devices | None:
    """The devices as torch sees them, asked in a child process; None if it cannot tell, or
    when `cancelled()` turns true first (the child is killed: leaving the app never waits on it)."""
    try:
        child = subprocess.Popen([sys.executable, "-c", TORCH_PROBE], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    deadline = time.monotonic() + timeout
    while child.poll() is None:
        if cancelled() or time.monotonic() > deadline:
            child.kill()
            child.wait()
            return None
        time.sleep(POLL_S)
    try:
        cuda, mps = child.communicate()[0].split()
        return Devices(int(cuda), mps == "1")
    except ValueError:
        return None


def probe_devices(cancelled: Callable[[], bool] = lambda: False) -> Devices | None:
    """The devices this machine has (blocking: run it in a worker thread), or None if unknown."""
    return devices_without_torch() or devices_from_torch(cancelled=cancelled)
