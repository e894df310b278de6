"""The runs screen (`nntui runs` on a terminal): the runs under the runs dir in a table that
filters and sorts, the selected runs' curves overlaid, the settings that differ between them and
a summary of each; `enter` opens a run's monitor, `escape` there comes back here."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from nntui.run_series import SeriesCache
from nntui.runs import is_live
from nntui.tui.actions import MonitorAction, bindings
from nntui.tui.charts.overlay import OverlayCharts
from nntui.tui.monitor import MonitorScreen
from nntui.tui.runs_screen_diff import diff_and_summary
from nntui.tui.runs_screen_rows import RunsRows

REFRESH_S = 1.0  # live runs' rows and curves: a stat per run a second, a read of what changed
SELECTED_MARK = "●"
MARK_COLUMN = "selected"

RUNS_ACTIONS: tuple[MonitorAction, ...] = (
    MonitorAction("open_run", "enter", "Open", "Open the run",
                  "the highlighted run's monitor: attached while it is live, read-only after (escape comes back)"),
    MonitorAction("toggle_selected", "space", "Select", "Select / unselect",
                  "select the run (or unselect it): its curves, settings and summary below"),
    MonitorAction("filter", "slash", "Filter", "Filter", "filter: the runs with this text in any column",
                  key_display="/"),
    MonitorAction("sort_next", "s", "Sort", "Sort by the next column",
                  "sort by the next column (or click a column's header)"),
    MonitorAction("sort_reverse", "S", "Reverse", "Reverse the order", "reverse the order"),
    MonitorAction("cycle_x_axis", "x", "Axis", "Cycle the x axis", "the charts' x axis: epoch, step, wall time"),
    MonitorAction("back", "escape", "Back", "Back", "clear the filter; or back to the screen before"),
    MonitorAction("quit_runs", "q", "Quit", "Quit", "quit"),
)


class RunMonitorScreen(MonitorScreen):
    """A run's monitor opened from the runs screen: `escape` goes back to it (a live run goes on)."""

    BINDINGS = [Binding("escape", "back_to_runs", "Runs")]

    def action_back_to_runs(self) -> None:
        if self.app.monitor is self:  # type: ignore[attr-defined]
            self.app.monitor = None  # type: ignore[attr-defined]
        self.dismiss()


class RunsScreen(Screen[None]):
    """The table of runs, the overlay of the selected ones, their diff and summaries."""

    BINDINGS = bindings(RUNS_ACTIONS)

    def __init__(self, runs_dir: Path, all_users: bool = False) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.rows = RunsRows(self.runs_dir, all_users)
        self.series = SeriesCache()
        self.selected: list[str] = []  # run names, in the order they were selected
        self.filter_text = ""
        self.sort_by: str | None = None  # a column key; None: newest first
        self.descending = False
        self._columns: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-title")
        yield Input(placeholder="filter: text in any column (enter keeps it, escape clears it)", id="runs-filter")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="runs-lower"):
            yield OverlayCharts(id="runs-overlay")
            with VerticalScroll(id="runs-diff-pane"):
                yield Static("", id="runs-diff")
        yield Static("", id="runs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.rows.load()
        self.query_one("#runs-table").border_title = "runs"
        self.query_one("#runs-diff-pane").border_title = "diff and summary"
        self.fill_table()
        self.show_selected()
        self.set_interval(REFRESH_S, self.refresh_runs)
        self.query_one("#runs-table").focus()

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#runs-table", DataTable)

    # ------------------------------------------------------------------ the table

    def fill_table(self) -> None:
        """Put the visible rows into the table (the columns again if they changed), keeping the
        cursor on the run it was on."""
        table = self.table
        current = self.highlighted()
        columns = self.rows.columns
        if columns != self._columns:
            table.clear(columns=True)
            table.add_column(" ", key=MARK_COLUMN)
            for key, header in columns:
                table.add_column(self._header(key, header), key=key)
            self._columns = columns
        else:
            table.clear()
        visible = self.rows.visible(self.filter_text, self.sort_by, self.descending)
        for row in visible:
            mark = SELECTED_MARK if row.name in self.selected else ""
            table.add_row(mark, *self.rows.cells(row), key=row.name)
        names = [row.name for row in visible]
        if current in names:
            table.move_cursor(row=names.index(current), animate=False)
        self._show_status(len(visible))

    def _header(self, key: str, header: str) -> str:
        return f"{header} {'▼' if self.descending else '▲'}" if key == self.sort_by else header

    def highlighted(self) -> str | None:
        """The name of the run under the cursor (None in an empty table)."""
        table = self.table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return key.value

    def _show_status(self, shown: int) -> None:
        total = len(self.rows.rows)
        parts = [f"sort: {self.sort_text()} (s: next column, S: reverse)", "enter: the run's monitor"]
        if self.filter_text:
            parts.append(f"filter: {self.filter_text!r} ({shown} of {total})")
        parts.append(f"{len(self.selected)} selected")
        self.query_one("#runs-status", Static).update(" · ".join(parts))
        where = f"{total} run{'s' if total != 1 else ''} under {self.runs_dir}"
        self.query_one("#runs-title", Static).update(where if total else f"no runs under {self.runs_dir}")

    def sort_text(self) -> str:
        """How the table is sorted, in words: `newest first`, `optim.lr ▲`."""
        if self.sort_by is None:
            return "oldest first" if self.descending else "newest first"
        return f"{dict(self.rows.columns).get(self.sort_by, self.sort_by)} {'▼' if self.descending else '▲'}"

    def refresh_runs(self) -> None:
        """Read what changed on disk; redraw the table and the selected runs' panes if anything did."""
        changed = self.rows.refresh()
        if not changed:
            return
        was_selected = set(self.selected)
        self.selected = [name for name in self.selected if name in self.rows.rows]
        if not self._update_cells(changed):
            self.fill_table()
        if changed & was_selected:
            self.show_selected()

    def _update_cells(self, names: set[str]) -> bool:
        """Update the cells of the rows `names` in place (a live run's epochs, best, status): False,
        and nothing done, when the table must be filled again (other columns, rows or order)."""
        table = self.table
        visible = self.rows.visible(self.filter_text, self.sort_by, self.descending)
        if self.rows.columns != self._columns or [row.key.value for row in table.ordered_rows] != [
                row.name for row in visible]:
            return False
        for row in visible:
            if row.name in names:
                for (key, _), text in zip(self._columns, self.rows.cells(row)):
                    table.update_cell(row.name, key, text, update_width=True)
        return True

    # ------------------------------------------------------------------ selection and panes

    def show_selected(self) -> None:
        """The selected runs' curves, their settings diff and summaries."""
        series = [self.series.load(self.rows.rows[name].info.path) for name in self.selected]
        self.query_one(OverlayCharts).show_runs(series)
        settings = {name: self.rows.rows[name].settings for name in self.selected}
        pane = diff_and_summary(settings, [(item.name, item.task, item.epochs) for item in series])
        self.query_one("#runs-diff", Static).update(pane)

    def action_toggle_selected(self) -> None:
        """Select the highlighted run (or unselect it), then move on to the next one."""
        name = self.highlighted()
        if name is None:
            return
        if name in self.selected:
            self.selected.remove(name)
        else:
            self.selected.append(name)
        row = self.table.get_row_index(name)
        self.table.update_cell(name, MARK_COLUMN, SELECTED_MARK if name in self.selected else "")
        if row + 1 < self.table.row_count:  # as in a file manager: on to the next run
            self.table.move_cursor(row=row + 1, animate=False)
        self._show_status(self.table.row_count)
        self.show_selected()

    def action_cycle_x_axis(self) -> None:
        self.query_one(OverlayCharts).action_cycle_x()

    # ------------------------------------------------------------------ filter and sort

    def action_filter(self) -> None:
        """Show the filter field and type into it (the table follows each keystroke)."""
        self.add_class("-filtering")
        self.query_one("#runs-filter", Input).focus()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.fill_table()

    @on(Input.Submitted, "#runs-filter")
    def _filter_submitted(self) -> None:
        self.set_class(bool(self.filter_text), "-filtering")
        self.table.focus()

    def action_back(self) -> None:
        """Clear the filter if there is one; else back to the screen below (the setup screen)."""
        if self.filter_text or self.has_class("-filtering"):
            self.query_one("#runs-filter", Input).value = ""  # Input.Changed refills the table
            self.filter_text = ""
            self.remove_class("-filtering")
            self.table.focus()
            self.fill_table()
        elif len(self.app.screen_stack) > 2:  # the default screen, something, this one
            self.dismiss()

    def sort(self, column: str | None, descending: bool = False) -> None:
        """Sort by `column` (a column key; None: newest first)."""
        self.sort_by, self.descending = column, descending
        self._columns = []  # the headers show the order
        self.fill_table()

    def action_sort_next(self) -> None:
        """Sort by the next column, after the last one newest first again."""
        keys = [None, *(key for key, _ in self.rows.columns)]
        following = keys[(keys.index(self.sort_by) + 1) % len(keys)] if self.sort_by in keys else None
        self.sort(following)

    def action_sort_reverse(self) -> None:
        self.sort(self.sort_by, not self.descending)

    @on(DataTable.HeaderSelected, "#runs-table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_key.value
        if column == MARK_COLUMN:
            return
        self.sort(column, not self.descending if column == self.sort_by else False)

    # ------------------------------------------------------------------ opening a run

    @on(DataTable.RowSelected, "#runs-table")
    def _row_selected(self) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        """The highlighted run's monitor: attached while it is live, read-only once it is over."""
        name = self.highlighted()
        if name is None:
            return
        run_dir = self.rows.rows[name].info.path
        mode = "attach" if is_live(run_dir) else "show"
        self.app.push_screen(self.app.watch_screen(run_dir, mode, RunMonitorScreen))  # type: ignore[attr-defined]

    def action_quit_runs(self) -> None:
        self.app.exit(0, return_code=0)
