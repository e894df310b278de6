"""Drawing the monitor: the state's values into its widgets, each one only when what it shows has
changed. The widgets are looked up once (after mount), never per frame; the log gets only its new
lines, in one write per frame. Each part is drawn on its own (`guarded`): one that fails leaves
the others, and the monitor, going.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import ProgressBar, Static

from nntui.tui.guard import guarded
from nntui.tui.state import MonitorState
from nntui.tui.widgets import EarlyStopPane, FollowingLog, GradNormChart, MetricLine

if TYPE_CHECKING:
    from nntui.tui.monitor import MonitorScreen

LOG_STYLES = {"info": "", "epoch": "", "control": "cyan", "alert": "bold red", "result": "bold green",
              "error": "red"}
METRIC_ROWS = 7
PROGRESS_RESOLUTION = 200  # the progress bar is redrawn when it moves by 1/200 (0.5 %)
_UNSET = object()


class MonitorView:
    """The monitor's widgets and what each shows now."""

    def __init__(self, screen: "MonitorScreen") -> None:
        self.screen = screen
        find = screen.query_one
        self.title = find("#title", Static)
        self.status = find("#status", Static)
        self.progress = find("#progress", ProgressBar)
        self.progress_text = find("#progress-text", Static)
        self.alert = find("#alert", Static)
        self.metrics = list(screen.query(MetricLine).results(MetricLine))  # none once the charts replace them
        charts = screen.query("#charts")  # the charts pane (ChartsPane), where there is one
        self.charts: Any = charts.first() if charts else None
        self.grads = find("#grads", Widget)
        self.grad_chart = find("#grad-chart", GradNormChart)
        self.early_stop = find("#early-stop", EarlyStopPane)
        self.results = find("#results", Static)
        self.log = find("#log", FollowingLog)
        self.logged = 0  # how many of the state's log lines the log widget has
        self._shown: dict[str, object] = {}

    def report_error(self, where: str, error: Exception) -> None:
        self.screen.report_error(where, error)

    def changed(self, key: str, value: object) -> bool:
        """Whether `value` differs from what `key` shows now (and remember it as shown)."""
        if self._shown.get(key, _UNSET) == value:
            return False
        self._shown[key] = value
        return True

    def forget(self) -> None:
        """Draw everything again at the next frame (after an error, or a restyle)."""
        self._shown.clear()

    def _text(self, widget: Static, key: str, text: str, fixed_size: bool = True) -> None:
        """Show `text` in `widget` if it is new; `fixed_size`: the widget's size is set by the
        stylesheet, so no layout pass is needed (the costly part of a frame)."""
        if self.changed(key, text):
            widget.update(text, layout=not fixed_size)

    def _display(self, widget: Widget, key: str, shown: bool) -> None:
        if self.changed(key, shown):
            widget.display = shown

    # ------------------------------------------------------------------ the parts

    def draw(self, state: MonitorState, title: str, errors: str) -> None:
        """Bring every part up to date with `state` (`title`: the header's text)."""
        self.draw_header(state, title, errors)
        self.draw_metrics(state)
        self.draw_panes(state)
        self.draw_log(state)

    @guarded("drawing the header")
    def draw_header(self, state: MonitorState, title: str, errors: str) -> None:
        self._text(self.title, "title", title)
        self._text(self.status, "status", f" {state.status.upper()} ", fixed_size=False)  # its width: auto
        if self.changed("status-class", state.status):
            self.status.set_classes(f"status-{state.status.split(' ')[0]}")
        total = max(1, state.total_steps)
        progress = min(state.step, total)
        if self.changed("progress", (total, progress * PROGRESS_RESOLUTION // total)):  # a visible change
            self.progress.update(total=total, progress=progress)
        self._text(self.progress_text, "progress-text", state.progress_text())
        alert = " · ".join(line for line in (state.alert, errors) if line)
        self._text(self.alert, "alert", alert, fixed_size=False)
        self._display(self.alert, "alert-shown", bool(alert))

    @guarded("drawing the metrics")
    def draw_metrics(self, state: MonitorState) -> None:
        if self.charts is not None:
            self.charts.show(state)  # it returns early when nothing it draws has changed
            return
        for line, row in zip(self.metrics, state.metric_rows()):
            series = state.series[row.key]
            value = state.current_text(row)
            if self.changed(f"metric-{row.key}", (row.label, value, series.total, len(series), series.last)):
                line.show(row.label, value, series.values())

    @guarded("drawing the panes")
    def draw_panes(self, state: MonitorState) -> None:
        layers = state.layers
        if self.changed("layers", (len(layers), tuple(layer.latest for layer in layers.values()))):
            scale = self.grad_chart.show(layers)
            self.grads.border_subtitle = scale.label() if layers else ""
        stop = state.early_stop
        lines = state.early_stop_lines()
        wait, patience = (stop.wait, stop.patience) if stop else (None, None)
        if self.changed("early-stop", (tuple(lines), wait, patience)):
            self.early_stop.show(lines, wait, patience)
        self._text(self.results, "results", state.results_text(), fixed_size=False)
        self._display(self.results, "results-shown", state.ended is not None)

    @guarded("drawing the log")
    def draw_log(self, state: MonitorState) -> None:
        """Append the state's new log lines, all in one write."""
        lines = state.new_log_lines(self.logged)
        self.logged = state.log_total
        if lines:
            text = Text("\n").join(Text(line.text, style=LOG_STYLES.get(line.kind, "")) for line in lines)
            self.log.write(text)

    def rewrap_log(self, state: MonitorState) -> None:
        """Write the kept log lines again (they are wrapped to the log's width)."""
        self.log.clear()
        self.logged = state.log_total - len(state.log)
        self.draw_log(state)

