"""The metrics nntui records and shows: one table, from which the schema's monitors, the console,
the monitor's series, the runs screen, export and early stopping's default mode are derived.

Pure Python, imported by torch-free modules (config, runs, the app's first frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Metric:
    """A number in the records: its record key, how the UI names it, the task that has it (None: both),
    which way is better, how a value is formatted (`value`, `percent`, `lr`, `rate`), and the records
    that have it (`epoch`, `step`, `end`)."""

    key: str
    label: str
    task: Optional[str]
    mode: str  # "min" or "max"
    format: str
    records: tuple[str, ...]


METRICS: tuple[Metric, ...] = (
    Metric("train_loss", "train loss", None, "min", "value", ("epoch",)),
    Metric("val_loss", "val loss", None, "min", "value", ("epoch",)),
    Metric("train_acc", "train acc", "classification", "max", "percent", ("epoch",)),
    Metric("val_acc", "val acc", "classification", "max", "percent", ("epoch",)),
    Metric("val_mae", "val MAE", "regression", "min", "value", ("epoch",)),
    Metric("val_r2", "val R²", "regression", "max", "value", ("epoch",)),
    Metric("loss", "step loss", None, "min", "value", ("step",)),
    Metric("lr", "learn rate", None, "min", "lr", ("epoch", "step")),
    Metric("grad_norm", "grad norm", None, "min", "value", ("step",)),
    Metric("samples_per_s", "samples/s", None, "max", "rate", ("step",)),
    Metric("test_loss", "test loss", None, "min", "value", ("end",)),
    Metric("test_acc", "test acc", "classification", "max", "percent", ("end",)),
    Metric("test_mae", "test MAE", "regression", "min", "value", ("end",)),
    Metric("test_r2", "test R²", "regression", "max", "value", ("end",)),
)
BY_KEY: dict[str, Metric] = {metric.key: metric for metric in METRICS}

# What early stopping and the plateau schedule may watch: the epoch's losses and task metrics.
MONITORS: tuple[str, ...] = ("val_loss", "val_acc", "val_mae", "val_r2", "train_loss")


def metric(key: str) -> Metric:
    """The table's entry for `key`; an unknown key (a user's own metric) is a number where lower is better."""
    return BY_KEY.get(key) or Metric(key, key.replace("_", " "), None, "min", "value", ("epoch",))


def better_mode(key: str) -> str:
    """`max` for accuracy and R², `min` for everything else (Keras's `auto` mode)."""
    return metric(key).mode


def keys(record: str, task: Optional[str] = None) -> tuple[str, ...]:
    """The keys of a kind of record, in table order; with `task`, only the ones that task has."""
    return tuple(m.key for m in METRICS if record in m.records and (task is None or m.task in (None, task)))


def task_keys(record: str = "epoch") -> tuple[str, ...]:
    """The keys only one task has (accuracy, or MAE and R²): left out of records of the other."""
    return tuple(m.key for m in METRICS if record in m.records and m.task is not None)
