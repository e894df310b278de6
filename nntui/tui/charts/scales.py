"""Chart scales: the y range of each kind of metric, its ticks and their labels. Pure Python.

- loss and gradient norm: linear, switching to log when the values span more than a decade
  (one bad first epoch no longer flattens the rest of the curve);
- learning rate: always log (a decaying LR is a line, not a cliff);
- accuracy (and R²): a padded range at least `MIN_FRACTION_SPAN` wide, so chance-level noise
  does not fill the chart as wild swings;
- anything else (throughput): linear, padded.

Ticks are 3-5 round numbers (1, 2, 2.5, 5 times a power of ten; powers of ten on log scales)
with labels of at most 7 characters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

LOG_SWITCH_RATIO = 10.0  # max / min above this: log scale for loss and gradient norm
MIN_FRACTION_SPAN = 0.05  # accuracy and R² ranges are never narrower (5 percentage points)
MIN_RELATIVE_SPAN = 1e-3  # linear ranges are at least this fraction of the values' magnitude
PAD = 0.05  # of the span, above and below the data on linear scales
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)  # tick steps, times a power of ten
LOG_KINDS = ("loss", "norm")


@dataclass(frozen=True, slots=True)
class Scale:
    """A y (or x) range; `log` plots log10 of the values; `unit` is "%" for fractions."""

    low: float
    high: float
    log: bool = False
    unit: str = ""

    def fraction(self, value: float) -> float:
        """Where `value` sits from low (0) to high (1); outside the range beyond [0, 1]."""
        if self.log:
            value = math.log10(value) if value > 0 else -math.inf
            low, high = math.log10(self.low), math.log10(self.high)
        else:
            low, high = self.low, self.high
        return (value - low) / (high - low) if high > low else 0.5

    def ticks(self, max_ticks: int = 5) -> list[float]:
        """3 to `max_ticks` round values inside the range (fewer only on very short axes)."""
        return log_ticks(self.low, self.high, max_ticks) if self.log else linear_ticks(self.low, self.high, max_ticks)

    def labels(self, ticks: Sequence[float]) -> list[str]:
        """The tick labels, as short as the ticks' spacing allows."""
        if self.unit == "%":
            return percent_labels(ticks)
        return [format_tick(value, ticks, self.log) for value in ticks]


def finite(values: Iterable[float]) -> list[float]:
    return [value for value in values if value is not None and math.isfinite(value)]


def scale_for(kind: str, values: Iterable[float]) -> Scale:
    """The y scale of a chart of metric `kind` (loss, norm, lr, accuracy, r2, rate) over `values`."""
    data = finite(values)
    if kind == "lr":
        return log_scale([value for value in data if value > 0])
    if kind in ("accuracy", "r2"):
        return fraction_scale(data, percent=kind == "accuracy", top=1.0)
    positive = [value for value in data if value > 0]
    if kind in LOG_KINDS and positive and min(data) >= 0 and max(positive) / min(positive) > LOG_SWITCH_RATIO:
        return log_scale(positive)  # a loss of exactly 0 is left out, as a gap
    return linear_scale(data)


def linear_scale(data: Sequence[float]) -> Scale:
    """The data's range padded by PAD of its span (a flat series gets a small range around it)."""
    if not data:
        return Scale(0.0, 1.0)
    low, high = min(data), max(data)
    if high - low < MIN_RELATIVE_SPAN * max(abs(low), abs(high)):  # noise in the 4th digit is a flat line
        middle, half = (low + high) / 2, MIN_RELATIVE_SPAN * max(abs(low), abs(high)) / 2
        low, high = middle - half, middle + half
    span = high - low or 1e-12
    low, high = low - PAD * span, high + PAD * span
    if min(data) >= 0 > low:  # a non-negative metric is not drawn below zero
        low = 0.0
    return Scale(low, high)


def log_scale(data: Sequence[float]) -> Scale:
    """The positive data's range padded by PAD of its (log) span; a decade centred on data that hardly varies
    (a constant LR is a line mid-chart, not at the bottom edge)."""
    if not data:
        return Scale(1e-4, 1e-2, log=True)
    if max(data) / min(data) < 3:
        middle = math.sqrt(max(data) * min(data))
        return Scale(middle / math.sqrt(10), middle * math.sqrt(10), log=True)
    pad = (max(data) / min(data)) ** PAD
    low, high = min(data) / pad, max(data) * pad
    return Scale(low, high, log=True)


def fraction_scale(data: Sequence[float], percent: bool, top: float) -> Scale:
    """A padded range of at least MIN_FRACTION_SPAN that never goes above `top`."""
    unit = "%" if percent else ""
    if not data:
        return Scale(0.0, top, unit=unit)
    low, high = min(data), max(data)
    pad = max(PAD * (high - low), (MIN_FRACTION_SPAN - (high - low)) / 2, 0.005)
    low, high = low - pad, high + pad
    if high > top:
        low, high = low - (high - top), top
    if percent and low < 0:
        low, high = 0.0, max(high, MIN_FRACTION_SPAN)
    return Scale(low, high, unit=unit)


def _ticks_with_step(low: float, high: float, step: float) -> list[float]:
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    return [0.0 if index == 0 else index * step for index in range(first, last + 1)]


def linear_ticks(low: float, high: float, max_ticks: int = 5) -> list[float]:
    """The most round-number ticks (steps of 1, 2, 2.5 or 5 x 10^k) that fit: 3 to `max_ticks`."""
    if not high > low:
        return [low]
    power = 10.0 ** math.floor(math.log10((high - low) / max(1, max_ticks - 1)))
    previous: list[float] = []
    for step in (factor * power * scale for scale in (0.1, 1, 10) for factor in NICE_STEPS[:-1]):
        ticks = _ticks_with_step(low, high, step)
        if len(ticks) <= max_ticks:
            if len(ticks) >= min(3, max_ticks) or not previous:
                return ticks
            return previous[:max_ticks]  # no round step gives 3: one more, cut at the top
        previous = ticks
    return previous[:max_ticks]


def log_ticks(low: float, high: float, max_ticks: int = 5) -> list[float]:
    """Powers of ten in range (every n-th on long ranges); 1-2-5 (or 1-5) steps on a short range."""
    first, last = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
    decades = last - first + 1
    if decades >= 3:
        every = math.ceil(decades / max_ticks)
        return [10.0 ** exponent for exponent in range(first, last + 1, every)]
    ticks = [factor * 10.0 ** exponent for exponent in range(first - 1, last + 1) for factor in (1, 2, 5)]
    inside = [tick for tick in ticks if low * (1 - 1e-9) <= tick <= high * (1 + 1e-9)]
    for keep in (lambda tick: True, lambda tick: not _is_power(tick / 2), _is_power):  # 1-2-5, 1-5, 1
        chosen = [tick for tick in inside if keep(tick)]
        if len(chosen) <= max_ticks:
            break
    if len(chosen) < min(3, max_ticks) and high / low < 10:  # less than a decade: even steps read better
        return [tick for tick in linear_ticks(low, high, max_ticks) if tick > 0]
    return chosen


def _is_power(value: float) -> bool:
    exponent = math.log10(value)
    return abs(exponent - round(exponent)) < 1e-9


def format_tick(value: float, ticks: Sequence[float], log: bool) -> str:
    """`0.25`, `1.5k`, `1e-3`: as many decimals as the spacing of `ticks` needs, at most 7 characters."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    spacing = min((abs(b - a) for a, b in zip(ticks, ticks[1:])), default=magnitude) or magnitude
    if magnitude >= 1e12:  # beyond G: a diverged run's loss (a flat one needs more digits)
        return _scientific(value, max(1, min(4, _digits_between(magnitude, spacing))))
    if magnitude >= 1000:
        return _si(value) if log else _si_for_spacing(value, spacing)
    if log and min(abs(tick) for tick in ticks) >= 1e-3:
        return f"{value:g}"
    if log or magnitude < 1e-3:
        return _scientific(value, 1 if log else max(1, _digits_between(magnitude, spacing)))
    decimals = max(0, min(6, -math.floor(math.log10(spacing) + 1e-9) + (0 if _round_step(spacing) else 1)))
    return f"{value:.{decimals}f}"


def _digits_between(magnitude: float, spacing: float) -> int:
    """Decimals of a mantissa that tell ticks `spacing` apart at `magnitude`."""
    digits = math.floor(math.log10(magnitude) + 1e-9) - math.floor(math.log10(spacing) + 1e-9)
    return digits + (0 if _round_step(spacing) else 1)


def _scientific(value: float, decimals: int) -> str:
    """`2e-4`, `1.5e-4`, `2e32`: no `+`, no leading zeros, no trailing `.0`s."""
    mantissa, exponent = f"{value:.{decimals}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _round_step(spacing: float) -> bool:
    """Whether a tick spacing is 1, 2 or 5 times a power of ten (2.5 needs one decimal more)."""
    mantissa = spacing / 10.0 ** math.floor(math.log10(spacing) + 1e-9)
    return any(abs(mantissa - factor) < 1e-6 for factor in (1.0, 2.0, 5.0))


def _si_for_spacing(value: float, spacing: float) -> str:
    """`12k`, `1.25M`; the plain number when a suffix would need too many decimals."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            decimals = max(0, -math.floor(math.log10(spacing / limit) + 1e-9))
            text = f"{value / limit:.{decimals}f}{suffix}"
            if len(text) <= 7:
                return text
            break
    return f"{value:.{max(0, -math.floor(math.log10(spacing) + 1e-9))}f}"


def _si(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{value:.0f}"


def percent_labels(ticks: Sequence[float]) -> list[str]:
    spacing = min((abs(b - a) for a, b in zip(ticks, ticks[1:])), default=1.0)
    decimals = 0 if spacing >= 0.01 - 1e-12 else 1
    return [f"{100 * value:.{decimals}f}%" for value in ticks]


def x_ticks(low: float, high: float, max_ticks: int, mode: str) -> list[float]:
    """Ticks of an x-axis: whole steps and epochs; seconds in round units of time."""
    if mode == "time":
        for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400):
            if (high - low) / step <= max_ticks - 1:
                first = math.ceil(low / step) * step
                return [float(first + index * step) for index in range(int((high - first) // step) + 1)]
    ticks = linear_ticks(low, high, max_ticks)
    whole = [tick for tick in ticks if float(tick).is_integer()]
    return whole if len(whole) >= 2 or high - low < 2 else linear_ticks(math.ceil(low), math.floor(high), max_ticks)


def x_label(value: float, mode: str) -> str:
    """An x tick label: `1.2k` steps, `12` epochs, `1m30s` of wall time."""
    if mode == "time":
        seconds = int(round(value))
        if seconds < 60:
            return f"{seconds}s"
        minutes, seconds = divmod(seconds, 60)
        if minutes < 60:
            return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    return _si(value) if abs(value) >= 10_000 else f"{value:g}"
