"""Listing and replaying long runs: `nntui runs` over 100 runs, one of 1M step records; `nntui show` of it.

    python benchmarks/long_runs.py [--rounds 3] [--steps 1000000] [--keep DIR]

Run it from the repo root: the children run `python -m nntui`, which imports the nntui of the
current directory.

Generates, in a temporary runs dir, one run of `--steps` step records (and as many grad-norm
records: about 55 hours of training at the default log interval, ~490 MB) and 99 small ones,
writing lines from templates (fast). Then, each round, in a child process measured on its own
(`os.wait4`: wall time and peak RSS):

- `nntui runs --runs-dir DIR` (targets: under 1 s and 150 MB);
- `nntui show` of the long run to its first full frame: the app (headless, `run_test`) until its
  state has applied every record and the screen has redrawn (targets: under 3 s and 300 MB).

Prints the medians over the rounds (wall time; CPU time, which on a busy machine is closer to the
wall time of an idle one; peak RSS), and each round's figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYERS = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias", "fc4.weight", "fc4.bias",
          "out.weight", "out.bias")
LOG_EVERY = 10  # a step record every 10 steps, one per 0.2 s of wall time
CONFIG = '[early_stopping]\nenabled = true\nmonitor = "val_loss"\nmode = "min"\n'

START = ('{"event":"start","preset":"mnist-mlp","device":"cpu","params":535818,"train_size":54000,"val_size":6000,'
         '"test_size":10000,"resumed_from":null,"task":"classification","epochs":%(epochs)d,'
         '"steps_per_epoch":%(spe)d,"batch_size":5,"optimizer":"adam","lr":0.001,"run_name":"%(name)s","pid":1,'
         '"layers":[%(layers)s],"early_stop":{"monitor":"val_loss","best":null,"best_epoch":null,"wait":0,'
         '"patience":1000,"mode":"min","restore_best":true},"time":%(time).7f}\n')
STEP = ('{"event":"step","step":%d,"epoch":%d,"loss":%.17g,"lr":0.001,"grad_norm":%.17g,'
        '"samples_per_s":53627.97007546183,"time":%.7f}\n')
NORMS = ",".join(f'"{name}":%.17g' for name in LAYERS)
GRADS = '{"event":"grad_norms","step":%d,"norms":{' + NORMS + '},"time":%.7f}\n'
EPOCH = ('{"event":"epoch","epoch":%(epoch)d,"step":%(step)d,"train_loss":%(loss).17g,"val_loss":%(val).17g,'
         '"lr":0.001,"train_acc":0.9512345678901234,"val_acc":0.9423456789012345,"early_stop":{"monitor":"val_loss",'
         '"best":%(val).17g,"best_epoch":%(epoch)d,"wait":0,"patience":1000,"mode":"min","restore_best":true},'
         '"epoch_s":2000.123456789,"time":%(time).7f}\n')
END = ('{"event":"end","status":"completed","epoch":%(epoch)d,"step":%(step)d,"best_epoch":%(epoch)d,'
       '"best":%(val).17g,"test_loss":0.0812345678901234,"test_acc":0.9745,"wall_s":%(wall).3f,"error":null,'
       '"reason":"trained %(epoch)d epochs","time":%(time).7f}\n')


def write_run(runs: Path, name: str, step_records: int, per_epoch: int, t0: float) -> int:
    """A completed run of `step_records` step records (and as many grad-norm records), `per_epoch`
    of them an epoch; its size."""
    run_dir = runs / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(CONFIG)
    epochs = max(1, step_records // per_epoch)
    t = t0
    with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as out:
        out.write(START % {"epochs": epochs, "spe": per_epoch * LOG_EVERY, "name": name, "time": t,
                           "layers": ",".join(f'"{layer}"' for layer in LAYERS)})
        lines: list[str] = []
        for index in range(1, step_records + 1):
            t += 0.2
            step, epoch, loss = index * LOG_EVERY, (index - 1) // per_epoch + 1, 2.0 / index ** 0.3
            lines.append(STEP % (step, epoch, loss, 1.0 + 1.0 / index, t))
            lines.append(GRADS % (step, 1.2 + 1.0 / index, 0.1, 1.5, 0.12, 1.4, 0.11, 1.3, 0.1, 1.25, 0.105, t))
            if index % per_epoch == 0:
                lines.append(EPOCH % {"epoch": epoch, "step": step, "loss": loss, "val": loss * 1.1, "time": t})
            if len(lines) >= 20_000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
        out.write(END % {"epoch": epochs, "step": step_records * LOG_EVERY, "val": 2.2 / step_records ** 0.3,
                         "wall": t - t0, "time": t})
    return (run_dir / "metrics.jsonl").stat().st_size


def measured(argv: list[str], until: str | None = None) -> tuple[float, float, float]:
    """A child's wall seconds (to the line `until` on stdout, if given, else to its exit), CPU
    seconds (to its exit: on a busy machine, closer to what the wall time would be on an idle one)
    and peak RSS in MB."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = None
    assert child.stdout is not None and child.stderr is not None
    for line in child.stdout:
        if until is not None and line.strip() == until:
            seconds = time.perf_counter() - started
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 or (until is not None and seconds is None):
        raise RuntimeError(f"{' '.join(argv[2:4])} exited {child.returncode}: {errors.strip()}")
    if seconds is None:
        seconds = time.perf_counter() - started
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss: KB on Linux


SHOW = """
import asyncio, sys
from pathlib import Path
from nntui.tui.app import create_app

async def main(run_dir):
    app = create_app(mode="show", runs_dir=run_dir.parent, run_dir=run_dir)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        while screen.state.ended is None or not screen.query_one("#results").display:  # drawn at the end
            await pilot.pause(0.01)
        await pilot.pause()  # the compositor has drawn the frame
        print("frame", flush=True)
        assert app.is_running, "the app died"

asyncio.run(main(Path(sys.argv[1])))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="generate the runs here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nntui-long-") as tmp:
        runs = args.keep or Path(tmp) / "runs"
        begun = time.perf_counter()
        size = write_run(runs, "long", args.steps, 1_000, 1.7e9)  # 1,000 epochs of 10,000 steps
        for index in range(99):
            write_run(runs, f"small-{index:02d}", 1_000, 50, 1.7e9 + 1e6 + index * 1000)
        print(f"generated 100 runs (one of {args.steps:,} step records, {size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - begun:.1f} s")
        nntui = [sys.executable, "-m", "nntui"]
        listing = [measured([*nntui, "runs", "--runs-dir", str(runs)]) for _ in range(args.rounds)]
        showing = [measured([sys.executable, "-c", SHOW, str(runs / "long")], until="frame")
                   for _ in range(args.rounds)]
    for label, figures, targets in (("nntui runs, 100 runs", listing, "1 s, 150 MB"),
                                    ("nntui show, first full frame", showing, "3 s, 300 MB")):
        wall, cpu, peak = (statistics.median(figure[index] for figure in figures) for index in range(3))
        rounds = ", ".join(f"{s:.2f} s / {c:.2f} s / {mb:.0f} MB" for s, c, mb in figures)
        print(f"{label}: {wall:.2f} s (CPU {cpu:.2f} s), peak RSS {peak:.0f} MB (target under {targets}); "
              f"rounds (wall / CPU / RSS): {rounds}")


if __name__ == "__main__":
    main()
