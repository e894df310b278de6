"""Shared fixtures: small, fast configurations and a helper to run the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """In-process trainers get one intra-op thread, as `nntui run` gives small MLPs on a CPU
    (runner.limit_cpu_threads): with two, a busy 2-core machine ran them five times slower."""
    import torch

    global TORCH_DEFAULT_THREADS
    TORCH_DEFAULT_THREADS = torch.get_num_threads()
    torch.set_num_threads(1)


TORCH_DEFAULT_THREADS = 1  # what a fresh process starts with (set at session start)


@contextmanager
def fresh_process_threads():
    """The intra-op threads of a fresh `nntui` process, for an in-process run whose records are
    compared with a subprocess's bit for bit (data preparation's sums depend on the thread count)."""
    import torch

    torch.set_num_threads(TORCH_DEFAULT_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(1)


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240,
            stdout_path: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m nntui ARGS` in a subprocess, stdout redirected to a file as in a batch job."""
    full_env = {**os.environ, "NNTUI_DATA_DIR": str(cwd / "data"), **(env or {})}
    full_env.pop("NNTUI_RUNS_DIR", None)
    out = stdout_path or cwd / "stdout.log"
    with open(out, "w") as stream:
        proc = subprocess.run([sys.executable, "-m", "nntui", *args], cwd=cwd, env=full_env, stdout=stream,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)
    proc.stdout = out.read_text()  # type: ignore[misc]
    return proc


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def no_user_presets(tmp_path_factory, monkeypatch):
    """The user's own presets (~/.config/nntui/presets) never leak into a test or a snapshot:
    each test gets an empty config dir (tests of user presets set their own)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch) -> Path:
    """A private `$XDG_RUNTIME_DIR` (0700) for each test, as a login session has one: the app's
    temp files and monitor error log go there, never to a directory shared between tests."""
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


def superseded_dropped(recs: list[dict]) -> list[dict]:
    """The records that stand after resumes: a resumed start from step S replaces all after S."""
    kept: list[dict] = []
    for record in recs:
        if record["event"] == "start" and record.get("resumed_from") is not None:
            kept = [r for r in kept if r.get("step", 0) <= record["resumed_from"] or r["event"] == "start"]
        kept.append(record)
    return kept


@pytest.fixture
def small_digits():
    from nntui.config import load_config

    def make(*sets: str):
        return load_config("digits-mlp", ["train.epochs=3", "train.log_every=5", "train.log_interval_s=0", *sets])

    return make


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, stdout_path: Path | None = None,
              program: list[str] | None = None, stdout=None) -> subprocess.Popen:
    """`python -m nntui ARGS` started in the background, stdout to a file (or `stdout`), stderr to
    `stdout_path.err`. Read the outputs with `finish_cli`."""
    full_env = {**os.environ, "NNTUI_DATA_DIR": str(cwd / "data"), **(env or {})}
    full_env.pop("NNTUI_RUNS_DIR", None)
    out = stdout_path or cwd / "stdout.log"
    argv = (program or [sys.executable, "-m", "nntui"]) + list(args)
    with open(out, "w") as out_file, open(out.with_name(out.name + ".err"), "w") as err_file:
        proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=out_file if stdout is None else stdout,
                                stderr=err_file, stdin=subprocess.DEVNULL, text=True)
    proc.stdout_path = out  # type: ignore[attr-defined]
    return proc


def finish_cli(proc: subprocess.Popen, timeout: float = 240) -> subprocess.CompletedProcess:
    """Wait for a `start_cli` process; its exit code, stdout and stderr as from `run_cli`."""
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    out: Path = proc.stdout_path  # type: ignore[attr-defined]
    return subprocess.CompletedProcess(proc.args, code, out.read_text(), out.with_name(out.name + ".err").read_text())


def wait_until(predicate, timeout: float = 120.0, interval: float = 0.02, what: str = "a condition"):
    """Poll `predicate` until it returns something truthy; that value. Fails the test on timeout."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def count_records(run_dir: Path, event: str) -> int:
    """How many complete records of `event` a (possibly live) run has written."""
    try:
        data = (run_dir / "metrics.jsonl").read_bytes()
    except FileNotFoundError:
        return 0
    return data.rpartition(b"\n")[0].count(b'"event":"' + event.encode() + b'"')


async def pilot_wait_until(pilot, predicate, timeout: float = 20.0, what: str = "a condition") -> None:
    """Let the app run until `predicate()` holds; fail the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def records_of(run_dir: Path, event: str) -> list[dict]:
    """The records of one kind in a run directory (a partial last line skipped)."""
    from nntui.runs import read_records

    return [record for record in read_records(run_dir) if record.get("event") == event]


def assert_app_never_imports_torch(mode: str, runs_dir: Path, size: tuple[int, int], pilot_steps: str) -> None:
    """In a new process: importing the app does not import torch, nor does opening it in `mode`
    and running `pilot_steps` (Pilot code, one statement a line, with `app` and `pilot` in scope)."""
    steps = "\n".join("        " + line for line in pilot_steps.strip().splitlines())
    code = f"""
import asyncio, sys
from pathlib import Path
from nntui.tui.app import create_app
assert "torch" not in sys.modules, "importing the app imported torch"
async def main():
    app = create_app(mode={mode!r}, runs_dir=Path({str(runs_dir)!r}))
    async with app.run_test(size={size!r}) as pilot:
{steps}
asyncio.run(main())
print("torch" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
