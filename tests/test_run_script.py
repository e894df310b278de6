"""`nntui run SCRIPT.py`: a script of the user's with nntui.Monitor, headless and in the app; the example."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from conftest import ROOT, finish_cli, records_of, run_cli, start_cli, wait_until

from nntui.runs import is_live, run_info

SCRIPT = """
import os, sys
import torch
import nntui

print("hello from the script", sys.argv[1:], flush=True)
print("run dir", os.environ.get("NNTUI_RUN_DIR"), file=sys.stderr, flush=True)
model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
with nntui.Monitor(model, optimizer, name="ignored", epochs=2, log_interval_s=0) as monitor:
    for epoch in range(2):
        for _ in range(5):
            optimizer.zero_grad()
            loss = model(torch.ones(3, 4)).pow(2).mean()
            loss.backward()
            optimizer.step()
            monitor.step(loss=loss)
        monitor.epoch(val_loss=loss)
sys.exit(int(sys.argv[-1]))
"""

NO_MONITOR = "print('training without nntui')\n"

UNTIL_STOPPED = """
import time
import torch
import nntui

model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
with nntui.Monitor(model, optimizer, epochs=1000, log_every=1, log_interval_s=0) as monitor:
    while not monitor.should_stop:
        optimizer.zero_grad()
        model(torch.ones(3, 4)).pow(2).mean().backward()
        optimizer.step()
        monitor.step()
        time.sleep(0.01)
print("stopped cleanly", flush=True)
"""


def write_script(tmp_path, text: str, name: str = "train.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_headless_runs_the_script_into_the_run_dir_and_mirrors_its_exit_code(tmp_path):
    script = write_script(tmp_path, SCRIPT)
    done = run_cli("run", str(script), "--headless", "--runs-dir", str(tmp_path / "runs"), "--name", "mine",
                   "--", "--flag", "3", cwd=tmp_path)
    run_dir = tmp_path / "runs" / "mine"
    assert done.returncode == 3, done.stderr
    where, ended = done.stderr.splitlines()  # where its output goes; how it ended
    assert "output.log" in where and ended == "nntui: run mine completed at step 10 (the script exited with code 3)"
    output = (run_dir / "output.log").read_text()
    assert "hello from the script ['--flag', '3']" in output
    assert f"run dir {run_dir.absolute()}" in output
    assert run_info(run_dir).status == "completed" and run_info(run_dir).preset == "train.py"
    assert [e["epoch"] for e in records_of(run_dir, "epoch")] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mine"]  # the Monitor's name= gave way


def test_a_script_without_a_monitor_says_so(tmp_path):
    script = write_script(tmp_path, NO_MONITOR)
    done = run_cli("run", str(script), "--headless", "--runs-dir", str(tmp_path / "runs"), "--name", "plain",
                   cwd=tmp_path)
    assert done.returncode == 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("nntui: ") and "never created an nntui.Monitor" in last
    assert (tmp_path / "runs" / "plain" / "output.log").read_text() == "training without nntui\n"


def test_preset_options_are_refused_for_a_script(tmp_path):
    script = write_script(tmp_path, NO_MONITOR)
    done = run_cli("run", str(script), "--headless", "--epochs", "3", "--runs-dir", str(tmp_path / "runs"),
                   cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("nntui: --epochs:")
    assert not (tmp_path / "runs").exists()


def test_extra_arguments_need_a_script(tmp_path):
    done = run_cli("run", "digits-mlp", "--headless", "--", "x", cwd=tmp_path)
    assert done.returncode == 2 and "only a script takes" in done.stderr


@pytest.mark.slow
def test_sigterm_is_passed_on_and_the_monitor_stops_the_loop(tmp_path):
    script = write_script(tmp_path, UNTIL_STOPPED)
    proc = start_cli("run", str(script), "--headless", "--runs-dir", str(tmp_path / "runs"), "--name", "long",
                     cwd=tmp_path)
    run_dir = tmp_path / "runs" / "long"
    try:
        wait_until(lambda: is_live(run_dir) and len(records_of(run_dir, "step")) >= 3, 90, what="live steps")
        os.kill(proc.pid, signal.SIGTERM)
        result = finish_cli(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert result.returncode == 0, result.stderr  # the script ended on its own, as it chose to
    stop = records_of(run_dir, "control")[-1]
    assert (stop["action"], stop["value"], stop["source"]) == ("stop", "SIGTERM", "signal")
    assert records_of(run_dir, "end")[-1]["status"] == "stopped"
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert "stopped cleanly" in (run_dir / "output.log").read_text()


@pytest.mark.slow
async def test_the_app_follows_the_script_and_shows_its_output(tmp_path):
    from conftest import pilot_wait_until as pilot_wait

    from nntui.cli.script import make_run_dir
    from nntui.tui.app import create_app
    from nntui.tui.monitor import MonitorScreen
    from nntui.tui.script_monitor import ScriptRun

    script = write_script(tmp_path, SCRIPT)
    run_dir = make_run_dir(script, tmp_path / "runs", "in-app")
    app = create_app(mode="run", runs_dir=run_dir.parent,
                     script=ScriptRun(script, [sys.executable, str(script), "0"], run_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen) and screen.mode == "run"
        state = screen.state
        await pilot_wait(pilot, lambda: state.ended is not None, 90, what="the script's end record")
        await pilot_wait(pilot, lambda: any("hello from the script" in line.text for line in state.log), 10,
                         what="the script's output in the log")
        assert state.status == "finished" and state.step == 10 and state.started.preset == "train.py"
        await pilot_wait(pilot, lambda: screen.child_code == 0, 30, what="the script's exit")
    assert (run_dir / "output.log").is_file()  # the run's: kept


@pytest.mark.slow
def test_the_example_runs_as_a_script_and_under_nntui_run(tmp_path):
    example = ROOT / "examples" / "mnist_mlp.py"
    env = {**os.environ, "NNTUI_RUNS_DIR": str(tmp_path / "plain")}
    import subprocess

    done = subprocess.run([sys.executable, str(example), "--epochs", "1"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert [run_info(p).status for p in (tmp_path / "plain").iterdir()] == ["completed"]
    done = run_cli("run", str(example), "--headless", "--runs-dir", str(tmp_path / "runs"), "--name", "example",
                   "--", "--epochs", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    info = run_info(tmp_path / "runs" / "example")
    assert (info.status, info.epochs, info.preset) == ("completed", 1, "mnist_mlp.py")
    assert "val_acc" in (tmp_path / "runs" / "example" / "output.log").read_text()
