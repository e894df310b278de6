"""The run directory: the sink that writes `metrics.jsonl`, `config.toml` and `summary.json`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from nntui import records
from nntui.config import RunConfig
from nntui.engine.events import Event, RunEnded, RunStarted, to_record
from nntui.runs import CONFIG, METRICS, SUMMARY


def _json_safe(value: Any) -> Any:
    """NaN and infinities as "NaN", "Infinity", "-Infinity": standard JSON (see `nntui.records`)."""
    return records.json_safe(value)


def record_line(record: dict[str, Any]) -> str:
    """One `metrics.jsonl` line (`nntui.records.record_line`: the format has one home)."""
    return records.record_line(record)


def write_atomic(path: Path, text: str) -> None:
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


class RunDirWriter:
    """Appends every event to `metrics.jsonl` (one flushed line each) and writes the summary at the end."""

    def __init__(self, run_dir: Path, config: RunConfig, fresh: bool = True) -> None:
        self.run_dir = Path(run_dir)
        if fresh:
            self.run_dir.mkdir(parents=True, exist_ok=False)
            write_atomic(self.run_dir / CONFIG, config.to_toml())
        (self.run_dir / "checkpoints").mkdir(exist_ok=True)
        self._stream = open(self.run_dir / METRICS, "a", encoding="utf-8")
        self._started: RunStarted | None = None
        self.config = config

    def __call__(self, event: Event) -> None:
        self._stream.write(record_line(to_record(event)))
        self._stream.flush()
        if isinstance(event, RunStarted):
            self._started = event
        elif isinstance(event, RunEnded):
            os.fsync(self._stream.fileno())
            self.write_summary(event)

    def write_summary(self, end: RunEnded) -> None:
        summary = {key: value for key, value in to_record(end).items() if key not in ("event", "time")}
        summary["name"] = self.run_dir.name
        summary["preset"] = self._started.preset if self._started else None
        summary["device"] = self._started.device if self._started else None
        summary["monitor"] = self.config.early_stopping.monitor
        summary["ended_at"] = end.time
        write_atomic(self.run_dir / SUMMARY, json.dumps(_json_safe(summary), indent=2) + "\n")

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.flush()
            os.fsync(self._stream.fileno())
            self._stream.close()
