"""How fast the quick commands answer, next to what importing torch alone costs (not a test).

    python benchmarks/startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "nntui --help": [sys.executable, "-m", "nntui", "--help"],
    "nntui presets": [sys.executable, "-m", "nntui", "presets"],
    "nntui presets show digits-mlp": [sys.executable, "-m", "nntui", "presets", "show", "digits-mlp"],
    "python -c 'import torch' (reference)": [sys.executable, "-c", "import torch"],
}


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    for _ in range(args.rounds):  # interleaved, so that noise hits every command alike
        for label, command in COMMANDS.items():
            times[label].append(wall_time(command))
    reference = statistics.median(times["python -c 'import torch' (reference)"])
    for label, values in times.items():
        median = statistics.median(values)
        print(f"{label:<40} {median:6.3f} s   ({median / reference:.2f} x importing torch)")


if __name__ == "__main__":
    main()
