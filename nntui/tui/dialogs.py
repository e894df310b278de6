"""Modal dialogs of the monitor: the learning rate, the quit confirmation, help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from nntui.engine.control import CommandError, parse_lr

HELP_TEXT = """\
[b]Keys in the monitor[/b]

  [b]space[/b]   pause / resume the run
  [b]l[/b]       set the learning rate (enter applies, escape cancels)
  [b]s[/b]       save a checkpoint now
  [b]q[/b]       quit; while a run started here is going on it asks first,
          and the run saves a checkpoint before it stops.
          On a run attached with `nntui attach`, q only detaches.
  [b]?[/b]       this help
  [b]ctrl+p[/b]  command palette (every action above is there too)

A diverged run (non-finite loss) is rolled back to its last good
checkpoint and paused: lower the learning rate with [b]l[/b], then resume
with [b]space[/b].

Press escape, q or ? to close."""


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


class ConfirmQuit(ModalScreen[bool]):
    """`y`/`enter` confirms, `n`/`escape` cancels."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", priority=True),
        Binding("n,escape", "answer(False)", "No", priority=True),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Label(self.question, classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error", compact=True)
                yield Button("No (n)", id="no", variant="primary", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class HelpScreen(ModalScreen[None]):
    """The keys, and what to do about a diverged run."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Static(HELP_TEXT, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
