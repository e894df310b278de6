"""The run directory: the sink that writes `metrics.jsonl`, `config.toml` and `summary.json`."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from nntui.config import RunConfig
from nntui.engine.events import Event, RunEnded, RunStarted, to_record
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
