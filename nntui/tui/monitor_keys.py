"""Which of the monitor's keys apply now, why the others do not, and the commands held back while
a run is starting. No textual here: the screen (nntui.tui.monitor) asks, and answers the user.

Every key answers: a key that applies does what the footer says; one that does not says why
(the footer shows only the keys that apply). Commands given while the run is starting (launched,
no `start` record yet) are queued and sent once it is live.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nntui.fs import OwnDir

if TYPE_CHECKING:
    from nntui.config import RunConfig

STEER_ACTIONS = ("toggle_pause", "set_lr", "checkpoint")
AFTER_RUN_ACTIONS = ("new_run", "continue_run")
CONTINUABLE = ("completed", "stopped")  # an early-stopped run is done; a failed one needs a look first


@dataclass(frozen=True)
class Situation:
    """What the keys depend on: the monitor's mode, where the run is, and what it ended as."""

    mode: str  # run, attach, show
    live: bool  # the run may still change
    starting: bool  # launched, no start record yet
    quitting: bool  # a stop was asked for from here
    end_status: str | None = None  # the end record's status, once there is one
    has_checkpoint: bool = False
    own_loop: bool = False  # a loop of the user's (nntui.Monitor): nntui cannot train it on


def why_not(action: str, now: Situation) -> str:
    """'' when `action` applies now, else the one line that says why it does not."""
    if action in STEER_ACTIONS:
        if now.mode == "show":
            return "read-only: `nntui show` never steers a run (`nntui attach` does, while it goes on)"
        if now.quitting:
            return "the run is stopping"
        if not now.live:
            return "the run is over: nothing to steer (n starts a new one)"
        return ""
    if now.own_loop and action in ("new_run", "continue_run", "fork_run"):
        return "a run of your own loop (nntui.Monitor): run your script again to train more"
    if action == "new_run":
        return "" if not now.live or now.mode == "show" else "a new run from these settings: once this one is over"
    if action == "continue_run":
        return _why_not_continue(now)
    if action == "fork_run":
        return _why_not_fork(now)
    return ""


def _why_not_fork(now: Situation) -> str:
    """A live run is forked after a checkpoint asked for then; an ended one (or one only shown)
    from its last checkpoint."""
    if now.quitting:
        return "the run is stopping"
    if now.live and now.mode != "show":
        return "the run is starting: f forks it once it trains" if now.starting else ""
    return "" if now.has_checkpoint else "the run has no checkpoint to fork from"


def _why_not_continue(now: Situation) -> str:
    if now.mode == "show":
        return "read-only: continue it with `nntui run --resume RUN --epochs N`"
    if now.live:
        return "more epochs: once the run is over"
    if now.end_status == "early_stopped":
        return "the run stopped early (no more progress on its monitor): n starts a new one"
    if now.end_status not in CONTINUABLE:
        return f"a run that {now.end_status or 'ended without an end record'} is not continued from here"
    if not now.has_checkpoint:
        return "the run has no checkpoint to continue from"
    return ""


def command_text(action: str, value: float | None) -> str:
    """`pause`, `lr 0.0003`: a command as the log and the notices name it."""
    return action if value is None else f"{action} {value:g}"


def _kind(action: str) -> str:
    """Commands of one kind replace each other in the queue (pause and resume are one kind)."""
    return "pause" if action == "resume" else action


class QueuedCommands:
    """Commands given while the run is starting, sent in order once it is live. A later pause or
    resume replaces an earlier one (two presses of space cancel out), a later LR an earlier one."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, float | None]] = []

    def __bool__(self) -> bool:
        return bool(self.commands)

    def add(self, action: str, value: float | None = None) -> str:
        """Queue a command; the notice to show."""
        replaced = [item for item in self.commands if _kind(item[0]) == _kind(action)]
        self.commands = [item for item in self.commands if item not in replaced]
        if action == "resume" and replaced:  # a pause, taken back before the run started
            return "queued pause cancelled"
        self.commands.append((action, value))
        return f"queued: {command_text(action, value)} — applied when the run starts"

    def take(self) -> list[tuple[str, float | None]]:
        """The queued commands, in order; the queue is empty afterwards."""
        taken, self.commands = self.commands, []
        return taken


def continue_default(planned_epochs: int, epoch: int) -> int:
    """The epochs to suggest when continuing a run: as many again as it was planned for."""
    return max(planned_epochs, epoch) + max(1, planned_epochs)


def run_settings(run_dir: Path) -> tuple["RunConfig | None", str]:
    """The configuration a run trained with (its config.toml), or None and why not."""
    try:
        from nntui.runs import config_of_run  # (imports pydantic)

        return config_of_run(run_dir), ""
    except Exception as error:  # noqa: BLE001 - a bad or missing config is shown on the setup screen
        return None, f"cannot read the settings of {Path(run_dir).name}: {error}"


def screenshot_name(run_name: str) -> str:
    return f"screenshot-{run_name}-{time.strftime('%Y%m%d-%H%M%S')}.svg"


def save_screenshot(run_dir: Path, svg: str, name: str) -> tuple[Path, str]:
    """Write `svg` as `name` into the run directory, or into the working directory when the run
    directory is not the user's or not writable: (where it went, a note saying why elsewhere)."""
    try:
        with OwnDir.open(run_dir, "run directory", follow=True) as directory:
            directory.write_atomic(name, svg.encode(), durable=False)
        return Path(run_dir) / name, ""
    except OSError as error:
        reason = f"cannot write to {run_dir} ({getattr(error, 'strerror', None) or error})"
    path = Path.cwd() / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(svg)
    return path, reason
