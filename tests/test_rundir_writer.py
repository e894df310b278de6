"""RunDirWriter: batched high-rate records, prompt everything else, order kept, failures surfaced."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nntui.config import load_config
from nntui.engine.events import ControlApplied, EpochEnded, StepLogged
from nntui.rundir import RunDirWriter


def lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def epoch(n: int) -> EpochEnded:
    return EpochEnded(epoch=n, step=10 * n, train_loss=1.0 / n, val_loss=None, lr=0.01)


@pytest.fixture
def make_writer(tmp_path):
    writers = []

    def make(flush_within_s: float) -> RunDirWriter:
        writer = RunDirWriter(tmp_path / f"run{len(writers)}", load_config("digits-mlp", []),
                              flush_within_s=flush_within_s)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.close()


def test_epoch_records_reach_the_file_within_the_flush_delay_with_nothing_after_them(make_writer):
    writer = make_writer(0.3)
    writer(epoch(1))
    writer(StepLogged(11, 2, 0.5, 0.01, 1.0, 100.0))
    assert lines(writer.run_dir) == []  # batched: not yet written
    started = time.monotonic()
    while not lines(writer.run_dir) and time.monotonic() - started < 5:
        time.sleep(0.01)
    waited = time.monotonic() - started
    assert [r["event"] for r in lines(writer.run_dir)] == ["epoch", "step"]
    assert 0.15 < waited < 2.0


def test_a_control_record_is_written_at_once_after_the_records_before_it(make_writer):
    writer = make_writer(60.0)
    writer(epoch(1))
    writer(epoch(2))
    writer(ControlApplied(20, "pause", None, "tui", "paused at step 20"))
    assert [(r["event"], r.get("epoch")) for r in lines(writer.run_dir)] == [("epoch", 1), ("epoch", 2), ("control", None)]
    writer(epoch(3))
    writer.close()  # writes what is pending
    assert [r["event"] for r in lines(writer.run_dir)] == ["epoch", "epoch", "control", "epoch"]
    assert not writer._flusher.is_alive()


class FullDisk:
    """A stream whose writes fail as on a full disk."""

    closed = False

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        pass


def test_a_failed_batched_write_is_raised_to_the_next_caller(make_writer):
    writer = make_writer(0.05)
    real_stream, writer._stream = writer._stream, FullDisk()
    writer(epoch(1))
    writer._flusher.join(5)  # the flushing thread stops at its failed write
    assert not writer._flusher.is_alive()
    with pytest.raises(OSError, match="No space left"):
        writer(epoch(2))
    writer._stream = real_stream
