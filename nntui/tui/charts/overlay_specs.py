"""What the overlay charts draw: each run's epoch curve of a metric, a fork joined to its parent's
curve at the fork step, one colour per run. Pure Python (no textual), tested without an app.

A run's points are its epoch records against the epoch, the step or the wall time since its first
start. A fork whose parent is shown starts at the parent's point at the fork step, so its line
branches off the parent's curve; its wall time counts on from the parent's time at that step.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from nntui.run_series import TASKS, RunSeries
from nntui.tui.charts.canvas import ChartSpec, Line
from nntui.tui.charts.scales import scale_for

X_MODES = ("epoch", "step", "time")
PALETTE_SIZE = 10  # colours `run-1`...`run-10` in overlay.tcss; more runs than that share them
Points = tuple[list[float], list[float]]


@dataclass(frozen=True)
class OverlayChartDef:
    """One overlay chart: the epoch record key it draws, for runs of `tasks`."""

    chart_id: str
    title: str
    kind: str  # the scale (scales.scale_for): loss, accuracy, r2, lr
    key: str
    tasks: tuple[str, ...] = TASKS


VAL_LOSS = OverlayChartDef("val-loss", "val loss", "loss", "val_loss")
TRAIN_LOSS = OverlayChartDef("train-loss", "train loss", "loss", "train_loss")
ACCURACY = OverlayChartDef("accuracy", "val accuracy", "accuracy", "val_acc", ("classification",))
R2 = OverlayChartDef("r2", "val R²", "r2", "val_r2", ("regression",))
LR = OverlayChartDef("lr", "learning rate", "lr", "lr")
OVERLAY_CHARTS = (VAL_LOSS, TRAIN_LOSS, ACCURACY, R2, LR)


def charts_for(runs: Sequence[RunSeries]) -> tuple[OverlayChartDef, ...]:
    """The charts that apply to some shown run (accuracy and R² both for mixed tasks)."""
    tasks = {run.task for run in runs} or {TASKS[0]}
    return tuple(chart for chart in OVERLAY_CHARTS if tasks & set(chart.tasks))


def assign_colours(previous: Mapping[str, int], names: Sequence[str], size: int = PALETTE_SIZE) -> dict[str, int]:
    """A palette slot (1-based) per run: a run shown before keeps its slot; a new one takes the
    first free slot (the least used one once all are taken)."""
    slots = {name: previous[name] for name in names if name in previous}
    for name in names:
        if name not in slots:
            uses = [sum(slot == candidate for slot in slots.values()) for candidate in range(1, size + 1)]
            slots[name] = 1 + uses.index(min(uses))
    return slots


def kept_epochs(epochs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epoch records that stand: a run resumed from an earlier checkpoint wrote again the
    epochs after it, and those replace the first ones."""
    kept: list[dict[str, Any]] = []
    for epoch in epochs:
        step = epoch.get("step")
        if not isinstance(step, int):
            continue
        while kept and kept[-1]["step"] >= step:
            kept.pop()
        kept.append(epoch)
    return kept


def value_of(epoch: dict[str, Any], key: str) -> float:
    """A metric of an epoch record as a float; NaN (a gap in the line) when it has none."""
    value = epoch.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def shown_parent(run: RunSeries, shown: Mapping[str, RunSeries]) -> RunSeries | None:
    """The run's parent when it is a fork and its parent is shown too."""
    if run.forked_from is None or run.forked_from[0] == run.name:
        return None
    return shown.get(run.forked_from[0])


def run_points(run: RunSeries, key: str, mode: str, shown: Mapping[str, RunSeries]) -> Points:
    """The run's curve of `key` on x-axis `mode`; a fork whose parent is in `shown` (by name)
    starts at the parent's point at the fork step."""
    epochs = kept_epochs(run.epochs)
    xs = _xs(run, epochs, mode, shown, 0)
    ys = [value_of(epoch, key) for epoch in epochs]
    parent = shown_parent(run, shown)
    if parent is not None and run.forked_from is not None:
        anchor = point_at_step(parent, key, mode, run.forked_from[1], shown)
        if anchor is not None:
            xs.insert(0, anchor[0])
            ys.insert(0, anchor[1])
    return xs, ys


def point_at_step(run: RunSeries, key: str, mode: str, step: int,
                  shown: Mapping[str, RunSeries]) -> tuple[float, float] | None:
    """(x, value of `key`) of the run's curve at `step`, between its epoch points (a step before
    the first or after the last: that end's); None when the run has no epochs yet."""
    x = x_at_step(run, mode, step, shown, 0)
    if x is None:
        return None
    epochs = kept_epochs(run.epochs)
    return x, _interpolate([float(epoch["step"]) for epoch in epochs], [value_of(e, key) for e in epochs], step)


def x_at_step(run: RunSeries, mode: str, step: int, shown: Mapping[str, RunSeries], depth: int) -> float | None:
    """Where `step` of the run is on x-axis `mode` (None when the run has no epochs yet)."""
    epochs = kept_epochs(run.epochs)
    if not epochs:
        return None
    steps = [float(epoch["step"]) for epoch in epochs]
    xs = _xs(run, epochs, mode, shown, depth)
    if run.forked_from is None:  # the run starts at step 0, epoch 0, second 0
        steps, xs = [0.0, *steps], [0.0, *xs]
    return _interpolate(steps, xs, step)


def _xs(run: RunSeries, epochs: list[dict[str, Any]], mode: str, shown: Mapping[str, RunSeries],
        depth: int) -> list[float]:
    if mode in ("epoch", "step"):
        return [float(epoch[mode]) for epoch in epochs]
    origin = run.start_time
    if origin is None:  # no start record read: the first epoch's start
        origin = value_of(epochs[0], "time") - value_of(epochs[0], "epoch_s") if epochs else 0.0
    offset = _time_offset(run, shown, depth)
    return [value_of(epoch, "time") - origin + offset for epoch in epochs]


def _time_offset(run: RunSeries, shown: Mapping[str, RunSeries], depth: int) -> float:
    """Where a fork's wall time starts: at its shown parent's time at the fork step (else 0)."""
    parent = shown_parent(run, shown)
    if parent is None or run.forked_from is None or depth >= len(shown):  # depth: a loop of forks ends
        return 0.0
    x = x_at_step(parent, "time", run.forked_from[1], shown, depth + 1)
    return x if x is not None and math.isfinite(x) else 0.0


def _interpolate(xs: list[float], ys: list[float], x: float) -> float:
    """ys at x, linearly between the points around it (xs ascending); the end values outside."""
    index = bisect.bisect_left(xs, x)
    if index == 0:
        return ys[0]
    if index >= len(xs):
        return ys[-1]
    if xs[index] == x:
        return ys[index]
    fraction = (x - xs[index - 1]) / (xs[index] - xs[index - 1])
    return ys[index - 1] + fraction * (ys[index] - ys[index - 1])


def build_overlay_spec(chart: OverlayChartDef, runs: Sequence[RunSeries], colours: Mapping[str, int],
                       mode: str) -> tuple[ChartSpec, str]:
    """The chart's spec over the runs of its tasks, and its title."""
    shown = {run.name: run for run in runs}
    lines = []
    for run in runs:
        if run.task in chart.tasks:
            xs, ys = run_points(run, chart.key, mode, shown)
            lines.append(Line("", xs, ys, f"run-{colours.get(run.name, 1)}"))
    all_xs = [x for line in lines for x in line.xs if math.isfinite(x)]
    x_low, x_high = (min(all_xs), max(all_xs)) if all_xs else (0.0, 1.0)
    if x_high <= x_low:
        x_high = x_low + 1
    y = scale_for(chart.kind, [value for line in lines for value in line.ys])
    title = f"{chart.title}{' (log)' if y.log else ''} · {mode}"
    return ChartSpec(tuple(lines), y, x_low, x_high, mode), title


def runs_signature(runs: Sequence[RunSeries], colours: Mapping[str, int]) -> tuple[object, ...]:
    """What the charts of these runs depend on: a run's epochs only grow, so their count and the
    last one's step say whether its curve changed (a resume that replaced epochs changes the step)."""
    return tuple((run.name, run.task, run.forked_from, colours.get(run.name), len(run.epochs),
                  run.epochs[-1].get("step") if run.epochs else None, run.start_time) for run in runs)


LEGEND_MARK = "━━ "
LEGEND_GAP = "   "


def legend_text(run: RunSeries) -> str:
    """A run's legend entry: its name, and where it was forked from."""
    if run.forked_from is None:
        return run.name
    parent, step = run.forked_from
    return f"{run.name} (fork of {parent} at step {step:,})"


def legend_rows(entries: Sequence[tuple[str, int]], width: int) -> list[list[tuple[str, str]]]:
    """The legend's rows at `width`: `━━ name` entries (text, palette slot), as many on a row as
    fit; an entry wider than a row is cut with `…`. Each row is runs of (text, style key)."""
    rows: list[list[tuple[str, str]]] = []
    used = width  # forces a first row
    for text, slot in entries:
        length = len(LEGEND_MARK) + len(text)
        if length > width:
            text = text[:max(0, width - len(LEGEND_MARK) - 1)] + "…"
            length = len(LEGEND_MARK) + len(text)
        if used + len(LEGEND_GAP) + length > width:
            rows.append([])
            used = -len(LEGEND_GAP)
        row = rows[-1]
        if row:
            row.append((LEGEND_GAP, "legend"))
        row += [(LEGEND_MARK, f"run-{slot}"), (text, "legend")]
        used += len(LEGEND_GAP) + length
    return rows
