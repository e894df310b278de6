"""Progress notes of data loading that only a slow load shows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

NOTE_DELAY_S = 2.0  # a load that ends sooner says nothing: a bad input then gives exactly its one error line


class HeldNotes:
    """A `progress` callback for `build_data` that holds its notes while the load is quick.

    Used as a context manager around the load: the notes are shown (in order) once the load
    has taken `delay_s`, and every later note at once; a load that ends, or fails, sooner
    drops them. A download of minutes still says what it does; reading a small CSV file says
    nothing, and an error found while reading it is the only line the user sees.
    """

    def __init__(self, show: Callable[[str], None], delay_s: float = NOTE_DELAY_S) -> None:
        self._show = show
        self._delay_s = delay_s
        self._lock = threading.Lock()
        self._held: list[str] = []
        self._showing = False
        self._done = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> "HeldNotes":
        self._timer = threading.Timer(self._delay_s, self._release)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        with self._lock:  # after this, no note is shown: the caller's own lines come next
            self._done = True
            self._held.clear()
        if self._timer is not None:
            self._timer.cancel()

    def __call__(self, text: str) -> None:
        with self._lock:
            if self._done:
                return
            if self._showing:
                self._show(text)
            else:
                self._held.append(text)

    def _release(self) -> None:
        with self._lock:
            if self._done:
                return
            self._showing = True
            for text in self._held:
                self._show(text)
            self._held.clear()
