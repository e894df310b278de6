"""Input pipeline throughput with cifar10-vgg's augmentation: batched on the device against per-sample workers
(not a test).

Both sides are nntui's own training sources over the same synthetic CIFAR-shaped split (uint8 pixels
turned into floats in [0, 1], as `load_cifar10` does), with the preset's batch size, normalization
and `[data.augment]` (rotation 15, translate 0.1, flip, shear 5.7, zoom 0.9-1.2):

- device: `DeviceAugmentedBatches`, every batch warped by one `grid_sample` on the training device
  (here the CPU), with torch's default intra-op threads and with one (on a loaded machine, two
  threads of small kernels can wait on each other more than they work);
- workers: `LoaderBatches` over `AugmentedTensors`, torchvision v2's RandomAffine and
  RandomHorizontalFlip sample by sample in a DataLoader with 2 worker processes (started afresh
  every epoch, as nntui's loader does so that each epoch's transforms are seeded by it).

Throughput is samples per wall-clock second over whole epochs, batches consumed as the trainer
would take them, and samples per CPU-second (this process and its ended children, the workers):
on a machine shared with other work the second is the steadier figure. The sides alternate, epoch by
epoch, so that a shared machine's drifting speed hits both alike; the medians are reported.

    python benchmarks/augment_pipeline.py [--samples 50000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from dataclasses import dataclass, field

import torch

from nntui.config import load_config
from nntui.data import BatchSource, DeviceAugmentedBatches, LoaderBatches
from nntui.data.prepare import fit_normalizer
from nntui.data.vision import AugmentedTensors, augment_transform

CPU = torch.device("cpu")


def synthetic_cifar(samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`samples` random 3x32x32 images in [0, 1] (from uint8, as CIFAR-10's) and labels of 10 classes."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (samples, 32, 32, 3), dtype=torch.uint8, generator=generator)
    images = pixels.permute(0, 3, 1, 2).contiguous().float().div_(255.0)
    return images, torch.randint(0, 10, (samples,), generator=generator)


@dataclass
class Side:
    """One input pipeline, and the intra-op threads of this process while it runs."""

    name: str
    source: BatchSource
    threads: int
    rates: list[tuple[float, float]] = field(default_factory=list)  # (per wall second, per CPU second)


def sides(samples: int, workers: int, device_threads: list[int]) -> list[Side]:
    """The cifar10-vgg preset's training sources over the same synthetic split: batched on the
    device with each of `device_threads`, and per sample in `workers` DataLoader workers."""
    cfg = load_config("cifar10-vgg")
    data = cfg.data
    x, y = synthetic_cifar(samples)
    normalizer = fit_normalizer(x, data.normalize)
    batched = DeviceAugmentedBatches(x, y, data.augment, normalizer, data.batch_size, cfg.train.seed)
    per_sample = AugmentedTensors(x, y, augment_transform(data.augment), normalizer)
    loader = LoaderBatches(per_sample, data.batch_size, True, cfg.train.seed, CPU, workers)
    plural = "s" if workers > 1 else ""
    return [*(Side(f"device, {n} thread{'s' if n > 1 else ''}", batched, n) for n in device_threads),
            Side(f"{workers} worker{plural}, per sample", loader, torch.get_num_threads())]


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the DataLoader's workers,
    joined at the end of each epoch)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def epoch_rates(source: BatchSource, epoch: int) -> tuple[float, float]:
    """Samples per wall second and per CPU second of one whole epoch of `source`."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    seen = 0
    for images, _targets in source.batches(epoch):
        seen += len(images)
    return seen / (time.perf_counter() - wall), seen / (cpu_seconds() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000, help="training images (CIFAR-10 has 45,000 after val)")
    parser.add_argument("--rounds", type=int, default=3, help="epochs of each side, alternating")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the per-sample side")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="intra-op threads of the device side, one side each (default: torch's choice and 1)")
    parser.add_argument("--quick", action="store_true", help="10,000 samples, 2 rounds")
    args = parser.parse_args()
    samples, rounds = (10_000, 2) if args.quick else (args.samples, args.rounds)
    default_threads = torch.get_num_threads()
    device_threads = args.threads or sorted({default_threads, 1}, reverse=True)
    print(f"torch {torch.__version__}, {default_threads} intra-op threads by default; cifar10-vgg augmentation, "
          f"{samples} synthetic 3x32x32 images, batch 128, {rounds} epochs each")
    pipelines = sides(samples, args.workers, device_threads)
    for side in pipelines:  # warm-up: torchvision's imports, first allocations
        next(iter(side.source.batches(0)))
    for epoch in range(1, rounds + 1):
        for side in pipelines:
            torch.set_num_threads(side.threads)
            side.rates.append(epoch_rates(side.source, epoch))
    torch.set_num_threads(default_threads)
    print(f"  {'':<24} {'samples/s':>10} {'per CPU-s':>10}   (samples/s of each epoch)")
    for side in pipelines:
        wall, cpu = (statistics.median(rate[i] for rate in side.rates) for i in (0, 1))
        print(f"  {side.name:<24} {wall:>10.0f} {cpu:>10.0f}   ({', '.join(f'{w:.0f}' for w, _c in side.rates)})")
    *devices, loader = pipelines
    for side in devices:
        print(f"  {side.name} / {loader.name}: {median_ratio(side, loader, 0):.1f}x in samples/s, "
              f"{median_ratio(side, loader, 1):.1f}x per CPU-second")


def median_ratio(side: Side, other: Side, index: int) -> float:
    return statistics.median(r[index] for r in side.rates) / statistics.median(r[index] for r in other.rates)

if __name__ == "__main__":
    main()
