"""Throughput of nntui's headless engine against a plain PyTorch loop (not a test).

Throughput is samples per CPU-second of this process (time.process_time), so that load from other
processes does not decide the ratio. Both train the same model on the same device tensors with the same batch size, seed and
optimizer, validating once per epoch; runs alternate so that machine noise hits both sides.
The plain loop is the one the seed documents write: zero_grad, forward, loss, backward, step,
and `running_loss += loss.item()`. nntui also logs steps and gradient norms, tracks accuracy,
obeys commands and writes its run directory.

    python benchmarks/overhead.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from nntui.config import load_config
from nntui.data import build_data
from nntui.data.batches import TensorBatches
from nntui.data.bundle import DataBundle
from nntui.engine.events import EpochEnded, RunStarted
from nntui.engine.trainer import Trainer
from nntui.models import build_model
from nntui.rundir import RunDirWriter
from nntui.runner import limit_cpu_threads


def clock() -> float:
    """CPU seconds of this process: other processes on a busy machine do not count against either side."""
    return time.process_time()


def plain_loop(bundle: DataBundle, cfg, device: torch.device) -> float:
    """Samples per second of the textbook loop."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, bundle.input_shape, bundle.num_outputs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    loss_fn = nn.CrossEntropyLoss()
    x, y = bundle.train.x, bundle.train.y
    xv, yv = bundle.val.x, bundle.val.y
    batch, n = cfg.data.batch_size, len(x)
    generator = torch.Generator().manual_seed(cfg.train.seed)
    start = clock()
    for _epoch in range(cfg.train.epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        running_loss = 0.0
        for lo in range(0, n, batch):
            index = order[lo:lo + batch]
            inputs, targets = x.index_select(0, index), y.index_select(0, index)
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        model.eval()
        with torch.no_grad():
            loss_fn(model(xv), yv).item()
    return n * cfg.train.epochs / (clock() - start)


def nntui_loop(bundle: DataBundle, cfg, device: torch.device) -> float:
    """Samples per second of nntui's trainer with its run-directory sink.

    Timed like the plain loop: from the start of the run to the end of the last epoch's
    validation (the test evaluation after training is not training throughput).
    """
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, bundle.input_shape, bundle.num_outputs).to(device)
    marks: list[float] = []

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        writer = RunDirWriter(run_dir, cfg)

        def sink(event) -> None:
            writer(event)
            if isinstance(event, (RunStarted, EpochEnded)):
                marks.append(clock())

        trainer = Trainer(cfg, bundle, model, device, sink, checkpoint_dir=run_dir / "checkpoints")
        end = trainer.run()
        writer.close()
    if end.status != "completed":
        raise SystemExit(f"nntui run ended {end.status}: {end.error}")
    return bundle.train.num_samples * cfg.train.epochs / (marks[-1] - marks[0])


def synthetic_mnist(cfg, device: torch.device) -> DataBundle:
    """An MNIST-sized classification set of random tensors (60,000 x 1x28x28, 10 classes)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(60_000, 1, 28, 28, generator=generator).to(device)
    y = torch.randint(0, 10, (60_000,), generator=generator).to(device)
    bs = cfg.data.batch_size
    train = TensorBatches(x[:54_000], y[:54_000], bs, shuffle=True, seed=cfg.train.seed)
    val = TensorBatches(x[54_000:], y[54_000:], 1024, shuffle=False)
    test = TensorBatches(x[:0], y[:0], 1024, shuffle=False)
    return DataBundle(train, val, test, (1, 28, 28), 10, tuple(map(str, range(10))))


def compare(label: str, bundle: DataBundle, cfg, rounds: int, single_thread: bool = False) -> float:
    device = torch.device("cpu")
    threads = torch.get_num_threads()
    params = sum(p.numel() for p in build_model(cfg.model, bundle.input_shape, bundle.num_outputs).parameters())
    if limit_cpu_threads(cfg, device, params):  # what `nntui run` does; the plain loop gets the same
        print(f"{label}: small MLP on the CPU, both sides use 1 thread (as nntui run does)")
    elif single_thread:
        torch.set_num_threads(1)
    plain_loop(bundle, cfg, device)  # warm-up: lazy initialization hits whichever side runs first
    nntui_loop(bundle, cfg, device)
    plain, ours = [], []
    for round_ in range(rounds):  # alternate, and swap who goes first, so drift hits both alike
        sides = [(plain, plain_loop), (ours, nntui_loop)]
        for results, loop in sides if round_ % 2 == 0 else reversed(sides):
            results.append(loop(bundle, cfg, device))
    torch.set_num_threads(threads)
    ratio = statistics.median(ours) / statistics.median(plain)
    ratios = sorted(o / p for o, p in zip(ours, plain))
    print(f"{label:<28} plain {statistics.median(plain):>9.0f} samples/s   nntui {statistics.median(ours):>9.0f} "
          f"samples/s   ratio {ratio:.3f} (per-round ratios {ratios[0]:.3f} .. {ratios[-1]:.3f})")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--threads", choices=("default", "one"), default="one",
                        help="intra-op threads for the MNIST-sized case (one: steadier on a small, shared VM)")
    args = parser.parse_args()
    device = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads by default")
    fixed = ["early_stopping.enabled=false", "schedule.name='constant'", "model.dropout=0.0"]
    digits = load_config("digits-mlp", fixed)  # the preset as users run it: 40 epochs
    compare("digits-mlp (1150 x 64)", build_data(digits, device, Path(tempfile.gettempdir())), digits, args.rounds)
    mnist = load_config("mnist-mlp", ["train.epochs=3", "data.batch_size=64"])
    compare("MNIST-sized MLP 784-500-10", synthetic_mnist(mnist, device), mnist, max(2, args.rounds // 2),
            single_thread=args.threads == "one")


if __name__ == "__main__":
    main()
