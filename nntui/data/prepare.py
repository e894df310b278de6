"""Seeded splits and normalization fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nntui.config import RunConfig
from nntui.data.batches import split_generator
from nntui.data.bundle import DataError

_TINY = 1e-12


@dataclass
class RawData:
    """A data set loaded into CPU tensors before splitting and normalization.

    Images are float32 (N, C, H, W) in [0, 1]; tabular inputs float32 (N, F). Targets are
    int64 class indices (N,) or float32 values (N, 1). `x_test` is None when the data set
    has no official test split.
    """

    x: Tensor
    y: Tensor
    class_names: tuple[str, ...]
    is_image: bool
    x_test: Tensor | None = None
    y_test: Tensor | None = None


def split_counts(total: int, fraction: float) -> int:
    """How many of `total` samples a split of `fraction` takes."""
    return int(round(total * fraction))


def holdout_split(num_samples: int, test_split: float, val_split: float, seed: int,
                  has_test: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Indices of (train, val, test) drawn from `seed`; each sorted, so eval splits keep file order.

    With `has_test` the data set brings its own test split and only validation is held out
    (the returned test indices are empty).
    """
    generator = split_generator(seed)
    order = torch.randperm(num_samples, generator=generator)
    test_count = 0 if has_test else split_counts(num_samples, test_split)
    test, rest = order[:test_count], order[test_count:]
    val_count = split_counts(len(rest), val_split)
    val, train = rest[:val_count], rest[val_count:]
    if len(train) == 0:
        raise DataError(f"no training samples left: {num_samples} samples, "
                        f"test_split {test_split}, val_split {val_split}")
    return train.sort().values, val.sort().values, test.sort().values


def check_validation_split(cfg: RunConfig, val_count: int) -> None:
    """A metric that early stopping or the plateau schedule monitors on validation needs samples there.

    `data.val_split = 0` is refused with the configuration; this catches a split that rounds
    to no sample of a small data set.
    """
    needs = [f"{key} {monitor}" for key, monitor in cfg.active_monitors() if monitor.startswith("val_")]
    if val_count == 0 and needs:
        raise DataError(f"data.val_split {cfg.data.val_split:g} leaves no validation sample of this data set, "
                        f"and {needs[0]} needs some (raise data.val_split, or monitor train_loss)")


@dataclass
class Normalizer:
    """`(x - shift) / scale`, with statistics shaped to broadcast over one sample or a batch."""

    shift: Tensor
    scale: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale

    @staticmethod
    def identity(sample_shape: tuple[int, ...]) -> "Normalizer":
        shape = _stat_shape(sample_shape)
        return Normalizer(torch.zeros(shape), torch.ones(shape))


def _stat_shape(sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    # per feature for tabular samples (F,), per channel for images (C, H, W)
    return (sample_shape[0],) + (1,) * (len(sample_shape) - 1)


class RunningStats:
    """Per-channel min, max, mean and variance of batches (N, C, ...), merged chunk by chunk.

    Each chunk in float32, merged in float64 with Chan's parallel update: large offsets do
    not eat the variance, and no full-size copy of the data is ever made.
    """

    def __init__(self, channels: int) -> None:
        self.count = 0
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.m2 = torch.zeros(channels, dtype=torch.float64)
        self.low = torch.full((channels,), float("inf"), dtype=torch.float64)
        self.high = torch.full((channels,), float("-inf"), dtype=torch.float64)

    def update(self, batch: Tensor) -> None:
        # (N, C, rest) is a view; reducing over dims (0, 2) is several times faster than var_mean
        values = batch.detach().cpu().float().reshape(batch.shape[0], batch.shape[1], -1)
        count = values.shape[0] * values.shape[2]
        if count == 0:
            return
        chunk_mean = values.mean(dim=(0, 2))
        m2 = (values - chunk_mean[None, :, None]).square().sum(dim=(0, 2)).double()
        low, high = values.amin(dim=(0, 2)), values.amax(dim=(0, 2))
        mean = chunk_mean.double()
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total
        self.low = torch.minimum(self.low, low.double())
        self.high = torch.maximum(self.high, high.double())

    def normalizer(self, mode: str, sample_shape: tuple[int, ...]) -> "Normalizer":
        """The Normalizer of `mode` (`none`, `minmax`, `zscore`) for these statistics."""
        if mode == "none" or self.count == 0:
            return Normalizer.identity(sample_shape)
        if mode == "minmax":
            return normalizer_from_stats(self.low, self.high - self.low, sample_shape)
        if mode == "zscore":
            return normalizer_from_stats(self.mean, (self.m2 / self.count).sqrt(), sample_shape)
        raise DataError(f"data.normalize: unknown mode {mode!r}")


def fit_normalizer(x_train: Tensor, mode: str, chunk: int = 4096) -> Normalizer:
    """Statistics of `mode` (`none`, `minmax`, `zscore`) from the training inputs `x_train` (N, ...).

    Per feature for tabular data, per channel for images; a constant feature gets scale 1.
    """
    sample_shape = tuple(x_train.shape[1:])
    stats = RunningStats(sample_shape[0])
    if mode != "none":
        for part in x_train.split(chunk):
            stats.update(part)
    return stats.normalizer(mode, sample_shape)


def normalizer_from_stats(shift: Tensor, scale: Tensor, sample_shape: tuple[int, ...]) -> Normalizer:
    """A float32 Normalizer from per-channel `shift` and `scale`, guarding zero scales."""
    scale = torch.where(scale > _TINY, scale, torch.ones_like(scale))
    shape = _stat_shape(sample_shape)
    return Normalizer(shift.float().reshape(shape), scale.float().reshape(shape))
