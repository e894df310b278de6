"""Where each step sits in epochs and in wall time, and the control events along the way.
Pure Python (no textual).

The charts' x-axis can be steps, epochs or wall time; the metric histories are keyed by the
global step, so the timeline maps a step to the others: epoch boundaries (the last step of each
epoch, from the epoch records) and the record time of the logged steps (downsampled like any
history). Markers are the control events a chart draws as vertical lines.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

from nntui.tui.history import Series

MARKER_KINDS = ("pause", "resume", "lr", "restore")


@dataclass(frozen=True, slots=True)
class Marker:
    """A control event at `step` (and record `time`): pause, resume, lr (changed) or restore
    (weights restored after a divergence)."""

    step: int
    time: float
    kind: str


class Timeline:
    """Epoch boundaries, step times and control markers of one run, bounded."""

    def __init__(self, history: int = 512, markers: int = 256) -> None:
        self._boundary_steps: list[int] = []  # the last step of epoch i + 1, in order
        self._boundary_epochs: list[int] = []
        self.step_times = Series(history)  # x: step, y: record time
        self.markers: deque[Marker] = deque(maxlen=markers)
        self.steps_per_epoch = 1
        self.start_time: float | None = None
        self.version = 0  # counts changes of epoch boundaries and markers

    def started(self, time: float, steps_per_epoch: int) -> None:
        if self.start_time is None and math.isfinite(time):
            self.start_time = time
        self.steps_per_epoch = max(1, steps_per_epoch)

    def add_step(self, step: int, time: float) -> None:
        """A logged step's record time (its own version: only time axes depend on it)."""
        if math.isfinite(time):
            self.step_times.append(step, time)

    def add_epoch(self, epoch: int, step: int, time: float) -> None:
        """Epoch `epoch` ended at `step` (a repeated or older epoch replaces what follows it)."""
        while self._boundary_epochs and self._boundary_epochs[-1] >= epoch:
            self._boundary_epochs.pop()
            self._boundary_steps.pop()
        self._boundary_epochs.append(epoch)
        self._boundary_steps.append(step)
        self.add_step(step, time)
        self.version += 1

    def add_marker(self, step: int, time: float, kind: str) -> None:
        self.markers.append(Marker(step, time, kind))
        self.version += 1

    def drop_after(self, step: int) -> None:
        """Forget what came after `step` (a resumed run trains those steps again)."""
        while self._boundary_steps and self._boundary_steps[-1] > step:
            self._boundary_steps.pop()
            self._boundary_epochs.pop()
        self.step_times.drop_after(step)
        kept = [marker for marker in self.markers if marker.step <= step]
        self.markers = deque(kept, maxlen=self.markers.maxlen)
        self.version += 1

    # ------------------------------------------------------------------ mapping

    def epoch_step(self, epoch: int) -> int | None:
        """The last step of `epoch`, if its record came."""
        index = bisect.bisect_left(self._boundary_epochs, epoch)
        if index < len(self._boundary_epochs) and self._boundary_epochs[index] == epoch:
            return self._boundary_steps[index]
        return None

    def step_to_epoch(self, step: float) -> float:
        """The (fractional) epoch of a step: epoch e ends at e, its steps lie in (e - 1, e]."""
        steps, epochs = self._boundary_steps, self._boundary_epochs
        index = bisect.bisect_left(steps, step)
        if index < len(steps):
            high_step, high_epoch = steps[index], epochs[index]
            low_step, low_epoch = (steps[index - 1], epochs[index - 1]) if index else (0, high_epoch - 1)
            span = high_step - low_step
            return high_epoch - (high_step - step) / span if span > 0 else float(high_epoch)
        last_step, last_epoch = (steps[-1], epochs[-1]) if steps else (0, 0)
        return last_epoch + (step - last_step) / self.steps_per_epoch

    def mapper(self, mode: str) -> Callable[[float], float]:
        """A function from a step to the x of axis `mode`: step, epoch or time (seconds since
        the start). The time lookup is built once per call: map many steps with one mapper."""
        if mode == "epoch":
            return self.step_to_epoch
        if mode == "time":
            return self._time_mapper()
        return float

    def _time_mapper(self) -> Callable[[float], float]:
        xs, ys = self.step_times.points()
        if not xs:
            return lambda step: 0.0
        origin = self.start_time if self.start_time is not None else ys[0]

        def step_to_time(step: float) -> float:
            index = bisect.bisect_left(xs, step)
            if index >= len(xs):
                return ys[-1] - origin
            if index == 0 or xs[index] == step:
                return ys[index] - origin
            fraction = (step - xs[index - 1]) / (xs[index] - xs[index - 1])
            return ys[index - 1] + fraction * (ys[index] - ys[index - 1]) - origin
        return step_to_time
