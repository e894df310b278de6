"""Exporting runs' epoch and step records, so a user can take them into the tools they already have.

CSV (no torch here): one file per run and kind, `<run>-epochs.csv` and `<run>-steps.csv`, a header
row with the union of the records' keys, every value as the records wrote it (floats in their JSON
text, NaN and the infinities as the strings "NaN", "Infinity", "-Infinity", a nested value such as
`early_stop` as compact JSON, a null or a missing key as an empty cell).

TensorBoard: event files through `torch.utils.tensorboard`, imported only when asked for; it needs
the optional `tensorboard` package (`pip install 'nntui[tensorboard]'`).

Records are streamed with `nntui.records.scan_records` (a run with a million step records is never
held in memory). Every file is written under a temporary name and renamed into place once complete;
an existing file is replaced only when `force` is given.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, TextIO

from nntui import metrics
from nntui.records import METRICS, as_float, json_safe, scan_records

KINDS = {"epochs": "epoch", "steps": "step"}  # file suffix -> the event of its records
# The contract's keys of each event, in its order: they lead the header (when the records have them).
CONTRACT_KEYS = {
    "step": ("event", "time", "step", "epoch", "loss", "lr", "grad_norm", "samples_per_s"),
    "epoch": ("event", "time", "epoch", "step", "train_loss", "val_loss", "lr", "train_acc", "val_acc",
              "val_mae", "val_r2", "early_stop"),
}
TASK_KEYS = metrics.task_keys()  # a classification or a regression run's own
STEP_SCALARS = metrics.keys("step")
EPOCH_SCALARS = metrics.keys("epoch")
EVENT_FILES = "events.out.tfevents."
INSTALL_TENSORBOARD = "exporting to TensorBoard needs the tensorboard package: pip install 'nntui[tensorboard]'"
PROGRESS_DELAY_S = 1.0  # a task shorter than this shows no progress

_COMPACT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class ExportError(Exception):
    """An export that cannot be done; the text is one line for the user, `code` the exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------- progress


class Progress:
    """One line of progress on stderr, shown only once a task has taken over `PROGRESS_DELAY_S`:
    rewritten in place on a terminal, a new line every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.label = ""
        self.started = time.monotonic()
        self.shown_at: float | None = None  # when this task's progress was last shown
        self.line_open = False  # a line rewritten in place waits for its newline

    def update(self, label: str, done: int, total: int | None = None) -> None:
        """Reports `done` (of `total`) records of the task `label`, if it is time to."""
        now = time.monotonic()
        if label != self.label:  # a new task: its own second before it shows
            self.label, self.started, self.shown_at = label, now, None
        if now - self.started < PROGRESS_DELAY_S:
            return
        if self.shown_at is not None and now - self.shown_at < (0.2 if self.tty else 5.0):
            return
        self.shown_at = now
        count = f"{done:,}/{total:,}" if total else f"{done:,}"
        text = f"nntui: exporting {label}: {count} records"
        self.stream.write(f"\r{text}\x1b[K" if self.tty else text + "\n")
        self.stream.flush()
        self.line_open = self.tty

    def finish(self) -> None:
        """Ends a line rewritten in place."""
        if self.line_open:
            self.stream.write("\n")
            self.stream.flush()
            self.line_open = False


# ---------------------------------------------------------------------------- CSV


def csv_cell(value: Any) -> str:
    """A record's value as a CSV cell, as the records wrote it (a float in its JSON text)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return repr(value) if math.isfinite(value) else json_safe(value)
    if kind is int:
        return str(value)
    if value is None:
        return ""
    return _COMPACT.encode(json_safe(value))  # a bool, a dict (early_stop), a list


def csv_columns(seen: dict[str, None], event: str) -> list[str]:
    """The header of `event` records with the keys `seen` (in their first-seen order): the
    contract's keys first, then the others. Without records, the contract's keys of every task."""
    contract = CONTRACT_KEYS[event]
    if not seen:
        return [key for key in contract if key not in TASK_KEYS]
    return [key for key in contract if key in seen] + [key for key in seen if key not in contract]


def csv_targets(run_dir: Path, out_dir: Path) -> list[Path]:
    """The files that `export_csv` writes for a run."""
    return [out_dir / f"{run_name(run_dir)}-{suffix}.csv" for suffix in KINDS]


def export_csv(run_dir: Path, out_dir: Path, force: bool = False, progress: Progress | None = None) -> list[Path]:
    """Writes a run's epoch and step records to `<run>-epochs.csv` and `<run>-steps.csv` in `out_dir`."""
    metrics = readable_metrics(run_dir)
    progress = progress or Progress()
    written = []
    for (suffix, event), target in zip(KINDS.items(), csv_targets(run_dir, out_dir)):
        label = f"{run_name(run_dir)} {suffix}"
        seen: dict[str, None] = {}
        count = 0
        for count, record in enumerate(scan_records(metrics, (event,)), 1):  # pass one: the header
            seen.update(dict.fromkeys(record))
            progress.update(label, count)
        columns = csv_columns(seen, event)
        with _atomic_file(target, force) as stream:
            writer = csv.writer(stream)
            writer.writerow(columns)
            # the records counted in pass one only: a live run's later records could have other keys
            for done, record in enumerate(itertools.islice(scan_records(metrics, (event,)), count), 1):
                writer.writerow([csv_cell(record.get(key)) for key in columns])
                progress.update(label, done, count)
        written.append(target)
    progress.finish()
    return written


@contextlib.contextmanager
def _atomic_file(target: Path, force: bool) -> Iterator[TextIO]:
    """A text file written under a temporary name in `target`'s directory and, once complete,
    moved to `target` (never over an existing file unless `force`); removed on any failure."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as error:
        raise ExportError(f"cannot write in {target.parent}: {_reason(error)}", code=1) from None
    try:
        with open(fd, "w", newline="", encoding="utf-8") as stream:
            yield stream
        _move_into_place(temp, target, force)
    except OSError as error:
        raise ExportError(f"cannot write {target}: {_reason(error)}", code=1) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _move_into_place(temp: Path, target: Path, force: bool) -> None:
    if force:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # unlike a rename, fails if `target` has appeared meanwhile
    except FileExistsError:
        raise ExportError(already_there(target)) from None
    except OSError:  # a file system without hard links: checked, then renamed
        if os.path.lexists(target):
            raise ExportError(already_there(target)) from None
        os.rename(temp, target)


# ---------------------------------------------------------------------------- TensorBoard


def check_tensorboard() -> None:
    """Raises ExportError (exit 2) when the tensorboard package is missing; imports no torch."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ExportError(INSTALL_TENSORBOARD) from None


def tensorboard_target(run_dir: Path, out_dir: Path) -> Path:
    """The directory that `export_tensorboard` writes a run's event files to."""
    return out_dir / run_name(run_dir)


def existing_event_files(directory: Path) -> list[Path]:
    """The TensorBoard event files in `directory` (none when it does not exist)."""
    try:
        return sorted(path for path in directory.iterdir() if path.name.startswith(EVENT_FILES))
    except (FileNotFoundError, NotADirectoryError):
        return []


def export_tensorboard(run_dir: Path, out_dir: Path, force: bool = False,
                       progress: Progress | None = None) -> Path:
    """Writes a run's step records (by step) and epoch records (by epoch, as `epoch/...`) as
    TensorBoard scalars with their wall times, into `out_dir/<run>/`; returns that directory.

    The event file is written in a temporary directory and moved in once complete; with `force`
    the directory's earlier event files are removed first."""
    check_tensorboard()
    metrics = readable_metrics(run_dir)
    target = tensorboard_target(run_dir, out_dir)
    progress = progress or Progress()
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=out_dir))
    except OSError as error:
        raise ExportError(f"cannot write in {out_dir}: {_reason(error)}", code=1) from None
    try:
        _write_events(metrics, temp, progress, run_name(run_dir))
        _replace_events(temp, target, force)
    except OSError as error:
        raise ExportError(f"cannot write {target}: {_reason(error)}", code=1) from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        progress.finish()
    return target


def _write_events(metrics: Path, log_dir: Path, progress: Progress, label: str) -> None:
    """The scalars of the records, one event per record (its values together: a million records
    cost a million hand-offs to the writer's thread, not four million)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from torch.utils.tensorboard import SummaryWriter  # torch: seconds to import, so only here

    writer = SummaryWriter(log_dir=str(log_dir), max_queue=4096, flush_secs=3600)  # the default 10: 2x slower
    try:
        for done, record in enumerate(scan_records(metrics, ("step", "epoch")), 1):
            step_record = record.get("event") == "step"
            x = record.get("step" if step_record else "epoch")
            if isinstance(x, int) and not isinstance(x, bool):
                values = [Summary.Value(tag=tag, simple_value=value) for tag, value in _scalars(
                    record, STEP_SCALARS if step_record else EPOCH_SCALARS, "" if step_record else "epoch/")]
                if values:
                    writer.file_writer.add_summary(Summary(value=values), x, as_float(record.get("time"), None, None))
            progress.update(label, done)
    finally:
        writer.close()


def _scalars(record: dict[str, Any], keys: tuple[str, ...], prefix: str) -> Iterator[tuple[str, float]]:
    """The (tag, value) of the `keys` of `record` that hold a number (NaN and the infinities too)."""
    for key in keys:
        if key in record and record[key] is not None:
            value = as_float(record[key], None)
            if value is not None:
                yield prefix + key, value


def _replace_events(temp: Path, target: Path, force: bool) -> None:
    earlier = existing_event_files(target)
    if earlier and not force:
        raise ExportError(already_there(target))
    target.mkdir(exist_ok=True)
    for path in earlier:
        path.unlink()
    for path in temp.iterdir():
        os.replace(path, target / path.name)


# ---------------------------------------------------------------------------- shared


def run_name(run_dir: Path) -> str:
    """The name a run's exported files carry: its directory's name."""
    return Path(os.path.abspath(run_dir)).name


def readable_metrics(run_dir: Path) -> Path:
    """The run's `metrics.jsonl`, checked to be readable (ExportError, exit 2, if not)."""
    path = Path(run_dir) / METRICS
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise ExportError(f"cannot read {path}: {_reason(error)}") from None
    return path


def already_there(path: Path) -> str:
    """The one line that refuses to overwrite `path`."""
    return f"{path} already exists (--force replaces it)"


def _reason(error: OSError) -> str:
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]
