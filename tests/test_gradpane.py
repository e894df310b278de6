"""The gradient pane in a tiny app: what it shows at 80x24 and 200x50, and that it redraws
only when the table changed."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

import nntui.tui.gradpane as gradpane
from nntui.engine.events import GradNorms, from_record
from nntui.runs import read_records
from nntui.tui.gradbars import bar_segments, short_names
from nntui.tui.gradpane import HEAT_RAMP, GradPane
from nntui.tui.layers import LayerTable

RUNS = Path(__file__).parent / "fixtures" / "runs"


class PaneApp(App[None]):
    """The pane as the monitor holds it: in a scrolling box beside another pane."""

    CSS_PATH = Path(gradpane.__file__).with_name("gradpane.tcss")
    CSS = "#box { height: 14; border: round white; } #other { width: 1fr; } #scroll { width: 1fr; }"

    def __init__(self, box_height: int = 14) -> None:
        super().__init__()
        self.box_height = box_height

    def compose(self) -> ComposeResult:
        with Horizontal(id="box"):
            yield Static("metrics", id="other")
            with VerticalScroll(id="scroll"):
                yield GradPane(id="pane")

    def on_mount(self) -> None:
        self.query_one("#box").styles.height = self.box_height


def recorded_table(fixture: str = "digits-mlp-complete") -> LayerTable:
    table = LayerTable()
    for event in (from_record(record) for record in read_records(RUNS / fixture)):
        if isinstance(event, GradNorms):
            table.add(event)
    return table


async def shown(app: PaneApp, pilot, table: LayerTable) -> tuple[GradPane, list[str]]:
    pane = app.query_one(GradPane)
    pane.show(table)
    await pilot.pause()
    return pane, pane.render().plain.split("\n")


def heat_rows(pane: GradPane) -> list[list[str]]:
    """Per rendered line, the ramp colour of each heatmap cell in it (one entry per cell)."""
    rows = []
    for line in pane.render().split("\n"):
        colours = []
        for span in line.spans:
            colour = None if isinstance(span.style, str) or span.style.color is None else span.style.color.name
            if colour in HEAT_RAMP and set(line.plain[span.start:span.end]) == {"█"}:
                colours.extend([colour] * (span.end - span.start))
        rows.append(colours)
    return rows


async def test_at_80x24_the_bars_and_the_legend_fit_and_the_heatmap_waits_for_room():
    table = recorded_table()
    app = PaneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        pane, lines = await shown(app, pilot, table)
        scroll = app.query_one("#scroll")
        assert pane.size.height <= scroll.size.height, "no scrolling needed for six layers"
        assert all(len(line) <= pane.size.width for line in lines)
        names = short_names(table.names(), pane.size.width // 4)
        assert sorted(line.split(" ")[0] for line in lines[1:len(table) + 1]) == sorted(names.values())
        legend = " ".join(lines)
        for words in ("latest", "range of last 32 logs", "jump/outlier", "vanishing", "inf/NaN", "upd/w"):
            assert words in legend
        assert not any(heat_rows(pane)), "no room for the heatmap"


async def test_at_200x50_the_heatmap_has_a_row_per_layer_beside_the_bars_and_a_decade_legend():
    table = recorded_table()
    app = PaneApp()
    async with app.run_test(size=(200, 50)) as pilot:
        pane, lines = await shown(app, pilot, table)
        rows = heat_rows(pane)
        layer_lines = [index for index, line in enumerate(lines) if " │ " in line and "█" in line.split(" │ ")[1]]
        assert len(layer_lines) == len(table)
        widths = {len(rows[index]) for index in layer_lines}
        assert len(widths) == 1 and 24 <= widths.pop() <= table.buckets  # columns line up; buckets merged to fit
        low, high = table.scale()
        legend = next(line for line in lines if f"1e{low}" in line and f"1e{high}" in line and " │ " not in line
                      and "norm" not in line)
        assert all(f"1e{exponent}" in legend for exponent in range(low, high + 1))
        assert "latest" in " ".join(lines)


async def test_a_narrow_tall_pane_puts_the_heatmap_below_the_bars():
    table = recorded_table()
    app = PaneApp(box_height=30)
    async with app.run_test(size=(80, 34)) as pilot:
        pane, lines = await shown(app, pilot, table)
        rows = [colours for colours in heat_rows(pane) if colours]
        assert len(rows) == len(table) + 1  # a row per layer, and the colour legend
        title = next(index for index, line in enumerate(lines) if "heat" in line)
        assert title > len(table)  # below the bars


async def test_the_pane_redraws_only_when_the_table_changed(monkeypatch):
    table = recorded_table()
    app = PaneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        pane, _ = await shown(app, pilot, table)
        builds, refreshes = pane.builds, []
        monkeypatch.setattr(pane, "refresh", lambda *args, **kwargs: refreshes.append(kwargs))
        for _ in range(5):
            pane.show(table)
        await pilot.pause()
        assert (pane.builds, refreshes) == (builds, [])
        monkeypatch.undo()
        table.add(GradNorms(10_000, tuple((name, 1.0) for name in table.names())))
        pane.show(table)
        await pilot.pause()
        assert pane.builds == builds + 1


async def test_colours_flags_and_update_ratios_read_at_a_glance():
    table = LayerTable()
    for step in range(1, 12):
        norms = {"small.weight": 1e-3, "big.weight": 1.0, "spiky.weight": 1.0 if step < 11 else 50.0}
        ratios = {"small.weight": 1e-3, "big.weight": 1e-7, "spiky.weight": 2e-3}
        table.add(SimpleNamespace(step=step, norms=tuple(norms.items()), update_ratios=tuple(ratios.items())))
    app = PaneApp()
    async with app.run_test(size=(200, 50)) as pilot:
        pane, lines = await shown(app, pilot, table)
        by_name = {name: next(line for line in lines if line.startswith(name)) for name in table.names()}
        assert "↑" in by_name["spiky.weight"] and "↑" not in by_name["big.weight"]
        assert "1.0e-07" in by_name["big.weight"] and "1.0e-03" in by_name["small.weight"]
        rendered = {line.plain.split(" ")[0]: line for line in pane.render().split("\n")}
        unusual = pane.get_component_rich_style("gradpane--ratio-unusual", partial=True)
        assert unusual.reverse  # as gradpane.tcss says
        assert any(span.style == unusual for span in rendered["big.weight"].spans)
        assert not any(span.style == unusual for span in rendered["small.weight"].spans)
        colours = {name: heat_rows(pane)[lines.index(by_name[name])] for name in table.names()}
        assert HEAT_RAMP.index(colours["small.weight"][0]) < HEAT_RAMP.index(colours["big.weight"][0])


async def test_before_any_norms_the_pane_says_it_waits():
    table = LayerTable()
    table.register(["fc1.weight"])
    app = PaneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        _, lines = await shown(app, pilot, table)
        assert lines == ["waiting for gradient norms…"]


@pytest.mark.parametrize("latest", [1e-3, 1e-1, 10.0])
def test_bars_grow_with_the_norm_on_the_log_scale_and_shade_the_recent_range(latest):
    segments = bar_segments(latest, 1e-2, 1.0, (-4, 2), 30)
    assert sum(len(text) for text, _ in segments) == 30
    solid = sum(len(text) for text, kind in segments if kind in ("bar", "bar-range"))
    assert solid == pytest.approx(30 * (math.log10(latest) + 4) / 6, abs=1)
    shaded = "".join(text for text, kind in segments if kind in ("bar-range", "range"))
    assert len(shaded) == pytest.approx(30 * 2 / 6, abs=1)  # 1e-2..1e0: two of six decades
