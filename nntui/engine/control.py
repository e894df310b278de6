"""Commands to a running trainer, obeyed at step boundaries.

Any thread (and a signal handler) may `submit`; only the trainer thread drains. The queue is a
`collections.deque`, whose append and popleft are atomic, so a signal handler can submit without
taking a lock it might already hold.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

ACTIONS = ("pause", "resume", "stop", "checkpoint", "lr")
SOURCES = ("tui", "ctl", "signal", "resume", "api")


class CommandError(ValueError):
    """A command that cannot be carried out; the text is one line for the user."""


@dataclass(frozen=True)
class Command:
    """One request to the trainer. `reply` is called once, from the trainer thread, with the outcome."""

    action: str
    value: float | str | None = None
    source: str = "api"
    reply: Callable[[bool, str], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise CommandError(f"unknown action {self.action!r}; expected one of {', '.join(ACTIONS)}")
        if self.action == "lr":
            object.__setattr__(self, "value", parse_lr(self.value))


def parse_lr(value: object) -> float:
    """A learning rate from text or a number: finite, > 0 and <= 10; scientific notation accepted."""
    try:
        lr = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CommandError(f"learning rate must be a number, e.g. 3e-4 (got {value!r})") from None
    if not math.isfinite(lr) or lr <= 0 or lr > 10:
        raise CommandError(f"learning rate must be finite, > 0 and <= 10 (got {value!r})")
    return lr


class Controls:
    """A thread-safe mailbox of commands for one trainer."""

    def __init__(self) -> None:
        self._queue: deque[Command] = deque()
        self.waiting = self._queue  # truthy while commands wait: a check per step with no Python call
        self.accepting = True  # False while the owner is not ready for a `stop` at a step boundary

    def submit(self, command: Command) -> None:
        self._queue.append(command)

    def request(self, action: str, value: float | str | None = None, source: str = "api",
                reply: Callable[[bool, str], None] | None = None) -> Command:
        """Build, validate and submit a command (raises CommandError on a bad one)."""
        command = Command(action, value, source, reply)
        self.submit(command)
        return command

    def __bool__(self) -> bool:
        return bool(self._queue)

    def drain(self) -> list[Command]:
        commands = []
        while self._queue:
            commands.append(self._queue.popleft())
        return commands


PAUSE_POLL_S = 0.05  # how often a paused loop looks for commands


def wait_while_paused(controls: Controls, apply: Callable[[Command], None], paused: Callable[[], bool],
                      tick: Callable[[float], None], add_paused: Callable[[float], None]) -> None:
    """Obey commands until `paused()` turns false (a resume or a stop), calling `tick(now)` at
    each poll (system samples go on while paused); the seconds paused go to `add_paused`, also
    when a command raises, so that they are left out of the run's durations. Shared by the
    trainer and `nntui.Monitor`."""
    started = time.monotonic()
    try:
        while paused():
            time.sleep(PAUSE_POLL_S)
            for command in controls.drain():
                apply(command)
            tick(time.monotonic())
    finally:
        add_paused(time.monotonic() - started)
