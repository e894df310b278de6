"""`nntui runs`, `attach`, `show` and `ctl`: commands over existing run directories."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from nntui.cli.base import app, fail

if TYPE_CHECKING:
    from nntui.runs import RunInfo

RunsDirOption = Annotated[Optional[Path], typer.Option("--runs-dir", help="Runs directory (default ./runs or $NNTUI_RUNS_DIR).")]


def _resolve(run: str, runs_dir: Optional[Path]) -> Path:
    from nntui.runs import RunNotFound, resolve_run

    try:
        return resolve_run(run, runs_dir)
    except RunNotFound as error:
        fail(str(error))


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def runs_view(plain: bool, as_json: bool, stdout_is_terminal: bool) -> str:
    """What `nntui runs` shows: "json" with --json, "table" with --plain or when stdout is not a
    terminal (piped, redirected), else "screen" (the runs screen)."""
    if as_json:
        return "json"
    return "table" if plain or not stdout_is_terminal else "screen"


@app.command("runs")
def runs_command(
    runs_dir: RunsDirOption = None,
    all_users: Annotated[bool, typer.Option("--all", help="Other users' runs too.")] = False,
    plain: Annotated[bool, typer.Option("--plain", help="The table, also on a terminal.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run and line, for scripts: "
                                          "name, path, preset, status, epochs, best, monitor, wall_s.")] = False,
) -> None:
    """The runs: on a terminal, the runs screen (filter, sort, select runs to overlay their curves
    and diff their settings; enter opens a run's monitor). Piped or with --plain, a table, newest
    first: name, preset, status, epochs, best monitored value, wall time.

    --json prints one JSON object per run and line instead (NaN and infinities as in metrics.jsonl).
    """
    import sys

    from nntui.paths import runs_dir as resolve_runs
    from nntui.runs import list_runs

    if plain and as_json:
        fail("--plain and --json: pick one")
    view = runs_view(plain, as_json, sys.stdout.isatty())
    if view == "screen":
        from nntui.tui.app import create_app

        result = create_app(mode="runs", runs_dir=resolve_runs(runs_dir), all_users=all_users).run()
        raise typer.Exit(result if isinstance(result, int) else 0)
    infos = list_runs(runs_dir, all_users=all_users)
    if not infos:
        typer.echo(f"no runs under {resolve_runs(runs_dir)}", err=as_json)
    elif view == "json":
        _print_json_lines(infos)
    else:
        _print_table(infos)


def _print_table(infos: list["RunInfo"]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("name", "preset", "status", "epochs", "best", "wall time"):
        table.add_column(column, justify="right" if column in ("epochs", "best", "wall time") else "left")
    for info in infos:
        best = "-" if info.best is None else f"{info.best:.4g} {info.monitor}"
        table.add_row(info.name, info.preset, info.status, str(info.epochs), best, format_duration(info.wall_s))
    Console(width=max(100, Console().width)).print(table)


def _print_json_lines(infos: list["RunInfo"]) -> None:
    import json

    from nntui.records import json_safe

    for info in infos:
        row = {"name": info.name, "path": str(info.path), "preset": info.preset, "status": info.status,
               "epochs": info.epochs, "best": info.best, "monitor": info.monitor, "wall_s": info.wall_s}
        typer.echo(json.dumps(json_safe(row), allow_nan=False))


@app.command("attach")
def attach_command(run: Annotated[str, typer.Argument(help="A run directory, a run name, or 'latest'.")],
                   runs_dir: RunsDirOption = None) -> None:
    """The live monitor over a run going on in another process, with its controls (q asks: stop
    the run, or leave it running)."""
    from nntui.runs import is_live
    from nntui.tui.app import create_app

    run_dir = _resolve(run, runs_dir)
    mode = "attach" if is_live(run_dir) else "show"
    if mode == "show":
        typer.echo(f"run {run_dir.name} is not running: showing it read-only", err=True)
    result = create_app(mode=mode, runs_dir=run_dir.parent, run_dir=run_dir).run()
    raise typer.Exit(result if isinstance(result, int) else 0)


@app.command("show")
def show_command(run: Annotated[str, typer.Argument(help="A run directory, a run name, or 'latest'.")],
                 runs_dir: RunsDirOption = None) -> None:
    """The monitor over a run's records, read-only."""
    from nntui.tui.app import create_app

    run_dir = _resolve(run, runs_dir)
    result = create_app(mode="show", runs_dir=run_dir.parent, run_dir=run_dir).run()
    raise typer.Exit(result if isinstance(result, int) else 0)


@app.command("ctl", context_settings={"ignore_unknown_options": True})  # `lr -1` is a value, not an option
def ctl_command(
    run: Annotated[str, typer.Argument(help="A run directory, a run name, or 'latest'.")],
    action: Annotated[str, typer.Argument(help="pause, resume, stop, checkpoint or lr.")],
    value: Annotated[Optional[str], typer.Argument(help="The new learning rate, for lr.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run's answer.")] = 30.0,
    runs_dir: RunsDirOption = None,
) -> None:
    """Steer a running run: it obeys at its next step boundary and says what it did."""
    from nntui.channel import ChannelError, send_command
    from nntui.engine.control import ACTIONS, Command, CommandError

    if action not in ACTIONS:
        fail(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    if (action == "lr") != (value is not None):
        fail("lr needs a VALUE (e.g. `nntui ctl latest lr 3e-4`)" if action == "lr" else f"{action} takes no VALUE")
    try:
        Command(action, value)
    except CommandError as error:
        fail(str(error))
    run_dir = _resolve(run, runs_dir)
    started = time.monotonic()
    try:
        ack = send_command(run_dir, action, value, source="ctl", timeout=timeout)
    except ChannelError as error:
        fail(str(error), code=1)
    if not ack.ok:
        fail(ack.message, code=1)
    typer.echo(f"{run_dir.name}: {ack.message} ({time.monotonic() - started:.1f}s)")
