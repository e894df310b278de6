"""The run directory: the sink that writes `metrics.jsonl`, `config.toml` and `summary.json`."""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nntui.config import RunConfig
from nntui.engine.events import EpochEnded, Event, GradNorms, RunEnded, RunStarted, StepLogged, to_record
from nntui.runs import CONFIG, METRICS, SUMMARY


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null: the records stay valid JSON for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


_STRICT_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # built once, not per record
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def record_line(record: dict[str, Any]) -> str:
    """One `metrics.jsonl` line; NaN and infinities (rare: only a diverging run has them) become null."""
    try:
        text = _STRICT_ENCODER.encode(record)
    except ValueError:
        text = _ENCODER.encode(_json_safe(record))
    return text + "\n"


def write_atomic(path: Path, text: str) -> None:
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


FLUSH_WITHIN_S = 0.1  # the most a step, gradient-norm or epoch record waits before it is in the file
_BATCHED = (StepLogged, GradNorms, EpochEnded)  # the records that can come many times a second


class RunDirWriter:
    """Appends every event to `metrics.jsonl` and writes the summary at the end.

    Step, gradient-norm and epoch records are written in batches, at most `flush_within_s` after
    they happen, by a daemon thread: a file write per record (an epoch of a small model can take
    25 ms) costs more than the bookkeeping of the epoch. Any other record (start, checkpoint,
    control, end) is written and flushed at once, with every record before it, so a reader
    never sees a checkpoint or a pause before the epochs that came first.
    """

    def __init__(self, run_dir: Path, config: RunConfig, fresh: bool = True,
                 flush_within_s: float = FLUSH_WITHIN_S) -> None:
        self.run_dir = Path(run_dir)
        if fresh:
            self.run_dir.mkdir(parents=True, exist_ok=False)
            write_atomic(self.run_dir / CONFIG, config.to_toml())
        (self.run_dir / "checkpoints").mkdir(exist_ok=True)
        self._stream = open(self.run_dir / METRICS, "a", encoding="utf-8")
        self._started: RunStarted | None = None
        self.config = config
        self.flush_within_s = flush_within_s
        self._pending: list[Event] = []
        self._due = 0.0  # when the oldest pending record must be in the file
        self._failure: OSError | None = None  # a write of the flushing thread that failed
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flusher = threading.Thread(target=self._flush_when_due, name="nntui-metrics", daemon=True)
        self._flusher.start()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self._failure is not None:  # raised in the caller's thread, as an immediate write would
                raise self._failure
            self._pending.append(event)
            if isinstance(event, _BATCHED):
                if len(self._pending) == 1:
                    self._due = time.monotonic() + self.flush_within_s
                    self._wake.notify()
                return
            self._write_pending()
        if isinstance(event, RunStarted):
            self._started = event
        elif isinstance(event, RunEnded):
            os.fsync(self._stream.fileno())
            self.write_summary(event)

    def _write_pending(self) -> None:
        """Write and flush the pending records (the lock is held)."""
        if self._pending and not self._stream.closed:
            self._stream.write("".join(record_line(to_record(event)) for event in self._pending))
            self._stream.flush()
        self._pending = []

    def _flush_when_due(self) -> None:
        with self._lock:
            while not self._stream.closed:
                if not self._pending:
                    self._wake.wait()
                    continue
                delay = self._due - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                try:
                    self._write_pending()
                except OSError as error:  # a full disk: the trainer's next record raises it
                    self._failure, self._pending = error, []
                    return

    def write_summary(self, end: RunEnded) -> None:
        summary = {key: value for key, value in to_record(end).items() if key not in ("event", "time")}
        summary["name"] = self.run_dir.name
        summary["preset"] = self._started.preset if self._started else None
        summary["device"] = self._started.device if self._started else None
        summary["monitor"] = self.config.early_stopping.monitor
        summary["ended_at"] = end.time
        write_atomic(self.run_dir / SUMMARY, json.dumps(_json_safe(summary), indent=2) + "\n")

    def close(self) -> None:
        """Write what is pending, sync and close the file, and end the flushing thread."""
        with self._lock:
            if self._stream.closed:
                return
            self._write_pending()
            os.fsync(self._stream.fileno())
            self._stream.close()
            self._wake.notify()
        self._flusher.join()
