"""Sending commands to a run over its control channel, from a worker thread. No textual here."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from nntui.channel import ChannelError, send_command

TIMEOUT_S = 15.0


def send(run_dir: Path, action: str, value: float | None = None, *, timeout: float = TIMEOUT_S,
         cancelled: Callable[[], bool] = lambda: False) -> tuple[bool, str]:
    """Send `action` to the run and wait for its answer: (ok, one-line message). Blocks: call from
    a thread. When `cancelled()` turns true (the app is leaving) it stops waiting at once and
    leaves the command for the run to take: a stop asked for is still carried out."""
    try:
        ack = send_command(run_dir, action, value, source="tui", timeout=timeout, cancelled=cancelled)
    except ChannelError as error:
        return False, str(error)
    return ack.ok, ack.message
