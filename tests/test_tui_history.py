"""The monitor's bounded history: flat memory over a million steps, ends kept."""

import math

import pytest

from nntui.tui.history import Series


def test_a_million_points_stay_within_capacity_and_keep_their_ends():
    series = Series(capacity=256)
    for step in range(1, 1_000_001):
        series.append(step, float(step))
        assert len(series) <= 256 or pytest.fail(f"{len(series)} buckets at step {step}")
    assert series.total == 1_000_000
    assert series.first == (1, 1.0)
    assert series.last == (1_000_000, 1_000_000.0)
    values = series.values()
    assert 128 <= len(values) <= 256
    assert values == sorted(values), "downsampling must keep a monotone curve monotone"
    # the first bucket covers the first `stride` points, the last one ends at the last point
    assert values[0] == pytest.approx((1 + series.stride) / 2)
    assert series.xs()[-1] == 1_000_000
    assert values[-1] > 1_000_000 - 2 * series.stride


def test_buckets_keep_min_and_max_and_counts_add_up():
    series = Series(capacity=4)
    data = [3.0, -1.0, 7.0, 2.0, 5.0, 0.5, 9.0, 4.0, 1.0]
    for index, value in enumerate(data):
        series.append(index, value)
    buckets = series.buckets()
    assert sum(bucket.count for bucket in buckets) == len(data)
    assert min(bucket.low for bucket in buckets) == -1.0
    assert max(bucket.high for bucket in buckets) == 9.0
    assert sum(bucket.mean * bucket.count for bucket in buckets) == pytest.approx(sum(data))


def test_short_series_is_exact():
    series = Series(capacity=8)
    for index, value in enumerate([0.5, 0.25, 0.125]):
        series.append(index, value)
    assert series.values() == [0.5, 0.25, 0.125]
    assert series.stride == 1


def test_non_finite_values_are_counted_not_plotted():
    series = Series(capacity=8)
    series.append(1, 1.0)
    series.append(2, math.nan)
    series.append(3, math.inf)
    assert series.values() == [1.0]
    assert series.non_finite == 2
    assert math.isinf(series.latest)


def test_capacity_must_be_even():
    with pytest.raises(ValueError):
        Series(capacity=7)


def test_the_version_counts_every_change_so_a_chart_can_skip_an_unchanged_series():
    series = Series(8)
    seen = {series.version}
    for step in range(1, 40):
        series.append(step, 1.0 / step)
        assert series.version not in seen  # halving the buckets included
        seen.add(series.version)
    series.append(40, math.nan)
    assert series.version not in seen
    seen.add(series.version)
    before = series.version
    assert series.drop_after(100) == 0 and series.version == before  # nothing dropped, nothing changed
    series.drop_after(20)
    assert series.version not in seen
    seen.add(series.version)
    series.clear()
    assert series.version not in seen and len(series) == 0


def test_points_are_the_plotted_xs_and_means():
    series = Series(4)
    for step in range(1, 11):
        series.append(step, float(step))
    xs, ys = series.points()
    assert xs == series.xs() and ys == series.values() and len(xs) <= 4
