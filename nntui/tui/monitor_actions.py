"""The monitor's actions that leave the run as it is: after it has ended, a new run from its
settings (`n`) or more epochs of it (`e`); the charts' keys (`m`, `x`, `enter`); a screenshot
into the run directory. The base of MonitorScreen (nntui.tui.monitor), which decides when they apply.
"""

from __future__ import annotations

from pathlib import Path

from textual.screen import Screen

from nntui.tui.charts import ChartsPane
from nntui.tui.dialogs import EpochsDialog
from nntui.tui.monitor_keys import continue_default, run_settings, save_screenshot, screenshot_name
from nntui.tui.state import MonitorState


class MonitorActions(Screen[None]):
    """The `action_*` methods of MonitorScreen that leave the run as it is."""

    run_dir: Path
    state: MonitorState
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
