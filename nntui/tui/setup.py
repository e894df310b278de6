"""The setup screen: pick a preset, adjust optimizer, regularization and schedule, start."""

from __future__ import annotations

from typing import Any, Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static

from nntui.config import ConfigError, RunConfig, preset_files, read_preset_file, validate
from nntui.tui.formfields import COLUMNS, FIELDS, FormError, FormField, build_config, check_field

DEFAULT_PRESET = "digits-mlp"
YOURS = " (yours)"  # how the list marks the user's own presets

Presets = dict[str, tuple[dict[str, Any], RunConfig]]


def load_presets() -> tuple[Presets, list[str]]:
    """Every preset that loads, keyed by how the list shows it, with its raw table and resolved
    config; and the one-line problems of those that do not.

    The user's own presets (./presets, then the user config dir) come first, named `NAME (yours)`;
    of two with the same name, the one `nntui run NAME` takes. Then the built-in ones by name,
    a built-in one shadowed by the user's included (it is not hidden here: both can be picked).
    """
    presets: Presets = {}
    problems, seen = [], set()
    for preset in preset_files():
        key = preset.name if preset.is_builtin else preset.name + YOURS
        if key in seen:
            continue
        seen.add(key)
        try:
            raw = read_preset_file(preset.path, preset.label)
            presets[key] = (raw, validate(raw, preset.label))
        except ConfigError as error:
            problems.append(str(error))
    return presets, problems


class SetupScreen(Screen[None]):
    """Presets on top, the form below; `enter` on a preset or the Start button starts."""

    BINDINGS = [
        Binding("enter", "start", "Start"),
        Binding("escape", "focus_presets", "Presets"),
        Binding("ctrl+q", "app.quit", "Quit", priority=True),
    ]

    def __init__(self, on_start: Callable[[RunConfig], None]) -> None:
        super().__init__()
        self.on_start = on_start
        self.presets, self.preset_problems = load_presets()
        self.preset_name = DEFAULT_PRESET if DEFAULT_PRESET in self.presets else next(iter(self.presets), "")
        self.config: RunConfig | None = None
        self._filling = False

    def compose(self) -> ComposeResult:
        yield DataTable(id="presets", cursor_type="row", zebra_stripes=False)
        yield Static("", id="preset-description")
        with Horizontal(id="form"):
            for column in COLUMNS:
                with Vertical(classes="form-column"):
                    for field in column:
                        with Horizontal(classes="form-row"):
                            yield Label(field.label, classes="form-label")
                            yield self._widget(field)
        with Horizontal(id="start-row"):
            yield Button("Start ▶", id="start", variant="success", compact=True, disabled=True)
            yield Label("", id="form-error")
        yield Footer()

    @staticmethod
    def _widget(field: FormField) -> Select[str] | Input:
        if field.kind in ("select", "switch"):
            return Select([(option, option) for option in field.options], allow_blank=False,
                          compact=True, id=field.widget_id)
        return Input(validators=[field.validator] if field.validator else [], compact=True,
                     validate_on=["changed", "submitted"], id=field.widget_id)

    def on_mount(self) -> None:
        self.query_one("#presets").border_title = "presets (enter starts)"
        self.query_one("#form").border_title = "settings"
        table = self.query_one("#presets", DataTable)
        table.add_columns("preset", "task", "description")
        for name, (_, config) in self.presets.items():
            table.add_row(name, config.task, config.description, key=name)
        if self.preset_name:
            table.move_cursor(row=list(self.presets).index(self.preset_name))
            self.fill(self.preset_name)
        table.focus()
        if self.preset_problems:
            self.notify("\n".join(self.preset_problems), title="presets left out", severity="warning", timeout=15)

    # ------------------------------------------------------------------ the form

    def fill(self, name: str) -> None:
        """Put a preset's values into the form."""
        self.preset_name = name
        raw, config = self.presets[name]
        self._filling = True
        for field in FIELDS:
            widget = self.query_one(f"#{field.widget_id}")
            text = field.text_of(config)
            if isinstance(widget, Select):
                if text not in field.options:  # e.g. device cuda:1
                    widget.set_options([(option, option) for option in (*field.options, text)])
                widget.value = text
            else:
                widget.value = text
        self._filling = False
        summary = f"{config.data.dataset} · {config.model.kind} {config.model.hidden} {config.model.activation}"
        self.query_one("#preset-description", Static).update(f"{config.description}  [dim]({summary})[/]")
        self.revalidate()

    def values(self) -> dict[str, Any]:
        """The form's raw values by dotted key."""
        values = {}
        for field in FIELDS:
            widget = self.query_one(f"#{field.widget_id}")
            values[field.key] = widget.value
        return values

    def revalidate(self) -> None:
        """Check every field and the whole config; enable Start only when all is well."""
        if self._filling or not self.preset_name:
            return
        values = self.values()
        self._toggle_dependent(values)
        error = self.query_one("#form-error", Label)
        try:
            self.config = build_config(self.presets[self.preset_name][0], values)
        except FormError as problem:
            self.config = None
            error.update(f"✗ {problem}")
        else:
            error.update(f"{self.preset_name}: ready")
        error.set_class(self.config is None, "-invalid")
        self.query_one("#start", Button).disabled = self.config is None

    def _toggle_dependent(self, values: dict[str, Any]) -> None:
        penalty = values["regularization.penalty"]
        self.query_one("#f-regularization-alpha").disabled = penalty == "none"
        self.query_one("#f-regularization-l1-ratio").disabled = penalty != "elastic_net"
        early_off = values["early_stopping.enabled"] != "on"
        for key in ("patience", "restore-best", "baseline", "start-from-epoch"):
            self.query_one(f"#f-early-stopping-{key}").disabled = early_off
        schedule = values["schedule.name"]
        self.query_one("#f-schedule-min-lr").disabled = schedule not in ("plateau", "cosine")
        self.query_one("#f-schedule-cooldown").disabled = schedule != "plateau"
        self.query_one("#f-schedule-min-delta").disabled = schedule != "plateau"

    def field_problem(self, key: str) -> str:
        """The current problem of one field ('' when fine): for tests and tooltips."""
        field = next(field for field in FIELDS if field.key == key)
        return check_field(field, self.query_one(f"#{field.widget_id}").value)

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self.revalidate()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    @on(DataTable.RowHighlighted, "#presets")
    def _preset_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name and name != self.preset_name:
            self.fill(name)

    @on(DataTable.RowSelected, "#presets")
    def _preset_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value != self.preset_name:
            self.fill(str(event.row_key.value))
        self.action_start()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        self.revalidate()
        if self.config is None:
            self.notify(str(self.query_one("#form-error", Label).render()), severity="error", title="cannot start")
            return
        self.on_start(self.config)

    def action_focus_presets(self) -> None:
        self.query_one("#presets").focus()
