"""`data.dataset = "custom"`: the splits a user's `data.factory` returns, made into a DataBundle.

The factory returns `(train, val, test)`, `(train, val)` or `train`; each split a pair of
tensors (or numpy arrays) `(inputs, targets)` or a `torch.utils.data.Dataset` of such pairs,
and `None` for a split to make. The splits it leaves out are held out of the training split
by `data.val_split` / `data.test_split`, seeded as for the built-in sets. Tensor splits are
normalized with statistics of the training split (when it is tensors) and batched on the
device when they fit there; Datasets are read through a DataLoader as they are (their own
transforms apply). Targets become int64 class ids (classification) or float32 columns
(regression), whatever the factory gave.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, default_collate

from nntui.config import RunConfig
from nntui.data.batches import BatchSource, LoaderBatches, TensorBatches
from nntui.data.bundle import DataBundle, DataError
from nntui.data.device_augment import DeviceAugmentedBatches
from nntui.data.prepare import Normalizer, check_validation_split, fit_normalizer, holdout_split
from nntui.engine.failures import one_line
from nntui.factories import DATA_KEY, FactoryError, call_factory

Split = Union[tuple[Tensor, Tensor], Dataset]
SPLIT_NAMES = ("train", "val", "test")
DEVICE_MEMORY_SHARE = 0.5  # tensor splits go to an accelerator whole when they take at most this much of its free memory


def build_custom_data(cfg: RunConfig, device: torch.device, say: Callable[[str], None]) -> DataBundle:
    """Call `data.factory`, complete and check its splits, and batch them on `device`."""
    try:
        returned = call_factory(cfg.data.factory, cfg.data.args, DATA_KEY)
    except FactoryError as error:
        raise DataError(str(error)) from None
    given = [_split(split, name, cfg.task) for split, name in zip(_as_split_list(returned), SPLIT_NAMES)]
    train, val, test = _complete(given, cfg)
    check_validation_split(cfg, _length(val))
    num_classes, class_names = _classes([train, val, test], cfg.task, say)
    normalizer = fit_normalizer(train[0], cfg.data.normalize) if isinstance(train, tuple) else None
    return DataBundle(
        train=_train_source(train, cfg, device, normalizer),
        val=_source(val, cfg, device, normalizer, shuffle=False),
        test=_source(test, cfg, device, normalizer, shuffle=False),
        input_shape=_input_shape(train), num_outputs=num_classes, class_names=class_names,
    )


# --------------------------------------------------------------------------- what the factory returned


def _as_split_list(returned: Any) -> list[Any]:
    """The 1 to 3 splits returned; a pair of tensors alone is the training split."""
    if isinstance(returned, (tuple, list)):
        if len(returned) == 2 and all(_is_array(item) for item in returned):
            return [tuple(returned)]
        if 1 <= len(returned) <= 3 and returned[0] is not None:
            return list(returned)
        raise DataError(f"{DATA_KEY}: returned {len(returned)} items; expected (train, val, test), (train, val) "
                        f"or train, each a Dataset or (inputs, targets) tensors")
    return [returned]


def _is_array(value: Any) -> bool:
    return isinstance(value, Tensor) or type(value).__module__ == "numpy"


def _split(value: Any, name: str, task: str) -> Split | None:
    """One split checked, tensors made float32 inputs and task-typed targets; None stays None."""
    if value is None:
        return None
    if isinstance(value, Dataset):
        return _dataset_split(value, name, task)
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_array(item) for item in value)):
        raise DataError(f"{DATA_KEY}: the {name} split is a {type(value).__name__}; expected a Dataset "
                        f"or a pair of tensors (inputs, targets)")
    inputs, targets = (torch.as_tensor(item) for item in value)
    if inputs.dim() < 2 or targets.dim() == 0 or len(inputs) != len(targets):
        raise DataError(f"{DATA_KEY}: the {name} split has inputs of shape {tuple(inputs.shape)} and "
                        f"{len(targets)} targets; expected inputs (samples, ...) and one target per sample")
    return inputs.float(), _typed_targets(targets, name, task)


def _typed_targets(targets: Tensor, name: str, task: str) -> Tensor:
    """Class ids as int64 (N,), numbers as float32 (N, 1): what the loss of the task takes."""
    if task == "regression":
        if targets.dim() > 2 or (targets.dim() == 2 and targets.shape[1] != 1) or targets.dtype == torch.bool:
            raise DataError(f"{DATA_KEY}: regression needs one number per sample; the {name} targets have "
                            f"shape {tuple(targets.shape)} and type {targets.dtype}")
        return targets.reshape(-1, 1).float()
    if targets.dim() == 2 and targets.shape[1] == 1:
        targets = targets.reshape(-1)
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool or targets.dim() != 1:
        raise DataError(f"{DATA_KEY}: classification needs integer class ids (samples,) as targets; the {name} "
                        f"targets are {targets.dtype} of shape {tuple(targets.shape)} (numbers? set task = "
                        f'"regression")')
    if len(targets) and int(targets.min()) < 0:
        raise DataError(f"{DATA_KEY}: the {name} targets have a negative class id ({int(targets.min())})")
    return targets.long()


class TypedDataset(Dataset):
    """A user's Dataset whose targets come out as the task's loss takes them (see `_typed_targets`)."""

    def __init__(self, dataset: Dataset, task: str) -> None:
        self.dataset, self.task = dataset, task

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Tensor]:
        inputs, target = self.dataset[index]
        if isinstance(inputs, Tensor) and not inputs.is_floating_point():
            inputs = inputs.float()
        if self.task == "regression":
            return inputs, torch.as_tensor(target, dtype=torch.float32).reshape(1)
        return inputs, torch.as_tensor(target).long().reshape(())


def _dataset_split(dataset: Dataset, name: str, task: str) -> Dataset:
    """A Dataset checked on its first sample: a pair (input tensor, target)."""
    try:
        size = len(dataset)  # type: ignore[arg-type]
        first = dataset[0] if size else None
    except Exception as error:  # noqa: BLE001 -- the user's Dataset: its error in one line
        raise DataError(f"{DATA_KEY}: the {name} Dataset fails to give a sample: {one_line(error)[:300]}") from None
    if first is not None:
        if not (isinstance(first, (tuple, list)) and len(first) == 2 and _is_array(first[0])):
            raise DataError(f"{DATA_KEY}: a sample of the {name} Dataset is a {type(first).__name__}; "
                            f"expected a pair (input tensor, target)")
        _typed_targets(torch.as_tensor(first[1]).reshape(1), name, task)
    return TypedDataset(dataset, task)


def _complete(given: list[Split | None], cfg: RunConfig) -> tuple[Split, Split, Split]:
    """(train, val, test), the splits not given held out of the training split (seeded)."""
    train, val, test = (given + [None, None])[:3]
    if train is None or _length(train) == 0:
        raise DataError(f"{DATA_KEY}: the training split has no samples")
    if val is not None and test is not None:
        return train, val, test
    data = cfg.data
    try:
        train_idx, val_idx, test_idx = holdout_split(_length(train), data.test_split,
                                                     0.0 if val is not None else data.val_split,
                                                     cfg.train.seed, has_test=test is not None)
    except DataError as error:
        raise DataError(f"{DATA_KEY}: the training split: {error}") from None
    return (_subset(train, train_idx), val if val is not None else _subset(train, val_idx),
            test if test is not None else _subset(train, test_idx))


def _subset(split: Split, indices: Tensor) -> Split:
    if isinstance(split, tuple):
        return split[0][indices], split[1][indices]
    return Subset(split, indices.tolist())


def _length(split: Split) -> int:
    return len(split[0]) if isinstance(split, tuple) else len(split)  # type: ignore[arg-type]


def _classes(splits: list[Split], task: str, say: Callable[[str], None]) -> tuple[int, tuple[str, ...]]:
    """(number of outputs, class names): the classes are 0 .. the largest id in any split."""
    if task == "regression":
        return 1, ()
    largest = max(_largest_class(split, say) for split in splits)
    names = _declared_names(splits[0])
    if names is None or len(names) <= largest:
        names = tuple(str(index) for index in range(largest + 1))
    return len(names), names


def _largest_class(split: Split, say: Callable[[str], None]) -> int:
    if isinstance(split, tuple):
        return int(split[1].max()) if len(split[1]) else -1
    targets = _declared_targets(split)
    if targets is None:
        say(f"custom data: reading the targets of {len(split)} samples")  # type: ignore[arg-type]
        try:
            targets = torch.stack([split[index][1] for index in range(len(split))])  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 -- the user's Dataset: its error in one line
            raise DataError(f"{DATA_KEY}: reading the targets of a Dataset: {one_line(error)[:300]}") from None
    return int(targets.max()) if len(targets) else -1


def _declared_targets(split: Dataset) -> Tensor | None:
    """The targets a Dataset declares (`targets`, as torchvision's; a TensorDataset's tensors), if any."""
    dataset, indices = split, None
    while isinstance(dataset, (Subset, TypedDataset)):
        if isinstance(dataset, Subset):
            indices = [dataset.indices[i] for i in indices] if indices is not None else list(dataset.indices)
        dataset = dataset.dataset
    declared = getattr(dataset, "targets", None)
    tensors = getattr(dataset, "tensors", None)
    if declared is None and isinstance(tensors, tuple) and len(tensors) == 2:
        declared = tensors[1]
    if declared is None:
        return None
    try:
        targets = torch.as_tensor(declared).reshape(-1).long()
        return targets[indices] if indices is not None else targets
    except (TypeError, ValueError, RuntimeError, IndexError):  # not class ids: read them sample by sample
        return None


def _declared_names(split: Split) -> tuple[str, ...] | None:
    dataset = split
    while isinstance(dataset, (Subset, TypedDataset)):
        dataset = dataset.dataset
    classes = getattr(dataset, "classes", None)
    return tuple(str(name) for name in classes) if isinstance(classes, (list, tuple)) else None


def _input_shape(train: Split) -> tuple[int, ...]:
    if isinstance(train, tuple):
        return tuple(train[0].shape[1:])
    first = train[0] if len(train) else None  # type: ignore[arg-type]
    return tuple(torch.as_tensor(first[0]).shape) if first is not None else ()


# --------------------------------------------------------------------------- batches on the device


def _train_source(train: Split, cfg: RunConfig, device: torch.device, normalizer: Normalizer | None) -> BatchSource:
    data = cfg.data
    if not data.augment.active:
        return _source(train, cfg, device, normalizer, shuffle=True)
    if not (isinstance(train, tuple) and train[0].dim() == 4):
        raise DataError(f"data.augment: needs the training split as image tensors (N, C, H, W); a Dataset "
                        f"applies its own transforms (the custom data's training split: {_described(train)})")
    from nntui.data import augmented_training

    inputs, targets = train
    return augmented_training(inputs, targets, cfg, device,
                              normalizer or Normalizer.identity(tuple(inputs.shape[1:])))


def _source(split: Split, cfg: RunConfig, device: torch.device, normalizer: Normalizer | None,
            shuffle: bool) -> BatchSource:
    """A tensor split on the device when it fits there, else (and a Dataset always) through a DataLoader."""
    from nntui.data import EVAL_BATCH_SIZE, _normalized_on

    data, seed = cfg.data, cfg.train.seed
    batch_size = data.batch_size if shuffle else max(data.batch_size, EVAL_BATCH_SIZE)
    if not isinstance(split, tuple):
        return LoaderBatches(split, batch_size, shuffle, seed, device, data.num_workers)
    inputs, targets = split
    normalizer = normalizer or Normalizer.identity(tuple(inputs.shape[1:]))
    if _fits_on(device, inputs.nbytes + targets.nbytes):
        return TensorBatches(_normalized_on(device, inputs, normalizer), targets.to(device), batch_size, shuffle, seed)
    from nntui.data.vision import AugmentedTensors

    dataset = AugmentedTensors(inputs, targets, _unchanged, normalizer)
    return LoaderBatches(dataset, batch_size, shuffle, seed, device, data.num_workers)


def _unchanged(sample: Tensor) -> Tensor:
    return sample


def _fits_on(device: torch.device, nbytes: int) -> bool:
    """Whether a split of `nbytes` may live on `device` (the CPU holds it already)."""
    if device.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= free * DEVICE_MEMORY_SHARE


def _described(split: Split) -> str:
    return f"tensors of shape {tuple(split[0].shape)}" if isinstance(split, tuple) else type(split).__name__


def sample_batch(source: BatchSource, count: int = 8) -> tuple[Tensor, Tensor]:
    """The first `count` samples of a split as a batch on its device, read without an epoch's shuffle."""
    if isinstance(source, TensorBatches):
        return source.x[:count], source.y[:count]
    if isinstance(source, DeviceAugmentedBatches):  # raw images on the device: normalized as a batch is
        return (source.x[:count] - source.shift) / source.scale, source.y[:count]
    assert isinstance(source, LoaderBatches)
    dataset = source.loader.dataset
    with torch.random.fork_rng(devices=[]):  # random transforms must not move the run's seeded stream
        inputs, targets = default_collate([dataset[index] for index in range(min(count, source.num_samples))])
    return inputs.to(source.device), targets.to(source.device)
