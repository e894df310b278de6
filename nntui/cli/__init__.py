"""The `nntui` command line. Heavy modules (torch, textual) are imported inside the commands that
need them, so `--help`, `presets` and `runs` answer at once.

`base` holds the Typer `app` (and what it does without a command: the setup screen) and `fail`;
the command modules import it and register on `app` when imported here: `run` (run, resume),
`runs` (runs, attach, show, ctl), `presets` (presets, presets show), `export`. `--help` lists the commands
in the order they are registered.
"""

from __future__ import annotations

import typer

# registering the commands on `app`: run before runs (attach, show, ctl), then export: the order of `--help`
from nntui.cli import presets, run, runs  # noqa: F401

# isort: split
from nntui.cli import export  # noqa: F401
from nntui.cli.base import app, fail

__all__ = ["app", "fail", "main"]


def main() -> None:
    """Console-script entry point. A usage error is one line (`nntui: ...`), not a usage box."""
    import sys

    from nntui import early_signals

    early_signals.install()
    try:
        code = app(prog_name="nntui", standalone_mode=False)
    except _click_errors() as error:
        where = getattr(getattr(error, "ctx", None), "command_path", None) or "nntui"
        message = " ".join(error.format_message().split())  # type: ignore[attr-defined]
        typer.echo(f"nntui: {message} (see `{where} --help`)", err=True)
        code = getattr(error, "exit_code", 2)
    except typer.Abort:
        typer.echo("nntui: aborted", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _click_errors() -> tuple[type[Exception], ...]:
    """The base class of click's errors, wherever this typer version keeps its click."""
    return tuple(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")
