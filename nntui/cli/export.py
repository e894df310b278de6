"""`nntui export RUN... --to csv|tensorboard DIR`: runs' epoch and step records for other tools."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from nntui.cli.base import app, fail
from nntui.cli.runs import RunsDirOption, _resolve


class ExportFormat(str, Enum):
    csv = "csv"
    tensorboard = "tensorboard"


@app.command("export")
def export_command(
    runs: Annotated[List[str], typer.Argument(metavar="RUN", show_default=False,
                                              help="Run directories, run names, or 'latest'.")],
    out_dir: Annotated[Path, typer.Argument(metavar="DIR", show_default=False,
                                            help="Where to write (created if missing).")],
    to: Annotated[ExportFormat, typer.Option("--to", case_sensitive=False, show_default=False,
                                             help="csv or tensorboard.")],
    force: Annotated[bool, typer.Option("--force", help="Replace files an earlier export wrote.")] = False,
    runs_dir: RunsDirOption = None,
) -> None:
    """Write runs' epoch and step records as CSV files or TensorBoard event files.

    csv: DIR/<run>-epochs.csv and DIR/<run>-steps.csv, a header row, values as in metrics.jsonl.
    tensorboard: DIR/<run>/ event files: step records by step, epoch records by epoch (epoch/...).
    """
    from nntui import export

    run_dirs = list(dict.fromkeys(Path(os.path.abspath(_resolve(run, runs_dir))) for run in runs))  # each once
    try:
        if to is ExportFormat.tensorboard:
            export.check_tensorboard()
        _check_targets(run_dirs, out_dir, to, force)
        _make_dir(out_dir)
        progress = export.Progress()
        for run_dir in run_dirs:
            if to is ExportFormat.csv:
                written = export.export_csv(run_dir, out_dir, force, progress)
            else:
                written = [export.export_tensorboard(run_dir, out_dir, force, progress)]
            typer.echo(f"{export.run_name(run_dir)}: {', '.join(str(path) for path in written)}")
    except export.ExportError as error:
        fail(str(error), code=error.code)


def _check_targets(run_dirs: list[Path], out_dir: Path, to: ExportFormat, force: bool) -> None:
    """Before anything is written: each run readable, no two runs of one name, and (without
    --force) none of the files to write there already."""
    from nntui import export

    names: dict[str, Path] = {}
    for run_dir in run_dirs:
        export.readable_metrics(run_dir)
        name = export.run_name(run_dir)
        if name in names:
            raise export.ExportError(f"two runs named {name} ({names[name]} and {run_dir}): export them one at a time")
        names[name] = run_dir
        existing = None if force else _existing_output(run_dir, out_dir, to)
        if existing is not None:
            raise export.ExportError(export.already_there(existing))


def _existing_output(run_dir: Path, out_dir: Path, to: ExportFormat) -> Optional[Path]:
    """The first of the run's outputs that an earlier export left in `out_dir`, if any."""
    from nntui import export

    if to is ExportFormat.csv:
        return next((path for path in export.csv_targets(run_dir, out_dir) if os.path.lexists(path)), None)
    target = export.tensorboard_target(run_dir, out_dir)
    return target if export.existing_event_files(target) else None


def _make_dir(out_dir: Path) -> None:
    from nntui.export import ExportError

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create {out_dir}: {error.strerror or error}", code=1) from None
