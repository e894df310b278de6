"""Image data sets from torchvision (MNIST, Fashion-MNIST, CIFAR-10, image folders) and augmentation.

torchvision is imported inside the functions that need it: importing it takes seconds,
and the scikit-learn data sets must not pay for it.
"""

from __future__ import annotations

import gzip
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from nntui.config import AugmentConfig, RunConfig
from nntui.data.batches import LoaderBatches
from nntui.data.bundle import DataBundle, DataError
from nntui.data.prepare import Normalizer, RawData, RunningStats, check_validation_split, holdout_split

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
STATS_SAMPLE_CAP = 10_000  # image folders: normalization statistics from at most this many training images

Progress = Callable[[str], None]


def load_mnist(data_dir: Path, fashion: bool, progress: Progress) -> RawData:
    """MNIST or Fashion-MNIST (official splits) as (N, 1, 28, 28) images in [0, 1]."""
    from torchvision import datasets

    dataset_class = datasets.FashionMNIST if fashion else datasets.MNIST
    name = "fashion-mnist" if fashion else "mnist"
    raw_folder = data_dir / dataset_class.__name__ / "raw"
    _gunzip_missing(raw_folder, MNIST_FILES)
    missing = any(not (raw_folder / file).is_file() for file in MNIST_FILES)
    hint = f"put {', '.join(file + '(.gz)' for file in MNIST_FILES)} there"
    train, test = (_open_torchvision(dataset_class, data_dir, split, name, missing, raw_folder, hint, progress)
                   for split in (True, False))
    class_names = tuple(train.classes) if fashion else tuple(str(digit) for digit in range(10))
    return RawData(
        train.data.unsqueeze(1).float().div_(255.0), train.targets.long(), class_names, is_image=True,
        x_test=test.data.unsqueeze(1).float().div_(255.0), y_test=test.targets.long(),
    )


def load_cifar10(data_dir: Path, progress: Progress) -> RawData:
    """CIFAR-10 (official splits) as (N, 3, 32, 32) images in [0, 1]."""
    from torchvision import datasets

    folder = data_dir / CIFAR_FOLDER
    missing = any(not (folder / file).is_file() for file in CIFAR_FILES)
    hint = f"put {CIFAR_ARCHIVE} in {data_dir} (or its extracted {CIFAR_FOLDER} folder)"
    train, test = (_open_torchvision(datasets.CIFAR10, data_dir, split, "cifar10", missing, folder, hint, progress)
                   for split in (True, False))
    return RawData(
        _hwc_to_float(train.data), torch.tensor(train.targets, dtype=torch.int64), tuple(train.classes),
        is_image=True, x_test=_hwc_to_float(test.data), y_test=torch.tensor(test.targets, dtype=torch.int64),
    )


def _hwc_to_float(images: Any) -> Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float().div_(255.0)


DOWNLOAD_TIMEOUT_S = 30.0


def _open_torchvision(dataset_class: Any, root: Path, train: bool, name: str, missing: bool,
                      where: Path, hint: str, progress: Progress) -> Any:
    """A torchvision data set; downloads it when files are missing, a one-line DataError on failure."""
    if not missing:
        try:
            return dataset_class(str(root), train=train, download=False)
        except Exception as error:  # corrupt or truncated files: any reader error means the same to the user
            raise DataError(f"{name}: cannot read the files in {where} ({_reason(error)})") from None
    progress(f"{name}: downloading to {root}")
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a network that drops packets must not hang the run
    try:
        return dataset_class(str(root), train=train, download=True)
    except Exception as error:  # offline, proxy, disk full...: the user needs the same instructions
        raise DataError(f"{name}: not found in {where} and the download failed ({_reason(error)}); {hint}") from None
    finally:
        socket.setdefaulttimeout(previous_timeout)


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _gunzip_missing(folder: Path, names: tuple[str, ...]) -> None:
    """Unpack `NAME.gz` next to it when only the compressed file was put there."""
    for name in names:
        packed, plain = folder / f"{name}.gz", folder / name
        if packed.is_file() and not plain.exists():
            try:
                with gzip.open(packed, "rb") as source, open(plain, "wb") as target:
                    shutil.copyfileobj(source, target)
            except (OSError, EOFError):
                # a truncated archive (an interrupted download): leave it to torchvision's download
                plain.unlink(missing_ok=True)


# --------------------------------------------------------------------------- augmentation


def augment_transform(augment: AugmentConfig) -> Callable[[Tensor], Tensor]:
    """RandomAffine (rotation, translation, zoom, shear) and RandomHorizontalFlip, torchvision v2.

    The per-sample path (DataLoader workers). `device_augment` draws the same parameters and warps
    whole batches the same way (bilinear, fill 0): a change here must be made there too.
    """
    from torchvision.transforms import v2

    steps: list[Any] = []
    zoom = tuple(augment.zoom) if tuple(augment.zoom) != (1.0, 1.0) else None
    if augment.warps:
        steps.append(v2.RandomAffine(
            degrees=augment.rotation,
            translate=(augment.translate, augment.translate) if augment.translate else None,
            scale=zoom,
            shear=augment.shear or None,
            interpolation=v2.InterpolationMode.BILINEAR,
        ))
    if augment.hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


class AugmentedTensors(Dataset):
    """In-memory images (N, C, H, W) in [0, 1], augmented then normalized one sample at a time."""

    def __init__(self, x: Tensor, y: Tensor, augment: Callable[[Tensor], Tensor], normalizer: Normalizer) -> None:
        self.x, self.y, self.augment, self.normalizer = x, y, augment, normalizer

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.normalizer(self.augment(self.x[index])), self.y[index]


# --------------------------------------------------------------------------- image folders


class ImageFiles(Dataset):
    """Image files as RGB float tensors of one size, optionally augmented, then normalized."""

    def __init__(self, samples: list[tuple[str, int]], size: tuple[int, int],
                 augment: Callable[[Tensor], Tensor] | None, normalizer: Normalizer) -> None:
        self.samples, self.size, self.augment, self.normalizer = samples, size, augment, normalizer

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        image = read_image(path)
        if tuple(image.shape[-2:]) != self.size:
            from torchvision.transforms.v2 import functional

            image = functional.resize(image, list(self.size), antialias=True)
        if self.augment is not None:
            image = self.augment(image)
        return self.normalizer(image), label


def read_image(path: str) -> Tensor:
    """An image file as a (3, H, W) float tensor in [0, 1]."""
    from PIL import Image
    from torchvision.transforms.v2 import functional

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    return functional.to_dtype(functional.pil_to_tensor(rgb), torch.float32, scale=True)


def build_image_folder(cfg: RunConfig, device: torch.device, progress: Progress) -> DataBundle:
    """`data.path` with `train/` and `test/` subfolders, or one folder split by `test_split`.

    Every image is resized to the size of the first training image.
    """
    data, seed = cfg.data, cfg.train.seed
    root = Path(data.path).expanduser()
    if not root.is_dir():
        raise DataError(f"image-folder {root}: no such folder")
    progress(f"image-folder: indexing {root}")
    has_test = (root / "train").is_dir() and (root / "test").is_dir()
    samples, classes = _index_folder(root / "train" if has_test else root)
    train_idx, val_idx, test_idx = holdout_split(len(samples), data.test_split, data.val_split, seed, has_test)
    check_validation_split(cfg, len(val_idx))
    if has_test:
        test_samples, test_classes = _index_folder(root / "test")
        if test_classes != classes:
            raise DataError(f"image-folder {root}: train/ has classes {classes}, test/ has {test_classes}")
    else:
        test_samples = [samples[i] for i in test_idx.tolist()]
    train_samples = [samples[i] for i in train_idx.tolist()]
    progress("image-folder: normalization statistics")
    try:
        size = tuple(read_image(train_samples[0][0]).shape[-2:])
        normalizer = _folder_normalizer(train_samples, size, data.normalize, data.num_workers)
    except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"image-folder {root}: cannot read an image ({_reason(error)})") from None
    augment = augment_transform(data.augment) if data.augment.active else None

    def source(split: list[tuple[str, int]], shuffle: bool, transform: Any = None) -> LoaderBatches:
        dataset = ImageFiles(split, size, transform, normalizer)  # type: ignore[arg-type]
        return LoaderBatches(dataset, data.batch_size, shuffle, seed, device, data.num_workers,
                             augmented=transform is not None)

    return DataBundle(
        train=source(train_samples, True, augment),
        val=source([samples[i] for i in val_idx.tolist()], False),
        test=source(test_samples, False),
        input_shape=(3, *size), num_outputs=len(classes), class_names=tuple(classes),
    )


def _index_folder(folder: Path) -> tuple[list[tuple[str, int]], list[str]]:
    from torchvision.datasets import ImageFolder

    try:
        found = ImageFolder(str(folder))
    except (FileNotFoundError, OSError) as error:
        raise DataError(f"image-folder {folder}: {_reason(error)} (expected one subfolder of images per class)") from None
    if len(found.classes) < 2:
        raise DataError(f"image-folder {folder}: found one class {found.classes}; classification needs 2 or more")
    return list(found.samples), list(found.classes)


def _folder_normalizer(samples: list[tuple[str, int]], size: tuple[int, ...], mode: str,
                       num_workers: int) -> Normalizer:
    sample_shape = (3, *size)
    if mode == "none":
        return Normalizer.identity(sample_shape)
    step = max(1, len(samples) // STATS_SAMPLE_CAP)
    subset = ImageFiles(samples[::step], size, None, Normalizer.identity(sample_shape))  # type: ignore[arg-type]
    stats = RunningStats(3)
    for images, _labels in DataLoader(subset, batch_size=256, num_workers=num_workers):
        stats.update(images)
    return stats.normalizer(mode, sample_shape)
