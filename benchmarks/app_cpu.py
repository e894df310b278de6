"""How much CPU does the monitor itself take while it follows a run? At 80x24 and at 200x50.

    python benchmarks/app_cpu.py [--repeats 3] [--seconds 15] [--warm-up 5] [--sizes 80x24,200x50]

Starts one headless digits-mlp run (long: `--epochs 20000`, stopped at the end), then, for each
terminal size and repeat, runs `nntui attach RUN` in a real terminal (a detached tmux session on a
socket of its own, `tmux -L nntui-bench`), lets it warm up, and reads the app process's CPU time
(utime + stime from /proc/PID/stat) over the measuring window: the percent of one core. Between
the watched windows, a window with no app gives the run's steps/s alone, to compare with its
steps/s while watched (from its step records). Prints one row per size: the repeats, their median.
The run and the app are the `nntui` this script imports (both start in its checkout).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nntui
from nntui.runs import read_records

SOCKET = "nntui-bench"
CHECKOUT = Path(nntui.__file__).resolve().parents[1]  # `python -m nntui` there runs this nntui
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


def start_run(runs: Path, name: str, epochs: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "nntui", "run", "digits-mlp", "--headless", "--runs-dir", str(runs),
            "--name", name, "--epochs", str(epochs), "--set", "early_stopping.enabled=false",
            "--set", 'schedule.name="constant"']
    return subprocess.Popen(argv, cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (fields 14 and 15 of /proc/PID/stat), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces: skip past it
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def last_step(run_dir: Path) -> int:
    steps = [r["step"] for r in read_records(run_dir) if r.get("event") == "step"]
    return steps[-1] if steps else 0


def steps_per_s(run_dir: Path, seconds: float) -> float:
    """The run's steps per second over the next `seconds`."""
    before, started = last_step(run_dir), time.monotonic()
    time.sleep(seconds)
    return (last_step(run_dir) - before) / (time.monotonic() - started)


def app_pid(session: str) -> int:
    """The attach process in `session` (the pane runs it with `exec`, so it is the pane's pid)."""
    return int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])


def watch(run_dir: Path, size: tuple[int, int], warm_up: float, seconds: float) -> tuple[float, float]:
    """One watched window: (percent of one core the app used, the run's steps/s meanwhile)."""
    width, height = size
    session = f"bench-{width}x{height}"
    command = f"cd {CHECKOUT} && exec {sys.executable} -m nntui attach {run_dir}"
    tmux("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command)
    try:
        pid = app_pid(session)
        time.sleep(warm_up)
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        rate = steps_per_s(run_dir, seconds)
        percent = 100 * (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
    finally:
        subprocess.run(["tmux", "-L", SOCKET, "kill-session", "-t", session], capture_output=True, timeout=30)
    return percent, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warm-up", type=float, default=5.0)
    parser.add_argument("--sizes", default="80x24,200x50")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("nntui: app_cpu needs tmux")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # clean up the run and tmux
    sizes = [tuple(int(part) for part in text.split("x")) for text in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="nntui-bench-") as tmp:
        run_dir = Path(tmp) / "followed"
        run = start_run(run_dir.parent, run_dir.name, 20000)
        try:
            cpu, rates = measure(run, run_dir, sizes, args)
        finally:
            run.send_signal(signal.SIGTERM)
            run.wait(60)
            subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True, timeout=30)
    print()
    print(f"{'size':>8}  {'app CPU, % of one core (each repeat)':40}  median")
    for size, values in cpu.items():
        each = "  ".join(f"{value:5.1f}" for value in values)
        print(f"{size[0]:>4}x{size[1]:<3}  {each:40}  {statistics.median(values):5.1f}")
    print(f"run steps/s: alone {statistics.median(rates['alone']):.0f}, "
          f"watched {statistics.median(rates['watched']):.0f} (medians)")


def measure(run: subprocess.Popen[bytes], run_dir: Path, sizes: list[tuple[int, int]],
            args: argparse.Namespace) -> tuple[dict[tuple[int, int], list[float]], dict[str, list[float]]]:
    """The app's CPU per size and the run's steps/s alone and watched, over `args.repeats` rounds."""
    cpu: dict[tuple[int, int], list[float]] = {size: [] for size in sizes}
    rates: dict[str, list[float]] = {"alone": [], "watched": []}
    while not (run_dir / "control" / "pid").exists() or not last_step(run_dir):
        if run.poll() is not None:
            sys.exit("nntui: the benchmark's run failed to start")
        time.sleep(0.1)
    for repeat in range(args.repeats):
        rates["alone"].append(steps_per_s(run_dir, args.seconds))
        for size in sizes:
            percent, rate = watch(run_dir, size, args.warm_up, args.seconds)
            if run.poll() is not None:
                sys.exit("nntui: the benchmark's run ended before the benchmark did")
            cpu[size].append(percent)
            rates["watched"].append(rate)
            print(f"repeat {repeat + 1} {size[0]}x{size[1]}: app {percent:5.1f}% of a core, "
                  f"run {rate:.0f} steps/s", flush=True)
    return cpu, rates

if __name__ == "__main__":
    main()
