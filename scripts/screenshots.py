"""Screenshots (SVG) of the app from a REAL run, into screenshots/.

    python scripts/screenshots.py [--out screenshots]

setup.svg (80x24), monitor-running.svg and monitor-paused.svg (120x40, the paused one after an
LR change to 3e-4), monitor-paused-200x50.svg, chart-fullscreen.svg (enter on the loss chart, 120x40),
monitor-paused-80x24.svg, lr-dialog.svg and quit-dialog.svg (q on a live run), runs-screen.svg
(the test fixtures' runs, two selected). Takes about a minute:
digits-mlp trains in a child process, steered with the real keys.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from nntui.config import load_config
from nntui.tui.app import create_app

ROOT = Path(__file__).resolve().parents[1]


async def wait_until(pilot, predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def save(app, out: Path, name: str) -> None:
    path = out / name
    path.write_text(app.export_screenshot(title="nntui"), encoding="utf-8")
    print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


async def setup_screen(out: Path, runs: Path) -> None:
    app = create_app(mode="setup", runs_dir=runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        save(app, out, "setup.svg")


async def runs_screen(out: Path) -> None:
    """The runs screen over the test fixtures' recorded runs, two of them selected (120x40)."""
    app = create_app(mode="runs", runs_dir=ROOT / "tests" / "fixtures" / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        await pilot.press("space", "down", "space")  # space selects and moves on
        await pilot.pause(1.0)
        save(app, out, "runs-screen.svg")


async def monitor_screens(out: Path, runs: Path) -> None:
    config = load_config("digits-mlp", ["data.batch_size=4", "train.epochs=100", "early_stopping.patience=500",
                                        "schedule.name=\"constant\""])
    app = create_app(mode="run", runs_dir=runs, config=config, run_name="screenshots")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.state.epoch >= 4, 120, "four epochs")
        await pilot.pause(0.3)
        save(app, out, "monitor-running.svg")
        await pilot.press("l")
        await pilot.pause(0.3)
        await pilot.press(*"3e-4")
        await pilot.pause(0.1)
        save(app, out, "lr-dialog.svg")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.state.lr == 3e-4, 30, "the lr change")
        epoch = screen.state.epoch
        await wait_until(pilot, lambda: screen.state.epoch >= epoch + 2, 60, "two more epochs")
        await pilot.press("space")
        await wait_until(pilot, lambda: screen.state.status == "paused", 30, "pause")
        await pilot.pause(0.5)
        save(app, out, "monitor-paused.svg")
        await pilot.press("enter")
        await pilot.pause(0.5)
        save(app, out, "chart-fullscreen.svg")
        await pilot.press("escape")
        await pilot.resize_terminal(200, 50)
        await pilot.pause(1.0)
        save(app, out, "monitor-paused-200x50.svg")
        await pilot.resize_terminal(80, 24)
        await pilot.pause(1.0)
        save(app, out, "monitor-paused-80x24.svg")
        await pilot.press("q")
        await pilot.pause(0.3)
        save(app, out, "quit-dialog.svg")
        await pilot.press("s")  # stop the run (with a checkpoint); enter would leave it running
        await wait_until(pilot, lambda: not screen.child.running, 60, "the run to stop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nntui-shots-") as tmp:
        asyncio.run(setup_screen(args.out, Path(tmp)))
        asyncio.run(runs_screen(args.out))
        asyncio.run(monitor_screens(args.out, Path(tmp)))


if __name__ == "__main__":
    main()
