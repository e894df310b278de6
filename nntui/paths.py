"""Where runs and data sets live, and how runs are named. No torch here."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

RUNS_ENV = "NNTUI_RUNS_DIR"
DATA_ENV = "NNTUI_DATA_DIR"
RUN_DIR_ENV = "NNTUI_RUN_DIR"  # `nntui run SCRIPT.py` names the run directory it made for the script's Monitor
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def runs_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """`--runs-dir`, else `$NNTUI_RUNS_DIR`, else `./runs`."""
    return Path(option or os.environ.get(RUNS_ENV) or "runs")


def data_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """`--data-dir`, else `$NNTUI_DATA_DIR`, else the user cache dir."""
    if option or os.environ.get(DATA_ENV):
        return Path(option or os.environ[DATA_ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("nntui")) / "data"


def default_run_name(preset_name: str, now: float | None = None) -> str:
    """`YYYYmmdd-HHMMSS-PRESET`, the preset part made safe for a folder name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", preset_name).strip("-") or "run"
    return f"{stamp}-{safe}"


def check_run_name(name: str) -> str:
    """A run name usable as a folder name, or ValueError with a one-line reason."""
    if not _NAME_OK.match(name):
        raise ValueError(f"run name {name!r}: use letters, digits, '.', '_' and '-' (at most 128)")
    return name


def unique_run_dir(root: Path, name: str) -> Path:
    """`root/name`, or `root/name-2`, `-3`... when taken (two runs started in the same second; a
    link someone left at the name, even one pointing nowhere, takes it too)."""
    candidate, counter = root / name, 1
    while os.path.lexists(candidate):
        counter += 1
        candidate = root / f"{name}-{counter}"
    return candidate
