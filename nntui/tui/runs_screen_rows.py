"""The runs screen's table as data: one row per run directory, the columns (the fixed ones and one
per setting that differs between the runs), filtering, sorting, and a cheap refresh that reads
again only the runs whose files changed. No textual here."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nntui.compare import MISSING, differing_keys, format_setting, read_settings
from nntui.fs import RunDir
from nntui.records import METRICS, last_record, scan_appended
from nntui.runs import RunInfo, info_of_records, pid_alive, run_dirs, run_pid
from nntui.tui.formatting import fmt_duration

# (column key, header): the fixed columns, then one per differing setting (its dotted key)
FIXED_COLUMNS = (("name", "name"), ("preset", "preset"), ("status", "status"), ("epochs", "epochs"),
                 ("best", "best"), ("wall_s", "wall time"))
LIVE_CHECK_S = 5.0  # a running run whose file did not change: is its process still there?
Signature = tuple[int, int, int]  # metrics.jsonl size and mtime, config.toml mtime


def _signature(run_dir: Path) -> Signature:
    def stat(name: str) -> os.stat_result | None:
        try:
            return os.stat(run_dir / name)
        except OSError:
            return None

    metrics, config = stat(METRICS), stat(RunDir.CONFIG)
    return (metrics.st_size if metrics else -1, metrics.st_mtime_ns if metrics else -1,
            config.st_mtime_ns if config else -1)


@dataclass
class RecordsRead:
    """How far a run's metrics.jsonl has been read, and its `start` and `epoch` records so far."""

    identity: tuple[int, int] = (0, 0)  # (device, inode): a file written anew is read from the start
    offset: int = 0  # where the first line not read yet starts
    starts: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)


def read_appended(run_dir: Path, read: RecordsRead | None) -> RecordsRead:
    """`read` brought up to date with what was appended to the file since (all of it the first
    time, or when the file was replaced or cut)."""
    path = run_dir / METRICS
    try:
        info = os.stat(path)
    except OSError:  # gone, or another user's private run
        return RecordsRead()
    identity = (info.st_dev, info.st_ino)
    if read is None or read.identity != identity or info.st_size < read.offset:
        read = RecordsRead(identity)
    records, read.offset = scan_appended(path, ("start", "epoch"), read.offset)
    for record in records:
        (read.starts if record.get("event") == "start" else read.epochs).append(record)
    return read


@dataclass
class RunRow:
    """A run as the table knows it: its `nntui runs` line, its settings and what was read of it."""

    info: RunInfo
    settings: dict[str, Any]
    signature: Signature
    read: RecordsRead
    checked_at: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def live(self) -> bool:
        return self.info.status == "running"


def read_row(run_dir: Path, previous: RunRow | None = None) -> RunRow:
    """The row of a run; with its `previous` row, only the bytes appended since are read, and
    its config.toml again only if it changed."""
    signature = _signature(run_dir)  # before reading: a write meanwhile is seen at the next refresh
    read = read_appended(run_dir, previous.read if previous else None)
    same_config = previous is not None and previous.signature[2] == signature[2]
    settings = previous.settings if same_config and previous else read_settings(run_dir)
    return RunRow(info_of_records(run_dir, read.starts, read.epochs, last_record(run_dir)), settings, signature, read)


class RunsRows:
    """The runs under `root`, newest first, kept up to date by `refresh`."""

    def __init__(self, root: Path, all_users: bool = False) -> None:
        self.root = Path(root)
        self.all_users = all_users
        self.rows: dict[str, RunRow] = {}  # by run name, newest first
        self.setting_keys: list[str] = []
        self._entries: frozenset[str] = frozenset()

    def load(self) -> None:
        """Read every run under the root."""
        self._entries = self._entry_names()
        self.rows = {path.name: read_row(path) for path in run_dirs(self.root, self.all_users)}
        self._update_keys()

    def refresh(self, now: float | None = None) -> set[str]:
        """Read again what changed: new and removed run directories, runs whose records or config
        changed, and running runs whose process may have gone. The names of the rows that changed."""
        now = time.monotonic() if now is None else now
        changed = self._refresh_listing()
        for name, row in list(self.rows.items()):
            signature = _signature(row.info.path)
            stale = signature != row.signature
            if not stale and row.live and now - row.checked_at >= LIVE_CHECK_S:
                row.checked_at = now
                stale = not pid_alive(run_pid(row.info.path))
            if stale:
                self.rows[name] = read_row(row.info.path, row)
                changed.add(name)
        if changed:
            self._update_keys()
        return changed

    def _entry_names(self) -> frozenset[str]:
        try:
            return frozenset(entry.name for entry in os.scandir(self.root))
        except OSError:
            return frozenset()

    def _refresh_listing(self) -> set[str]:
        entries = self._entry_names()
        if entries == self._entries:
            return set()
        self._entries = entries
        paths = run_dirs(self.root, self.all_users)
        names = [path.name for path in paths]
        gone = set(self.rows) - set(names)
        rows = {path.name: self.rows.get(path.name) or read_row(path) for path in paths}
        added = set(rows) - set(self.rows)
        self.rows = rows
        return gone | added

    def _update_keys(self) -> None:
        self.setting_keys = differing_keys([row.settings for row in self.rows.values()])

    # ------------------------------------------------------------------ columns, filter, sort

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(key, header) of every column: the fixed ones, then the differing settings."""
        return [*FIXED_COLUMNS, *((key, key) for key in self.setting_keys)]

    def cells(self, row: RunRow) -> list[str]:
        """The row's text in each column."""
        info = row.info
        best = "-" if info.best is None else f"{info.best:.4g} {info.monitor}"
        fixed = [info.name, info.preset, info.status, str(info.epochs), best, fmt_duration(info.wall_s)]
        return fixed + [format_setting(row.settings.get(key, MISSING)) for key in self.setting_keys]

    def visible(self, text: str = "", sort_by: str | None = None, descending: bool = False) -> list[RunRow]:
        """The rows with `text` in any cell (case-insensitive), sorted by the column `sort_by`
        (None: newest first; oldest first when `descending`). Rows without a value in that column
        come last either way."""
        needle = text.strip().lower()
        rows = [row for row in self.rows.values()
                if not needle or any(needle in cell.lower() for cell in self.cells(row))]
        if sort_by is None:
            return rows[::-1] if descending else rows
        key = self.sort_key(sort_by)
        present = [row for row in rows if key(row) is not None]
        absent = [row for row in rows if key(row) is None]
        return sorted(present, key=key, reverse=descending) + absent  # type: ignore[arg-type, return-value]

    def sort_key(self, column: str) -> Callable[[RunRow], Any]:
        """A key that orders the rows by `column`: numbers as numbers (before text, in a settings
        column that has both), text by its lower case; None for a row with no value there."""
        def value(row: RunRow) -> Any:
            if column == "name":
                return row.info.name
            if column in ("preset", "status", "epochs", "wall_s"):
                return getattr(row.info, column)
            if column == "best":
                return row.info.best
            return row.settings.get(column)

        def key(row: RunRow) -> Any:
            item = value(row)
            if item is None or isinstance(item, float) and math.isnan(item):
                return None
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                return (0, float(item), "")
            return (1, 0.0, format_setting(item).lower())

        return key
