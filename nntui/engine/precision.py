"""Precision, compile and memory format: the speed options of `train`, and what the device allows.

With `precision = "32"` and no compile the trainer calls the model and `Tensor.backward` and
`optimizer.step` directly: the options add nothing to a step unless chosen. Whether the device
can do a choice is checked before anything is written (`refusal`); a compiler that is found but
fails still fails the run, at the compile warm-up, with one line.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from nntui.config import RunConfig
from nntui.engine.events import PhaseChanged

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "16-mixed": torch.float16}
CHANNELS_LAST_KINDS = ("cnn", "vgg", "resnet18")  # the built-in models made of 2-D convolutions


class Unsupported(ValueError):
    """A speed option the device cannot do; the text is one line for the user."""


def refusal(cfg: RunConfig, device: torch.device) -> str | None:
    """Why the run's optimizer implementation, precision or compile cannot be had on `device`
    (one line), or None."""
    from nntui.engine.optim import resolve_impl

    try:
        resolve_impl(cfg.optim, device)
    except Unsupported as error:
        return str(error)
    return precision_problem(cfg.train.precision, device) or (compile_problem(device) if cfg.train.compile else None)


def precision_problem(precision: str, device: torch.device) -> str | None:
    """float16 needs a CUDA GPU (autocast on the CPU has no float16, and its gradient scaler is
    CUDA's); bfloat16 needs a device that has it (every CPU does, slowly without AVX-512 BF16)."""
    if precision == "16-mixed" and device.type != "cuda":
        return (f"train.precision = 16-mixed needs a CUDA GPU, not the {device.type}: "
                "use bf16 (or 32) there")
    if precision == "bf16" and not bf16_supported(device):
        return f"train.precision = bf16: the {device} has no bfloat16; use 32"
    return None


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 (natively on CUDA: no emulation)."""
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        torch.ones(1, dtype=torch.bfloat16, device=device).mul_(2)
    except (RuntimeError, TypeError):
        return False
    return True


def cpp_compiler() -> str:
    """The C++ compiler torch.compile's CPU backend (inductor) runs: $CXX, else g++ (clang++ on macOS)."""
    return os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")


def compile_problem(device: torch.device) -> str | None:
    """What torch.compile lacks here, found without importing the compiler stack (seconds):
    inductor builds CPU kernels with a C++ compiler and CUDA kernels with triton."""
    if device.type == "cpu" and shutil.which(cpp_compiler()) is None:
        return (f"train.compile needs the C++ compiler {cpp_compiler()!r} on the CPU, and it is not "
                "installed here (install it, set CXX, or set train.compile = false)")
    if device.type == "cuda" and find_spec("triton") is None:
        return "train.compile on CUDA needs triton (pip install triton), or set train.compile = false"
    return None


def use_channels_last(model_kind: str, device: torch.device) -> bool:
    """Channels-last for the convolutional models on CUDA, where cuDNN's convolutions run faster
    in it (tensor cores); on the CPU it gains little and costs input conversions."""
    return device.type == "cuda" and model_kind in CHANNELS_LAST_KINDS


class AutocastForward:
    """The model's forward pass under autocast, its outputs cast back to float32: the loss and the
    metrics are then computed in float32, as autocast's own policy computes losses."""

    def __init__(self, module: Callable[[torch.Tensor], torch.Tensor], device_type: str, dtype: torch.dtype) -> None:
        self.module, self.device_type, self.dtype = module, device_type, dtype

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.module(inputs).float()


def prepare_forward(model: nn.Module, cfg: RunConfig,
                    device: torch.device) -> tuple[Callable[[torch.Tensor], torch.Tensor] | None, bool]:
    """What the loop calls for the outputs instead of the model: it compiled, under autocast, or
    both (None: the model itself); and whether the model was put in channels-last format
    (`use_channels_last`). The model stays the module whose weights are saved (a compiled
    module's keys are prefixed)."""
    channels_last = use_channels_last(cfg.model.kind, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # in place: the parameters stay the same objects
    # dynamic: one graph for every batch size (the last batch, the evaluation splits'), all compiled ahead
    forward: Any = torch.compile(model, dynamic=True) if cfg.train.compile else None
    dtype = AUTOCAST_DTYPES.get(cfg.train.precision)
    if dtype is not None:
        forward = AutocastForward(forward if forward is not None else model, device.type, dtype)
    return forward, channels_last


@dataclass
class StepFunctions:
    """`backward(objective)` and `step()` of a training step; `scaler` for float16 only."""

    backward: Callable[[torch.Tensor], None]
    step: Callable[[], Any]
    scaler: torch.amp.GradScaler | None = None

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state under `scaler` (its scale and growth tracker: an exact resume), if any."""
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The scaler's state from a trainer state of `state_dict` (a checkpoint of a run without
        float16 has none: the scaler starts afresh)."""
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def step_functions(optimizer: torch.optim.Optimizer, precision: str, device: torch.device) -> StepFunctions:
    """Plain `Tensor.backward` and `optimizer.step`, or for float16 the gradient scaler's.

    The scaled backward unscales the gradients at once, so that gradient clipping and the logged
    gradient norms see their true values; the scaler's step skips an update whose gradients
    overflowed, and its update adjusts the scale."""
    if precision != "16-mixed":
        return StepFunctions(torch.Tensor.backward, optimizer.step)
    scaler = torch.amp.GradScaler(device.type)

    def scaled_backward(objective: torch.Tensor) -> None:
        scaler.scale(objective).backward()
        scaler.unscale_(optimizer)

    def scaled_step() -> None:
        scaler.step(optimizer)
        scaler.update()

    return StepFunctions(scaled_backward, scaled_step, scaler)


def compile_ahead(trainer: Any) -> None:
    """torch.compile's compiling as a phase of the trainer's own, recorded with its seconds:
    `phase` records `compiling`, then `training` with `compile_s`."""
    trainer.phase = "compiling"
    trainer.emit(PhaseChanged("compiling", trainer.progress.step))
    progress = trainer.progress
    seconds = warm_up_compiled(trainer.forward, trainer.model, trainer.loss_fn, trainer.modes.set,
                               trainer.data.train.batches(progress.epoch, progress.batch))
    trainer.emit(PhaseChanged("training", progress.step, compile_s=round(seconds, 3)))


def warm_up_compiled(forward: Callable[[torch.Tensor], torch.Tensor], model: nn.Module,
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     set_training: Callable[[bool], None], batches: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Compile ahead: a training forward and backward, then an evaluation forward, on the first of
    `batches` (the next the loop trains); the seconds they took (almost all compiling).

    torch.compile compiles lazily, at a graph's first call; doing it here shows it as a phase of
    its own and keeps it out of the first step's time. Nothing of the warm-up stays: the random
    state, the buffers (batch-norm statistics) and the gradients are put back as they were, and
    no optimizer step is taken. A compiler that fails raises here: the run ends failed, one line."""
    started = time.monotonic()
    batch = next(batches, None)
    close = getattr(batches, "close", None)
    if close is not None:
        close()  # a DataLoader's workers go now
    if batch is None:
        return 0.0
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    buffers = [buffer.clone() for buffer in model.buffers()]
    inputs, targets = batch
    set_training(True)
    loss_fn(forward(inputs), targets).backward()
    set_training(False)
    with torch.no_grad():
        forward(inputs)
    set_training(True)
    _restore(model.buffers(), buffers)
    for parameter in model.parameters():
        parameter.grad = None
    torch.set_rng_state(rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state_all(cuda_rng)
    return time.monotonic() - started


def _restore(buffers: Iterable[torch.Tensor], saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for buffer, value in zip(buffers, saved):
            buffer.copy_(value)
