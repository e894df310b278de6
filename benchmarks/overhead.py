"""Throughput of nntui's headless engine against a plain PyTorch loop (not a test).

Throughput is samples per CPU-second of this process (time.process_time), so that load from other
processes does not decide the ratio; the control channel's poller thread runs whenever it is
due, so all of its CPU time is charged to nntui. Both train the same model on the same device tensors with
the same batch size, seed and optimizer, validating once per epoch.

The two sides run interleaved: whenever nntui's trainer reports a step record or an epoch, the
plain loop catches up to the same step (validating at the same epoch ends), and that time is
taken out of nntui's. On a shared VM whose speed drifts by tens of percent within seconds, this
pairs measurements a fraction of a second apart. nntui's wall clock leaves out the plain loop's
turns, so that its time-based rules (a step record every 0.2 s) fire as often as in a real run.
nntui's time runs from its start (so it includes the first checkpoint) to the end of its last
epoch, and so includes the epoch-end checkpoints that its adaptive rule writes (whenever the last
one took at most 1% of nntui's own wall time since; measured at 3-8 ms of CPU each here).

The plain loop is the training loop seed 004 (MNIST in PyTorch) writes, fed from the same
tensors: zero_grad, forward, loss, backward, step, `loss.item()` every 100 batches. After each
epoch it evaluates loss and accuracy (`argmax`, `eq`, `.item()`) in one forward pass over the
validation split: leaner than the seed's batches of 64 with two `.item()` calls each, so that
nntui is held to the fastest plain loop. nntui also tracks the
training loss and accuracy of every sample, logs steps and per-layer gradient norms, obeys
commands (its control channel watches the inbox), keeps the best weights, writes its run
directory and prints its plain console lines to a file, as `nntui run --headless > file` does.

Three comparisons per model, side by side (issue 16, point 5):
- nntui as configured by default against the plain loop with torch's defaults (`Adam(params, lr)`,
  which on the CPU runs the for-loop kernels): what a user gains by switching, goal 1.3x;
- nntui against the plain loop given the same kernels (fused Adam on both sides): nntui's own
  overhead, goal 0.98;
- nntui in bf16 (autocast) against the plain loop in float32, both fused, for the record; the table
  also divides it by the overhead, for bf16 against float32 within nntui.
A comparison whose `--set` keys this nntui does not know (`optim.impl`, `train.precision`) is
skipped with a note.

    python benchmarks/overhead.py [--rounds 30] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

import nntui.console
import nntui.engine.trainer
from nntui.channel import ChannelServer
from nntui.config import ConfigError, load_config
from nntui.console import PlainConsole
from nntui.data import build_data
from nntui.data.batches import TensorBatches
from nntui.data.bundle import DataBundle
from nntui.engine.allocator import keep_freed_memory
from nntui.engine.control import Controls
from nntui.engine.events import EpochEnded, StepLogged
from nntui.engine.trainer import Trainer
from nntui.models import build_model
from nntui.rundir import RunDirWriter
from nntui.runner import limit_cpu_threads


class RoundClock:
    """CPU seconds of this process (other processes on a busy machine count against neither side)
    less those of nntui's helper threads (the control channel's poller), which run whenever they
    are due, often while the plain loop runs: all of their time is charged to nntui instead."""

    def __init__(self, threads: list[threading.Thread]) -> None:
        self._clocks = [time.pthread_getcpuclockid(thread.ident) for thread in threads]

    def helper_seconds(self) -> float:
        return sum(time.clock_gettime(clock) for clock in self._clocks)

    def __call__(self) -> float:
        return time.process_time() - self.helper_seconds()


class WallClockWithoutPlainLoop:
    """`time` for nntui's trainer and console, whose `monotonic()` leaves out the plain loop's turns.

    nntui's wall-clock rules (a step record at most every `log_interval_s`, a console line every
    few seconds, a checkpoint every `checkpoint_every_s`) would otherwise fire twice as often per
    second of nntui's own time as in a real run, because the plain loop's turns take about as
    long as nntui's."""

    def __init__(self) -> None:
        self.plain_wall_s = 0.0
        self.module = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time)
                                               if not name.startswith("_")})
        self.module.monotonic = lambda: time.monotonic() - self.plain_wall_s

    def __enter__(self) -> "WallClockWithoutPlainLoop":
        nntui.engine.trainer.time = nntui.console.time = self.module  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        nntui.engine.trainer.time = nntui.console.time = time  # type: ignore[assignment]


class PlainLoop:
    """The textbook loop, advanced on request so that it can run interleaved with nntui's."""

    def __init__(self, bundle: DataBundle, cfg, device: torch.device, kernels: dict[str, bool]) -> None:
        torch.manual_seed(cfg.train.seed)
        self.model = build_model(cfg.model, bundle.input_shape, bundle.num_outputs).to(device)
        # {}: torch's defaults, as the seeds write it; {"fused": True}: the kernels nntui picks
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr, **kernels)
        self.loss_fn = nn.CrossEntropyLoss()
        self.x, self.y = bundle.train.x, bundle.train.y
        self.xv, self.yv = bundle.val.x, bundle.val.y
        self.batch, self.device = cfg.data.batch_size, device
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.starts: list[int] = []  # batch starts left in the current epoch
        self.order = torch.empty(0)
        self.step = self.batch_idx = 0
        self.seconds = 0.0

    def advance(self, step: int, end_epoch: bool, clock: RoundClock) -> float:
        """Train up to global step `step`, then validate if `end_epoch`; the CPU time goes to
        `seconds`. Returns the wall seconds taken."""
        start, wall_start = clock(), time.monotonic()
        while self.step < step:
            self._train_step()
        if end_epoch:
            self._validate()
        self.seconds += clock() - start
        return time.monotonic() - wall_start

    def _train_step(self) -> None:
        if not self.starts:  # a new epoch
            self.model.train()
            self.order = torch.randperm(len(self.x), generator=self.generator).to(self.device)
            self.starts = list(range(0, len(self.x), self.batch))[::-1]
            self.batch_idx = 0
        lo = self.starts.pop()
        index = self.order[lo:lo + self.batch]
        inputs, targets = self.x.index_select(0, index), self.y.index_select(0, index)
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(inputs), targets)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self.batch_idx += 1
        if self.batch_idx % 100 == 0:
            loss.item()  # the seed prints it

    def _validate(self) -> None:
        self.model.eval()
        with torch.no_grad():
            output = self.model(self.xv)
            self.loss_fn(output, self.yv).item()
            output.argmax(dim=1).eq(self.yv).sum().item()


def kernels_of(optimizer: torch.optim.Optimizer) -> str:
    """The implementation the optimizer's steps run: what torch resolves its defaults to."""
    group = optimizer.param_groups[0]
    if group.get("fused"):
        return "fused"
    foreach = group.get("foreach")
    if foreach is None:  # torch decides at the first step, from where the parameters live
        from torch.optim.optimizer import _default_to_fused_or_foreach

        _fused, foreach = _default_to_fused_or_foreach(group["params"], differentiable=False, use_fused=False)
    return "foreach" if foreach else "for_loop"


def interleaved_round(bundle: DataBundle, cfg, device: torch.device,
                      kernels: dict[str, bool]) -> tuple[float, float, str, str]:
    """(plain, nntui) samples per CPU-second, trained in turns, and (plain, nntui) optimizer kernels.

    Whenever nntui reports a step or an epoch, the plain loop catches up to the same step (and
    validates at the same epoch ends); its time is taken out of nntui's.
    """
    plain = PlainLoop(bundle, cfg, device, kernels)
    ours = {"seconds": 0.0, "resumed": None}

    with (tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "stdout.txt", "w") as stdout,
          WallClockWithoutPlainLoop() as nntui_wall):
        run_dir = Path(tmp) / "run"
        writer = RunDirWriter(run_dir, cfg)  # the sinks and channel of `nntui run --headless > file`
        console = PlainConsole(stdout, run_dir=str(run_dir))
        controls = Controls()
        channel = ChannelServer(run_dir, controls)
        channel.open()
        clock = RoundClock([channel._thread])

        def sink(event) -> None:
            writer(event)
            console(event)
            now = clock()
            if ours["resumed"] is not None:
                ours["seconds"] += now - ours["resumed"]
            if isinstance(event, (StepLogged, EpochEnded)):
                nntui_wall.plain_wall_s += plain.advance(event.step, end_epoch=isinstance(event, EpochEnded),
                                                         clock=clock)
            last = isinstance(event, EpochEnded) and event.epoch == cfg.train.epochs
            ours["resumed"] = None if last else clock()  # after the last epoch: the test pass, not timed

        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg.model, bundle.input_shape, bundle.num_outputs).to(device)
        trainer = Trainer(cfg, bundle, model, device, sink, controls, checkpoint_dir=run_dir / "checkpoints")
        end = trainer.run()
        ours["seconds"] += clock.helper_seconds()  # the poller's time, all of it nntui's
        channel.close()
        writer.close()
    if end.status != "completed":
        raise SystemExit(f"nntui run ended {end.status}: {end.error}")
    samples = bundle.train.num_samples * cfg.train.epochs
    return samples / plain.seconds, samples / ours["seconds"], kernels_of(plain.optimizer), kernels_of(trainer.optimizer)


def synthetic_mnist(cfg, device: torch.device, train_samples: int = 54_000) -> DataBundle:
    """An MNIST-sized classification set of random tensors (1x28x28, 10 classes, 6,000 to validate)."""
    total = train_samples + 6_000
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(total, 1, 28, 28, generator=generator).to(device)
    y = torch.randint(0, 10, (total,), generator=generator).to(device)
    bs = cfg.data.batch_size
    train = TensorBatches(x[:train_samples], y[:train_samples], bs, shuffle=True, seed=cfg.train.seed)
    val = TensorBatches(x[train_samples:], y[train_samples:], 1024, shuffle=False)
    test = TensorBatches(x[:0], y[:0], 1024, shuffle=False)
    return DataBundle(train, val, test, (1, 28, 28), 10, tuple(map(str, range(10))))


@dataclass(frozen=True)
class Case:
    """One comparison: nntui's side as `--set` makes it, the plain loop's Adam options, the goal."""

    label: str
    nntui_sets: tuple[str, ...]
    plain_kernels: dict[str, bool]
    target: float | None  # issue 16: nntui/plain throughput at least this


CASES = (
    Case("vs the seeds' loop (torch defaults)", (), {}, 1.3),
    Case("overhead (both fused Adam)", ("optim.impl='fused'",), {"fused": True}, 0.98),
    Case("bf16 (nntui) vs float32 (plain)", ("optim.impl='fused'", "train.precision='bf16'"), {"fused": True}, None),
)


@dataclass
class Result:
    model: str
    case: Case
    plain: list[float] = field(default_factory=list)  # samples per CPU-second, one per round
    ours: list[float] = field(default_factory=list)
    kernels: str = ""  # "plain kernels / nntui kernels"

    @property
    def ratio(self) -> float:
        return statistics.median(o / p for o, p in zip(self.ours, self.plain))


def compare(model: str, case: Case, bundle: DataBundle, cfg, rounds: int, single_thread: bool = False) -> Result:
    device = torch.device("cpu")
    threads = torch.get_num_threads()
    params = sum(p.numel() for p in build_model(cfg.model, bundle.input_shape, bundle.num_outputs).parameters())
    keep_freed_memory()  # what `nntui run` does; both sides share this process and so the setting
    if not limit_cpu_threads(cfg, device, params) and single_thread:  # nntui run's rule, for both sides
        torch.set_num_threads(1)
    result = Result(model, case)
    interleaved_round(bundle, cfg, device, case.plain_kernels)  # warm-up: lazy initialization would hit one side only
    for _round in range(rounds):
        plain_rate, ours_rate, plain_kernels, nntui_kernels = interleaved_round(bundle, cfg, device, case.plain_kernels)
        result.plain.append(plain_rate)
        result.ours.append(ours_rate)
        result.kernels = f"{plain_kernels} / {nntui_kernels}"
    print(f"  {model}, {case.label}, {torch.get_num_threads()} thread(s):\n{summarize(result.plain, result.ours)}")
    torch.set_num_threads(threads)
    return result


def summarize(plain: list[float], ours: list[float]) -> str:
    """Three estimates of nntui/plain throughput, since one number hides how noisy a shared VM is.

    paired: the median of each round's ratio (within a round the sides ran interleaved);
    medians: the ratio of the sides' median throughputs; best: the ratio of each side's
    best run, the usual estimate when noise only ever slows a run down.
    """
    paired = sorted(o / p for o, p in zip(ours, plain))
    quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
    return (f"    plain {statistics.median(plain):>8.0f} samples/s  nntui {statistics.median(ours):>8.0f} samples/s  "
            f"ratio paired {statistics.median(paired):.3f} (quartiles {quartiles[0]:.3f}..{quartiles[2]:.3f}, "
            f"{len(paired)} rounds)  medians {statistics.median(ours) / statistics.median(plain):.3f}"
            f"  best {max(ours) / max(plain):.3f}")


def table(results: list[Result]) -> str:
    """One line per comparison; bf16 against float32 is also given for nntui alone (bf16 / overhead)."""
    lines = [f"{'model':<28} {'comparison':<36} {'Adam plain / nntui':<19} {'plain/s':>8} {'nntui/s':>8} "
             f"{'ratio':>6}  target"]
    for result in results:
        target = f">= {result.case.target:g} {'met' if result.ratio >= result.case.target else 'NOT met'}" \
            if result.case.target else ""
        lines.append(f"{result.model:<28} {result.case.label:<36} {result.kernels:<19} "
                     f"{statistics.median(result.plain):>8.0f} {statistics.median(result.ours):>8.0f} "
                     f"{result.ratio:>6.3f}  {target}")
    for model in dict.fromkeys(r.model for r in results):
        ratios = {r.case.label: r.ratio for r in results if r.model == model}
        overhead, bf16 = ratios.get(CASES[1].label), ratios.get(CASES[2].label)
        if overhead and bf16:
            lines.append(f"{model:<28} {'bf16 / float32, both nntui':<36} {'':<19} {'':>8} {'':>8} {bf16 / overhead:>6.3f}")
    return "\n".join(lines)


def case_config(preset: str, base: list[str], case: Case):
    """The case's configuration, or None (with a note) when this nntui lacks one of its keys."""
    try:
        return load_config(preset, [*base, *case.nntui_sets])
    except ConfigError as error:
        print(f"  skipped {preset}, {case.label}: {error}")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30,
                        help="rounds of digits-mlp; the MNIST-sized case, 5x longer per round, gets two thirds as many")
    parser.add_argument("--threads", choices=("default", "one"), default="one",
                        help="intra-op threads for the MNIST-sized case (one: steadier on a small, shared VM)")
    parser.add_argument("--quick", action="store_true",
                        help="a look in under 2 minutes: 3 rounds, 10 digits epochs, 1 epoch of 12,000 MNIST-sized samples")
    args = parser.parse_args()
    device = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads by default; "
          f"samples per CPU-second; small MLPs run on 1 thread, as nntui run does")
    rounds = 3 if args.quick else args.rounds
    fixed = ["early_stopping.enabled=false", "schedule.name='constant'", "model.dropout=0.0"]
    digits_base = fixed + (["train.epochs=10"] if args.quick else [])  # else the preset as users run it: 40 epochs
    mnist_base = ["train.epochs=1" if args.quick else "train.epochs=3", "data.batch_size=64"]
    mnist_samples = 12_000 if args.quick else 54_000
    results = []
    for case in CASES:
        cfg = case_config("digits-mlp", digits_base, case)
        if cfg is not None:
            bundle = build_data(cfg, device, Path(tempfile.gettempdir()))
            results.append(compare("digits-mlp (1150 x 64)", case, bundle, cfg, rounds))
        cfg = case_config("mnist-mlp", mnist_base, case)
        if cfg is not None:
            results.append(compare("MNIST-sized MLP 784-500-10", case, synthetic_mnist(cfg, device, mnist_samples), cfg,
                                   max(2, rounds * 2 // 3), single_thread=args.threads == "one"))
    print()
    print(table(results))


if __name__ == "__main__":
    main()
