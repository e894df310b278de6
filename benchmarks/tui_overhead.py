"""Does watching a run slow it down? digits-mlp throughput with the monitor attached vs headless alone.

    python benchmarks/tui_overhead.py [--rounds 3] [--epochs 100]

Each round trains digits-mlp twice in a child process (`nntui run --headless`), alternating
which of the two goes first: once alone, once with the monitor (the Textual app, headless via
`run_test`, attached to the run in this process, polling and redrawing as it would on a
terminal). Throughput is samples per second over the training steps, taken from the run's own
step records (data loading and start-up excluded). A short watched run first warms this process
up (Textual's lazy imports and CSS parsing happen once per process) and is not counted. Prints
the ratio of the medians; the target is >= 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nntui.runs import read_records
from nntui.tui.app import create_app

TARGET = 0.95


def start_run(runs: Path, name: str, epochs: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "nntui", "run", "digits-mlp", "--headless", "--runs-dir", str(runs),
            "--name", name, "--epochs", str(epochs), "--set", "early_stopping.enabled=false",
            "--set", 'schedule.name="constant"']
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def throughput(run_dir: Path) -> float:
    """Samples per second between the first and the last step record."""
    records = read_records(run_dir)
    batch = next(r["batch_size"] for r in records if r.get("event") == "start")
    steps = [r for r in records if r.get("event") == "step"]
    if len(steps) < 2:
        raise RuntimeError(f"{run_dir}: too few step records")
    first, last = steps[0], steps[-1]
    return (last["step"] - first["step"]) * batch / (last["time"] - first["time"])


def alone(runs: Path, name: str, epochs: int) -> float:
    if start_run(runs, name, epochs).wait() != 0:
        raise RuntimeError(f"{name}: the run failed")
    return throughput(runs / name)


async def watched(runs: Path, name: str, epochs: int) -> float:
    child = start_run(runs, name, epochs)
    run_dir = runs / name
    while not (run_dir / "control" / "pid").exists():  # attach as soon as the run is live
        if child.poll() is not None:
            raise RuntimeError(f"{name}: the run failed before starting")
        await asyncio.sleep(0.02)
    app = create_app(mode="attach", runs_dir=runs, run_dir=run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        while child.poll() is None:
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        steps = app.screen.state.series["train_loss"].total
    if child.returncode != 0 or not steps:
        raise RuntimeError(f"{name}: exit {child.returncode}, the monitor saw {steps} step records")
    return throughput(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"alone": [], "watched": []}
    with tempfile.TemporaryDirectory(prefix="nntui-bench-") as tmp:
        runs = Path(tmp)
        asyncio.run(watched(runs, "warm-up", 2))
        for index in range(args.rounds):
            order = ("alone", "watched") if index % 2 == 0 else ("watched", "alone")
            for kind in order:
                name = f"{kind}-{index}"
                started = time.monotonic()
                value = alone(runs, name, args.epochs) if kind == "alone" else asyncio.run(watched(runs, name, args.epochs))
                results[kind].append(value)
                print(f"round {index + 1} {kind:8s} {value:9.0f} samples/s  ({time.monotonic() - started:.1f} s)")
    median_alone = statistics.median(results["alone"])
    median_watched = statistics.median(results["watched"])
    ratio = median_watched / median_alone
    print(f"median alone {median_alone:.0f}, watched {median_watched:.0f} samples/s: "
          f"ratio {ratio:.3f} ({'meets' if ratio >= TARGET else 'below'} the {TARGET} target)")


if __name__ == "__main__":
    main()
