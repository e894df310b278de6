"""The record format: any line, any record, any field goes through every reader without an exception,
and non-finite floats round-trip as standard JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nntui import records as records_module
from nntui.console import PlainConsole, end_line, epoch_line
from nntui.engine.events import (
    EVENT_TYPES, EarlyStopStatus, EpochEnded, GradNorms, RunEnded, RunStarted, StepLogged, from_record, to_record,
)
from nntui.records import (
    RecordTail, as_float, json_safe, last_record, parse_lines, read_records, record_line, scan_records,
    tail_records,
)
from nntui.runs import last_end, run_info
from nntui.tui.history import Series
from nntui.tui.state import MonitorState

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["NaN", "Infinity", "-Infinity"])

INTS = st.integers() | st.sampled_from([2**63 - 1, 2**63, -(2**63), 10**400, -(10**400)])
json_values = st.recursive(
    st.none() | st.booleans() | INTS | FLOATS | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


def fitting(annotation: typing.Any) -> st.SearchStrategy[typing.Any]:
    """Values (as JSON) that a field of `annotation` is written with, non-finite floats included."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return st.one_of([st.none() if arg is type(None) else fitting(arg) for arg in args])
    if origin is tuple and args[1:] == (Ellipsis,):
        if typing.get_origin(args[0]) is tuple:  # norms: written as a dict
            return st.dictionaries(st.text(max_size=6), FLOATS | st.none(), max_size=4)
        return st.lists(fitting(args[0]), max_size=4)
    if dataclasses.is_dataclass(annotation):
        return field_dicts(annotation)
    return {int: INTS, float: FLOATS, str: st.text(max_size=12), bool: st.booleans()}[annotation]


def field_dicts(cls: type) -> st.SearchStrategy[dict[str, typing.Any]]:
    """Records of `cls`: as written (every field fitting its annotation), or with fields missing
    or holding any JSON value; both with extra keys."""
    hints = typing.get_type_hints(cls)
    names = [item.name for item in dataclasses.fields(cls)]
    written = st.fixed_dictionaries({name: fitting(hints[name]) for name in names})
    odd = st.fixed_dictionaries({name: st.one_of(fitting(hints[name]), st.just(...), json_values) for name in names})
    return st.builds(lambda values, extra: {**extra, **{k: v for k, v in values.items() if v is not ...}},
                     written | odd, st.dictionaries(st.text(max_size=6), json_values, max_size=2))


def event_records() -> st.SearchStrategy[dict[str, typing.Any]]:
    """Records of every event (mostly of the right shape), of unknown events, and odd `event` keys."""
    known = [field_dicts(cls).map(lambda record, name=name: {"event": name, **record})
             for name, cls in EVENT_TYPES.items()]
    odd = st.dictionaries(st.text(max_size=6), json_values, max_size=4).map(
        lambda record: {**record, "event": record.get("event", "system")})
    return st.one_of(*known, odd)


def lines() -> st.SearchStrategy[str]:
    """Lines as any writer might leave them: ours, json.dumps', garbage, cut short."""
    ours = event_records().map(record_line)
    spaced = event_records().map(lambda record: json.dumps(record) + "\n")
    cut = st.tuples(ours, st.integers(0, 200)).map(lambda pair: pair[0][:pair[1]] + "\n")
    garbage = st.text(max_size=40).map(lambda text: text.replace("\n", " ") + "\n")
    nested = st.integers(1, 3000).map(lambda depth: "[" * depth + "\n")
    return st.one_of(ours, ours, spaced, cut, garbage, nested, json_values.map(lambda v: json.dumps(v) + "\n"))


def exercise(state: MonitorState) -> None:
    """Every text the monitor draws from its state."""
    state.progress_text(), state.results_text(), state.early_stop_lines(), state.title_text()
    state.elapsed_s(), state.eta_s(), state.progress()
    for row in state.metric_rows():
        state.current_text(row)
        state.series[row.key].values()
    for layer in state.layers.values():
        layer.spread()


def same(a: typing.Any, b: typing.Any) -> bool:
    """Equal, with NaN equal to NaN (also inside tuples and nested dataclasses)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(map(same, a, b))
    return a == b


# ---------------------------------------------------------------------------- properties


@SETTINGS
@given(st.lists(lines(), max_size=30))
def test_any_lines_go_through_the_follower_and_the_monitor_state(texts):
    records = parse_lines("".join(texts))
    assert all(isinstance(record, dict) for record in records)
    state = MonitorState(history=8, layer_recent=4)
    state.apply_all(from_record(record) for record in records)
    exercise(state)
    state.process_exited(1, "x"), state.process_vanished()
    exercise(state)


@SETTINGS
@given(st.lists(event_records(), max_size=25))
def test_any_records_go_through_the_monitor_state_and_the_console(records):
    events = [from_record(record) for record in records]
    state = MonitorState(history=4, layer_recent=2)
    state.apply_all(events)
    exercise(state)
    console = PlainConsole(stream=open_null(), every_s=0.0)
    for event in filter(None, events):
        console(event)


@SETTINGS
@given(json_values)
def test_from_record_takes_any_json_value(value):
    assert from_record(value) is None or type(from_record(value)) in EVENT_TYPES.values()


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_floats_round_trip_through_a_line(loss, norm):
    event = StepLogged(3, 1, loss, 1e-3, norm, math.inf, time=5.0)
    line = record_line(to_record(event))
    assert "NaN" not in line or '"NaN"' in line  # standard JSON: no bare NaN token
    json.loads(line, parse_constant=lambda name: pytest.fail(f"bare {name} written"))
    assert same(from_record(parse_lines(line)[0]), event)
    grads = GradNorms(3, (("fc.weight", norm), ("fc.bias", loss)), time=5.0)
    assert same(from_record(parse_lines(record_line(to_record(grads)))[0]), grads)


@SETTINGS
@given(st.lists(event_records(), min_size=1, max_size=40), st.integers(1, 400), st.integers(1, 8),
       st.integers(0, 300), st.integers(1, 500))
def test_a_sampled_catch_up_keeps_every_record_but_the_periodic_ones(items, sample_over, samples, exact_tail, chunk):
    items = [{"event": record.pop("event"), **record} for record in items]  # as to_record puts it
    text = "".join(map(record_line, items)).encode()
    every = parse_lines(text)
    with mock.patch.object(records_module, "CHUNK_BYTES", chunk):
        sampled = sampled_poll(text, sample_over, samples, exact_tail)
    periodic = ("step", "grad_norms")
    others = [r for r in every if r["event"] not in periodic and isinstance(r["event"], str)]  # no `event`: no record
    assert [r for r in sampled if r.get("event") not in periodic] == others
    assert all(record in every for record in sampled)
    for event in periodic:  # the last of each is always there: the latest values are exact
        kept = [r for r in sampled if r.get("event") == event]
        assert kept[-1:] == [r for r in every if r.get("event") == event][-1:]


@SETTINGS
@given(st.lists(lines(), max_size=30), st.integers(1, 300))
def test_chunked_readers_find_what_a_whole_read_finds(texts, chunk):
    text = "".join(texts)
    path = write(text)
    wanted = ("start", "epoch")
    every = parse_lines(text.rpartition("\n")[0])
    with mock.patch.object(records_module, "CHUNK_BYTES", chunk):  # lines across chunk boundaries
        assert read_records(path.parent) == every
        assert list(scan_records(path, wanted)) == [r for r in every if r.get("event") in wanted]
        tail = RecordTail(path, sample_over=10**9)
        assert tail.poll(max_bytes=len(text.encode()) // 2) + tail.poll() == every


@SETTINGS
@given(st.lists(lines(), max_size=20))
def test_run_info_reads_any_file(texts):
    run_dir = write("".join(texts)).parent
    info = run_info(run_dir)
    assert info.epochs >= 0 and (info.best is None or isinstance(info.best, float))


# ---------------------------------------------------------------------------- cases


def test_non_finite_floats_are_written_as_standard_json_strings():
    record = {"event": "step", "loss": math.nan, "nested": {"a": [math.inf, -math.inf]}, "fine": 1.5}
    line = record_line(record)
    assert line == '{"event":"step","loss":"NaN","nested":{"a":["Infinity","-Infinity"]},"fine":1.5}\n'
    assert json.loads(json.dumps(json_safe(record), allow_nan=False)) == json_safe(record)
    assert [as_float(value) for value in ("NaN", "Infinity", "-Infinity")][1:] == [math.inf, -math.inf]
    assert math.isnan(as_float("NaN")) and math.isnan(as_float(None))
    assert as_float(True) is None and as_float("1.5") is None and as_float([1]) is None and as_float(2) == 2.0


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
    sampled = sampled_poll(text, sample_over=64 * 1024, samples=2000, exact_tail=4096)
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
              state.early_stop_lines(), state.title_text(), [state.current_text(row) for row in state.metric_rows()],
              [line.text for line in state.log], {name: layer.latest for name, layer in state.layers.items()},
              state.series["val_loss"].values()) for state in states]
    assert shown[0] == shown[1]


def test_the_last_end_record_comes_with_its_fields_typed(tmp_path):
    run_dir = write(record_line({"event": "start"}) + record_line({"event": "end", "status": "completed", "epoch": 3.0,
                                                                  "step": 30, "best": "NaN", "wall_s": []})).parent
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
    run_dir = write("".join(map(record_line, records))).parent
    info = run_info(run_dir)
    assert (info.epochs, info.best, info.monitor, info.wall_s) == (2, 0.25, "val_loss", 3.0)
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(record_line(to_record(RunEnded("diverged", 2, 10, best=math.nan, wall_s=math.inf))))
    info = run_info(run_dir)
    assert info.status == "diverged" and math.isnan(info.best) and info.wall_s == math.inf


# ---------------------------------------------------------------------------- helpers

_DIRS: list[Path] = []


@pytest.fixture(autouse=True)
def scratch(tmp_path_factory):
    _DIRS.append(tmp_path_factory.mktemp("records"))
    yield
    _DIRS.pop()


def write(text: str) -> Path:
    """`text` as the metrics.jsonl of a fresh run directory (hypothesis calls this many times per test)."""
    run_dir = _DIRS[-1] / f"run{sum(1 for _ in _DIRS[-1].iterdir())}"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(text, encoding="utf-8")
    return run_dir / "metrics.jsonl"


def sampled_poll(text: bytes, sample_over: int, samples: int = 8192,
                 exact_tail: int = 256 * 1024) -> list[dict[str, typing.Any]]:
    path = _DIRS[-1] / f"tail{sum(1 for _ in _DIRS[-1].iterdir())}.jsonl"
    path.write_bytes(text)
    return RecordTail(path, sample_over, samples, exact_tail).poll()


def open_null():
    import io

    return io.StringIO()
