"""The runs screen's diff and summary pane: for the selected runs, the settings that differ
(only those) and, per run, the best, final, min and max of each metric and the epoch of the best.
Builds Rich renderables from `nntui.compare`; no textual widgets here."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from nntui.compare import MetricSummary, format_setting, settings_diff, summarize
from nntui.metrics import metric
from nntui.tui.formatting import DASH, fmt_metric

KEY_WIDTH = 18  # the settings' dotted keys are not cut shorter than this
VALUE_WIDTH = 10  # a setting's value is cut (…) beyond this: the pane sits beside the charts
NOTHING_SELECTED = "space selects runs: their curves, the settings that differ and a summary of each show here"


def diff_table(settings: Mapping[str, Mapping[str, Any]]) -> RenderableType:
    """The settings (run name -> dotted keys) that differ between the runs, one column per run."""
    diff = settings_diff(settings)
    if len(settings) < 2:
        return Text("settings: select another run to compare with", style="dim")
    if not diff:
        return Text("settings: the same in all selected runs", style="dim")
    table = Table(title="settings that differ", title_justify="left", box=None, header_style="bold",
                  padding=(0, 1), pad_edge=False)
    table.add_column("setting", style="bold", no_wrap=True, min_width=min(KEY_WIDTH, max(map(len, diff))))
    for number in range(1, len(settings) + 1):  # run names are too long for column headers: numbered
        table.add_column(f"#{number}", no_wrap=True, overflow="ellipsis", max_width=VALUE_WIDTH)
    for key, values in diff.items():
        table.add_row(key, *(format_setting(values[name]) for name in settings))
    key = Text("  ".join(f"#{number} {name}" for number, name in enumerate(settings, start=1)), style="dim")
    return Group(table, key)


def summary_table(name: str, summaries: Sequence[MetricSummary]) -> RenderableType:
    """One run's metrics: best (and its epoch), final, min and max."""
    if not summaries:
        return Text(f"{name}: no epoch yet", style="dim")
    table = Table(title=name, title_justify="left", box=None, header_style="bold", padding=(0, 1),
                  pad_edge=False)
    for column in ("metric", "best", "@epoch", "final", "min", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=True)
    for item in summaries:
        values = (item.best, item.final, item.low, item.high)
        best, final, low, high = (fmt_metric(item.metric, value) for value in values)
        epoch = DASH if item.best_epoch is None else str(item.best_epoch)
        table.add_row(metric(item.metric).label, best, epoch, final, low, high)
    return table


def diff_and_summary(settings: Mapping[str, Mapping[str, Any]],
                     runs: Sequence[tuple[str, str, Sequence[Mapping[str, Any]]]]) -> RenderableType:
    """The whole pane: the settings diff of the selected runs, then (run name, task, epoch
    records) of each summarised, in selection order."""
    if not runs:
        return Text(NOTHING_SELECTED, style="dim")
    parts: list[RenderableType] = [diff_table(settings)]
    for name, task, epochs in runs:
        parts.extend((Text(""), summary_table(name, summarize(epochs, task))))
    return Group(*parts)
