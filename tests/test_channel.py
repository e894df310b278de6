"""The control channel: a file inbox between `nntui ctl`/the monitor and the training process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nntui import runs
from nntui.channel import (
    Ack,
    ChannelError,
    ChannelServer,
    channel_dir,
    check_private,
    poll_ack,
    send_command,
    submit_nowait,
    withdraw,
)
from nntui.engine.control import Command, Controls
from nntui.inbox_watch import DirectoryWaiter


def write_records(run_dir: Path, *records: dict) -> None:
    with open(run_dir / "metrics.jsonl", "a") as handle:
        for record in records:
            handle.write(json.dumps({"time": time.time(), **record}) + "\n")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "20250101-000000-digits-mlp"
    path.mkdir()
    write_records(path, {"event": "start", "preset": "digits-mlp", "resumed_from": None})
    return path


class FakeTrainer:
    """Drains the controls every 10 ms from its own thread and replies, as the trainer does."""

    def __init__(self, controls: Controls) -> None:
        self.controls = controls
        self.received: list[Command] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            for command in self.controls.drain():
                self.received.append(command)
                command.reply(True, f"{command.action} {command.value} applied at step 12")

    def __enter__(self) -> FakeTrainer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def server(run_dir: Path):
    controls = Controls()
    server = ChannelServer(run_dir, controls, poll_interval=0.02)
    server.open()
    yield server
    server.close()


def inbox_names(run_dir: Path) -> list[str]:
    return sorted(os.listdir(channel_dir(run_dir) / "inbox"))


def wait_until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def drop(run_dir: Path, name: str, text: str | bytes) -> None:
    """Put a file in the inbox atomically, as every writer must (the server polls meanwhile)."""
    tmp = channel_dir(run_dir) / "inbox" / f".{name}.tmp"
    tmp.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(tmp, tmp.with_name(name))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ------------------------------------------------------------------------------ round trips


def test_open_makes_a_private_dir_with_our_pid(run_dir: Path, server: ChannelServer) -> None:
    control = channel_dir(run_dir)
    assert stat.S_IMODE(control.stat().st_mode) == 0o700
    assert (control / "pid").read_text().strip() == str(os.getpid())
    assert (control / "inbox").is_dir() and (control / "acks").is_dir()


def test_open_is_umask_proof(run_dir: Path) -> None:
    server = ChannelServer(run_dir, Controls(), poll_interval=60, watch=False)
    old = os.umask(0o700)  # without the chmods, control/ and the files would be mode 0000
    try:
        server.open()
        time.sleep(0.05)  # past the first poll: the command stays in the inbox
        command_id = submit_nowait(run_dir, "pause")
        control = channel_dir(run_dir)
        command_mode = stat.S_IMODE((control / "inbox" / f"{command_id}.json").stat().st_mode)
    finally:
        os.umask(old)
        server.close()
    for path in (control, control / "inbox", control / "acks"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert command_mode == 0o600


@pytest.mark.parametrize("action, value, expected_value", [
    ("pause", None, None), ("resume", None, None), ("lr", "3e-4", 3e-4), ("lr", 0.01, 0.01),
    ("checkpoint", None, None), ("stop", None, None),
])
def test_command_round_trip(server: ChannelServer, run_dir: Path, action, value, expected_value) -> None:
    with FakeTrainer(server.controls) as trainer:
        ack = send_command(run_dir, action, value, timeout=5)
    assert ack == Ack(True, f"{action} {expected_value} applied at step 12")
    [command] = trainer.received
    assert (command.action, command.value, command.source) == (action, expected_value, "ctl")
    assert inbox_names(run_dir) == []
    assert os.listdir(channel_dir(run_dir) / "acks") == []


def test_commands_arrive_in_order_with_their_source(server: ChannelServer, run_dir: Path) -> None:
    ids = [submit_nowait(run_dir, "pause"), submit_nowait(run_dir, "lr", 0.5), submit_nowait(run_dir, "resume")]
    with FakeTrainer(server.controls) as trainer:
        wait_until(lambda: len(trainer.received) == 3)
        acks = [None] * 3
        wait_until(lambda: all(acks[i] or acks.__setitem__(i, poll_ack(run_dir, ids[i])) or acks[i]
                               for i in range(3)))
    assert [c.action for c in trainer.received] == ["pause", "lr", "resume"]
    assert {c.source for c in trainer.received} == {"tui"}
    assert [a.ok for a in acks] == [True, True, True]
    assert poll_ack(run_dir, ids[0]) is None  # an answer is collected once


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("action, value, text", [
    ("lr", "abc", "must be a number"), ("lr", "-1", "> 0"), ("lr", "nan", "finite"),
    ("lr", "inf", "finite"), ("lr", None, "must be a number"), ("jump", None, "unknown action"),
])
def test_bad_commands_are_refused_locally(run_dir: Path, action, value, text) -> None:
    server = ChannelServer(run_dir, Controls(), poll_interval=60, watch=False)  # takes nothing after its first poll
    server.open()
    try:
        with pytest.raises(ChannelError, match=text) as raised:
            send_command(run_dir, action, value, timeout=1)
        assert "\n" not in str(raised.value)
        assert inbox_names(run_dir) == []
        submit_nowait(run_dir, "pause")  # the same run does accept a good command
        assert len(inbox_names(run_dir)) == 1
    finally:
        server.close()


def test_unknown_source_is_refused(run_dir: Path, server: ChannelServer) -> None:
    with pytest.raises(ChannelError, match="source"):
        submit_nowait(run_dir, "pause", source="mallory")


def test_ended_run_is_not_running(run_dir: Path, server: ChannelServer) -> None:
    write_records(run_dir, {"event": "end", "status": "completed"})
    with pytest.raises(ChannelError, match=rf"run {run_dir.name} is not running \(status: completed\)"):
        send_command(run_dir, "pause")
    assert inbox_names(run_dir) == []


def test_dead_process_is_not_running(run_dir: Path, server: ChannelServer) -> None:
    (channel_dir(run_dir) / "pid").write_text(f"{dead_pid()}\n")
    with pytest.raises(ChannelError, match=r"is not running \(status: crashed\)"):
        send_command(run_dir, "stop")


def test_run_without_control_dir_is_not_running(run_dir: Path) -> None:
    with pytest.raises(ChannelError, match="not running"):
        submit_nowait(run_dir, "pause")


# ------------------------------------------------------------------------------ permissions


def test_check_private_accepts_0700(tmp_path: Path) -> None:
    path = tmp_path / "control"
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    check_private(path)


@pytest.mark.parametrize("mode", [0o755, 0o710, 0o701, 0o770])
def test_check_private_refuses_open_modes(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "control"
    path.mkdir()
    os.chmod(path, mode)
    with pytest.raises(ChannelError, match=rf"{path} is group/other accessible \(mode {mode:04o}\); refusing"):
        check_private(path)


def test_check_private_refuses_links_files_and_missing(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "file").write_text("")
    for name, text in [("link", "symbolic link"), ("file", "not a directory"), ("missing", "does not exist")]:
        with pytest.raises(ChannelError, match=text):
            check_private(tmp_path / name)


def test_group_readable_control_dir_is_refused_by_client_and_server(run_dir: Path) -> None:
    server = ChannelServer(run_dir, Controls(), poll_interval=0.02)
    server.open()
    control = channel_dir(run_dir)
    os.chmod(control, 0o755)
    time.sleep(0.1)  # let a poll that started before the chmod finish
    try:
        with pytest.raises(ChannelError, match=r"group/other accessible \(mode 0755\)"):
            send_command(run_dir, "pause")
        # a command dropped behind the client's back is not taken while the dir is open to others
        drop(run_dir, "abc.json", json.dumps({"id": "abc", "action": "pause"}))
        time.sleep(0.15)
        assert not server.controls and inbox_names(run_dir) == ["abc.json"]
    finally:
        server.close()
    with pytest.raises(ChannelError, match=r"mode 0755"):
        ChannelServer(run_dir, Controls()).open()  # a resumed run re-checks the existing dir


def test_foreign_owner_is_refused(run_dir: Path, server: ChannelServer, monkeypatch) -> None:
    owner = os.stat(channel_dir(run_dir)).st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 4242)
    with pytest.raises(ChannelError, match=rf"owned by uid {owner}, not by you \(uid {owner + 4242}\)"):
        check_private(channel_dir(run_dir))
    with pytest.raises(ChannelError, match="owned by uid"):
        send_command(run_dir, "pause")
    assert inbox_names(run_dir) == []
    with pytest.raises(ChannelError, match="owned by uid"):
        ChannelServer(run_dir, Controls()).open()


def test_server_refuses_a_run_another_live_process_trains(run_dir: Path) -> None:
    channel_dir(run_dir).mkdir(mode=0o700)
    (channel_dir(run_dir) / "pid").write_text(f"{os.getppid()}\n")
    with pytest.raises(ChannelError, match="already being trained by process"):
        ChannelServer(run_dir, Controls()).open()


# ------------------------------------------------------------------------------ server lifecycle


def test_close_answers_a_waiting_command(run_dir: Path) -> None:
    controls = Controls()
    server = ChannelServer(run_dir, controls, poll_interval=0.02)
    server.open()
    command_id = submit_nowait(run_dir, "checkpoint")
    wait_until(lambda: bool(controls))  # taken by the server, waiting for the trainer
    server.close("the run has ended")
    assert poll_ack(run_dir, command_id) == Ack(False, "the run has ended")
    [late] = controls.drain()
    late.reply(True, "too late")  # the trainer answering after close is ignored
    assert os.listdir(channel_dir(run_dir) / "acks") == []
    assert not (channel_dir(run_dir) / "pid").exists()
    server.close()  # idempotent


def test_close_answers_commands_left_in_the_inbox(run_dir: Path) -> None:
    server = ChannelServer(run_dir, Controls(), poll_interval=60)
    server.open()
    time.sleep(0.05)  # past the first poll: later files stay in the inbox
    command_id = submit_nowait(run_dir, "pause")
    server.close("stopped by the user")
    assert inbox_names(run_dir) == []
    assert poll_ack(run_dir, command_id) == Ack(False, "stopped by the user")


def test_blocking_client_gets_the_close_answer(run_dir: Path) -> None:
    server = ChannelServer(run_dir, Controls(), poll_interval=0.02)
    server.open()
    closer = threading.Timer(0.3, server.close, args=("the run has ended",))
    closer.start()
    assert send_command(run_dir, "pause", timeout=5) == Ack(False, "the run has ended")
    closer.join()


def test_junk_in_the_inbox_does_not_stop_the_server(run_dir: Path, server: ChannelServer) -> None:
    inbox = channel_dir(run_dir) / "inbox"
    drop(run_dir, "notjson.json", "{not json")
    drop(run_dir, "list.json", "[1, 2]")
    drop(run_dir, "mismatch.json", json.dumps({"id": "other", "action": "pause"}))
    drop(run_dir, "badaction.json", json.dumps({"id": "badaction", "action": "explode"}))
    drop(run_dir, "badlr.json", json.dumps({"id": "badlr", "action": "lr", "value": "nan"}))
    drop(run_dir, "stray.txt", b"\xff\xfe")
    (inbox / ".partial.tmp").write_text('{"id": "partial", "act')
    os.mkfifo(inbox / "fifo.json")
    (inbox / "subdir").mkdir()
    wait_until(lambda: set(inbox_names(run_dir)) == {".partial.tmp", "fifo.json", "subdir"})
    answers = {name: poll_ack(run_dir, name) for name in ("notjson", "list", "mismatch", "badaction", "badlr")}
    assert all(ack is not None and not ack.ok for ack in answers.values())
    assert "not JSON" in answers["notjson"].message
    assert "unknown action 'explode'" in answers["badaction"].message
    assert "finite" in answers["badlr"].message
    assert not server.controls  # nothing bad reached the trainer
    with FakeTrainer(server.controls):
        assert send_command(run_dir, "pause", timeout=5).ok


def test_resumed_run_clears_stale_commands(run_dir: Path) -> None:
    first = ChannelServer(run_dir, Controls())
    first.open()
    first.close()
    stale = channel_dir(run_dir) / "inbox" / "old.json"
    stale.write_text(json.dumps({"id": "old", "action": "stop", "source": "ctl"}))
    controls = Controls()
    second = ChannelServer(run_dir, controls, poll_interval=0.02)
    second.open()
    try:
        time.sleep(0.1)
        assert not stale.exists() and not controls
        assert (channel_dir(run_dir) / "pid").read_text().strip() == str(os.getpid())
    finally:
        second.close()


def test_reply_survives_a_vanished_acks_dir(run_dir: Path, server: ChannelServer) -> None:
    submit_nowait(run_dir, "pause")
    wait_until(lambda: bool(server.controls))
    (channel_dir(run_dir) / "acks").rmdir()
    [command] = server.controls.drain()
    command.reply(True, "paused")  # must not raise in the trainer thread


# ------------------------------------------------------------------------------ timeouts


def stuck_run(run_dir: Path) -> None:
    """A live run whose channel is open but nobody polls it."""
    control = channel_dir(run_dir)
    control.mkdir(mode=0o700)
    (control / "inbox").mkdir()
    (control / "acks").mkdir()
    (control / "pid").write_text(f"{os.getpid()}\n")


def test_timeout_when_nobody_polls(run_dir: Path) -> None:
    stuck_run(run_dir)
    started = time.monotonic()
    with pytest.raises(ChannelError, match=r"no answer from the run within 0.3 s \(is it stuck"):
        send_command(run_dir, "pause", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert inbox_names(run_dir) == []


def test_timeout_when_the_trainer_does_not_drain(run_dir: Path, server: ChannelServer) -> None:
    with pytest.raises(ChannelError, match="no answer"):
        send_command(run_dir, "checkpoint", timeout=0.3)
    assert inbox_names(run_dir) == []
    assert len(server.controls.drain()) == 1


def test_poll_ack_fails_when_the_process_died(run_dir: Path) -> None:
    stuck_run(run_dir)
    command_id = submit_nowait(run_dir, "pause")
    assert poll_ack(run_dir, command_id) is None
    (channel_dir(run_dir) / "pid").write_text(f"{dead_pid()}\n")
    assert poll_ack(run_dir, command_id) == Ack(False, "the run ended before answering")
    assert inbox_names(run_dir) == []


def test_withdraw_and_bad_ids(run_dir: Path) -> None:
    stuck_run(run_dir)
    command_id = submit_nowait(run_dir, "pause")
    assert withdraw(run_dir, command_id) is True
    assert withdraw(run_dir, command_id) is False
    with pytest.raises(ChannelError, match="bad command id"):
        poll_ack(run_dir, "../../etc/passwd")


def test_liveness_reads_only_the_tail(run_dir: Path) -> None:
    write_records(run_dir, *({"event": "step", "step": i, "pad": "x" * 200} for i in range(2000)))
    write_records(run_dir, {"event": "end", "status": "stopped"})
    assert runs.ended(runs.tail_records(run_dir, max_bytes=4096))
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"event": "start", "time": 1')  # a record being written is not counted yet
    assert runs.ended(runs.tail_records(run_dir, max_bytes=4096))


TRAINER_SCRIPT = """
import sys, time
from pathlib import Path
from nntui.channel import ChannelServer
from nntui.engine.control import Controls
controls = Controls()
server = ChannelServer(Path(sys.argv[1]), controls, poll_interval=0.02)
server.open()
print("ready", flush=True)
while True:
    for command in controls.drain():
        command.reply(True, f"{command.action} {command.value} from {command.source}")
        if command.action == "stop":
            server.close()
            sys.exit(0)
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_steering_another_process(run_dir: Path) -> None:
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER_SCRIPT, str(run_dir)], stdout=subprocess.PIPE,
                               text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert trainer.stdout.readline().strip() == "ready"
        assert send_command(run_dir, "lr", "1e-3", timeout=10) == Ack(True, "lr 0.001 from ctl")
        assert send_command(run_dir, "stop", timeout=10) == Ack(True, "stop None from ctl")
        assert trainer.wait(timeout=10) == 0
    finally:
        trainer.kill()
        trainer.wait()
    with pytest.raises(ChannelError, match=r"not running \(status: crashed\)"):
        send_command(run_dir, "pause")  # no end record here: the run looks crashed


# ------------------------------------------------------------------------------ waking on arrival


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_a_command_file_wakes_a_watching_poller_at_once(run_dir: Path) -> None:
    controls = Controls()
    server = ChannelServer(run_dir, controls, poll_interval=30)
    server.open()
    try:
        assert server._waiter is not None and server._waiter.watching
        time.sleep(0.2)  # past the first poll: the poller sleeps in select() until a file arrives
        started = time.monotonic()
        submit_nowait(run_dir, "pause")
        wait_until(lambda: bool(controls), timeout=5)
        assert time.monotonic() - started < 2  # woken by the file, not by the 30 s poll
        assert [command.action for command in controls.drain()] == ["pause"]
    finally:
        server.close()
    assert server._thread is None


def test_an_unwatched_inbox_is_polled_every_poll_interval(run_dir: Path) -> None:
    controls = Controls()
    server = ChannelServer(run_dir, controls, poll_interval=0.05, watch=False)
    server.open()
    try:
        assert not server._waiter.watching
        submit_nowait(run_dir, "resume")
        wait_until(lambda: bool(controls), timeout=5)
    finally:
        server.close()


def test_close_wakes_a_poller_that_waits_for_a_long_time(run_dir: Path) -> None:
    for watch in (True, False):
        server = ChannelServer(run_dir, Controls(), poll_interval=60, watch=watch)
        server.open()
        thread = server._thread
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 2 and not thread.is_alive()


def test_a_closed_waiter_never_touches_descriptors_it_gave_back(tmp_path: Path) -> None:
    waiter = DirectoryWaiter(tmp_path)
    released = {fd for fd in (waiter._watch, waiter._wake_read, waiter._wake_write) if fd is not None}
    waiter.close()
    pipes = [os.pipe() for _ in range(len(released))]  # the lowest free numbers: the released ones
    try:
        reused = {fd for pipe in pipes for fd in pipe} & released
        assert reused  # otherwise this test would check nothing
        waiter.wake()
        waiter.close()  # a second close releases nothing
        for read_end, write_end in pipes:
            os.set_blocking(read_end, False)
            os.write(write_end, b"ok")
            assert os.read(read_end, 16) == b"ok"  # no stray wake byte, and both ends still open
    finally:
        for pipe in pipes:
            for fd in pipe:
                os.close(fd)


def test_a_command_nested_too_deeply_for_the_parser_gets_a_refusal(run_dir: Path, server: ChannelServer,
                                                                    caplog) -> None:
    drop(run_dir, "deep.json", "[" * 60_000)
    wait_until(lambda: "deep.json" not in inbox_names(run_dir))
    answers: list[Ack | None] = []
    wait_until(lambda: answers.append(poll_ack(run_dir, "deep")) or answers[-1] is not None)
    assert answers[-1] == Ack(False, "unreadable command file (nested too deeply)")
    assert not server.controls
    assert "Traceback" not in caplog.text and "poll failed" not in caplog.text
    with FakeTrainer(server.controls):
        assert send_command(run_dir, "pause", timeout=5).ok  # the channel goes on
