"""The monitor's state model (events in, displayed values out), and its pure helpers."""

import math
from pathlib import Path

import pytest

from nntui.engine.events import (
    ControlApplied, EarlyStopStatus, EpochEnded, RunEnded, RunStarted, StepLogged, from_record,
)
from nntui.runs import read_records
from nntui.tui.formatting import fmt_duration, fmt_lr, fmt_percent, fmt_rate, fmt_value, log_fraction
from nntui.tui.gradbars import chart_scale, flag_of, layer_bars, log_sparkline, short_name
from nntui.tui.state import LayerHistory, MonitorState

RUNS = Path(__file__).parent / "fixtures" / "runs"


def replay(name: str) -> MonitorState:
    state = MonitorState()
    state.apply_all(from_record(record) for record in read_records(RUNS / name))
    return state


def started(**kwargs) -> RunStarted:
    defaults = dict(preset="p", device="cpu", params=10, train_size=100, val_size=10, test_size=10,
                    resumed_from=None, epochs=4, steps_per_epoch=10, batch_size=10, optimizer="adam",
                    lr=1e-3, time=1000.0)
    return RunStarted(**{**defaults, **kwargs})


def test_replayed_classification_run_shows_its_final_values():
    records = read_records(RUNS / "digits-mlp-complete")
    state = replay("digits-mlp-complete")
    end = records[-1]
    epochs = [r for r in records if r["event"] == "epoch"]
    steps = [r for r in records if r["event"] == "step"]
    assert state.status == {"completed": "finished", "early_stopped": "early-stopped"}[end["status"]]
    assert not state.live
    assert state.epoch == epochs[-1]["epoch"]
    assert state.step == end["step"]
    rows = {row.key: row for row in state.metric_rows()}
    assert set(rows) == {"train_loss", "val_loss", "train_acc", "val_acc", "lr", "samples_per_s", "grad_norm"}
    assert state.current_text(rows["val_acc"]) == fmt_percent(epochs[-1]["val_acc"])
    assert state.current_text(rows["train_loss"]) == fmt_value(steps[-1]["loss"])
    assert len(state.series["val_loss"].values()) == len(epochs)
    assert state.series["train_loss"].total == len(steps)
    assert f"test acc {fmt_percent(end['test_acc'])}" in state.results_text()
    assert state.eta_s() is None  # ended: no ETA
    assert state.elapsed_s() == end["wall_s"]
    stop = epochs[-1]["early_stop"]
    assert state.early_stop_lines() == [
        f"{stop['mode']} {stop['monitor']}: {fmt_value(stop['best'])} @ epoch {stop['best_epoch']}",
        f"wait {stop['wait']}/{stop['patience']}, restores best"]
    assert [line.kind for line in state.log].count("epoch") == len(epochs)


def test_replayed_regression_run_shows_mae_and_r2():
    state = replay("diabetes-mlp-complete")
    keys = [row.key for row in state.metric_rows()]
    assert "val_r2" in keys and "val_mae" in keys and "val_acc" not in keys
    last_epoch = [r for r in read_records(RUNS / "diabetes-mlp-complete") if r["event"] == "epoch"][-1]
    r2_row = next(row for row in state.metric_rows() if row.key == "val_r2")
    assert state.current_text(r2_row) == fmt_value(last_epoch["val_r2"])
    assert "R²" in state.results_text()


def test_paused_fixture_is_paused_with_the_new_lr():
    state = replay("digits-mlp-paused")
    assert state.status == "paused" and state.paused and state.live
    assert state.lr == pytest.approx(3e-4)
    assert state.eta_s() is None
    assert any(line.kind == "control" and "0.0003" in line.text for line in state.log)


def test_diverged_fixture_alerts_with_the_trainers_message():
    records = read_records(RUNS / "digits-mlp-diverged")
    message = records[-1]["message"]
    state = replay("digits-mlp-diverged")
    assert state.status == "diverged (paused)"
    assert state.alert == message
    bars, _ = layer_bars(state.layers)
    assert any(bar.flag == "vanishing" for bar in bars), "dead layers (norm 0) must stand out"


def test_pause_resume_lr_and_eta_from_record_times():
    state = MonitorState()
    state.apply(started())
    state.apply(StepLogged(10, 1, 1.0, 1e-3, 2.0, 100.0, time=1001.0))
    state.apply(StepLogged(20, 2, 0.5, 1e-3, 1.0, 100.0, time=1002.0))  # 10 steps per s
    assert state.status == "running"
    assert state.eta_s() == pytest.approx(20 * 0.1)  # 40 planned steps, 20 done
    assert state.progress() == pytest.approx(0.5)
    state.apply(ControlApplied(20, "pause", None, "tui", time=1003.0))
    assert state.status == "paused" and state.eta_s() is None
    state.apply(ControlApplied(20, "lr", 3e-4, "tui", time=1100.0))
    state.apply(ControlApplied(20, "resume", None, "tui", time=1101.0))
    state.apply(StepLogged(30, 3, 0.4, 3e-4, 1.0, 100.0, time=1102.0))  # the pause is not pace
    assert state.lr == 3e-4 and state.status == "running"
    assert state.eta_s() == pytest.approx(10 * 0.1)
    assert state.progress_text() == "epoch 3/4 · step 30/40 · 1m42s, ETA 1.0s"
    state.apply(RunEnded("stopped", 3, 30, wall_s=102.0, time=1103.0))
    assert state.status == "stopped" and not state.live


def test_divergence_pause_then_resume_clears_the_alert():
    state = MonitorState()
    state.apply(started())
    state.apply(StepLogged(10, 1, math.nan, 1e-3, math.inf, 100.0, time=1001.0))
    assert state.current_text(state.metric_rows()[0]) == "nan"
    state.apply(ControlApplied(10, "pause", None, "divergence", "non-finite loss at step 10; restored", time=1002.0))
    assert state.status == "diverged (paused)" and state.paused
    assert "non-finite loss at step 10" in state.alert
    state.apply(ControlApplied(10, "resume", None, "tui", time=1003.0))
    assert state.status == "running" and state.alert == ""


def test_process_exit_before_start_shows_stderr_line():
    state = MonitorState()
    state.process_exited(2, "config.toml: optim.lr: must be > 0")
    assert state.status == "failed" and state.alert == "config.toml: optim.lr: must be > 0"
    signalled = MonitorState()
    signalled.apply(started())
    signalled.process_exited(143)
    assert signalled.status == "stopped" and "SIGTERM" in signalled.alert


def test_vanished_attached_run_is_crashed_once():
    state = MonitorState()
    state.apply(started())
    state.process_vanished()
    state.process_vanished()
    assert state.status == "crashed"
    assert sum(1 for line in state.log if line.kind == "alert") == 1


def test_epoch_summary_and_early_stop_pane():
    state = MonitorState()
    state.apply(started(early_stop=EarlyStopStatus("val_loss", None, None, 0, 3)))
    assert state.early_stop_lines()[0] == "min val_loss: none yet"
    stop = EarlyStopStatus("val_acc", 0.9, 1, 2, 3, "max", False)
    state.apply(EpochEnded(3, 30, 0.4, 0.5, 1e-3, train_acc=0.8, val_acc=0.85, early_stop=stop, time=1003.0))
    assert state.early_stop_lines() == ["max val_acc: 0.9 @ epoch 1", "wait 2/3, keeps last"]
    assert state.log[-1].text.startswith("epoch 3/4  loss 0.4/0.5  acc 80.0%/85.0%  lr 1.00e-03")
    assert state.log[-1].text.endswith("wait 2/3")


def test_new_log_lines_are_handed_out_once():
    state = MonitorState(log_lines=3)
    for index in range(5):
        state.note(f"line {index}")
    assert [line.text for line in state.new_log_lines(0)] == ["line 2", "line 3", "line 4"]
    assert [line.text for line in state.new_log_lines(4)] == ["line 4"]
    assert state.new_log_lines(5) == []


def test_version_changes_only_when_something_shown_changes():
    state = MonitorState()
    before = state.version
    state.apply(started())
    assert state.version > before


def test_layer_bars_flag_outliers_on_a_shared_log_scale():
    layers = {}
    for name, norm in (("a", 1.0), ("b", 0.5), ("c", 2.0), ("tiny", 1e-6), ("huge", 5e4), ("bad", math.nan)):
        layers[name] = LayerHistory(8)
        layers[name].add(norm)
    bars, scale = layer_bars(layers)
    flags = {bar.name: bar.flag for bar in bars}
    assert flags == {"a": "", "b": "", "c": "", "tiny": "vanishing", "huge": "exploding", "bad": "non-finite"}
    assert scale.low_exp <= -6 and scale.high_exp >= 5
    fractions = {bar.name: bar.fraction for bar in bars}
    assert fractions["tiny"] < fractions["b"] < fractions["a"] < fractions["c"] < fractions["huge"] <= 1


def test_chart_scale_spans_at_least_three_decades():
    layer = LayerHistory(4)
    layer.add(0.5)
    scale = chart_scale({"w": layer})
    assert scale.high_exp - scale.low_exp >= 3
    assert flag_of(0.0, None) == "vanishing"


def test_small_helpers():
    assert fmt_value(None) == "–" and fmt_value(0.123456) == "0.1235" and fmt_value(1e-5) == "1.00e-05"
    assert fmt_lr(3e-4) == "3.00e-04"
    assert fmt_rate(15300) == "15.3k"
    assert fmt_duration(0.317) == "0.3s" and fmt_duration(59) == "59s" and fmt_duration(61) == "1m01s" and fmt_duration(3 * 3600 + 120) == "3h02m"
    assert log_fraction(10, 0, 2) == 0.5 and log_fraction(0, 0, 2) == 0.0
    assert log_sparkline((1e-3, 1.0), chart_scale({}))[0] < log_sparkline((1e-3, 1.0), chart_scale({}))[1]
    assert short_name("layer3.1.conv2.weight", 10) == "…v2.weight"
    assert short_name("fc1.bias", 10) == "fc1.bias  "


def test_control_lines_prefer_the_trainers_message():
    from nntui.tui.state import describe_control

    assert describe_control(ControlApplied(5, "lr", 3e-4, "ctl")) == "step 5: lr → 3.00e-04 (ctl)"
    assert describe_control(ControlApplied(5, "pause", None, "tui", "paused at step 5")) == "paused at step 5 (tui)"
