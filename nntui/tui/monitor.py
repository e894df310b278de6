"""The monitor screen: follows a run directory, draws its curves, steers the run."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Iterable, Literal

from textual import events, on, work
from textual.app import ComposeResult, SystemCommand
from textual.worker import get_current_worker

from nntui.engine.events import ControlApplied
from nntui.tui import steering
from nntui.tui.actions import action_of_key, bindings, palette_entries
from nntui.tui.dialogs import HelpScreen, LearningRateDialog, QuitDialog
from nntui.tui.follow import (
    EventsArrived,
    Follower,
    FollowFailed,
    ProcessExited,
    RunVanished,
    SteerAnswered,
)
from nntui.tui.guard import MonitorErrors, guarded
from nntui.tui.launcher import ChildRun
from nntui.tui.monitor_actions import MonitorActions
from nntui.tui.monitor_keys import QueuedCommands, Situation, command_text, why_not
from nntui.tui.monitor_view import MonitorView, monitor_widgets
from nntui.tui.state import MonitorState

MonitorMode = Literal["run", "attach", "show"]
REDRAW_S = 0.1
DATA_REDRAW_S = 0.5  # new data is drawn twice a second (as top does, or less); status changes at once
KEY_ACTIONS = action_of_key()
STOP_GRACE_S = 120.0  # a stopped run gets this long to checkpoint and exit before a SIGTERM
CLOSE_GRACE_S = 10.0  # a run that wrote its end record is only closing its files
CHILD_POLL_S = 0.1


class MonitorScreen(MonitorActions):
    """The live (or replayed) view of one run."""

    BINDINGS = bindings()  # from the one table of the monitor's actions (nntui.tui.actions)

    def __init__(self, run_dir: Path, mode: MonitorMode, child: ChildRun | None = None,
                 note: str = "") -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.mode = mode
        self.child = child
        self.state = MonitorState()
        if child is not None and child.resume_dir is not None:
            self.state.await_resume(child.pid)
        self.child_code: int | None = None
        self.view: MonitorView | None = None  # the widgets, once mounted
        self._follower: Follower | None = None
        self.queued = QueuedCommands()  # commands given while the run is starting
        self._drawn_version = -1
        self._drawn_urgent: tuple[str, ...] = ()
        self._drawn_at = 0.0
        self._requested_pause: bool | None = None
        self._quitting = False  # a stop was asked for: the app exits once the run has stopped
        self._impatient = False  # q was pressed again while waiting for that
        self._situation_shown: Situation | None = None
        self._note = note
        self._width = 0
        self.errors = MonitorErrors()
        self.left_running = False  # the user detached from a live run (it goes on)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield from monitor_widgets()

    def on_mount(self) -> None:
        if self.mode == "show":
            self.add_class("-read-only")
        if self._note:
            self.state.note(self._note)
        self.view = MonitorView(self)
        self.set_interval(REDRAW_S, self.redraw)
        self.follow()
        self.redraw()

    def on_resize(self) -> None:
        self.set_class(self.size.height >= 36, "-tall")
        if self.size.width != self._width:  # the log's lines are wrapped to its width: redo them
            self._width = self.size.width
            self.call_after_refresh(self._rewrap_log)

    def _rewrap_log(self) -> None:
        if self.view is not None:
            self.view.rewrap_log(self.state)

    # ------------------------------------------------------------------ following

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow")
    def follow(self) -> None:
        """Poll the run's records (and the child process) until the run is over."""
        worker = get_current_worker()
        self._follower = Follower(self.run_dir, self.post_message, child=self.child,
                                  watch_pid=self.mode == "attach", stop_when_read=self.mode == "show")
        self._follower.run(lambda: worker.is_cancelled)

    def on_events_arrived(self, message: EventsArrived) -> None:
        for event in message.events:  # one by one: a record the state chokes on costs only itself
            self._apply(event)
        self._after_events(message.events)
        if self._quitting and self.child is None and self.state.ended is not None:
            self.app.exit(0, return_code=0)  # an attached run we stopped has ended

    @guarded("applying a record")
    def _apply(self, event: object) -> None:
        self.state.apply(event)  # type: ignore[arg-type]

    @guarded("following the run")
    def _after_events(self, events: tuple[object, ...]) -> None:
        if any(isinstance(event, ControlApplied) and event.action in ("pause", "resume") for event in events):
            self._requested_pause = None
        if self.child is not None and not self.state.launching:
            self.child.release_config()  # the run has started: it has read its config
        self._keys_may_have_changed()
        if self.queued and not self.state.launching and self.state.live:  # a stop asked for too
            self._send_queued()
        elif self.queued and not self.state.live:
            self._drop_queued()

    def _keys_may_have_changed(self) -> None:
        situation = self.situation()
        if situation != self._situation_shown:  # the footer shows only the keys that apply now
            self._situation_shown = situation
            self.refresh_bindings()

    def on_process_exited(self, message: ProcessExited) -> None:
        self.child_code = message.code
        if self._back_to_setup(message):
            return
        self._note_exit(message)
        if self._quitting:
            self.app.exit(message.code, return_code=message.code)

    @guarded("following the run")
    def _note_exit(self, message: ProcessExited) -> None:
        self.state.process_exited(message.code, message.error)
        if self.child is not None:
            self.child.cleanup()  # its error line is read: the temp files can go
        self._drop_queued()
        self._keys_may_have_changed()

    @guarded("going back to the setup screen")
    def _back_to_setup(self, message: ProcessExited) -> bool:
        """A new run that exited before its `start` record: True if the app's setup screen took
        it back (it does for a run started from there)."""
        if self.child is None or self.state.started is not None or self._quitting:
            return False
        error = message.error or f"it exited with code {message.code}"
        return self.app.take_back_failed_start(self.child, error)  # type: ignore[attr-defined]

    def on_run_vanished(self, message: RunVanished) -> None:
        self._note_vanished()
        if self._quitting:
            self.app.exit(0, return_code=0)

    @guarded("following the run")
    def _note_vanished(self) -> None:
        self.state.process_vanished()
        self._drop_queued()
        self._keys_may_have_changed()

    def on_follow_failed(self, message: FollowFailed) -> None:
        self.report_error("reading the records", message.error)

    def report_error(self, where: str, error: Exception) -> None:
        """An exception caught in the monitor: shown once in the log and the alert line (its
        traceback in the private dir's log file); the monitor goes on following."""
        line = self.errors.record(where, error)
        if line is None:
            return
        try:
            self.state.note(line, "error")
        except Exception:  # noqa: BLE001 - the alert line still shows it
            pass
        self._drawn_version = -1  # draw the alert at the next tick

    # ------------------------------------------------------------------ drawing

    def redraw(self) -> None:
        """Bring the widgets up to date with the state; each widget is redrawn only when what it
        shows has changed. A change of status or alert is drawn at the next tick (REDRAW_S); new
        data only every DATA_REDRAW_S (a run at full speed changes every value at every tick)."""
        if self.state.version == self._drawn_version or self.view is None:
            return
        now = time.monotonic()
        urgent = (self.state.status, self.state.alert, self.errors.latest)
        if urgent == self._drawn_urgent and now - self._drawn_at < DATA_REDRAW_S:
            return
        self._drawn_version, self._drawn_urgent, self._drawn_at = self.state.version, urgent, now
        self.view.draw(self.state, self.header_text(), self.errors.latest)

    def header_text(self) -> str:
        """The run's name (`(read-only)` in `show`), then what it trains, once it has started."""
        name = f"{self.run_dir.name} (read-only)" if self.mode == "show" else self.run_dir.name
        return f"{name} · {self.state.title_text()}" if self.state.started is not None else name

    # ------------------------------------------------------------------ actions

    @property
    def steerable(self) -> bool:
        """Whether commands can go to the run now (live, started, not read-only)."""
        return self.mode != "show" and not self.state.launching and self.state.live and not self._quitting

    @property
    def run_going_on(self) -> bool:
        """Whether the run is live and could be stopped from here: quitting then asks first."""
        if self.mode == "show" or not self.state.live:
            return False
        return self.child.running if self.child is not None else True

    def situation(self) -> Situation:
        """What decides which keys apply now."""
        end = self.state.ended
        return Situation(self.mode, self.state.live, self.state.launching, self._quitting,
                         end.status if end is not None else None,
                         (not self.state.live or self.mode == "show")
                         and (self.run_dir / "checkpoints" / "last.pt").exists(),
                         bool(self.state.started and self.state.started.own_loop))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Only the keys that apply now are offered (footer, palette); the others say why not."""
        if action in ("detach", "stop_run"):
            return self.run_going_on and not self._quitting
        return not why_not(action, self.situation())

    def on_key(self, event: events.Key) -> None:
        """A key of the monitor's that does not apply now says why, rather than nothing."""
        action = KEY_ACTIONS.get(event.key)
        if action is None or self.check_action(action, ()):
            return
        reason = why_not(action, self.situation())
        if reason:
            event.stop()
            event.prevent_default()
            self.notify(reason, title=action.replace("_", " "), severity="warning")

    def action_toggle_pause(self) -> None:
        paused = self._requested_pause if self._requested_pause is not None else self.state.paused
        self._requested_pause = not paused
        self.steer("resume" if paused else "pause")

    def action_set_lr(self) -> None:
        def apply(lr: float | None) -> None:
            if lr is not None:
                self.steer("lr", lr)

        self.app.push_screen(LearningRateDialog(self.state.lr), apply)

    def action_checkpoint(self) -> None:
        self.steer("checkpoint")

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_quit_monitor(self) -> None:
        """Quit; while the run goes on, ask: stop it, leave it running (detach), or cancel."""
        if self._quitting and not self._impatient:
            self._impatient = True
            self.notify("waiting for the run to checkpoint and stop… q again leaves now (it stops all the same)")
        elif self._quitting:
            self.app.exit(0, return_code=0)
        elif self.run_going_on:
            self.app.push_screen(QuitDialog(self.run_dir.name), self._quit_answered)
        elif self.child is not None and self.child.running:  # ended: it is only closing its files
            self._exit_when_child_exits()
        else:
            code = self.child_code if self.child_code is not None else (self.child.poll() if self.child else None)
            self.app.exit(code or 0, return_code=code or 0)

    def _quit_answered(self, answer: str | None) -> None:
        if answer == "stop":
            self.action_stop_run()
        elif answer == "detach":
            self.action_detach()

    def action_detach(self) -> None:
        """Leave the monitor; the run goes on (`nntui attach` follows it again)."""
        self.left_running = self.run_going_on
        self.app.exit(0, return_code=0)

    def action_stop_run(self) -> None:
        """Stop the run (it checkpoints first); the app exits once it has stopped."""
        self._quitting = True
        self.refresh_bindings()
        self.state.note("stopping: waiting for the run to save a checkpoint and exit…", "control")
        if self.child is not None and self.state.launching:  # no channel yet (or the old run's): a signal
            self._exit_when_child_exits(stop=True, terminate=True)
            return
        self.steer("stop")
        if self.child is not None:
            self._exit_when_child_exits(stop=True)
        # attached: the app exits on the run's end record, or when its process is gone

    @work(thread=True, exit_on_error=False, group="quit")
    def _exit_when_child_exits(self, stop: bool = False, terminate: bool = False) -> None:
        """Wait for our child to exit, then exit the app with its code. A child told to stop gets
        SIGTERM after STOP_GRACE_S (SIGKILL 30 s later); one that has ended is left alone after
        CLOSE_GRACE_S. The wait ends at once when the app leaves (the worker is cancelled)."""
        assert self.child is not None
        worker = get_current_worker()
        steps: list[tuple[int | None, float]] = [(None, CLOSE_GRACE_S)]
        if terminate:
            steps = [(signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)]
        elif stop:
            steps = [(None, STOP_GRACE_S), (signal.SIGTERM, 30.0), (signal.SIGKILL, 5.0)]
        code = None
        for signum, seconds in steps:
            if signum is not None:
                self.child.signal(signum)
            deadline = time.monotonic() + seconds
            while (code := self.child.poll()) is None and not worker.is_cancelled and time.monotonic() < deadline:
                time.sleep(CHILD_POLL_S)
            if code is not None or worker.is_cancelled:
                break
        if not worker.is_cancelled:
            self.child.cleanup()
            self.app.call_from_thread(self.app.exit, code, code or 0)

    # ------------------------------------------------------------------ steering

    def steer(self, action: str, value: float | None = None) -> None:
        """Send a command to the run; while it is starting, queue it for when it is live."""
        if self.state.launching and self.state.live:
            notice = self.queued.add(action, value)
            self.state.note(notice, "control")
            self.notify(notice, title=action)
            return
        self._send([(action, value)])

    def _send_queued(self) -> None:
        commands = self.queued.take()
        applied = ", ".join(command_text(*item) for item in commands)
        self.state.note(f"the run has started; applying what was queued: {applied}", "control")
        self._send(commands)

    def _drop_queued(self) -> None:
        if self.queued:
            dropped = ", ".join(command_text(*item) for item in self.queued.take())
            self.state.note(f"not applied (the run is over): {dropped}", "error")

    @work(thread=True, exit_on_error=False, group="steer")
    def _send(self, commands: list[tuple[str, float | None]]) -> None:
        """Send commands over the run's channel, one after the other, and post their answers."""
        worker = get_current_worker()
        for action, value in commands:
            ok, message = steering.send(self.run_dir, action, value, cancelled=lambda: worker.is_cancelled)
            if worker.is_cancelled:
                return
            self.post_message(SteerAnswered(action, value, ok, message))

    @on(SteerAnswered)
    def show_answer(self, message: SteerAnswered) -> None:
        if self._follower is not None:
            self._follower.wake()  # its record is on its way: no idle back-off now
        if not message.ok and message.action in ("pause", "resume"):
            self._requested_pause = None
        if not message.ok and message.action == "stop":
            if self.child is not None:
                self.child.signal()  # SIGTERM: the runner checkpoints and exits all the same
            else:  # attached: nothing more to do from here; stay, and say so
                self._quitting = False
                self.refresh_bindings()
        text = message.message or ("done" if message.ok else "refused")
        if not message.ok:  # a success shows up as the run's own control record
            self.state.note(f"{message.action}: {text}", "error")
        self.notify(text, severity="information" if message.ok else "error", title=message.action)

    REPLACED_COMMANDS = ("Quit", "Screenshot")  # the app's own, which the monitor's replace

    def palette_commands(self) -> Iterable[SystemCommand]:
        """The monitor's actions for the command palette (only those possible now)."""
        for action, title, help_text in palette_entries():
            if self.check_action(action, ()):
                yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
