"""The monitor's state model (events in, displayed values out), and its pure helpers."""

import math
from pathlib import Path

import pytest

from nntui.engine.events import (
    ControlApplied,
    EarlyStopStatus,
    EpochEnded,
    RunEnded,
    RunStarted,
    StepLogged,
    from_record,
)
from nntui.runs import read_records
from nntui.tui.formatting import fmt_duration, fmt_lr, fmt_percent, fmt_rate, fmt_value, log_fraction
from nntui.tui.state import MonitorState

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
    assert state.latest_text("val_acc") == fmt_percent(epochs[-1]["val_acc"])
    assert state.latest_text("train_loss") == fmt_value(epochs[-1]["train_loss"])  # the epoch's, not a step's
    assert state.latest_text("step_loss") == fmt_value(steps[-1]["loss"])
    assert state.series["val_mae"].total == 0 and state.series["val_r2"].total == 0  # classification only
    assert len(state.series["val_loss"].values()) == len(epochs)
    assert state.series["step_loss"].total == len(steps)
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
    epochs = [r for r in read_records(RUNS / "diabetes-mlp-complete") if r["event"] == "epoch"]
    assert state.series["val_r2"].total == state.series["val_mae"].total == len(epochs)
    assert state.series["val_acc"].total == 0
    assert state.latest_text("val_r2") == fmt_value(epochs[-1]["val_r2"])
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
    assert state.latest_text("step_loss") == "nan"
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


def test_small_helpers():
    assert fmt_value(None) == "–" and fmt_value(0.123456) == "0.1235" and fmt_value(1e-5) == "1.00e-05"
    assert fmt_lr(3e-4) == "3.00e-04"
    assert fmt_rate(15300) == "15.3k"
    assert fmt_duration(0.317) == "0.3s" and fmt_duration(59) == "59s" and fmt_duration(61) == "1m01s" and fmt_duration(3 * 3600 + 120) == "3h02m"
    assert log_fraction(10, 0, 2) == 0.5 and log_fraction(0, 0, 2) == 0.0


def test_control_lines_prefer_the_trainers_message():
    from nntui.tui.state_text import describe_control

    assert describe_control(ControlApplied(5, "lr", 3e-4, "ctl")) == "step 5: lr → 3.00e-04 (ctl)"
    assert describe_control(ControlApplied(5, "pause", None, "tui", "paused at step 5")) == "paused at step 5 (tui)"


# ---------------------------------------------------------------------------------- resumed runs


def steps_and_epochs(first: int, last: int, *, every: int = 5, per_epoch: int = 10, loss: float = 1.0,
                     time: float = 1000.0) -> list:
    """Step records every `every` steps and an epoch record at each epoch end, from `first` to `last`."""
    events = []
    for step in range(first, last + 1):
        if step % every == 0:
            events.append(StepLogged(step, (step - 1) // per_epoch + 1, loss, 1e-3, 1.0, 100.0, time=time + step))
        if step % per_epoch == 0:
            events.append(EpochEnded(step // per_epoch, step, loss, loss + 0.5, 1e-3, train_acc=0.5, val_acc=0.4,
                                     time=time + step))
    return events


def test_a_resume_from_an_older_checkpoint_supersedes_the_replayed_epochs():
    state = MonitorState()
    state.apply(started(epochs=5, steps_per_epoch=10, pid=1))
    state.apply_all(steps_and_epochs(1, 35, loss=1.0))  # killed at step 35; last.pt was at step 20
    assert len(state.series["val_loss"].values()) == 3 and state.step == 35
    state.apply(started(epochs=5, steps_per_epoch=10, resumed_from=20, pid=2, time=2000.0))
    assert state.step == 20 and state.epoch == 2
    assert state.series["step_loss"].xs() == [5, 10, 15, 20] and state.series["step_loss"].total == 4
    assert state.series["val_loss"].xs() == [10, 20]
    assert "epochs from 3 on are trained again" in state.log[-1].text
    state.apply_all(steps_and_epochs(21, 50, loss=0.25, time=2000.0))
    state.apply(RunEnded("completed", 5, 50, wall_s=30.0, time=2051.0))
    train_loss, val_loss = state.series["step_loss"], state.series["val_loss"]
    assert train_loss.xs() == list(range(5, 51, 5)) and train_loss.total == 10
    assert val_loss.xs() == [10, 20, 30, 40, 50]  # epochs 3 and 4 once, from the resumed run
    assert val_loss.values() == [1.5, 1.5, 0.75, 0.75, 0.75]
    assert state.epoch == 5 and state.step == 50 and state.status == "finished"


def test_a_mid_epoch_checkpoint_drops_that_epochs_old_record():
    state = MonitorState()
    state.apply(started(epochs=5, steps_per_epoch=10))
    state.apply_all(steps_and_epochs(1, 40))
    state.apply(started(epochs=5, steps_per_epoch=10, resumed_from=25))
    assert state.epoch == 3 and state.step == 25
    assert state.series["val_acc"].xs() == [10, 20]
    assert state.series["step_loss"].xs()[-1] == 25
    assert "epochs from 3 on" in state.log[-1].text


def test_a_resume_with_nothing_to_replay_keeps_the_history():
    state = MonitorState()
    state.apply(started(epochs=5, steps_per_epoch=10))
    state.apply_all(steps_and_epochs(1, 20))
    state.apply(RunEnded("stopped", 2, 20, time=1021.0))
    state.apply(started(epochs=5, steps_per_epoch=10, resumed_from=20, time=1100.0))
    assert state.series["step_loss"].total == 4 and len(state.series["val_loss"].values()) == 2
    assert state.log[-1].text == "resumed from step 20 on cpu"
    assert state.status == "running" and state.ended is None


def test_history_stays_bounded_across_resumes():
    state = MonitorState(history=8)
    state.apply(started(epochs=100, steps_per_epoch=10))
    state.apply_all(steps_and_epochs(1, 600, every=1))
    state.apply(started(epochs=100, steps_per_epoch=10, resumed_from=300))
    for key in ("step_loss", "train_loss", "val_loss"):
        xs = state.series[key].xs()
        assert xs and max(xs) <= 300 and len(xs) <= 8
    state.apply_all(steps_and_epochs(301, 1000, every=1))
    for key in ("step_loss", "train_loss", "val_loss"):
        xs = state.series[key].xs()
        assert len(xs) <= 8 and xs == sorted(xs) and xs[-1] == 1000


def test_series_drop_after_forgets_later_points_and_whole_straddling_buckets():
    from nntui.tui.history import Series

    series = Series(capacity=4)
    for x in range(1, 10):  # stride 2 after the first halving: buckets end at 2, 4, 6, 8 -> ...
        series.append(x, float(x))
    series.append(10, math.nan)
    assert series.non_finite == 1
    xs_before = series.xs()
    dropped = series.drop_after(5)
    assert all(x <= 5 for x in series.xs()) and series.xs() == [x for x in xs_before if x <= 5]
    kept = sum(bucket.count for bucket in series.buckets())
    assert series.total == kept and dropped == 10 - kept and series.non_finite == 0
    assert series.last == (series.xs()[-1], series.values()[-1])
    assert series.drop_after(100) == 0
    series.append(6, 6.0)
    assert series.latest == 6.0 and series.xs()[-1] == 6
    assert Series(4).drop_after(1) == 0


def test_a_relaunched_run_is_resuming_until_its_own_start_record():
    state = MonitorState()
    state.await_resume(pid=4242)
    assert state.status == "resuming" and state.live and state.launching
    state.apply(started(pid=100))
    state.apply_all(steps_and_epochs(1, 20))
    state.apply(RunEnded("stopped", 2, 20, time=1021.0))
    assert state.status == "resuming" and state.ended is None and state.launching  # old records
    assert state.eta_s() is None  # the old run's pace says nothing about when the new process starts
    assert state.step == 20 and len(state.series["val_loss"].values()) == 2
    state.apply(started(pid=4242, resumed_from=20, time=1100.0))
    assert state.status == "running" and not state.launching
    failing = MonitorState()
    failing.await_resume(pid=7)
    failing.apply(started(pid=100))
    failing.process_exited(2, "run x has no checkpoints/last.pt to resume from")
    assert failing.status == "failed" and not failing.launching and "last.pt" in failing.alert


def _monitor_sizes(state: MonitorState) -> dict[str, int]:
    sizes = {f"series.{key}": len(series) for key, series in state.series.items()}
    sizes.update({f"layer.{name}": len(layer.recent) for name, layer in state.layers.items()})
    sizes["layer buckets"] = state.layers.buckets
    sizes["log"] = len(state.log)
    sizes["timeline.step_times"] = len(state.timeline.step_times)
    sizes["timeline.markers"] = len(state.timeline.markers)
    return sizes


def test_a_long_run_keeps_every_monitor_buffer_at_a_fixed_size():
    from nntui.engine.events import GradNorms, RunStarted, StepLogged

    state = MonitorState()
    state.apply(RunStarted("digits-mlp", "cpu", 10, 100, 10, 10, None, epochs=1000, steps_per_epoch=100,
                           layers=("fc1.weight", "out.weight"), time=0.0))
    sizes_at = {}
    for step in range(1, 100_001):
        state.apply(StepLogged(step, (step - 1) // 100 + 1, 1.0 / step, 1e-3, 0.5, 1000.0, time=step * 0.01))
        state.apply(GradNorms(step, (("fc1.weight", 0.1), ("out.weight", 0.2)), time=step * 0.01))
        if step % 100 == 0:
            epoch = step // 100
            state.apply(EpochEnded(epoch, step, 1.0 / step, 1.0 / step, 1e-3, train_acc=0.9, val_acc=0.9,
                                   time=step * 0.01))
        if step in (20_000, 100_000):
            sizes_at[step] = _monitor_sizes(state)
    for step, sizes in sizes_at.items():  # bounded by the capacities, however long the run
        for key, size in sizes.items():
            limit = {"log": 2000, "layer buckets": 128}.get(key, 32 if key.startswith("layer.") else 512)
            assert size <= limit, (step, key, size)
    assert state.series["step_loss"].last == (100_000, pytest.approx(1.0 / 100_000))
    assert state.step == 100_000 and state.epoch == 1000


def test_the_latest_system_sample_is_kept_and_other_objects_are_ignored():
    from nntui.tui.state import SystemSampled

    state = MonitorState()
    state.apply(started())
    assert state.system is None
    version = state.version
    state.apply(SystemSampled(cpu_percent=97.5, rss_bytes=512 << 20, step=10, time=1001.0))
    state.apply(SystemSampled(cpu_percent=88.0, rss_bytes=600 << 20, step=20, time=1004.0))
    assert state.system is not None and state.system.cpu_percent == 88.0 and state.system.rss_bytes == 600 << 20
    assert state.version == version + 2 and state.last_time == 1004.0
    state.apply(object())  # type: ignore[arg-type]  # not an event: nothing changes
    assert state.version == version + 2
