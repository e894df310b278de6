"""The setup screen: pick a preset, adjust optimizer, schedule, regularization and early
stopping, start. Edits are kept per preset; a run that did not start comes back here."""

from __future__ import annotations

from typing import Any, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static
from textual.worker import get_current_worker

from nntui.config import ConfigError, RunConfig, preset_files, read_preset_file, validate
from nntui.tui.devices import Devices, probe_devices
from nntui.tui.formfields import (
    COLUMNS,
    FIELD_BY_KEY,
    FIELDS,
    FormError,
    FormField,
    build_config,
    check_field,
    default_gamma,
    form_texts,
)

DEFAULT_PRESET = "digits-mlp"
YOURS = " (yours)"  # how the list marks the user's own presets
FROM_RUN = " (last run)"  # a run's settings, brought back by `n` in the monitor
FORKED = " (fork)"  # a run's settings, to fork it (`f` in the monitor)
EDITED = " *"  # how the list marks a preset whose values the user has changed

Presets = dict[str, tuple[dict[str, Any], RunConfig]]
# the selects other fields depend on: each heads the fields that follow it
HEADINGS = {field.when[0] for field in FIELDS if field.when}


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
    """Presets on top, the form below; `enter` on a preset or the Start button starts.

    `config` (a run's settings) is put first in the list and into the form; `error` (why the
    last run did not start) is shown under Start. With `fork_title` the form forks a run
    (`f` in the monitor): the list holds only that run's settings, the title says what is
    forked, and escape on the list calls `on_back`.
    """

    BINDINGS = [
        Binding("enter", "start", "Start"),
        Binding("escape", "focus_presets", "Presets"),
        Binding("ctrl+r", "reset_preset", "Undo edits"),
        Binding("r", "app.open_runs", "Runs"),  # the runs screen (compare, overlay, diff)
        Binding("ctrl+q", "app.quit", "Quit", priority=True),
    ]

    def __init__(self, on_start: Callable[[RunConfig], None], config: RunConfig | None = None,
                 error: str = "", *, fork_title: str = "", on_back: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.on_start = on_start
        self.fork_title, self.on_back = fork_title, on_back
        self.presets, self.preset_problems = load_presets() if not fork_title else ({}, [])
        self.preset_name = DEFAULT_PRESET if DEFAULT_PRESET in self.presets else next(iter(self.presets), "")
        self.edits: dict[str, dict[str, str]] = {}  # preset -> the form's values, for presets changed
        self.config: RunConfig | None = None  # what Start starts; None while something is wrong
        self._form_config: RunConfig | None = None  # what the form holds, if valid (the device aside)
        self.devices: Devices | None = None  # None until probed
        self._given = (config, error)
        self._filling = False
        self._schedule = ""  # the schedule the form shows, to tell a change of it

    def compose(self) -> ComposeResult:
        yield DataTable(id="presets", cursor_type="row", zebra_stripes=False)
        yield Static("", id="preset-description")
        with Horizontal(id="form"):
            for column_id, fields in COLUMNS:
                with Vertical(classes="form-column", id=f"col-{column_id}"):
                    for field in fields:
                        heading = "-heading" if field.key in HEADINGS else ""
                        with Horizontal(classes=f"form-row {heading}", id=f"row-{field.widget_id}"):
                            yield Label(field.label, classes="form-label")
                            yield self._widget(field)
        with Horizontal(id="start-row"):
            yield Button("Start ▶", id="start", variant="success", compact=True, disabled=True)
            yield Label("", id="form-error")
        yield Label("", id="start-failed")
        yield Footer()

    @staticmethod
    def _widget(field: FormField) -> Select[str] | Input:
        if field.kind in ("select", "switch"):
            return Select([(option, option) for option in field.options], allow_blank=False,
                          compact=True, id=field.widget_id)
        return Input(validators=[field.validator] if field.validator else [], compact=True,
                     placeholder=field.placeholder, validate_on=["changed", "submitted"], id=field.widget_id)

    def on_mount(self) -> None:
        self.query_one("#presets").border_title = "presets (enter starts)"
        self.query_one("#form").border_title = "settings"
        if self.fork_title:
            self.query_one("#presets").border_title = f"{self.fork_title} (enter starts the fork, escape goes back)"
            self.query_one("#start", Button).label = "Fork ▶"
        table = self.query_one("#presets", DataTable)
        self._name_column = table.add_columns("preset", "task", "description")[0]
        config, error = self._given
        if config is not None:
            self.prefill(config)
        else:
            self._list_presets()
            if self.preset_name:
                self.fill(self.preset_name)
        self.show_start_error(error)
        table.focus()
        if self.preset_problems:
            self.notify("\n".join(self.preset_problems), title="presets left out", severity="warning", timeout=15)
        self._probe_devices()

    # ------------------------------------------------------------------ the preset list

    def _list_presets(self) -> None:
        """(Re)build the list, the cursor on the current preset (no refill on the way)."""
        table = self.query_one("#presets", DataTable)
        with self.prevent(DataTable.RowHighlighted):
            table.clear()
            for name, (_, config) in self.presets.items():
                table.add_row(self._shown_name(name), config.task, config.description, key=name)
            if self.preset_name in self.presets:
                table.move_cursor(row=list(self.presets).index(self.preset_name))

    def _shown_name(self, name: str) -> str:
        return name + EDITED if name in self.edits else name

    def prefill(self, config: RunConfig) -> None:
        """Show `config` in the form: as it is when the form holds it already (a run that did
        not start), else as a new first entry of the list, `NAME (last run)`."""
        if config == self._form_config:
            return
        key = config.name + (FORKED if self.fork_title else FROM_RUN)
        others = {name: preset for name, preset in self.presets.items() if name != key}
        self.presets = {key: (config.to_dict(), config), **others}
        self.edits.pop(key, None)
        self.preset_name = key
        self._list_presets()
        self.fill(key)

    # ------------------------------------------------------------------ the form

    def fill(self, name: str) -> None:
        """Put a preset's values into the form: the user's edits of it, if any."""
        self.preset_name = name
        _, config = self.presets[name]
        self._set_values(self.edits.get(name) or form_texts(config))
        summary = f"{config.data.dataset} · {model_summary(config.model)}"
        self.query_one("#preset-description", Static).update(f"{config.description}  [dim]({summary})[/]")
        self.revalidate()

    def _set_values(self, values: dict[str, str]) -> None:
        self._filling = True
        for key, text in values.items():
            field = FIELD_BY_KEY[key]
            widget = self.query_one(f"#{field.widget_id}")
            if isinstance(widget, Select) and text not in field.options:  # e.g. device cuda:1
                widget.set_options([(option, option) for option in (*field.options, text)])
            widget.value = text
        self._show_schedule(values["schedule.name"])
        self._filling = False

    def values(self) -> dict[str, Any]:
        """The form's raw values by dotted key."""
        return {field.key: self.query_one(f"#{field.widget_id}").value for field in FIELDS}

    def revalidate(self) -> None:
        """Show the fields that apply, check them and the whole config; enable Start only
        when all is well (and the device is one this machine has, once that is known)."""
        if self._filling or not self.preset_name:
            return
        values, (base, preset) = self.values(), self.presets[self.preset_name]
        for field in FIELDS:
            self.query_one(f"#row-{field.widget_id}").display = field.applies(values, preset)
        try:
            self.config, problem = build_config(base, values), ""
        except FormError as error:
            self.config, problem = None, str(error)
        self._form_config = self.config
        device_problem = self.devices.problem(str(values["train.device"])) if self.devices else ""
        self.query_one("#row-f-train-device").set_class(bool(device_problem), "-flagged")
        if device_problem:
            self.config, problem = None, problem or device_problem
        error = self.query_one("#form-error", Label)
        error.update(f"✗ {problem}" if problem else f"{self.preset_name}: ready")
        error.set_class(self.config is None, "-invalid")
        self.query_one("#start", Button).disabled = self.config is None

    def field_problem(self, key: str) -> str:
        """The current problem of one field ('' when fine): for tests and tooltips."""
        field = FIELD_BY_KEY[key]
        return check_field(field, self.query_one(f"#{field.widget_id}").value)

    def field_shown(self, key: str) -> bool:
        """Whether the field of `key` is in the form now (it applies): for tests."""
        return bool(self.query_one(f"#row-{FIELD_BY_KEY[key].widget_id}").display)

    def _note_edits(self) -> None:
        """Keep the form's values as the current preset's edits (or drop them when they are
        its own values again), and mark the preset in the list."""
        name = self.preset_name
        values, was_edited = self.values(), name in self.edits
        if values != form_texts(self.presets[name][1]):
            self.edits[name] = values
        else:
            self.edits.pop(name, None)
        if was_edited != (name in self.edits):
            self.query_one("#presets", DataTable).update_cell(name, self._name_column, self._shown_name(name),
                                                              update_width=True)
            self.refresh_bindings()

    def _schedule_changed(self, schedule: str) -> None:
        """An empty gamma is the new schedule's default; one left at the old default follows."""
        gamma = self.query_one("#f-schedule-gamma", Input)
        if gamma.value.strip() in ("", "0", default_gamma(self._schedule)):
            gamma.value = ""
        self._show_schedule(schedule)

    def _show_schedule(self, schedule: str) -> None:
        self.query_one("#f-schedule-gamma", Input).placeholder = default_gamma(schedule)
        self._schedule = schedule

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self, event: Input.Changed | Select.Changed) -> None:
        if self._filling or not self.preset_name:
            return
        if event.control.id == "f-schedule-name" and event.value != self._schedule:
            self._schedule_changed(str(event.value))
        self.revalidate()
        self._note_edits()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    @on(DataTable.RowHighlighted, "#presets")
    def _preset_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name and name != self.preset_name:
            self.fill(name)
            self.refresh_bindings()

    @on(DataTable.RowSelected, "#presets")
    def _preset_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value != self.preset_name:
            self.fill(str(event.row_key.value))
        self.action_start()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    # ------------------------------------------------------------------ devices, starting

    @work(thread=True, exclusive=True, exit_on_error=False, group="devices")
    def _probe_devices(self) -> None:
        """Find the machine's devices after the first frame (it may take a child process)."""
        worker = get_current_worker()
        devices = probe_devices(cancelled=lambda: worker.is_cancelled)
        if devices is not None and not worker.is_cancelled:
            self.app.call_from_thread(self._devices_found, devices)

    def _devices_found(self, devices: Devices) -> None:
        if self.is_attached:
            self.devices = devices
            self.revalidate()

    def show_start_error(self, error: str) -> None:
        """Why the last run did not start, on one line under Start ('' hides it)."""
        line = self.query_one("#start-failed", Label)
        text = error.strip().removeprefix("nntui: ").removeprefix("error: ")
        line.update(f"✗ the run did not start: {text}" if text else "")
        line.tooltip = text or None  # the whole of a line cut at the screen's edge
        line.display = bool(text)
        if text:
            self.notify(text, title="the run did not start", severity="error", timeout=15)

    def action_start(self) -> None:
        self.revalidate()
        if self.config is None:
            self.notify(str(self.query_one("#form-error", Label).render()), severity="error", title="cannot start")
            return
        self.show_start_error("")
        self.on_start(self.config)

    def action_focus_presets(self) -> None:
        """The preset list; from there, out of a fork's form (back to the monitor)."""
        presets = self.query_one("#presets")
        if presets.has_focus and self.on_back is not None:
            self.on_back()
        else:
            presets.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Undo edits only for a preset with edits (dimmed in the footer otherwise)."""
        if action == "reset_preset":
            return True if self.preset_name in self.edits else None
        return True

    def action_reset_preset(self) -> None:
        """Put the current preset's own values back (its edits dropped)."""
        if self.preset_name in self.edits:
            self._set_values(form_texts(self.presets[self.preset_name][1]))
            self.revalidate()
            self._note_edits()
            self.notify(f"{self.preset_name}: its own values again", title="edits undone")


def model_summary(model: Any) -> str:
    """`mlp [128, 64] relu`; only what the kind uses (resnet18 has neither widths nor a choice of activation)."""
    if model.kind in ("mlp", "cnn"):
        return f"{model.kind} {model.hidden} {model.activation}"
    if model.kind == "vgg":
        return f"vgg {model.activation}"
    if model.kind == "custom":
        return f"custom {model.factory}"
    return model.kind
