"""The monitor's actions, in one table: the key bindings, the footer, the command palette and the
help screen are all made from it, so a key is described once and never disagrees with itself.
No textual widgets here, only `Binding`."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class MonitorAction:
    """One thing the user can do in the monitor.

    `key` is a Textual key name (None: reachable from the palette and the quit dialog only),
    `label` the footer's word for it, `title` and `help` its palette entry and help line."""

    action: str
    key: str | None
    label: str
    title: str
    help: str
    key_display: str | None = None

    @property
    def shown_key(self) -> str:
        return self.key_display or self.key or ""


MONITOR_ACTIONS: tuple[MonitorAction, ...] = (
    MonitorAction("toggle_pause", "space", "Pause/Resume", "Pause / resume", "pause the run, or resume it"),
    MonitorAction("set_lr", "l", "LR", "Set learning rate",
                  "set the learning rate (enter applies, escape cancels)"),
    MonitorAction("checkpoint", "s", "Save", "Checkpoint now", "save a checkpoint now"),
    MonitorAction("new_run", "n", "New run", "New run from these settings",
                  "after the run: a new run from its settings (the setup screen)"),
    MonitorAction("continue_run", "e", "More epochs", "Continue for more epochs",
                  "after the run: continue it for more epochs (--resume)"),
    MonitorAction("fork_run", "f", "Fork", "Fork the run here",
                  "fork the run at the current step: the setup form with its settings (a checkpoint first)"),
    MonitorAction("toggle_smoothing", "m", "Smooth", "Smoothing on/off", "smoothing of the step curves on/off"),
    MonitorAction("cycle_x_axis", "x", "Axis", "Cycle the x axis", "x axis: step, epoch, wall time"),
    MonitorAction("fullscreen_chart", "enter", "Zoom", "Chart full screen",
                  "the focused chart full screen (w: whole run or last N)"),
    MonitorAction("quit_monitor", "q", "Quit", "Quit monitor",
                  "quit (while the run goes on, it asks first: see below)"),
    MonitorAction("detach", None, "Detach", "Detach",
                  "leave the monitor; the run goes on and `nntui attach` follows it again (q, d)"),
    MonitorAction("stop_run", None, "Stop run", "Stop the run",
                  "stop the run with a checkpoint, then quit (q, s)"),
    MonitorAction("save_screenshot", None, "Screenshot", "Screenshot",
                  "save an SVG screenshot of the monitor into the run directory"),
    MonitorAction("help", "question_mark", "Help", "Help: keys", "the keys and what they do (this help)",
                  key_display="?"),
)


def bindings(actions: tuple[MonitorAction, ...] = MONITOR_ACTIONS) -> list[Binding]:
    """The key bindings (and so the footer) of the actions that have a key."""
    return [Binding(item.key, item.action, item.label, key_display=item.key_display)
            for item in actions if item.key is not None]


def palette_entries(actions: tuple[MonitorAction, ...] = MONITOR_ACTIONS) -> list[tuple[str, str, str]]:
    """(action, title, help with its key) for the command palette."""
    return [(item.action, item.title, f"{item.help[:1].upper()}{item.help[1:]}"
             + (f" ({item.shown_key})" if item.key else "")) for item in actions]


def help_lines(actions: tuple[MonitorAction, ...] = MONITOR_ACTIONS,
               extra: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """One console-markup line per action with a key (`  [b]space[/b]   pause the run…`), then the
    `extra` (key, help) rows, aligned."""
    rows = [(item.shown_key, item.help) for item in actions if item.key is not None] + list(extra)
    width = max(len(key) for key, _ in rows) + 2
    return [f"  [b]{key}[/b]{' ' * (width - len(key))}{text}" for key, text in rows]


def action_of_key(actions: tuple[MonitorAction, ...] = MONITOR_ACTIONS) -> dict[str, str]:
    """Key name -> action, for the actions that have a key."""
    return {item.key: item.action for item in actions if item.key is not None}
