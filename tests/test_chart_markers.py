"""Control events as vertical markers on every chart, the x-axis modes, the best epoch's mark."""

import pytest

from nntui.engine.events import ControlApplied, EarlyStopStatus, EpochEnded, RunStarted, StepLogged
from nntui.tui.charts.canvas import BEST_CHAR, MARKER_CHAR, draw, marker_columns
from nntui.tui.charts.specs import View, best_point, build_spec, charts_for
from nntui.tui.state import MonitorState

PER_EPOCH = 10


def run_with_controls(best_epoch: int = 3) -> MonitorState:
    """6 epochs of 10 steps, a step record every 2 steps (0.5 s apart); lr changed at step 20,
    paused at 35 (for 100 s) and resumed, a divergence restore at 50."""
    state = MonitorState()
    state.apply(RunStarted("p", "cpu", 10, 100, 10, 10, None, epochs=10, steps_per_epoch=PER_EPOCH,
                           time=1000.0))
    clock = 1000.0
    for step in range(1, 61):
        if step % 2 == 0:
            clock += 0.5
            state.apply(StepLogged(step, (step - 1) // PER_EPOCH + 1, 1.0 / step, 1e-3, 1.0, 500.0, time=clock))
        if step == 20:
            state.apply(ControlApplied(20, "lr", 3e-4, "tui", time=clock))
        if step == 35:
            state.apply(ControlApplied(35, "pause", None, "tui", time=clock))
            clock += 100.0
            state.apply(ControlApplied(35, "resume", None, "tui", time=clock))
        if step == 50:
            state.apply(ControlApplied(50, "pause", None, "divergence", "loss diverged; restored", time=clock))
        if step % PER_EPOCH == 0:
            epoch = step // PER_EPOCH
            stop = EarlyStopStatus("val_loss", 0.5, best_epoch, epoch - best_epoch, 9)
            state.apply(EpochEnded(epoch, step, 1.0 / step, 2.0 / step if epoch != best_epoch else 0.5, 1e-3,
                                   train_acc=0.5, val_acc=0.4, early_stop=stop, time=clock))
    return state


def test_the_state_keeps_each_control_event_as_a_marker():
    state = run_with_controls()
    markers = [(marker.step, marker.kind) for marker in state.timeline.markers]
    assert markers == [(20, "lr"), (35, "pause"), (35, "resume"), (50, "restore")]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_chart_draws_every_marker_at_its_step(task):
    state = run_with_controls()
    for chart in charts_for(task):
        spec, _, _ = build_spec(chart, state, View(x_mode="time"), best_point(state))
        assert [kind for _, kind in spec.markers] == ["lr", "pause", "resume", "restore"], chart.chart_id
        rows = draw(spec, 70, 12)
        gutter = len(rows[0][0][0]) + 1  # the y labels and the axis line
        text_rows = ["".join(text for text, _ in row)[gutter:] for row in rows[:-1]]
        for column in marker_columns(spec, 70 - gutter):
            cells = [row[column] for row in text_rows]
            assert MARKER_CHAR in cells, (chart.chart_id, column)


def test_markers_follow_the_x_axis_mode():
    state = run_with_controls()
    chart = charts_for("classification")[0]
    by_mode = {mode: dict((kind, x) for x, kind in build_spec(chart, state, View(x_mode=mode), None)[0].markers)
               for mode in ("step", "epoch", "time")}
    assert by_mode["step"] == {"lr": 20, "pause": 35, "resume": 35, "restore": 50}
    assert by_mode["epoch"]["lr"] == pytest.approx(2.0) and by_mode["epoch"]["pause"] == pytest.approx(3.5)
    assert by_mode["time"]["lr"] == pytest.approx(5.0)  # 10 step records of 0.5 s
    assert by_mode["time"]["restore"] > 100  # after the 100 s pause


def test_a_resume_drops_the_markers_after_its_checkpoint():
    state = run_with_controls()
    state.apply(RunStarted("p", "cpu", 10, 100, 10, 10, 30, epochs=10, steps_per_epoch=PER_EPOCH, time=2000.0))
    assert [(marker.step, marker.kind) for marker in state.timeline.markers] == [(20, "lr")]
    assert state.timeline.epoch_step(4) is None and state.timeline.epoch_step(3) == 30


def test_the_best_epoch_is_marked_with_its_value_on_the_monitored_chart():
    state = run_with_controls(best_epoch=3)
    best = best_point(state)
    assert best == ("val_loss", 30, 0.5, 3)
    loss, accuracy = charts_for("classification")[:2]
    spec, _, subtitle = build_spec(loss, state, View(), best)
    assert spec.best == (30, 0.5) and "best 0.5 @ epoch 3" in subtitle
    assert any(BEST_CHAR in text for row in draw(spec, 70, 12) for text, _ in row)
    spec, _, subtitle = build_spec(accuracy, state, View(), best)
    assert spec.best is None and "best" not in subtitle


def test_without_early_stopping_the_best_is_the_lowest_val_loss():
    state = MonitorState()
    state.apply(RunStarted("p", "cpu", 10, 100, 10, 10, None, epochs=3, steps_per_epoch=PER_EPOCH, time=0.0))
    for epoch, val_loss in ((1, 0.9), (2, 0.4), (3, 0.6)):
        state.apply(EpochEnded(epoch, epoch * PER_EPOCH, 1.0, val_loss, 1e-3, time=float(epoch)))
    assert best_point(state) == ("val_loss", 20, 0.4, 2)


def test_an_epoch_series_that_never_comes_is_left_out_of_the_legend():
    from nntui.tui.charts.specs import ACCURACY, LOSS

    state = MonitorState()
    state.apply(RunStarted("script.py", "cpu", 10, 0, 0, 0, None, epochs=3, steps_per_epoch=PER_EPOCH, time=1000.0))
    state.apply(StepLogged(5, 1, 0.9, 1e-3, 1.0, 500.0, time=1001.0))
    before = build_spec(ACCURACY, state, View(), None)[0]
    assert [line.label for line in before.lines] == ["train", "val"]  # before an epoch: what is coming
    state.apply(EpochEnded(1, PER_EPOCH, 0.8, 0.7, 1e-3, val_acc=0.6, time=1002.0))  # no train_acc (a Monitor loop)
    after = build_spec(ACCURACY, state, View(), None)[0]
    assert [line.label for line in after.lines] == ["", "val"]
    assert [line.label for line in build_spec(LOSS, state, View(), None)[0].lines] == ["step", "train", "val"]
