"""Monitor panes: metric sparklines, early stopping, the log (the gradient pane is gradpane.py)."""

from __future__ import annotations

import math
from typing import Sequence

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, RichLog, Sparkline, Static


class MetricLine(Horizontal):
    """`label  value  ▁▂▃▅▇` for one metric."""

    def __init__(self, label: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id, classes="metric")
        self._label = label

    def compose(self) -> ComposeResult:
        yield Label(self._label, classes="metric-label")
        yield Label("–", classes="metric-value")
        yield Sparkline([], classes="metric-spark")

    def show(self, label: str, value: str, data: Sequence[float]) -> None:
        """Update the label, the current value and the curve (finite values only)."""
        if label != self._label:
            self._label = label
            self.query_one(".metric-label", Label).update(label)
        self.query_one(".metric-value", Label).update(value)
        self.query_one(Sparkline).data = [point for point in data if math.isfinite(point)]


class EarlyStopPane(Vertical):
    """Monitor, best value and epoch, wait/patience as a bar, whether best weights come back."""

    def compose(self) -> ComposeResult:
        yield Static("early stopping off", id="es-best")
        with Horizontal(id="es-wait-row"):
            yield ProgressBar(total=1, show_eta=False, show_percentage=False, id="es-wait")
            yield Static("", id="es-wait-text")

    def show(self, lines: list[str], wait: int | None, patience: int | None) -> None:
        self.query_one("#es-best", Static).update(lines[0])
        row = self.query_one("#es-wait-row")
        row.display = wait is not None
        if wait is not None:
            self.query_one("#es-wait", ProgressBar).update(total=max(1, patience or 0), progress=wait)
            self.query_one("#es-wait-text", Static).update(lines[1] if len(lines) > 1 else "")


class FollowingLog(RichLog):
    """A RichLog that keeps its last line in view when panes above it grow or shrink."""

    def on_resize(self, event: events.Resize) -> None:
        # RichLog's own on_resize (called too: Textual dispatches along the MRO) renders deferred writes.
        if self.auto_scroll:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)
