"""Which charts the monitor shows and what each one draws from the state. Pure Python.

`build_spec` turns the state's histories into a `ChartSpec` for one chart under the current
view (x-axis mode, smoothing, window); `signature` is what that spec depends on, compared by
the pane to redraw only the charts whose data changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nntui.tui.charts.canvas import ChartSpec, Line
from nntui.tui.charts.scales import scale_for
from nntui.tui.charts.smoothing import debiased_ema
from nntui.tui.formatting import FORMATTERS, fmt_value
from nntui.tui.state import MonitorState

X_MODES = ("step", "epoch", "time")
Best = tuple[str, int, float, int]  # series key, step, value, epoch


@dataclass(frozen=True)
class SeriesDef:
    key: str  # into MonitorState.series
    label: str  # in the legend
    step_level: bool  # one point per logged step (smoothable), else one per epoch
    style: str


@dataclass(frozen=True)
class ChartDef:
    chart_id: str
    title: str
    kind: str  # the scale: loss, accuracy, r2, lr, rate, norm
    series: tuple[SeriesDef, ...]


@dataclass(frozen=True)
class View:
    """How the charts are drawn: x-axis mode, smoothing weight (None: off), last-N window."""

    x_mode: str = "step"
    smoothing: float | None = None
    window: int | None = None


LOSS = ChartDef("loss", "loss", "loss", (SeriesDef("step_loss", "step", True, "series-1"),
                                         SeriesDef("train_loss", "train", False, "series-2"),
                                         SeriesDef("val_loss", "val", False, "series-3")))
ACCURACY = ChartDef("accuracy", "accuracy", "accuracy", (SeriesDef("train_acc", "train", False, "series-2"),
                                                         SeriesDef("val_acc", "val", False, "series-3")))
R2 = ChartDef("accuracy", "val R²", "r2", (SeriesDef("val_r2", "val", False, "series-3"),))
LR = ChartDef("lr", "learning rate", "lr", (SeriesDef("lr", "", True, "series-1"),))
RATE = ChartDef("rate", "samples/s", "rate", (SeriesDef("samples_per_s", "", True, "series-1"),))
NORM = ChartDef("norm", "global grad norm", "norm", (SeriesDef("grad_norm", "", True, "series-1"),))
SMALL_CHARTS = (LR, RATE, NORM)  # a value and a sparkline row each on small terminals
VALUE_FORMATS = {"loss": "value", "norm": "value", "r2": "value", "accuracy": "percent", "lr": "lr", "rate": "rate"}


def charts_for(task: str) -> tuple[ChartDef, ...]:
    return (LOSS, R2 if task == "regression" else ACCURACY, *SMALL_CHARTS)


def axis_mode(chart: ChartDef, view: View) -> str:
    """The x-axis of `chart`: in step mode a chart of epoch metrics only is drawn by epoch."""
    if view.x_mode == "step" and not any(series.step_level for series in chart.series):
        return "epoch"
    return view.x_mode


def best_point(state: MonitorState) -> Best | None:
    """(series key, step, value, epoch) of the best epoch: early stopping's, else the lowest val loss."""
    stop = state.early_stop
    if stop is not None and stop.best is not None and stop.best_epoch is not None:
        step = state.timeline.epoch_step(stop.best_epoch)
        if step is not None:
            return stop.monitor, step, stop.best, stop.best_epoch
    xs, ys = state.series["val_loss"].points()
    finite = [(y, x) for x, y in zip(xs, ys) if math.isfinite(y)]
    if not finite:
        return None
    value, step = min(finite)
    return "val_loss", int(step), value, round(state.timeline.step_to_epoch(step))


def signature(chart: ChartDef, state: MonitorState, view: View, best: Best | None) -> tuple[object, ...]:
    """Everything the chart's spec depends on (`best`: `best_point(state)`): equal signatures, equal charts."""
    parts: list[object] = [view, state.timeline.version, best, state.task]
    if chart is LR:
        parts.append(state.lr)  # its title shows the LR as set now, before a step trains at it
    parts += [state.series[series.key].version for series in chart.series]
    if axis_mode(chart, view) == "time":
        parts.append(state.timeline.step_times.version)
    return tuple(parts)


def build_spec(chart: ChartDef, state: MonitorState, view: View, best: Best | None) -> tuple[ChartSpec, str, str]:
    """The chart's spec, its title and its subtitle."""
    mode = axis_mode(chart, view)
    to_x = state.timeline.mapper(mode)
    lines = []
    points = {series.key: state.series[series.key].points() for series in chart.series}
    # an epoch series none of whose points came while its chart's others' did (a loop watched by
    # nntui.Monitor that gives no train_acc) is left out of the legend; before any epoch all stay
    epochs_came = any(points[series.key][0] for series in chart.series if not series.step_level)
    for series in chart.series:
        xs, ys = points[series.key]
        if view.smoothing is not None and series.step_level:
            ys = debiased_ema(ys, view.smoothing)
        shown = len(chart.series) > 1 and (series.step_level or xs or not epochs_came)
        lines.append(Line(series.label if shown else "", [to_x(x) for x in xs], ys, series.style))
    if view.window:
        lines = _last_points(lines, view.window)
    all_xs = [x for line in lines for x in line.xs]
    x_low, x_high = (min(all_xs), max(all_xs)) if all_xs else (0.0, 1.0)
    if x_high <= x_low:
        x_high = x_low + 1
    y = scale_for(chart.kind, [value for line in lines for value in line.ys])
    markers = tuple((to_x(marker.step), marker.kind) for marker in state.timeline.markers)
    keys = [series.key for series in chart.series]
    on_chart = best is not None and best[0] in keys
    spec = ChartSpec(tuple(lines), y, x_low, x_high, mode, markers,
                     (to_x(best[1]), best[2]) if on_chart else None)  # type: ignore[index]
    title = chart.title + (" (log)" if y.log else "") + latest_text(chart, state)
    return spec, title, _subtitle(chart, view, mode, best if on_chart else None)


def latest_text(chart: ChartDef, state: MonitorState) -> str:
    """` · train 0.0229 · val 0.0926`: the latest value of each series (the LR as set now)."""
    formatter = FORMATTERS[VALUE_FORMATS[chart.kind]]
    parts = []
    for series in chart.series:
        value = state.latest(series.key)
        if value is not None:
            parts.append(f"{series.label} {formatter(value)}".strip())
    return "".join(f" · {part}" for part in parts)


def _subtitle(chart: ChartDef, view: View, mode: str, best: Best | None) -> str:
    parts = []
    if best is not None:
        parts.append(f"● best {fmt_value(best[2])} @ epoch {best[3]}")
    if view.smoothing is not None and any(series.step_level for series in chart.series):
        parts.append(f"EMA {view.smoothing:g}")
    if view.window:
        parts.append(f"last {view.window}")
    parts.append(mode)
    return " · ".join(parts)


def _last_points(lines: list[Line], count: int) -> list[Line]:
    """Only the x range of the last `count` points of the longest line."""
    longest = max(lines, key=lambda line: len(line.xs))
    if len(longest.xs) <= count:
        return lines
    cut = longest.xs[-count]
    kept = []
    for line in lines:
        pairs = [(x, y) for x, y in zip(line.xs, line.ys) if x >= cut]
        kept.append(Line(line.label, [x for x, _ in pairs], [y for _, y in pairs], line.style))
    return kept
