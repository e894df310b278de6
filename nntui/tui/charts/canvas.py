"""A line chart drawn into rows of text: braille lines, y ticks, x ticks, legend, markers. Pure
Python (no textual), so the layout is tested without an app and a redraw costs little.

`draw(spec, width, height)` returns `height` rows, each a list of (text, style key) runs; the
widget turns the keys into its component styles. Each cell holds 2x4 braille dots; a dot
belongs to the series drawn last on it (the cell takes that series' style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from nntui.tui.charts.scales import Scale, x_label, x_ticks

BRAILLE = 0x2800
DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][column] in a cell
MARKER_CHAR = "┊"
BEST_CHAR = "●"
Run = tuple[str, str]


@dataclass(frozen=True)
class Line:
    """One series: its legend label, points and style key (`series-1`...)."""

    label: str
    xs: list[float]
    ys: list[float]
    style: str


@dataclass(frozen=True)
class ChartSpec:
    """What a chart shows; x values are already in the axis' unit (steps, epochs or seconds)."""

    lines: tuple[Line, ...]
    y: Scale
    x_low: float
    x_high: float
    x_mode: str
    markers: tuple[tuple[float, str], ...] = ()  # (x, kind): kind is the style key marker-<kind>
    best: tuple[float, float] | None = None
    legend: bool = True
    notes: tuple[str, ...] = field(default=())


class Grid:
    """Braille dots over `width` x `height` cells, with the style that owns each cell (flat
    lists, row by row: the hot loop of a redraw)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.bits = [0] * (width * height)
        self.owner = [""] * (width * height)

    def polyline(self, points: list[tuple[int, int] | None], style: str) -> None:
        """Dots along the segments between consecutive points (None breaks the line)."""
        bits, owner, width = self.bits, self.owner, self.width
        right, bottom = 2 * width - 1, 4 * self.height - 1
        previous = None
        for point in points:
            if point is None:
                previous = None
                continue
            x1, y1 = point
            x0, y0 = previous if previous is not None else point
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for index in range(steps + 1):
                x = x0 + (x1 - x0) * index // steps
                y = y0 + (y1 - y0) * index // steps
                if 0 <= x <= right and 0 <= y <= bottom:
                    cell = (y >> 2) * width + (x >> 1)
                    bits[cell] |= DOT_BITS[y & 3][x & 1]
                    owner[cell] = style
            previous = point


def _dots(spec: ChartSpec, line: Line, width: int, height: int) -> list[tuple[int, int] | None]:
    """Each point as dot coordinates (None for a gap: a value that cannot be plotted)."""
    x_span = spec.x_high - spec.x_low or 1.0
    right, bottom = 2 * width - 1, 4 * height - 1
    dots: list[tuple[int, int] | None] = []
    for x, y in zip(line.xs, line.ys):
        if not (math.isfinite(y) and math.isfinite(x)) or (spec.y.log and y <= 0):
            dots.append(None)
            continue
        fraction = min(1.0, max(0.0, spec.y.fraction(y)))
        dots.append((round((x - spec.x_low) / x_span * right), round((1 - fraction) * bottom)))
    return dots


def plot_lines(spec: ChartSpec, width: int, height: int) -> Grid:
    grid = Grid(width, height)
    for line in spec.lines:
        grid.polyline(_dots(spec, line, width, height), line.style)
    return grid


def marker_columns(spec: ChartSpec, width: int) -> dict[int, str]:
    """The plot column of each marker inside the x range (a later marker wins a shared column)."""
    x_span = spec.x_high - spec.x_low or 1.0
    columns: dict[int, str] = {}
    for x, kind in spec.markers:
        if spec.x_low <= x <= spec.x_high:
            columns[min(width - 1, int((x - spec.x_low) / x_span * width))] = f"marker-{kind}"
    return columns


def _row_runs(cells: list[Run]) -> list[Run]:
    """Adjacent cells of one style merged into runs."""
    return [("".join(text for text, _ in group), style) for style, group in groupby(cells, key=itemgetter(1))]


def draw(spec: ChartSpec, width: int, height: int) -> list[list[Run]]:
    """The chart as `height` rows of runs; the last row holds the x tick labels."""
    if width < 12 or height < 3:
        return [[(" " * max(0, width), "")] for _ in range(max(0, height))]
    plot_height = height - 1
    y_ticks = spec.y.ticks(max(2, min(5, plot_height // 2 + 1)))
    y_labels = spec.y.labels(y_ticks)
    gutter = max(len(label) for label in y_labels) + 1
    plot_width = width - gutter - 1
    cells = _plot_cells(spec, plot_width, plot_height)
    tick_rows = {}
    for tick, label in zip(y_ticks, y_labels):
        row = round((1 - spec.y.fraction(tick)) * (plot_height - 1))
        if 0 <= row < plot_height:
            tick_rows[row] = label
    rows = []
    for row in range(plot_height):
        label = tick_rows.get(row)
        axis = [((label or "").rjust(gutter - 1) + " ", "tick"), ("┤" if label else "│", "axis")]
        rows.append(_row_runs(axis + cells[row]))
    if spec.legend:
        _overlay_legend(rows[0], spec, gutter + 1, width)
    rows.append(_x_axis_row(spec, gutter + 1, plot_width))
    return rows


def _plot_cells(spec: ChartSpec, width: int, height: int) -> list[list[Run]]:
    grid = plot_lines(spec, width, height)
    markers = marker_columns(spec, width)
    empty = [(MARKER_CHAR, markers[column]) if column in markers else (" ", "") for column in range(width)]
    rows = []
    for start in range(0, width * height, width):
        bits, owner = grid.bits[start:start + width], grid.owner[start:start + width]
        rows.append([(chr(BRAILLE + bit), owner[column]) if bit else empty[column]
                     for column, bit in enumerate(bits)])
    if spec.best is not None:
        _place_best(rows, spec, width, height)
    return rows


def _place_best(rows: list[list[Run]], spec: ChartSpec, width: int, height: int) -> None:
    x, y = spec.best  # type: ignore[misc]
    if not (spec.x_low <= x <= spec.x_high) or not math.isfinite(y) or (spec.y.log and y <= 0):
        return
    column = min(width - 1, int((x - spec.x_low) / (spec.x_high - spec.x_low or 1.0) * width))
    row = round((1 - min(1.0, max(0.0, spec.y.fraction(y)))) * (height - 1))
    rows[row][column] = (BEST_CHAR, "best")


def _overlay_legend(row: list[Run], spec: ChartSpec, left: int, width: int) -> None:
    """`━ train ━ val` right-aligned on the top row, over the plot (only lines with a label)."""
    parts: list[Run] = []
    for line in spec.lines:
        if line.label:
            parts += [(" ━", line.style), (" " + line.label, "legend")]
    length = sum(len(text) for text, _ in parts) + 1
    if not parts or length > width - left:
        return
    cells = [(char, style) for text, style in row for char in text]
    start = width - length
    legend = [(char, style) for text, style in parts for char in text] + [(" ", "legend")]
    cells[start:start + len(legend)] = legend
    row[:] = _row_runs(cells)


def _x_axis_row(spec: ChartSpec, left: int, width: int) -> list[Run]:
    """The x tick labels, each centred under its column where it fits."""
    text = [" "] * (left + width)
    count = max(2, min(6, width // 10))
    span = spec.x_high - spec.x_low or 1.0
    for tick in x_ticks(spec.x_low, spec.x_high, count, spec.x_mode):
        label = x_label(tick, spec.x_mode)
        column = left + min(width - 1, int((tick - spec.x_low) / span * width))
        start = min(max(left, column - len(label) // 2), left + width - len(label))
        if all(char == " " for char in text[max(0, start - 1):start + len(label) + 1]):
            text[start:start + len(label)] = label
    return [("".join(text), "tick")]
