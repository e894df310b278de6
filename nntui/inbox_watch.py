"""Waiting for files to arrive in a directory without waking up while nothing happens. No torch here.

On Linux an inotify watch wakes the waiter when a file is created in or renamed into the
directory; elsewhere (or when inotify is unavailable) the waiter just sleeps for the timeout.
Either way `wait` returns at the latest after its timeout, so a caller that polls on each
return also catches what a watch cannot see (e.g. a file written from another NFS client).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import sys
import threading
from pathlib import Path

_IN_CLOEXEC, _IN_NONBLOCK = 0o2000000, 0o4000
_IN_CREATE, _IN_MOVED_TO, _IN_CLOSE_WRITE = 0x100, 0x80, 0x8


def _inotify_fd(directory: Path) -> int | None:
    """An inotify descriptor watching `directory`, or None where there is no inotify."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.inotify_init1(_IN_CLOEXEC | _IN_NONBLOCK)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    mask = _IN_CREATE | _IN_MOVED_TO | _IN_CLOSE_WRITE
    if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
        os.close(fd)
        return None
    return fd


class DirectoryWaiter:
    """`wait(timeout)` returns when a file may have arrived in `directory`, on `wake()`, or after
    `timeout` seconds. `watching` says whether arrivals wake it (inotify) or only the timeout does."""

    def __init__(self, directory: Path, watch: bool = True) -> None:
        self._watch = _inotify_fd(Path(directory)) if watch else None
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.watching = self._watch is not None
        self._closed = False
        self._lock = threading.Lock()  # a wake never writes to a descriptor that close is releasing

    def wait(self, timeout: float) -> None:
        sources = [self._wake_read] if self._watch is None else [self._watch, self._wake_read]
        ready, _, _ = select.select(sources, [], [], timeout)
        for fd in ready:
            _drain(fd)

    def wake(self) -> None:
        """Make the current (or next) `wait` return now; safe from any thread, a no-op once closed."""
        with self._lock:
            if self._closed:
                return  # its descriptor numbers may belong to other files by now
            try:
                os.write(self._wake_write, b"x")
            except (BlockingIOError, OSError):
                pass  # the pipe is full: a wake is already pending

    def close(self) -> None:
        """Release the descriptors, once; call it when no thread waits any more."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._watch, self._wake_read, self._wake_write):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._watch = None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, OSError):
        pass
