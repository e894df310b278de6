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
from typing import Any, Callable

from nntui.engine.events import ControlApplied

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


class ObeysCommands:
    """Commands obeyed at a step boundary, and a pause held until a command ends it: shared by the
    trainer (`engine.steering.Steering`) and `nntui.Monitor`, so that both pause, resume and say
    what they did in the same words. A subclass holds `controls` and `paused`, and says where the
    loop stands (`_step_now`), how it sets the LR (`_change_lr`) and writes a checkpoint
    (`_checkpoint_now`), where the control record goes (`_record_control`), how a command ends
    (`_command_done`: the reply, and what a stop does), what goes on while paused (`_tick_paused`:
    system samples) and where the paused seconds go (`_add_paused`: left out of durations)."""

    controls: Controls
    paused: bool

    def _apply(self, command: Command) -> None:
        """Carry out `command`, record what was done, then finish it."""
        step, action = self._step_now(), command.action
        if action == "pause":
            message = "already paused" if self.paused else f"paused at step {step}"
            self.paused = True
        elif action == "resume":
            message = f"resumed at step {step}" if self.paused else "not paused"
            self.paused = False
        elif action == "lr":
            new = float(command.value)  # type: ignore[arg-type]
            message = f"learning rate {self._change_lr(new):g} -> {new:g} from step {step + 1}"
        elif action == "checkpoint":
            message = self._checkpoint_now(step)
        else:
            self.paused = False
            message = f"stopping at step {step} ({command.source})"
        self._record_control(ControlApplied(step, action, command.value, command.source, message))
        self._command_done(command, step, message)

    def _step_now(self) -> int:
        raise NotImplementedError

    def _change_lr(self, lr: float) -> float:
        """Set the learning rate; the one it replaces."""
        raise NotImplementedError

    def _checkpoint_now(self, step: int) -> str:
        """Write a checkpoint; what to say of it."""
        raise NotImplementedError

    def _record_control(self, event: Any) -> None:
        raise NotImplementedError

    def _command_done(self, command: Command, step: int, message: str) -> None:
        raise NotImplementedError

    def _tick_paused(self, now: float) -> None:
        raise NotImplementedError

    def _add_paused(self, seconds: float) -> None:
        raise NotImplementedError

    def _obey(self, commands: list[Command]) -> None:
        for command in commands:
            self._apply(command)
        if self.paused:
            self._wait_while_paused()

    def _wait_while_paused(self) -> None:
        """Obey commands until one resumes (or stops) the loop; the seconds paused go to
        `_add_paused` also when a command raises."""
        started = time.monotonic()
        try:
            while self.paused:
                time.sleep(PAUSE_POLL_S)
                for command in self.controls.drain():
                    self._apply(command)
                self._tick_paused(time.monotonic())
        finally:
            self._add_paused(time.monotonic() - started)
