"""The nntui Textual app and `create_app`, the one factory the CLI and the tests share.

Importing this module never imports torch: training runs in a child process.
"""

from __future__ import annotations

import atexit
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from nntui.runs import is_live
from nntui.tui.launcher import ChildRun
from nntui.tui.monitor import MonitorScreen

if TYPE_CHECKING:
    from nntui.config import RunConfig

Mode = Literal["setup", "run", "attach", "show"]
HANGUP_GRACE_S = 60.0  # the child got the hangup too: give it time to checkpoint


class NntuiApp(App[int]):
    """Setup screen and monitor. The return value is the exit code for the CLI."""

    CSS_PATH = ["nntui.tcss", "setup.tcss", "monitor.tcss"]
    TITLE = "nntui"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, *, mode: Mode, runs_dir: Path, data_dir: Path | None = None,
                 config: "RunConfig | None" = None, run_dir: Path | None = None,
                 run_name: str | None = None, resume_dir: Path | None = None,
                 resume_args: Sequence[str] = ()) -> None:
        super().__init__()
        self.mode = mode
        self.runs_dir = Path(runs_dir)
        self.data_dir = data_dir
        self.config = config
        self.run_dir = Path(run_dir) if run_dir else None
        self.run_name = run_name
        self.resume_dir = Path(resume_dir) if resume_dir else None
        self.resume_args = list(resume_args)
        self.child: ChildRun | None = None
        self._hangup = False

    def on_mount(self) -> None:
        self._install_hangup_handler()
        if self.mode == "setup":
            from nntui.tui.setup import SetupScreen

            self.push_screen(SetupScreen(self.start_run))
        elif self.mode == "run" and self.resume_dir is not None:
            self.launch(ChildRun(None, self.runs_dir, self.data_dir, resume_dir=self.resume_dir,
                                 resume_args=self.resume_args))
        elif self.mode == "run":
            assert self.config is not None  # checked by create_app
            self.start_run(self.config, name=self.run_name)
        else:
            self.push_screen(self._watch_screen())

    def _watch_screen(self) -> MonitorScreen:
        assert self.run_dir is not None  # checked by create_app
        if self.mode == "attach" and not is_live(self.run_dir):
            note = f"run {self.run_dir.name} is not running: showing it read-only"
            self.notify(note, title="attach")
            return MonitorScreen(self.run_dir, "show", note=note)
        return MonitorScreen(self.run_dir, "show" if self.mode == "show" else "attach")

    def start_run(self, config: "RunConfig", name: str | None = None) -> None:
        """Launch the headless runner as a child process and monitor it."""
        self.launch(ChildRun(config, self.runs_dir, self.data_dir, name))

    def launch(self, child: ChildRun) -> None:
        """Start `child` and push the monitor over its run directory (old records first, on a resume)."""
        try:
            child.start()
        except OSError as error:
            self.notify(f"cannot start the run: {error}", severity="error", timeout=10)
            return
        self.child = child
        atexit.register(child.shutdown)
        screen = MonitorScreen(child.run_dir, "run", child=child)
        if isinstance(self.screen, Screen) and self.screen.id != "_default":
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    # ------------------------------------------------------------------ commands and quitting

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The app's commands plus the monitor's actions (pause, LR, checkpoint, quit, help)."""
        if isinstance(screen, MonitorScreen):
            yield from screen.palette_commands()
        for command in super().get_system_commands(screen):
            if command.title != "Quit" or not isinstance(screen, MonitorScreen):
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

    def _install_hangup_handler(self) -> None:
        """On SIGHUP (SSH gone) exit cleanly; the child got the hangup too and checkpoints."""
        try:
            self._loop.add_signal_handler(signal.SIGHUP, self._on_hangup)  # type: ignore[union-attr]
        except (AttributeError, NotImplementedError, RuntimeError, ValueError):
            pass

    def on_unmount(self) -> None:
        try:
            self._loop.remove_signal_handler(signal.SIGHUP)  # type: ignore[union-attr]
        except (AttributeError, NotImplementedError, RuntimeError, ValueError):
            pass

    def _on_hangup(self) -> None:
        self._hangup = True
        self.exit(129, return_code=129)

    def shutdown_child(self) -> int | None:
        """Do not leave our child orphaned: wait for it after a hangup, else stop it (SIGTERM)."""
        if self.child is None:
            return None
        if not self.child.running:
            self.child.cleanup()
            return self.child.poll()
        if self._hangup:
            code = self.child.wait(HANGUP_GRACE_S)
            if code is not None:
                return code
        return self.child.shutdown()

    def run(self, *args: Any, **kwargs: Any) -> int | None:  # type: ignore[override]
        try:
            return super().run(*args, **kwargs)
        finally:
            self.shutdown_child()


def create_app(*, mode: Mode, runs_dir: Path, data_dir: Path | None = None,
               config: "RunConfig | None" = None, run_dir: Path | None = None,
               run_name: str | None = None, resume_dir: Path | None = None,
               resume_args: Sequence[str] = ()) -> NntuiApp:
    """The app in one of its modes: "setup" (pick and start), "run" (launch `config` and monitor
    it; or, with `resume_dir`, resume that run with `resume_args` (see
    `launcher.resume_options`) and monitor it, old records first), "attach" (monitor a run of
    another process, with controls) or "show" (read-only)."""
    if mode not in ("setup", "run", "attach", "show"):
        raise ValueError(f"unknown mode {mode!r}")
    if mode == "run" and config is None and resume_dir is None:
        raise ValueError("create_app(mode='run') needs a config or a resume_dir")
    if resume_dir is not None and mode != "run":
        raise ValueError("create_app: resume_dir goes with mode='run'")
    if mode in ("attach", "show") and run_dir is None:
        raise ValueError(f"create_app(mode={mode!r}) needs a run_dir")
    return NntuiApp(mode=mode, runs_dir=runs_dir, data_dir=data_dir, config=config,
                    run_dir=run_dir, run_name=run_name, resume_dir=resume_dir, resume_args=resume_args)
