"""Chart scales: when the y-axis turns log, the accuracy range, the ticks and their labels."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nntui.tui.charts.scales import (
    MIN_FRACTION_SPAN,
    MIN_RELATIVE_SPAN,
    Scale,
    linear_ticks,
    scale_for,
    x_label,
    x_ticks,
)


def decaying(first: float, last: float, count: int = 50) -> list[float]:
    return [first * (last / first) ** (index / (count - 1)) for index in range(count)]


@pytest.mark.parametrize("kind", ["loss", "norm"])
def test_loss_and_grad_norm_turn_log_only_beyond_a_decade(kind):
    assert scale_for(kind, decaying(2.3, 0.02)).log  # the first epoch no longer flattens the rest
    assert not scale_for(kind, decaying(0.5, 0.06)).log  # within a decade: linear
    assert not scale_for(kind, [0.5, -0.1, 3.0, 0.01]).log  # negative: log cannot show it
    assert scale_for(kind, [0.0, 2.3, 0.01]).log  # a zero loss is a gap on a log scale, not a reason for linear


def test_a_diverging_loss_reads_in_powers_of_ten():
    scale = scale_for("loss", [2.3, 40.0, 3e9, 2e32])
    labels = scale.labels(scale.ticks(5))
    assert scale.log and 3 <= len(labels) <= 5 and all(len(label) <= 7 for label in labels), labels
    linear = scale_for("rate", [0.0, 2e32])
    labels = linear.labels(linear.ticks(5))
    assert all(len(label) <= 7 for label in labels) and len(set(labels)) == len(labels), labels


def test_the_learning_rate_is_always_log_and_a_constant_lr_sits_mid_chart():
    assert scale_for("lr", decaying(1e-3, 5e-4)).log
    constant = scale_for("lr", [3e-4] * 20)
    assert constant.log and constant.fraction(3e-4) == pytest.approx(0.5)
    assert 3e-4 > constant.low and 3e-4 < constant.high
    ticks = scale_for("lr", decaying(1e-2, 1e-6)).ticks(5)
    assert 3 <= len(ticks) <= 5 and all(math.log10(tick) == round(math.log10(tick)) for tick in ticks)


def test_an_accuracy_at_chance_level_is_not_stretched_into_swings():
    values = [0.08, 0.12, 0.095, 0.11, 0.1]
    scale = scale_for("accuracy", values)
    assert scale.high - scale.low >= MIN_FRACTION_SPAN - 1e-12
    assert scale.low <= min(values) and scale.high >= max(values)
    flat = scale_for("accuracy", [0.1004, 0.1006])
    assert flat.high - flat.low >= MIN_FRACTION_SPAN - 1e-12  # 0.02 points of noise stay a flat line
    assert abs(flat.fraction(0.1006) - flat.fraction(0.1004)) < 0.05


def test_an_accuracy_near_100_percent_stays_below_the_top():
    scale = scale_for("accuracy", [0.97, 0.99, 0.998])
    assert scale.high == 1.0 and scale.low <= 0.97
    assert scale.labels(scale.ticks(5))[-1] == "100%"
    assert all(label.endswith("%") for label in scale.labels(scale.ticks(5)))


def test_r2_may_go_negative_but_not_above_one():
    scale = scale_for("r2", [-0.8, 0.2, 0.45, 0.999])
    assert scale.low < -0.8 and scale.high == 1.0 and not scale.unit


@pytest.mark.parametrize("values, labels", [
    (decaying(2.3, 0.02), ["0.05", "0.1", "0.5", "1"]),
    ([0.2, 0.5], ["0.2", "0.3", "0.4", "0.5"]),
    ([12_000, 15_000], ["12k", "13k", "14k", "15k"]),
])
def test_tick_labels_are_short_round_numbers(values, labels):
    kind = "loss" if max(values) < 100 else "rate"
    scale = scale_for(kind, values)
    assert scale.labels(scale.ticks(5)) == labels


def test_log_labels_share_one_notation():
    scale = scale_for("lr", decaying(1e-3, 2.5e-4))
    labels = scale.labels(scale.ticks(5))
    assert 3 <= len(labels) <= 5 and all("e-" in label for label in labels), labels


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(1e-6, 1e6))
def test_linear_ticks_are_3_to_5_distinct_labels_inside_the_range(low, span):
    high = low + span
    if span < MIN_RELATIVE_SPAN * max(abs(low), abs(high)):  # linear_scale never makes such a range
        return
    ticks = linear_ticks(low, high, 5)
    assert 3 <= len(ticks) <= 5, (low, high, ticks)
    assert all(low - 1e-9 * span <= tick <= high + 1e-9 * span for tick in ticks)
    labels = Scale(low, high).labels(ticks)
    assert len(set(labels)) == len(labels) and all(len(label) <= 9 for label in labels), labels  # the gutter fits them


def test_a_flat_series_gets_a_range_wide_enough_for_distinct_labels():
    scale = scale_for("rate", [1_000_000.0, 1_000_001.0])
    labels = scale.labels(scale.ticks(5))
    assert len(set(labels)) == len(labels) >= 3 and all(len(label) <= 7 for label in labels), labels


def test_x_ticks_are_whole_steps_and_epochs_and_round_times():
    assert x_ticks(1, 40, 5, "epoch") == [10, 20, 30, 40]
    assert all(float(tick).is_integer() for tick in x_ticks(1, 3.5, 5, "epoch"))
    times = x_ticks(0, 95, 5, "time")
    assert [x_label(tick, "time") for tick in times] == ["0s", "30s", "1m", "1m30s"]
    assert x_label(12_000, "step") == "12k"
