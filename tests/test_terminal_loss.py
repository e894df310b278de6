"""Losing the terminal loses no run and leaves no stray process: real terminals (tmux, a pty).

The app runs `nntui run digits-mlp` as a person would; its terminal goes away (`tmux
kill-session`; a SIGHUP; a pty whose other end is closed with no SIGHUP at all, as when sshd
notices a dropped connection and the app is not in the terminal's session). Each time the app
must be gone within a few seconds (not a zombie), and the training process must go on, be
listed as running, take `nntui ctl RUN stop`, and end `stopped`.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, run_cli, wait_until

from nntui.runs import read_records, run_pid

pytestmark = pytest.mark.slow
GONE_WITHIN_S = 5.0  # the target is 2 s; generous on a loaded machine
RUN_ARGS = ["run", "digits-mlp", "--epochs", "5000", "--set", "early_stopping.enabled=false",
            "--set", "schedule.name=constant", "--set", "train.log_interval_s=0"]


def app_env(tmp_path: Path) -> dict[str, str]:
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "NNTUI_DATA_DIR": str(tmp_path / "data"), "XDG_RUNTIME_DIR": str(runtime), "TERM": "xterm-256color"}


def the_run(runs: Path) -> Path:
    def found() -> Path | None:
        return next((path for path in runs.iterdir() if not path.name.startswith(".")), None) if runs.is_dir() else None

    return wait_until(found, 60, what="the run dir")


def steps(run_dir: Path) -> int:
    return sum(1 for record in read_records(run_dir) if record.get("event") == "step")


def training_and_app(run_dir: Path) -> tuple[psutil.Process, psutil.Process]:
    """The training process (control/pid) once it writes steps, and the app (its parent)."""
    wait_until(lambda: steps(run_dir) >= 20 and run_pid(run_dir), 90, what="step records")
    training = psutil.Process(run_pid(run_dir))
    return training, training.parent()


def gone(process: psutil.Process) -> bool:
    """Exited and reaped: no such process (a zombie still counts as there)."""
    try:
        process.status()
    except psutil.NoSuchProcess:
        return True
    return False


def check_run_goes_on(tmp_path: Path, run_dir: Path, training: psutil.Process) -> None:
    """Training goes on without the app, and `nntui runs` lists the run as running."""
    assert training.is_running() and training.status() != psutil.STATUS_ZOMBIE
    before = steps(run_dir)
    wait_until(lambda: steps(run_dir) > before + 20, 30, what="training to go on without the app")
    listed = run_cli("runs", "--runs-dir", str(run_dir.parent), cwd=tmp_path)
    line = next(line for line in listed.stdout.splitlines() if run_dir.name in line)
    assert "running" in line, listed.stdout


def stopped(run_dir: Path) -> bool:
    last = read_records(run_dir)[-1]
    return last.get("event") == "end" and last["status"] == "stopped"


def check_run_goes_on_then_stop_it(tmp_path: Path, run_dir: Path, training: psutil.Process) -> None:
    check_run_goes_on(tmp_path, run_dir, training)
    stop = run_cli("ctl", str(run_dir), "stop", cwd=tmp_path)
    assert stop.returncode == 0, stop.stderr
    wait_until(lambda: stopped(run_dir), 60, what="the run to end stopped")


# ---------------------------------------------------------------------------------- tmux


class Tmux:
    """A tmux server of our own (its own socket: the user's sessions are never touched).

    The app runs under a shell, as from a login shell: the shell (the session leader) ignores
    the hangup and reaps the app when it exits, so "the app is gone" is exact (tmux 3.3a here
    sometimes leaves an exited pane process unreaped for many seconds). The app then gets no
    SIGHUP from the kernel on `kill-session`, only a hung-up tty: the case that needs the app's
    own watch of its terminal."""

    def __init__(self, tmp_path: Path) -> None:
        self.socket = f"nntui-test-{os.getpid()}-{time.monotonic_ns()}"
        self.tmp_path = tmp_path
        self("-f", "/dev/null", "new-session", "-d", "-s", "keep", "sleep 600")

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30, check=True)

    def start_app(self, env: dict[str, str], *args: str, session: str = "app") -> psutil.Process:
        """`python -m nntui ARGS` in a new session of this server, under a shell; the app."""
        exports = " ".join(f"{name}={shlex.quote(env[name])}" for name in
                           ("PYTHONPATH", "NNTUI_DATA_DIR", "XDG_RUNTIME_DIR", "TERM", "PATH"))
        app = shlex.join([sys.executable, "-m", "nntui", *args])
        command = f"trap '' HUP; cd {shlex.quote(str(self.tmp_path))} && env {exports} {app}; exit"
        self("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)
        shell = psutil.Process(int(self("display-message", "-p", "-t", session, "#{pane_pid}").stdout))
        return wait_until(lambda: next(iter(shell.children()), None), 30, what="the app under the shell")

    def screen(self, session: str) -> str:
        return self("capture-pane", "-p", "-t", session).stdout

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    server = Tmux(tmp_path)
    yield server
    server.close()


@pytest.fixture
def stray():
    """Processes to kill at the end whatever happens (the training process of a failed test)."""
    processes: list[psutil.Process] = []
    yield processes
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass


def start_run_in_tmux(tmp_path, tmux, stray):
    """The app in a tmux session training a run: (the app, its run dir, the training process)."""
    runs = tmp_path / "runs"
    app = tmux.start_app(app_env(tmp_path), *RUN_ARGS, "--runs-dir", str(runs))
    run_dir = the_run(runs)
    training, parent = training_and_app(run_dir)
    assert parent.pid == app.pid
    stray += [training, app]
    return app, run_dir, training


def test_tmux_kill_session_leaves_the_run_training_and_no_app(tmp_path, tmux, stray):
    app, run_dir, training = start_run_in_tmux(tmp_path, tmux, stray)
    runs = run_dir.parent
    assert os.getsid(training.pid) == training.pid != os.getsid(app.pid)  # its own session
    tmux("kill-session", "-t", "app")
    wait_until(lambda: gone(app), GONE_WITHIN_S, what="the app to be gone")
    check_run_goes_on(tmp_path, run_dir, training)

    # a new terminal: `nntui attach latest` follows the run again, and q then s stops it
    attached = tmux.start_app(app_env(tmp_path), "attach", "latest", "--runs-dir", str(runs), session="again")
    stray.append(attached)
    wait_until(lambda: "RUNNING" in tmux.screen("again") and "epoch" in tmux.screen("again"), 60,
               what="the attached monitor")
    tmux("send-keys", "-t", "again", "q")
    wait_until(lambda: "Leave it running" in tmux.screen("again"), 10, what="the quit dialog")
    tmux("send-keys", "-t", "again", "s")
    wait_until(lambda: stopped(run_dir), 60, what="the run to end stopped")
    deadline = time.monotonic() + 10
    while not gone(attached):
        assert time.monotonic() < deadline, f"the attached app stayed after the run stopped:\n{tmux.screen('again')}"
        time.sleep(0.05)


def test_sighup_to_the_app_leaves_the_run_training(tmp_path, tmux, stray):
    app, run_dir, training = start_run_in_tmux(tmp_path, tmux, stray)
    app.send_signal(signal.SIGHUP)
    wait_until(lambda: gone(app), GONE_WITHIN_S, what="the app to be gone")
    check_run_goes_on_then_stop_it(tmp_path, run_dir, training)


# ---------------------------------------------------------------------------------- a pty, no SIGHUP


def drain(master: int, stop: threading.Event) -> None:
    """Read what the app draws (a terminal that nobody reads would block it)."""
    import select

    while not stop.is_set():
        try:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready and not os.read(master, 65536):
                return
        except OSError:
            return


def test_a_hung_up_tty_without_sighup_makes_the_app_exit(tmp_path, stray):
    """The app is not in the tty's session (so no SIGHUP comes); closing the pty's other end hangs
    the tty up: reads give EOF, writes EIO. The app must notice and exit with 129."""
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    runs = tmp_path / "runs"
    app = subprocess.Popen([sys.executable, "-m", "nntui", *RUN_ARGS, "--runs-dir", str(runs)], cwd=tmp_path,
                           env=app_env(tmp_path), stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    stop_draining = threading.Event()
    drainer = threading.Thread(target=drain, args=(master, stop_draining), daemon=True)
    drainer.start()
    try:
        run_dir = the_run(runs)
        training, _ = training_and_app(run_dir)
        stray.append(training)
        stop_draining.set()
        drainer.join(5)
        os.close(master)  # the terminal goes away
        started = time.monotonic()
        code = app.wait(GONE_WITHIN_S)
        assert code == 129, code
        assert time.monotonic() - started < GONE_WITHIN_S
        check_run_goes_on_then_stop_it(tmp_path, run_dir, training)
    finally:
        stop_draining.set()
        if app.poll() is None:
            app.kill()
            app.wait(5)
