"""Stop signals that arrive before a command has set up its own handling (Python's imports, torch's,
reading the preset): one line and the contract's exit code, 128 + N, instead of a KeyboardInterrupt
traceback or a silent death by SIGTERM or SIGHUP.

`nntui run --headless` replaces these handlers with its own once it is about to load data, and puts
them back when the run is over; the app's own handling (SIGHUP) takes precedence while it runs.
Cheap to import: no torch, no typer.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


def install() -> None:
    """Make SIGINT, SIGTERM and SIGHUP end this process with one line on stderr and 128 + N.

    The handler raises SystemExit, so `finally` blocks (a terminal restored, a temp file removed)
    still run; nothing has been written yet that would need more.
    """
    for name in EXIT_CODES:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _exit_on_signal)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    name = signal.Signals(signum).name
    headless_run = sys.argv[1:2] == ["run"] and "--headless" in sys.argv  # the app's run goes on in its child
    what = " before training started: nothing written" if headless_run else ""
    try:  # os.write, not print: the signal may have interrupted a write to sys.stderr itself
        os.write(2, f"nntui: stopped by {name}{what}\n".encode())
    except OSError:
        pass
    raise SystemExit(EXIT_CODES[name])
