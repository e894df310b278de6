"""Reading run directories: records, liveness, `latest`, listings. No torch here."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nntui.engine.early_stopping import default_mode
from nntui.fs import RunDir, user_name
from nntui.paths import runs_dir as default_runs_dir

METRICS = RunDir.METRICS
SUMMARY = RunDir.SUMMARY
CONFIG = RunDir.CONFIG


class RunNotFound(LookupError):
    """No such run; the text is one line for the user."""


def parse_lines(chunk: str) -> list[dict[str, Any]]:
    """Records of complete lines; a line that is not a JSON object is skipped."""
    records = []
    for line in chunk.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete record of a run; a partial last line (a crash mid-write) is skipped."""
    try:
        data = (Path(run_dir) / METRICS).read_bytes()
    except OSError:  # missing, or another user's private run
        return []
    return parse_lines(data.rpartition(b"\n")[0].decode("utf-8", errors="replace"))


class RecordTail:
    """Reads the records appended to a `metrics.jsonl` since the last poll.

    Only complete lines (ending in a newline) are returned: a line being written is left
    for the next poll, and a partial last line of a crashed run is never returned.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._pending = b""

    def poll(self, max_bytes: int = 64 * 1024 * 1024) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read(max_bytes)
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._pending + chunk
        complete, _, self._pending = data.rpartition(b"\n")
        if not complete and not _:
            return []
        return parse_lines(complete.decode("utf-8", errors="replace"))


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's, which we may not signal, counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # EPERM: it exists, it is another user's
        return True
    return True


def run_pid(run_dir: Path) -> int:
    """The pid in `control/pid`, or 0 when there is none (or it cannot be read)."""
    try:
        return int(RunDir(run_dir).pid_file.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _started_pid(run_dir: Path, records: list[dict[str, Any]]) -> int:
    """The pid of the last session, from control/pid or, when that is another user's private file,
    from the session's `start` record."""
    try:
        return int(RunDir(run_dir).pid_file.read_text().strip() or 0)
    except PermissionError:
        pass
    except (OSError, ValueError):
        return 0
    for record in reversed(records):
        if record.get("event") == "start":
            pid = record.get("pid")
            return pid if isinstance(pid, int) and not isinstance(pid, bool) else 0
    return 0


def run_owner(run_dir: Path) -> int | None:
    """The uid that owns the run directory (None when it cannot be looked at)."""
    try:
        return os.stat(run_dir).st_uid
    except OSError:
        return None


def run_status(run_dir: Path, records: list[dict[str, Any]], end: dict[str, Any] | None) -> str:
    """The end record's status; else `running` while its process lives, `crashed` when it does not.

    Another user's run says so: "running (owned by alice)"; one whose records we cannot read at
    all is "private (owned by alice)".
    """
    if end is not None:
        status = str(end.get("status", "?"))
    elif pid_alive(_started_pid(run_dir, records)):
        status = "running"
    elif not records and not os.access(Path(run_dir) / METRICS, os.R_OK) and _exists(Path(run_dir) / METRICS):
        status = "private"
    else:
        status = "crashed"
    owner = run_owner(run_dir)
    if owner is not None and owner != os.getuid():
        status += f" (owned by {user_name(owner)})"
    return status


def _exists(path: Path) -> bool:
    try:
        os.stat(path)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def ended(records: list[dict[str, Any]]) -> bool:
    """Whether the last `start` record is followed by an `end` record."""
    for record in reversed(records):
        if record.get("event") == "end":
            return True
        if record.get("event") == "start":
            return False
    return False


def is_live(run_dir: Path, records: list[dict[str, Any]] | None = None) -> bool:
    """A run is live when its process is alive and it has not written its `end` record."""
    if records is None:
        records = read_records(run_dir)
    return not ended(records) and pid_alive(run_pid(run_dir))


def resolve_run(run: str, runs_root: str | os.PathLike[str] | None = None) -> Path:
    """A run directory from a path, a run name under the runs dir, or `latest` (the user's own newest)."""
    root = default_runs_dir(runs_root)
    if run == "latest":
        runs = run_dirs(root)
        if not runs:
            raise RunNotFound(f"no runs of yours under {root}" if run_dirs(root, all_users=True)
                              else f"no runs under {root}")
        return runs[0]
    for candidate in (Path(run), root / run):
        if _is_file(candidate / METRICS) or _is_file(candidate / CONFIG):
            return candidate
    raise RunNotFound(f"no run {run!r} (looked for a run directory and for {root / run})")


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def run_dirs(root: Path, all_users: bool = False) -> list[Path]:
    """Run directories under root, newest first (by the time their run started).

    Only the user's own (real directories, not links, owned by the user) unless `all_users`.
    """
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    uid = os.getuid()
    found = []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=all_users)  # without: a link is not a directory
        except OSError:
            continue
        path = Path(root) / entry.name
        if not stat.S_ISDIR(info.st_mode) or not (all_users or info.st_uid == uid):
            continue
        if _is_file(path / METRICS) or all_users and _exists(path / METRICS):
            found.append(path)
    return sorted(found, key=_started_at, reverse=True)


def _started_at(run_dir: Path) -> float:
    try:
        with open(run_dir / METRICS, "rb") as handle:
            first = parse_lines(handle.readline().decode("utf-8", errors="replace"))
        return float(first[0].get("time", 0.0)) if first else (run_dir / METRICS).stat().st_mtime
    except OSError:
        return 0.0


@dataclass(frozen=True)
class RunInfo:
    """One line of `nntui runs`."""

    name: str
    path: Path
    preset: str
    status: str
    epochs: int
    best: float | None
    monitor: str
    wall_s: float | None


def run_info(run_dir: Path) -> RunInfo:
    """What `nntui runs` shows of one run directory (its status is `running` or `crashed` until it ends)."""
    records = read_records(run_dir)
    starts = [r for r in records if r.get("event") == "start"]
    epochs = [r for r in records if r.get("event") == "epoch"]
    end = records[-1] if records and records[-1].get("event") == "end" else None
    preset = str(starts[0].get("preset", "?")) if starts else "?"
    status = run_status(run_dir, records, end)
    early = (epochs[-1].get("early_stop") if epochs else None) or {}
    configured = _configured(run_dir)
    monitor = _monitor(run_dir, starts, early, configured)
    if end:
        best = end.get("best")
    elif early:
        best = early.get("best")
    else:  # still going (or crashed) with early stopping off: the epoch records still say it
        best = _best_of_epochs(epochs, monitor, configured.get("mode"))
    return RunInfo(Path(run_dir).name, Path(run_dir), preset, status, len({e.get("epoch") for e in epochs}),
                   best, monitor, _wall_s(records, end))


def _best_of_epochs(epochs: list[dict[str, Any]], monitor: str, mode: str | None) -> float | None:
    values = [e[monitor] for e in epochs if isinstance(e.get(monitor), (int, float))]
    if not values:
        return None
    if mode not in ("min", "max"):
        mode = default_mode(monitor)
    return max(values) if mode == "max" else min(values)


def _configured(run_dir: Path) -> dict[str, Any]:
    """The run's `[early_stopping]` table from its config.toml ({} when unreadable)."""
    from nntui.config import tomllib  # tomli on Python 3.10

    try:
        table = tomllib.loads((Path(run_dir) / CONFIG).read_text(encoding="utf-8")).get("early_stopping")
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def _monitor(run_dir: Path, starts: list[dict[str, Any]], early: dict[str, Any], configured: dict[str, Any]) -> str:
    """The monitored metric: the epoch records say it; else the start record, the config, the summary."""
    if early.get("monitor"):
        return str(early["monitor"])
    started = (starts[-1].get("early_stop") if starts else None) or {}
    if started.get("monitor"):
        return str(started["monitor"])
    if configured.get("monitor"):
        return str(configured["monitor"])
    try:
        summary = json.loads((Path(run_dir) / SUMMARY).read_text(encoding="utf-8"))
        return str(summary.get("monitor") or "val_loss")
    except (OSError, ValueError, AttributeError):
        return "val_loss"


def _wall_s(records: list[dict[str, Any]], end: dict[str, Any] | None) -> float | None:
    """The end record's training time; for a run still going (or crashed), since its last start."""
    if end is not None:
        return end.get("wall_s")
    starts = [index for index, record in enumerate(records) if record.get("event") == "start"]
    if not starts:
        return None
    first, last = records[starts[-1]], records[-1]
    try:
        return float(last["time"]) - float(first["time"])
    except (KeyError, TypeError, ValueError):
        return None


def last_end(run_dir: Path, max_bytes: int = 256 * 1024) -> dict[str, Any] | None:
    """The `end` record of the run's last session, or None if that session has not ended."""
    for record in reversed(tail_records(run_dir, max_bytes)):
        if record.get("event") == "end":
            return record
        if record.get("event") == "start":
            return None
    return None


def tail_records(run_dir: Path, max_bytes: int = 256 * 1024) -> list[dict[str, Any]]:
    """The complete records in the last `max_bytes` of `metrics.jsonl` (cheap on a long run)."""
    try:
        with open(Path(run_dir) / METRICS, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            handle.seek(start)
            data = handle.read()
    except OSError:
        return []
    if start:
        data = data.partition(b"\n")[2]  # the first line is cut
    return parse_lines(data.rpartition(b"\n")[0].decode("utf-8", errors="replace"))


def list_runs(root: str | os.PathLike[str] | None = None, all_users: bool = False) -> list[RunInfo]:
    """The user's runs under `root` (default: the runs dir), newest first; everyone's with `all_users`."""
    return [run_info(path) for path in run_dirs(default_runs_dir(root), all_users)]
