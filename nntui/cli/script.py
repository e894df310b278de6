"""`nntui run SCRIPT.py [-- ARGS...]`: a script of the user's under the monitor, or headless.

nntui makes the run directory, names it in `$NNTUI_RUN_DIR` (the script's `nntui.Monitor` writes
there) and runs `python SCRIPT.py ARGS` in a child process whose stdout and stderr go to the
run's `output.log`. Headless, it waits for the script and exits with its exit code, passing
SIGINT and SIGTERM on to it; with the app, the monitor follows the run as it does a preset's and
shows the script's output in its log. No torch here: the script imports what it needs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

import typer

from nntui.cli.base import fail, new_run_dir
from nntui.fs import RunDir
from nntui.paths import RUN_DIR_ENV

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def is_script(preset: Optional[str]) -> bool:
    """Whether `nntui run PRESET` names a Python script rather than a preset."""
    return preset is not None and preset.endswith(".py") and Path(preset).is_file()


def run_script(script: Path, args: Sequence[str], *, headless: bool, runs_dir: Optional[Path], name: Optional[str],
               refused: Sequence[str] = ()) -> NoReturn:
    """Run `script` with `args` in a new run directory; exits with the script's exit code (or
    the app's). `refused`: options given that only a preset takes (a one-line error)."""
    if refused:
        fail(f"{', '.join(refused)}: a script sets its own training options; pass them after `--` "
             f"(nntui run {script} -- ARGS)")
    run_dir = make_run_dir(script, runs_dir, name)
    command = [sys.executable, str(script), *args]
    if not headless:
        _run_in_app(script, command, run_dir)
    typer.echo(f"nntui: running {script} as run {run_dir.name}; its output goes to {run_dir / RunDir.OUTPUT_LOG}",
               err=True)
    code = _run_and_wait(command, run_dir)
    typer.echo(f"nntui: {never_monitored(script, run_dir) or ended_line(run_dir, code)}", err=True)
    raise typer.Exit(code)


def ended_line(run_dir: Path, code: int) -> str:
    """How the script's run ended, from its records, and the script's exit code."""
    from nntui.runs import last_end

    end = last_end(run_dir)
    if end is None:
        return f"run {run_dir.name} has no end record (the script exited with code {code})"
    error = f": {end['error']}" if end.get("error") else ""
    return f"run {run_dir.name} {end['status']} at step {end['step']}{error} (the script exited with code {code})"


def make_run_dir(script: Path, runs_dir: Optional[Path], name: Optional[str]) -> Path:
    """The new run directory, made (0700, the user's own) with an empty output log."""
    from nntui import paths

    run_dir = new_run_dir(paths.runs_dir(runs_dir), name, script.stem)
    try:
        with RunDir(run_dir).create() as directory:
            directory.open_append(RunDir.OUTPUT_LOG).close()
    except OSError as error:  # one line: nntui.fs names the cause and the file
        fail(str(error))
    return run_dir.absolute()


def script_env(run_dir: Path) -> dict[str, str]:
    """The script's environment: ours, with the run directory its Monitor writes to."""
    return {**os.environ, RUN_DIR_ENV: str(run_dir)}


def open_output(run_dir: Path) -> int:
    """A descriptor appending to the run's output log (never through a link)."""

    with RunDir(run_dir).open() as directory:
        return directory.open_append(RunDir.OUTPUT_LOG).fd


def start_script(command: Sequence[str], run_dir: Path, stdin: object = None) -> subprocess.Popen[bytes]:
    """Start the script in its own session (signals reach it only when passed on), its stdout and
    stderr appended to the run's output log."""
    output = open_output(run_dir)
    try:
        return subprocess.Popen(list(command), stdin=stdin, stdout=output, stderr=output, env=script_env(run_dir),
                                start_new_session=True)
    finally:
        os.close(output)


def _run_and_wait(command: Sequence[str], run_dir: Path) -> int:
    """Run the script to its end, passing SIGINT and SIGTERM on; its exit code (128 + N after
    a death by signal N)."""
    try:
        process = start_script(command, run_dir)
    except OSError as error:
        fail(f"cannot start {command[1]}: {error.strerror or error}", 1)

    def pass_on(signum: int, _frame: object) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {signum: signal.signal(signum, pass_on) for signum in FORWARDED_SIGNALS}
    try:
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


def never_monitored(script: Path, run_dir: Path) -> str:
    """A line saying the script wrote no records (it never made an nntui.Monitor), or ''."""

    if RunDir(run_dir).metrics.exists():
        return ""
    return (f"{script} never created an nntui.Monitor: nothing was recorded "
            f"(its output is in {run_dir / RunDir.OUTPUT_LOG})")


def _run_in_app(script: Path, command: Sequence[str], run_dir: Path) -> NoReturn:
    """The monitor over the script's run, following it as it follows a preset's."""
    from nntui.tui.app import create_app
    from nntui.tui.script_monitor import ScriptRun

    monitor_app = create_app(mode="run", runs_dir=run_dir.parent, script=ScriptRun(script, command, run_dir))
    result = monitor_app.run()
    raise typer.Exit(result if isinstance(result, int) else 0)
