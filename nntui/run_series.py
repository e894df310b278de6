"""The epoch curves of runs, for comparing them: what the runs screen and its overlay charts draw.

`SeriesCache.load(run_dir)` reads a run's `start`, `epoch` and `end` records. The step records,
nearly all of a long run's file, are skipped by a byte search without being decoded
(`records.scan_appended`), and each later load of the same run reads only the bytes appended
since: polling a few live runs twice a second costs little. A line still being written is left
for the next load. No torch or textual here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nntui.engine.events import RunEnded, RunStarted, from_record, to_record
from nntui.records import METRICS, as_float, scan_appended
from nntui.runs import config_table_or_empty, run_status

SCANNED_EVENTS = ("start", "epoch", "end")
TASKS = ("classification", "regression")


@dataclass
class RunSeries:
    """One run's epoch records and what the charts need to know about the run."""

    name: str  # the run directory's name
    run_dir: Path
    task: str  # classification | regression (from config.toml)
    status: str  # as runs.run_status gives it (running, completed, ...)
    epochs: list[dict[str, Any]]  # the epoch records as read (floats decoded), in order
    forked_from: tuple[str, int] | None  # (parent run name, step) from the start record
    start_time: float | None = None  # the first start record's time: wall time counts from it


@dataclass
class _Progress:
    """How far a run's file has been read, and what it said so far."""

    identity: tuple[int, int]  # (device, inode) of metrics.jsonl: a file replaced is read again
    offset: int = 0  # where the first line not read yet starts
    starts: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None  # the last session's end record (None while it goes on)
    task: str | None = None  # from config.toml, once read

    def add(self, record: dict[str, Any]) -> None:
        """One record of the file (an unusable one is skipped). Start and end records are
        decoded by their event type; epoch records, the many, only have their floats decoded."""
        if record.get("event") == "epoch":
            if _whole(record.get("epoch")) and _whole(record.get("step")):
                self.epochs.append(_floats_decoded(record))
            return
        event = from_record(record)
        if isinstance(event, RunStarted):
            self.starts.append(to_record(event))
            self.end = None  # a resumed session: the run goes on
        elif isinstance(event, RunEnded):
            self.end = to_record(event)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _floats_decoded(record: dict[str, Any]) -> dict[str, Any]:
    """The record (changed in place) with "NaN", "Infinity" and "-Infinity" as floats, nested ones too."""
    for key, value in record.items():
        if isinstance(value, str):
            record[key] = as_float(value, value)  # another string stays as it is
        elif isinstance(value, dict):
            _floats_decoded(value)
    return record


class SeriesCache:
    """Loads runs' series, keeping what was read: a later load reads only the appended bytes."""

    def __init__(self) -> None:
        self._runs: dict[Path, _Progress] = {}

    def load(self, run_dir: Path) -> RunSeries:
        """The run's series as its file is now (a missing or unreadable file: no epochs)."""
        run_dir = Path(run_dir)
        progress = self._progress(run_dir)
        return RunSeries(name=run_dir.name, run_dir=run_dir, task=_task(run_dir, progress),
                         status=run_status(run_dir, progress.starts, progress.end),
                         epochs=list(progress.epochs), forked_from=_forked_from(progress.starts),
                         start_time=_start_time(progress.starts))

    def forget(self, run_dir: Path) -> None:
        """Drop what was read of a run (a run deleted, or no longer listed)."""
        self._runs.pop(Path(run_dir), None)

    def _progress(self, run_dir: Path) -> _Progress:
        path = run_dir / METRICS
        try:
            info = os.stat(path)
        except OSError:  # not there yet, or another user's private run
            self._runs.pop(run_dir, None)
            return _Progress(identity=(0, 0))
        progress = self._runs.get(run_dir)
        identity = (info.st_dev, info.st_ino)
        if progress is None or progress.identity != identity or info.st_size < progress.offset:
            progress = self._runs[run_dir] = _Progress(identity=identity, task=progress and progress.task)
        if info.st_size > progress.offset:
            records, progress.offset = scan_appended(path, SCANNED_EVENTS, progress.offset)
            for record in records:
                progress.add(record)
        return progress


def _task(run_dir: Path, progress: _Progress) -> str:
    """The run's task from its config.toml (read once); the start record's while it cannot be read."""
    if progress.task is None:
        progress.task = _configured_task(run_dir)
    if progress.task is None:
        task = progress.starts[-1].get("task") if progress.starts else None
        return task if task in TASKS else TASKS[0]
    return progress.task


def _configured_task(run_dir: Path) -> str | None:
    """The `task` of config.toml (None when it cannot be read). Only the TOML is read: validating
    the whole configuration of 200 runs would take most of the time the runs screen has to open."""
    task = config_table_or_empty(run_dir).get("task")
    return task if task in TASKS else None


def _forked_from(starts: list[dict[str, Any]]) -> tuple[str, int] | None:
    """(parent, step) of the first session that says it (a resumed fork's later sessions may not)."""
    for start in starts:
        source = start.get("forked_from")
        if source is not None:
            return source["run"], source["step"]
    return None


def _start_time(starts: list[dict[str, Any]]) -> float | None:
    time = starts[0]["time"] if starts else math.nan
    return time if math.isfinite(time) else None
