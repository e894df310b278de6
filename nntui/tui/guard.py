"""Keeping the monitor alive through its own bugs: an exception while applying an event or
drawing a widget is caught, shown once, logged with its traceback, and following goes on.

An uncaught exception in a Textual handler exits the app; the monitor must never go down over a
bad record or a widget bug (the run would go on unwatched, and the user would not know why).
"""

from __future__ import annotations

import functools
import time
import traceback
from pathlib import Path
from typing import Any, Callable, TypeVar

from nntui.tui.private_tmp import append_private_log

ERROR_LOG = "monitor-errors.log"
Method = TypeVar("Method", bound=Callable[..., Any])


class MonitorErrors:
    """The exceptions caught in one monitor: each different one is logged with its traceback
    to the private dir's `monitor-errors.log` and shown once; repeats are only counted."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        self.latest = ""
        self.log_path: Path | None = None

    def record(self, where: str, error: BaseException) -> str | None:
        """Count `error`, caught in `where`; the line to show when it is a new one, else None."""
        key = (where, type(error).__name__, str(error))
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] > 1:
            return None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.log_path = append_private_log(ERROR_LOG, f"--- {stamp} in {where}\n{trace}") or self.log_path
        where_to = f" (traceback in {self.log_path})" if self.log_path else ""
        self.latest = f"monitor error in {where}: {type(error).__name__}: {error}{where_to}; following goes on"
        return self.latest

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def guarded(where: str) -> Callable[[Method], Method]:
    """Decorate a method of an object with `report_error(where, error)`: an exception in the
    method is reported there instead of propagating (the method then returns None)."""

    def wrap(method: Method) -> Method:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as error:  # noqa: BLE001 - the point: nothing in the monitor takes it down
                self.report_error(where, error)
                return None

        return run  # type: ignore[return-value]

    return wrap
