"""The app never takes a run down: a bug in the monitor is shown and following goes on; the app's
temp files live in a per-user private directory that is checked before use."""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import pilot_wait_until as wait_until

from nntui.tui import private_tmp
from nntui.tui.app import create_app
from nntui.tui.charts import ChartsPane
from nntui.tui.gradpane import GradPane
from nntui.tui.launcher import ChildRun
from nntui.tui.monitor import MonitorScreen
from nntui.tui.private_tmp import PrivateDirError, create_private_file, private_dir
from nntui.tui.state import MonitorState

FAKE_TRAINER = Path(__file__).parent / "fixtures" / "fake_trainer.py"


@pytest.fixture
def live_run(tmp_path):
    spec = importlib.util.spec_from_file_location("fake_trainer", FAKE_TRAINER)
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    trainer, thread = fake.start_thread(tmp_path / "live", interval=0.02)
    yield trainer
    trainer.halt.set()
    thread.join(5)


def alert_text(screen: MonitorScreen) -> str:
    alert = screen.query_one("#alert")
    return str(alert.render()) if alert.display else ""


async def follow_through(pilot, screen: MonitorScreen, live_run, steps: int = 30) -> None:
    """The monitor keeps following: its step goes `steps` further, and the run goes on."""
    start = screen.state.step
    await wait_until(pilot, lambda: screen.state.step > start + steps, what="following to go on")
    assert not live_run.stopping and not live_run.halt.is_set()


# ---------------------------------------------------------------------------------- monitor errors


async def test_a_record_the_state_chokes_on_is_shown_and_following_goes_on(tmp_path, live_run, monkeypatch):
    real = MonitorState._on_StepLogged

    def choke_on_every_third(self, event):
        if event.step % 3 == 0:
            raise TypeError("unsupported operand type(s) for +: 'float' and 'NoneType'")
        real(self, event)

    monkeypatch.setattr(MonitorState, "_on_StepLogged", choke_on_every_third)
    app = create_app(mode="attach", runs_dir=live_run.run_dir.parent, run_dir=live_run.run_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.errors.total > 3, what="the failing records")
        await follow_through(pilot, screen, live_run)
        await pilot.pause(0.3)
        assert "monitor error in applying a record: TypeError" in alert_text(screen)
        shown = [line.text for line in screen.state.log if line.text.startswith("monitor error")]
        assert len(shown) == 1, shown  # the same error once, however often it comes
        xs = screen.state.series["step_loss"].xs()
        assert xs and all(step % 3 for step in xs)  # the other records of each batch got through
        log = Path(os.environ["XDG_RUNTIME_DIR"]) / "nntui" / "monitor-errors.log"
        assert "Traceback" in log.read_text() and "choke_on_every_third" in log.read_text()
        assert str(log) in alert_text(screen)
    assert app.return_value is None  # it never exited on its own


async def test_a_widget_that_fails_to_draw_leaves_the_others_and_the_app_going(live_run, monkeypatch):
    def broken_show(self, state):
        raise ValueError("cannot draw this metric")

    def broken_render(self, width, height):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(ChartsPane, "show", broken_show)
    monkeypatch.setattr(GradPane, "_build_lines", broken_render)
    app = create_app(mode="attach", runs_dir=live_run.run_dir.parent, run_dir=live_run.run_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.state.step > 0, what="steps")
        await follow_through(pilot, screen, live_run)
        await pilot.pause(0.3)
        wheres = {key[0] for key in screen.errors.counts}
        assert wheres == {"drawing the charts", "drawing the gradient norms"}, wheres
        assert alert_text(screen).startswith("monitor error in drawing the")  # the latest one
        logged = [line.text for line in screen.state.log if line.text.startswith("monitor error")]
        assert len(logged) == 2 and any("ValueError: cannot draw this metric" in text for text in logged)
        assert any("ZeroDivisionError: float division by zero" in text for text in logged)
        assert "cannot draw the gradient norms" in str(screen.query_one("#grad-pane").render())
        status = str(screen.query_one("#status").render())
        assert "RUNNING" in status  # the header still draws
        await pilot.press("space")  # and the keys still work
        await wait_until(pilot, lambda: live_run.paused, what="the pause")
    assert app.return_value is None


# ---------------------------------------------------------------------------------- the private dir


def test_private_dir_is_created_0700_and_its_files_0600(runtime_dir):
    os.umask(0o022)
    path = private_dir()
    assert path == runtime_dir / "nntui"
    info = os.lstat(path)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()
    fd, file = create_private_file("run-", ".toml")
    os.close(fd)
    assert file.parent == path and stat.S_IMODE(os.lstat(file).st_mode) == 0o600
    fd, other = create_private_file("run-", ".toml")  # the same run name twice: two files
    os.close(fd)
    assert other != file


def test_private_dir_falls_back_to_the_temp_dir_per_user(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert private_dir() == tmp_path / f"nntui-{os.geteuid()}"


@pytest.mark.parametrize("planted", ["symlink", "wide mode", "a file"])
def test_a_planted_private_dir_is_refused(runtime_dir, tmp_path, planted):
    target = runtime_dir / "nntui"
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o700)
    if planted == "symlink":
        target.symlink_to(elsewhere)
    elif planted == "wide mode":
        target.mkdir()
        target.chmod(0o777)
    else:
        target.write_text("")
    with pytest.raises(PrivateDirError):
        private_dir()
    with pytest.raises(OSError):
        create_private_file("run-", ".toml")
    assert list(elsewhere.iterdir()) == []  # nothing written through the symlink


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory owned by another user")
def test_a_private_dir_of_another_user_is_refused(runtime_dir):
    target = runtime_dir / "nntui"
    target.mkdir(mode=0o700)
    os.chown(target, 65534, 65534)
    with pytest.raises(PrivateDirError, match="another user"):
        private_dir()


async def test_the_launched_run_keeps_its_temp_files_out_of_the_runs_dir(tmp_path, runtime_dir, monkeypatch):
    from nntui.config import load_config

    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o1777)  # a shared runs dir: another user could plant symlinks there
    seen: dict[str, object] = {}

    def command(self: ChildRun) -> list[str]:  # what the child gets, seen as it starts
        seen.update(config=self.config_path, text=self.config_path.read_text(),
                    mode=stat.S_IMODE(os.lstat(self.config_path).st_mode))
        return [sys.executable, str(FAKE_TRAINER), "run", str(self.config_path), "--headless",
                "--name", self.name, "--runs-dir", str(self.runs_dir), "--fail"]

    monkeypatch.setattr(ChildRun, "command", command)
    app = create_app(mode="run", runs_dir=runs, config=load_config("digits-mlp"), run_name="tmpfiles")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        child = screen.child
        assert seen["config"].parent == runtime_dir / "nntui" and seen["mode"] == 0o600
        assert seen["text"].startswith('name = "digits-mlp"')
        assert child.stderr_path.parent == runtime_dir / "nntui"
        await wait_until(pilot, lambda: screen.state.status == "failed", what="the failure")
        assert screen.state.alert == "fake: something went wrong (exit 1)"  # read from the private stderr
    assert [path.name for path in runs.iterdir()] == []
    assert not seen["config"].exists()  # removed once the child had exited
    assert child.stderr_path.exists()  # its error is kept (non-empty)


def test_stale_private_files_are_pruned(runtime_dir):
    fd, old = create_private_file("old-", ".stderr")
    os.close(fd)
    fd, new = create_private_file("new-", ".stderr")
    os.close(fd)
    os.utime(old, (0, 0))
    private_tmp.prune_private_dir()
    assert not old.exists() and new.exists()


async def test_a_poll_that_raises_is_shown_and_the_next_one_follows_on(live_run, monkeypatch):
    from nntui.tui import follow

    real = follow.poll_events
    calls = {"n": 0}

    def fails_now_and_then(tail):
        calls["n"] += 1
        if calls["n"] % 4 == 2:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return real(tail)

    monkeypatch.setattr(follow, "poll_events", fails_now_and_then)
    app = create_app(mode="attach", runs_dir=live_run.run_dir.parent, run_dir=live_run.run_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.errors.total >= 3, what="failing polls")
        await follow_through(pilot, screen, live_run)
        await pilot.pause(0.3)
        assert "monitor error in reading the records: UnicodeDecodeError" in alert_text(screen)
    assert app.return_value is None


def test_terminal_watch_sees_a_hung_up_tty(tmp_path):
    """The watch behind the app's exit on a dropped terminal: a pty whose other end closes."""
    import threading

    from nntui.tui.terminal import TerminalWatch, terminal_gone, tty_fds

    master, slave = os.openpty()
    stream = os.fdopen(slave, "rb", buffering=0)
    devnull = open(os.devnull)
    try:
        fds = tty_fds([stream, None, devnull])
        assert fds == [slave] and not terminal_gone(fds)
        lost = threading.Event()
        watch = TerminalWatch(fds, lost.set, interval=0.02).start()
        assert not lost.wait(0.2)
        os.close(master)
        assert lost.wait(5), "the hung-up tty went unnoticed"
        watch.stop()
    finally:
        stream.close()
        devnull.close()


@pytest.mark.slow
async def test_a_diverging_real_run_keeps_the_app_alive_and_the_run_going(tmp_path):
    """`diabetes-mlp --lr 1 --optimizer sgd` diverges: its records carry non-finite (or null)
    losses and norms. The app must go on following; the run pauses (the app's --diverge pause)
    and goes on until the user stops it."""
    from nntui.config import load_config
    from nntui.runs import read_records

    config = load_config("diabetes-mlp", ["optim.lr=1", 'optim.name="sgd"', "train.epochs=200",
                                          "train.log_interval_s=0", "early_stopping.enabled=false"])
    app = create_app(mode="run", runs_dir=tmp_path / "runs", data_dir=tmp_path / "data", config=config,
                     run_name="diverging")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        run_dir = screen.run_dir
        await wait_until(pilot, lambda: any(r.get("event") == "control" and r.get("action") == "diverged"
                                            for r in read_records(run_dir)) or screen.state.paused,
                         90, what="the divergence")
        await pilot.pause(1.0)
        assert app.return_value is None and screen.child.running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("s")
        await wait_until(pilot, lambda: app.return_value is not None, 60, what="the app to exit")
    end = read_records(run_dir)[-1]
    assert end["event"] == "end" and end["status"] == "stopped"


def test_a_child_that_succeeded_leaves_no_temp_files(runtime_dir, small_digits, tmp_path, monkeypatch):
    monkeypatch.setattr(ChildRun, "command", lambda self: [
        sys.executable, "-c", "import sys; print('digits: loading', file=sys.stderr)"])
    child = ChildRun(small_digits(), tmp_path / "runs", name="ok")
    child.start()
    assert child.wait(30) == 0
    child.cleanup()
    assert list((runtime_dir / "nntui").iterdir()) == []


async def test_leaving_while_a_command_waits_for_its_answer_does_not_hold_the_process(live_run, monkeypatch):
    """Thread workers still running hold the process at its exit (asyncio.run waits for them):
    a command the run has not answered yet must stop waiting when the app leaves."""
    import threading
    import time

    from nntui.tui import steering

    monkeypatch.setattr(live_run, "obey", lambda command: live_run.commands.append((command.action, None)))
    returned = threading.Event()
    real_send = steering.send

    def send(*args, **kwargs):
        try:
            return real_send(*args, **kwargs)
        finally:
            returned.set()

    monkeypatch.setattr(steering, "send", send)
    app = create_app(mode="attach", runs_dir=live_run.run_dir.parent, run_dir=live_run.run_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.state.step > 0, what="steps")
        await pilot.press("s")  # a checkpoint, never answered
        await wait_until(pilot, lambda: live_run.commands, what="the command to reach the run")
        app.exit(0)
    left = time.monotonic()
    assert returned.wait(5) and time.monotonic() - left < 2, "the command's wait held the app"
