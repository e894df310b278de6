"""Run series for comparing runs: the start, epoch and end records of a run, read again only where
the file grew (nntui.run_series)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from nntui import records as records_module
from nntui import run_series
from nntui.engine.events import EpochEnded, ForkSource, RunEnded, RunStarted, StepLogged, to_record
from nntui.records import record_line
from nntui.run_series import SeriesCache

FIXTURES = ROOT / "tests" / "fixtures" / "runs"


def start_line(time: float = 100.0, forked_from: ForkSource | None = None, task: str = "classification") -> str:
    return record_line(to_record(RunStarted("digits-mlp", "cpu", 10, 5, 2, 2, None, task=task,
                                            forked_from=forked_from, pid=0, time=time)))


def epoch_line(epoch: int, val_loss: float = 0.5, train_loss: float = 0.6, step_of_epoch: int = 10) -> str:
    return record_line(to_record(EpochEnded(epoch, epoch * step_of_epoch, train_loss, val_loss, 0.01,
                                            train_acc=0.9, val_acc=0.8, time=100.0 + epoch)))


def step_line(step: int) -> str:
    return record_line(to_record(StepLogged(step, 1, 0.5 + step * 1e-9, 0.01, 1.0, 1000.0, time=100.0 + step)))


def end_line(epoch: int) -> str:
    return record_line(to_record(RunEnded("completed", epoch, epoch * 10, wall_s=float(epoch), time=200.0)))


def make_run(root: Path, name: str, lines: list[str]) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(lines))
    return run_dir


def append(run_dir: Path, text: str) -> None:
    with open(run_dir / "metrics.jsonl", "a") as out:
        out.write(text)


def test_epochs_read_with_their_non_finite_floats_decoded(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "nan", [start_line(), step_line(1), epoch_line(1),
                                         epoch_line(2, val_loss=math.nan, train_loss=math.inf), end_line(2)])
    assert '"val_loss":"NaN"' in (run_dir / "metrics.jsonl").read_text()  # as the writer spells it

    series = SeriesCache().load(run_dir)

    assert [epoch["epoch"] for epoch in series.epochs] == [1, 2]
    assert math.isnan(series.epochs[1]["val_loss"]) and series.epochs[1]["train_loss"] == math.inf
    assert series.epochs[0]["val_acc"] == 0.8
    assert (series.name, series.run_dir, series.status) == ("nan", run_dir, "completed")
    assert series.forked_from is None and series.start_time == 100.0


def test_a_partial_last_line_is_read_once_it_is_complete(tmp_path: Path) -> None:
    second = epoch_line(2)
    run_dir = make_run(tmp_path, "partial", [start_line(), epoch_line(1), second[:25]])
    cache = SeriesCache()

    assert [epoch["epoch"] for epoch in cache.load(run_dir).epochs] == [1]
    append(run_dir, second[25:])
    assert [epoch["epoch"] for epoch in cache.load(run_dir).epochs] == [1, 2]


def test_a_later_load_reads_only_the_appended_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = make_run(tmp_path, "live", [start_line(), step_line(1), epoch_line(1)])
    first_size = (run_dir / "metrics.jsonl").stat().st_size
    starts: list[int] = []

    def spying_scan(path, events, start=0):
        starts.append(start)
        return records_module.scan_appended(path, events, start)

    monkeypatch.setattr(run_series, "scan_appended", spying_scan)
    cache = SeriesCache()
    first = cache.load(run_dir)
    append(run_dir, step_line(2) + epoch_line(2) + epoch_line(3))
    second = cache.load(run_dir)
    cache.load(run_dir)  # nothing new: the file is not read

    assert starts == [0, first_size]
    assert len(first.epochs) == 1  # a series handed out does not change under its holder
    assert [epoch["epoch"] for epoch in second.epochs] == [1, 2, 3]


def test_a_file_written_anew_is_read_from_its_start(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "again", [start_line(), epoch_line(1), epoch_line(2), epoch_line(3)])
    cache = SeriesCache()
    assert len(cache.load(run_dir).epochs) == 3

    (run_dir / "metrics.jsonl").write_text(start_line() + epoch_line(1, val_loss=0.25))  # shorter

    assert [epoch["val_loss"] for epoch in cache.load(run_dir).epochs] == [0.25]


def test_a_fork_says_its_parent_and_step(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "fork", [start_line(forked_from=ForkSource("parent", 72)), epoch_line(8)])

    assert SeriesCache().load(run_dir).forked_from == ("parent", 72)


def test_a_resumed_session_without_its_end_is_not_completed(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "resumed", [start_line(), epoch_line(1), end_line(1), start_line(150.0)])

    series = SeriesCache().load(run_dir)

    assert series.status == "crashed"  # no process with pid 0: the second session died
    assert series.start_time == 100.0  # wall time counts from the first session


def test_the_task_comes_from_config_toml() -> None:
    cache = SeriesCache()

    assert cache.load(FIXTURES / "diabetes-mlp-complete").task == "regression"
    assert cache.load(FIXTURES / "digits-mlp-complete").task == "classification"


def test_without_a_config_the_start_record_says_the_task(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "noconfig", [start_line(task="regression"), epoch_line(1)])

    assert SeriesCache().load(run_dir).task == "regression"


def test_a_copied_fixture_reads_as_its_records_say(tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(FIXTURES / "digits-mlp-complete", run_dir)
    epochs = [r for r in records_module.read_records(run_dir) if r["event"] == "epoch"]

    series = SeriesCache().load(run_dir)

    assert [(e["epoch"], e["val_loss"], e["lr"]) for e in series.epochs] == \
           [(e["epoch"], e["val_loss"], e["lr"]) for e in epochs]


def test_many_step_records_between_the_epochs(tmp_path: Path) -> None:
    steps_per_epoch, epochs = 4_000, 50
    lines = [start_line()]
    for epoch in range(1, epochs + 1):
        lines += [step_line(step) for step in range((epoch - 1) * steps_per_epoch + 1, epoch * steps_per_epoch + 1)]
        lines.append(epoch_line(epoch, val_loss=1.0 / epoch, step_of_epoch=steps_per_epoch))
    run_dir = make_run(tmp_path, "long", lines + [end_line(epochs)])
    assert (run_dir / "metrics.jsonl").stat().st_size > 2 * records_module.CHUNK_BYTES  # several chunks

    series = SeriesCache().load(run_dir)

    assert [e["epoch"] for e in series.epochs] == list(range(1, epochs + 1))
    assert [e["val_loss"] for e in series.epochs] == [1.0 / epoch for epoch in range(1, epochs + 1)]
    assert [e["step"] for e in series.epochs][-1] == epochs * steps_per_epoch
    assert series.status == "completed"


def test_a_missing_file_has_no_epochs(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    series = SeriesCache().load(tmp_path / "empty")

    assert series.epochs == [] and series.forked_from is None
