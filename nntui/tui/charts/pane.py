"""The monitor's charts: loss, accuracy (or R²), learning rate, throughput and gradient norm.

`ChartsPane.show(state)` is called by the monitor at most 10 times a second; each chart is
rebuilt only when what it depends on changed (its series' versions, the markers, the view),
and each widget draws its cached strips otherwise. Small panes (80x24) show the loss and
accuracy charts and one value + sparkline row for each other metric; taller ones show all
five charts. `enter` on a focused chart (or a click) shows it full screen.
"""

from __future__ import annotations

import dataclasses
import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer

from nntui.metrics import metric
from nntui.tui.charts.chart import LineChart, SparkRow
from nntui.tui.charts.smoothing import DEFAULT_WEIGHT
from nntui.tui.charts.specs import (
    ACCURACY,
    LOSS,
    SMALL_CHARTS,
    X_MODES,
    ChartDef,
    View,
    best_point,
    build_spec,
    charts_for,
    signature,
)
from nntui.tui.state import MonitorState

FULL_MIN_HEIGHT = 30  # rows of the pane from which every metric gets a full chart
WIDE_MIN_WIDTH = 150  # columns from which the charts are laid out three across
WINDOW_POINTS = 200  # "last N": the full-screen chart's window, in plotted points
REDRAW_INTERVAL_S = 0.5  # a chart whose data grew is drawn again at most this often (CPU budget)
LOG_SPARKS = ("lr",)  # sparklines drawn on a log scale (the LR spans decades)


class ChartsPane(Widget):
    """Line charts of the run's metrics, redrawn only when their data changed."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.view = View()
        self._state: MonitorState | None = None
        self._signatures: dict[str, tuple[object, ...]] = {}
        self._charts: dict[str, LineChart] = {}
        self._sparks: dict[str, SparkRow] = {}
        self._picked = LOSS.chart_id
        self.redraw_interval_s = REDRAW_INTERVAL_S
        self._drawn_at: dict[str, tuple[float, View]] = {}  # when each chart was last drawn, in which view
        self._catch_up: Timer | None = None  # draws the charts held back by the interval

    def compose(self) -> ComposeResult:
        for chart in (LOSS, ACCURACY, *SMALL_CHARTS):
            self._charts[chart.chart_id] = LineChart(chart.chart_id, id=f"chart-{chart.chart_id}",
                                                     classes="-small" if chart in SMALL_CHARTS else "")
            yield self._charts[chart.chart_id]
        for chart in SMALL_CHARTS:
            self._sparks[chart.chart_id] = SparkRow(id=f"spark-{chart.chart_id}")
            yield self._sparks[chart.chart_id]

    @property
    def settled(self) -> bool:
        """Whether every chart shows the data it was last given (none waits for its catch-up)."""
        return self._catch_up is None

    @property
    def compact(self) -> bool:
        return self.has_class("-compact")

    def on_resize(self) -> None:
        self.set_class(self.size.height < FULL_MIN_HEIGHT, "-compact")
        self.set_class(self.size.width >= WIDE_MIN_WIDTH, "-wide")
        if self._state is not None:  # charts shown or hidden by the new layout catch up
            self.call_after_refresh(self.show, self._state)

    def show(self, state: MonitorState) -> None:
        """Bring the visible charts up to date with `state` (those whose data changed only)."""
        self._state = state
        best = best_point(state)
        now = time.monotonic()
        for chart in charts_for(state.task):
            if self.compact and chart in SMALL_CHARTS:
                self._show_spark(chart, state)
                continue
            sig = signature(chart, state, self.view, best)
            if self._signatures.get(chart.chart_id) == sig or self._held_back(chart.chart_id, now):
                continue
            self._signatures[chart.chart_id] = sig
            self._drawn_at[chart.chart_id] = (now, self.view)
            spec, title, subtitle = build_spec(chart, state, self.view, best)
            self._charts[chart.chart_id].set_spec(spec, f"{title} · {subtitle}", "")

    def _held_back(self, chart_id: str, now: float) -> bool:
        """Whether new data for a chart drawn less than `redraw_interval_s` ago waits (a timer
        draws it then). A changed view (a key the user pressed) is drawn at once."""
        drawn = self._drawn_at.get(chart_id)
        if drawn is None or drawn[1] != self.view or now - drawn[0] >= self.redraw_interval_s:
            return False
        if self._catch_up is None:
            self._catch_up = self.set_timer(drawn[0] + self.redraw_interval_s - now, self._caught_up)
        return True

    def _caught_up(self) -> None:
        self._catch_up = None
        self._refresh_all()

    def _show_spark(self, chart: ChartDef, state: MonitorState) -> None:
        series_key = chart.series[0].key
        series = state.series[series_key]
        key = f"spark-{chart.chart_id}"
        if self._signatures.get(key) == (series.version, state.lr):
            return
        self._signatures[key] = (series.version, state.lr)
        self._sparks[chart.chart_id].set_values(metric(series_key).label, state.latest_text(series_key),
                                                series.values(), chart.chart_id in LOG_SPARKS)

    def _refresh_all(self) -> None:
        if self._state is not None:
            self.show(self._state)

    # ------------------------------------------------------------------ actions (the monitor's keys)

    def toggle_smoothing(self) -> str:
        """Smooth the step curves (TensorBoard's debiased EMA) or stop; the notice to show."""
        weight = None if self.view.smoothing is not None else DEFAULT_WEIGHT
        self.view = dataclasses.replace(self.view, smoothing=weight)
        self._refresh_all()
        return f"smoothing {DEFAULT_WEIGHT:g} on" if weight is not None else "smoothing off"

    def cycle_x_axis(self) -> str:
        """Step, epoch, wall time, step...; the notice to show."""
        mode = X_MODES[(X_MODES.index(self.view.x_mode) + 1) % len(X_MODES)]
        self.view = dataclasses.replace(self.view, x_mode=mode)
        self._refresh_all()
        return f"x axis: {mode}"

    def fullscreen_screen(self, state: MonitorState) -> Screen[None]:
        """A screen with the focused (or last clicked) chart full screen."""
        focused = self.screen.focused if self.is_mounted else None
        if isinstance(focused, LineChart) and focused.chart_id in self._charts:
            self._picked = focused.chart_id
        chart = next(chart for chart in charts_for(state.task) if chart.chart_id == self._picked)
        return ChartScreen(chart, state, self.view)

    @on(LineChart.Picked)
    def _open_picked(self, message: LineChart.Picked) -> None:
        message.stop()
        self._picked = message.chart.chart_id
        if self._state is not None:
            self.app.push_screen(self.fullscreen_screen(self._state))


class ChartScreen(Screen[None]):
    """One chart full screen, following the run; `w` whole run / last N, `escape` closes."""

    CSS_PATH = "charts.tcss"
    BINDINGS = [
        Binding("w", "toggle_window", "whole run / last N"),
        Binding("escape", "close", "close"),
    ]
    REDRAW_S = REDRAW_INTERVAL_S  # new data at most this often; `w` redraws at once

    def __init__(self, chart: ChartDef, state: MonitorState, view: View) -> None:
        super().__init__()
        self.chart, self.state, self.view = chart, state, view
        self._signature: tuple[object, ...] = ()

    def compose(self) -> ComposeResult:
        yield LineChart(self.chart.chart_id, id="fullscreen-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(self.REDRAW_S, self.redraw)
        self.redraw()

    def redraw(self) -> None:
        best = best_point(self.state)
        sig = signature(self.chart, self.state, self.view, best)
        if sig == self._signature:
            return
        self._signature = sig
        spec, title, subtitle = build_spec(self.chart, self.state, self.view, best)
        self.query_one(LineChart).set_spec(spec, title, subtitle)

    def action_toggle_window(self) -> None:
        window = None if self.view.window else WINDOW_POINTS
        self.view = dataclasses.replace(self.view, window=window)
        self.redraw()
        self.notify("whole run" if window is None else f"last {window} points", timeout=2)

    def action_close(self) -> None:
        self.dismiss(None)
