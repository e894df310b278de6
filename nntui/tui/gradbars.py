"""Per-layer gradient norms laid out on a shared log scale. Pure Python (no textual).

Vanishing and exploding layers are flagged relative to the median layer and by absolute
limits, so one layer that is 1000x off its neighbours stands out whatever the model.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Mapping

from nntui.tui.formatting import log_fraction
from nntui.tui.state import LayerHistory

VANISHING_ABS = 1e-7
EXPLODING_ABS = 1e3
RELATIVE = 1e3  # this many times off the median layer is flagged
MIN_DECADES = 3
SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class LayerBar:
    """One row of the chart: positions are fractions of the scale's width."""

    name: str
    latest: float
    low: float
    high: float
    fraction: float
    low_fraction: float
    high_fraction: float
    flag: str  # "", "vanishing", "exploding", "non-finite"
    recent: tuple[float, ...]


@dataclass(frozen=True)
class Scale:
    """The chart's log scale: 10**low_exp .. 10**high_exp."""

    low_exp: int
    high_exp: int

    def label(self) -> str:
        return f"log scale 1e{self.low_exp}..1e{self.high_exp}"


def chart_scale(layers: Mapping[str, LayerHistory]) -> Scale:
    """Whole decades covering every positive finite recent norm, at least MIN_DECADES wide."""
    values = [value for layer in layers.values() for value in layer.recent
              if math.isfinite(value) and value > 0]
    if not values:
        return Scale(-4, 1)
    low = max(-12, math.floor(math.log10(min(values))))
    high = min(12, math.ceil(math.log10(max(values))))
    if high == math.log10(max(values)):
        high += 1  # keep the largest bar short of the edge
    if high - low < MIN_DECADES:
        low = high - MIN_DECADES
    return Scale(low, high)


def flag_of(norm: float, median: float | None) -> str:
    if not math.isfinite(norm):
        return "non-finite"
    if norm < VANISHING_ABS or (median and norm < median / RELATIVE):
        return "vanishing"
    if norm > EXPLODING_ABS or (median and norm > median * RELATIVE):
        return "exploding"
    return ""


def layer_bars(layers: Mapping[str, LayerHistory], recent: int = 8) -> tuple[list[LayerBar], Scale]:
    """The chart rows, in the model's parameter order, and their common scale."""
    scale = chart_scale(layers)
    latest = [layer.latest for layer in layers.values() if math.isfinite(layer.latest) and layer.latest > 0]
    median = statistics.median(latest) if latest else None
    bars = []
    for name, layer in layers.items():
        if not layer.recent:
            continue
        low, high = layer.spread()
        bars.append(LayerBar(
            name, layer.latest, low, high,
            log_fraction(layer.latest, scale.low_exp, scale.high_exp),
            log_fraction(low, scale.low_exp, scale.high_exp) if math.isfinite(low) else 0.0,
            log_fraction(high, scale.low_exp, scale.high_exp) if math.isfinite(high) else 0.0,
            flag_of(layer.latest, median), tuple(layer.recent)[-recent:]))
    return bars, scale


def log_sparkline(values: tuple[float, ...], scale: Scale) -> str:
    """A tiny sparkline of recent norms on the chart's log scale."""
    chars = []
    for value in values:
        fraction = log_fraction(value, scale.low_exp, scale.high_exp)
        chars.append(SPARK[min(len(SPARK) - 1, int(fraction * len(SPARK)))])
    return "".join(chars)


def short_name(name: str, width: int) -> str:
    """A parameter name cut to `width`, keeping its end (`...layer3.1.conv2.weight`)."""
    if len(name) <= width:
        return name.ljust(width)
    return "…" + name[-(width - 1):]
