"""Per-layer gradient norms for the monitor's gradient pane. Pure Python: no textual, no torch.

`LayerTable` folds `GradNorms` events into, per parameter: the latest norm and its flag, the
latest update-to-weight ratio, a few recent norms (the bar's shaded range and the flag's own
baseline) and a heatmap history. The heatmap history is bucketed in time like
`history.Series`: every bucket holds `stride` consecutive events, all layers share the
buckets (so columns line up), and when `capacity` buckets are full adjacent pairs merge and the
stride doubles, so memory stays flat however long the run. A cell keeps the mean of log10 of
the norms it summarises (a geometric mean: the heatmap's colour is a log norm).

Flags are relative, never absolute: a regression whose gradients are 1e3 at every step is
healthy. A layer is flagged when its norm jumps far above its own recent median, is orders of
magnitude off the other layers (below them for several logs in a row), is exactly zero (no
gradient reaches it) or is not finite.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator

from nntui.engine.events import GradNorms

VANISHING, EXPLODING, NON_FINITE = "vanishing", "exploding", "non-finite"
SPIKE = 10.0  # this many times the layer's own recent median is a jump (healthy MSE runs: < 6x)
OUTLIER = 1e3  # this many times off the median of the other layers
MIN_OWN = 5  # norms needed before a layer is judged against its own history
MIN_OTHERS = 2  # other layers needed before a layer is judged against them
MIN_DECADES = 3
EXP_LIMIT = 12  # the scale never goes beyond 1e-12..1e12


@dataclass(frozen=True, slots=True)
class Cell:
    """One heatmap cell: the mean log10 norm of its positive norms (None if it has none), and
    whether it also saw zero or non-finite norms. An empty cell (the layer was not logged
    then) has `empty` set."""

    log_norm: float | None
    zero: bool = False
    bad: bool = False

    @property
    def empty(self) -> bool:
        return self.log_norm is None and not self.zero and not self.bad


EMPTY = Cell(None)


class LayerRow:
    """One parameter: latest norm, flag, update ratio, recent norms and heatmap sums."""

    __slots__ = ("name", "latest", "ratio", "ratio_step", "flag", "reason", "recent", "sums", "counts", "zeros", "bads")

    def __init__(self, name: str, recent: int, buckets: int) -> None:
        self.name = name
        self.latest = math.nan
        self.ratio: float | None = None  # ||update|| / ||weight|| at the latest log, if the run sends it
        self.ratio_step = 0
        self.flag = ""
        self.reason = ""  # why it is flagged, for the log or a tooltip
        self.recent: deque[tuple[int, float]] = deque(maxlen=recent)  # (step, norm)
        self.sums = [0.0] * buckets  # per heatmap bucket: sum of log10 of the positive finite norms
        self.counts = [0] * buckets
        self.zeros = [0] * buckets
        self.bads = [0] * buckets

    def add(self, bucket: int, step: int, norm: float) -> None:
        self.latest = norm
        self.recent.append((step, norm))
        if not math.isfinite(norm):
            self.bads[bucket] += 1
        elif norm <= 0:
            self.zeros[bucket] += 1
        else:
            self.sums[bucket] += math.log10(norm)
            self.counts[bucket] += 1

    def spread(self) -> tuple[float, float]:
        """The lowest and highest finite recent norm (NaN, NaN if there is none)."""
        finite = [norm for _, norm in self.recent if math.isfinite(norm)]
        return (min(finite), max(finite)) if finite else (math.nan, math.nan)

    def cell(self, first: int, stop: int) -> Cell:
        """Buckets first..stop-1 as one cell."""
        if stop == first + 1:  # the common case, without slices
            count = self.counts[first]
            return Cell(self.sums[first] / count if count else None, self.zeros[first] > 0, self.bads[first] > 0)
        count, zero, bad = sum(self.counts[first:stop]), any(self.zeros[first:stop]), any(self.bads[first:stop])
        return Cell(sum(self.sums[first:stop]) / count if count else None, zero, bad)

    def halve(self) -> None:
        for values in (self.sums, self.counts, self.zeros, self.bads):
            values[:] = [sum(values[i:i + 2]) for i in range(0, len(values), 2)]

    def truncate(self, buckets: int) -> None:
        for values in (self.sums, self.counts, self.zeros, self.bads):
            del values[buckets:]


class LayerTable:
    """The gradient pane's data: rows in the model's parameter order, and a version counter
    that changes whenever anything shown changes."""

    def __init__(self, capacity: int = 128, recent: int = 32) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self.capacity = capacity
        self.recent = recent
        self.stride = 1
        self.version = 0
        self._rows: dict[str, LayerRow] = {}
        self._ends: list[int] = []  # per bucket: the step of its latest event
        self._events: list[int] = []  # per bucket: how many events it summarises
        self._first_step: int | None = None
        self._low = self._high = math.nan  # log10 of the lowest and highest positive norm seen
        self._scale: tuple[int, int] | None = None

    # ------------------------------------------------------------------ events in

    def register(self, names: Iterable[str]) -> None:
        """Rows for these parameters (a run's start record names them), in this order."""
        for name in names:
            if name not in self._rows:
                self._rows[name] = LayerRow(name, self.recent, len(self._ends))
                self.version += 1

    def add(self, event: GradNorms) -> None:
        """Fold one `grad_norms` record in: norms, update ratios (if sent), flags."""
        bucket = self._bucket_for(event.step)
        for name, norm in event.norms:
            self._row(name).add(bucket, event.step, float(norm))
            self._widen(float(norm))
        for name, ratio in getattr(event, "update_ratios", ()) or ():
            row = self._row(name)
            row.ratio, row.ratio_step = float(ratio), event.step
        self._flag_all({name for name, _ in event.norms})
        self._scale = _union(self._scale, _decades(self._low, self._high))
        self.version += 1

    def _row(self, name: str) -> LayerRow:
        row = self._rows.get(name)
        if row is None:
            row = self._rows[name] = LayerRow(name, self.recent, len(self._ends))
        return row

    def _bucket_for(self, step: int) -> int:
        """The index of the bucket this event goes into (a new one once the last is full)."""
        if self._first_step is None:
            self._first_step = step
        if not self._events or self._events[-1] >= self.stride:
            if len(self._events) >= self.capacity:
                self._halve()
            self._ends.append(step)
            self._events.append(0)
            for row in self._rows.values():
                for values in (row.sums, row.counts, row.zeros, row.bads):
                    values.append(0)
        self._ends[-1] = step
        self._events[-1] += 1
        return len(self._events) - 1

    def _halve(self) -> None:
        self._ends = self._ends[1::2] + ([self._ends[-1]] if len(self._ends) % 2 else [])
        self._events = [sum(self._events[i:i + 2]) for i in range(0, len(self._events), 2)]
        for row in self._rows.values():
            row.halve()
        self.stride *= 2

    def _widen(self, norm: float) -> None:
        """The scale only ever widens while the run goes on: bars do not jump between scales."""
        if math.isfinite(norm) and norm > 0:
            exponent = math.log10(norm)
            if math.isnan(self._low) or exponent < self._low:
                self._low = exponent
            if math.isnan(self._high) or exponent > self._high:
                self._high = exponent

    def drop_after(self, step: int) -> None:
        """Forget what came after `step` (a resumed run trains those steps again). A bucket that
        straddles `step` goes too, as in `Series.drop_after`."""
        kept = sum(1 for end in self._ends if end <= step)
        if kept == len(self._ends) and all(s <= step for row in self._rows.values() for s, _ in row.recent):
            return
        del self._ends[kept:], self._events[kept:]
        if not kept:
            self._first_step, self.stride = None, 1
        self._low = self._high = math.nan
        for row in self._rows.values():
            row.truncate(kept)
            row.recent = deque(((s, norm) for s, norm in row.recent if s <= step), maxlen=self.recent)
            row.latest = row.recent[-1][1] if row.recent else math.nan
            row.ratio = row.ratio if row.ratio_step <= step else None
            for _, norm in row.recent:
                self._widen(norm)
            for total, count in zip(row.sums, row.counts):
                if count:
                    self._widen(10 ** (total / count))
        self._flag_all(set(self._rows))
        self._scale = _decades(self._low, self._high)
        self.version += 1

    # ------------------------------------------------------------------ flags

    def _flag_all(self, names: set[str]) -> None:
        latest = {name: row.latest for name, row in self._rows.items()
                  if math.isfinite(row.latest) and row.latest > 0}
        for name in names:
            row = self._rows[name]
            if not row.recent:  # nothing logged (yet, or after a resume)
                row.flag, row.reason = "", ""
                continue
            others = [norm for other, norm in latest.items() if other != name]
            row.flag, row.reason = flag_of(row.latest, [norm for _, norm in row.recent][:-1], others)

    # ------------------------------------------------------------------ values out

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[LayerRow]:
        return iter(self._rows.values())

    def __getitem__(self, name: str) -> LayerRow:
        return self._rows[name]

    def items(self) -> Iterator[tuple[str, LayerRow]]:
        return iter(self._rows.items())

    def names(self) -> list[str]:
        return list(self._rows)

    @property
    def buckets(self) -> int:
        """How many heatmap buckets are kept (never more than `capacity`)."""
        return len(self._ends)

    def has_norms(self) -> bool:
        return bool(self._ends)

    def steps(self) -> tuple[int, int] | None:
        """The first and the latest step the heatmap covers, or None before any norms."""
        return (self._first_step or 0, self._ends[-1]) if self._ends else None

    def scale(self) -> tuple[int, int]:
        """Whole decades (low, high exponents) covering every positive norm seen, at least
        MIN_DECADES wide and never narrower than before (until a resume drops steps)."""
        return self._scale or (-4, -1)

    def columns(self, count: int) -> list[list[Cell]]:
        """Per row, the heatmap in at most `count` columns (adjacent buckets merged to fit)."""
        buckets = len(self._ends)
        if count <= 0 or not buckets:
            return [[] for _ in self._rows]
        shown = min(count, buckets)
        bounds = [(index * buckets // shown, (index + 1) * buckets // shown) for index in range(shown)]
        return [[row.cell(first, stop) if stop > first else EMPTY for first, stop in bounds]
                for row in self._rows.values()]


def flag_of(latest: float, own: list[float], others: list[float]) -> tuple[str, str]:
    """The flag of a layer's latest norm and why, against its own earlier norms `own` (oldest
    first) and the other layers' latest norms `others`.

    A jump is judged on the latest norm alone. Vanishing is judged on the median of the last
    few norms: one small value is common and healthy (the output bias of a regression crosses
    zero as its mean residual does).
    """
    if not math.isfinite(latest):
        return NON_FINITE, f"norm is {latest}"
    if latest <= 0:
        return VANISHING, "no gradient (norm 0)"
    own = [norm for norm in own if math.isfinite(norm) and norm > 0]
    others = [norm for norm in others if math.isfinite(norm) and norm > 0]
    if len(own) >= MIN_OWN and latest > statistics.median(own) * SPIKE:
        return EXPLODING, f"{latest / statistics.median(own):,.0f}x its recent median"
    if len(others) < MIN_OTHERS:
        return "", ""
    median = statistics.median(others)
    if latest > median * OUTLIER:
        return EXPLODING, f"{latest / median:,.0f}x the other layers' median"
    if len(own) >= MIN_OWN - 1:
        typical = statistics.median([*own[-(MIN_OWN - 1):], latest])
        if typical < median / OUTLIER:
            return VANISHING, f"1/{median / typical:,.0f} of the other layers' median"
    return "", ""


def _decades(low: float, high: float) -> tuple[int, int] | None:
    """Whole decades around log10 norms low..high (the largest kept short of the edge)."""
    if math.isnan(low):
        return None
    low_exp = max(-EXP_LIMIT, math.floor(low))
    high_exp = min(EXP_LIMIT, math.floor(high) + 1)
    return (min(low_exp, high_exp - MIN_DECADES), high_exp)


def _union(first: tuple[int, int] | None, second: tuple[int, int] | None) -> tuple[int, int] | None:
    if first is None or second is None:
        return first or second
    return (min(first[0], second[0]), max(first[1], second[1]))
