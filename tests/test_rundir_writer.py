"""RunDirWriter: records written as they come, short epochs' records with the next one, in order."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nntui.config import load_config
from nntui.engine.events import ControlApplied, EpochEnded, GradNorms, StepLogged
from nntui.rundir import SHORT_EPOCH_S, RunDirWriter


def events_in_file(run_dir: Path) -> list[tuple[str, int | None]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(record["event"], record.get("epoch")) for record in records]


def epoch(n: int, seconds: float) -> EpochEnded:
    return EpochEnded(epoch=n, step=10 * n, train_loss=1.0 / n, val_loss=None, lr=0.01, epoch_s=seconds)


@pytest.fixture
def writer(tmp_path):
    writer = RunDirWriter(tmp_path / "run", load_config("digits-mlp", []))
    yield writer
    writer.close()


def log_step(writer: RunDirWriter, step: int) -> None:
    """What the trainer sends at a log step: the step, then its gradient norms."""
    writer(StepLogged(step, 1, 0.5, 0.01, 1.0, 100.0))
    assert ("step", step) not in events_in_file(writer.run_dir)  # held for the norms
    writer(GradNorms(step, (("fc1.weight", 0.5),)))


def test_a_step_record_is_written_with_its_gradient_norms(writer) -> None:
    log_step(writer, 1)
    assert events_in_file(writer.run_dir) == [("step", 1), ("grad_norms", None)]


def test_short_epochs_are_written_with_the_next_record_in_order(writer) -> None:
    log_step(writer, 1)
    writer(epoch(1, 0.01))
    writer(epoch(2, 0.01))
    assert events_in_file(writer.run_dir) == [("step", 1), ("grad_norms", None)]  # held: right after a write
    writer(ControlApplied(20, "pause", None, "tui", "paused at step 20"))
    assert events_in_file(writer.run_dir)[2:] == [("epoch", 1), ("epoch", 2), ("control", None)]


def test_a_held_record_is_written_by_close(writer) -> None:
    log_step(writer, 1)
    writer(epoch(1, 0.01))
    writer(StepLogged(2, 2, 0.5, 0.01, 1.0, 100.0))
    writer.close()
    assert events_in_file(writer.run_dir) == [("step", 1), ("grad_norms", None), ("epoch", 1), ("step", 2)]


def test_long_epochs_and_epochs_long_after_the_last_write_are_written_at_once(writer) -> None:
    log_step(writer, 1)
    writer(epoch(1, SHORT_EPOCH_S * 2))  # a long epoch: written at once even right after a write
    assert events_in_file(writer.run_dir)[-1] == ("epoch", 1)
    time.sleep(SHORT_EPOCH_S * 1.5)
    writer(epoch(2, 0.01))  # short, but the file has waited long enough
    assert events_in_file(writer.run_dir)[-1] == ("epoch", 2)


class CountingStream:
    """A text stream that counts what reached its `flush`."""

    def __init__(self) -> None:
        self.text, self.flushed = "", ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        self.flushed = self.text


def test_the_plain_console_flushes_short_epochs_lines_with_a_later_line() -> None:
    from nntui.console import PlainConsole

    stream = CountingStream()
    console = PlainConsole(stream)
    console(ControlApplied(0, "lr", 0.1, "tui", "learning rate 0.01 -> 0.1"))
    console(epoch(1, 0.01))
    console(epoch(2, 0.01))
    assert stream.flushed.count("\n") == 1 and stream.text.count("\n") == 3  # two lines in the buffer
    console(epoch(3, SHORT_EPOCH_S * 2))  # a long epoch's line: flushed at once, with those before it
    assert stream.flushed == stream.text and stream.text.count("\n") == 4
    time.sleep(SHORT_EPOCH_S * 1.5)
    console(epoch(4, 0.01))  # short, but the last flush is long enough ago
    assert stream.flushed == stream.text
