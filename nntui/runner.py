"""A headless run: data, model, run directory, control channel, signals, trainer, console.

Used by `nntui run --headless` and, as a subprocess, by the app.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nntui.config import RunConfig
from nntui.engine.allocator import keep_freed_memory
from nntui.engine.control import Command, Controls
from nntui.engine.events import Event, RunEnded
from nntui.engine.failures import is_out_of_memory, one_line, out_of_memory_message
from nntui.engine.fork import Fork
from nntui.engine.replay import Replay
from nntui.fs import RunDir

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
HANDLED_SIGNALS = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
SMALL_MLP_WORK = 20_000_000  # parameters x batch size under which one CPU thread is fastest
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


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
    fork: Fork | None = None      # a new run from another run's checkpoint (`--fork`)
    lr: float | None = None       # on resume: a new learning rate, logged as a control record
    replay: Replay | None = None  # a new run that applies another run's recorded commands (`--replay`)
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
    """One intra-op thread for a small MLP (or a user's model as small) on the CPU; whether it did so.

    The matrix products of such a model are too small to split: on a busy 2-core machine the
    threads' synchronization made digits-mlp 15 times slower. An explicit OMP_NUM_THREADS or
    MKL_NUM_THREADS is left alone.
    """
    import torch

    if device.type != "cpu" or cfg.model.kind not in ("mlp", "custom") or any(os.environ.get(name) for name in THREAD_ENV):
        return False
    if params * cfg.data.batch_size > SMALL_MLP_WORK:
        return False
    torch.set_num_threads(1)
    return True


def run_headless(request: RunRequest) -> int:
    """Train as requested; returns the process exit code of CONTRACT.md."""
    import torch

    device = resolve_device(request.config.train.device)
    controls = request.replay.controls if request.replay is not None else Controls()
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
    from nntui.data.progress import HeldNotes
    from nntui.engine.precision import refusal
    from nntui.engine.trainer import Trainer
    from nntui.models import ModelError, model_for_data

    cfg, received = request.config, request.signals
    problem = refusal(cfg, device)  # an optimizer kernel, precision or compiler the device lacks
    if problem:
        return _fail(problem, EXIT_USAGE)
    torch.manual_seed(cfg.train.seed)
    try:
        with HeldNotes(_note) as progress:  # a quick load says nothing: an error is then the only line
            data = build_data(cfg, device, request.data_dir, progress=progress)
        model = model_for_data(cfg, data, device)
    except DataError as error:  # bad input found only when loading (a missing file, a bad cell): usage
        return _fail(str(error), EXIT_USAGE)
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

    trainer = Trainer(cfg, data, model, device, emit, controls, RunDir(request.run_dir).checkpoints,
                      run_name=request.run_dir.name, on_divergence=request.on_divergence)
    if request.replay is not None:
        request.replay.attach(trainer)
    if request.resume:
        problem = _load_resume_state(trainer, request, controls)
        if problem:
            return _fail(problem, EXIT_FAILED)
    elif request.fork is not None:
        from nntui.engine.fork import start_fork

        problem = start_fork(trainer, request.fork)
        if problem:  # nothing written yet: like a bad preset, bad usage
            return _fail(problem, EXIT_USAGE)
    controls.accepting = True  # from here on a signal stops at a step boundary, after a checkpoint
    if received:  # one that came while an `except` on the way could not let Interrupted through
        _note(f"{received[0]} before training started: nothing written")
        return HANDLED_SIGNALS[received[0]]
    return _train(trainer, request, sinks)


def _load_resume_state(trainer: Any, request: RunRequest, controls: Controls) -> str | None:
    """Load last.pt into the trainer; a one-line problem, or None."""
    from nntui.engine.checkpoint_files import CheckpointError

    last = RunDir(request.run_dir).last_checkpoint
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

    writer = _open_writer(request)
    if isinstance(writer, int):
        return writer
    channel = ChannelServer(request.run_dir, trainer.controls, directory=writer.directory)
    try:
        channel.open()
    except (ChannelError, OSError) as error:
        return _abandon(writer, str(error), _storage_exit(error))
    sinks.append(writer)
    if request.console is not None:
        sinks.append(_as_recorded(writer, guarded(request.console)))
    end: RunEnded | None = None
    escaped = None
    try:
        end = trainer.run()
    except Exception as error:  # noqa: BLE001 -- the start record failed, or an error past the trainer's guard
        escaped, trainer.error_traceback = error, trainer.error_traceback or traceback.format_exc()
    finally:
        channel.close()
    if writer.fresh and not writer.records:
        return _abandon(writer, _one_line(escaped or writer.error), EXIT_FAILED)  # nothing recorded: no run dir
    if escaped is not None and writer.end is None:
        _record_failure(writer, trainer.progress, escaped)
    return _finish(writer, trainer.error_traceback, writer.end or end, escaped, request.signals)


def _record_failure(writer: Any, progress: Any, error: Exception) -> None:
    """An `end` record for a run the trainer could not end itself (an error past its own guard)."""
    message = one_line(error)
    with contextlib.suppress(OSError):
        writer(RunEnded("failed", epoch=max(progress.last_epoch, 0), step=progress.step, error=message,
                        reason=message))


def _open_writer(request: RunRequest) -> Any:
    """The run directory's writer (a resumed one repaired first), or the exit code of a refusal."""
    from nntui.rundir import RunDirWriter

    try:
        if not request.resume:
            return RunDirWriter(request.run_dir, request.config, fresh=True)
        directory = RunDir(request.run_dir).open()
        try:
            _repair_resumed_dir(directory, request.config)
        except BaseException:
            directory.close()
            raise
        return RunDirWriter(directory, request.config, fresh=False)
    except OSError as error:  # one line: nntui.fs names the cause and the file
        return _fail(str(error), _storage_exit(error))


def _abandon(writer: Any, message: str, code: int) -> int:
    """Close a run that cannot go on; a fresh one that recorded nothing leaves no directory."""
    if writer.fresh and not writer.records:
        writer.discard()
    writer.close()
    return _fail(message, code)


def _finish(writer: Any, error_traceback: str | None, end: RunEnded | None, escaped: Exception | None,
            received: list[str]) -> int:
    """Keep the traceback in error.log, close the records, say what went wrong in one line."""
    problem = writer.error or escaped
    if not error_traceback and problem is not None:  # e.g. the summary: the trainer saw nothing wrong
        error_traceback = "".join(traceback.format_exception(type(problem), problem, problem.__traceback__))
    kept = bool(error_traceback) and writer.write_error_log(error_traceback)
    writer.close()
    problem = writer.error or escaped  # closing syncs the records: that can fail too
    where = f" (traceback in {writer.run_dir / RunDir.ERROR_LOG})" if kept else ""
    if problem is None and end is not None and end.status == "failed" and end.error:
        return _fail(end.error + where, EXIT_FAILED)  # the trainer's own guard caught it: say it once, here
    if problem is None:
        return exit_code(end, received) if end is not None else EXIT_FAILED
    return _fail(_one_line(problem) + (where if escaped is not None else ""), EXIT_FAILED)


def _one_line(problem: BaseException | None) -> str:
    """An error of nntui.fs says the cause and the file; any other, its type and text."""
    if problem is None:
        return "the run could not be written"
    return str(problem) if isinstance(problem, OSError) else one_line(problem)


def _as_recorded(writer: Any, console: Callable[[Event], None]) -> Callable[[Event], None]:
    """The console sees the end as it was recorded (`failed` when the summary could not be written)."""
    def sink(event: Event) -> None:
        console(writer.end if isinstance(event, RunEnded) and writer.end is not None else event)

    return sink


def _storage_exit(error: BaseException) -> int:
    """A full or failing disk fails the run (1); a refused or unusable directory is bad usage (2)."""
    return EXIT_FAILED if getattr(error, "errno", None) in _DISK_ERRORS else EXIT_USAGE


def _repair_resumed_dir(directory: Any, cfg: RunConfig) -> None:
    """Make an open run directory (`fs.OwnDir`) ready to be continued.

    config.toml must hold the configuration trained now (--epochs may have changed); a partial
    last line of metrics.jsonl (a crash mid-write) is cut, or it would swallow the next record;
    temp files of a process killed while it wrote a checkpoint are removed.
    """
    text = cfg.to_toml().encode("utf-8")
    try:
        current = directory.read_bytes(RunDir.CONFIG)
    except FileNotFoundError:
        current = None
    if current != text:
        directory.write_atomic(RunDir.CONFIG, text)
    _cut_partial_line(directory, RunDir.METRICS)
    _remove_temp_files(directory)
    try:
        checkpoints = directory.subdir(RunDir.CHECKPOINTS)
    except FileNotFoundError:
        return
    with checkpoints:
        _remove_temp_files(checkpoints)


def _remove_temp_files(directory: Any) -> None:
    for name in directory.names():
        if name.startswith(".") and name.endswith(".tmp"):
            directory.unlink(name)


def _cut_partial_line(directory: Any, name: str) -> None:
    """Truncate the file `name` of an open `fs.OwnDir` right after its last newline."""
    try:
        fd = directory.open_file(name, os.O_RDWR)
    except FileNotFoundError:
        return
    with open(fd, "rb+") as handle:
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
