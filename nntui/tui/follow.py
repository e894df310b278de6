"""Following a run directory from a worker thread, and the messages it posts to the monitor."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from textual.message import Message

from nntui.engine.events import Event, RunEnded, RunStarted, from_record
from nntui.records import METRICS, RecordTail
from nntui.runs import pid_alive, run_pid
from nntui.tui.launcher import ChildRun

POLL_S = 0.1
IDLE_POLL_S = 0.5  # polls with nothing new back off to this (a paused or slow run costs less)
LIVENESS_S = 1.0


class EventsArrived(Message, bubble=False):
    """The events decoded from one poll of `metrics.jsonl` (an immutable tuple)."""

    def __init__(self, events: tuple[Event, ...]) -> None:
        super().__init__()
        self.events = events


class ProcessExited(Message, bubble=False):
    """The training process the app launched has exited."""

    def __init__(self, code: int, error: str) -> None:
        super().__init__()
        self.code = code
        self.error = error


class RunVanished(Message, bubble=False):
    """The process of an attached run is gone (and it wrote no `end` record)."""


class SteerAnswered(Message, bubble=False):
    """The run's answer to a command the monitor sent (or why it could not be sent)."""

    def __init__(self, action: str, value: float | None, ok: bool, message: str) -> None:
        super().__init__()
        self.action = action
        self.value = value
        self.ok = ok
        self.message = message


def poll_events(tail: RecordTail) -> tuple[Event, ...]:
    """The events of the records appended since the last poll (unknown and unusable records
    dropped; a long backlog comes sampled, see `RecordTail`)."""
    return tuple(event for event in map(from_record, tail.poll()) if event is not None)


class Follower:
    """The loop a thread worker runs: poll the records, watch the process, post messages."""

    def __init__(self, run_dir: Path, post: Callable[[Message], object], *, child: ChildRun | None = None,
                 watch_pid: bool = False, stop_when_read: bool = False, interval: float = POLL_S) -> None:
        self.tail = RecordTail(Path(run_dir) / METRICS)
        self.run_dir = Path(run_dir)
        self.post = post
        self.child = child
        self.watch_pid = watch_pid
        self.stop_when_read = stop_when_read
        self.interval = interval
        self.ended = False
        self.idle_polls = 0  # polls in a row that found nothing new
        self._woken = threading.Event()
        self._next_liveness = 0.0

    def poll(self) -> bool:
        """One poll; True while there is more to follow."""
        events = poll_events(self.tail)
        self.idle_polls = 0 if events else self.idle_polls + 1
        if events:
            self._note_end(events)
            self.post(EventsArrived(events))
        elif self.stop_when_read:
            return False
        if self.child is not None and (code := self.child.poll()) is not None:
            late = poll_events(self.tail)  # whatever it wrote just before exiting
            if late:
                self._note_end(late)
                self.post(EventsArrived(late))
            self.post(ProcessExited(code, self.child.last_error_line()))
            return False
        return True

    def _note_end(self, events: tuple[Event, ...]) -> None:
        for event in events:
            if isinstance(event, RunEnded):
                self.ended = True
            elif isinstance(event, RunStarted):
                self.ended = False

    def run(self, cancelled: Callable[[], bool]) -> None:
        """Poll every `interval` s until cancelled or there is nothing more to follow. A poll
        that raises is posted (FollowFailed) and the next one tries again: following never stops
        over a bug."""
        self._next_liveness = time.monotonic() + LIVENESS_S
        while not cancelled():
            try:
                if not self._poll_and_watch():
                    return
            except Exception as error:  # noqa: BLE001 - shown by the monitor, which goes on
                self.post(FollowFailed(error))
            self._woken.wait(self.pause_s())
            self._woken.clear()

    def wake(self) -> None:
        """Poll now, and often again: something is expected (the answer to a command sent)."""
        self.idle_polls = 0
        self._woken.set()

    def pause_s(self) -> float:
        """How long to wait before the next poll: `interval`, doubling while nothing new comes,
        up to IDLE_POLL_S (new records bring it back at once)."""
        if self.idle_polls < 2:
            return self.interval
        return min(max(self.interval, IDLE_POLL_S), self.interval * 2 ** min(self.idle_polls - 1, 8))

    def _poll_and_watch(self) -> bool:
        """One poll, and (attached) whether the run's process is still there; True to go on."""
        if not self.poll():
            return False
        if self.watch_pid and time.monotonic() >= self._next_liveness:
            self._next_liveness = time.monotonic() + LIVENESS_S
            if not self.ended and not pid_alive(run_pid(self.run_dir)):
                if not self.poll():  # what it wrote just before it went
                    return False
                if not self.ended:
                    self.post(RunVanished())
                    self.watch_pid = False
        return True


class FollowFailed(Message, bubble=False):
    """A poll of the run raised: the monitor shows it, and following goes on."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
