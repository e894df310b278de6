"""The charts pane in an app: layout at 80x24 and 200x50, redraws only of charts whose data
grew, the chart keys' actions, the full-screen chart."""

from pathlib import Path

from textual.app import App, ComposeResult

from nntui.engine.events import ControlApplied, EpochEnded, RunStarted, StepLogged
from nntui.tui.charts import ChartScreen, ChartsPane
from nntui.tui.charts.chart import LineChart, SparkRow
from nntui.tui.state import MonitorState

CHARTS_CSS = Path(__file__).resolve().parent.parent / "nntui" / "tui" / "charts" / "charts.tcss"
PER_EPOCH = 10


class PaneApp(App[None]):
    CSS_PATH = str(CHARTS_CSS)

    def compose(self) -> ComposeResult:
        yield ChartsPane()


def running_state(epochs: int = 5) -> MonitorState:
    state = MonitorState()
    state.apply(RunStarted("p", "cpu", 10, 100, 10, 10, None, epochs=20, steps_per_epoch=PER_EPOCH, time=0.0))
    for step in range(1, epochs * PER_EPOCH + 1):
        add_step(state, step)
        if step % PER_EPOCH == 0:
            state.apply(EpochEnded(step // PER_EPOCH, step, 1.0 / step, 1.5 / step, 1e-3, train_acc=0.5 + step / 200,
                                   val_acc=0.45 + step / 200, time=step * 0.2))
    state.apply(ControlApplied(25, "lr", 5e-4, "tui", time=5.0))
    return state


def add_step(state: MonitorState, step: int) -> None:
    state.apply(StepLogged(step, (step - 1) // PER_EPOCH + 1, 2.0 / step, 1e-3, 1.0 / step, 800.0 + step, time=step * 0.2))


def charts(app: App) -> dict[str, LineChart]:
    return {chart.chart_id: chart for chart in app.query(LineChart)}


async def test_at_80x24_loss_and_accuracy_get_6_rows_and_the_rest_one_row_each():
    app = PaneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one(ChartsPane).show(running_state())
        await pilot.pause()
        shown = charts(app)
        for chart_id in ("loss", "accuracy"):
            assert shown[chart_id].display and shown[chart_id].content_region.height >= 6, chart_id
            assert shown[chart_id].renders >= 1
        assert not any(shown[chart_id].display for chart_id in ("lr", "rate", "norm"))
        sparks = list(app.query(SparkRow))
        assert len(sparks) == 3 and all(spark.display and spark.size.height == 1 for spark in sparks)
        assert "learn rate" in sparks[0].render_line(0).text and "5.00e-04" in sparks[0].render_line(0).text


async def test_at_200x50_every_metric_gets_a_chart():
    app = PaneApp()
    async with app.run_test(size=(200, 50)) as pilot:
        app.query_one(ChartsPane).show(running_state())
        await pilot.pause()
        for chart_id, chart in charts(app).items():
            assert chart.display and chart.content_region.height >= 8 and chart.renders >= 1, chart_id
        assert not any(spark.display for spark in app.query(SparkRow))


async def test_only_charts_whose_data_grew_are_drawn_again():
    app = PaneApp()
    async with app.run_test(size=(200, 50)) as pilot:
        pane, state = app.query_one(ChartsPane), running_state()
        pane.redraw_interval_s = 0.0
        pane.show(state)
        await pilot.pause()
        before = {chart_id: chart.renders for chart_id, chart in charts(app).items()}
        pane.show(state)  # nothing new
        await pilot.pause()
        assert {chart_id: chart.renders for chart_id, chart in charts(app).items()} == before
        add_step(state, 51)  # a step: not an epoch
        pane.show(state)
        await pilot.pause()
        after = {chart_id: chart.renders for chart_id, chart in charts(app).items()}
        assert after["accuracy"] == before["accuracy"]  # epoch metrics only: unchanged
        assert all(after[chart_id] == before[chart_id] + 1 for chart_id in ("loss", "lr", "rate", "norm")), after


async def test_new_data_within_the_redraw_interval_is_drawn_when_it_is_over():
    app = PaneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        pane, state = app.query_one(ChartsPane), running_state()
        pane.redraw_interval_s = 2.0  # long enough that a loaded machine still shows again within it
        pane.show(state)
        await pilot.pause()
        loss = charts(app)["loss"]
        drawn, spec = loss.renders, loss.spec
        add_step(state, 51)
        pane.show(state)  # at once: held back
        await pilot.pause()
        assert loss.renders == drawn and loss.spec is spec
        for _ in range(80):  # no further show(): the pane's timer draws it
            await pilot.pause(0.1)
            if loss.renders > drawn:
                break
        assert loss.renders == drawn + 1 and loss.spec.x_high == 51


async def test_smoothing_and_x_axis_keys_redraw_and_say_what_they_did():
    app = PaneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        pane, state = app.query_one(ChartsPane), running_state()
        pane.show(state)
        await pilot.pause()
        loss = charts(app)["loss"]
        drawn = loss.renders
        assert pane.toggle_smoothing() == "smoothing 0.6 on"
        await pilot.pause()
        assert loss.renders == drawn + 1 and "EMA 0.6" in str(loss.border_title)
        assert pane.toggle_smoothing() == "smoothing off"
        assert [pane.cycle_x_axis() for _ in range(3)] == ["x axis: epoch", "x axis: time", "x axis: step"]
        assert pane.cycle_x_axis() == "x axis: epoch"
        await pilot.pause()
        assert loss.spec is not None and loss.spec.x_mode == "epoch" and loss.spec.x_high == 5


async def test_the_focused_chart_goes_full_screen_with_its_window_key():
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane, state = app.query_one(ChartsPane), running_state(epochs=30)
        pane.show(state)
        await pilot.pause()
        charts(app)["accuracy"].focus()
        await pilot.pause()
        app.push_screen(pane.fullscreen_screen(state))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChartScreen) and screen.chart.chart_id == "accuracy"
        assert screen.query_one(LineChart).spec is not None
        await pilot.press("w")
        assert screen.view.window is not None
        await pilot.press("w")
        assert screen.view.window is None
        await pilot.press("escape")
        assert app.screen is not screen and not isinstance(app.screen, ChartScreen)


async def test_the_window_key_shows_the_last_points_only():
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane, state = app.query_one(ChartsPane), running_state(epochs=30)
        pane.show(state)
        await pilot.pause()
        app.push_screen(pane.fullscreen_screen(state))  # nothing focused: the loss chart
        await pilot.pause()
        chart = app.screen.query_one(LineChart)
        assert chart.chart_id == "loss" and chart.spec.x_low == 1
        await pilot.press("w")
        await pilot.pause()
        assert chart.spec.x_low > 1 and chart.spec.x_high == 300


async def test_a_click_on_a_chart_shows_it_full_screen():
    app = PaneApp()
    async with app.run_test(size=(200, 50)) as pilot:
        pane = app.query_one(ChartsPane)
        pane.show(running_state())
        await pilot.pause()
        await pilot.click("#chart-lr")
        await pilot.pause()
        assert isinstance(app.screen, ChartScreen) and app.screen.chart.chart_id == "lr"
