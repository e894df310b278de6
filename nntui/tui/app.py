"""The nntui Textual app and `create_app`, the one factory the CLI and the tests share.

Importing this module never imports torch: training runs in a child process, in its own
session. The app never takes a run down: leaving the app (or the app dying, or its terminal
going away) leaves the run going; only an explicit stop (`q` then `s`, `nntui ctl RUN stop`) or
a signal sent to the training process ends it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from nntui.runs import is_live
from nntui.tui.launcher import ChildRun, resume_options
from nntui.tui.monitor import MonitorScreen
from nntui.tui.terminal import TerminalWatch, exit_process_soon, tty_fds

if TYPE_CHECKING:
    from nntui.config import RunConfig

Mode = Literal["setup", "run", "attach", "show", "runs"]
HANGUP_CODE = 128 + signal.SIGHUP
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # to the app: leave it (128 + N); the run goes on


class NntuiApp(App[int]):
    """Setup screen and monitor. The return value is the exit code for the CLI."""

    CSS_PATH = ["nntui.tcss", "setup.tcss", "monitor.tcss", "charts/charts.tcss", "charts/overlay.tcss", "gradpane.tcss",
                "system_pane.tcss", "runs_screen.tcss"]
    TITLE = "nntui"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, *, mode: Mode, runs_dir: Path, data_dir: Path | None = None,
                 config: "RunConfig | None" = None, run_dir: Path | None = None,
                 run_name: str | None = None, resume_dir: Path | None = None,
                 resume_args: Sequence[str] = (), fork_args: Sequence[str] = (), all_users: bool = False,
                 script: ChildRun | None = None) -> None:
        super().__init__()
        self.mode = mode
        self.runs_dir = Path(runs_dir)
        self.data_dir = data_dir
        self.config = config
        self.run_dir = Path(run_dir) if run_dir else None
        self.run_name = run_name
        self.resume_dir = Path(resume_dir) if resume_dir else None
        self.resume_args = list(resume_args)
        self.fork_args = list(fork_args)  # a new run of `config` forked from a checkpoint (launcher.ChildRun)
        self.all_users = all_users  # the runs screen lists other users' runs too
        self.script = script  # `nntui run SCRIPT.py`: the script's run (tui.script_monitor.ScriptRun)
        self.child: ChildRun | None = None
        self.monitor: MonitorScreen | None = None
        self.terminal_lost = False
        self._may_hard_exit = False  # only in `run` (a real terminal), never under a test's Pilot
        self._old_handlers: dict[int, Any] = {}
        self._terminal_watch: TerminalWatch | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None

    def on_mount(self) -> None:
        self._watch_terminal()
        if self.mode == "setup":
            self.open_setup()
        elif self.mode == "run" and self.script is not None:
            self.launch(self.script)
        elif self.mode == "run" and self.resume_dir is not None:
            self.launch(ChildRun(None, self.runs_dir, self.data_dir, resume_dir=self.resume_dir,
                                 resume_args=self.resume_args))
        elif self.mode == "run":
            assert self.config is not None  # checked by create_app
            self.start_run(self.config, name=self.run_name, fork_args=self.fork_args)
        elif self.mode == "runs":
            self.action_open_runs()
        else:
            assert self.run_dir is not None  # checked by create_app
            self.push_screen(self.watch_screen(self.run_dir, self.mode))

    def watch_screen(self, run_dir: Path, mode: Literal["attach", "show"],
                     screen_class: type[MonitorScreen] = MonitorScreen) -> MonitorScreen:
        """The monitor over a run of another process: attached (with controls) while it is
        live, read-only otherwise (saying so when it was to be attached)."""
        if mode == "attach" and not is_live(run_dir):
            note = f"run {run_dir.name} is not running: showing it read-only"
            self.notify(note, title="attach")
            self.monitor = screen_class(run_dir, "show", note=note)
        else:
            self.monitor = screen_class(run_dir, mode)
        return self.monitor

    def action_open_runs(self) -> None:
        """Show the runs screen (`nntui runs`, `r` on the setup screen): the one the app has is
        brought back (the screens above it closed), else a new one goes on top."""
        from nntui.tui.runs_screen import RunsScreen

        runs = next((screen for screen in self.screen_stack if isinstance(screen, RunsScreen)), None)
        if runs is None:
            self.push_screen(RunsScreen(self.runs_dir, self.all_users))
            return
        while self.screen is not runs:
            self.pop_screen()

    def start_run(self, config: "RunConfig", name: str | None = None, fork_args: Sequence[str] = ()) -> None:
        """Launch the headless runner as a child process and monitor it (a fork with `fork_args`)."""
        self.launch(ChildRun(config, self.runs_dir, self.data_dir, name, fork_args=fork_args))

    def launch(self, child: ChildRun) -> None:
        """Start `child` and show the monitor over its run directory (old records first, on a
        resume): in place of an ended run's monitor, or over the setup screen (kept below it with
        the form as it was, for a run that does not start and for `n`)."""
        try:
            child.start()
        except OSError as error:
            self.notify(f"cannot start the run: {error}", severity="error", timeout=10)
            return
        self.release_child()  # the previous run's, if any (it has ended)
        self.child = child
        make_screen = getattr(child, "monitor_screen", None)  # a script's run shows its output too
        self.monitor = screen = make_screen() if make_screen else MonitorScreen(child.run_dir, "run", child=child)
        if isinstance(self.screen, MonitorScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def open_setup(self, config: "RunConfig | None" = None, error: str = "") -> None:
        """Show the setup screen, with `config` in the form (a run's settings; the form as it
        was when it holds `config` already) and `error` (why a run did not start) under Start.
        The setup screen the app has is brought back (the screens above it closed), else a new
        one takes the current screen's place."""
        from nntui.tui.setup import SetupScreen

        setup = next((screen for screen in self.screen_stack if isinstance(screen, SetupScreen)), None)
        self.monitor = None
        if setup is None:
            setup = SetupScreen(self.start_run, config, error)
            if isinstance(self.screen, MonitorScreen):
                self.switch_screen(setup)
            else:
                self.push_screen(setup)
            return
        while self.screen is not setup:
            self.pop_screen()
        if config is not None:
            setup.prefill(config)
        setup.show_start_error(error)

    def take_back_failed_start(self, child: ChildRun, error: str) -> bool:
        """A new run launched from the setup screen exited before it started: back to the form,
        as the user left it, with `error` under Start. False for a run that did not come from
        the setup screen (`nntui run PRESET`: its monitor shows the failure) or a resumed one."""
        from nntui.tui.setup import SetupScreen

        if child.resume_dir is not None or not any(isinstance(screen, SetupScreen) for screen in self.screen_stack):
            return False
        child.cleanup()
        self.open_setup(child.config, error=error)
        return True

    def continue_run(self, run_dir: Path, epochs: int) -> None:
        """Resume the run in `run_dir` to train up to `epochs` epochs (`nntui run --resume RUN
        --epochs N` in a child process), its monitor in place of the current one."""
        self.launch(ChildRun(None, self.runs_dir, self.data_dir, resume_dir=run_dir,
                             resume_args=resume_options(epochs=epochs)))

    # ------------------------------------------------------------------ commands and quitting

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The app's commands plus the monitor's actions (pause, LR, checkpoint, quit, help)."""
        if isinstance(screen, MonitorScreen):
            yield from screen.palette_commands()
        for command in super().get_system_commands(screen):
            if not isinstance(screen, MonitorScreen) or command.title not in screen.REPLACED_COMMANDS:
                yield command

    async def action_quit(self) -> None:
        """ctrl+q goes through the monitor's quit (which asks while our run is going on)."""
        if isinstance(self.screen, MonitorScreen):
            self.screen.action_quit_monitor()
        else:
            self.exit(self._child_code(), return_code=self._child_code())

    def _child_code(self) -> int:
        code = self.child.poll() if self.child else None
        return code or 0

    # ------------------------------------------------------------------ the terminal going away

    def _watch_terminal(self) -> None:
        """Exit when the terminal goes away: on SIGHUP, or once its tty no longer answers."""
        self._event_loop = asyncio.get_running_loop()
        for signum, handler in ((signal.SIGHUP, self._on_hangup), *((s, self._on_stop_signal) for s in STOP_SIGNALS)):
            try:
                self._old_handlers[signum] = signal.signal(signum, handler) or signal.SIG_DFL
            except (ValueError, OSError):  # not the main thread
                pass
        if not self.is_headless:
            fds = tty_fds([sys.__stdin__, sys.__stderr__])  # what Textual's driver reads and draws on
            self._terminal_watch = TerminalWatch(fds, self.lose_terminal).start()

    def on_unmount(self) -> None:
        if self._terminal_watch is not None:
            self._terminal_watch.stop()
        for signum, handler in self._old_handlers.items():
            try:
                signal.signal(signum, handler)
            except (ValueError, OSError):
                pass
        self._old_handlers.clear()

    def _on_hangup(self, signum: int, frame: object) -> None:
        self.lose_terminal()

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        """SIGTERM or SIGINT sent to the app: a clean exit with 128 + N (the terminal restored);
        the run goes on, as after a detach, since the signal was not sent to it."""
        if self._event_loop is not None and not self._event_loop.is_closed():
            self._event_loop.call_soon_threadsafe(self.exit, 128 + signum, 128 + signum)

    def lose_terminal(self) -> None:
        """The terminal is gone (from any thread, or a signal handler): exit 129 at once, the run
        going on. Outside tests the process leaves after HARD_EXIT_S even if exiting blocks
        (a write to the dead tty)."""
        if self.terminal_lost:
            return
        self.terminal_lost = True
        if self._may_hard_exit:
            exit_process_soon(HANGUP_CODE)
        if self._event_loop is not None and not self._event_loop.is_closed():
            self._event_loop.call_soon_threadsafe(self.exit, HANGUP_CODE, HANGUP_CODE)

    # ------------------------------------------------------------------ leaving the run going

    def release_child(self) -> int | None:
        """The app is done with its child: never signal it (it goes on in its own session, and
        init reaps it when it ends); remove its temp files if it has exited. Its exit code, or
        None while it runs."""
        if self.child is None:
            return None
        self.child.cleanup()
        return self.child.poll()

    def run(self, *args: Any, **kwargs: Any) -> int | None:  # type: ignore[override]
        self._may_hard_exit = True
        try:
            code = super().run(*args, **kwargs)
        finally:
            self.release_child()
        if self.terminal_lost:
            return HANGUP_CODE
        if self.monitor is not None and self.monitor.left_running:
            where = shown_path(self.monitor.run_dir)
            print(f"nntui: run {self.monitor.run_dir.name} goes on; `nntui attach {where}` follows it, "
                  f"`nntui ctl {where} stop` stops it", file=sys.stderr)
        return code


def shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is under it, else absolute."""
    relative = os.path.relpath(path.absolute())
    return str(path.absolute()) if relative.startswith("..") else relative


def create_app(*, mode: Mode, runs_dir: Path, data_dir: Path | None = None,
               config: "RunConfig | None" = None, run_dir: Path | None = None,
               run_name: str | None = None, resume_dir: Path | None = None,
               resume_args: Sequence[str] = (), fork_args: Sequence[str] = (), all_users: bool = False,
               script: ChildRun | None = None) -> NntuiApp:
    """The app in one of its modes: "setup" (pick and start), "run" (launch `config` and monitor
    it; or, with `resume_dir`, resume that run with `resume_args` (see
    `launcher.resume_options`) and monitor it, old records first; `fork_args` make the new run
    a fork, see `launcher.ChildRun`; or, with `script`, launch that script's run), "attach" (monitor
    a run of another process, with controls), "show" (read-only) or "runs" (the runs screen over
    `runs_dir`, other users' runs too with `all_users`: compare, overlay, diff; `enter` opens
    a run's monitor)."""
    if mode not in ("setup", "run", "attach", "show", "runs"):
        raise ValueError(f"unknown mode {mode!r}")
    if mode == "run" and config is None and resume_dir is None and script is None:
        raise ValueError("create_app(mode='run') needs a config or a resume_dir")
    if resume_dir is not None and mode != "run":
        raise ValueError("create_app: resume_dir goes with mode='run'")
    if mode in ("attach", "show") and run_dir is None:
        raise ValueError(f"create_app(mode={mode!r}) needs a run_dir")
    return NntuiApp(mode=mode, runs_dir=runs_dir, data_dir=data_dir, config=config,
                    run_dir=run_dir, run_name=run_name, resume_dir=resume_dir, resume_args=resume_args,
                    fork_args=fork_args, all_users=all_users, script=script)
