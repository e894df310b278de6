"""Monitor panes: early stopping and the log (charts: charts/, gradients: gradpane.py, system: system_pane.py)."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, RichLog, Static


class EarlyStopPane(Vertical):
    """Monitor, best value and epoch, wait/patience as a bar, whether best weights come back."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._best = Static("early stopping off", id="es-best")
        self._row = Horizontal(id="es-wait-row")
        self._bar = ProgressBar(total=1, show_eta=False, show_percentage=False, id="es-wait")
        self._wait_text = Static("", id="es-wait-text")

    def compose(self) -> ComposeResult:
        yield self._best
        with self._row:
            yield self._bar
            yield self._wait_text

    def show(self, lines: list[str], wait: int | None, patience: int | None) -> None:
        """The best value line, and wait/patience as a bar (hidden when there is no wait)."""
        self._best.update(lines[0], layout=False)  # one row each, their widths set by the stylesheet
        self._row.display = wait is not None
        if wait is not None:
            self._bar.update(total=max(1, patience or 0), progress=wait)
            self._wait_text.update(lines[1] if len(lines) > 1 else "", layout=False)


class FollowingLog(RichLog):
    """A RichLog that keeps its last line in view when panes above it grow or shrink."""

    def on_resize(self, event: events.Resize) -> None:
        # RichLog's own on_resize (called too: Textual dispatches along the MRO) renders deferred writes.
        if self.auto_scroll:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)
