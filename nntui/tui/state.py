"""The monitor's state model: events in, displayed values out. Pure Python (no textual).

`MonitorState.apply` folds engine events (decoded from `metrics.jsonl`) into bounded
histories and the few values the monitor shows. Every time shown is computed from record
times, never from the wall clock, so a replay renders the same way every time.

Every history is keyed by the global step. A run resumed from `last.pt` at step S trains the
steps after S again, so a `start` record with `resumed_from=S` drops what came after S.
The lines of text made from single events (log lines, results, early stopping) are `state_text`'s.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from nntui import metrics
from nntui.engine.events import (
    CheckpointSaved,
    ControlApplied,
    EarlyStopStatus,
    EpochEnded,
    Event,
    GradNorms,
    PhaseChanged,
    RunEnded,
    RunStarted,
    StepLogged,
    SystemSampled,
)
from nntui.tui.formatting import fmt_duration, fmt_lr, fmt_metric
from nntui.tui.history import Series
from nntui.tui.layers import LayerTable
from nntui.tui.state_text import (
    END_STATUS,
    describe_control,
    early_stop_lines,
    epoch_line,
    results_line,
    started_line,
)
from nntui.tui.timeline import Timeline

SIGNAL_CODES = {129: "SIGHUP", 130: "SIGINT", 143: "SIGTERM"}
LIVE_STATUSES = ("starting", "resuming", "compiling", "running", "paused", "diverged (paused)", "stopping")
# one point per epoch record: the epoch's losses and task metrics (the LR is drawn per step)
EPOCH_KEYS = tuple(key for key in metrics.keys("epoch") if key != "lr")
# "step_loss" is the step records' `loss`, named apart from the epochs' losses
SERIES_KEYS = ("step_loss", *EPOCH_KEYS, "lr", "samples_per_s", "grad_norm")
MARKER_OF_CONTROL = {"pause": "pause", "resume": "resume", "lr": "lr", "restore": "restore"}


@dataclass(frozen=True)
class LogLine:
    """A line of the monitor's log: `kind` picks its style (info, epoch, control, alert, result)."""

    kind: str
    text: str


class MonitorState:
    """Everything the monitor displays, built from events only."""

    def __init__(self, history: int = 512, log_lines: int = 2000, layer_recent: int = 32) -> None:
        self.started: RunStarted | None = None
        self.ended: RunEnded | None = None
        self.status = "starting"
        self.alert = ""
        self.step = 0
        self.epoch = 0
        self.lr: float | None = None
        self.series = {key: Series(history) for key in SERIES_KEYS}
        self.layers = LayerTable(recent=layer_recent)
        self.early_stop: EarlyStopStatus | None = None
        self.last_epoch: EpochEnded | None = None
        self.system: SystemSampled | None = None  # the latest sample of the training process
        self.timeline = Timeline(history)  # step -> epoch and wall time; control markers
        self.log: deque[LogLine] = deque(maxlen=log_lines)
        self.log_total = 0
        self.version = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self._active_s = 0.0
        self._active_steps = 0
        self._prev_step: tuple[int, float] | None = None
        self.awaited_pid: int | None = None

    def await_resume(self, pid: int) -> None:
        """The records already on disk are history: the run is `resuming` until process `pid`
        writes its `start` record (the app has just launched it)."""
        self.version += 1
        self.awaited_pid = pid
        self.status = "resuming"

    # ------------------------------------------------------------------ events in

    def apply_all(self, events: Iterable[Event | None]) -> None:
        for event in events:
            if event is not None:
                self.apply(event)

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        handler = self._handler(event)
        if handler is None:
            return
        self.version += 1
        if math.isfinite(event.time):  # a record without a usable time reads as NaN: it moves no clock
            if self.first_time is None:
                self.first_time = event.time
            self.last_time = max(self.last_time or event.time, event.time)
        handler(event)
        if self.awaited_pid is not None:
            self._hold_until_resumed(event)

    def _handler(self, event: Event) -> Callable[[Any], None] | None:
        match event:
            case StepLogged():
                return self._on_StepLogged
            case GradNorms():
                return self._on_GradNorms
            case EpochEnded():
                return self._on_EpochEnded
            case ControlApplied():
                return self._on_ControlApplied
            case SystemSampled():
                return self._on_SystemSampled
            case CheckpointSaved():
                return self._on_CheckpointSaved
            case RunStarted():
                return self._on_RunStarted
            case RunEnded():
                return self._on_RunEnded
            case PhaseChanged():
                return self._on_PhaseChanged
        return None

    def _hold_until_resumed(self, event: Event) -> None:
        """Old records (an old `end` too) must not make the run look over while it restarts."""
        if isinstance(event, RunStarted) and event.pid == self.awaited_pid:
            self.awaited_pid = None
        else:
            self.status, self.ended, self.alert = "resuming", None, ""

    def _on_RunStarted(self, event: RunStarted) -> None:
        self.started, self.ended, self.status, self.alert = event, None, "running", ""
        self.lr = event.lr or self.lr
        self.early_stop = event.early_stop or self.early_stop
        self._prev_step = None
        self.timeline.started(event.time, event.steps_per_epoch)
        self.layers.register(event.layers)
        if event.resumed_from is not None:
            again = self._drop_after(event.resumed_from, event.steps_per_epoch)
            self._log("info", f"resumed from step {event.resumed_from:,} on {event.device}{again}")
            return
        self._log("info", started_line(event))

    def _drop_after(self, step: int, steps_per_epoch: int) -> str:
        """Drop the history after `step` (it is trained again); what that means for the log."""
        dropped = {key: self.series[key].drop_after(step) for key in SERIES_KEYS}
        self.layers.drop_after(step)
        epochs_dropped = max(dropped[key] for key in EPOCH_KEYS)
        self.timeline.drop_after(step)
        self.step = step
        self.epoch = -(-step // max(1, steps_per_epoch))  # the epoch that step `step` belongs to
        if self.last_epoch is not None and self.last_epoch.step > step:
            self.last_epoch = None
        if not epochs_dropped:
            return ""
        first = self.epoch + 1 if step % max(1, steps_per_epoch) == 0 else self.epoch
        return f"; epochs from {first} on are trained again (their earlier records are dropped)"

    def _on_StepLogged(self, event: StepLogged) -> None:
        self.step, self.epoch, self.lr = event.step, event.epoch, event.lr
        for key, value in (("step_loss", event.loss), ("lr", event.lr),
                           ("samples_per_s", event.samples_per_s), ("grad_norm", event.grad_norm)):
            self.series[key].append(event.step, value)
        self.timeline.add_step(event.step, event.time)
        if self._prev_step is not None and event.step > self._prev_step[0]:
            self._active_s += max(0.0, event.time - self._prev_step[1])
            self._active_steps += event.step - self._prev_step[0]
        self._prev_step = (event.step, event.time)

    def _on_GradNorms(self, event: GradNorms) -> None:
        self.layers.add(event)

    def _on_EpochEnded(self, event: EpochEnded) -> None:
        self.last_epoch, self.epoch, self.lr = event, event.epoch, event.lr
        self.step = max(self.step, event.step)
        for key in EPOCH_KEYS:
            value = getattr(event, key)
            if value is not None:
                self.series[key].append(event.step, value)
        self.timeline.add_epoch(event.epoch, event.step, event.time)
        if event.early_stop is not None:
            self.early_stop = event.early_stop
        self._log("epoch", epoch_line(event, self.started.epochs if self.started else 0))

    def _on_ControlApplied(self, event: ControlApplied) -> None:
        self.step = max(self.step, event.step)
        kind = MARKER_OF_CONTROL.get("restore" if event.source == "divergence" else event.action)
        if kind is not None:
            self.timeline.add_marker(event.step, event.time, kind)
        if event.action == "pause" and event.source == "divergence":
            self.status = "diverged (paused)"
            self.alert = event.message or f"loss diverged at step {event.step}; paused"
            self._prev_step = None
            self._log("alert", self.alert)
            return
        if event.action == "pause":
            self.status, self._prev_step = "paused", None
        elif event.action == "resume":
            self.status, self.alert, self._prev_step = "running", "", None
        elif event.action == "stop":
            self.status = "stopping"
        elif event.action == "lr" and isinstance(event.value, (int, float)):
            self.lr = float(event.value)
        self._log("control", describe_control(event))

    def _on_PhaseChanged(self, event: PhaseChanged) -> None:
        """torch.compile's compiling ahead of the first step shows as a status of its own."""
        if event.phase == "compiling":
            self.status = "compiling"
            self._log("info", "compiling the model (torch.compile)")
        elif self.status == "compiling":
            self.status = "running"
        if event.compile_s is not None:
            self._log("info", f"compiled in {fmt_duration(event.compile_s)}")

    def _on_SystemSampled(self, event: SystemSampled) -> None:
        self.system = event

    def _on_CheckpointSaved(self, event: CheckpointSaved) -> None:
        self.version -= 1  # nothing shown changes

    def _on_RunEnded(self, event: RunEnded) -> None:
        self.ended = event
        self.status = END_STATUS.get(event.status, event.status)
        self.step = max(self.step, event.step)
        if event.status in ("failed", "diverged"):
            self.alert = event.error or event.reason or f"the run {event.status}"
        self._log("result", self.results_text())
        if event.error:
            self._log("alert", event.error)

    # ------------------------------------------------------------------ process news

    def process_exited(self, code: int, error: str = "") -> None:
        """The launched training process exited with `code`; `error` is its last stderr line."""
        self.version += 1
        self.awaited_pid = None
        if self.ended is not None:
            return
        signal_name = SIGNAL_CODES.get(code)
        if signal_name:
            self.status = "stopped"
            self.alert = f"the run was stopped by {signal_name} (exit code {code})"
        else:
            self.status = "failed"
            before = "before it started" if self.started is None else "without an end record"
            self.alert = error or f"the run exited with code {code} {before}"
        self._log("alert", self.alert)

    def process_vanished(self) -> None:
        """The process of an attached run is gone and it never wrote its `end` record."""
        if self.ended is not None or self.status == "crashed":
            return
        self.version += 1
        self.status = "crashed"
        self.alert = "the training process is gone without an end record (crashed or killed)"
        self._log("alert", self.alert)

    def note(self, text: str, kind: str = "info") -> None:
        """A line for the log from the monitor itself (acks, errors)."""
        self.version += 1
        self._log(kind, text)

    def _log(self, kind: str, text: str) -> None:
        self.log.append(LogLine(kind, text))
        self.log_total += 1

    def new_log_lines(self, seen: int) -> list[LogLine]:
        """Log lines added after the first `seen` ones (those still kept)."""
        missing = self.log_total - seen
        if missing <= 0:
            return []
        return list(self.log)[-min(missing, len(self.log)):]

    # ------------------------------------------------------------------ values out

    @property
    def live(self) -> bool:
        """Whether the run may still change (it has not ended, failed or vanished)."""
        return self.status in LIVE_STATUSES

    @property
    def launching(self) -> bool:
        """Whether the process the app launched has not written its `start` record yet."""
        return self.started is None or self.awaited_pid is not None

    @property
    def paused(self) -> bool:
        return self.status in ("paused", "diverged (paused)")

    @property
    def task(self) -> str:
        return self.started.task if self.started else "classification"

    def latest(self, key: str) -> float | None:
        """The latest value of series `key`; for the LR, the one set now (a command's, before a
        step has trained at it)."""
        return self.lr if key == "lr" and self.lr is not None else self.series[key].latest

    def latest_text(self, key: str) -> str:
        """The latest value of series `key`, formatted as its metric is."""
        return fmt_metric("loss" if key == "step_loss" else key, self.latest(key))

    @property
    def total_steps(self) -> int:
        if self.started is None:
            return 0
        return self.started.epochs * self.started.steps_per_epoch

    def progress(self) -> float:
        """Fraction of the planned steps done, in [0, 1]."""
        total = self.total_steps
        return min(1.0, self.step / total) if total else 0.0

    def elapsed_s(self) -> float | None:
        """Wall time of the run so far, from record times."""
        if self.ended is not None and self.ended.wall_s:
            return self.ended.wall_s
        if self.started is None or self.last_time is None:
            return None
        return max(0.0, self.last_time - self.started.time)

    def eta_s(self) -> float | None:
        """Time left at the pace of the running (not paused) stretches so far, or None."""
        if not self.live or self.paused or self.launching or not self._active_steps:
            return None
        remaining = max(0, self.total_steps - self.step)
        return remaining * self._active_s / self._active_steps

    def progress_text(self) -> str:
        """`epoch 16/60 · step 4,360/17,280 · 5.6s, ETA 17s` (wall time so far, then time left)."""
        if self.started is None:
            return "loading data…"
        epochs = self.started.epochs
        text = f"epoch {self.epoch}/{epochs} · step {self.step:,}/{self.total_steps:,}"
        text += f" · {fmt_duration(self.elapsed_s())}"
        eta = self.eta_s()
        if eta is not None:
            text += f", ETA {fmt_duration(eta)}"
        return text

    def title_text(self) -> str:
        if self.started is None:
            return "nntui"
        started = self.started
        return f"{started.preset} · {started.device} · {started.optimizer or '?'} · lr {fmt_lr(self.lr)}"

    def early_stop_lines(self) -> list[str]:
        """The early-stopping pane: monitor and best, then wait/patience and restore."""
        return early_stop_lines(self.early_stop, self.started is not None)

    def results_text(self) -> str:
        """The test results line of an ended run ('' while it goes on)."""
        return results_line(self.ended) if self.ended is not None else ""
