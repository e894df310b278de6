"""Reading run directories: records, liveness, `latest`, listings. No torch here."""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nntui.engine.early_stopping import default_mode
from nntui.engine.events import from_record, to_record

if TYPE_CHECKING:
    from nntui.config import RunConfig
from nntui.fs import RunDir
from nntui.ownership import user_name
from nntui.paths import runs_dir as default_runs_dir
from nntui.records import (
    METRICS,
    as_float,
    last_record,
    parse_lines,
    read_records,  # noqa: F401  (re-exported: tests and benchmarks read runs from here)
    scan_records,
    tail_records,
)

SUMMARY = RunDir.SUMMARY
CONFIG = RunDir.CONFIG


class RunNotFound(LookupError):
    """No such run; the text is one line for the user."""


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
        return _read_pid_file(run_dir)
    except (OSError, ValueError):
        return 0


def _read_pid_file(run_dir: Path) -> int:
    return int(RunDir(run_dir).pid_file.read_text().strip() or 0)


def _started_pid(run_dir: Path, starts: list[dict[str, Any]]) -> int:
    """The pid of the last session, from control/pid or, when that is another user's private file,
    from the session's `start` record."""
    try:
        return _read_pid_file(run_dir)
    except PermissionError:
        pid = starts[-1].get("pid") if starts else 0
        return pid if isinstance(pid, int) and not isinstance(pid, bool) else 0
    except (OSError, ValueError):
        return 0


def run_owner(run_dir: Path) -> int | None:
    """The uid that owns the run directory (None when it cannot be looked at)."""
    try:
        return os.stat(run_dir).st_uid
    except OSError:
        return None


def run_status(run_dir: Path, starts: list[dict[str, Any]], end: dict[str, Any] | None) -> str:
    """The end record's status; else `running` while its process lives, `crashed` when it does not.

    Another user's run says so: "running (owned by alice)"; one whose records we cannot read at
    all is "private (owned by alice)".
    """
    if end is not None:
        status = str(end.get("status", "?"))
    elif pid_alive(_started_pid(run_dir, starts)):
        status = "running"
    elif not starts and not os.access(Path(run_dir) / METRICS, os.R_OK) and _exists(Path(run_dir) / METRICS):
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
        records = tail_records(run_dir)  # enough for `ended`: an `end` is a session's last record
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
        return as_float(first[0].get("time"), 0.0, 0.0) if first else (run_dir / METRICS).stat().st_mtime
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
    """What `nntui runs` shows of one run directory (its status is `running` or `crashed` until it ends).

    Only the `start` and `epoch` records (`scan_records`) and the last record are decoded, so
    a run of a million steps is listed in a fraction of a second.
    """
    starts: list[dict[str, Any]] = []
    epochs: list[dict[str, Any]] = []
    for record in scan_records(Path(run_dir) / METRICS, ("start", "epoch")):
        (starts if record.get("event") == "start" else epochs).append(record)
    return info_of_records(run_dir, starts, epochs, last_record(run_dir))


def info_of_records(run_dir: Path, starts: list[dict[str, Any]], epochs: list[dict[str, Any]],
                    last: dict[str, Any] | None) -> RunInfo:
    """`run_info` from the run's `start` and `epoch` records and its last record, read already
    (the runs screen reads only what a live run appended since)."""
    end = last if last is not None and last.get("event") == "end" else None
    preset = str(starts[0].get("preset", "?")) if starts else "?"
    status = run_status(run_dir, starts, end)
    early = _table(epochs[-1].get("early_stop")) if epochs else {}
    configured = _configured(run_dir)
    monitor = _monitor(run_dir, starts, early, configured)
    if end:
        best = _optional_float(end.get("best"))
    elif early:
        best = _optional_float(early.get("best"))
    else:  # still going (or crashed) with early stopping off: the epoch records still say it
        best = _best_of_epochs(epochs, monitor, configured.get("mode"))
    numbers = {e.get("epoch") for e in epochs if isinstance(e.get("epoch"), int)}
    return RunInfo(Path(run_dir).name, Path(run_dir), preset, status, len(numbers), best, monitor,
                   _wall_s(starts[-1] if starts else None, last, end))


def _table(value: Any) -> dict[str, Any]:
    """A nested record (`early_stop`) as a dict; {} when it is null or not a dict."""
    return value if isinstance(value, dict) else {}


def _optional_float(value: Any) -> float | None:
    """A float field that may be null (no value): null and unusable values are None."""
    return as_float(value, None, None)


def _best_of_epochs(epochs: list[dict[str, Any]], monitor: str, mode: str | None) -> float | None:
    """The best monitored value of the epoch records (NaN is never the best, as in Keras)."""
    values = [value for value in (_optional_float(e.get(monitor)) for e in epochs)
              if value is not None and not math.isnan(value)]
    if not values:
        return None
    if mode not in ("min", "max"):
        mode = default_mode(monitor)
    return max(values) if mode == "max" else min(values)


def config_table(run_dir: Path) -> dict[str, Any]:
    """A run's config.toml as TOML tables, not validated (fast: listing 200 runs reads 200).
    OSError, or ValueError when it is not UTF-8 TOML (TOMLDecodeError and UnicodeDecodeError are
    ValueErrors)."""
    from nntui.config import tomllib  # tomli on Python 3.10

    return tomllib.loads(RunDir(Path(run_dir)).config.read_text(encoding="utf-8"))


def config_table_or_empty(run_dir: Path) -> dict[str, Any]:
    """`config_table`, or {} when it cannot be read: a listing never fails on one run."""
    try:
        return config_table(run_dir)
    except (OSError, ValueError):
        return {}


def _configured(run_dir: Path) -> dict[str, Any]:
    """The run's `[early_stopping]` table from its config.toml ({} when unreadable)."""
    table = config_table_or_empty(run_dir).get("early_stopping")
    return table if isinstance(table, dict) else {}


def _monitor(run_dir: Path, starts: list[dict[str, Any]], early: dict[str, Any], configured: dict[str, Any]) -> str:
    """The monitored metric: the epoch records say it; else the start record, the config, the summary."""
    if early.get("monitor"):
        return str(early["monitor"])
    started = _table(starts[-1].get("early_stop")) if starts else {}
    if started.get("monitor"):
        return str(started["monitor"])
    if configured.get("monitor"):
        return str(configured["monitor"])
    try:
        summary = json.loads((Path(run_dir) / SUMMARY).read_text(encoding="utf-8"))
        return str(summary.get("monitor") or "val_loss")
    except (OSError, ValueError, AttributeError):
        return "val_loss"


def _wall_s(start: dict[str, Any] | None, last: dict[str, Any] | None, end: dict[str, Any] | None) -> float | None:
    """The end record's training time; for a run still going (or crashed), since its last start."""
    if end is not None:
        return _optional_float(end.get("wall_s"))
    if start is None or last is None:
        return None
    since = _optional_float(last.get("time")), _optional_float(start.get("time"))
    return None if None in since else since[0] - since[1]


def last_end(run_dir: Path, max_bytes: int = 256 * 1024) -> dict[str, Any] | None:
    """The `end` record of the run's last session, or None if that session has not ended.
    Its fields are those of `RunEnded` (as `from_record` reads them: an unusable one is left at
    its default; an end record without a usable status or epoch counts as none)."""
    for record in reversed(tail_records(run_dir, max_bytes)):
        if record.get("event") == "end":
            event = from_record(record)
            return None if event is None else to_record(event)
        if record.get("event") == "start":
            return None
    return None


def list_runs(root: str | os.PathLike[str] | None = None, all_users: bool = False) -> list[RunInfo]:
    """The user's runs under `root` (default: the runs dir), newest first; everyone's with `all_users`."""
    return [run_info(path) for path in run_dirs(default_runs_dir(root), all_users)]


def config_of_run(run_dir: Path) -> "RunConfig":
    """The configuration a run was started with (its config.toml), or a ConfigError (one line)."""
    from nntui.config import config_from_dict  # pydantic: only when needed

    return config_from_dict(read_config_table(run_dir), f"{Path(run_dir).name}/{RunDir.CONFIG}")


def read_config_table(run_dir: Path) -> dict[str, Any]:
    """`config_table`, or a ConfigError (one line) when it cannot be read."""
    from nntui.config import ConfigError

    try:
        return config_table(run_dir)
    except (OSError, ValueError) as error:
        raise ConfigError(f"run {Path(run_dir).name}: cannot read its {RunDir.CONFIG} ({error})") from None
