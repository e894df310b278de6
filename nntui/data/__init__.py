"""Data sets -> DataBundle: seeded splits, train-only normalization, batches on the device.

`build_data` is the one entry point. scikit-learn data sets and CSV files never import
torchvision; the torchvision data sets do, inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from nntui.config import RunConfig
from nntui.data.batches import BatchSource, LoaderBatches, TensorBatches, epoch_permutation
from nntui.data.bundle import DataBundle, DataError
from nntui.data.device_augment import DeviceAugmentedBatches, augments_on_device
from nntui.data.prepare import Normalizer, RawData, check_validation_split, fit_normalizer, holdout_split

__all__ = [
    "BatchSource", "DataBundle", "DataError", "DeviceAugmentedBatches", "LoaderBatches", "TensorBatches",
    "build_data", "epoch_permutation",
]

IN_MEMORY_DATASETS = ("digits", "diabetes")  # scikit-learn's own: they load in a blink, nothing to say


def build_data(cfg: RunConfig, device: torch.device, data_dir: Path,
               progress: Callable[[str], None] | None = None) -> DataBundle:
    """Load `cfg.data.dataset`, split it (seeded by `cfg.train.seed`), normalize and batch it.

    `data_dir` holds the torchvision downloads; `progress` receives one-line status messages.
    Raises DataError (one line) for anything the user has to fix; the configuration itself
    (task, data set and monitors fit each other) was checked when it was validated.
    """
    say = progress or (lambda message: None)
    if cfg.data.dataset == "custom":
        from nntui.data.custom import build_custom_data

        return build_custom_data(cfg, device, say)
    if cfg.data.dataset == "image-folder":
        from nntui.data.vision import build_image_folder

        return build_image_folder(cfg, device, say)
    if cfg.data.dataset not in IN_MEMORY_DATASETS:
        say(f"{cfg.data.dataset}: loading")
    raw = _load_raw(cfg, Path(data_dir).expanduser(), say)
    return _bundle_from_raw(raw, cfg, device)


def _load_raw(cfg: RunConfig, data_dir: Path, say: Callable[[str], None]) -> RawData:
    from nntui.data import tabular

    dataset = cfg.data.dataset
    if dataset == "digits":
        return tabular.load_digits()
    if dataset == "diabetes":
        return tabular.load_diabetes()
    if dataset == "csv":
        return tabular.load_csv(cfg.data.path, cfg.data.target, cfg.task)
    from nntui.data import vision

    if dataset in ("mnist", "fashion-mnist"):
        return vision.load_mnist(data_dir, fashion=dataset == "fashion-mnist", progress=say)
    if dataset == "cifar10":
        return vision.load_cifar10(data_dir, progress=say)
    raise DataError(f"data.dataset: unknown data set {dataset!r}")


EVAL_BATCH_SIZE = 512


def _bundle_from_raw(raw: RawData, cfg: RunConfig, device: torch.device) -> DataBundle:
    data, seed = cfg.data, cfg.train.seed
    has_test = raw.x_test is not None and raw.y_test is not None
    train_idx, val_idx, test_idx = holdout_split(len(raw.x), data.test_split, data.val_split, seed, has_test)
    check_validation_split(cfg, len(val_idx))
    x_train, y_train = raw.x[train_idx], raw.y[train_idx]
    x_test, y_test = (raw.x_test, raw.y_test) if has_test else (raw.x[test_idx], raw.y[test_idx])
    normalizer = fit_normalizer(x_train, data.normalize)

    def on_device(x: Tensor, y: Tensor, shuffle: bool) -> TensorBatches:
        # evaluation needs no gradients: bigger batches, fewer launches
        batch_size = data.batch_size if shuffle else max(data.batch_size, EVAL_BATCH_SIZE)
        return TensorBatches(_normalized_on(device, x, normalizer), y.to(device), batch_size, shuffle, seed)

    if data.augment.active:
        train: BatchSource = augmented_training(x_train, y_train, cfg, device, normalizer)
    else:
        train = on_device(x_train, y_train, shuffle=True)
    num_outputs = len(raw.class_names) if raw.class_names else 1
    return DataBundle(
        train=train,
        val=on_device(raw.x[val_idx], raw.y[val_idx], shuffle=False),
        test=on_device(x_test, y_test, shuffle=False),  # type: ignore[arg-type]
        input_shape=tuple(raw.x.shape[1:]), num_outputs=num_outputs, class_names=raw.class_names,
    )


def augmented_training(x_train: Tensor, y_train: Tensor, cfg: RunConfig, device: torch.device,
                       normalizer: Normalizer) -> BatchSource:
    """The training batches of in-memory images with `data.augment` on, for built-in and custom
    data alike: warped a whole batch at a time on the device where `data.augment.on` allows it,
    else sample by sample in DataLoader workers."""
    data, seed = cfg.data, cfg.train.seed
    if augments_on_device(data.augment.on, x_train, device):
        return DeviceAugmentedBatches(x_train.to(device), y_train.to(device), data.augment, normalizer,
                                      data.batch_size, seed)
    from nntui.data.vision import AugmentedTensors, augment_transform

    dataset = AugmentedTensors(x_train, y_train, augment_transform(data.augment), normalizer)
    return LoaderBatches(dataset, data.batch_size, True, seed, device, data.num_workers, augmented=True)


def _normalized_on(device: torch.device, x: Tensor, normalizer: Normalizer) -> Tensor:
    # normalize after the copy: on a GPU that is faster and spares host memory
    x = x.to(device)
    return ((x - normalizer.shift.to(device)) / normalizer.scale.to(device)).contiguous()
