"""The Typer `app` that every command module registers on, and `fail`. Imports typer only: the
command modules import this one, and `nntui.cli` imports them (no cycle)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

app = typer.Typer(
    name="nntui", no_args_is_help=False, add_completion=False, rich_markup_mode="rich",
    help="A terminal training monitor for PyTorch: set up a run, watch it live, steer it.")


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and an exit code: never a traceback for bad input."""
    typer.echo(f"nntui: {message}", err=True)
    raise typer.Exit(code)


def new_run_dir(root: Path, name: Optional[str], default: str) -> Path:
    """A new run's directory (not made yet): `root/NAME` for `--name` (checked and not taken, else
    one line, exit 2), or `root/YYYYmmdd-HHMMSS-DEFAULT`, made unique. One rule for `run`,
    `run --replay` and `run SCRIPT.py`."""
    import os

    from nntui import paths

    if name is None:
        return paths.unique_run_dir(root, paths.default_run_name(default))
    if not name.strip():
        fail("--name: a run name cannot be empty (leave --name out for the default name)")
    try:
        run_dir = root / paths.check_run_name(name)
    except ValueError as error:
        fail(f"--name: {error}")
    if os.path.lexists(run_dir):  # a link left at the name takes it too
        fail(f"run {run_dir} already exists; pick another --name")
    return run_dir


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    runs_dir: Annotated[Optional[Path], typer.Option("--runs-dir", help="Runs directory ($NNTUI_RUNS_DIR, ./runs).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data sets directory ($NNTUI_DATA_DIR).")] = None,
) -> None:
    """Without a command: open the app on the setup screen."""
    if ctx.invoked_subcommand is not None:
        return
    from nntui.paths import runs_dir as resolve_runs
    from nntui.tui.app import create_app

    result = create_app(mode="setup", runs_dir=resolve_runs(runs_dir), data_dir=data_dir).run()
    raise typer.Exit(result if isinstance(result, int) else 0)
