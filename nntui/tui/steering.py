"""Sending commands to a run over its control channel, from a worker thread. No textual here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from nntui.channel import ChannelError, poll_ack, submit_nowait, withdraw

TIMEOUT_S = 15.0
POLL_S = 0.03


def send(run_dir: Path, action: str, value: float | None = None, *, timeout: float = TIMEOUT_S,
         cancelled: Callable[[], bool] = lambda: False) -> tuple[bool, str]:
    """Send `action` to the run and wait for its answer: (ok, one-line message). Blocks: call from
    a thread. When `cancelled()` turns true (the app is leaving) it stops waiting at once and
    leaves the command for the run to take: a stop asked for is still carried out."""
    try:
        command_id = submit_nowait(run_dir, action, value, source="tui")
        deadline = time.monotonic() + timeout
        while (ack := poll_ack(run_dir, command_id)) is None:
            if cancelled():
                return False, "the monitor left before the run answered"
            if time.monotonic() >= deadline:
                withdraw(run_dir, command_id)
                return False, f"no answer from the run within {timeout:g} s (is it stuck in a long evaluation?)"
            time.sleep(POLL_S)
    except ChannelError as error:
        return False, str(error)
    return ack.ok, ack.message
