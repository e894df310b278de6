"""The monitor's actions that leave the run as it is: after it has ended, a new run from its
settings (`n`) or more epochs of it (`e`); a fork of it at the current step (`f`); the charts'
keys (`m`, `x`, `enter`); a screenshot into the run directory. The base of MonitorScreen
(nntui.tui.monitor), which decides when they apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.screen import Screen
from textual.worker import get_current_worker

from nntui.tui import steering
from nntui.tui.charts import ChartsPane
from nntui.tui.dialogs import EpochsDialog
from nntui.tui.fork_point import ForkPoint, ForkPointError, fork_point
from nntui.tui.monitor_keys import continue_default, run_settings, save_screenshot, screenshot_name
from nntui.tui.state import MonitorState

if TYPE_CHECKING:
    from nntui.config import RunConfig


class MonitorActions(Screen[None]):
    """The `action_*` methods of MonitorScreen that leave the run as it is."""

    run_dir: Path
    state: MonitorState
    steerable: bool
    _drawn_version: int  # -1: draw everything at the next frame

    def action_new_run(self) -> None:
        """The setup screen, holding this run's settings, to start another run."""
        config, error = run_settings(self.run_dir)
        self.app.open_setup(config, error=error)  # type: ignore[attr-defined]

    def action_continue_run(self) -> None:
        """Ask for the epochs to train up to, then continue the run (`--resume` with `--epochs`)."""
        started = self.state.started
        planned = started.epochs if started is not None else self.state.epoch

        def answered(epochs: int | None) -> None:
            if epochs is not None:
                self.app.continue_run(self.run_dir, epochs)  # type: ignore[attr-defined]

        self.app.push_screen(EpochsDialog(self.state.epoch, continue_default(planned, self.state.epoch)), answered)

    def action_fork_run(self) -> None:
        """Fork the run here: a live one is asked for a checkpoint first (last.pt then holds the
        current step), an ended one forks from its last.pt; then the setup form, holding the run's
        settings, starts the fork (`nntui run CONFIG --fork RUN@last`)."""
        live = self.steerable
        if live:
            self.notify("asking the run for a checkpoint to fork from…", title="fork")
        self._find_fork_point(live)

    @work(thread=True, exclusive=True, exit_on_error=False, group="fork")
    def _find_fork_point(self, live: bool) -> None:
        """The checkpoint (asked for first on a live run) and settings to fork from, found in a
        thread (the answer can take a moment, a copy of a big checkpoint too)."""
        worker = get_current_worker()
        point: ForkPoint | str
        ok, message = steering.send(self.run_dir, "checkpoint", cancelled=lambda: worker.is_cancelled) \
            if live else (True, "")
        config, problem = run_settings(self.run_dir)
        if not ok:
            point = f"no checkpoint to fork from: {message}"
        elif config is None:
            point = problem
        else:
            try:
                point = fork_point(self.run_dir, config, live)
            except ForkPointError as error:
                point = str(error)
        if not worker.is_cancelled:
            self.app.call_from_thread(self._open_fork_form, point)

    def _open_fork_form(self, point: ForkPoint | str) -> None:
        """The setup form in fork mode over the monitor (escape on the presets comes back)."""
        from nntui.tui.setup import SetupScreen

        if isinstance(point, str):
            self.notify(point, title="fork", severity="error", timeout=8)
            return
        if not self.is_current:  # the user has moved on (another screen): the copy is not needed
            point.discard()
            return

        def start(config: "RunConfig") -> None:
            problem = point.too_few_epochs(config)
            if problem:  # said on the form, where the epochs can be changed (the fork would fail)
                self.app.screen.show_start_error(problem)  # type: ignore[attr-defined]
                return
            self.app.pop_screen()
            if self.state.live:  # its monitor makes way for the fork's; the run goes on
                self.app.notify(f"run {point.parent} goes on: `nntui attach {point.parent}` follows it",
                                title="fork", timeout=8)
            self.app.start_run(config, fork_args=point.argv())  # type: ignore[attr-defined]

        def back() -> None:
            point.discard()
            self.app.pop_screen()

        self.app.push_screen(SetupScreen(start, point.config, fork_title=point.title, on_back=back))

    def action_toggle_smoothing(self) -> None:
        self._charts_call("toggle_smoothing")

    def action_cycle_x_axis(self) -> None:
        self._charts_call("cycle_x_axis")

    def action_fullscreen_chart(self) -> None:
        self.app.push_screen(self.query_one(ChartsPane).fullscreen_screen(self.state))

    def _charts_call(self, method: str) -> None:
        self.notify(getattr(self.query_one(ChartsPane), method)())
        self._drawn_version = -1

    def action_save_screenshot(self) -> None:
        """An SVG of the screen, into the run directory (the working directory if that is not
        writable); says where."""
        try:
            path, note = save_screenshot(self.run_dir, self.app.export_screenshot(), screenshot_name(self.run_dir.name))
        except OSError as error:
            self.notify(f"cannot save the screenshot: {error}", title="Screenshot", severity="error")
            return
        self.notify(f"{note}: saved to {path}" if note else f"saved to {path}", title="Screenshot",
                    severity="warning" if note else "information", timeout=8)
