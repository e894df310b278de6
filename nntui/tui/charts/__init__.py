"""The monitor's line charts: scales, smoothing and layout in pure modules (scales, smoothing,
canvas, specs), the widgets in chart and pane. Styles: charts.tcss. The runs screen's overlay of
several runs: overlay_specs (pure) and overlay (the widget), styles in overlay.tcss."""

from nntui.tui.charts.pane import ChartScreen, ChartsPane

__all__ = ["ChartScreen", "ChartsPane"]
