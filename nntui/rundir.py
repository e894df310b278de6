"""The run directory: the sink that writes `metrics.jsonl`, `config.toml` and `summary.json`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from nntui import fs, records
from nntui.config import RunConfig
from nntui.engine.events import Event, RunEnded, RunStarted, to_record
from nntui.fs import RunDir


def _json_safe(value: Any) -> Any:
    """NaN and infinities as "NaN", "Infinity", "-Infinity": standard JSON (see `nntui.records`)."""
    return records.json_safe(value)


def record_line(record: dict[str, Any]) -> str:
    """One `metrics.jsonl` line (`nntui.records.record_line`: the format has one home)."""
    return records.record_line(record)


class RunDirWriter:
    """Appends every event to `metrics.jsonl` (one line each, written whole) and writes the summary at the end.

    Every file goes through the run directory's descriptor (see `nntui.fs`). A record that cannot
    be written raises StorageError, which ends the run as `failed`; the `end` record itself never
    raises: `end` and `error` say what was recorded and what went wrong.
    """

    def __init__(self, run_dir: Path | fs.OwnDir, config: RunConfig, fresh: bool = True) -> None:
        """`run_dir`: a path (made exclusively when `fresh`, else opened) or an open OwnDir to take over."""
        if isinstance(run_dir, fs.OwnDir):
            self.directory = run_dir
        else:
            self.directory = RunDir(run_dir).create() if fresh else RunDir(run_dir).open()
        self.run_dir = self.directory.path
        self.config = config
        self.fresh = fresh
        self.records = 0  # written by this process
        self.end: RunEnded | None = None  # as recorded (a summary that could not be written makes it `failed`)
        self._error: OSError | None = None
        self._started: RunStarted | None = None
        try:
            if fresh:
                self.directory.write_atomic(RunDir.CONFIG, config.to_toml().encode("utf-8"))
            self.checkpoints = self.directory.subdir(RunDir.CHECKPOINTS, create=True)
            self._stream = self.directory.open_append(RunDir.METRICS)
        except BaseException:
            if fresh:
                self.discard()
            self.directory.close()
            raise
        fs.hold(self.checkpoints)  # checkpoints.save_atomic writes through this descriptor

    @property
    def error(self) -> OSError | None:
        """The first write to the run directory that failed (records, summary or a checkpoint)."""
        return self._error or self.checkpoints.failure

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunEnded):
            self._record_end(event)
            return
        self._append(event)
        if isinstance(event, RunStarted):
            self._started = event

    def write_extra(self, event: Event, extra: Mapping[str, Any]) -> None:
        """`event`'s record with more keys (a user's own metrics: the contract welcomes more keys);
        a key the record has already keeps the record's value."""
        self._append(event, extra)

    def _append(self, event: Event, extra: Mapping[str, Any] | None = None) -> None:
        record = to_record(event)
        if extra:
            record.update((key, value) for key, value in extra.items() if key not in record)
        try:
            self._stream.write(record_line(record).encode("utf-8"))
        except OSError as error:
            self._error = self._error or error
            raise
        self.records += 1

    def _record_end(self, end: RunEnded) -> None:
        """The summary first, so that a reader who sees the `end` record finds the summary too."""
        try:
            self.write_summary(end)
        except OSError as error:
            self._error = self._error or error
            end = dataclasses.replace(end, status="failed", error=f"{type(error).__name__}: {error}",
                                      reason=f"the summary could not be written: {error}")
            self._drop_summary()  # one of an earlier session must not contradict this end
        try:
            self._append(end)
            self._stream.sync()
        except OSError:
            self._drop_summary()
        self.end = end

    def _drop_summary(self) -> None:
        with contextlib.suppress(OSError):
            self.directory.unlink(RunDir.SUMMARY)

    def write_summary(self, end: RunEnded) -> None:
        summary = {key: value for key, value in to_record(end).items() if key not in ("event", "time")}
        summary["name"] = self.run_dir.name
        summary["preset"] = self._started.preset if self._started else None
        summary["device"] = self._started.device if self._started else None
        summary["monitor"] = self.config.early_stopping.monitor
        summary["ended_at"] = end.time
        text = json.dumps(_json_safe(summary), indent=2) + "\n"
        self.directory.write_atomic(RunDir.SUMMARY, text.encode("utf-8"))

    def write_error_log(self, text: str) -> bool:
        """The full traceback of a failed run in `error.log` (0600); False when it cannot be written."""
        try:
            self.directory.write_atomic(RunDir.ERROR_LOG, text.encode("utf-8"))
        except OSError:
            return False
        return True

    def discard(self) -> None:
        """Remove the run directory (a fresh run that recorded nothing), so its name can be used again."""
        with contextlib.suppress(OSError):
            self.directory.remove()

    def close(self) -> None:
        """Sync and close the records; never raises (a failure is kept in `error`)."""
        if self._stream.fd >= 0:
            try:
                self._stream.sync()
            except OSError as error:
                self._error = self._error or error
            self._stream.close()
        fs.release(self.checkpoints)
        self.checkpoints.close()
        self.directory.close()
