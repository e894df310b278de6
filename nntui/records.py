"""The `metrics.jsonl` format in one place: a record as a line, lines back as records.

Lines are standard JSON (jq, pandas): a float that is NaN or infinite is written as the
string "NaN", "Infinity" or "-Infinity", and `as_float` turns those strings (and a null,
which older files wrote instead) back into floats. Typed decoding of one record is
`engine.events.from_record`; this module only deals in dicts and bytes.

Long runs stay cheap to read: `scan_records` finds the few records it is asked for by a
byte search instead of decoding every line, and `RecordTail` catching up with a large
backlog decodes only a sample of the periodic records (see `SAMPLED_EVENTS`). Neither
holds more than a chunk of the file in memory. No torch, textual or rich here.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from nntui.fs import RunDir

METRICS = RunDir.METRICS
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
EVENT_FIRST = b'{"event":'  # how every line starts: the byte searches rely on it
SAMPLED_EVENTS = ("step", "grad_norms", "system")  # the periodic records: a sample of them draws the same curves
CHUNK_BYTES = 8 * 1024 * 1024
SAMPLE_OVER_BYTES = 4 * 1024 * 1024  # a backlog larger than this is caught up with by sampling
SAMPLES = 4096  # about how many records of each sampled event a catch-up decodes
EXACT_TAIL_BYTES = 128 * 1024  # the end of a backlog is always decoded in full (latest values exact)

_STRICT_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # built once, not per record
_DECODE_ERRORS = (ValueError, RecursionError)  # bad JSON or UTF-8; 10^5 nested brackets


# ---------------------------------------------------------------------------- writing


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinite float (in dicts, lists, tuples) as its JSON string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def record_line(record: dict[str, Any]) -> str:
    """One `metrics.jsonl` line: compact standard JSON, `event` first as `to_record` puts it."""
    try:
        text = _STRICT_ENCODER.encode(record)
    except ValueError:  # a non-finite float: rare, only a diverging run has them
        text = _STRICT_ENCODER.encode(json_safe(record))
    return text + "\n"


# ---------------------------------------------------------------------------- values


def as_float(value: Any, default: float | None = None, null: float | None = math.nan) -> float | None:
    """A float field of a record as a float: a number, or "NaN"/"Infinity"/"-Infinity".

    A null reads as `null` (NaN: older files wrote non-finite floats as null); anything
    else (a bool, another string, a list) is unusable and reads as `default`.
    """
    if value is None:
        return null
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int beyond the float range
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        return NON_FINITE.get(value, default)
    return default


# ---------------------------------------------------------------------------- reading


def parse_lines(chunk: str | bytes | bytearray) -> list[dict[str, Any]]:
    """The records of complete lines; a line that is not a JSON object is skipped.

    Lines end at "\n" only: a raw U+2028 inside a string (JSON allows it) is not a line end."""
    return list(_records_of(chunk.split("\n" if isinstance(chunk, str) else b"\n")))


def _parse_line(line: str | bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except _DECODE_ERRORS:
        return None
    return record if isinstance(record, dict) else None


def _records_of(lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
    """The records of `lines` (an empty object `{}` is one too: not falsy-filtered away)."""
    return (record for record in map(_parse_line, lines) if record is not None)


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete record of a run; a partial last line (a crash mid-write) is skipped."""
    records: list[dict[str, Any]] = []
    try:
        with open(Path(run_dir) / METRICS, "rb") as handle:
            for buffer, begin, end in _spans(handle, 0, None):
                records.extend(parse_lines(buffer[begin + 1:end]))
    except OSError:  # missing, or another user's private run
        return []
    return records


def tail_records(run_dir: Path, max_bytes: int = 256 * 1024) -> list[dict[str, Any]]:
    """The complete records in the last `max_bytes` of `metrics.jsonl` (cheap on a long run)."""
    try:
        with open(Path(run_dir) / METRICS, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            handle.seek(start)
            data = handle.read()
    except OSError:
        return []
    if start:
        data = data.partition(b"\n")[2]  # the first line is cut
    return parse_lines(data.rpartition(b"\n")[0])


def last_record(run_dir: Path, window: int = 4096) -> dict[str, Any] | None:
    """The last complete record of `metrics.jsonl` (None if it has none), read from the end:
    a look at the last `window` bytes, doubled until a record is in it."""
    try:
        with open(Path(run_dir) / METRICS, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            while True:
                start = max(0, size - window)
                handle.seek(start)
                lines = handle.read(size - start).split(b"\n")[1 if start else 0:-1]  # whole lines only
                record = next(_records_of(reversed(lines)), None)
                if record is not None or not start:
                    return record
                window *= 2
    except OSError:
        return None


Span = tuple[bytes | bytearray, int, int]


def _spans(handle: BinaryIO, start: int, stop: int | None) -> Iterator[Span]:
    """The complete lines from byte `start` (a line start) to `stop` (None: the end of the
    file), a chunk at a time, as `(buffer, begin, end)`: `buffer[begin]` is a newline and
    `buffer[begin + 1:end]` whole lines, `end - begin - 1` bytes of the file. A partial last
    line is left out. The chunk buffer is reused: a span is only good until the next one."""
    handle.seek(start)
    expected = (os.fstat(handle.fileno()).st_size if stop is None else stop) - start
    chunk = min(CHUNK_BYTES, max(64 * 1024, expected))  # a follower's polls read a few lines: a small buffer
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    carry = b"\n"  # a newline, then the start of a line cut at the end of the last chunk
    position = start
    while stop is None or position < stop:
        count = handle.readinto(view[:chunk if stop is None else min(chunk, stop - position)])
        if not count:
            return
        position += count
        first = buffer.find(b"\n", 0, count)
        if first < 0:
            carry += view[:count]
            continue
        piece = carry + view[:first + 1]  # the line across the chunk boundary, alone: no big copy
        yield piece, 0, len(piece)
        last = buffer.rfind(b"\n", 0, count)
        if last > first:
            yield buffer, first, last + 1
        carry = b"\n" + view[last + 1:count]


def _event_line(events: Iterable[str], exclude: bool = False) -> re.Pattern[bytes]:
    """Matches a line (after its newline) that starts with the `event` of one of `events`,
    or of none of them; as `record_line` writes it, or with json.dumps' spaces."""
    names = b"|".join(re.escape(name.encode()) + b'"' for name in events)
    return re.compile(rb'\n(\{"event": ?"(?' + (b"!" if exclude else b":") + names + rb')[^\n]*)')


def _event_first(handle: BinaryIO, start: int) -> bool:
    """Whether the line at `start` starts with its `event`, as `to_record` puts it: then the
    byte searches find every record (a file from another writer is decoded line by line)."""
    handle.seek(start)
    return handle.read(len(EVENT_FIRST)) == EVENT_FIRST


def scan_records(path: Path, events: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The records of `events` in the file at `path`, in order, without decoding the others.

    The lines are found by a byte search when the file's lines start with their `event` (as
    `to_record` and so every nntui writer puts it); other files are decoded line by line.
    """
    try:
        for found, _ in _scanned(path, events, 0):
            yield from found
    except OSError:  # missing, or another user's private run
        return


def scan_appended(path: Path, events: Iterable[str], start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The records of `events` in the complete lines of the file at `path` from byte `start` (a
    line start), found as `scan_records` finds them, and the byte where the first line not read
    starts: a line still being written is left for the next call (give it that byte)."""
    records: list[dict[str, Any]] = []
    read_to = start
    try:
        for found, read_to in _scanned(path, events, start):  # noqa: B007 -- the last one is returned
            records.extend(found)
    except OSError:  # missing, or another user's private run
        pass
    return records, read_to


def _scanned(path: Path, events: Iterable[str], start: int) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Per buffer read from byte `start` (a line start): the records of `events` in its complete
    lines, and the byte after them. A byte search finds them when the file's lines start with
    their `event`; other files are decoded line by line. OSError from opening or reading."""
    wanted = tuple(events)
    pattern = _event_line(wanted)
    with open(path, "rb") as handle:
        searchable = _event_first(handle, start)
        for buffer, begin, end in _spans(handle, start, None):
            if searchable:
                found = list(_records_of(match.group(1) for match in pattern.finditer(buffer, begin, end)))
            else:
                found = [r for r in parse_lines(buffer[begin + 1:end]) if r.get("event") in wanted]
            start += end - begin - 1
            yield found, start


class RecordTail:
    """Reads the records appended to a `metrics.jsonl` since the last poll.

    Only complete lines (ending in a newline) are returned: a line being written is left
    for the next poll, and a partial last line of a crashed run is never returned.
    A backlog over `sample_over` bytes (replaying or attaching to a long run) is read in
    one poll, in chunks, decoding every record but those of `SAMPLED_EVENTS`, of which
    about `samples` each, evenly spaced, plus all in the last `exact_tail` bytes.
    """

    def __init__(self, path: Path, sample_over: int = SAMPLE_OVER_BYTES, samples: int = SAMPLES,
                 exact_tail: int = EXACT_TAIL_BYTES) -> None:
        self.path = Path(path)
        self.sample_over, self.samples, self.exact_tail = sample_over, samples, exact_tail
        self._offset = 0  # where the first line not returned yet starts

    def poll(self, max_bytes: int | None = None) -> list[dict[str, Any]]:
        """The new complete records (of at most `max_bytes` of the file, if given)."""
        try:
            with open(self.path, "rb") as handle:
                return self._read(handle, max_bytes)
        except OSError:  # missing, or another user's private run
            return []

    def _read(self, handle: BinaryIO, max_bytes: int | None) -> list[dict[str, Any]]:
        stop = os.fstat(handle.fileno()).st_size
        if max_bytes is not None:
            stop = min(stop, self._offset + max_bytes)
        backlog = stop - self._offset
        if backlog <= 0:
            return []
        sampler = None
        if backlog > self.sample_over and _event_first(handle, self._offset):
            sampler = _Sampler(self._offset, stop, max(1, backlog // self.samples), self.exact_tail)
        elif backlog > self.sample_over:  # from another writer: all of it, `sample_over` bytes a poll
            stop = self._offset + self.sample_over
        records: list[dict[str, Any]] = []
        for buffer, begin, end in _spans(handle, self._offset, stop):
            if sampler is None:
                records.extend(parse_lines(buffer[begin + 1:end]))
            else:
                records.extend(sampler.records(buffer, begin, end, self._offset))
            self._offset += end - begin - 1
        return records


class _Sampler:
    """Picks the lines of one catch-up to decode: all but the sampled events; of each sampled
    event, the first after every `every` bytes and the last; everything in the last `exact_tail`."""

    _others = _event_line(SAMPLED_EVENTS, exclude=True)
    _sampled_kinds = tuple(re.compile(rb'\n\{"event": ?"' + name.encode() + b'"') for name in SAMPLED_EVENTS)
    _longest = max(len(kind.pattern) for kind in _sampled_kinds)  # an upper bound of a match's length

    def __init__(self, start: int, stop: int, every: int, exact_tail: int) -> None:
        self.every = every
        self.exact_from = max(start, stop - exact_tail)
        self.next_sample = start

    def records(self, buffer: bytes | bytearray, begin: int, end: int, base: int) -> list[dict[str, Any]]:
        """The records to decode of the span `buffer[begin + 1:end]`, which is at byte `base` of the file.
        (Byte f of the file is at `buffer[begin + 1 + f - base]`.)"""
        exact = begin + self.exact_from - base  # where the exact part would begin in the buffer, minus one
        if exact >= end - 1:
            return self._sampled(buffer, begin, end, base)
        if exact <= begin:
            return parse_lines(buffer[begin + 1:end])
        cut = buffer.index(b"\n", exact, end)  # the exact part starts at a line
        return self._sampled(buffer, begin, cut + 1, base) + parse_lines(buffer[cut + 1:end])

    def _sampled(self, buffer: bytes | bytearray, begin: int, end: int, base: int) -> list[dict[str, Any]]:
        starts = {match.start() for match in self._others.finditer(buffer, begin, end)}
        offsets = [begin]  # the windows cover the whole span (a window cut at a span's end goes on here)
        while self.next_sample < base + end - begin - 1:
            offsets.append(begin + self.next_sample - base)  # the newline before a line at `next_sample`
            self.next_sample += self.every
        last: dict[re.Pattern[bytes], tuple[int, int]] = {}
        for offset in offsets:
            window = min(end, offset + self.every + self._longest)  # no further than the next sample point
            for kind in self._sampled_kinds:
                if match := kind.search(buffer, offset, window):
                    starts.add(match.start())
                    last[kind] = match.end(), window
        for kind, (after, window) in last.items():  # and the span's last of each: the latest values are exact
            final = None
            while match := kind.search(buffer, after, window):
                final, after = match.start(), match.end()
            if final is not None:
                starts.add(final)
        lines = (buffer[start + 1:buffer.index(b"\n", start + 1, end)] for start in sorted(starts))
        return [record for record in map(_parse_line, lines) if record is not None]
