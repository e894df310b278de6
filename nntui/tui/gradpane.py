"""The monitor's gradient pane: latest norm per layer as bars on a shared log scale, the update
to weight ratio, and a heatmap of each layer's norm over time, with legends.

Layout by room: bars and the legend always; the heatmap beside the bars when the pane is wide,
below them when it is tall enough, else left out. The rendered lines are cached and rebuilt
only when the table's version or the pane's size changes.
"""

from __future__ import annotations

import itertools

from rich.style import Style
from rich.text import Span, Text
from textual.geometry import Size
from textual.widget import Widget

from nntui.tui.gradbars import (
    GAP,
    PaneLayout,
    bar_segments,
    decade_legend,
    fmt_norm,
    heat_level,
    level_of,
    pane_layout,
    ratio_unusual,
    short_names,
)
from nntui.tui.layers import EXPLODING, NON_FINITE, VANISHING, Cell, LayerRow, LayerTable

# The heatmap's colours, coldest (smallest norm) first: a viridis ramp. It lives here, not in
# gradpane.tcss, because Textual CSS styles whole widgets or component classes and cannot
# give each character of a line its own colour; every cell and the scale legend use this one ramp.
HEAT_RAMP = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e",
             "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")
HEAT_STYLES = tuple(Style(color=colour) for colour in HEAT_RAMP)
ODD_CELLS = {"!": "gradpane--non-finite", "0": "gradpane--vanishing", " ": "gradpane--empty"}
FLAG_MARKS = {"": " ", VANISHING: "↓", EXPLODING: "↑", NON_FINITE: "!"}  # readable without colour
FLAG_CLASSES = {"": "gradpane--ok", VANISHING: "gradpane--vanishing", EXPLODING: "gradpane--exploding",
                NON_FINITE: "gradpane--non-finite"}
LEGEND = ("█ latest", "▓░ range of last {recent} logs", "↑ jump/outlier", "↓ vanishing", "! inf/NaN",
          "upd/w: update/weight, ~1e-3 ok")


class GradPane(Widget):
    """Per-layer gradient norms: `show(layers)` from the monitor's redraw tick."""

    COMPONENT_CLASSES = {
        "gradpane--ok", "gradpane--vanishing", "gradpane--exploding", "gradpane--non-finite",
        "gradpane--track", "gradpane--header", "gradpane--legend", "gradpane--ratio",
        "gradpane--ratio-unusual", "gradpane--empty",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._table: LayerTable | None = None
        self._version = -1
        self._lines: list[Text] = []
        self._built_for: tuple[int, int, int, str] | None = None  # (version, width, height, theme) of _lines
        self._shape: tuple[int, bool] | None = None
        self._styles: dict[str, Style] = {}
        self._room = 0  # the height the pane may fill, from its container at the last layout
        self._names: dict[str, str] = {}
        self._named: tuple[tuple[str, ...], int] | None = None
        self.builds = 0  # how often the lines were rebuilt (tests check it stays put)

    def show(self, layers: LayerTable) -> None:
        """Take the table; does nothing when its version has not changed since the last call."""
        if layers is self._table and layers.version == self._version:
            return
        shape = (len(layers), layers.has_norms())  # what the number of lines depends on
        self._table, self._version = layers, layers.version
        self.refresh(layout=shape != self._shape)
        self._shape = shape

    # ------------------------------------------------------------------ layout

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:  # type: ignore[override]
        self._room = container.height
        return len(self._layout_lines(width, self._room))

    def render(self) -> Text:
        lines = self._layout_lines(self.size.width, self._room or self.size.height)
        return Text("\n", no_wrap=True, overflow="crop").join(lines)

    def _layout_lines(self, width: int, height: int) -> list[Text]:
        """The pane's lines for this size, rebuilt only when the version or the size changed."""
        key = (self._version, width, height, getattr(self.app, "theme", ""))  # styles come from the theme
        if key != self._built_for:
            self._built_for = key
            self.builds += 1
            try:
                self._lines = self._build_lines(max(1, width), max(1, height))
            except Exception as error:  # noqa: BLE001 - a drawing bug must not take the monitor down
                report = getattr(self.screen, "report_error", None)
                if report is not None:
                    report("drawing the gradient norms", error)
                self._lines = [Text("cannot draw the gradient norms (see the log)", style="dim")]
        return self._lines

    def _build_lines(self, width: int, height: int) -> list[Text]:
        table, self._styles = self._table, {}
        if table is None or not table.has_norms():
            return [Text("waiting for gradient norms…", style=self._style("gradpane--legend"))]
        rows, scale = list(table), table.scale()
        names = self._short_names(table, width)
        legend = self._legend(width, table.recent)
        layout = pane_layout(width, height, max(map(len, names.values())), len(rows), len(legend))
        columns = table.columns(layout.heat_width) if layout.heat else []
        lines = [self._header(table, layout)]
        for index, row in enumerate(rows):
            line = self._bar_line(row, names[row.name], layout, scale)
            if layout.heat == "beside":
                line.append(GAP, style=self._style("gradpane--track"))
                line.append_text(self._heat_cells(columns[index], scale))
            lines.append(line)
        if layout.heat == "below":
            lines.append(Text(" " * layout.heat_indent + self._span_text(table, "heat: norm over steps"),
                              style=self._style("gradpane--header")))
            lines.extend(Text(names[row.name].ljust(layout.heat_indent)) + self._heat_cells(cells, scale)
                         for row, cells in zip(rows, columns))
        if layout.heat:
            lines.append(self._heat_legend(scale, layout))
        return lines + legend

    def _short_names(self, table: LayerTable, width: int) -> dict[str, str]:
        names = tuple(table.names())
        budget = max(6, min(24, width // 4))
        if self._named != (names, budget):
            self._names, self._named = short_names(names, budget), (names, budget)
        return self._names

    # ------------------------------------------------------------------ pieces

    def _style(self, component: str) -> Style:
        style = self._styles.get(component)
        if style is None:  # looked up once per build: the theme may change between builds
            style = self._styles[component] = self.get_component_rich_style(component, partial=True)
        return style

    def _header(self, table: LayerTable, layout: PaneLayout) -> Text:
        """Column titles, with the bars' scale at their two ends."""
        low, high = (f"1e{exponent}" for exponent in table.scale())
        width = layout.bar_width
        axis = low + high.rjust(width - len(low)) if width > len(low) + len(high) else "log".ljust(width)
        text = f"{'layer':<{layout.name_width}}   {axis} {'norm':>7} {'upd/w':>7}"
        if layout.heat == "beside":
            text += GAP + self._span_text(table, "norm over steps")[:layout.heat_width]
        return Text(text, style=self._style("gradpane--header"))

    def _span_text(self, table: LayerTable, label: str) -> str:
        first, last = table.steps() or (0, 0)
        return f"{label} {first:,}→{last:,}"

    def _bar_line(self, row: LayerRow, name: str, layout: PaneLayout, scale: tuple[int, int]) -> Text:
        """`name ↑ ████▓▓▌░░··· 1.2e+00 3.4e-03`: flag, bar, latest norm, update ratio."""
        flag_style = self._style(FLAG_CLASSES[row.flag])
        line = Text(name.ljust(layout.name_width) + " ")
        line.append(FLAG_MARKS[row.flag], style=flag_style)
        line.append(" ")
        low, high = row.spread()
        for text, kind in bar_segments(row.latest, low, high, scale, layout.bar_width):
            if kind == "track":
                line.append(text, style=self._style("gradpane--track"))
            else:
                line.append(text, style=flag_style + (Style(dim=True) if kind == "range" else Style()))
        line.append(" " + fmt_norm(row.latest), style=flag_style)
        ratio_class = "gradpane--ratio-unusual" if ratio_unusual(row.ratio) else "gradpane--ratio"
        line.append(" " + fmt_norm(row.ratio), style=self._style(ratio_class))
        return line

    def _heat_cells(self, cells: list[Cell], scale: tuple[int, int]) -> Text:
        """One heatmap row: a coloured █ per cell, `!` where a norm was not finite, `0` where
        all were zero. Runs of equal cells share one span (this is the pane's hot loop)."""
        keys = [("!" if cell.bad else "█" if cell.log_norm is not None else "0" if cell.zero else " ",
                 heat_level(cell.log_norm, scale, len(HEAT_STYLES)) if cell.log_norm is not None else -1)
                for cell in cells]
        text, spans, start = "".join(char for char, _ in keys), [], 0
        for (char, level), run in itertools.groupby(keys):
            end = start + len(list(run))
            spans.append(Span(start, end, HEAT_STYLES[level] if char == "█" else self._style(ODD_CELLS[char])))
            start = end
        return Text(text, spans=spans)

    def _heat_legend(self, scale: tuple[int, int], layout: PaneLayout) -> Text:
        """`1e-4 ███ 1e-3 ███ …`: the colour of each decade of the log scale."""
        text = Text(" " * layout.heat_indent)
        for run, fraction in decade_legend(scale, layout.heat_width):
            if fraction is None:
                text.append(run, style=self._style("gradpane--legend"))
            else:
                text.append(run, style=HEAT_STYLES[level_of(fraction, len(HEAT_STYLES))])
        return text

    def _legend(self, width: int, recent: int) -> list[Text]:
        """The legend's items, wrapped to the width."""
        lines: list[str] = []
        for item in (entry.format(recent=recent) for entry in LEGEND):
            if lines and len(lines[-1]) + 2 + len(item) <= width:
                lines[-1] += "  " + item
            else:
                lines.append(item)
        return [Text(line, style=self._style("gradpane--legend")) for line in lines]
