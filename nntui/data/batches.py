"""Batch sources: how the trainer walks over a split, epoch after epoch.

Both implementations yield `(x, y)` already on the training device. A training source
visits the samples in an order drawn from a generator seeded by `(seed, epoch)` only, so
the order of any epoch can be drawn again after a restart and `start` batches skipped
without loading them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

_SPLIT_STREAM = 0xFFFF_FFFF


def _generator(seed: int, stream: int | str) -> torch.Generator:
    # torch's CPU generator (mt19937) keeps only the low 32 bits of a seed: hash the pair into them
    digest = hashlib.blake2b(f"nntui:{seed}:{stream}".encode(), digest_size=4).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little"))


def augment_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that draws the augmentation parameters of `epoch` (a stream apart from its order)."""
    return _generator(seed, f"augment:{epoch}")


def split_generator(seed: int) -> torch.Generator:
    """The generator that draws the test/validation splits for `seed`."""
    return _generator(seed, _SPLIT_STREAM)


def epoch_permutation(seed: int, epoch: int, num_samples: int) -> Tensor:
    """The order of the training samples in `epoch` (a CPU int64 tensor).

    Drawn on the CPU so that a run resumed on another device sees the same order.
    """
    if not 0 <= epoch < _SPLIT_STREAM:
        raise ValueError(f"epoch {epoch} out of range")
    return torch.randperm(num_samples, generator=_generator(seed, epoch))


def batch_bounds(num_samples: int, batch_size: int, merge_single: bool) -> list[tuple[int, int]]:
    """`(lo, hi)` of every batch; the last partial batch is kept.

    With `merge_single`, a last batch of one sample joins the batch before it: batch norm
    cannot train on a single sample.
    """
    bounds = [(lo, min(lo + batch_size, num_samples)) for lo in range(0, num_samples, batch_size)]
    if merge_single and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], num_samples)
        bounds.pop()
    return bounds


class BatchSource(Protocol):
    """One split, as batches on the training device.

    `augment_on` says where its samples are augmented: "device" (whole batches on the training
    device), "workers" (one sample at a time in DataLoader workers), or None (not augmented).
    """

    num_samples: int
    augment_on: str | None

    def __len__(self) -> int:
        """Batches per epoch."""
        ...

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield `(x, y)` of `epoch` from batch `start` on (`epoch` is ignored by eval splits)."""
        ...


class TensorBatches:
    """A split held on the device as two tensors; a batch is an index_select or a slice."""

    augment_on: str | None = None

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        self.x, self.y = x, y
        self.num_samples = len(x)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._bounds = batch_bounds(self.num_samples, batch_size, merge_single=shuffle)

    def __len__(self) -> int:
        return len(self._bounds)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        x, y, bounds = self.x, self.y, self._bounds[start:]
        if not self.shuffle:
            for lo, hi in bounds:
                whole = lo == 0 and hi == self.num_samples  # a split in one batch: no slicing ops
                yield (x, y) if whole else (x[lo:hi], y[lo:hi])
            return
        order = epoch_permutation(self.seed, epoch, self.num_samples).to(x.device)
        # The epoch's targets in one gather, each batch's a view of it: a trainer that keeps the
        # targets of many steps (for the epoch's accuracy) then holds no per-step allocations,
        # which on a CPU scatter the heap and slow the steps of a larger model by a few percent.
        targets = y.index_select(0, order)
        for lo, hi in bounds:
            yield x.index_select(0, order[lo:hi]), targets[lo:hi]


class EpochBatchSampler:
    """Lists of sample indices per batch for a DataLoader: the epoch's order from batch `start` on."""

    def __init__(self, num_samples: int, batch_size: int, shuffle: bool, seed: int) -> None:
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.bounds = batch_bounds(num_samples, batch_size, merge_single=shuffle)
        self.epoch = 0
        self.start = 0

    def __len__(self) -> int:
        return len(self.bounds) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order: Sequence[int] = epoch_permutation(self.seed, self.epoch, self.num_samples).tolist()
        else:
            order = range(self.num_samples)
        for lo, hi in self.bounds[self.start:]:
            yield list(order[lo:hi])


class LoaderBatches:
    """A split read through a torch DataLoader (per-sample transforms, data too big for the device).

    `augmented`: whether the dataset's transforms augment the samples (the source says so, as
    `augment_on = "workers"`; the transforms themselves cannot tell).
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool, seed: int,
                 device: torch.device, num_workers: int = 0, augmented: bool = False) -> None:
        self.num_samples = len(dataset)  # type: ignore[arg-type]
        self.augment_on: str | None = "workers" if augmented else None
        self.device = device
        self.sampler = EpochBatchSampler(self.num_samples, batch_size, shuffle, seed)
        self.loader = DataLoader(
            dataset,
            batch_sampler=self.sampler,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            # fresh workers each epoch, so their random transforms are seeded by (seed, epoch)
            persistent_workers=False,
        )

    def __len__(self) -> int:
        return len(self.sampler.bounds)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        self.sampler.epoch, self.sampler.start = epoch, start
        self.loader.generator = _generator(self.sampler.seed, epoch) if self.sampler.shuffle else None
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
