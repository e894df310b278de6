"""Noticing that the app's terminal has gone, and leaving promptly when it has. No textual here.

When the terminal goes away (an SSH connection dropped, `tmux kill-session`, a window closed)
the kernel hangs the tty up: reads give EOF, writes EIO, and a SIGHUP goes to the terminal's
session, but only if the tty is its controlling terminal, and sshd may notice the dropped
connection late. Textual's driver does not notice on its own: its input thread spins on EOF, and
a write that fails kills its writer thread, after which the app blocks on its full queue. So
the app watches for both signs itself (SIGHUP, and a tty that no longer answers `isatty`, which
a hung-up tty fails with EIO) and, once the terminal is gone, gives a clean exit `HARD_EXIT_S`
before it leaves with `os._exit`: the training process runs in its own session and goes on.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO, Any, Callable, Sequence

CHECK_S = 0.25
HARD_EXIT_S = 1.0


def tty_fds(streams: Sequence[IO[Any] | None]) -> list[int]:
    """The descriptors of `streams` that are terminals now (the ones worth watching)."""
    found = []
    for stream in streams:
        try:
            fd = stream.fileno() if stream is not None else -1
            if fd >= 0 and os.isatty(fd):
                found.append(fd)
        except (OSError, ValueError):  # closed, or not a real file
            pass
    return found


def terminal_gone(fds: Sequence[int]) -> bool:
    """Whether any of `fds`, terminals when the watch started, is not one any more (hung up:
    the ioctl behind `isatty` fails with EIO; or closed)."""
    for fd in fds:
        try:
            if not os.isatty(fd):
                return True
        except OSError:
            return True
    return False


class TerminalWatch:
    """A daemon thread that calls `on_lost()` once when one of `fds` stops being a terminal."""

    def __init__(self, fds: Sequence[int], on_lost: Callable[[], None], interval: float = CHECK_S) -> None:
        self.fds = list(fds)
        self.on_lost = on_lost
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="nntui-terminal-watch", daemon=True)

    def start(self) -> "TerminalWatch":
        if self.fds:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            if terminal_gone(self.fds):
                self.on_lost()
                return


def exit_process_soon(code: int, delay: float = HARD_EXIT_S) -> threading.Thread:
    """Leave the process with `code` after `delay` s, whatever the main thread is blocked on
    (a write to a dead terminal): a daemon thread, gone with the process if it exits first."""

    def leave() -> None:
        time.sleep(delay)
        os._exit(code)

    thread = threading.Thread(target=leave, name="nntui-exit", daemon=True)
    thread.start()
    return thread
