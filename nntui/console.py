"""Console sinks of the event stream for headless runs: a Rich progress display on a terminal,
plain lines (no control codes) in a log file or with NO_COLOR."""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Callable

from nntui import metrics
from nntui.engine.events import ControlApplied, EpochEnded, Event, RunEnded, RunStarted, StepLogged


def fmt(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def epoch_line(event: EpochEnded) -> str:
    parts = [f"epoch {event.epoch}", f"step {event.step}", f"train_loss {fmt(event.train_loss)}",
             f"val_loss {fmt(event.val_loss)}"]
    for key in metrics.task_keys():
        value = getattr(event, key)
        if value is not None:
            parts.append(f"{key} {fmt(value)}")
    parts.append(f"lr {fmt(event.lr, '.3g')}")
    if event.paused_s:
        parts.append(f"paused {event.paused_s:.1f}s")
    if event.early_stop is not None:
        es = event.early_stop
        parts.append(f"early_stop {es.wait}/{es.patience} (best {fmt(es.best)} @ epoch {es.best_epoch})")
    return "  ".join(parts)


def end_line(event: RunEnded) -> str:
    parts = [f"end {event.status}", f"epoch {event.epoch}", f"step {event.step}"]
    for key in ("test_loss", "test_acc", "test_mae", "test_r2"):
        value = getattr(event, key)
        if value is not None:
            parts.append(f"{key} {fmt(value)}")
    if event.best is not None:
        parts.append(f"best {fmt(event.best)} @ epoch {event.best_epoch}")
    parts.append(f"wall {event.wall_s:.1f}s" + (f" (and {event.paused_s:.1f}s paused)" if event.paused_s else ""))
    if event.error:
        parts.append(f"error: {event.error}")
    return "  ".join(parts)


class EtaClock:
    """Estimates the time left from the steps done since this process started, pauses left out."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.total_steps = 0
        self.clock = clock
        self._first: tuple[float, int] | None = None
        self._paused_s = 0.0  # since the first step
        self._paused_at: float | None = None

    def start(self, event: RunStarted) -> None:
        self.total_steps = event.epochs * event.steps_per_epoch

    def control(self, event: ControlApplied) -> None:
        """A pause stops the clock (a divergence's too); a resume starts it again."""
        if event.action == "pause" and self._paused_at is None:
            self._paused_at = self.clock()
        elif event.action == "resume" and self._paused_at is not None:
            if self._first is not None:
                self._paused_s += self.clock() - max(self._paused_at, self._first[0])
            self._paused_at = None

    def eta(self, step: int) -> float | None:
        now = self.clock()
        if self._first is None:
            self._first = (now, step)
            return None
        t0, s0 = self._first
        if step <= s0:
            return None
        return (now - t0 - self._paused_s) / (step - s0) * max(self.total_steps - step, 0)


class PlainConsole:
    """Plain lines: start, each epoch, control events, the end, and a step line at most every `every_s`."""

    def __init__(self, stream: IO[str] | None = None, every_s: float = 5.0, run_dir: str = "") -> None:
        self.stream = stream or sys.stdout
        self.every_s, self.run_dir = every_s, run_dir
        self.clock = EtaClock()
        self._last_step_line = time.monotonic()

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.clock.start(event)
            resumed = f", resumed from step {event.resumed_from}" if event.resumed_from is not None else ""
            if event.forked_from is not None:
                resumed = f", forked from {event.forked_from.run} at step {event.forked_from.step}"
            sizes = f"{split_sizes(event)}, " if event.sizes_known else ""
            self._print(f"start {event.preset} on {event.device}: {event.params} parameters, {sizes}"
                        f"{event.epochs} epochs x {event.steps_per_epoch} steps{resumed}; run dir {self.run_dir}")
        elif isinstance(event, StepLogged):
            eta = self.clock.eta(event.step)
            if time.monotonic() - self._last_step_line >= self.every_s:
                self._last_step_line = time.monotonic()
                self._print(f"step {event.step}/{self.clock.total_steps}  epoch {event.epoch}  "
                            f"loss {fmt(event.loss)}  lr {fmt(event.lr, '.3g')}  "
                            f"{event.samples_per_s:.0f} samples/s  eta {format_eta(eta)}")
        elif isinstance(event, EpochEnded):
            self._print(epoch_line(event))
        elif isinstance(event, ControlApplied):
            self.clock.control(event)
            self._print(f"control {event.action} ({event.source}): {event.message}")
        elif isinstance(event, RunEnded):
            self._print(end_line(event))


def split_sizes(event: RunStarted) -> str:
    """`1078/359/360 train/val/test`."""
    return f"{event.train_size}/{event.val_size}/{event.test_size} train/val/test"


class RichConsole:
    """A Rich progress bar with loss, accuracy, LR and ETA; epoch lines printed above it."""

    def __init__(self, run_dir: str = "") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console()
        self.run_dir = run_dir
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=self.console,
            refresh_per_second=4, transient=False)
        self.task: Any = None
        self._acc = ""

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            sizes = f", {split_sizes(event)}" if event.sizes_known else ""
            self.console.print(f"[bold]{event.preset}[/] on {event.device}: {event.params:,} parameters{sizes} "
                               f"-> {self.run_dir}")
            total = event.epochs * event.steps_per_epoch
            self.task = self.progress.add_task("training", total=total, completed=event.resumed_from or 0,
                                               stats="")
            self.progress.start()
        elif isinstance(event, StepLogged) and self.task is not None:
            stats = f"loss {fmt(event.loss)} {self._acc} lr {fmt(event.lr, '.3g')}"
            self.progress.update(self.task, completed=event.step, stats=stats,
                                 description=f"epoch {event.epoch}")
        elif isinstance(event, EpochEnded):
            acc = event.val_acc if event.val_acc is not None else event.val_r2
            self._acc = f"val {'acc' if event.val_acc is not None else 'r2'} {fmt(acc)}" if acc is not None else ""
            self.progress.console.print(epoch_line(event))
        elif isinstance(event, ControlApplied):
            self.progress.console.print(f"[yellow]control {event.action}[/] ({event.source}): {event.message}")
        elif isinstance(event, RunEnded):
            self.progress.stop()
            style = "green" if event.status in ("completed", "early_stopped") else "red"
            self.console.print(f"[{style}]{end_line(event)}[/]")


def make_console(run_dir: str = "") -> Any:
    """Rich on an interactive terminal without NO_COLOR; plain lines otherwise."""
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb":
        return RichConsole(run_dir)
    return PlainConsole(run_dir=run_dir)
