"""Number and duration formatting for the monitor. Pure Python: no textual, no torch."""

from __future__ import annotations

import math

from nntui.metrics import metric

DASH = "–"


def fmt_value(value: float | None) -> str:
    """A metric value in at most ~8 characters: 4 significant digits, or scientific."""
    if value is None:
        return DASH
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e5 or magnitude < 1e-3):
        return f"{value:.2e}"
    return f"{value:.4g}"


def fmt_lr(value: float | None) -> str:
    """A learning rate, always scientific so 1e-3 and 3e-4 line up."""
    if value is None:
        return DASH
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2e}"


def fmt_percent(value: float | None, decimals: int = 2) -> str:
    """A fraction in [0, 1] as a percentage."""
    if value is None:
        return DASH
    if not math.isfinite(value):
        return str(value)
    return f"{100 * value:.{decimals}f}%"


def fmt_rate(value: float | None) -> str:
    """Samples per second, with k/M suffixes."""
    if value is None:
        return DASH
    if not math.isfinite(value):
        return str(value)
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def fmt_duration(seconds: float | None) -> str:
    """`4.2s`, `42s`, `3m05s`, `2h07m`, `3d04h`."""
    if seconds is None or not math.isfinite(seconds):
        return DASH
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def fmt_count(value: int | None) -> str:
    """An integer with thousands separators."""
    return DASH if value is None else f"{value:,}"


def log_fraction(value: float, low_exp: float, high_exp: float) -> float:
    """Where `value` sits between 10**low_exp and 10**high_exp on a log scale, clamped to [0, 1]."""
    if not math.isfinite(value):
        return 1.0
    if value <= 0:
        return 0.0
    span = high_exp - low_exp or 1.0
    return min(1.0, max(0.0, (math.log10(value) - low_exp) / span))


FORMATTERS = {"value": fmt_value, "percent": fmt_percent, "lr": fmt_lr, "rate": fmt_rate}


def fmt_metric(key: str, value: float | None) -> str:
    """A value of metric `key` (a record key of `nntui.metrics`) in that metric's format."""
    return FORMATTERS[metric(key).format](value)
