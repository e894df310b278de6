"""End to end: `nntui run --headless` in real subprocesses, stdout in a file as in a batch job.

All the runs of this module start at once (module fixture) and the tests read what they left.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import finish_cli, records, start_cli

from nntui.config import load_config, tomllib

pytestmark = pytest.mark.slow

CONTROL_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # everything but "\n"; "\x1b" starts ANSI codes
REQUIRED = {  # CONTRACT.md: required keys per record kind
    "start": {"preset", "device", "params", "train_size", "val_size", "test_size", "resumed_from"},
    "step": {"step", "epoch", "loss", "lr", "grad_norm", "samples_per_s"},
    "grad_norms": {"step", "norms"},
    "epoch": {"epoch", "step", "train_loss", "val_loss", "lr", "early_stop"},
    "end": {"status", "epoch", "step", "best_epoch", "best", "test_loss", "wall_s", "error"},
}
TASK_KEYS = {
    "classification": {"epoch": {"train_acc", "val_acc"}, "end": {"test_acc"}},
    "regression": {"epoch": {"val_mae", "val_r2"}, "end": {"test_mae", "test_r2"}},
}
OFFLINE = {name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
OPTIONS = ["--epochs", "2", "--name", "opts", "--set", "regularization.penalty=l1", "--set", "model.hidden=[32, 16]",
           "--lr", "0.01", "--optimizer", "nesterov", "--seed", "7"]


def console_script() -> list[str]:
    script = Path(sys.executable).parent / "nntui"
    found = str(script) if script.is_file() else shutil.which("nntui")
    if not found:
        pytest.skip("the nntui console script is not installed")
    return [found]


class PtyOutput:
    """Collects what a child writes to a pseudo-terminal (its stdout is then a TTY)."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.chunks: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def start(self) -> int:
        self.thread.start()
        return self.slave

    def text(self) -> str:
        self.thread.join(10)
        os.close(self.master)
        return b"".join(self.chunks).decode().replace("\r\n", "\n")


class Launched:
    """The module's runs, started together; `result(name)` waits for one."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs, self.results = tmp, {}, {}
        self.tty = PtyOutput()

    def start(self, name: str, *args: str, **kwargs) -> None:
        cwd = self.tmp / name
        (cwd / "data").mkdir(parents=True)
        self.procs[name] = start_cli(*args, "--runs-dir", str(cwd / "runs"), cwd=cwd, **kwargs)

    def result(self, name: str) -> subprocess.CompletedProcess:
        if name not in self.results:
            self.results[name] = finish_cli(self.procs[name])
            if name == "options":
                self.results[name].stdout = self.tty.text()
        return self.results[name]

    def run_dirs(self, name: str) -> list[Path]:
        root = self.tmp / name / "runs"
        return sorted(root.iterdir()) if root.is_dir() else []


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    runs = Launched(tmp_path_factory.mktemp("headless"))
    # every 10th step logged, whatever the clock says: the two runs' step records can be compared
    every_10 = ("--set", "train.log_interval_s=0")
    runs.start("basic", "run", "digits-mlp", "--headless", "--epochs", "3", *every_10)
    runs.start("script", "run", "digits-mlp", "--headless", "--epochs", "3", *every_10, program=console_script())
    runs.start("default", "run", "digits-mlp", "--headless")
    runs.start("diabetes", "run", "diabetes-mlp", "--headless", "--epochs", "5")
    runs.start("options", "run", "digits-mlp", "--headless", *OPTIONS, env={"NO_COLOR": "1", "TERM": "xterm"},
               stdout=runs.tty.slave)
    os.close(runs.tty.start())
    runs.start("mnist", "run", "mnist-mlp", "--headless", env=OFFLINE)
    yield runs
    for proc in runs.procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def only_run_dir(launched: Launched, name: str) -> Path:
    result = launched.result(name)
    assert result.returncode == 0, result.stderr
    dirs = launched.run_dirs(name)
    assert len(dirs) == 1, dirs
    return dirs[0]


def check_records(recs: list[dict], task: str) -> None:
    kinds = {record["event"] for record in recs}
    assert set(REQUIRED) <= kinds, kinds
    assert recs[0]["event"] == "start" and recs[-1]["event"] == "end"
    for record in recs:
        assert isinstance(record.get("time"), float), record
        required = REQUIRED.get(record["event"], set()) | TASK_KEYS[task].get(record["event"], set())
        assert required <= set(record), (record["event"], required - set(record))
    steps = [r["step"] for r in recs if r["event"] == "step"]
    assert steps == sorted(steps) and steps[0] >= 1 and len(set(steps)) == len(steps)
    norms = next(r["norms"] for r in recs if r["event"] == "grad_norms")
    assert norms and all(isinstance(value, float) and value >= 0 for value in norms.values())
    assert recs[0]["resumed_from"] is None


def check_plain(text: str, epochs: int) -> None:
    assert not CONTROL_CHARS.search(text), repr(CONTROL_CHARS.search(text))
    lines = text.splitlines()
    assert sum(line.startswith("start ") for line in lines) == 1, text
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == [str(e) for e in range(1, epochs + 1)]
    assert len([line for line in lines if line.startswith("end ")]) == 1 and lines[-1].startswith("end "), text


def without_times(recs: list[dict], event: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "epoch_s", "wall_s", "pid", "run_name")}
            for r in recs if r["event"] == event]


def test_default_run_dir_holds_every_file_of_the_contract(launched):
    import torch

    run_dir = only_run_dir(launched, "basic")
    assert re.fullmatch(r"\d{8}-\d{6}-digits-mlp", run_dir.name), run_dir.name
    text = (run_dir / "config.toml").read_text()
    assert load_config(str(run_dir / "config.toml")).to_dict() == tomllib.loads(text)  # re-loadable as a preset
    assert tomllib.loads(text) == load_config("digits-mlp", ["train.epochs=3", "train.log_interval_s=0"]).to_dict()
    recs = records(run_dir)
    check_records(recs, "classification")
    end = recs[-1]
    assert end["status"] == "completed" and end["epoch"] == 3 and end["error"] is None
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert last["progress"]["step"] == end["step"] == 3 * recs[0]["steps_per_epoch"]
    assert set(best["model"]) == set(last["model"]) and best["progress"]["epoch"] == end["best_epoch"] + 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {key: summary[key] for key in ("status", "best_epoch", "best", "test_acc", "wall_s")} == \
           {key: end[key] for key in ("status", "best_epoch", "best", "test_acc", "wall_s")}
    assert summary["reason"]


def test_batch_log_is_plain_one_line_per_epoch(launched):
    result = launched.result("basic")
    check_plain(result.stdout, 3)
    assert "end completed" in result.stdout and "Traceback" not in result.stderr


def test_options_end_up_in_config_and_no_color_terminal_is_plain(launched):
    run_dir = only_run_dir(launched, "options")
    assert run_dir.name == "opts"
    cfg = tomllib.loads((run_dir / "config.toml").read_text())
    assert cfg["regularization"]["penalty"] == "l1" and cfg["model"]["hidden"] == [32, 16]
    assert cfg["optim"] == {**cfg["optim"], "lr": 0.01, "name": "nesterov"}
    assert cfg["train"]["seed"] == 7 and cfg["train"]["epochs"] == 2
    start = records(run_dir)[0]
    assert start["optimizer"] == "nesterov" and start["lr"] == 0.01 and start["run_name"] == "opts"
    check_plain(launched.result("options").stdout, 2)


def test_console_is_rich_only_on_a_colour_terminal(monkeypatch):
    from nntui import console

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert isinstance(console.make_console(), console.RichConsole)
    monkeypatch.setenv("NO_COLOR", "1")
    assert isinstance(console.make_console(), console.PlainConsole)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    monkeypatch.delenv("NO_COLOR")
    assert isinstance(console.make_console(), console.PlainConsole)


def test_default_digits_run_reaches_95_percent_fast(launched):
    recs = records(only_run_dir(launched, "default"))
    end = recs[-1]
    assert end["status"] in ("completed", "early_stopped") and end["wall_s"] < 30, end
    best_epoch = next(r for r in recs if r["event"] == "epoch" and r["epoch"] == end["best_epoch"])
    assert best_epoch["val_acc"] >= 0.95 and end["test_acc"] >= 0.9, (best_epoch, end)


def test_regression_run_reports_mae_and_r2_only(launched):
    run_dir = only_run_dir(launched, "diabetes")
    recs = records(run_dir)
    check_records(recs, "regression")
    for record in recs:
        assert not {"train_acc", "val_acc", "test_acc"} & set(record), record
    assert len(without_times(recs, "epoch")) == 5
    check_plain(launched.result("diabetes").stdout, 5)
    assert "val_mae" in launched.result("diabetes").stdout


def test_same_seed_in_two_processes_and_console_script_agree(launched):
    first = records(only_run_dir(launched, "basic"))
    second = records(only_run_dir(launched, "script"))  # the `nntui` console script
    assert without_times(first, "epoch") == without_times(second, "epoch")
    assert without_times(first, "end") == without_times(second, "end")
    def steps(recs: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in without_times(recs, "step")]

    assert steps(first) == steps(second) and steps(first)


def test_python_m_nntui_is_the_console_script(tmp_path):
    module = subprocess.run([sys.executable, "-m", "nntui", "--help"], capture_output=True, text=True, cwd=tmp_path)
    script = subprocess.run(console_script() + ["--help"], capture_output=True, text=True, cwd=tmp_path)
    assert module.returncode == script.returncode == 0
    assert module.stdout == script.stdout and "ctl" in module.stdout


def test_offline_mnist_fails_in_one_line_without_a_run_dir(launched):
    result = launched.result("mnist")
    assert result.returncode == 2, result.stderr  # data that cannot be loaded is bad input (CONTRACT.md)
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    raw = launched.tmp / "mnist" / "data" / "MNIST" / "raw"
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
    assert str(raw) in errors[0] and "put train-images-idx3-ubyte" in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    assert not (launched.tmp / "mnist" / "runs").exists()


def test_small_cpu_mlps_train_on_one_thread(monkeypatch):
    import torch

    from nntui.runner import limit_cpu_threads

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    cfg, cpu, before = load_config("digits-mlp"), torch.device("cpu"), torch.get_num_threads()
    try:
        assert not limit_cpu_threads(cfg, torch.device("meta"), 17_226)  # not a CPU
        assert not limit_cpu_threads(cfg, cpu, 5_000_000)  # big enough to split
        assert not limit_cpu_threads(load_config("digits-mlp", ['model.kind="cnn"']), cpu, 17_226)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert not limit_cpu_threads(cfg, cpu, 17_226)  # the user said how many
        monkeypatch.delenv("OMP_NUM_THREADS")
        torch.set_num_threads(2)  # the suite runs on one (conftest): start from two
        assert limit_cpu_threads(cfg, cpu, 17_226) and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_console_that_went_away_does_not_stop_training():
    from nntui.runner import guarded

    calls = []

    def console(event):
        calls.append(event)
        raise BrokenPipeError(32, "Broken pipe")

    sink = guarded(console)
    sink("first")
    sink("second")  # dropped: the console is gone
    assert calls == ["first"]


@pytest.mark.parametrize("args,expected", [
    (["run", "digits-mlp", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["ctl"], "Missing argument"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_usage_errors_are_one_line(tmp_path, args, expected):
    result = subprocess.run([sys.executable, "-m", "nntui", *args], capture_output=True, text=True, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], result.stderr
    assert lines[0].startswith("nntui: ") and "--help" in lines[0] and result.stdout == ""
