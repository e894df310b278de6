"""Throughput of a plain PyTorch loop with `nntui.Monitor` against the same loop without it (not a test).

Both sides train their own copy of a digits-sized MLP (64-128-64-10, ReLU, Adam 1e-3, batches of
32 over 1,438 samples of 64 features, 359 more to validate on: the shape of scikit-learn's 8x8
digits, drawn at random so that nothing is downloaded) on one CPU thread, as nntui runs a small
MLP. Both validate after every epoch (loss and accuracy read with `.item()`, as the seed's loop
prints them). The monitored side calls `monitor.step(loss=loss)` after every step and
`monitor.epoch(val_loss=..., val_acc=...)` after every epoch, with the
default log settings (a step record with per-layer gradient norms every 10 steps, at most every
0.2 s), its control channel watching the inbox and its system samples on.

The sides take turns epoch by epoch (within a round plain then monitored, in the next round the
other way round), so that a shared machine's drifting speed hits both alike: timing a few epochs
of one side, then of the other, let that drift move the ratio by a percent or two either way.
`--control` leaves the monitor out of the second side too (an A/A run: how far from 1.000 the
noise alone takes the ratio). Time is CPU time of this process (`time.process_time`): load from
other processes counts against neither side, and the channel's poller thread is charged to the
monitored side. Prints the throughput ratio (monitored / plain; the target is >= 0.98).

    python benchmarks/monitor_overhead.py [--rounds 40] [--epochs-per-round 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn

import nntui

SAMPLES, VAL_SAMPLES, FEATURES, CLASSES, BATCH = 1438, 359, 64, 10, 32


def make_side(seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(FEATURES, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, CLASSES))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: tuple, monitor=None) -> int:
    """One epoch over the training batches, then the validation split's loss and accuracy (as the
    seed's loop reports them); the samples trained."""
    batches, (val_inputs, val_targets) = data
    for inputs, targets in batches:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.step(loss=loss)
    with torch.no_grad():
        outputs = model(val_inputs)
        val_loss = nn.functional.cross_entropy(outputs, val_targets).item()
        val_acc = outputs.argmax(1).eq(val_targets).float().mean().item()
    if monitor is not None:
        monitor.epoch(val_loss=val_loss, val_acc=val_acc)
    return len(batches) * BATCH


def timed_epoch(*args) -> float:
    started = time.process_time()
    train_epoch(*args)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description="nntui.Monitor's cost on a plain loop")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--epochs-per-round", type=int, default=6)
    parser.add_argument("--control", action="store_true", help="an A/A run: neither side monitored")
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(SAMPLES + VAL_SAMPLES, FEATURES, generator=generator)
    targets = torch.randint(0, CLASSES, (SAMPLES + VAL_SAMPLES,), generator=generator)
    batches = [(inputs[i:i + BATCH], targets[i:i + BATCH]) for i in range(0, SAMPLES, BATCH)]
    data = (batches, (inputs[SAMPLES:], targets[SAMPLES:]))
    plain_model, plain_optimizer = make_side(0)
    watched_model, watched_optimizer = make_side(0)
    for model, optimizer in ((plain_model, plain_optimizer), (watched_model, watched_optimizer)):
        train_epoch(model, optimizer, data)  # warm-up: first-call costs count against neither
    rounds = args.rounds
    total_epochs = (rounds + 1) * args.epochs_per_round
    plain_s, watched_s, ratios = 0.0, 0.0, []
    with tempfile.TemporaryDirectory() as runs, \
            nntui.Monitor(watched_model, watched_optimizer, name="overhead", epochs=total_epochs, runs_dir=runs,
                          batch_size=BATCH, steps_per_epoch=len(batches), handle_signals=False) as monitor:
        train_epoch(watched_model, watched_optimizer, data, monitor)  # its first log and samples
        for index in range(rounds):
            sides = [("plain", (plain_model, plain_optimizer, data)),
                     ("watched", (watched_model, watched_optimizer, data, None if args.control else monitor))]
            times = {"plain": 0.0, "watched": 0.0}
            for _epoch in range(args.epochs_per_round):
                for name, side in sides if index % 2 == 0 else reversed(sides):
                    times[name] += timed_epoch(*side)
            plain_s += times["plain"]
            watched_s += times["watched"]
            ratios.append(times["plain"] / times["watched"])
    samples = rounds * args.epochs_per_round * len(batches) * BATCH
    print(f"plain loop:           {samples / plain_s:,.0f} samples per CPU-second")
    print(f"with nntui.Monitor:   {samples / watched_s:,.0f} samples per CPU-second")
    print(f"throughput ratio:     {plain_s / watched_s:.3f} overall, {statistics.median(ratios):.3f} median "
          f"of {rounds} rounds ({'A/A control: both sides plain' if args.control else 'target >= 0.98'})")


if __name__ == "__main__":
    main()
