"""The monitor screen: follows a run directory, draws its curves, steers the run."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Iterable, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static
from textual.worker import get_current_worker

from nntui.engine.events import ControlApplied
from nntui.tui import steering
from nntui.tui.actions import bindings, palette_entries
from nntui.tui.dialogs import HelpScreen, LearningRateDialog, QuitDialog
from nntui.tui.follow import (
    EventsArrived,
    Follower,
    FollowFailed,
    ProcessExited,
    RunVanished,
    SteerAnswered,
)
from nntui.tui.gradpane import GradPane
from nntui.tui.guard import MonitorErrors, guarded
from nntui.tui.launcher import ChildRun
from nntui.tui.state import MonitorState
from nntui.tui.widgets import EarlyStopPane, FollowingLog, MetricLine

MonitorMode = Literal["run", "attach", "show"]
REDRAW_S = 0.1
LOG_STYLES = {"info": "", "epoch": "", "control": "cyan", "alert": "bold red", "result": "bold green",
              "error": "red"}
STEER_ACTIONS = ("toggle_pause", "set_lr", "checkpoint")
STOP_GRACE_S = 120.0  # a stopped run gets this long to checkpoint and exit before a SIGTERM
CLOSE_GRACE_S = 10.0  # a run that wrote its end record is only closing its files
CHILD_POLL_S = 0.1


class MonitorScreen(Screen[None]):
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
        self._drawn_version = -1
        self._logged = 0
        self._requested_pause: bool | None = None
        self._quitting = False  # a stop was asked for: the app exits once the run has stopped
        self._impatient = False  # q was pressed again while waiting for that
        self._steerable_shown = False
        self._note = note
        self._width = 0
        self.errors = MonitorErrors()
        self.left_running = False  # the user detached from a live run (it goes on)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(id="head"):
            yield Static("nntui", id="title")
            yield Static("starting", id="status", classes="status-starting")
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=1, show_eta=False, id="progress")
            yield Static("", id="progress-text")
        yield Static("", id="alert")
        with Horizontal(id="panes"):
            with Vertical(id="left"):
                with Vertical(id="metrics"):
                    for index in range(8):  # the rows of MonitorState.metric_rows()
                        yield MetricLine(id=f"metric-{index}")
                yield EarlyStopPane(id="early-stop")
            with VerticalScroll(id="grads"):
                yield GradPane(id="grad-pane")
        yield Static("", id="results")
        yield FollowingLog(id="log", max_lines=2000, wrap=True, markup=False, min_width=20)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#metrics").border_title = "metrics"
        self.query_one("#grads").border_title = "gradient norm per layer"
        self.query_one("#early-stop").border_title = "early stopping"
        self.query_one("#log").border_title = "log"
        if self.mode == "show":
            self.add_class("-read-only")
        if self._note:
            self.state.note(self._note)
        self.set_interval(REDRAW_S, self.redraw)
        self.follow()
        self.redraw()

    def on_resize(self) -> None:
        self.set_class(self.size.height >= 36, "-tall")
        if self.size.width != self._width:  # the log's lines are wrapped to its width: redo them
            self._width = self.size.width
            self.call_after_refresh(self._rewrap_log)

    def _rewrap_log(self) -> None:
        self.query_one("#log", FollowingLog).clear()
        self._logged = self.state.log_total - len(self.state.log)
        self._draw_log()

    # ------------------------------------------------------------------ following

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow")
    def follow(self) -> None:
        """Poll the run's records (and the child process) until the run is over."""
        worker = get_current_worker()
        follower = Follower(self.run_dir, self.post_message, child=self.child,
                            watch_pid=self.mode == "attach", stop_when_read=self.mode == "show")
        follower.run(lambda: worker.is_cancelled)

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
        if self.state.ended is not None or self.steerable != self._steerable_shown:
            self._steerable_shown = self.steerable  # the footer dims the keys that cannot act now
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
        self.refresh_bindings()

    @guarded("going back to the setup screen")
    def _back_to_setup(self, message: ProcessExited) -> bool:
        """A new run launched from the setup screen (it is below this one) that exited before
        its `start` record goes back to the form, as the user left it, with its error; True if it did
        (None, and the failure shown here, if that went wrong)."""
        from nntui.tui.setup import SetupScreen

        child = self.child
        if child is None or child.resume_dir is not None or self.state.started is not None or self._quitting:
            return False
        if not any(isinstance(screen, SetupScreen) for screen in self.app.screen_stack):
            return False
        child.cleanup()
        error = message.error or f"it exited with code {message.code}"
        self.app.open_setup(child.config, error=error)  # type: ignore[attr-defined]
        return True

    def on_run_vanished(self, message: RunVanished) -> None:
        self._note_vanished()
        if self._quitting:
            self.app.exit(0, return_code=0)

    @guarded("following the run")
    def _note_vanished(self) -> None:
        self.state.process_vanished()
        self.refresh_bindings()

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
        """Bring the widgets up to date with the state (at most 10 times a second). Each pane is
        drawn on its own: one that fails leaves the others (and the monitor) going."""
        if self.state.version == self._drawn_version:
            return
        self._drawn_version = self.state.version
        self._draw_header()
        self._draw_metrics()
        self._draw_panes()
        self._draw_log()

    @guarded("drawing the header")
    def _draw_header(self) -> None:
        state = self.state
        self.query_one("#title", Static).update(state.title_text())
        status = self.query_one("#status", Static)
        status.update(f" {state.status.upper()} ")
        status.set_classes(f"status-{state.status.split(' ')[0]}")
        total = state.total_steps
        self.query_one("#progress", ProgressBar).update(total=max(1, total), progress=min(state.step, total))
        self.query_one("#progress-text", Static).update(state.progress_text())
        alert = self.query_one("#alert", Static)
        text = " · ".join(line for line in (state.alert, self.errors.latest) if line)
        alert.update(text)
        alert.display = bool(text)

    @guarded("drawing the metrics")
    def _draw_metrics(self) -> None:
        state = self.state
        for index, row in enumerate(state.metric_rows()):
            line = self.query_one(f"#metric-{index}", MetricLine)
            line.show(row.label, state.current_text(row), state.series[row.key].values())

    @guarded("drawing the panes")
    def _draw_panes(self) -> None:
        state = self.state
        self.query_one("#grad-pane", GradPane).show(state.layers)
        stop = state.early_stop
        self.query_one("#early-stop", EarlyStopPane).show(
            state.early_stop_lines(), stop.wait if stop else None, stop.patience if stop else None)
        results = self.query_one("#results", Static)
        results.update(state.results_text())
        results.display = state.ended is not None

    @guarded("drawing the log")
    def _draw_log(self) -> None:
        log = self.query_one("#log", FollowingLog)
        for line in self.state.new_log_lines(self._logged):
            log.write(Text(line.text, style=LOG_STYLES.get(line.kind, "")))
        self._logged = self.state.log_total

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in STEER_ACTIONS:
            if self.mode == "show":
                return False
            return True if self.steerable else None
        if action in ("detach", "stop_run"):
            return self.run_going_on and not self._quitting
        return True

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

    @work(thread=True, exit_on_error=False, group="steer")
    def steer(self, action: str, value: float | None = None) -> None:
        """Send a command over the run's channel and post its answer."""
        worker = get_current_worker()
        ok, message = steering.send(self.run_dir, action, value, cancelled=lambda: worker.is_cancelled)
        if worker.is_cancelled:
            return
        self.post_message(SteerAnswered(action, value, ok, message))

    @on(SteerAnswered)
    def show_answer(self, message: SteerAnswered) -> None:
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

    def palette_commands(self) -> Iterable[SystemCommand]:
        """The monitor's actions for the command palette (only those possible now)."""
        for action, title, help_text in palette_entries():
            if self.check_action(action, ()):
                yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
