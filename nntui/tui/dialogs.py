"""Modal dialogs of the monitor: the learning rate, quitting a live run, more epochs, help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from nntui.engine.control import CommandError, parse_lr
from nntui.tui.actions import help_lines

HELP_TEXT = "\n".join([
    "[b]Keys in the monitor[/b] (escape, q or ? closes this)",
    *help_lines(extra=(("ctrl+p", "command palette (every action, and Screenshot)"),)),
    "",
    "While the run goes on, [b]q[/b] asks: [b]s[/b] stops it (after a checkpoint),",
    "[b]d[/b] leaves it running (`nntui attach` follows it again), [b]escape[/b]",
    "cancels; enter takes \"leave it running\". Closing the terminal detaches.",
    "Keys pressed while the run is starting are applied once it is live.",
    "",
    "A diverged run (non-finite loss) is rolled back to its last good",
    "checkpoint and paused: lower the LR with [b]l[/b], then resume with [b]space[/b].",
])


def lr_text(lr: float | None) -> str:
    """A learning rate as the user would type it: `0.001`, `3e-05`."""
    return "" if lr is None else f"{lr:g}"


class LearningRateDialog(ModalScreen[float | None]):
    """Asks for a new learning rate; dismisses with it, or with None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: float | None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="lr-dialog", classes="dialog"):
            yield Label(f"Learning rate (now {lr_text(self.current) or 'unknown'})", classes="dialog-title")
            yield Input(lr_text(self.current), placeholder="e.g. 3e-4", id="lr-input", select_on_focus=True)
            yield Label("", id="lr-error", classes="dialog-error")
            yield Label("enter applies · escape cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        field = self.query_one("#lr-input", Input)
        field.focus()
        field.select_all()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            lr = parse_lr(event.value.strip())
        except CommandError as error:
            self.query_one("#lr-error", Label).update(str(error))
            return
        self.dismiss(lr)

    def action_cancel(self) -> None:
        self.dismiss(None)


class EpochsDialog(ModalScreen["int | None"]):
    """Continuing a run: asks for the epochs to train up to (more than it has trained);
    dismisses with that number, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, trained: int, suggested: int) -> None:
        super().__init__()
        self.trained = trained
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical(id="epochs-dialog", classes="dialog"):
            yield Label(f"Continue the run: train up to epoch (trained {self.trained})", classes="dialog-title")
            yield Input(str(self.suggested), id="epochs-input", type="integer", select_on_focus=True)
            yield Label("", id="epochs-error", classes="dialog-error")
            yield Label("enter continues · escape cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        field = self.query_one("#epochs-input", Input)
        field.focus()
        field.select_all()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            epochs = int(event.value.strip())
        except ValueError:
            epochs = 0
        if epochs <= self.trained:
            self.query_one("#epochs-error", Label).update(f"a whole number above {self.trained}")
            return
        self.dismiss(epochs)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitDialog(ModalScreen["str | None"]):
    """Quitting while the run goes on: dismisses with "stop", "detach", or None (cancelled).

    `s` stops the run, `d` leaves it running, `escape` cancels; `enter` presses the highlighted
    button, which starts on "leave it running" (never the destructive choice); left, right and
    tab move the highlight."""

    BINDINGS = [
        Binding("s", "answer('stop')", "Stop the run"),
        Binding("d", "answer('detach')", "Leave it running"),
        Binding("escape", "answer(None)", "Cancel"),
        Binding("left,shift+tab", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]
    AUTO_FOCUS = "#detach"

    def __init__(self, run_name: str) -> None:
        super().__init__()
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog", classes="dialog"):
            yield Label(f"Run {self.run_name} is going on.", classes="dialog-title")
            yield Label("Stop it (with a checkpoint), or leave it running and detach?")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop the run (s)", id="stop", variant="error", compact=True)
                yield Button("Leave it running (d)", id="detach", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
            yield Label("`nntui attach` follows a run left running", classes="dialog-hint")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)


class HelpScreen(ModalScreen[None]):
    """The keys, and what to do about a diverged run."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Static(HELP_TEXT, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
