"""The gradient pane's data (`LayerTable`): heatmap buckets, bounded memory, resumes, and
flags relative to each layer's own history and to the other layers."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import records, run_cli

from nntui.engine.events import GradNorms, RunStarted, from_record
from nntui.runs import read_records
from nntui.tui.layers import EXPLODING, NON_FINITE, SPIKE, VANISHING, LayerTable
from nntui.tui.state import MonitorState

RUNS = Path(__file__).parent / "fixtures" / "runs"


def norms(step: int, **values: float) -> GradNorms:
    return GradNorms(step, tuple(values.items()), time=float(step))


def with_ratios(step: int, values: dict[str, float], ratios: dict[str, float]):
    """A grad_norms event with update ratios (built by hand until events.py has the field)."""
    if "update_ratios" in GradNorms.__dataclass_fields__:
        return GradNorms(step, tuple(values.items()), update_ratios=tuple(ratios.items()), time=float(step))
    return SimpleNamespace(step=step, norms=tuple(values.items()), update_ratios=tuple(ratios.items()),
                           time=float(step))


def real_norm_events(run_dir: Path) -> list[GradNorms]:
    events = [from_record(record) for record in read_records(run_dir)]
    return [event for event in events if isinstance(event, GradNorms)]


def flags_seen(events) -> list[tuple[int, str, str, str]]:
    """Every flag raised at any point while the events are folded in."""
    table, seen = LayerTable(), []
    for event in events:
        table.add(event)
        seen.extend((event.step, row.name, row.flag, row.reason) for row in table if row.flag)
    return seen


# ---------------------------------------------------------------------------------- buckets

def test_buckets_hold_the_mean_log_norm_of_consecutive_events_and_merge_when_full():
    table = LayerTable(capacity=4)
    values = [10.0 ** (step % 5 - 2) for step in range(1, 12)]
    for step, value in enumerate(values, start=1):
        table.add(norms(step, w=value))
    assert table.stride == 4 and table.buckets == 3  # 11 events: 4 + 4 + 3
    cells = table.columns(10)[0]
    groups = [values[0:4], values[4:8], values[8:11]]
    assert [cell.log_norm for cell in cells] == pytest.approx([statistics.mean(map(math.log10, g)) for g in groups])
    assert table.steps() == (1, 11)
    merged = table.columns(2)[0]  # fewer columns than buckets: adjacent buckets merged to fit
    assert merged[0].log_norm == pytest.approx(statistics.mean(map(math.log10, groups[0])))
    assert merged[1].log_norm == pytest.approx(statistics.mean(map(math.log10, groups[1] + groups[2])))


def test_rows_line_up_and_odd_cells_are_marked():
    table = LayerTable(capacity=8)
    table.register(["a", "b"])
    table.add(norms(1, a=1.0, b=0.0))
    table.add(norms(2, a=math.nan))  # b was not logged this time
    first, second = table.columns(8)
    assert len(first) == len(second) == 2
    assert first[1].bad and not first[0].bad
    assert second[0].zero and second[1].empty


def test_memory_stays_bounded_however_long_the_run():
    table = LayerTable(capacity=16, recent=8)
    for step in range(1, 20_001):
        table.add(norms(step, a=1.0 + step % 7, b=0.1))
    assert table.buckets <= 16
    for row in table:
        assert len(row.recent) <= 8 and len(row.sums) == len(row.counts) == table.buckets
    assert table.steps() == (1, 20_000)


def test_drop_after_forgets_the_steps_trained_again():
    table = LayerTable(capacity=8)
    for step in range(1, 21):
        table.add(norms(step, a=float(step)))
    version = table.version
    table.drop_after(10)
    assert table.version > version
    assert table.steps()[1] <= 10 and table["a"].latest == 10.0
    assert all(step <= 10 for step, _ in table["a"].recent)
    table.add(norms(11, a=1000.0))  # trained again, and now a jump against steps 1..10
    assert table.steps()[1] == 11 and table["a"].flag == EXPLODING
    table.drop_after(0)
    assert table.buckets == 0 and math.isnan(table["a"].latest) and not table["a"].flag


def test_version_changes_only_when_the_table_does():
    table = LayerTable()
    table.register(["a"])
    version = table.version
    table.register(["a"])
    table.drop_after(5)  # nothing after step 5
    assert table.version == version
    table.add(norms(1, a=1.0))
    assert table.version > version


def test_the_scale_only_widens():
    table = LayerTable()
    table.add(norms(1, a=1e-2))
    first = table.scale()
    assert first[0] <= -2 < first[1] and first[1] - first[0] >= 3
    table.add(norms(2, a=1e5))
    table.add(norms(3, a=1e-2))
    assert table.scale()[1] > 5 and table.scale()[0] == first[0]


def test_update_ratios_are_kept_per_layer_and_dropped_with_their_step():
    table = LayerTable()
    table.add(with_ratios(5, {"a": 1.0, "b": 2.0}, {"a": 1e-3}))
    assert table["a"].ratio == pytest.approx(1e-3) and table["b"].ratio is None
    table.drop_after(4)
    assert table["a"].ratio is None


# ---------------------------------------------------------------------------------- flags

@pytest.mark.parametrize("fixture", ["diabetes-mlp-complete", "digits-mlp-complete", "digits-mlp-paused"])
def test_healthy_recorded_runs_raise_no_flag(fixture):
    events = real_norm_events(RUNS / fixture)
    assert len(events) > 10
    assert flags_seen(events) == []


@pytest.mark.parametrize("preset, epochs", [("diabetes-mlp", 8), ("digits-mlp", 2)])
def test_healthy_runs_logged_at_every_step_raise_no_flag(tmp_path, preset, epochs):
    """Norms in the thousands at every step of diabetes-mlp (an MSE regression) are healthy:
    the old absolute rule called them exploding."""
    done = run_cli("run", preset, "--headless", "--epochs", str(epochs), "--set", "train.log_interval_s=0",
                   "--set", "train.log_every=1", "--runs-dir", str(tmp_path / "runs"), "--name", "r", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    events = [from_record(record) for record in records(tmp_path / "runs" / "r") if record["event"] == "grad_norms"]
    assert len(events) >= 60
    if preset == "diabetes-mlp":
        assert max(norm for event in events for _, norm in event.norms) > 100  # large in absolute terms
    assert flags_seen(events) == []


def test_a_spike_over_a_layers_own_history_is_flagged():
    events = real_norm_events(RUNS / "diabetes-mlp-complete")
    last = events[-1]
    name, norm = last.norms[2]
    spiked = GradNorms(last.step + 1, tuple((n, v * (SPIKE * 3 if n == name else 1)) for n, v in last.norms))
    table = LayerTable()
    for event in [*events, spiked]:
        table.add(event)
    flagged = {row.name: row.flag for row in table if row.flag}
    assert flagged == {name: EXPLODING}, flagged
    assert "recent median" in table[name].reason


def test_a_layer_orders_of_magnitude_off_the_others_is_flagged():
    table = LayerTable()
    for step in range(1, 4):
        table.add(norms(step, a=1.0, b=2.0, c=0.5, huge=5e4, tiny=1e-6))
    assert table["huge"].flag == EXPLODING and "other layers" in table["huge"].reason
    assert table["tiny"].flag == "" , "one or a few small norms are not yet vanishing"
    for step in range(4, 8):
        table.add(norms(step, a=1.0, b=2.0, c=0.5, huge=5e4, tiny=1e-6))
    assert table["tiny"].flag == VANISHING
    assert [row.flag for row in table if row.name in "abc"] == ["", "", ""]


def test_one_small_norm_among_steady_ones_is_not_vanishing():
    table = LayerTable()
    for step in range(1, 30):
        table.add(norms(step, w=100.0, v=80.0, bias=1e-4 if step == 20 else 10.0))
        assert table["bias"].flag == ""


def test_non_finite_and_zero_norms_are_flagged():
    table = LayerTable()
    table.add(norms(1, a=1.0, b=math.inf, c=math.nan, dead=0.0))
    assert (table["b"].flag, table["c"].flag, table["dead"].flag, table["a"].flag) == (
        NON_FINITE, NON_FINITE, VANISHING, "")




# ---------------------------------------------------------------------------------- in the state

def test_the_state_registers_layers_at_start_and_drops_them_on_resume():
    state = MonitorState()
    start = dict(preset="p", device="cpu", params=1, train_size=1, val_size=1, test_size=1, epochs=2,
                 steps_per_epoch=10, layers=("fc1.weight", "out.weight"))
    state.apply(RunStarted(resumed_from=None, time=0.0, **start))
    assert state.layers.names() == ["fc1.weight", "out.weight"] and not state.layers.has_norms()
    for step in range(1, 16):
        state.apply(norms(step, **{"fc1.weight": 1.0, "out.weight": float(step)}))
    state.apply(RunStarted(resumed_from=10, time=20.0, **start))
    assert state.layers.steps()[1] <= 10 and state.layers["out.weight"].latest <= 10
