"""The runs screen at scale (issue 14, point 7): 200 runs, one of 1M step records; 8 runs overlaid while they train.

    python benchmarks/runs_scale.py [--steps 1000000] [--epochs 20] [--rounds 1] [--skip-training] [--keep DIR]

Run it from the repo root: the children run `python -m nntui`, which imports the nntui of the
current directory. It prints figures only (no pass or fail: the machine it runs on decides them).

1. Generates, in a temporary runs dir, 200 runs: one of `--steps` step records (and as many
   grad-norm records; 1,000 epochs: ~475 MB for 1M), 150 small completed ones and 49 small
   live-looking ones (no end record; their pid file names this process, which is alive).
2. (a) The runs listing's data, in this process (imports done first): `list_runs` over the 200,
   then `SeriesCache.load` of each (the overlay's curves), then the same loads again (what a
   refresh of the screen costs when nothing was appended). Target: under 2 s.
   (b) If the runs screen exists (`nntui.tui.runs_screen`), `nntui runs` in a child process
   (`create_app(mode="runs")` under `run_test`) to its first frame with the table filled: wall
   time from the start of the process, imports included.
3. (c) 8 digits-mlp runs trained at once (`--headless`, a step record every 0.05 s, early
   stopping off), `--rounds` times each way: alone, then while an `OverlayCharts` in a headless
   app (`App.run_test`) loads and shows them every 0.5 s. Prints the runs' samples/s (the median
   of each run's step records, averaged over the 8) each way, their ratio, and the overlay's CPU
   time. The trainings run with `--threads` torch threads each (default 1: 8 runs share the cores).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from long_runs import measured, write_run

from nntui.records import read_records
from nntui.run_series import SeriesCache
from nntui.runs import list_runs

SMALL_RUNS, LIVE_RUNS = 150, 49
OVERLAID_RUNS = 8
RELOAD_S = 0.5  # how often the overlay loads the runs again (the runs screen's refresh is at least this slow)
CHARTS_DIR = Path(__file__).resolve().parents[1] / "nntui" / "tui" / "charts"

FIRST_FRAME = """
import asyncio, sys
from pathlib import Path
from textual.widgets import DataTable
from nntui.tui.app import create_app
from nntui.tui.runs_screen import RunsScreen

async def main(runs_dir):
    app = create_app(mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=(160, 48)) as pilot:
        while not isinstance(app.screen, RunsScreen) or app.screen.query_one(DataTable).row_count == 0:
            await pilot.pause(0.01)
        await pilot.pause()  # the compositor has drawn the frame
        print("frame", flush=True)

asyncio.run(main(Path(sys.argv[1])))
"""


def generate(runs: Path, steps: int) -> int:
    """The 200 runs; the size of the long one's file."""
    size = write_run(runs, "long", steps, max(1, steps // 1_000), 1.7e9)
    for index in range(SMALL_RUNS + LIVE_RUNS):
        run_dir = runs / f"small-{index:03d}"
        write_run(runs, run_dir.name, 500, 50, 1.7e9 + 1e6 + index * 1000)
        if index >= SMALL_RUNS:  # live-looking: its last session has no end, its process is alive
            metrics = run_dir / "metrics.jsonl"
            lines = metrics.read_bytes().splitlines(keepends=True)
            metrics.write_bytes(b"".join(lines[:-1]))
            (run_dir / "control").mkdir()
            (run_dir / "control" / "pid").write_text(str(os.getpid()))
    return size


def timed(work):
    """What `work()` returns, its wall seconds and its CPU seconds (on a busy machine the CPU time
    is closer to what the wall time would be on an idle one)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def listing_figures(runs: Path) -> None:
    """(a): list_runs, the first loads of every run's series, the loads again."""
    listed, listed_s, listed_cpu = timed(lambda: list_runs(runs))
    cache = SeriesCache()
    series, loaded_s, loaded_cpu = timed(lambda: [cache.load(info.path) for info in listed])
    _, again_s, _ = timed(lambda: [cache.load(info.path) for info in listed])
    running = sum(run.status == "running" for run in series)
    epochs = sum(len(run.epochs) for run in series)
    print(f"(a) runs listing data, {len(listed)} runs ({running} running, {epochs:,} epoch records): "
          f"list_runs {listed_s:.2f} s (CPU {listed_cpu:.2f} s) + SeriesCache.load of all {loaded_s:.2f} s "
          f"(CPU {loaded_cpu:.2f} s) = {listed_s + loaded_s:.2f} s (CPU {listed_cpu + loaded_cpu:.2f} s; "
          f"target under 2 s); loading all again (nothing appended) {again_s * 1000:.0f} ms")


def first_frame_figures(runs: Path, rounds: int) -> None:
    """(b): `nntui runs` to its first frame, in a child process, if the runs screen exists."""
    if importlib.util.find_spec("nntui.tui.runs_screen") is None:
        print("(b) runs screen first frame: not measured (no nntui.tui.runs_screen in this tree)")
        return
    figures = [measured([sys.executable, "-c", FIRST_FRAME, str(runs)], until="frame") for _ in range(rounds)]
    wall, cpu, peak = (statistics.median(figure[index] for figure in figures) for index in range(3))
    print(f"(b) runs screen first frame over {SMALL_RUNS + LIVE_RUNS + 1} runs: {wall:.2f} s wall "
          f"(CPU {cpu:.2f} s, peak RSS {peak:.0f} MB; imports included; target under 2 s)")


def start_trainings(runs: Path, epochs: int, threads: int) -> list[subprocess.Popen]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("NNTUI_RUNS_DIR", None)
    runs.mkdir(parents=True)
    argv = [sys.executable, "-m", "nntui", "run", "digits-mlp", "--headless", "--epochs", str(epochs),
            "--runs-dir", str(runs), "--set", "train.log_interval_s=0.05", "--set", "early_stopping.enabled=false"]
    return [subprocess.Popen([*argv, "--name", f"train-{index}"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for index in range(OVERLAID_RUNS)]


def finished(children: list[subprocess.Popen]) -> None:
    for child in children:
        _, errors = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"a training exited {child.returncode}: {errors.strip()[-300:]}")


def stopped(children: list[subprocess.Popen]) -> None:
    """The trainings still going stopped (after an error: none is left behind)."""
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


def samples_per_s(runs: Path) -> float:
    """The mean over the runs of each run's median samples/s (of its step records)."""
    medians = []
    for run_dir in sorted(runs.iterdir()):
        rates = [record["samples_per_s"] for record in read_records(run_dir) if record.get("event") == "step"]
        medians.append(statistics.median(rates))
    return statistics.fmean(medians)


async def overlay_while(children: list[subprocess.Popen], runs: Path) -> tuple[int, float, float]:
    """An OverlayCharts showing the runs, loaded again every RELOAD_S until the trainings end:
    how many loads, the CPU seconds this process spent and the wall seconds."""
    from textual.app import App, ComposeResult

    from nntui.tui.charts.overlay import OverlayCharts

    class OverlayApp(App[None]):
        CSS_PATH = [CHARTS_DIR / "charts.tcss", CHARTS_DIR / "overlay.tcss"]

        def compose(self) -> ComposeResult:
            yield OverlayCharts()

    cpu_started, wall_started = time.process_time(), time.perf_counter()
    loads = 0
    cache = SeriesCache()
    async with OverlayApp().run_test(size=(160, 48)) as pilot:
        overlay = pilot.app.query_one(OverlayCharts)
        while any(child.poll() is None for child in children):
            overlay.show_runs([cache.load(run_dir) for run_dir in sorted(runs.iterdir())])
            loads += 1
            await pilot.pause(RELOAD_S)
    return loads, time.process_time() - cpu_started, time.perf_counter() - wall_started


def training_figures(root: Path, epochs: int, rounds: int, threads: int) -> None:
    """(c): the trainings' samples/s alone and overlaid, side by side."""
    alone, overlaid, cpu, wall, loads = [], [], [], [], []
    for index in range(rounds):
        children = start_trainings(root / f"alone-{index}", epochs, threads)
        try:
            finished(children)
            alone.append(samples_per_s(root / f"alone-{index}"))
            children = start_trainings(root / f"overlaid-{index}", epochs, threads)
            count, cpu_s, wall_s = asyncio.run(overlay_while(children, root / f"overlaid-{index}"))
            finished(children)
        finally:
            stopped(children)
        overlaid.append(samples_per_s(root / f"overlaid-{index}"))
        cpu.append(cpu_s)
        wall.append(wall_s)
        loads.append(count)
    mean_alone, mean_overlaid = statistics.fmean(alone), statistics.fmean(overlaid)
    print(f"(c) {OVERLAID_RUNS} digits-mlp runs of {epochs} epochs at once, samples/s per run: "
          f"alone {mean_alone:,.0f} | overlaid {mean_overlaid:,.0f} | ratio {mean_overlaid / mean_alone:.3f} "
          f"(overlay: {sum(loads)} loads of the {OVERLAID_RUNS} runs, every {RELOAD_S} s, "
          f"{sum(cpu):.1f} s CPU in {sum(wall):.0f} s, {100 * sum(cpu) / sum(wall):.1f}% of a core); rounds (alone / overlaid): "
          + ", ".join(f"{a:,.0f} / {o:,.0f}" for a, o in zip(alone, overlaid)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="step records of the long run")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each overlaid training")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each training")
    parser.add_argument("--skip-training", action="store_true", help="only the listing figures (a) and (b)")
    parser.add_argument("--keep", type=Path, help="generate the runs here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nntui-scale-") as tmp:
        runs = args.keep or Path(tmp) / "runs"
        begun = time.perf_counter()
        size = generate(runs, args.steps)
        print(f"generated {SMALL_RUNS + LIVE_RUNS + 1} runs (one of {args.steps:,} step records, "
              f"{size / 1e6:.0f} MB; {LIVE_RUNS} live-looking) in {time.perf_counter() - begun:.1f} s")
        listing_figures(runs)
        first_frame_figures(runs, args.rounds)
        if not args.skip_training:
            training_figures(Path(tmp) / "trainings", args.epochs, args.rounds, args.threads)


if __name__ == "__main__":
    main()
