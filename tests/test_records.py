"""The record format: non-finite floats as standard JSON, fields read by their annotations, the
readers of run directories (whole, from the end, followed, sampled), on hand-made cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nntui.console import end_line, epoch_line
from nntui.engine.events import (
    EarlyStopStatus,
    EpochEnded,
    GradNorms,
    RunEnded,
    RunStarted,
    StepLogged,
    from_record,
    to_record,
)
from nntui.records import (
    RecordTail,
    as_float,
    json_safe,
    last_record,
    parse_lines,
    read_records,
    record_line,
    scan_records,
    tail_records,
)
from nntui.runs import last_end, run_info
from nntui.tui.history import Series
from nntui.tui.state import SERIES_KEYS, MonitorState


def test_non_finite_floats_are_written_as_standard_json_strings():
    record = {"event": "step", "loss": math.nan, "nested": {"a": [math.inf, -math.inf]}, "fine": 1.5}
    line = record_line(record)
    assert line == '{"event":"step","loss":"NaN","nested":{"a":["Infinity","-Infinity"]},"fine":1.5}\n'
    assert json.loads(json.dumps(json_safe(record), allow_nan=False)) == json_safe(record)
    assert [as_float(value) for value in ("NaN", "Infinity", "-Infinity")][1:] == [math.inf, -math.inf]
    assert math.isnan(as_float("NaN")) and math.isnan(as_float(None))
    assert as_float(True) is None and as_float("1.5") is None and as_float([1]) is None and as_float(2) == 2.0


def test_the_run_directory_writes_records_and_summary_in_the_same_encoding():
    from nntui import rundir

    record = {"event": "end", "best": math.nan, "test_loss": -math.inf}
    assert rundir.record_line(record) == record_line(record) == '{"event":"end","best":"NaN","test_loss":"-Infinity"}\n'
    summary = json.dumps(rundir._json_safe({"best": math.inf, "test": [math.nan]}), indent=2)  # as write_summary
    assert json.loads(summary, parse_constant=pytest.fail) == {"best": "Infinity", "test": ["NaN"]}


def test_null_floats_from_older_files_read_as_nan():
    old = '{"event":"step","step":9,"epoch":1,"loss":1e34,"lr":1.0,"grad_norm":null,"samples_per_s":5.0,"time":1}'
    step = from_record(parse_lines(old)[0])
    assert math.isnan(step.grad_norm) and step.loss == 1e34
    grads = from_record({"event": "grad_norms", "step": 9, "norms": {"a": None, "b": 2.0}, "time": 1})
    assert grads.norms[0][0] == "a" and math.isnan(grads.norms[0][1]) and grads.norms[1] == ("b", 2.0)
    end = from_record({"event": "end", "status": "diverged", "epoch": 0, "step": 9, "best": None, "wall_s": None})
    assert end.best is None and math.isnan(end.wall_s)  # `float | None` keeps its null; `float` reads NaN


def test_from_record_skips_or_defaults_what_it_cannot_use():
    step = {"event": "step", "step": 4, "epoch": 1, "loss": 0.5, "lr": 0.1, "grad_norm": 1.0, "samples_per_s": 9.0}
    assert from_record({**step, "extra": [1]}).step == 4
    assert from_record({**step, "step": "4"}) is None  # a required field unusable: the record is skipped
    assert from_record({**step, "loss": True}) is None
    assert from_record({**step, "step": 4.0}).step == 4
    assert from_record({**step, "step": 10**400}) is None and from_record({**step, "step": 1e300}) is None
    assert math.isnan(from_record(step).time)  # no time: NaN, not the reader's clock
    epoch = {"event": "epoch", "epoch": 2, "step": 8, "train_loss": 0.4, "val_loss": None, "lr": 0.1}
    assert from_record({**epoch, "early_stop": {"monitor": "val_loss", "wait": "x"}}).early_stop is None
    assert from_record({**epoch, "early_stop": [1, 2]}).early_stop is None
    assert from_record({**epoch, "train_acc": "high"}).train_acc is None  # an optional field: its default
    good = {"monitor": "val_loss", "best": "Infinity", "best_epoch": None, "wait": 1, "patience": 3}
    assert from_record({**epoch, "early_stop": good}).early_stop == EarlyStopStatus("val_loss", math.inf, None, 1, 3)
    start = {"event": "start", "preset": "p", "device": "cpu", "params": 1, "train_size": 1, "val_size": 1,
             "test_size": 1, "resumed_from": None, "layers": ["a", 3, "b"]}
    assert from_record(start).layers == ("a", "b")
    assert from_record({**start, "layers": "ab"}).layers == ()
    assert from_record({"event": ["step"]}) is None and from_record(None) is None


def test_series_take_nan_and_missing_values():
    series = Series(4)
    for x, y in ((1, 1.0), (2, math.nan), (3, None), (4, math.inf), (5, 2.0)):
        series.append(x, y)
    assert series.values() == [1.0, 2.0] and series.non_finite == 3 and series.total == 5


def test_the_console_prints_non_finite_values():
    epoch = EpochEnded(1, 9, math.nan, math.inf, 1.0, val_mae=math.nan, val_r2=-math.inf,
                       early_stop=EarlyStopStatus("val_loss", math.nan, None, 1, 3))
    assert "train_loss nan" in epoch_line(epoch) and "val_r2 -inf" in epoch_line(epoch)
    end = RunEnded("diverged", 0, 9, best=math.nan, test_loss=math.nan, wall_s=math.nan, error="non-finite loss")
    assert "test_loss nan" in end_line(end) and "wall nans" in end_line(end)


def test_the_last_record_is_found_from_the_end(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert last_record(tmp_path) is None
    path.write_text(record_line({"event": "epoch", "epoch": 1}) + "x" * 10_000 + "\n" + '{"event":"en')
    assert last_record(tmp_path, window=100) == {"event": "epoch", "epoch": 1}
    path.write_text("garbage\n")
    assert last_record(tmp_path) is None


def test_a_record_tail_returns_only_complete_lines_across_polls(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines_ = [record_line({"event": "step", "step": n}) for n in range(3)]
    path.write_text(lines_[0] + lines_[1][:7])
    tail = RecordTail(path)
    assert [r["step"] for r in tail.poll()] == [0]
    assert tail.poll() == []
    with open(path, "a") as handle:
        handle.write(lines_[1][7:] + lines_[2])
    assert [r["step"] for r in tail.poll()] == [1, 2]
    assert RecordTail(tmp_path / "absent").poll() == []


def test_readers_skip_a_partial_last_line_and_the_cut_first_line_of_a_tail(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(record_line({"event": "epoch", "epoch": n}) for n in range(1, 4)) + '{"event":"ep')
    assert [r["epoch"] for r in read_records(tmp_path)] == [1, 2, 3]
    assert [r["epoch"] for r in scan_records(path, ["epoch"])] == [1, 2, 3]
    size = len(record_line({"event": "epoch", "epoch": 3})) + 15
    assert [r["epoch"] for r in tail_records(tmp_path, max_bytes=size)] == [3]


def test_a_long_backlog_from_another_writer_is_read_in_full_a_part_per_poll(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"time": n, "event": "step", "step": n}) + "\n" for n in range(500)))
    tail = RecordTail(path, sample_over=1000)
    polls = []
    while batch := tail.poll():
        polls.append(batch)
    assert len(polls) > 5 and [r["step"] for batch in polls for r in batch] == list(range(500))


def test_a_sampled_catch_up_of_a_long_run_shows_what_a_full_replay_shows(tmp_path):
    lines_ = [record_line(to_record(RunStarted("p", "cpu", 1, 1, 1, 1, None, epochs=20, steps_per_epoch=1000,
                                               layers=("w",), time=0.0)))]
    for step in range(1, 20_001):
        lines_.append(record_line(to_record(StepLogged(step, 1 + step // 1000, 1 / step, 1e-3, 1.0, 9.0, time=step))))
        lines_.append(record_line(to_record(GradNorms(step, (("w", 1.0 / step),), time=step))))
        if step % 1000 == 0:
            stop = EarlyStopStatus("val_loss", 0.2, step // 1000, 0, 5)
            lines_.append(record_line(to_record(EpochEnded(step // 1000, step, 0.1, 0.2, 1e-3, early_stop=stop,
                                                           time=step))))
    lines_.append(record_line(to_record(RunEnded("completed", 20, 20_000, 20, 0.2, 0.3, 0.9, wall_s=20_000.0))))
    text = "".join(lines_).encode()
    sampled = sampled_poll(tmp_path, text, sample_over=64 * 1024, samples=2000, exact_tail=4096)
    every = parse_lines(text)
    steps = [r for r in sampled if r["event"] == "step"]
    assert 1000 < len(steps) < 15_000, "a sample, spread over the whole run"
    assert steps[0]["step"] < 100 and steps[-1] == [r for r in every if r["event"] == "step"][-1]
    states = []
    for replayed in (sampled, every):
        state = MonitorState()
        state.apply_all(map(from_record, replayed))
        states.append(state)
    shown = [(state.status, state.step, state.epoch, state.progress_text(), state.results_text(),
              state.early_stop_lines(), state.title_text(), [state.latest_text(key) for key in SERIES_KEYS],
              [line.text for line in state.log], {name: layer.latest for name, layer in state.layers.items()},
              state.series["val_loss"].values()) for state in states]
    assert shown[0] == shown[1]


def test_the_last_end_record_comes_with_its_fields_typed(tmp_path):
    end = {"event": "end", "status": "completed", "epoch": 3.0, "step": 30, "best": "NaN", "wall_s": []}
    run_dir = write(tmp_path, record_line({"event": "start"}) + record_line(end)).parent
    end = last_end(run_dir)
    assert (end["status"], end["epoch"], end["wall_s"]) == ("completed", 3, 0.0) and math.isnan(end["best"])
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(record_line({"event": "end", "status": "completed", "epoch": [3], "step": 30}))
    assert last_end(run_dir) is None  # no usable epoch: not an end record


def test_run_info_reads_non_finite_values(tmp_path):
    records = [to_record(RunStarted("p", "cpu", 1, 1, 1, 1, None, time=10.0)),
               to_record(EpochEnded(1, 5, math.nan, math.nan, 0.1, time=11.0)),
               to_record(EpochEnded(2, 10, 0.5, 0.25, 0.1, time=12.0)),
               to_record(EpochEnded(2, 10, 0.5, math.inf, 0.1, time=13.0))]
    run_dir = write(tmp_path, "".join(map(record_line, records))).parent
    info = run_info(run_dir)
    assert (info.epochs, info.best, info.monitor, info.wall_s) == (2, 0.25, "val_loss", 3.0)
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(record_line(to_record(RunEnded("diverged", 2, 10, best=math.nan, wall_s=math.inf))))
    info = run_info(run_dir)
    assert info.status == "diverged" and math.isnan(info.best) and info.wall_s == math.inf


# ---------------------------------------------------------------------------- helpers

def write(tmp_path: Path, text: str) -> Path:
    """`text` as the metrics.jsonl of the run directory `tmp_path/run`."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "metrics.jsonl").write_text(text, encoding="utf-8")
    return run_dir / "metrics.jsonl"


def sampled_poll(tmp_path: Path, text: bytes, sample_over: int, samples: int, exact_tail: int) -> list[dict]:
    path = tmp_path / "sampled.jsonl"
    path.write_bytes(text)
    return RecordTail(path, sample_over, samples, exact_tail).poll()
