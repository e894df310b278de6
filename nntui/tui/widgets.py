"""Monitor panes: metric sparklines, the gradient-norm chart, early stopping."""

from __future__ import annotations

import math
from typing import Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Label, ProgressBar, RichLog, Sparkline, Static

from nntui.tui.gradbars import LayerBar, Scale, layer_bars, log_sparkline, short_name
from nntui.tui.state import LayerHistory

FLAG_STYLES = {"": "green", "vanishing": "yellow", "exploding": "bold red", "non-finite": "bold red"}
FLAG_MARKS = {"": " ", "vanishing": "↓", "exploding": "↑", "non-finite": "!"}  # visible without colour
PARTIAL_BLOCKS = " ▏▎▍▌▋▊▉"


class MetricLine(Horizontal):
    """`label  value  ▁▂▃▅▇` for one metric."""

    def __init__(self, label: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id, classes="metric")
        self._label = label
        self._value = "–"
        self._label_widget = Label(label, classes="metric-label")
        self._value_widget = Label(self._value, classes="metric-value")
        self._spark = Sparkline([], classes="metric-spark")

    def compose(self) -> ComposeResult:
        yield self._label_widget
        yield self._value_widget
        yield self._spark

    def show(self, label: str, value: str, data: Sequence[float]) -> None:
        """Update the label, the current value and the curve (finite values only); only what
        changed is redrawn."""
        if label != self._label:
            self._label = label
            self._label_widget.update(label, layout=False)  # label and value have fixed widths
        if value != self._value:
            self._value = value
            self._value_widget.update(value, layout=False)
        points = [point for point in data if math.isfinite(point)]
        if points != self._spark.data:
            self._spark.data = points


def bar_text(bar: LayerBar, width: int) -> Text:
    """The latest norm as a solid bar; the rest of the recent range as a shaded tail."""
    filled = bar.fraction * width
    whole = int(filled)
    text = Text("█" * whole, style=FLAG_STYLES[bar.flag])
    if whole < width:
        text.append(PARTIAL_BLOCKS[int((filled - whole) * len(PARTIAL_BLOCKS))], style=FLAG_STYLES[bar.flag])
        high = min(width, int(round(bar.high_fraction * width)))
        rest = width - whole - 1
        shaded = max(0, min(rest, high - whole - 1))
        text.append("░" * shaded, style="dim " + FLAG_STYLES[bar.flag].replace("bold ", ""))
        text.append("·" * (rest - shaded), style="dim")
    return text


class GradNormChart(Widget):
    """Latest gradient norm of every parameter on a shared log scale, with its recent spread."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._bars: list[LayerBar] = []
        self._scale = Scale(-4, 1)

    def show(self, layers: dict[str, LayerHistory]) -> Scale:
        """Recompute the rows from the layers; returns the scale for the pane's title."""
        self._bars, self._scale = layer_bars(layers)
        self.refresh(layout=True)
        return self._scale

    def get_content_height(self, container, viewport, width: int) -> int:  # type: ignore[override]
        return max(1, len(self._bars))

    def render(self) -> Text:
        try:
            return self._render_bars()
        except Exception as error:  # noqa: BLE001 - a drawing bug must not take the monitor down
            report = getattr(self.screen, "report_error", None)
            if report is not None:
                report("drawing the gradient norms", error)
            return Text("cannot draw the gradient norms (see the log)", style="dim")

    def _render_bars(self) -> Text:
        if not self._bars:
            return Text("waiting for gradient norms…", style="dim")
        width = self.size.width
        name_width = min(max(len(bar.name) for bar in self._bars), max(8, width // 3))
        show_range = width >= name_width + 12 + 8 + 16
        show_spark = width >= name_width + 12 + 8 + 16 + 9
        bar_width = width - name_width - 1 - 8 - (16 if show_range else 0) - (9 if show_spark else 0)
        lines = []
        for bar in self._bars:
            line = Text(short_name(bar.name, name_width))
            line.append(FLAG_MARKS[bar.flag], style=FLAG_STYLES[bar.flag])
            line.append_text(bar_text(bar, max(3, bar_width)))
            line.append(f" {bar.latest:7.1e}", style=FLAG_STYLES[bar.flag])
            if show_range:
                line.append(f" {bar.low:.0e}‥{bar.high:.0e}".ljust(16), style="dim")
            if show_spark:
                line.append(" " + log_sparkline(bar.recent, self._scale), style="cyan")
            lines.append(line)
        return Text("\n").join(lines)


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
