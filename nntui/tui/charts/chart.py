"""The chart widgets: a focusable line chart and a one-row value + sparkline, both drawn from
cached strips (a chart is rasterised again only when its spec or its size changes)."""

from __future__ import annotations

import math
from typing import Sequence

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from nntui.tui.charts.canvas import ChartSpec, draw

STYLE_KEYS = ("axis", "tick", "legend", "best", "series-1", "series-2", "series-3",
              "marker-pause", "marker-resume", "marker-lr", "marker-restore")
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


class LineChart(Widget, can_focus=True):
    """A line chart with axes; `set_spec` gives it new data. Focus it and press enter (or click
    it) to see it full screen. Colours come from the component classes in charts.tcss."""

    STYLE_KEYS: tuple[str, ...] = STYLE_KEYS  # a subclass with more series styles extends both
    COMPONENT_CLASSES = {f"chart--{key}" for key in STYLE_KEYS}

    class Picked(Message):
        """The chart was clicked: the pane shows it full screen."""

        def __init__(self, chart: LineChart) -> None:
            super().__init__()
            self.chart = chart

    def __init__(self, chart_id: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_id = chart_id
        self.spec: ChartSpec | None = None
        self._spec_version = 0
        self.renders = 0  # how many times the chart was rasterised (tests check redraws are skipped)
        self._strips: list[Strip] = []
        self._drawn_for: tuple[object, ...] = ()
        self._style_cache: dict[str, Style] | None = None

    def set_spec(self, spec: ChartSpec, title: str, subtitle: str) -> None:
        """New data to show: the chart is drawn again at its next refresh."""
        self.spec = spec
        self._spec_version += 1
        self.border_title, self.border_subtitle = title, subtitle
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Picked(self))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn_for, self._style_cache = (), None  # a theme or focus change: the styles are stale

    def render_line(self, y: int) -> Strip:
        size = self.content_region.size
        key = (self._spec_version, size.width, size.height)
        if key != self._drawn_for:
            self._strips = self._draw(size.width, size.height)
            self._drawn_for = key
        return self._strips[y] if y < len(self._strips) else Strip.blank(size.width, self.rich_style)

    def _draw(self, width: int, height: int) -> list[Strip]:
        if self.spec is None or width <= 0 or height <= 0:
            return []
        self.renders += 1
        try:
            rows = draw(self.spec, width, height)
        except Exception as error:  # noqa: BLE001 - a drawing bug must not take the monitor down
            report = getattr(self.screen, "report_error", None)
            if report is not None:
                report(f"drawing the {self.chart_id} chart", error)
            return []
        styles = self._styles()
        return [Strip([Segment(text, styles.get(style, styles[""])) for text, style in row], width)
                for row in rows]

    def _styles(self) -> dict[str, Style]:
        if self._style_cache is None:
            base = self.rich_style
            styles = {key: base + self.get_component_rich_style(f"chart--{key}", partial=True) for key in self.STYLE_KEYS}
            styles[""] = base
            self._style_cache = styles
        return self._style_cache


class SparkRow(Widget):
    """`label  value  ▁▂▃▅▇`: a metric on one row, for terminals too small for its chart."""

    COMPONENT_CLASSES = {"spark--label", "spark--value", "spark--line"}
    LABEL_WIDTH, VALUE_WIDTH = 11, 10

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.renders = 0
        self._content: tuple[str, str, tuple[float, ...], bool] = ("", "", (), False)
        self._strip: Strip | None = None

    def set_values(self, label: str, value: str, data: Sequence[float], log: bool) -> None:
        self._content = (label, value, tuple(data), log)
        self._strip = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.content_region.width
        if y > 0:
            return Strip.blank(width, self.rich_style)
        if self._strip is None or self._strip.cell_length != width:
            self._strip = self._draw(width)
        return self._strip

    def _draw(self, width: int) -> Strip:
        self.renders += 1
        label, value, data, log = self._content
        spark = sparkline(data, max(0, width - self.LABEL_WIDTH - self.VALUE_WIDTH), log)
        base = self.rich_style
        segments = [
            Segment(label.ljust(self.LABEL_WIDTH)[:self.LABEL_WIDTH], base + self.get_component_rich_style("spark--label", partial=True)),
            Segment(value.ljust(self.VALUE_WIDTH)[:self.VALUE_WIDTH], base + self.get_component_rich_style("spark--value", partial=True)),
            Segment(spark, base + self.get_component_rich_style("spark--line", partial=True)),
        ]
        return Strip(segments).adjust_cell_length(width, base)


def sparkline(data: Sequence[float], width: int, log: bool = False) -> str:
    """The last `width` finite values as block characters (log10 of them when `log`)."""
    values = [math.log10(value) if log else value for value in data
              if math.isfinite(value) and (value > 0 or not log)][-width:] if width > 0 else []
    if not values:
        return ""
    low, high = min(values), max(values)
    top = len(SPARK_BLOCKS) - 1
    if high == low:
        return SPARK_BLOCKS[top // 2] * len(values)
    return "".join(SPARK_BLOCKS[round((value - low) / (high - low) * top)] for value in values)
