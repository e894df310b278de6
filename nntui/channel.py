"""The control channel of a run: a file inbox under `RUN_DIR/control/`, owner-only. No torch here.

A client (`nntui ctl`, the monitor) drops a command file atomically into `control/inbox/`; the
training process polls the inbox from a daemon thread, hands each command to the trainer's
`Controls`, and writes `control/acks/ID.json` once the trainer has replied. Nothing listens on a
port: the permissions of `control/` (0700, owned by the current uid) are the access check, and
both sides refuse a directory that is not private.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from nntui.engine.control import SOURCES, Command, CommandError, Controls
from nntui.fs import ForeignPathError, OwnDir, RunDir, ownership_problem
from nntui.inbox_watch import DirectoryWaiter
from nntui.runs import is_live, pid_alive, run_info, run_pid, tail_records

log = logging.getLogger(__name__)

WATCHED_POLL_S = 1.0  # between looks at a watched inbox: for what a watch cannot see (chmod, NFS)

_ID_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_COMMAND_BYTES = 64 * 1024
_STALE_TMP_S = 60.0  # a client's tmp file this old was left by a client that died mid-write
_STALE_ACK_S = 600.0  # an answer nobody collected (its client gave up) is dropped on the next open
_ACK_POLL_S = 0.03
_CONTROL = "control directory"


class ChannelError(RuntimeError):
    """The control channel cannot be used; the text is one line for the user."""


@dataclass(frozen=True)
class Ack:
    """The run's answer to one command."""

    ok: bool
    message: str


def channel_dir(run_dir: Path) -> Path:
    """`run_dir/control`."""
    return RunDir(run_dir).control


def check_private(path: Path) -> None:
    """Raise ChannelError unless `path` is a real directory owned by us with no group/other bits."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise ChannelError(f"{_CONTROL} {path} does not exist") from None
    except OSError as error:
        raise ChannelError(f"cannot inspect {_CONTROL} {path}: {error.strerror}") from None
    problem = ownership_problem(info, path, private=True)
    if problem:
        raise ChannelError(f"{_CONTROL} {problem}")


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """A directory that is not the user's own (or `control/` not private) is a ChannelError."""
    try:
        yield
    except ForeignPathError as error:
        raise ChannelError(str(error)) from None


@contextlib.contextmanager
def _client_dir(run_dir: Path, name: str) -> Iterator[OwnDir]:
    """`control/NAME` of a run, for a client: the run dir the user's own, `control/` private, no links."""
    with _refusals(), OwnDir.open(run_dir, "run directory", follow=True) as run, \
            run.subdir(RunDir.CONTROL, label=_CONTROL, private=True) as control, \
            control.subdir(name, label=f"{_CONTROL} {name}") as directory:
        yield directory


class ChannelServer:
    """Runs inside the training process: takes command files from the inbox to `controls`."""

    def __init__(self, run_dir: Path, controls: Controls, poll_interval: float = 0.1, watch: bool = True,
                 directory: OwnDir | None = None) -> None:
        """`poll_interval`: seconds between looks at the inbox. With `watch` (and inotify, on Linux)
        a command file wakes the poller at once, and it otherwise looks only every
        `max(poll_interval, WATCHED_POLL_S)`: waking ten times a second cost a training process
        about 0.4% of a core. `directory`: the run directory, already open (else it is opened, or
        made, here); every file of the channel is reached through it, never through a link."""
        self.run_dir = Path(run_dir)
        self.controls = controls
        self.poll_interval = poll_interval
        self.watch = watch
        self._run = directory
        self._owns_run = directory is None
        self._control: OwnDir | None = None
        self._inbox: OwnDir | None = None
        self._acks: OwnDir | None = None
        self._waiter: DirectoryWaiter | None = None
        self._pending: set[str] = set()  # ids handed to the trainer, not answered yet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._next_sweep = 0.0
        self.control_dir = channel_dir(self.run_dir)

    def open(self) -> None:
        """Create (or re-check, on a resumed run) `control/`, write `control/pid`, start polling."""
        if self._thread is not None:
            return
        try:
            self._open_dirs()
            self._refuse_other_live_owner()
            self._clear_stale()
            self._control.write_atomic(RunDir.PID, f"{os.getpid()}\n".encode(), durable=False)
        except BaseException:
            self._close_dirs()
            raise
        self._stop.clear()
        self._closed = False
        self._waiter = DirectoryWaiter(RunDir(self.run_dir).inbox, watch=self.watch)
        self._thread = threading.Thread(target=self._poll_loop, name="nntui-channel", daemon=True)
        self._thread.start()

    def _open_dirs(self) -> None:
        with _refusals():
            if self._run is None:
                self._run = OwnDir.create(self.run_dir, "run directory", exclusive=False)
            self._control = self._run.subdir(RunDir.CONTROL, create=True, label=_CONTROL, private=True)
            self._inbox = self._control.subdir(RunDir.INBOX, create=True, label=f"{_CONTROL} inbox")
            self._acks = self._control.subdir(RunDir.ACKS, create=True, label=f"{_CONTROL} acks")

    def _close_dirs(self) -> None:
        for directory in (self._inbox, self._acks, self._control, self._run if self._owns_run else None):
            if directory is not None:
                directory.close()
        self._inbox = self._acks = self._control = None
        self._run = None if self._owns_run else self._run

    def _refuse_other_live_owner(self) -> None:
        pid = run_pid(self.run_dir)
        if pid and pid != os.getpid() and is_live(self.run_dir, tail_records(self.run_dir)):
            raise ChannelError(f"run {self.run_dir.name} is already being trained by process {pid} "
                               f"(remove {self.control_dir / 'pid'} if that process is not nntui)")

    def _clear_stale(self) -> None:
        """Commands left by an earlier process of this run are void."""
        for name in self._inbox.names():
            with contextlib.suppress(OSError):
                self._inbox.unlink(name)
        self._remove_stale()

    def close(self, reason: str = "the run has ended") -> None:
        """Stop polling; answer every command not carried out with ok=False; remove `control/pid`."""
        if self._closed or self._control is None:
            return
        self._closed = True
        self._stop.set()
        if self._waiter is not None:
            self._waiter.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        if self._waiter is not None and (self._thread is None or not self._thread.is_alive()):
            self._waiter.close()
        self._thread, self._waiter = None, None
        with self._lock:
            waiting, self._pending = sorted(self._pending), set()
        for command_id in waiting:
            self._write_ack(command_id, False, reason)
        with contextlib.suppress(OSError):
            for name in self._inbox_files():
                command_id = name.removesuffix(".json")
                if self._inbox.unlink(name) and _ID_OK.match(command_id):
                    self._write_ack(command_id, False, reason)
        if run_pid(self.run_dir) == os.getpid():  # a later process of this run may own it now
            with contextlib.suppress(OSError):
                self._control.unlink(RunDir.PID)
        self._close_dirs()

    def _poll_loop(self) -> None:
        refused: str | None = None  # said once when the directory stops being private, once when it is again
        while not self._stop.is_set():
            try:
                with _refusals():  # the user may chmod it meanwhile
                    self._control.check(private=True)
                if refused is not None:
                    log.warning("control channel resumed: %s is private again", self.control_dir)
                    refused = None
                self.poll_once()
            except ChannelError as error:
                if refused != str(error):
                    log.warning("control channel paused: %s", error)
                    refused = str(error)
            except Exception:  # the poller must outlive anything a stray file can do to it
                log.exception("control channel poll failed")
            waiter = self._waiter
            if waiter is None or self._stop.is_set():
                return
            waiter.wait(max(self.poll_interval, WATCHED_POLL_S) if waiter.watching else self.poll_interval)

    def poll_once(self) -> None:
        """Take every complete command file in the inbox, oldest first."""
        for name in self._inbox_files():
            if self._stop.is_set():
                return  # close() answers what is left
            try:
                self._take(name)
            except OSError as error:
                log.warning("control channel: cannot take %s: %s", name, error)
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + _STALE_TMP_S
            self._remove_stale()

    def _inbox_files(self) -> list[str]:
        """Names of the inbox's command files, oldest first."""
        found = []
        for entry in self._inbox.scandir():
            try:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue  # a tmp file being written; a fifo or link would block or mislead us
                found.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
            except OSError:
                continue
        return [name for _, name in sorted(found)]

    def _remove_stale(self) -> None:
        """Tmp files of clients that died mid-write; answers whose clients gave up waiting."""
        now = time.time()
        for directory, max_age in ((self._inbox, _STALE_TMP_S), (self._acks, _STALE_ACK_S)):
            for entry in directory.scandir():
                with contextlib.suppress(OSError):
                    if now - entry.stat(follow_symlinks=False).st_mtime > max_age:
                        directory.unlink(entry.name)

    def _take(self, name: str) -> None:
        with open(self._inbox.open_file(name), "rb") as handle:
            raw = handle.read(_MAX_COMMAND_BYTES + 1)
        if not self._inbox.unlink(name):
            return  # its client withdrew it (timed out) between our read and now
        command_id = name.removesuffix(".json")
        if command_id == name or not _ID_OK.match(command_id):
            log.warning("control channel: dropped stray file %s", name)
            return
        try:
            command = self._parse(command_id, raw)
        except CommandError as error:
            self._write_ack(command_id, False, str(error))
            return
        with self._lock:
            self._pending.add(command_id)
        self.controls.submit(command)

    def _parse(self, command_id: str, raw: bytes) -> Command:
        """The Command of a file's bytes; CommandError with a one-line reason for a bad one."""
        if len(raw) > _MAX_COMMAND_BYTES:
            raise CommandError("command file too large")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CommandError("unreadable command file (not JSON)") from None
        except RecursionError:  # `[[[[...` nested deeper than the parser's recursion limit
            raise CommandError("unreadable command file (nested too deeply)") from None
        if not isinstance(data, dict):
            raise CommandError("unreadable command file (not a JSON object)")
        if data.get("id") != command_id:
            raise CommandError("command id does not match its file name")
        action = data.get("action")
        if not isinstance(action, str):
            raise CommandError("command has no action")
        return _command(action, data.get("value"), data.get("source", "ctl"), self._replier(command_id))

    def _replier(self, command_id: str) -> Callable[[bool, str], None]:
        def reply(ok: bool, message: str) -> None:
            with self._lock:
                if command_id not in self._pending:
                    return  # already answered (by close) or answered twice
                self._pending.discard(command_id)
            self._write_ack(command_id, ok, message)

        return reply

    def _write_ack(self, command_id: str, ok: bool, message: str) -> None:
        """Never raises: the trainer thread calls this and must not die of a vanished run dir."""
        payload = json.dumps({"id": command_id, "ok": bool(ok), "message": str(message)}).encode()
        acks = self._acks
        if acks is None:
            return  # closed: nobody is listening any more
        try:
            acks.write_atomic(f"{command_id}.json", payload, durable=False)
        except OSError as error:
            log.warning("control channel: cannot write the answer to %s: %s", command_id, error)


# ---------------------------------------------------------------------------------------- client


def _command(action: str, value: object, source: object,
             reply: Callable[[bool, str], None] | None = None) -> Command:
    """The same checks on both sides of the channel; CommandError with a one-line reason."""
    if source not in SOURCES:
        raise CommandError(f"unknown command source {source!r}")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        raise CommandError(f"command value must be a number or text (got {value!r})")
    return Command(action, value, str(source), reply)


def _check_live(run_dir: Path) -> None:
    if not is_live(run_dir, tail_records(run_dir)):
        status = run_info(Path(run_dir)).status
        raise ChannelError(f"run {Path(run_dir).resolve().name} is not running (status: {status})")
    check_private(channel_dir(run_dir))


def submit_nowait(run_dir: Path, action: str, value: float | str | None = None, *,
                  source: str = "tui") -> str:
    """Validate and drop a command for a live run; return its id for `poll_ack`. Never waits."""
    try:
        command = _command(action, value, source)
    except CommandError as error:
        raise ChannelError(str(error)) from None
    _check_live(run_dir)
    command_id = uuid.uuid4().hex
    payload = {"id": command_id, "action": command.action, "value": command.value, "source": source}
    try:
        with _client_dir(run_dir, RunDir.INBOX) as inbox:
            inbox.write_atomic(f"{command_id}.json", json.dumps(payload).encode(), durable=False)
    except OSError as error:
        raise ChannelError(f"cannot write to the control channel of run {Path(run_dir).resolve().name}: "
                           f"{error.strerror or error}") from None
    return command_id


def poll_ack(run_dir: Path, command_id: str) -> Ack | None:
    """The answer to a command once the run has given it (collected once), else None.

    If the training process has died without answering, the command is withdrawn and the
    answer is a failure, so a caller polling from a timer never waits forever.
    """
    ack = _collect_ack(run_dir, command_id)
    if ack is not None or pid_alive(run_pid(run_dir)):
        return ack
    withdraw(run_dir, command_id)
    return _collect_ack(run_dir, command_id) or Ack(False, "the run ended before answering")


def withdraw(run_dir: Path, command_id: str) -> bool:
    """Remove a command the run has not taken yet; True when it was still waiting in the inbox."""
    if not _ID_OK.match(command_id):
        raise ChannelError(f"bad command id {command_id!r}")
    try:
        with _client_dir(run_dir, RunDir.INBOX) as inbox:
            return inbox.unlink(f"{command_id}.json")
    except (OSError, ChannelError):
        return False


def _collect_ack(run_dir: Path, command_id: str) -> Ack | None:
    if not _ID_OK.match(command_id):
        raise ChannelError(f"bad command id {command_id!r}")
    name = f"{command_id}.json"
    try:
        with _client_dir(run_dir, RunDir.ACKS) as acks:
            raw = acks.read_bytes(name)
            acks.unlink(name)
    except FileNotFoundError:
        return None
    except (OSError, ChannelError) as error:
        return Ack(False, f"cannot read the run's answer: {getattr(error, 'strerror', None) or error}")
    try:
        data = json.loads(raw.decode("utf-8"))
        return Ack(bool(data["ok"]), str(data.get("message", "")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, TypeError, KeyError):
        return Ack(False, "unreadable answer from the run")


def send_command(run_dir: Path, action: str, value: float | str | None = None, *, source: str = "ctl",
                 timeout: float = 15.0, cancelled: Callable[[], bool] = lambda: False) -> Ack:
    """Send a command to a live run and wait (up to `timeout` s) for its answer. Once `cancelled()`
    is true the wait ends at once, the command left for the run to take (a stop is still carried out)."""
    command_id = submit_nowait(run_dir, action, value, source=source)
    deadline = time.monotonic() + timeout
    while (ack := poll_ack(run_dir, command_id)) is None:
        if cancelled():
            return Ack(False, "the caller left before the run answered")
        left = deadline - time.monotonic()
        if left <= 0:
            withdraw(run_dir, command_id)
            raise ChannelError(f"no answer from the run within {timeout:g} s (is it stuck in a long evaluation?)")
        time.sleep(min(_ACK_POLL_S, left))
    return ack
