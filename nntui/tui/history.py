"""Bounded, downsampled metric history for the monitor. Pure Python: no textual, no torch.

A `Series` keeps at most `capacity` buckets. Each bucket summarises `stride` consecutive
points (their mean, min and max, and the x of the last one). When the buckets fill up,
adjacent pairs merge and the stride doubles, so memory and render time stay flat however
long the run is, while the curve keeps its overall shape. The first and the latest raw
points are kept exactly.

`drop_after(x)` forgets the points after x (a resumed run trains those steps again).
`version` counts the changes, so a chart can tell cheaply whether its data grew.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from itertools import takewhile


@dataclass(frozen=True, slots=True)
class Bucket:
    """`count` consecutive points summarised: x of the last one, mean, min and max of y."""

    x: float
    mean: float
    low: float
    high: float
    count: int


def _merge(first: Bucket, second: Bucket) -> Bucket:
    count = first.count + second.count
    mean = (first.mean * first.count + second.mean * second.count) / count
    return Bucket(second.x, mean, min(first.low, second.low), max(first.high, second.high), count)


class Series:
    """A bounded series of (x, y) points; non-finite y values are counted but not plotted."""

    __slots__ = ("capacity", "stride", "_buckets", "_count", "_sum", "_low", "_high", "_x",
                 "_non_finite_xs", "first", "last", "total", "non_finite", "version")

    def __init__(self, capacity: int = 512) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self.capacity = capacity
        self.stride = 1
        self._buckets: list[Bucket] = []
        # The bucket being filled, kept as plain numbers: append is the hot path.
        self._count = 0
        self._sum = self._low = self._high = self._x = 0.0
        self._non_finite_xs: deque[float] = deque(maxlen=capacity)  # to forget them in drop_after
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None
        self.total = 0
        self.non_finite = 0
        self.version = 0

    def __len__(self) -> int:
        """How many buckets are plotted (always <= capacity)."""
        return len(self._buckets) + (self._count > 0)

    def append(self, x: float, y: float) -> None:
        """Add a point. A NaN or infinite y becomes `last` but is left out of the curve; so
        does a missing one (None), as NaN."""
        self.total += 1
        self.version += 1
        if y is None:
            y = math.nan
        self.last = (x, y)
        if y - y != 0.0:  # NaN or infinite, without a function call
            self.non_finite += 1
            self._non_finite_xs.append(x)
            return
        if self._count == 0:
            if self.first is None:
                self.first = (x, y)
            self._sum = self._low = self._high = y
        else:
            self._sum += y
            if y < self._low:
                self._low = y
            elif y > self._high:
                self._high = y
        self._x = x
        self._count += 1
        if self._count >= self.stride:
            self._buckets.append(self._pending())
            self._count = 0
            if len(self._buckets) >= self.capacity:
                self._halve()

    def _pending(self) -> Bucket:
        return Bucket(self._x, self._sum / self._count, self._low, self._high, self._count)

    def _halve(self) -> None:
        buckets = self._buckets
        self._buckets = [_merge(buckets[i], buckets[i + 1]) for i in range(0, len(buckets) - 1, 2)]
        if len(buckets) % 2:
            self._buckets.append(buckets[-1])
        self.stride *= 2

    def buckets(self) -> list[Bucket]:
        """The plotted buckets, oldest first, the partly filled one last."""
        if self._count == 0:
            return list(self._buckets)
        return [*self._buckets, self._pending()]

    def values(self) -> list[float]:
        """Bucket means, oldest first (`first` and `last` keep the exact end points)."""
        return [bucket.mean for bucket in self.buckets()]

    def xs(self) -> list[float]:
        return [bucket.x for bucket in self.buckets()]

    @property
    def latest(self) -> float | None:
        """The y of the latest point (possibly NaN), or None when empty."""
        return None if self.last is None else self.last[1]

    def points(self) -> tuple[list[float], list[float]]:
        """The plotted (x, mean y) pairs as two lists, oldest first."""
        buckets = self.buckets()
        return [bucket.x for bucket in buckets], [bucket.mean for bucket in buckets]

    def tail(self, count: int) -> list[float]:
        """The means of the last `count` buckets."""
        return self.values()[-count:] if count > 0 else []

    def drop_after(self, x_max: float) -> int:
        """Forget the points with x > `x_max`; how many were dropped.

        A bucket that straddles `x_max` cannot be split, so it goes too: at most `stride - 1`
        points at or before `x_max` are lost, which no plot of `capacity` columns can show.
        """
        if self.last is None or self.last[0] <= x_max:
            return 0
        self.version += 1
        buckets = self.buckets()
        kept = list(takewhile(lambda bucket: bucket.x <= x_max, buckets))
        dropped = sum(bucket.count for bucket in buckets[len(kept):])
        gone = sum(1 for x in self._non_finite_xs if x > x_max)
        self._buckets, self._count = kept, 0
        self.non_finite -= gone
        self._non_finite_xs = deque((x for x in self._non_finite_xs if x <= x_max), maxlen=self.capacity)
        self.total -= dropped + gone
        self.last = (kept[-1].x, kept[-1].mean) if kept else None
        if not kept:
            self.first = None
        return dropped + gone

    def clear(self) -> None:
        version = self.version
        self.__init__(self.capacity)  # type: ignore[misc]
        self.version = version + 1
