"""A headless run: data, model, run directory, control channel, signals, trainer, console.

Used by `nntui run --headless` and, as a subprocess, by the app.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nntui.config import RunConfig
from nntui.engine.allocator import keep_freed_memory
from nntui.engine.control import Command, Controls
from nntui.engine.events import Event, RunEnded
from nntui.engine.failures import is_out_of_memory, one_line, out_of_memory_message

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
HANDLED_SIGNALS = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
SMALL_MLP_WORK = 20_000_000  # parameters x batch size under which one CPU thread is fastest
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


class Interrupted(BaseException):
    """A signal arrived before training started; the text is the signal's name. Like
    KeyboardInterrupt, not an Exception: no `except Exception` on the way may swallow it."""


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


def install_signal_handlers(controls: Controls, received: list[str]) -> dict[int, Any]:
    """SIGINT, SIGTERM and SIGHUP ask the trainer to stop at the next step boundary.

    The handler only appends to deques (atomic), so it cannot deadlock the thread it interrupts.
    Returns the handlers it replaced, for `restore_signal_handlers`.
    """
    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        received.append(name)
        if not controls.accepting:
            # still loading data (a download can take minutes): nothing is written yet, so stop now
            raise Interrupted(name)
        controls.submit(Command("stop", name, "signal"))

    previous = {}
    for name in HANDLED_SIGNALS:
        if hasattr(signal, name):
            signum = getattr(signal, name)
            previous[signum] = signal.signal(signum, handler)
    return previous


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    """Put back the handlers `install_signal_handlers` replaced (a caller in-process keeps its own)."""
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def exit_code(end: RunEnded, received: list[str]) -> int:
    """128 + N after signal N, whenever it came (even after the test pass: the caller asked this
    process to go, and it went); else 0 completed, early-stopped or stopped by a command; 1 failed
    or diverged."""
    if end.status in ("failed", "diverged"):
        return EXIT_FAILED
    return HANDLED_SIGNALS.get(received[0], EXIT_OK) if received else EXIT_OK


def limit_cpu_threads(cfg: RunConfig, device: Any, params: int) -> bool:
    """One intra-op thread for a small MLP on the CPU; whether it did so.

    The matrix products of such a model are too small to split: on a busy 2-core machine the
    threads' synchronization made digits-mlp 15 times slower. An explicit OMP_NUM_THREADS or
    MKL_NUM_THREADS is left alone.
    """
    import torch

    if device.type != "cpu" or cfg.model.kind != "mlp" or any(os.environ.get(name) for name in THREAD_ENV):
        return False
    if params * cfg.data.batch_size > SMALL_MLP_WORK:
        return False
    torch.set_num_threads(1)
    return True


def run_headless(request: RunRequest) -> int:
    """Train as requested; returns the process exit code of CONTRACT.md."""
    import torch

    device = resolve_device(request.config.train.device)
    controls = Controls()
    controls.accepting = False
    previous = install_signal_handlers(controls, request.signals)
    threads_before = torch.get_num_threads()
    try:
        return _run(request, device, controls)
    except Interrupted as interrupted:
        _note(f"{interrupted} before training started: nothing written")
        return HANDLED_SIGNALS[str(interrupted)]
    finally:
        restore_signal_handlers(previous)
        torch.set_num_threads(threads_before)


def _run(request: RunRequest, device: Any, controls: Controls) -> int:
    """Build everything before writing anything, then train."""
    import torch

    from nntui.data import DataError, build_data
    from nntui.engine.trainer import Trainer
    from nntui.models import ModelError, build_model

    cfg, received = request.config, request.signals
    torch.manual_seed(cfg.train.seed)
    try:
        data = build_data(cfg, device, request.data_dir, progress=_note)
        model = build_model(cfg.model, data.input_shape, data.num_outputs).to(device)
    except DataError as error:
        return _fail(str(error), EXIT_FAILED)
    except ModelError as error:
        return _fail(str(error), EXIT_USAGE)
    except Exception as error:  # noqa: BLE001 -- out of memory gets its one line; anything else goes on up
        if not is_out_of_memory(error):
            raise
        return _fail(out_of_memory_message(error, cfg, "loading the data and the model"), EXIT_FAILED)
    limit_cpu_threads(cfg, device, sum(p.numel() for p in model.parameters()))
    keep_freed_memory()
    sinks: list[Callable[[Event], None]] = []

    def emit(event: Event) -> None:
        for sink in sinks:
            sink(event)

    trainer = Trainer(cfg, data, model, device, emit, controls, request.run_dir / "checkpoints",
                      run_name=request.run_dir.name, on_divergence=request.on_divergence)
    if request.resume:
        problem = _load_resume_state(trainer, request, controls)
        if problem:
            return _fail(problem, EXIT_FAILED)
    controls.accepting = True  # from here on a signal stops at a step boundary, after a checkpoint
    if received:  # one that came while an `except` on the way could not let Interrupted through
        _note(f"{received[0]} before training started: nothing written")
        return HANDLED_SIGNALS[received[0]]
    return _train(trainer, request, sinks)


def _load_resume_state(trainer: Any, request: RunRequest, controls: Controls) -> str | None:
    """Load last.pt into the trainer; a one-line problem, or None."""
    from nntui.engine.checkpoint_files import CheckpointError

    last = request.run_dir / "checkpoints" / "last.pt"
    try:
        trainer.resume_from(last)
    except CheckpointError as error:
        return f"cannot resume: {error}"
    except Exception as error:  # noqa: BLE001 -- whatever else a damaged file causes, in one line
        return f"cannot resume from {last}: {one_line(error)[:300]}"
    if request.lr is not None:
        controls.submit(Command("lr", request.lr, "resume"))
    return None


def _train(trainer: Any, request: RunRequest, sinks: list[Callable[[Event], None]]) -> int:
    """Open the run directory and the control channel, train, close them; the exit code."""
    from nntui.channel import ChannelError, ChannelServer
    from nntui.rundir import RunDirWriter

    run_dir = request.run_dir
    try:
        if request.resume:
            _repair_resumed_dir(run_dir, request.config)
        writer = RunDirWriter(run_dir, request.config, fresh=not request.resume)
    except OSError as error:
        return _fail(f"cannot write the run directory {run_dir}: {error.strerror or error}", EXIT_USAGE)
    channel = ChannelServer(run_dir, trainer.controls)
    try:
        channel.open()
    except (ChannelError, OSError) as error:
        writer.close()
        if not request.resume:
            shutil.rmtree(run_dir, ignore_errors=True)
        return _fail(str(error), EXIT_USAGE)
    sinks.append(writer)
    if request.console is not None:
        sinks.append(guarded(request.console))
    try:
        end = trainer.run()
    finally:
        channel.close()
        writer.close()
    if trainer.error_traceback:
        (run_dir / "error.log").write_text(trainer.error_traceback, encoding="utf-8")
    return exit_code(end, request.signals)


def _repair_resumed_dir(run_dir: Path, cfg: RunConfig) -> None:
    """Make a run directory ready to be continued.

    config.toml must hold the configuration trained now (--epochs may have changed); a partial
    last line of metrics.jsonl (a crash mid-write) is cut, or it would swallow the next record;
    temp files of a process killed while it wrote a checkpoint are removed.
    """
    from nntui.rundir import write_atomic
    from nntui.runs import CONFIG, METRICS

    text = cfg.to_toml()
    config_path = run_dir / CONFIG
    if not config_path.is_file() or config_path.read_text(encoding="utf-8") != text:
        write_atomic(config_path, text)
    _cut_partial_line(run_dir / METRICS)
    for folder in (run_dir, run_dir / "checkpoints"):
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)


def _cut_partial_line(path: Path) -> None:
    """Truncate `path` right after its last newline."""
    try:
        with open(path, "rb+") as handle:
            end = position = handle.seek(0, os.SEEK_END)
            while position > 0:
                start = max(0, position - 4096)
                handle.seek(start)
                newline = handle.read(position - start).rfind(b"\n")
                if newline >= 0:
                    position = start + newline + 1
                    break
                position = start
            if position != end:
                handle.truncate(position)
    except FileNotFoundError:
        return


def guarded(console: Callable[[Event], None]) -> Callable[[Event], None]:
    """A console sink whose output may go away (a closed pipe, a full disk) without stopping training."""
    broken = False

    def sink(event: Event) -> None:
        nonlocal broken
        if broken:
            return
        try:
            console(event)
        except OSError:
            broken = True

    return sink


def _fail(message: str, code: int) -> int:
    print(f"nntui: error: {message}", file=sys.stderr, flush=True)
    return code


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
