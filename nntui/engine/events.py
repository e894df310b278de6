"""The trainer's only way out: small frozen dataclasses holding plain Python values.

`to_record` gives the `metrics.jsonl` form of CONTRACT.md; `from_record` reads it back, so
a monitor can replay a run directory and follow a live one through the very same types.
No torch here: readers of run directories must not pay for importing it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union


def _now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True)
class EarlyStopStatus:
    """Where early stopping stands after an epoch."""

    monitor: str
    best: float | None
    best_epoch: int | None
    wait: int
    patience: int
    mode: str = "min"
    restore_best: bool = False


@dataclass(frozen=True, slots=True)
class RunStarted:
    EVENT: ClassVar[str] = "start"
    preset: str
    device: str
    params: int
    train_size: int
    val_size: int
    test_size: int
    resumed_from: int | None
    task: str = "classification"
    epochs: int = 1
    steps_per_epoch: int = 1
    batch_size: int = 1
    optimizer: str = ""
    lr: float = 0.0
    run_name: str = ""
    pid: int = 0
    layers: tuple[str, ...] = ()
    early_stop: EarlyStopStatus | None = None
    time: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class StepLogged:
    EVENT: ClassVar[str] = "step"
    step: int
    epoch: int
    loss: float
    lr: float
    grad_norm: float
    samples_per_s: float
    time: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class GradNorms:
    EVENT: ClassVar[str] = "grad_norms"
    step: int
    norms: tuple[tuple[str, float], ...]
    time: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class EpochEnded:
    EVENT: ClassVar[str] = "epoch"
    epoch: int
    step: int
    train_loss: float
    val_loss: float | None
    lr: float
    train_acc: float | None = None
    val_acc: float | None = None
    val_mae: float | None = None
    val_r2: float | None = None
    early_stop: EarlyStopStatus | None = None
    epoch_s: float = 0.0  # wall seconds from the epoch's first step to its end (validation, pauses included)
    time: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ControlApplied:
    EVENT: ClassVar[str] = "control"
    step: int
    action: str  # pause, resume, stop, checkpoint, lr
    value: float | str | None
    source: str  # tui, ctl, signal, resume
    message: str = ""
    time: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class CheckpointSaved:
    EVENT: ClassVar[str] = "checkpoint"
    step: int
    epoch: int
    kind: str  # last, best
    path: str
    time: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class RunEnded:
    EVENT: ClassVar[str] = "end"
    status: str  # completed, early_stopped, stopped, diverged, failed
    epoch: int
    step: int
    best_epoch: int | None = None
    best: float | None = None
    test_loss: float | None = None
    test_acc: float | None = None
    test_mae: float | None = None
    test_r2: float | None = None
    wall_s: float = 0.0
    error: str | None = None
    reason: str = ""
    time: float = field(default_factory=_now)


Event = Union[RunStarted, StepLogged, GradNorms, EpochEnded, ControlApplied, CheckpointSaved, RunEnded]
EVENT_TYPES: dict[str, type] = {cls.EVENT: cls for cls in Event.__args__}  # type: ignore[attr-defined]

# Metric keys that only one task has: left out of a record rather than written as null.
_TASK_KEYS = {"train_acc", "val_acc", "val_mae", "val_r2", "test_acc", "test_mae", "test_r2"}


def to_record(event: Event) -> dict[str, Any]:
    """The JSON-ready `metrics.jsonl` record of an event."""
    record: dict[str, Any] = {"event": event.EVENT}
    for name in _field_names(type(event)):
        value = getattr(event, name)
        if value is None and name in _TASK_KEYS:
            continue
        if isinstance(value, EarlyStopStatus):
            value = dataclasses.asdict(value)
        elif name == "norms":
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        record[name] = value
    return record


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(item.name for item in dataclasses.fields(cls))


def from_record(record: dict[str, Any]) -> Event | None:
    """The event a record came from, or None for an unknown or malformed record."""
    cls = EVENT_TYPES.get(record.get("event", ""))
    if cls is None:
        return None
    names = {item.name for item in dataclasses.fields(cls)}
    kwargs = {key: value for key, value in record.items() if key in names}
    if isinstance(kwargs.get("early_stop"), dict):
        kwargs["early_stop"] = EarlyStopStatus(**kwargs["early_stop"])
    if cls is GradNorms and isinstance(kwargs.get("norms"), dict):
        kwargs["norms"] = tuple(kwargs["norms"].items())
    if cls is RunStarted and isinstance(kwargs.get("layers"), list):
        kwargs["layers"] = tuple(kwargs["layers"])
    try:
        return cls(**kwargs)
    except TypeError:
        return None
