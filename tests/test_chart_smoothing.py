"""Smoothing of step curves: TensorBoard's debiased exponential moving average."""

import math

import pytest

from nntui.tui.charts.smoothing import DEFAULT_WEIGHT, debiased_ema


def tensorboard_smoothing(data: list[float], weight: float) -> list[float]:
    """tensorboard/components/vz_line_chart2/line-chart.ts, resmoothDataset, transcribed."""
    last = 0.0 if data else math.nan
    num_accum = 0
    is_constant = all(value == data[0] for value in data)
    smoothed = []
    for next_val in data:
        if is_constant or not math.isfinite(next_val):
            smoothed.append(next_val)
        else:
            last = last * weight + (1 - weight) * next_val
            num_accum += 1
            debias_weight = 1.0 - weight ** num_accum if weight != 1.0 else 1.0
            smoothed.append(last / debias_weight)
    return smoothed


def test_a_fixed_series_by_hand():
    # weight 0.5: averages 0.5, 1.25, 2.125 over debias 0.5, 0.75, 0.875
    assert debiased_ema([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 5 / 3, 2.125 / 0.875])


@pytest.mark.parametrize("weight", [0.0, 0.3, DEFAULT_WEIGHT, 0.9, 0.99])
def test_equal_to_tensorboards_formula(weight):
    series = [2.3, 1.9, 2.05, 1.2, math.nan, 0.9, 0.95, math.inf, 0.4, 0.41, 0.3, 0.35, 0.2]
    ours, theirs = debiased_ema(series, weight), tensorboard_smoothing(series, weight)
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        assert (mine == pytest.approx(reference)) if math.isfinite(reference) else (mine is reference or math.isnan(mine))


def test_the_first_point_is_not_dragged_to_zero_and_a_constant_series_stays():
    assert debiased_ema([5.0, 5.1], 0.9)[0] == pytest.approx(5.0)
    assert debiased_ema([0.7] * 5, 0.6) == [0.7] * 5
    assert debiased_ema([], 0.6) == []
