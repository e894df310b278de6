"""Comparing runs: the settings that differ between them and a summary of each one's metrics.
Pure Python, no torch: the runs screen's diff pane and columns are made from these."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from nntui.metrics import better_mode, keys
from nntui.records import as_float
from nntui.runs import config_table_or_empty

# Keys of config.toml that describe a preset rather than set anything: the preset column names it.
NOT_SETTINGS = ("name", "description")
MISSING = "-"  # how a setting that a run's config does not have is shown


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested table as dotted keys (`optim.lr`); lists stay values (`model.hidden`)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def read_settings(run_dir: Path) -> dict[str, Any]:
    """A run's config.toml as dotted keys ({} when it cannot be read: its columns show MISSING)."""
    table = config_table_or_empty(run_dir)
    return {key: value for key, value in flatten(table).items() if key not in NOT_SETTINGS}


def differing_keys(settings: Sequence[Mapping[str, Any]]) -> list[str]:
    """The dotted keys whose values are not the same in all of `settings` (a key one of them
    lacks counts as differing), in the order they first appear. One run, or none: no keys."""
    if len(settings) < 2:
        return []
    ordered: dict[str, None] = {}
    for table in settings:
        ordered.update(dict.fromkeys(table))
    return [key for key in ordered if not _all_equal([table.get(key, MISSING) for table in settings])]


def _all_equal(values: list[Any]) -> bool:
    # 1 == 1.0 == True in Python: compare the types too, so `true` and `1` in TOML differ
    first = values[0]
    return all(type(value) is type(first) and value == first for value in values[1:])


def settings_diff(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """For runs' settings (run name -> dotted keys): differing key -> run name -> its value
    (MISSING where a run does not have the key)."""
    names = list(settings)
    return {key: {name: settings[name].get(key, MISSING) for name in names}
            for key in differing_keys([settings[name] for name in names])}


def format_setting(value: Any) -> str:
    """A setting as the diff and the columns show it: TOML-like (`true`, `[128, 64]`, `0.001`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_setting(item) for item in value) + "]"
    return str(value)


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one run over its epochs: the best (by the metric's mode; NaN never is), the
    epoch of the best, the final value (the last epoch's, NaN included), the minimum and maximum."""

    metric: str
    best: float | None
    best_epoch: int | None
    final: float | None
    low: float | None
    high: float | None


def latest_epochs(epochs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per epoch number, in epoch order: a resumed run's later record of an epoch
    replaces the earlier one. Records without an integer epoch are skipped."""
    by_epoch: dict[int, Mapping[str, Any]] = {}
    for record in epochs:
        epoch = record.get("epoch")
        if isinstance(epoch, int) and not isinstance(epoch, bool):
            by_epoch[epoch] = record
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def summarize(epochs: Sequence[Mapping[str, Any]], task: str | None = None) -> list[MetricSummary]:
    """The summary of each epoch metric of the task (all tasks' when None) that the records have,
    in the metric table's order. The learning rate is a setting, not a result: left out."""
    records = latest_epochs(epochs)
    summaries = []
    for metric in keys("epoch", task if task in ("classification", "regression") else None):
        if metric == "lr":
            continue
        values = [(record["epoch"], as_float(record.get(metric), None)) for record in records if metric in record]
        if values:
            summaries.append(_summary(metric, values))
    return summaries


def _summary(metric: str, values: list[tuple[int, float | None]]) -> MetricSummary:
    usable = [(epoch, value) for epoch, value in values if value is not None and not math.isnan(value)]
    final = values[-1][1]
    if not usable:
        return MetricSummary(metric, None, None, final, None, None)
    numbers = [value for _, value in usable]
    pick = max if better_mode(metric) == "max" else min
    best_epoch, best = pick(usable, key=lambda item: item[1])  # the first epoch of equal bests
    return MetricSummary(metric, best, best_epoch, final, min(numbers), max(numbers))
