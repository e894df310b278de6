"""A headless run: data, model, run directory, control channel, signals, trainer, console.

Used by `nntui run --headless` and, as a subprocess, by the app.
"""

from __future__ import annotations

import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nntui.config import RunConfig
from nntui.engine.control import Command, Controls
from nntui.engine.events import Event, RunEnded

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
HANDLED_SIGNALS = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


class UsageError(ValueError):
    """Bad input found before training: exit code 2, one line."""


@dataclass
class RunRequest:
    """What `nntui run` was asked to do, after the configuration was validated."""

    config: RunConfig
    run_dir: Path                 # the directory to create (or, when resuming, to continue)
    data_dir: Path
    resume: bool = False
    lr: float | None = None       # on resume: a new learning rate, logged as a control record
    on_divergence: str = "stop"
    console: Callable[[Event], None] | None = None
    signals: list[str] = field(default_factory=list)


def resolve_device(name: str) -> Any:
    """`auto` takes CUDA, then MPS, then the CPU; an explicit device must exist."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"--device {name}: no such CUDA device here (try --device auto or cpu)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError(f"--device {name}: MPS is not available here (try --device auto or cpu)")
    return device


def install_signal_handlers(controls: Controls, received: list[str]) -> None:
    """SIGINT, SIGTERM and SIGHUP ask the trainer to stop at the next step boundary.

    The handler only appends to deques (atomic), so it cannot deadlock the thread it interrupts.
    """
    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        received.append(name)
        controls.submit(Command("stop", name, "signal"))

    for name in HANDLED_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


def exit_code(end: RunEnded, received: list[str]) -> int:
    if end.status in ("completed", "early_stopped"):
        return EXIT_OK
    if end.status == "stopped":
        return HANDLED_SIGNALS.get(received[0], EXIT_OK) if received else EXIT_OK
    return EXIT_FAILED


def run_headless(request: RunRequest) -> int:
    """Train as requested; returns the process exit code of CONTRACT.md."""
    import torch

    from nntui.channel import ChannelError, ChannelServer
    from nntui.data import DataError, build_data
    from nntui.engine.trainer import Trainer
    from nntui.models import ModelError, build_model
    from nntui.rundir import RunDirWriter

    cfg, received = request.config, request.signals
    device = resolve_device(cfg.train.device)
    controls = Controls()
    install_signal_handlers(controls, received)
    torch.manual_seed(cfg.train.seed)
    try:
        data = build_data(cfg, device, request.data_dir, progress=_note)
    except DataError as error:
        _note(f"error: {error}")
        return EXIT_FAILED
    if received:
        _note(f"{received[0]} before training started: nothing written")
        return HANDLED_SIGNALS[received[0]]
    try:
        model = build_model(cfg.model, data.input_shape, data.num_outputs).to(device)
    except ModelError as error:
        _note(f"error: {error}")
        return EXIT_USAGE
    writer = RunDirWriter(request.run_dir, cfg, fresh=not request.resume)
    channel = ChannelServer(request.run_dir, controls)
    sinks = [writer] + ([request.console] if request.console else [])

    def emit(event: Event) -> None:
        for sink in sinks:
            sink(event)

    trainer = Trainer(cfg, data, model, device, emit, controls, request.run_dir / "checkpoints",
                      run_name=request.run_dir.name, on_divergence=request.on_divergence)
    if request.resume:
        trainer.resume_from(request.run_dir / "checkpoints" / "last.pt")
        if request.lr is not None:
            controls.submit(Command("lr", request.lr, "resume"))
    try:
        channel.open()
    except ChannelError as error:
        writer.close()
        if not request.resume:
            shutil.rmtree(request.run_dir, ignore_errors=True)
        _note(f"error: {error}")
        return EXIT_USAGE
    try:
        end = trainer.run()
    finally:
        channel.close()
        writer.close()
    if trainer.error_traceback:
        (request.run_dir / "error.log").write_text(trainer.error_traceback, encoding="utf-8")
    return exit_code(end, received)


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
