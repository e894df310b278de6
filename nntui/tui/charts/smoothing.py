"""TensorBoard's smoothing of scalar curves: an exponential moving average, debiased. Pure Python.

TensorBoard (tensorboard/components/vz_line_chart2/line-chart.ts, `resmoothDataset`) starts the
average at 0 and divides by `1 - weight ** n` (n = finite points so far), so the first points are
not dragged towards 0; a non-finite point is passed through unsmoothed and does not count; a
constant series is left as it is.
"""

from __future__ import annotations

import math
from typing import Sequence

DEFAULT_WEIGHT = 0.6  # TensorBoard's default


def debiased_ema(values: Sequence[float], weight: float = DEFAULT_WEIGHT) -> list[float]:
    """The smoothed series, as long as `values`; `weight` in [0, 1) (0 leaves it unchanged)."""
    if not values or all(value == values[0] for value in values):
        return list(values)
    last = 0.0
    count = 0
    smoothed = []
    for value in values:
        if not math.isfinite(value):
            smoothed.append(value)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        debias = 1 - weight ** count
        smoothed.append(last / debias if debias else value)
    return smoothed
