"""Modal dialogs of the monitor: the learning rate, quitting a live run, more epochs, help."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from nntui.engine.control import parse_lr
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


class AskDialog(ModalScreen["Any"]):
    """One field with a title, an error line and a hint: `enter` dismisses with `parse`'s value
    (or shows why it is not one), `escape` with None. Widget ids: `{kind}-dialog`, `-input`, `-error`."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, kind: str, question: str, value: str, hint: str, **field: Any) -> None:
        super().__init__()
        self.kind, self.question, self.value, self.hint, self.field = kind, question, value, hint, field

    def compose(self) -> ComposeResult:
        with Vertical(id=f"{self.kind}-dialog", classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            yield Input(self.value, id=f"{self.kind}-input", select_on_focus=True, **self.field)
            yield Label("", id=f"{self.kind}-error", classes="dialog-error")
            yield Label(self.hint, classes="dialog-hint")

    def on_mount(self) -> None:
        field = self.query_one(Input)
        field.focus()
        field.select_all()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = self.parse(event.value.strip())
        except ValueError as error:  # CommandError too: its text is one line for the user
            self.query_one(f"#{self.kind}-error", Label).update(str(error))
            return
        self.dismiss(value)

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)


class LearningRateDialog(AskDialog):
    """Asks for a new learning rate; dismisses with it, or with None when cancelled."""

    def __init__(self, current: float | None) -> None:
        super().__init__("lr", f"Learning rate (now {lr_text(current) or 'unknown'})", lr_text(current),
                         "enter applies · escape cancels", placeholder="e.g. 3e-4")

    def parse(self, text: str) -> float:
        return parse_lr(text)


class EpochsDialog(AskDialog):
    """Continuing a run: asks for the epochs to train up to (more than it has trained);
    dismisses with that number, or None when cancelled."""

    def __init__(self, trained: int, suggested: int) -> None:
        super().__init__("epochs", f"Continue the run: train up to epoch (trained {trained})", str(suggested),
                         "enter continues · escape cancels", type="integer")
        self.trained = trained

    def parse(self, text: str) -> int:
        epochs = int(text) if text.strip().lstrip("-").isdigit() else 0
        if epochs <= self.trained:
            raise ValueError(f"a whole number above {self.trained}")
        return epochs


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
