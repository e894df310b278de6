"""`nntui.Monitor`'s run directory: where it is, its config.toml, its writer. No torch here.

The directory, its files and its records are those of `nntui run` (nntui.fs names and writes
them, nntui.rundir appends the records and writes the summary); this module only decides what a
loop nntui did not write puts in them.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from nntui import fs, paths
from nntui.config import DEVICE_PATTERN, ConfigError, RunConfig, validate
from nntui.paths import RUN_DIR_ENV
from nntui.rundir import RunDirWriter

SCRIPT_TABLE = "script"  # config.toml's table of what the script said (not a preset key: resuming refuses it)
DESCRIPTION = "a training loop of its own, watched with nntui.Monitor"


def script_name() -> str:
    """The running script's file name (`train.py`), or `python` in an interactive session."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c") else "")
    return Path(path).name or "python"


def resolve_run_dir(name: str | None, runs_dir: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """The run directory to write, and whether `nntui run SCRIPT.py` made it already.

    Inside `nntui run SCRIPT.py` the script's first Monitor takes the directory named in
    `$NNTUI_RUN_DIR` (a later one, which finds records there, gets its own beside it). Otherwise
    `runs_dir` (else `$NNTUI_RUNS_DIR`, else ./runs) / `name` (else YYYYmmdd-HHMMSS-SCRIPT); a
    name already taken gets `-2`, `-3`...: running the same script again makes a new run.
    """
    given = os.environ.get(RUN_DIR_ENV)
    if given and not fs.RunDir(given).metrics.exists():
        return Path(given), True
    root = Path(given).parent if given else paths.runs_dir(runs_dir)
    wanted = paths.check_run_name(name) if name else paths.default_run_name(Path(script_name()).stem)
    return paths.unique_run_dir(root, wanted), False


def plain(value: Any) -> Any:
    """`value` as TOML and `torch.load(weights_only=True)` take it: numbers, text, booleans,
    lists and tables of them (anything else as its text; None and non-finite numbers as text)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bool) or isinstance(value, (int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


def run_config(*, preset: str, task: str, epochs: int | None, lr: float, optimizer: str, device: str,
               log_every: int, log_interval_s: float, early_stopping: Mapping[str, Any] | None) -> RunConfig:
    """config.toml's preset part: the keys that mean the same for a loop of the user's (task,
    epochs, optimizer and learning rate, early stopping, logging); the rest stay defaults.
    A `ConfigError` (one line) for options the schema refuses."""
    raw: dict[str, Any] = {
        "name": preset, "description": DESCRIPTION, "task": task,
        "train": {"epochs": epochs or 1, "log_every": log_every, "log_interval_s": log_interval_s,
                  "device": device if DEVICE_PATTERN.match(device) else "auto"},
    }
    optim: dict[str, Any] = {"name": optimizer} if optimizer in _OPTIMIZER_NAMES else {}
    if 0 < lr <= 10:
        optim["lr"] = lr
    raw["optim"] = optim
    if early_stopping is not None:
        raw["early_stopping"] = {"enabled": True, **early_stopping}
    return validate(raw, "nntui.Monitor")


_OPTIMIZER_NAMES = ("sgd", "adagrad", "rmsprop", "adam", "adamw")  # torch.optim classes of the same name


def config_text(cfg: RunConfig, user_config: Mapping[str, Any] | None, script: str) -> str:
    """config.toml: the preset part, then `[script]` with the script's name and its `config=`."""
    import tomli_w

    table: dict[str, Any] = {"file": script}
    if user_config:
        table["config"] = plain(user_config)
    return cfg.to_toml() + "\n" + tomli_w.dumps({SCRIPT_TABLE: table})


def open_writer(run_dir: Path, made: bool, cfg: RunConfig, text: str) -> RunDirWriter:
    """The writer of a new run directory (`made`: the one `nntui run SCRIPT.py` made), with
    config.toml written. One-line OSErrors (nntui.fs) when it cannot be."""
    if not made:
        directory = fs.RunDir(run_dir).create()
    else:
        directory = fs.RunDir(run_dir).open()
    try:
        directory.write_atomic(fs.RunDir.CONFIG, text.encode("utf-8"))
        return RunDirWriter(directory, cfg, fresh=False)
    except BaseException:
        if not made and directory.fd >= 0:  # (a writer that failed has closed it already)
            directory.remove()
        directory.close()
        raise


__all__ = ["ConfigError", "config_text", "open_writer", "plain", "resolve_run_dir", "run_config",
           "script_name"]
