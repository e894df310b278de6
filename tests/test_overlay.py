"""The overlay charts of the runs screen: runs' curves in the same charts, one colour per run, a
legend, forks drawn from their parent's curve (nntui.tui.charts.overlay and overlay_specs)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from nntui.run_series import RunSeries
from nntui.tui.charts import overlay_specs
from nntui.tui.charts.overlay import OverlayChart, OverlayCharts, OverlayLegend
from nntui.tui.charts.overlay_specs import (
    assign_colours,
    build_overlay_spec,
    kept_epochs,
    legend_rows,
    run_points,
)

CHARTS_DIR = Path(overlay_specs.__file__).parent


def epoch(number: int, step: int, val_loss: float, time: float, **more: float) -> dict:
    return {"event": "epoch", "epoch": number, "step": step, "train_loss": val_loss * 0.9, "val_loss": val_loss,
            "lr": 0.01, "val_acc": 0.5 + number / 100, "time": time, **more}


def series(name: str, epochs: list[dict], forked_from: tuple[str, int] | None = None, start_time: float = 100.0,
           task: str = "classification") -> RunSeries:
    return RunSeries(name, Path("/runs") / name, task, "completed", epochs, forked_from, start_time)


PARENT = series("parent", [epoch(1, 10, 1.0, 110.0), epoch(2, 20, 0.5, 120.0), epoch(3, 30, 0.25, 130.0)])
FORK = series("fork", [epoch(3, 30, 0.4, 505.0), epoch(4, 40, 0.3, 510.0)], ("parent", 20), start_time=500.0)


# ------------------------------------------------------------------------------ points of a fork


@pytest.mark.parametrize(("mode", "first_x", "xs"), [("epoch", 2.0, [3.0, 4.0]), ("step", 20.0, [30.0, 40.0]),
                                                     ("time", 20.0, [25.0, 30.0])])
def test_a_fork_starts_at_its_parents_point_at_the_fork_step(mode: str, first_x: float, xs: list[float]) -> None:
    shown = {"parent": PARENT, "fork": FORK}

    fork_xs, fork_ys = run_points(FORK, "val_loss", mode, shown)

    assert (fork_xs[0], fork_ys[0]) == (first_x, 0.5)  # the parent's epoch 2: step 20, 20 s in, val loss 0.5
    assert fork_xs[1:] == xs and fork_ys[1:] == [0.4, 0.3]  # wall time goes on from the parent's 20 s


def test_a_fork_in_the_middle_of_an_epoch_starts_between_the_parents_points() -> None:
    fork = series("fork", [epoch(3, 30, 0.4, 505.0)], ("parent", 25), start_time=500.0)

    xs, ys = run_points(fork, "val_loss", "epoch", {"parent": PARENT, "fork": fork})

    assert (xs[0], ys[0]) == (2.5, 0.375)


def test_a_fork_whose_parent_is_not_shown_starts_at_its_own_first_epoch() -> None:
    xs, ys = run_points(FORK, "val_loss", "time", {"fork": FORK})

    assert xs == [5.0, 10.0] and ys == [0.4, 0.3]


def test_the_fork_line_in_the_spec_begins_on_the_parents_curve() -> None:
    spec, _ = build_overlay_spec(overlay_specs.VAL_LOSS, [PARENT, FORK], {"parent": 1, "fork": 2}, "step")

    parent_line, fork_line = spec.lines
    assert (parent_line.style, fork_line.style) == ("run-1", "run-2")
    assert (fork_line.xs[0], fork_line.ys[0]) in zip(parent_line.xs, parent_line.ys)


def test_epochs_written_again_after_a_resume_replace_the_first_ones() -> None:
    epochs = [epoch(1, 10, 1.0, 1.0), epoch(2, 20, 0.9, 2.0), epoch(2, 20, 0.8, 3.0), epoch(3, 30, 0.7, 4.0)]

    assert [e["val_loss"] for e in kept_epochs(epochs)] == [1.0, 0.8, 0.7]


def test_a_missing_metric_is_a_gap() -> None:
    run = series("regression", [epoch(1, 10, 1.0, 110.0)])

    _, ys = run_points(run, "val_r2", "epoch", {})

    assert math.isnan(ys[0])


# ------------------------------------------------------------------------------ colours and legend


def test_a_run_keeps_its_colour_and_a_new_one_takes_a_free_one() -> None:
    first = assign_colours({}, ["a", "b", "c"])
    second = assign_colours(first, ["c", "d", "a"])

    assert first == {"a": 1, "b": 2, "c": 3}
    assert second == {"c": 3, "a": 1, "d": 2}  # b's colour, free again


def test_more_runs_than_colours_share_the_least_used_ones() -> None:
    slots = assign_colours({}, [f"run{index}" for index in range(12)], size=10)

    assert [slots[f"run{index}"] for index in range(12)] == [*range(1, 11), 1, 2]


def test_the_legend_fills_rows_and_cuts_an_entry_wider_than_a_row() -> None:
    rows = legend_rows([("alpha", 1), ("beta", 2), ("a" * 50, 3)], 30)

    texts = ["".join(text for text, _ in row) for row in rows]
    assert texts[0] == "━━ alpha   ━━ beta"
    assert len(texts[1]) == 30 and texts[1].endswith("…")
    assert rows[0][0] == ("━━ ", "run-1") and rows[0][3] == ("━━ ", "run-2")


# ------------------------------------------------------------------------------ the widget


class OverlayApp(App):
    CSS_PATH = [CHARTS_DIR / "charts.tcss", CHARTS_DIR / "overlay.tcss"]

    def compose(self) -> ComposeResult:
        yield OverlayCharts()


def eight_runs() -> list[RunSeries]:
    return [series(f"run-{index}", [epoch(number, 10 * number, 1.0 / (number + index), 100.0 + number)
                                    for number in range(1, 6)]) for index in range(8)]


async def test_eight_runs_have_eight_legend_entries_in_eight_colours() -> None:
    app = OverlayApp()
    async with app.run_test(size=(140, 40)) as pilot:
        overlay = app.query_one(OverlayCharts)
        overlay.show_runs(eight_runs())
        await pilot.pause()

        legend = app.query_one(OverlayLegend)
        colours = {name: style.color for name, style in legend.entry_styles().items()}
        assert list(colours) == [f"run-{index}" for index in range(8)]
        assert None not in colours.values() and len(set(colours.values())) == 8
        text = "".join(segment.text for y in range(legend.size.height) for segment in legend.render_line(y))
        assert all(f"━━ run-{index}" in text for index in range(8))
        val_loss = overlay.chart("val-loss")
        styles = val_loss._styles()
        assert len({styles[line.style].color for line in val_loss.spec.lines}) == 8  # the lines' colours


async def test_the_x_key_cycles_the_axis_epoch_step_time() -> None:
    app = OverlayApp()
    async with app.run_test(size=(120, 40)) as pilot:
        overlay = app.query_one(OverlayCharts)
        overlay.show_runs(eight_runs()[:2])
        overlay.chart("val-loss").focus()
        await pilot.pause()
        titles, modes = [overlay.chart("val-loss").border_title], [overlay.chart("val-loss").spec.x_mode]
        for _ in range(3):
            await pilot.press("x")
            await pilot.pause()
            titles.append(overlay.chart("val-loss").border_title)
            modes.append(overlay.chart("val-loss").spec.x_mode)

        assert [title.rsplit(" · ", 1)[1] for title in titles] == ["epoch", "step", "time", "epoch"]
        assert modes == ["epoch", "step", "time", "epoch"]


async def test_charts_are_drawn_again_only_when_a_run_changed() -> None:
    app = OverlayApp()
    async with app.run_test(size=(120, 40)) as pilot:
        overlay = app.query_one(OverlayCharts)
        runs = eight_runs()[:3]
        overlay.show_runs(runs)
        await pilot.pause()
        chart = overlay.chart("val-loss")
        drawn = chart.renders

        overlay.show_runs([series(run.name, list(run.epochs)) for run in runs])  # reloaded, unchanged
        await pilot.pause()
        assert chart.renders == drawn

        grown = [*runs[:2], series(runs[2].name, [*runs[2].epochs, epoch(6, 60, 0.1, 106.0)])]
        overlay.show_runs(grown)
        await pilot.pause()
        assert chart.renders == drawn + 1


async def test_the_charts_shown_follow_the_tasks_of_the_runs() -> None:
    app = OverlayApp()
    async with app.run_test(size=(120, 40)) as pilot:
        overlay = app.query_one(OverlayCharts)
        overlay.show_runs([PARENT])
        await pilot.pause()
        shown = {chart.chart_id for chart in app.query(OverlayChart) if chart.display}
        assert shown == {"val-loss", "train-loss", "accuracy", "lr"}

        overlay.show_runs([PARENT, series("reg", [epoch(1, 10, 3.0, 110.0, val_r2=0.4)], task="regression")])
        await pilot.pause()
        shown = {chart.chart_id for chart in app.query(OverlayChart) if chart.display}
        assert shown == {"val-loss", "train-loss", "accuracy", "r2", "lr"}
        assert len(overlay.chart("r2").spec.lines) == 1 and overlay.chart("r2").spec.lines[0].ys == [0.4]


async def test_no_runs_says_how_to_select_some() -> None:
    app = OverlayApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        legend = app.query_one(OverlayLegend)
        assert "no runs selected" in "".join(segment.text for segment in legend.render_line(0))
