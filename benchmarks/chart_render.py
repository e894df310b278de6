"""What does a line chart cost to redraw? textual-plot, textual-plotext and nntui's own LineChart.

    python benchmarks/chart_render.py [--seconds 4] [--points 500]

For each library and terminal size (80x24, 200x50) a small Textual app (headless, `run_test`)
shows one chart filling the screen: two overlaid series of `--points` points (a noisy step loss
and a smooth epoch loss), a legend and a vertical marker, as the monitor's loss chart has. Ten
times a second a point is added to each series and the chart redrawn, for `--seconds`. The
same app showing nothing (no chart, no updates) is measured first and its CPU time subtracted,
so the figures are the chart's own. Prints, per library and size, the CPU time per redraw and
the share of one core at 10 redraws a second. (nntui draws its charts itself, in
nntui/tui/charts/canvas.py, because both libraries cost several times the monitor's CPU budget.)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from pathlib import Path
from typing import Callable

from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import Static

SIZES = ((80, 24), (200, 50))
FPS = 10
LEGEND = True


def make_series(count: int, seed: int = 7) -> tuple[list[float], list[float], list[float]]:
    """x, a noisy decaying loss and its smooth trend (the step and the epoch curve)."""
    rng = random.Random(seed)
    xs = [float(i) for i in range(count)]
    trend = [2.3 * math.exp(-i / (count / 4)) + 0.05 for i in range(count)]
    noisy = [value * (1 + 0.25 * rng.uniform(-1, 1)) for value in trend]
    return xs, noisy, trend


class TextualPlotChart:
    """textual-plot's PlotWidget: braille lines, legend, a vertical line."""

    name = "textual-plot"

    def __init__(self) -> None:
        from textual_plot import HiResMode, PlotWidget

        self.widget = PlotWidget(allow_pan_and_zoom=False)
        self.mode = HiResMode.BRAILLE
        self.legend = LEGEND

    def draw(self, xs: list[float], step: list[float], epoch: list[float]) -> None:
        plot = self.widget
        plot.clear()
        plot.plot(xs, step, line_style="cyan", hires_mode=self.mode, label="train step")
        plot.plot(xs, epoch, line_style="yellow", hires_mode=self.mode, label="val")
        plot.add_v_line(xs[len(xs) // 2], line_style="magenta", label="lr change")
        plot.set_xlabel("step")
        if self.legend:
            plot.show_legend()


class PlotextChart:
    """textual-plotext's PlotextPlot (plotext): braille lines, legend, a vertical line."""

    name = "textual-plotext"

    def __init__(self) -> None:
        from textual_plotext import PlotextPlot

        self.widget = PlotextPlot()

    def draw(self, xs: list[float], step: list[float], epoch: list[float]) -> None:
        plt = self.widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.plot(xs, step, marker="braille", color="cyan", label="train step")
        plt.plot(xs, epoch, marker="braille", color="yellow", label="val")
        plt.vline(xs[len(xs) // 2], color="magenta")
        plt.xlabel("step")
        self.widget.refresh()


class OwnChart:
    """nntui's own LineChart (nntui/tui/charts): braille lines, legend, a vertical marker."""

    name = "nntui LineChart"

    def __init__(self) -> None:
        from nntui.tui.charts.chart import LineChart

        self.widget = LineChart("loss")

    def draw(self, xs: list[float], step: list[float], epoch: list[float]) -> None:
        from nntui.tui.charts.canvas import ChartSpec, Line
        from nntui.tui.charts.scales import scale_for

        lines = (Line("train step", xs, step, "series-1"), Line("val", xs, epoch, "series-3"))
        spec = ChartSpec(lines, scale_for("loss", step + epoch), xs[0], xs[-1], "step",
                         ((xs[len(xs) // 2], "lr"),))
        self.widget.set_spec(spec, "loss", "step")


class ChartApp(App[None]):
    """One chart (or nothing, for the baseline) filling the screen."""

    CSS_PATH = str(Path(__file__).resolve().parent.parent / "nntui" / "tui" / "charts" / "charts.tcss")

    def __init__(self, chart: Widget | None) -> None:
        super().__init__()
        self.chart = chart

    def compose(self) -> ComposeResult:
        yield self.chart if self.chart is not None else Static("")


async def measure(chart_type: Callable[[], object] | None, size: tuple[int, int], seconds: float,
                  points: int) -> tuple[float, int]:
    """CPU seconds used while redrawing at FPS for `seconds`, and how many redraws."""
    chart = chart_type() if chart_type is not None else None
    app = ChartApp(chart.widget if chart is not None else None)  # type: ignore[union-attr]
    xs, step, epoch = make_series(points + int(seconds * FPS) + FPS)
    frames = int(seconds * FPS)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.3)
        if chart is not None:  # warm-up redraw: first-render costs (imports, CSS) are not counted
            chart.draw(xs[:points], step[:points], epoch[:points])  # type: ignore[union-attr]
            await pilot.pause(0.3)
        cpu = time.process_time()
        start = time.monotonic()
        for frame in range(frames):
            if chart is not None:
                window = slice(frame + 1, frame + 1 + points)
                chart.draw(xs[window], step[window], epoch[window])  # type: ignore[union-attr]
            await asyncio.sleep(max(0.0, start + (frame + 1) / FPS - time.monotonic()))
        await pilot.pause()
        return time.process_time() - cpu, frames


async def main(seconds: float, points: int) -> None:
    print(f"{points} points x 2 series, legend, 1 vertical marker; {FPS} redraws/s for {seconds:g} s; "
          "CPU net of an idle app of the same size")
    print(f"{'library':<17} {'size':>7} {'ms/redraw':>10} {'CPU at 10 fps':>14}")
    for size in SIZES:
        idle_cpu, frames = await measure(None, size, seconds, points)
        idle_per_frame = idle_cpu / frames
        for chart_type in (TextualPlotChart, PlotextChart, OwnChart):
            cpu, frames = await measure(chart_type, size, seconds, points)
            per_redraw = max(0.0, cpu / frames - idle_per_frame)
            print(f"{chart_type.name:<17} {size[0]:>3}x{size[1]:<3} {1000 * per_redraw:>10.2f} "
                  f"{100 * per_redraw * FPS:>13.1f}%")
        print(f"{'(idle app)':<17} {size[0]:>3}x{size[1]:<3} {1000 * idle_per_frame:>10.2f} "
              f"{100 * idle_per_frame * FPS:>13.1f}%")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--points", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.points))
