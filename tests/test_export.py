"""`nntui export RUN... --to csv|tensorboard DIR` over the recorded runs of tests/fixtures/runs.

The CSV files are read back with the csv module and compared with the records, value by value and
with each number's text as metrics.jsonl has it; the event files with tensorboard's own reader
(where the optional `tensorboard` package is installed)."""

from __future__ import annotations

import csv
import errno
import json
import math
import shutil
import struct
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from typer.testing import CliRunner

from nntui import export
from nntui.cli import app
from nntui.records import as_float, record_line
from nntui.runs import resolve_run

cli = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures" / "runs"
CLASSIFICATION, REGRESSION = "digits-mlp-complete", "diabetes-mlp-complete"
STEP_CONTRACT = ["event", "time", "step", "epoch", "loss", "lr", "grad_norm", "samples_per_s"]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A copy of the recorded runs, with a third one whose last records hold NaN, infinities and
    a key that no earlier record has."""
    root = tmp_path / "runs"
    shutil.copytree(FIXTURES, root)
    shutil.copytree(root / CLASSIFICATION, root / "non-finite")
    extra = [
        {"event": "step", "step": 2000, "epoch": 41, "loss": math.nan, "lr": math.inf, "grad_norm": -math.inf,
         "samples_per_s": 1e-300, "extra_metric": 1.5, "time": 1796404999.5},
        {"event": "epoch", "epoch": 41, "step": 2000, "train_loss": math.inf, "val_loss": math.nan, "lr": 0.001,
         "train_acc": 0.5, "val_acc": None, "early_stop": None, "time": 1796405000.25},
    ]
    with open(root / "non-finite" / "metrics.jsonl", "a") as handle:
        handle.write("".join(record_line(record) for record in extra))
    return root


def lines_of(run_dir: Path, event: str) -> list[tuple[str, dict]]:
    """The `event` records of a run with their lines, as written."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    pairs = [(line, json.loads(line)) for line in lines if line.strip()]
    return [(line, record) for line, record in pairs if record["event"] == event]


def invoke(*args: str):
    return cli.invoke(app, ["export", *args])


def assert_cell(cell: str, key: str, record: dict, line: str) -> None:
    """`cell` holds the record's `key` as the record's line has it."""
    value = record.get(key)
    if value is None:
        assert cell == ""
    elif isinstance(value, (dict, list, bool)):
        assert json.loads(cell) == value
    elif isinstance(value, str):
        assert cell == value
    else:  # a number: its JSON text, unchanged
        assert f'"{key}":{cell},' in line or f'"{key}":{cell}}}' in line
        assert float(cell) == value


@pytest.mark.parametrize("kind, event", [("epochs", "epoch"), ("steps", "step")])
def test_csv_read_back_equals_the_records(runs: Path, tmp_path: Path, kind: str, event: str) -> None:
    out = tmp_path / "out" / "csv"
    result = invoke(CLASSIFICATION, REGRESSION, "non-finite", "--to", "csv", str(out), "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    for name in (CLASSIFICATION, REGRESSION, "non-finite"):
        expected = lines_of(runs / name, event)
        with open(out / f"{name}-{kind}.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == len(expected) > 0
        keys = {key for _, record in expected for key in record}
        assert set(rows[0]) == keys
        for row, (line, record) in zip(rows, expected):
            for key, cell in row.items():
                assert_cell(cell, key, record, line)
    assert sorted(path.name for path in out.iterdir()) == sorted(
        f"{name}-{suffix}.csv" for name in (CLASSIFICATION, REGRESSION, "non-finite") for suffix in ("epochs", "steps"))


def test_csv_non_finite_values_and_header_order(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("non-finite", "--to", "csv", str(out), "--runs-dir", str(runs)).exit_code == 0
    with open(out / "non-finite-steps.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == STEP_CONTRACT + ["extra_metric"]
    last = dict(zip(header, rows[-1]))
    assert (last["loss"], last["lr"], last["grad_norm"]) == ("NaN", "Infinity", "-Infinity")
    assert math.isnan(as_float(last["loss"])) and as_float(last["grad_norm"]) == -math.inf
    assert last["samples_per_s"] == "1e-300" and last["extra_metric"] == "1.5"
    assert all(row[-1] == "" for row in rows[:-1])  # earlier records do not have the key
    with open(out / "non-finite-epochs.csv", newline="") as handle:
        last_epoch = list(csv.DictReader(handle))[-1]
    assert (last_epoch["train_loss"], last_epoch["val_loss"], last_epoch["val_acc"]) == ("Infinity", "NaN", "")


def test_refuses_to_overwrite_without_force(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mine = out / f"{CLASSIFICATION}-steps.csv"
    mine.write_text("the user's own\n")
    result = invoke(REGRESSION, CLASSIFICATION, "--to", "csv", str(out), "--runs-dir", str(runs))
    assert result.exit_code == 2
    assert result.stderr == f"nntui: {mine} already exists (--force replaces it)\n"
    assert mine.read_text() == "the user's own\n"
    assert [path.name for path in out.iterdir()] == [mine.name]  # nothing of the other run either
    result = invoke(REGRESSION, CLASSIFICATION, "--to", "csv", str(out), "--runs-dir", str(runs), "--force")
    assert result.exit_code == 0, result.output
    assert mine.read_text().startswith(",".join(STEP_CONTRACT))
    assert len(list(out.iterdir())) == 4


def test_unknown_run_is_one_line(runs: Path, tmp_path: Path) -> None:
    result = invoke(CLASSIFICATION, "no-such-run", "--to", "csv", str(tmp_path / "out"), "--runs-dir", str(runs))
    assert result.exit_code == 2
    assert result.stderr.startswith("nntui: no run 'no-such-run'") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_unreadable_records_are_one_line(runs: Path, tmp_path: Path) -> None:
    broken = runs / "broken"
    shutil.copytree(runs / CLASSIFICATION, broken)
    (broken / "metrics.jsonl").unlink()
    (broken / "metrics.jsonl").mkdir()  # unreadable as a file, even for root
    result = invoke(str(broken), "--to", "csv", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"nntui: cannot read {broken / 'metrics.jsonl'}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_write_failure_leaves_nothing_behind(runs: Path, tmp_path: Path, monkeypatch) -> None:
    cells = 0
    real_cell = export.csv_cell

    def disk_fills_up(value):
        nonlocal cells
        cells += 1
        if cells > 500:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_cell(value)

    monkeypatch.setattr(export, "csv_cell", disk_fills_up)
    out = tmp_path / "out"
    result = invoke(CLASSIFICATION, "--to", "csv", str(out), "--runs-dir", str(runs))
    assert result.exit_code == 1
    assert result.stderr == f"nntui: cannot write {out / CLASSIFICATION}-steps.csv: no space left on device\n"
    assert [path.name for path in out.iterdir()] == [f"{CLASSIFICATION}-epochs.csv"]  # complete; no temp file


def test_progress_is_one_line_per_part(runs: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(export, "PROGRESS_DELAY_S", 0.0)
    result = invoke(CLASSIFICATION, "--to", "csv", str(tmp_path / "out"), "--runs-dir", str(runs))
    assert result.exit_code == 0
    shown = result.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in shown] == [f"exporting {CLASSIFICATION} epochs",
                                                             f"exporting {CLASSIFICATION} steps"]


def test_latest_in_a_subprocess(runs: Path, tmp_path: Path) -> None:
    proc = run_cli("export", "latest", "--to", "csv", "exported", "--runs-dir", str(runs), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    name = resolve_run("latest", runs).name
    assert proc.stdout == f"{name}: exported/{name}-epochs.csv, exported/{name}-steps.csv\n"
    with open(tmp_path / "exported" / f"{name}-epochs.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(lines_of(runs / name, "epoch")) > 0


def test_tensorboard_missing_says_how_to_install(runs: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails as if not installed
    result = invoke(CLASSIFICATION, "--to", "tensorboard", str(tmp_path / "out"), "--runs-dir", str(runs))
    assert result.exit_code == 2
    assert result.stderr == ("nntui: exporting to TensorBoard needs the tensorboard package: "
                             "pip install 'nntui[tensorboard]'\n")
    assert not (tmp_path / "out").exists()


def float32(value) -> float:
    """A record's value as TensorBoard keeps a scalar (a 32-bit float), NaN as a string to compare."""
    number = struct.unpack("f", struct.pack("f", as_float(value)))[0]
    return "nan" if math.isnan(number) else number


def expected_scalars(run_dir: Path) -> dict[str, list]:
    """The TensorBoard scalars of a run's records: tag -> [(step or epoch, value, wall time)]."""
    expected: dict[str, list] = {}
    for event, x_key, prefix, keys in (("step", "step", "", export.STEP_SCALARS),
                                       ("epoch", "epoch", "epoch/", export.EPOCH_SCALARS)):
        for _, record in lines_of(run_dir, event):
            for key in keys:
                if record.get(key) is not None:
                    expected.setdefault(prefix + key, []).append((record[x_key], float32(record[key]), record["time"]))
    return expected


def read_scalars(log_dir: Path) -> dict[str, list]:
    """The scalars of the event files in `log_dir`, read by tensorboard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reader = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    reader.Reload()
    return {tag: [(s.step, float32(s.value), s.wall_time) for s in reader.Scalars(tag)]
            for tag in reader.Tags()["scalars"]}


def test_tensorboard_scalars_read_back(runs: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    out = tmp_path / "tb"
    names = (CLASSIFICATION, REGRESSION, "non-finite")
    result = invoke(*names, "--to", "tensorboard", str(out), "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    for name in names:
        assert read_scalars(out / name) == expected_scalars(runs / name), name
    assert {"epoch/val_acc", "loss"} <= set(read_scalars(out / CLASSIFICATION))
    assert {"epoch/val_r2", "epoch/val_mae"} <= set(read_scalars(out / REGRESSION))


def test_tensorboard_refuses_to_overwrite_without_force(runs: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    out = tmp_path / "tb"
    args = [CLASSIFICATION, "--to", "tensorboard", str(out), "--runs-dir", str(runs)]
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 2
    assert again.stderr == f"nntui: {out / CLASSIFICATION} already exists (--force replaces it)\n"
    assert invoke(*args, "--force").exit_code == 0
    assert len(list((out / CLASSIFICATION).iterdir())) == 1  # the earlier event file replaced
    assert read_scalars(out / CLASSIFICATION) == expected_scalars(runs / CLASSIFICATION)  # not twice
    assert [path.name for path in out.iterdir()] == [CLASSIFICATION]  # no temporary directory left


def test_a_run_named_twice_is_exported_once_and_two_of_one_name_refused(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(CLASSIFICATION, str(runs / CLASSIFICATION), "--to", "csv", str(out), "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    assert result.stdout.count(f"{CLASSIFICATION}:") == 1 and len(list(out.iterdir())) == 2
    elsewhere = tmp_path / "elsewhere" / CLASSIFICATION
    shutil.copytree(runs / CLASSIFICATION, elsewhere)
    result = invoke(CLASSIFICATION, str(elsewhere), "--to", "csv", str(tmp_path / "out2"), "--runs-dir", str(runs))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"nntui: two runs named {CLASSIFICATION} (") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out2").exists()


def test_csv_on_a_file_system_without_hard_links(runs: Path, tmp_path: Path, monkeypatch) -> None:
    def no_links(source, target):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(export.os, "link", no_links)
    out = tmp_path / "out"
    out.mkdir()
    assert [path.name for path in export.export_csv(runs / CLASSIFICATION, out)] == [
        f"{CLASSIFICATION}-epochs.csv", f"{CLASSIFICATION}-steps.csv"]
    (out / f"{CLASSIFICATION}-steps.csv").write_text("written meanwhile\n")
    (out / f"{CLASSIFICATION}-epochs.csv").unlink()
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_csv(runs / CLASSIFICATION, out)
    assert (out / f"{CLASSIFICATION}-steps.csv").read_text() == "written meanwhile\n"
    assert sorted(path.name for path in out.iterdir()) == [f"{CLASSIFICATION}-epochs.csv", f"{CLASSIFICATION}-steps.csv"]
