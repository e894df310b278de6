"""Drawing the monitor: the state's values into its widgets, each one only when what it shows has
changed. The widgets are looked up once (after mount), never per frame; the log gets only its new
lines, in one write per frame. Each part is drawn on its own (`guarded`): one that fails leaves
the others, and the monitor, going.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from rich.text import Text
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Footer, ProgressBar, Static

from nntui.tui.charts import ChartsPane
from nntui.tui.gradpane import GradPane
from nntui.tui.guard import guarded
from nntui.tui.state import MonitorState
from nntui.tui.system_pane import SystemPane
from nntui.tui.widgets import EarlyStopPane, FollowingLog

if TYPE_CHECKING:
    from nntui.tui.monitor import MonitorScreen

LOG_STYLES = {"info": "", "epoch": "", "control": "cyan", "alert": "bold red", "result": "bold green",
              "error": "red"}
PROGRESS_RESOLUTION = 200  # the progress bar is redrawn when it moves by 1/200 (0.5 %)
_UNSET = object()


def monitor_widgets() -> Iterator[Widget]:
    """The monitor's widgets (MonitorScreen.compose): header, progress, alert; the charts beside
    early stopping, the system and the gradients; results, log, footer."""
    with Horizontal(id="head"):
        yield Static("nntui", id="title")
        yield Static("starting", id="status", classes="status-starting")
    with Horizontal(id="progress-row"):
        yield ProgressBar(total=1, show_eta=False, id="progress")
        yield Static("", id="progress-text")
    yield Static("", id="alert")
    with Horizontal(id="panes"):
        yield ChartsPane(id="charts")
        with Vertical(id="side"):
            yield EarlyStopPane(id="early-stop")
            yield SystemPane(id="system")
            with VerticalScroll(id="grads"):
                yield GradPane(id="grad-pane")
    yield Static("", id="results")
    yield FollowingLog(id="log", max_lines=2000, wrap=True, markup=False, min_width=20)
    yield Footer(compact=True)  # every key that applies fits in 80 columns


BORDER_TITLES = {"#system": "system", "#grads": "gradient norm per layer", "#early-stop": "early stopping",
                 "#log": "log"}


class MonitorView:
    """The monitor's widgets and what each shows now."""

    def __init__(self, screen: "MonitorScreen") -> None:
        self.screen = screen
        find = screen.query_one
        for selector, title in BORDER_TITLES.items():
            find(selector).border_title = title
        self.title = find("#title", Static)
        self.status = find("#status", Static)
        self.progress = find("#progress", ProgressBar)
        self.progress_text = find("#progress-text", Static)
        self.alert = find("#alert", Static)
        self.charts = find("#charts", ChartsPane)
        self.grads = find("#grad-pane", GradPane)
        self.system = find("#system", SystemPane)
        self.early_stop = find("#early-stop", EarlyStopPane)
        self.results = find("#results", Static)
        self.log = find("#log", FollowingLog)
        self.logged = 0  # how many of the state's log lines the log widget has
        self._shown: dict[str, object] = {}

    def report_error(self, where: str, error: Exception) -> None:
        self.screen.report_error(where, error)

    def changed(self, key: str, value: object) -> bool:
        """Whether `value` differs from what `key` shows now (and remember it as shown)."""
        if self._shown.get(key, _UNSET) == value:
            return False
        self._shown[key] = value
        return True

    def forget(self) -> None:
        """Draw everything again at the next frame (after an error, or a restyle)."""
        self._shown.clear()

    def _text(self, widget: Static, key: str, text: str, fixed_size: bool = True) -> None:
        """Show `text` in `widget` if it is new; `fixed_size`: the widget's size is set by the
        stylesheet, so no layout pass is needed (the costly part of a frame)."""
        if self.changed(key, text):
            widget.update(text, layout=not fixed_size)

    def _display(self, widget: Widget, key: str, shown: bool) -> None:
        if self.changed(key, shown):
            widget.display = shown

    # ------------------------------------------------------------------ the parts

    def draw(self, state: MonitorState, title: str, errors: str) -> None:
        """Bring every part up to date with `state` (`title`: the header's text)."""
        self.draw_header(state, title, errors)
        self.draw_metrics(state)
        self.draw_panes(state)
        self.draw_log(state)

    @guarded("drawing the header")
    def draw_header(self, state: MonitorState, title: str, errors: str) -> None:
        self._text(self.title, "title", title)
        self._text(self.status, "status", f" {state.status.upper()} ", fixed_size=False)  # its width: auto
        if self.changed("status-class", state.status):
            self.status.set_classes(f"status-{state.status.split(' ')[0]}")
        total = max(1, state.total_steps)
        progress = min(state.step, total)
        if self.changed("progress", (total, progress * PROGRESS_RESOLUTION // total)):  # a visible change
            self.progress.update(total=total, progress=progress)
        self._text(self.progress_text, "progress-text", state.progress_text())
        alert = " · ".join(line for line in (state.alert, errors) if line)
        self._text(self.alert, "alert", alert, fixed_size=False)
        self._display(self.alert, "alert-shown", bool(alert))

    @guarded("drawing the charts")
    def draw_metrics(self, state: MonitorState) -> None:
        self.charts.show(state)  # it returns early when nothing it draws has changed

    @guarded("drawing the panes")
    def draw_panes(self, state: MonitorState) -> None:
        self.grads.show(state.layers)  # these two return early when nothing changed
        self.system.show(state.system, state.started.device if state.started else "")
        stop = state.early_stop
        lines = state.early_stop_lines()
        wait, patience = (stop.wait, stop.patience) if stop else (None, None)
        if self.changed("early-stop", (tuple(lines), wait, patience)):
            self.early_stop.show(lines, wait, patience)
        self._text(self.results, "results", state.results_text(), fixed_size=False)
        self._display(self.results, "results-shown", state.ended is not None)

    @guarded("drawing the log")
    def draw_log(self, state: MonitorState) -> None:
        """Append the state's new log lines, all in one write."""
        lines = state.new_log_lines(self.logged)
        self.logged = state.log_total
        if lines:
            text = Text("\n").join(Text(line.text, style=LOG_STYLES.get(line.kind, "")) for line in lines)
            self.log.write(text)

    def rewrap_log(self, state: MonitorState) -> None:
        """Write the kept log lines again (they are wrapped to the log's width)."""
        self.log.clear()
        self.logged = state.log_total - len(state.log)
        self.draw_log(state)

