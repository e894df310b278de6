"""The monitor's gradient pane: latest norm per layer as bars on a shared log scale, the update
to weight ratio, and a heatmap of each layer's norm over time, with legends.

Layout by room: bars and the legend always; the heatmap beside the bars when the pane is wide,
below them when it is tall enough, else left out. The rendered lines are cached and rebuilt
only when the table's version or the pane's size changes.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from nntui.tui.gradbars import (
    bar_segments,
    decade_legend,
    fmt_norm,
    heat_level,
    level_of,
    ratio_unusual,
    short_names,
)
from nntui.tui.layers import EXPLODING, NON_FINITE, VANISHING, LayerRow, LayerTable

# The heatmap's colours, coldest (smallest norm) first: a viridis ramp. It lives here, not in
# gradpane.tcss, because Textual CSS styles whole widgets or component classes and cannot
# give each character of a line its own colour; every cell and the scale legend use this one ramp.
HEAT_RAMP = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e",
             "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")
HEAT_STYLES = tuple(Style(color=colour) for colour in HEAT_RAMP)
FLAG_MARKS = {"": " ", VANISHING: "↓", EXPLODING: "↑", NON_FINITE: "!"}  # readable without colour
FLAG_CLASSES = {"": "gradpane--ok", VANISHING: "gradpane--vanishing", EXPLODING: "gradpane--exploding",
                NON_FINITE: "gradpane--non-finite"}
LEGEND = ("█ latest", "▓░ range of last {recent} logs", "↑ jump/outlier", "↓ vanishing", "! inf/NaN",
          "upd/w: update/weight, ~1e-3 ok")
VALUES_WIDTH = 16  # " 1.2e-03 3.4e-04": the norm and the update ratio
MIN_BAR, BESIDE_BAR, MIN_HEAT = 6, 16, 24


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
        self._built_for: tuple[int, int, int] | None = None  # (version, width, height) of _lines
        self._shape: tuple[int, bool] | None = None
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
        try:
            return Text("\n").join(self._layout_lines(self.size.width, self._room or self.size.height))
        except Exception as error:  # noqa: BLE001 - a drawing bug must not take the monitor down
            report = getattr(self.screen, "report_error", None)
            if report is not None:
                report("drawing the gradient norms", error)
            return Text("cannot draw the gradient norms (see the log)", style="dim")

    def _layout_lines(self, width: int, height: int) -> list[Text]:
        key = (self._version, width, height)
        if key != self._built_for:
            self._lines = self._build_lines(max(1, width), max(1, height))
            self._built_for = key
            self.builds += 1
        return self._lines

    def _build_lines(self, width: int, height: int) -> list[Text]:
        table = self._table
        if table is None or not table.has_norms():
            return [Text("waiting for gradient norms…", style=self._style("gradpane--legend"))]
        rows = list(table)
        names = self._short_names(table, width)
        name_width = max(len(name) for name in names.values())
        fixed = name_width + 3 + VALUES_WIDTH  # name, space, flag, space, bar, values
        legend = self._legend(width, table.recent)
        beside = width - fixed - BESIDE_BAR - 3 >= MIN_HEAT
        below = not beside and 2 * len(rows) + 3 + len(legend) <= height  # header, rows, title, rows, colours
        bar_width = BESIDE_BAR + (width - fixed - BESIDE_BAR - 3 - MIN_HEAT) // 3 if beside else width - fixed
        bar_width = max(MIN_BAR, bar_width)
        heat_width = width - fixed - bar_width - 3 if beside else width - name_width - 1
        columns = table.columns(heat_width) if beside or below else []
        lines = [self._header(table, name_width, bar_width, heat_width if beside else 0)]
        for index, row in enumerate(rows):
            line = self._bar_line(row, names[row.name], name_width, bar_width, table.scale())
            if beside:
                line.append(" │ ", style=self._style("gradpane--track"))
                line.append_text(self._heat_cells(columns[index], table.scale()))
            lines.append(line)
        if beside:
            lines.append(self._heat_legend(table, fixed + bar_width + 3, heat_width))
        if below:
            lines.append(self._heat_title(table, name_width + 1))
            lines.extend(Text(names[row.name].ljust(name_width + 1)) + self._heat_cells(cells, table.scale())
                         for row, cells in zip(rows, columns))
            lines.append(self._heat_legend(table, name_width + 1, heat_width))
        return lines + legend

    def _short_names(self, table: LayerTable, width: int) -> dict[str, str]:
        names = tuple(table.names())
        budget = max(6, min(24, width // 4))
        if self._named != (names, budget):
            self._names, self._named = short_names(names, budget), (names, budget)
        return self._names

    # ------------------------------------------------------------------ pieces

    def _style(self, component: str) -> Style:
        return self.get_component_rich_style(component, partial=True)

    def _header(self, table: LayerTable, name_width: int, bar_width: int, heat_width: int) -> Text:
        low, high = (f"1e{exponent}" for exponent in table.scale())
        axis = low + high.rjust(bar_width - len(low)) if bar_width > len(low) + len(high) else "log".ljust(bar_width)
        text = f"{'layer':<{name_width}}   {axis} {'norm':>7} {'upd/w':>7}"
        if heat_width:
            text += " │ " + self._span_text(table, "norm over steps", heat_width)
        return Text(text, style=self._style("gradpane--header"))

    def _span_text(self, table: LayerTable, label: str, width: int) -> str:
        first, last = table.steps() or (0, 0)
        return f"{label} {first:,}→{last:,}"[:width]

    def _bar_line(self, row: LayerRow, name: str, name_width: int, bar_width: int, scale: tuple[int, int]) -> Text:
        flag_style = self._style(FLAG_CLASSES[row.flag])
        line = Text(name.ljust(name_width) + " ")
        line.append(FLAG_MARKS[row.flag], style=flag_style)
        line.append(" ")
        low, high = row.spread()
        for text, kind in bar_segments(row.latest, low, high, scale, bar_width):
            if kind == "track":
                line.append(text, style=self._style("gradpane--track"))
            else:
                line.append(text, style=flag_style + (Style(dim=True) if kind == "range" else Style()))
        line.append(" " + fmt_norm(row.latest), style=flag_style)
        ratio_class = "gradpane--ratio-unusual" if ratio_unusual(row.ratio) else "gradpane--ratio"
        line.append(" " + fmt_norm(row.ratio), style=self._style(ratio_class))
        return line

    def _heat_cells(self, cells: list, scale: tuple[int, int]) -> Text:
        text = Text()
        for cell in cells:
            if cell.bad:
                text.append("!", style=self._style("gradpane--non-finite"))
            elif cell.log_norm is not None:
                text.append("█", style=HEAT_STYLES[heat_level(cell.log_norm, scale, len(HEAT_STYLES))])
            elif cell.zero:
                text.append("0", style=self._style("gradpane--vanishing"))
            else:
                text.append(" ", style=self._style("gradpane--empty"))
        return text

    def _heat_title(self, table: LayerTable, indent: int) -> Text:
        return Text(" " * indent + self._span_text(table, "heat: norm over steps", 80),
                    style=self._style("gradpane--header"))

    def _heat_legend(self, table: LayerTable, indent: int, width: int) -> Text:
        """`1e-4 ███ 1e-3 ███ …`: the colour of each decade of the log scale."""
        text = Text(" " * indent)
        for run, fraction in decade_legend(table.scale(), width):
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
