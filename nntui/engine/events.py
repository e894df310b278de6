"""The trainer's only way out: small frozen dataclasses holding plain Python values.

`to_record` gives the `metrics.jsonl` form of CONTRACT.md; `from_record` reads it back, so
a monitor can replay a run directory and follow a live one through the very same types.
No torch here: readers of run directories must not pay for importing it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Union

from nntui.records import as_float


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
class ForkSource:
    """Where a forked run started: the parent run's name and the step of its checkpoint."""

    run: str
    step: int


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
    forked_from: ForkSource | None = None  # null for a run that did not start from another's checkpoint
    replayed_from: str | None = None  # the run whose recorded commands this one replays (`--replay`)
    optim_impl: str = ""  # the optimizer's implementation optim.impl resolved to: fused, foreach, for_loop
    channels_last: bool = False  # whether the model and its inputs are in channels-last memory format
    # where the training images were augmented: device (whole batches), workers (per sample); omitted: not at all
    augment_on: str | None = None
    own_loop: bool | None = None  # True: a loop of the user's, watched by nntui.Monitor (not resumable by nntui)
    time: float = field(default_factory=_now)

    @property
    def sizes_known(self) -> bool:
        """Whether the splits' sizes are known (a loop watched by nntui.Monitor may not say; all 0 then)."""
        return bool(self.train_size or self.val_size or self.test_size)


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    """The loop turns to `phase` at `step`: `compiling` (torch.compile ahead of the first step),
    then `training` again, with the seconds the compiling took."""

    EVENT: ClassVar[str] = "phase"
    phase: str
    step: int
    compile_s: float | None = None  # on the record that ends a compiling phase
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
    # parameter name -> ||update|| / ||weights before it|| of the logged step (NaN for weights that
    # were 0); empty when not measured at this step (engine/gradients.py: at most ~0.2% of the time)
    update_ratios: tuple[tuple[str, float], ...] = ()
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
    epoch_s: float = 0.0  # seconds from the epoch's first step to its end: validation in, pauses out
    paused_s: float = 0.0  # seconds the run was paused during the epoch
    time: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ControlApplied:
    EVENT: ClassVar[str] = "control"
    step: int
    action: str  # pause, resume, stop, checkpoint, lr
    value: float | str | None
    source: str  # tui, ctl, signal, resume, divergence
    message: str = ""
    restored_step: int | None = None  # divergence: the step whose weights were restored (counters go on)
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
    wall_s: float = 0.0  # seconds the run trained, over all its sessions: pauses left out
    error: str | None = None
    reason: str = ""
    paused_s: float = 0.0  # seconds the run was paused, over all its sessions
    time: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class SystemSampled:
    """The training process's load, sampled every few seconds (`engine/system.py`)."""

    EVENT: ClassVar[str] = "system"
    cpu_percent: float  # of one core: above 100 with several busy threads
    rss_bytes: int
    gpu_util: float | None = None  # percent, from NVML (the optional nvidia-ml-py)
    gpu_mem_allocated: int | None = None
    gpu_mem_reserved: int | None = None
    gpu_mem_peak: int | None = None  # the most allocated at once since the process started
    step: int = 0
    time: float = field(default_factory=_now)


Event = Union[RunStarted, StepLogged, GradNorms, EpochEnded, ControlApplied, CheckpointSaved, RunEnded,
              SystemSampled, PhaseChanged]
EVENT_TYPES: dict[str, type] = {cls.EVENT: cls for cls in Event.__args__}  # type: ignore[attr-defined]

# Keys that only some runs have (one task, a run on CUDA, a divergence, augmentation, the user's own loop):
# left out of a record rather than written as null.
_OMITTED_WHEN_NONE = {"train_acc", "val_acc", "val_mae", "val_r2", "test_acc", "test_mae", "test_r2",
                      "gpu_util", "gpu_mem_allocated", "gpu_mem_reserved", "gpu_mem_peak", "restored_step", "compile_s",
                      "own_loop", "augment_on"}
_NAMED_VALUES = {"norms", "update_ratios"}  # (name, value) pairs, written as a JSON object


def to_record(event: Event) -> dict[str, Any]:
    """The JSON-ready `metrics.jsonl` record of an event."""
    record: dict[str, Any] = {"event": event.EVENT}
    for name in _field_names(type(event)):
        value = getattr(event, name)
        if value is None and name in _OMITTED_WHEN_NONE or value == () and name == "update_ratios":
            continue
        if isinstance(value, (EarlyStopStatus, ForkSource)):
            value = dataclasses.asdict(value)
        elif name in _NAMED_VALUES:
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        record[name] = value
    return record


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(item.name for item in dataclasses.fields(cls))


def from_record(record: Any) -> Event | None:
    """The event a record came from, or None for an unknown or unusable record.

    Each field is read by its annotation (`_decoder`): a missing or unusable required field
    makes the record unusable; a missing or unusable optional one takes its default (`time`:
    NaN, a record without a time has none). Extra keys are ignored.
    """
    if not isinstance(record, dict):
        return None
    cls = EVENT_TYPES.get(record.get("event")) if isinstance(record.get("event"), str) else None
    return None if cls is None else _build(cls, record)


class _Unusable(Exception):
    """A value that does not fit its field's annotation."""


def _build(cls: type, record: dict[str, Any]) -> Any:
    """An instance of `cls` from the fields of `record`, or None if a required one is unusable."""
    kwargs = {}
    for name, decode, required in _decoders(cls):
        try:
            kwargs[name] = decode(record[name])
        except (KeyError, _Unusable):
            if required:
                return None
            if name == "time":  # not the reader's clock: a replay must not depend on when it runs
                kwargs[name] = math.nan
    return cls(**kwargs)


@functools.cache
def _decoders(cls: type) -> tuple[tuple[str, Callable[[Any], Any], bool], ...]:
    """(name, decoder, required) per field of an event class."""
    hints = typing.get_type_hints(cls)
    return tuple((item.name, _decoder(hints[item.name]),
                  item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING)
                 for item in dataclasses.fields(cls))


def _decoder(annotation: Any) -> Callable[[Any], Any]:
    """A function turning a JSON value into a value of `annotation`, or raising `_Unusable`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return _union_decoder(args)
    if origin is tuple:
        return _tuple_decoder(args)
    if dataclasses.is_dataclass(annotation):
        return functools.partial(_nested, annotation)
    return _SCALARS[annotation]


def _union_decoder(args: tuple[Any, ...]) -> Callable[[Any], Any]:
    """`X | None`: null is None (not NaN); otherwise the first alternative that fits."""
    options = [_decoder(arg) for arg in args if arg is not type(None)]
    optional = type(None) in args

    def decode(value: Any) -> Any:
        if value is None and optional:
            return None
        for option in options:
            try:
                return option(value)
            except _Unusable:
                pass
        raise _Unusable
    return decode


def _tuple_decoder(args: tuple[Any, ...]) -> Callable[[Any], Any]:
    """`tuple[X, ...]` from a list (items that do not fit are dropped; `norms` and
    `update_ratios` come as a dict: its items); `tuple[X, Y]` from a pair."""
    if len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0])

        def decode_items(value: Any) -> tuple[Any, ...]:
            if isinstance(value, dict):
                value = list(value.items())
            if not isinstance(value, (list, tuple)):
                raise _Unusable
            return tuple(_fitting(item, value))
        return decode_items
    items = [_decoder(arg) for arg in args]

    def decode_fixed(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise _Unusable
        return tuple(decode(part) for decode, part in zip(items, value))
    return decode_fixed


def _fitting(decode: Callable[[Any], Any], values: list[Any]) -> Iterator[Any]:
    for value in values:
        try:
            yield decode(value)
        except _Unusable:
            pass


def _nested(cls: type, value: Any) -> Any:
    built = _build(cls, value) if isinstance(value, dict) else None
    if built is None:
        raise _Unusable
    return built


_INT_LIMIT = 2**63  # no step, epoch or count comes near; beyond it, arithmetic with floats overflows


def _int(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():  # 3.0 from another writer
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and -_INT_LIMIT < value < _INT_LIMIT:
        return value
    raise _Unusable


def _float(value: Any) -> float:
    """A number, "NaN"/"Infinity"/"-Infinity", or null (NaN: older files wrote that)."""
    result = as_float(value)
    if result is None:
        raise _Unusable
    return result


def _of_type(kind: type) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if type(value) is not kind:
            raise _Unusable
        return value
    return decode


_SCALARS: dict[Any, Callable[[Any], Any]] = {int: _int, float: _float, str: _of_type(str), bool: _of_type(bool)}
