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

Then nntui's ChartsPane follows a simulated run at each size (a step record every 0.2 s, an
epoch record every second, `show` ten times a second as the monitor calls it) and the CPU share
of the whole process (app included) is printed.
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


class PaneApp(App[None]):
    """nntui's ChartsPane filling the screen, as the monitor would follow a run."""

    CSS_PATH = ChartApp.CSS_PATH

    def compose(self) -> ComposeResult:
        from nntui.tui.charts import ChartsPane

        yield ChartsPane()


def feed(state: object, step: int, steps_per_epoch: int) -> None:
    """One step record; an epoch record every `steps_per_epoch` steps."""
    from nntui.engine.events import EpochEnded, StepLogged

    loss = 2.3 * math.exp(-step / 400) + 0.05
    epoch = (step - 1) // steps_per_epoch + 1
    state.apply(StepLogged(step, epoch, loss * random.uniform(0.8, 1.2), 1e-3, 1 / (1 + step / 500),
                           9000 + random.uniform(-500, 500), time=step * 0.2))  # type: ignore[attr-defined]
    if step % steps_per_epoch == 0:
        state.apply(EpochEnded(epoch, step, loss, loss * 1.2, 1e-3, train_acc=1 - loss / 3,  # type: ignore[attr-defined]
                               val_acc=1 - loss / 2.5, time=step * 0.2))


async def measure_pane(size: tuple[int, int], seconds: float, history_steps: int) -> float:
    """CPU share of one core of the pane following a run: a step record every 0.2 s, an epoch
    record every 5 steps, `show` 10 times a second (the monitor's pace)."""
    from nntui.engine.events import RunStarted
    from nntui.tui.charts import ChartsPane
    from nntui.tui.state import MonitorState

    state = MonitorState()
    state.apply(RunStarted("digits-mlp", "cpu", 10, 1000, 100, 100, None, epochs=10_000, steps_per_epoch=5, time=0.0))
    for step in range(1, history_steps + 1):
        feed(state, step, 5)
    app = PaneApp()
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(ChartsPane)
        pane.show(state)
        await pilot.pause(0.5)
        cpu, start, step = time.process_time(), time.monotonic(), history_steps
        for tick in range(int(seconds * FPS)):
            if tick % 2 == 0:
                step += 1
                feed(state, step, 5)
            pane.show(state)
            await asyncio.sleep(max(0.0, start + (tick + 1) / FPS - time.monotonic()))
        await pilot.pause()
        return (time.process_time() - cpu) / (time.monotonic() - start)


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
    print(f"\nnntui ChartsPane following a run (a step record every 0.2 s, an epoch every 1 s, "
          f"show() at {FPS}/s, 2,000 steps of history), CPU of one core incl. the app:")
    for size in SIZES:
        share = await measure_pane(size, 2 * seconds, 2000)
        print(f"{'ChartsPane':<17} {size[0]:>3}x{size[1]:<3} {100 * share:>25.1f}%")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--points", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.points))
