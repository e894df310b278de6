"""Several runs' curves overlaid, for the runs screen: val and train loss, accuracy or R² (by task;
both for mixed tasks), learning rate; one colour per run and a legend naming each run in it.

The charts are the monitor's (`LineChart`, braille lines drawn by `canvas.draw`) with a palette
of run colours (`chart--run-N` in overlay.tcss). `show_runs` may be called as often as the runs
are reloaded: the charts are built again only when a run's epochs, the selection or the x-axis
changed (`runs_signature`), and a chart is rasterised only when its spec changed.
"""

from __future__ import annotations

from typing import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from nntui.run_series import RunSeries
from nntui.tui.charts.chart import STYLE_KEYS, LineChart
from nntui.tui.charts.overlay_specs import (
    OVERLAY_CHARTS,
    PALETTE_SIZE,
    X_MODES,
    assign_colours,
    build_overlay_spec,
    charts_for,
    legend_rows,
    legend_text,
    runs_signature,
)

RUN_STYLES = tuple(f"run-{slot}" for slot in range(1, PALETTE_SIZE + 1))
NO_RUNS = "no runs selected: select runs to compare their curves"


class OverlayChart(LineChart):
    """A line chart whose series take the run colours."""

    STYLE_KEYS = (*STYLE_KEYS, *RUN_STYLES)
    COMPONENT_CLASSES = {f"chart--{key}" for key in RUN_STYLES}


class OverlayLegend(Widget):
    """`━━ run` in each run's colour, as many a row as fit; as tall as its entries need."""

    COMPONENT_CLASSES = {"legend--legend", *(f"legend--{key}" for key in RUN_STYLES)}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: tuple[tuple[str, int], ...] = ()  # (text, palette slot) per run, in selection order
        self._rows: list[Strip] = []
        self._drawn_for: tuple[object, ...] = ()

    def set_entries(self, entries: Sequence[tuple[str, int]]) -> None:
        if tuple(entries) != self.entries:
            self.entries = tuple(entries)
            self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:  # type: ignore[override]
        return max(1, len(legend_rows(self.entries, width)))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn_for = ()

    def render_line(self, y: int) -> Strip:
        width = self.content_region.width
        if self._drawn_for != (self.entries, width):
            self._rows = self._draw(width)
            self._drawn_for = (self.entries, width)
        return self._rows[y] if y < len(self._rows) else Strip.blank(width, self.rich_style)

    def _draw(self, width: int) -> list[Strip]:
        base = self.rich_style
        styles = {key: base + self.get_component_rich_style(f"legend--{key}", partial=True)
                  for key in ("legend", *RUN_STYLES)}
        rows = legend_rows(self.entries, width) if self.entries else [[(NO_RUNS[:width], "legend")]]
        return [Strip([Segment(text, styles.get(key, base)) for text, key in row]).adjust_cell_length(width, base)
                for row in rows]

    def entry_styles(self) -> dict[str, Style]:
        """The style of each run's mark (tests check the colours differ)."""
        return {text: self.get_component_rich_style(f"legend--run-{slot}", partial=True) for text, slot in self.entries}


class OverlayCharts(Widget):
    """The selected runs' curves in the same charts, with a legend; colours stay with their runs."""

    BINDINGS = [Binding("x", "cycle_x", "x axis")]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.runs: tuple[RunSeries, ...] = ()
        self.colours: dict[str, int] = {}  # run name -> palette slot (1-based)
        self.x_mode = X_MODES[0]
        self._signature: tuple[object, ...] | None = None
        self._legend = OverlayLegend(id="overlay-legend")
        self._charts = {chart.chart_id: OverlayChart(chart.chart_id, id=f"overlay-{chart.chart_id}")
                        for chart in OVERLAY_CHARTS}

    def compose(self) -> ComposeResult:
        yield self._legend
        with Container(id="overlay-grid"):
            yield from self._charts.values()

    def on_mount(self) -> None:
        self._redraw()

    def show_runs(self, runs: Sequence[RunSeries]) -> None:
        """Show these runs (in selection order); a run keeps its colour while it stays shown."""
        self.runs = tuple(runs)
        self.colours = assign_colours(self.colours, [run.name for run in self.runs])
        if self.is_mounted:
            self._redraw()

    def action_cycle_x(self) -> None:
        """The x-axis: epoch, step, wall time, epoch..."""
        self.x_mode = X_MODES[(X_MODES.index(self.x_mode) + 1) % len(X_MODES)]
        self._redraw()
        self.notify(f"x axis: {self.x_mode}", timeout=2)

    def chart(self, chart_id: str) -> LineChart:
        """One of the charts (`val-loss`, `train-loss`, `accuracy`, `r2`, `lr`)."""
        return self._charts[chart_id]

    def _redraw(self) -> None:
        """The legend and the charts, if what they show changed since they were last drawn."""
        signature = (self.x_mode, runs_signature(self.runs, self.colours))
        if signature == self._signature:
            return
        self._signature = signature
        self._legend.set_entries([(legend_text(run), self.colours[run.name]) for run in self.runs])
        shown = charts_for(self.runs)
        for chart in OVERLAY_CHARTS:
            widget = self._charts[chart.chart_id]
            widget.display = chart in shown
            if chart in shown:
                spec, title = build_overlay_spec(chart, self.runs, self.colours, self.x_mode)
                widget.set_spec(spec, title, "")
