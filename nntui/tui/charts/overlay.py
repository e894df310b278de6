"""Several runs' curves overlaid (the runs screen): loss, accuracy or R², LR; one colour per run.

Skeleton: the signature the runs screen uses; the charts follow."""

from __future__ import annotations

from typing import Sequence

from textual.widget import Widget

from nntui.run_series import RunSeries

X_MODES = ("epoch", "step", "time")


class OverlayCharts(Widget):
    """The selected runs' curves in the same charts, with a legend; colours stay with their runs."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.runs: tuple[RunSeries, ...] = ()
        self.x_mode = X_MODES[0]

    def show_runs(self, runs: Sequence[RunSeries]) -> None:
        """Show these runs (in selection order); a run keeps its colour while it stays shown."""
        self.runs = tuple(runs)
        self.refresh()

    def action_cycle_x(self) -> None:
        """The x-axis: epoch, step, wall time, epoch..."""
        self.x_mode = X_MODES[(X_MODES.index(self.x_mode) + 1) % len(X_MODES)]
        self.refresh()
