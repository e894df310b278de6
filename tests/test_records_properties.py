"""Property tests of the record format: any line, any record, any field goes through every reader
without an exception; a sampled catch-up keeps what matters; non-finite floats round-trip."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import math
import types
import typing
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nntui import records as records_module
from nntui.console import PlainConsole
from nntui.engine.events import EVENT_TYPES, GradNorms, StepLogged, from_record, to_record
from nntui.records import RecordTail, last_record, parse_lines, read_records, record_line, scan_records
from nntui.runs import run_info
from nntui.tui.follow import poll_events
from nntui.tui.gradbars import short_names
from nntui.tui.state import SERIES_KEYS, MonitorState

# tmp_path is shared by a test's examples: each example writes files of its own names (`fresh`)
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["NaN", "Infinity", "-Infinity"])

INTS = st.integers() | st.sampled_from([2**63 - 1, 2**63, -(2**63), 10**400, -(10**400)])
json_values = st.recursive(
    st.none() | st.booleans() | INTS | FLOATS | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


def fitting(annotation: typing.Any) -> st.SearchStrategy[typing.Any]:
    """Values (as JSON) that a field of `annotation` is written with, non-finite floats included."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
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
    for key in SERIES_KEYS:
        state.latest_text(key)
        state.series[key].values()
    layers = state.layers
    layers.scale(), layers.steps(), layers.columns(40), short_names(layers.names(), 12)
    for layer in layers:
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
def test_any_lines_go_through_the_follower_and_the_monitor_state(tmp_path, texts):
    assert all(isinstance(record, dict) for record in parse_lines("".join(texts)))
    events = poll_events(RecordTail(fresh(tmp_path, "".join(texts))))
    state = MonitorState(history=8, layer_recent=4)
    state.apply_all(events)
    exercise(state)
    state.process_exited(1, "x"), state.process_vanished()
    exercise(state)


@SETTINGS
@given(st.lists(event_records(), max_size=25))
def test_any_records_go_through_the_monitor_state_and_the_console(items):
    events = [from_record(record) for record in items]
    state = MonitorState(history=4, layer_recent=2)
    state.apply_all(events)
    exercise(state)
    console = PlainConsole(stream=io.StringIO(), every_s=0.0)
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
def test_a_sampled_catch_up_keeps_every_record_but_the_periodic_ones(tmp_path, items, sample_over, samples,
                                                                    exact_tail, chunk):
    items = [{"event": record.pop("event"), **record} for record in items]  # as to_record puts it
    text = "".join(map(record_line, items)).encode()
    every = parse_lines(text)
    with mock.patch.object(records_module, "CHUNK_BYTES", chunk):
        sampled = RecordTail(fresh(tmp_path, text), sample_over, samples, exact_tail).poll()
    periodic = records_module.SAMPLED_EVENTS
    others = [r for r in every if r["event"] not in periodic and isinstance(r["event"], str)]  # no `event`: no record
    assert [r for r in sampled if r.get("event") not in periodic] == others
    assert all(record in every for record in sampled)
    for event in periodic:  # the last of each is always there: the latest values are exact
        kept = [r for r in sampled if r.get("event") == event]
        assert kept[-1:] == [r for r in every if r.get("event") == event][-1:]


@SETTINGS
@given(st.lists(lines(), max_size=30), st.integers(1, 300))
@example(["{}\n"], 1)  # an empty object is a record too (last_record once dropped it as falsy)
def test_chunked_readers_find_what_a_whole_read_finds(tmp_path, texts, chunk):
    text = "".join(texts)
    path = fresh(tmp_path, text)
    wanted = ("start", "epoch")
    every = parse_lines(text.rpartition("\n")[0])
    with mock.patch.object(records_module, "CHUNK_BYTES", chunk):  # lines across chunk boundaries
        assert read_records(path.parent) == every
        assert list(scan_records(path, wanted)) == [r for r in every if r.get("event") in wanted]
        assert last_record(path.parent, window=chunk) == (every[-1] if every else None)
        tail = RecordTail(path, sample_over=10**9)
        assert tail.poll(max_bytes=len(text.encode()) // 2) + tail.poll() == every


@SETTINGS
@given(st.lists(lines(), max_size=20))
def test_run_info_reads_any_file(tmp_path, texts):
    run_dir = fresh(tmp_path, "".join(texts)).parent
    info = run_info(run_dir)
    assert info.epochs >= 0 and (info.best is None or isinstance(info.best, float))


# ---------------------------------------------------------------------------- cases


_names = itertools.count()


def fresh(tmp_path: Path, text: str | bytes) -> Path:
    """`text` as the metrics.jsonl of a new run directory under `tmp_path`."""
    run_dir = tmp_path / f"run{next(_names)}"
    run_dir.mkdir()
    path = run_dir / "metrics.jsonl"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path
