"""A line chart drawn into rows of text: braille lines, y ticks, x ticks, legend, markers. Pure
Python (no textual), so the layout is tested without an app and a redraw costs little.

`draw(spec, width, height)` returns `height` rows, each a list of (text, style key) runs; the
widget turns the keys into its component styles. Each cell holds 2x4 braille dots; a dot
belongs to the series drawn last on it (the cell takes that series' style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nntui.tui.charts.scales import Scale, x_label, x_ticks

BRAILLE = 0x2800
DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][column] in a cell
# SPAN_BITS[column][top][bottom]: the dots of one column of a cell from row top to row bottom
SPAN_BITS = tuple(tuple(tuple(sum(DOT_BITS[row][column] for row in range(top, bottom + 1)) for bottom in range(4))
                        for top in range(4)) for column in range(2))
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
    best: tuple[float, float] | None = None  # (x, y) of the best epoch's value


class Grid:
    """Braille dots over `width` x `height` cells, with the style that owns each cell (flat
    lists, row by row: the hot loop of a redraw)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.bits = [0] * (width * height)
        self.owner = [""] * (width * height)

    def polyline(self, points: list[tuple[int, int] | None], style: str) -> None:
        """Dots along the line through `points` (None breaks it). Points sharing a dot column
        become one vertical span, so a noisy series of many points costs one span per column."""
        previous: list[int] | None = None
        for column in _columns(points):
            if column is None:
                previous = None
                continue
            x, first, _, low, high = column
            if previous is not None:
                self._join(previous[0], previous[2], x, first, style)
            self.span(x, low, high, style)
            previous = column

    def span(self, x: int, low: int, high: int, style: str) -> None:
        """The dots of column `x` from `low` to `high` (both included), cell by cell."""
        if not 0 <= x < 2 * self.width:
            return
        masks, bits, owner = SPAN_BITS[x & 1], self.bits, self.owner
        cell = (low >> 2) * self.width + (x >> 1)
        for row in range(low >> 2, (high >> 2) + 1):
            top = low & 3 if row == low >> 2 else 0
            bottom = high & 3 if row == high >> 2 else 3
            bits[cell] |= masks[top][bottom]
            owner[cell] = style
            cell += self.width

    def _join(self, x0: int, y0: int, x1: int, y1: int, style: str) -> None:
        """From the end of one column to the start of the next: half the rise in each column
        when they touch, else dot by dot."""
        if x1 - x0 == 1:
            middle = (y0 + y1) // 2
            self.span(x0, min(y0, middle), max(y0, middle), style)
            self.span(x1, min(middle, y1), max(middle, y1), style)
            return
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for index in range(steps + 1):
            y = y0 + (y1 - y0) * index // steps
            self.span(x0 + (x1 - x0) * index // steps, y, y, style)


def _columns(points: list[tuple[int, int] | None]) -> list[list[int] | None]:
    """Consecutive points of one dot column merged: [x, first y, last y, lowest, highest]."""
    columns: list[list[int] | None] = []
    current: list[int] | None = None
    for point in points:
        if point is None:
            columns.append(None)
            current = None
            continue
        x, y = point
        if current is not None and current[0] == x:
            current[2] = y
            if y < current[3]:
                current[3] = y
            elif y > current[4]:
                current[4] = y
        else:
            current = [x, y, y, y, y]
            columns.append(current)
    return columns


def _dots(spec: ChartSpec, line: Line, width: int, height: int) -> list[tuple[int, int] | None]:
    """Each point as dot coordinates (None for a gap: a value that cannot be plotted)."""
    x_scale = (2 * width - 1) / (spec.x_high - spec.x_low or 1.0)
    bottom, x_low = 4 * height - 1, spec.x_low
    y = spec.y
    if y.log:
        low, high = math.log10(y.low), math.log10(y.high)
        ys = [math.log10(value) if value > 0 and value != math.inf else math.nan for value in line.ys]
    else:
        low, high, ys = y.low, y.high, line.ys
    y_scale = bottom / (high - low) if high > low else 0.0
    dots: list[tuple[int, int] | None] = []
    for x, value in zip(line.xs, ys):
        if value - value != 0.0 or x - x != 0.0:  # NaN or infinite
            dots.append(None)
            continue
        row = bottom - (value - low) * y_scale
        dots.append((round((x - x_low) * x_scale), round(0 if row < 0 else bottom if row > bottom else row)))
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
    runs: list[Run] = []
    texts: list[str] = []
    current = None
    for text, style in cells:
        if style != current:
            if texts:
                runs.append(("".join(texts), current))  # type: ignore[arg-type]
            texts, current = [], style
        texts.append(text)
    if texts:
        runs.append(("".join(texts), current))  # type: ignore[arg-type]
    return runs


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
