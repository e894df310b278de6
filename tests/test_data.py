"""Data sets -> DataBundle: shapes, seeded splits, train-only normalization, batch order, loaders."""

from __future__ import annotations

import gzip
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nntui.config import RunConfig
from nntui.data import (
    EVAL_BATCH_SIZE,
    DataBundle,
    DataError,
    DeviceAugmentedBatches,
    LoaderBatches,
    TensorBatches,
    build_data,
    epoch_permutation,
)
from nntui.data.prepare import fit_normalizer, holdout_split

CPU = torch.device("cpu")


def make_cfg(task: str = "classification", seed: int = 0, **data) -> RunConfig:
    return RunConfig.model_validate({"task": task, "data": data, "train": {"seed": seed}})


def build(tmp_path: Path, task: str = "classification", seed: int = 0, **data) -> DataBundle:
    return build_data(make_cfg(task, seed, **data), CPU, tmp_path)


def all_batches(source, epoch: int = 1, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*source.batches(epoch, start))
    return torch.cat(xs), torch.cat(ys)


# --------------------------------------------------------------------------- scikit-learn data sets


def test_digits_shapes_sizes_and_batches(tmp_path):
    bundle = build(tmp_path, dataset="digits", val_split=0.2, test_split=0.25, batch_size=50)
    sizes = (bundle.train.num_samples, bundle.val.num_samples, bundle.test.num_samples)
    assert sum(sizes) == 1797
    assert sizes[2] == round(1797 * 0.25) and sizes[1] == round((1797 - sizes[2]) * 0.2)
    assert bundle.input_shape == (1, 8, 8) and bundle.num_outputs == 10
    assert bundle.class_names == tuple(str(digit) for digit in range(10))
    assert isinstance(bundle.train, TensorBatches)
    assert len(bundle.train) == math.ceil(sizes[0] / 50) and len(bundle.val) == math.ceil(sizes[1] / max(50, EVAL_BATCH_SIZE))
    x, y = next(bundle.train.batches(1))
    assert x.shape == (50, 1, 8, 8) and x.dtype == torch.float32 and x.device == CPU
    assert y.shape == (50,) and y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) <= 9
    x_all, y_all = all_batches(bundle.train)
    assert x_all.shape[0] == sizes[0] and set(y_all.tolist()) == set(range(10))


def test_diabetes_is_regression_in_raw_units(tmp_path):
    bundle = build(tmp_path, "regression", dataset="diabetes", val_split=0.2, test_split=0.2, normalize="none")
    assert bundle.input_shape == (10,) and bundle.num_outputs == 1 and bundle.class_names == ()
    assert bundle.train.num_samples + bundle.val.num_samples + bundle.test.num_samples == 442
    x, y = all_batches(bundle.train)
    assert x.shape[1:] == (10,) and y.shape == (bundle.train.num_samples, 1) and y.dtype == torch.float32
    assert 20 < float(y.min()) and float(y.max()) < 400  # disease progression, not standardized
    assert float(x[:, 0].max()) > 10  # age in years: features are raw before our own normalization


@pytest.mark.parametrize("task, data, pattern", [
    ("classification", {"dataset": "diabetes"}, "task: diabetes is a regression data set"),
    ("regression", {"dataset": "digits"}, "task: digits is a classification data set"),
    ("regression", {"dataset": "mnist"}, "task: mnist is a classification data set"),
    ("regression", {"dataset": "diabetes", "augment": {"hflip": True}}, "data.augment: diabetes is not an image"),
])
def test_a_task_or_augmentation_that_does_not_fit_the_data_set_is_refused_with_the_config(task, data, pattern):
    from nntui.config import ConfigError, validate

    with pytest.raises(ConfigError, match=pattern) as caught:  # before any data is loaded
        validate({"task": task, "data": data}, "preset.toml")
    assert "\n" not in str(caught.value)


def test_splits_are_disjoint_and_seeded():
    train, val, test = holdout_split(100, 0.2, 0.25, seed=7, has_test=False)
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(100))
    again = holdout_split(100, 0.2, 0.25, seed=7, has_test=False)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again))
    other = holdout_split(100, 0.2, 0.25, seed=8, has_test=False)
    assert not torch.equal(test, other[2])
    train, val, test = holdout_split(50, 0.2, 0.2, seed=7, has_test=True)
    assert (len(train), len(val), len(test)) == (40, 10, 0)


def test_same_seed_same_split_of_digits(tmp_path):
    first = build(tmp_path, dataset="digits", seed=3)
    second = build(tmp_path, dataset="digits", seed=3)
    third = build(tmp_path, dataset="digits", seed=4)
    assert torch.equal(first.test.x, second.test.x) and torch.equal(first.val.y, second.val.y)
    assert first.test.x.shape == third.test.x.shape and not torch.equal(first.test.x, third.test.x)


def test_too_small_training_part_is_a_data_error():
    with pytest.raises(DataError, match="no training samples"):
        holdout_split(3, 0.5, 0.9, seed=0, has_test=False)


# --------------------------------------------------------------------------- normalization


@pytest.mark.parametrize("dataset, task, dims", [("diabetes", "regression", (0,)), ("digits", "classification", (0, 2, 3))])
def test_zscore_statistics_come_from_the_training_split_only(tmp_path, dataset, task, dims):
    raw = build(tmp_path, task, seed=5, dataset=dataset, normalize="none")
    scaled = build(tmp_path, task, seed=5, dataset=dataset, normalize="zscore")
    x_train = raw.train.x.double()
    mean = x_train.mean(dim=dims, keepdim=True)[0]
    std = x_train.std(dim=dims, keepdim=True, correction=0)[0]
    std = torch.where(std > 0, std, torch.ones_like(std))
    for raw_split, scaled_split in ((raw.train, scaled.train), (raw.val, scaled.val), (raw.test, scaled.test)):
        expected = ((raw_split.x.double() - mean) / std).float()
        assert torch.allclose(scaled_split.x, expected, atol=1e-4)
    # statistics over all samples would give other numbers: the check above can tell them apart
    everything = torch.cat([raw.train.x, raw.val.x, raw.test.x]).double()
    leaky_mean = everything.mean(dim=dims, keepdim=True)[0]
    leaky_std = everything.std(dim=dims, keepdim=True, correction=0)[0]
    leaky_std = torch.where(leaky_std > 0, leaky_std, torch.ones_like(leaky_std))
    assert not torch.allclose(scaled.val.x, ((raw.val.x.double() - leaky_mean) / leaky_std).float(), atol=1e-4)


def test_minmax_maps_the_training_split_to_zero_one(tmp_path):
    bundle = build(tmp_path, "regression", dataset="diabetes", normalize="minmax")
    x = bundle.train.x
    assert torch.allclose(x.amin(dim=0), torch.zeros(10), atol=1e-6)
    assert torch.allclose(x.amax(dim=0), torch.ones(10), atol=1e-6)
    assert float(bundle.val.x.min()) != 0.0 or float(bundle.val.x.max()) != 1.0


def test_normalizer_guards_constant_features_and_merges_chunks_exactly():
    x = torch.randn(1001, 3, dtype=torch.float64) * 0.01 + 1e4
    x[:, 1] = 5.0
    zscore = fit_normalizer(x.float(), "zscore", chunk=64)
    assert torch.allclose(zscore.shift.double(), x.mean(dim=0), rtol=1e-6)
    assert torch.allclose(zscore.scale[[0, 2]].double(), x.std(dim=0, correction=0)[[0, 2]], rtol=1e-2)
    assert float(zscore.scale[1]) == 1.0
    assert torch.isfinite(zscore(x.float())).all()
    minmax = fit_normalizer(x.float(), "minmax", chunk=100)
    assert float(minmax.scale[1]) == 1.0 and torch.isfinite(minmax(x.float())).all()


# --------------------------------------------------------------------------- batch order


def test_epoch_permutation_depends_on_seed_and_epoch_only():
    assert torch.equal(epoch_permutation(1, 2, 50), epoch_permutation(1, 2, 50))
    assert not torch.equal(epoch_permutation(1, 2, 50), epoch_permutation(1, 3, 50))
    assert not torch.equal(epoch_permutation(1, 2, 50), epoch_permutation(2, 2, 50))
    assert sorted(epoch_permutation(1, 2, 50).tolist()) == list(range(50))


def test_tensor_batches_follow_the_epoch_permutation_and_skip_with_start():
    x = torch.arange(70, dtype=torch.float32).unsqueeze(1)
    source = TensorBatches(x, torch.arange(70), batch_size=16, shuffle=True, seed=9)
    _, order = all_batches(source, epoch=4)
    assert torch.equal(order, epoch_permutation(9, 4, 70))
    full = list(source.batches(4))
    resumed = list(source.batches(4, start=2))
    assert len(full) == len(source) == 5 and len(resumed) == 3
    assert all(torch.equal(a[1], b[1]) for a, b in zip(full[2:], resumed))
    assert not torch.equal(all_batches(source, epoch=5)[1], order)


def test_eval_batches_keep_order_and_a_lone_last_training_sample_joins_the_batch_before():
    x, y = torch.zeros(65, 2), torch.arange(65)
    evaluation = TensorBatches(x, y, batch_size=16, shuffle=False)
    assert len(evaluation) == 5 and torch.equal(all_batches(evaluation, epoch=7)[1], y)
    training = TensorBatches(x, y, batch_size=16, shuffle=True)
    sizes = [len(batch_y) for _, batch_y in training.batches(1)]
    assert len(training) == 4 and sizes == [16, 16, 16, 17]


class CountingDataset(torch.utils.data.Dataset):
    def __init__(self, size: int) -> None:
        self.size, self.loaded = size, []

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        self.loaded.append(index)
        return torch.tensor([float(index)]), index


def test_loader_batches_use_the_same_order_and_do_not_load_skipped_batches():
    dataset = CountingDataset(30)
    source = LoaderBatches(dataset, batch_size=8, shuffle=True, seed=2, device=CPU)
    resumed = list(source.batches(3, start=2))
    expected = epoch_permutation(2, 3, 30)[16:].tolist()
    assert torch.cat([y for _, y in resumed]).tolist() == expected
    assert sorted(dataset.loaded) == sorted(expected)
    assert len(source) == 4
    ordered = LoaderBatches(CountingDataset(30), batch_size=8, shuffle=False, seed=2, device=CPU)
    assert torch.cat([y for _, y in ordered.batches(1)]).tolist() == list(range(30))


# --------------------------------------------------------------------------- torchvision data sets


def write_idx(folder: Path, split: str, count: int, seed: int, compress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    files = {f"{split}-images-idx3-ubyte": struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes(),
             f"{split}-labels-idx1-ubyte": struct.pack(">II", 2049, count) + labels.tobytes()}
    for name, payload in files.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)
    return images, labels


@pytest.mark.parametrize("dataset, folder, compress", [("mnist", "MNIST", False), ("fashion-mnist", "FashionMNIST", True)])
def test_mnist_reads_idx_files_offline(tmp_path, dataset, folder, compress):
    raw = tmp_path / folder / "raw"
    write_idx(raw, "train", 30, seed=1, compress=compress)
    test_images, test_labels = write_idx(raw, "t10k", 10, seed=2, compress=compress)
    bundle = build_data(make_cfg(dataset=dataset, val_split=0.2, normalize="none", batch_size=8), CPU, tmp_path)
    assert (bundle.train.num_samples, bundle.val.num_samples, bundle.test.num_samples) == (24, 6, 10)
    assert bundle.input_shape == (1, 28, 28) and bundle.num_outputs == 10 and len(bundle.class_names) == 10
    x, y = all_batches(bundle.test)
    assert torch.allclose(x, torch.from_numpy(test_images).float().unsqueeze(1) / 255.0)
    assert y.tolist() == test_labels.tolist()


def test_missing_mnist_files_give_one_line_with_where_to_put_them(tmp_path, monkeypatch):
    import torchvision

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirror, got:\n<urlopen error offline>\n")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    messages: list[str] = []
    with pytest.raises(DataError) as caught:
        build_data(make_cfg(dataset="mnist"), CPU, tmp_path, progress=messages.append)
    message = str(caught.value)
    assert "\n" not in message and "urlopen error offline" in message
    assert str(tmp_path / "MNIST" / "raw") in message and "t10k-labels-idx1-ubyte(.gz)" in message
    assert any("downloading" in line for line in messages)


def test_missing_cifar_files_name_the_archive(tmp_path, monkeypatch):
    import torchvision

    def offline(self):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)
    with pytest.raises(DataError) as caught:
        build_data(make_cfg(dataset="cifar10"), CPU, tmp_path)
    assert "\n" not in str(caught.value) and "cifar-10-python.tar.gz" in str(caught.value)
    assert "no network" in str(caught.value)


def test_corrupt_mnist_files_are_a_data_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", 5, seed=1)
    write_idx(raw, "t10k", 5, seed=1)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match="cannot read") as caught:
        build_data(make_cfg(dataset="mnist"), CPU, tmp_path)
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- csv


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_csv_classification_maps_sorted_classes(tmp_path):
    rows = ["a,b,species,c"] + [f"{i},{i * 2},{['virginica', 'setosa', 'versicolor'][i % 3]},{i % 4}" for i in range(30)]
    path = write_csv(tmp_path / "iris.csv", rows)
    bundle = build(tmp_path, dataset="csv", path=str(path), target="species", val_split=0.2, test_split=0.2,
                   normalize="none")
    assert bundle.class_names == ("setosa", "versicolor", "virginica") and bundle.num_outputs == 3
    assert bundle.input_shape == (3,)
    x, y = all_batches(bundle.train)
    # column a is i, species index follows i % 3: virginica(0)->2, setosa(1)->0, versicolor(2)->1
    assert y.tolist() == [[2, 0, 1][int(a) % 3] for a in x[:, 0].tolist()]
    assert torch.equal(x[:, 1], x[:, 0] * 2)


def test_csv_regression_uses_the_last_column_and_numeric_classes_sort_by_value(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["x1;x2;y"] + [f"{i};{i % 5};{i * 1.5}" for i in range(20)])
    bundle = build(tmp_path, "regression", dataset="csv", path=str(path), normalize="none", test_split=0.0)
    x, y = all_batches(bundle.train)
    assert bundle.input_shape == (2,) and bundle.num_outputs == 1 and y.shape[1] == 1
    assert torch.allclose(y[:, 0], x[:, 0] * 1.5)
    classes = write_csv(tmp_path / "c.csv", ["f,label"] + [f"{i},{[10, 2, 33][i % 3]}" for i in range(12)])
    assert build(tmp_path, dataset="csv", path=str(classes)).class_names == ("2", "10", "33")


@pytest.mark.parametrize("task, rows, target, pattern", [
    # a bad cell is named by its file line (the header is line 1) and its column
    ("classification", ["a,b", "1,2", "x,3", "4,5"], "", "bad.csv: line 3, column 'a': 'x' is not a number$"),
    ("classification", ["a,b,c", "1,2,0", "", "3,inf,1", "4,5,0"], "", "line 4, column 'b': 'inf' is not a finite number"),
    ("classification", ["a,b", "1,2", "3,4"], "nope", "no column 'nope'; columns: a, b"),
    ("classification", ["a,b", "1,2", "3"], "", "line 3 has 1 cells, expected 2"),
    ("classification", ["a,b", "1,2", "3,2"], "", "single class"),
    # a target that does not fit the task
    ("regression", ["a,y", "1,2.5", "2,3", "3,cat"], "", "line 4, target column 'y': 'cat' is not a number; task regression"),
    ("classification", ["a,y", "1,2", "2,0.37", "3,1"], "", "line 3, target column 'y': '0.37' is not a class label"),
    ("classification", ["a,y"] + [f"{i},{100 + 7 * i}" for i in range(40)], "",
     "target column 'y' has 40 different numbers in 40 rows; task classification needs class labels"),
])
def test_bad_csv_files_are_one_line_errors(tmp_path, task, rows, target, pattern):
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError, match=pattern) as caught:
        build(tmp_path, task, dataset="csv", path=str(path), target=target)
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match="missing.csv: no such file"):
        build(tmp_path, dataset="csv", path=str(tmp_path / "missing.csv"))


def test_only_data_sets_that_may_load_slowly_give_a_loading_note(tmp_path):
    path = write_csv(tmp_path / "c.csv", ["f,label"] + [f"{i},{i % 2}" for i in range(10)])
    notes: list[str] = []
    build_data(make_cfg(dataset="digits"), CPU, tmp_path, progress=notes.append)
    build_data(make_cfg("regression", dataset="diabetes"), CPU, tmp_path, progress=notes.append)
    assert notes == []
    build_data(make_cfg(dataset="csv", path=str(path)), CPU, tmp_path, progress=notes.append)
    assert notes == ["csv: loading"]


def test_csv_class_labels_that_are_whole_numbers_written_as_floats_are_classes(tmp_path):
    path = write_csv(tmp_path / "c.csv", ["f,label"] + [f"{i},{float(i % 2)}" for i in range(10)])
    assert build(tmp_path, dataset="csv", path=str(path)).class_names == ("0.0", "1.0")
    many = write_csv(tmp_path / "m.csv", ["f,label"] + [f"{i},{i % 30}" for i in range(60)])  # 2 rows a class
    assert len(build(tmp_path, dataset="csv", path=str(many), val_split=0, test_split=0).class_names) == 30
    names = write_csv(tmp_path / "n.csv", ["f,label"] + [f"{i},person{i}" for i in range(40)])  # names: any number
    assert len(build(tmp_path, dataset="csv", path=str(names), val_split=0, test_split=0).class_names) == 40


def test_a_validation_split_that_rounds_to_no_sample_is_refused_when_a_monitor_needs_it(tmp_path):
    path = write_csv(tmp_path / "tiny.csv", ["a,y", "1,0", "2,1", "3,0", "4,1"])
    common = dict(dataset="csv", path=str(path), val_split=0.1, test_split=0.0)
    bundle = build(tmp_path, **common)  # nothing monitors val_loss: an empty validation split is fine
    assert bundle.val.num_samples == 0
    cfg = RunConfig.model_validate({"data": common, "early_stopping": {"enabled": True, "monitor": "val_loss"}})
    with pytest.raises(DataError, match="data.val_split 0.1 leaves no validation sample.*early_stopping.monitor val_loss"):
        build_data(cfg, CPU, tmp_path)
    plateau = RunConfig.model_validate({"data": common, "schedule": {"name": "plateau", "monitor": "val_acc"}})
    with pytest.raises(DataError, match="schedule.monitor val_acc needs some"):
        build_data(plateau, CPU, tmp_path)


# --------------------------------------------------------------------------- augmentation


@pytest.mark.parametrize("on, source_type", [("auto", DeviceAugmentedBatches), ("workers", LoaderBatches)])
def test_augmentation_changes_training_batches_only(tmp_path, on, source_type):
    common = dict(dataset="digits", normalize="zscore", batch_size=64)
    plain = build(tmp_path, seed=1, **common)
    augmented = build(tmp_path, seed=1, augment={"rotation": 30, "translate": 0.2, "hflip": True,
                                                 "shear": 10, "zoom": [0.8, 1.2], "on": on}, **common)
    assert isinstance(augmented.train, source_type) and augmented.train.num_samples == plain.train.num_samples
    x_plain, y_plain = all_batches(plain.train, epoch=2)
    x_aug, y_aug = all_batches(augmented.train, epoch=2)
    assert torch.equal(y_plain, y_aug) and x_plain.shape == x_aug.shape
    assert (x_plain - x_aug).abs().mean() > 0.1
    for split in ("val", "test"):
        assert torch.equal(getattr(plain, split).x, getattr(augmented, split).x)
    workers = build(tmp_path, seed=1, num_workers=2, augment={"rotation": 30, "on": on}, **common).train
    assert torch.equal(all_batches(workers, epoch=2)[0], all_batches(workers, epoch=2)[0])  # seeded by epoch
    assert not torch.equal(all_batches(workers, epoch=2)[0], all_batches(workers, epoch=3)[0])


# --------------------------------------------------------------------------- image folders


def write_pngs(folder: Path, classes: dict[str, int], count: int, size: int = 6, odd_size: bool = False) -> None:
    from PIL import Image

    for name, level in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            side = size + 2 if odd_size and index == 0 else size
            pixels = np.full((side, side, 3), level + index, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{index}.png")


def test_image_folder_split_by_test_split(tmp_path):
    write_pngs(tmp_path / "imgs", {"cat": 20, "dog": 200}, count=8, odd_size=True)
    bundle = build(tmp_path, dataset="image-folder", path=str(tmp_path / "imgs"), test_split=0.25,
                   val_split=0.25, batch_size=4, normalize="minmax")
    assert (bundle.train.num_samples, bundle.val.num_samples, bundle.test.num_samples) == (9, 3, 4)
    assert bundle.input_shape[0] == 3 and bundle.class_names == ("cat", "dog") and bundle.num_outputs == 2
    assert isinstance(bundle.train, LoaderBatches)
    x, y = all_batches(bundle.train)
    assert x.shape == (9, *bundle.input_shape) and y.dtype == torch.int64
    assert float(x.min()) == pytest.approx(0.0, abs=1e-6) and float(x.max()) == pytest.approx(1.0, abs=1e-6)
    # bright images are dogs: the labels follow the files
    assert all((row.mean() > 0.5) == bool(label) for row, label in zip(x, y))


def test_image_folder_with_train_and_test_folders(tmp_path):
    write_pngs(tmp_path / "imgs" / "train", {"a": 0, "b": 100}, count=5)
    write_pngs(tmp_path / "imgs" / "test", {"a": 0, "b": 100}, count=2)
    bundle = build(tmp_path, dataset="image-folder", path=str(tmp_path / "imgs"), val_split=0.2,
                   augment={"hflip": True})
    assert (bundle.train.num_samples, bundle.val.num_samples, bundle.test.num_samples) == (8, 2, 4)
    assert bundle.input_shape == (3, 6, 6)
    assert all_batches(bundle.test)[1].tolist() == [0, 0, 1, 1]


def test_image_folder_without_class_folders_is_a_data_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="image-folder") as caught:
        build(tmp_path, dataset="image-folder", path=str(tmp_path / "empty"))
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match="no such folder"):
        build(tmp_path, dataset="image-folder", path=str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_digits_does_not_import_torchvision(tmp_path):
    code = ("import sys, torch; from pathlib import Path; from nntui.config import RunConfig; "
            "from nntui.data import build_data; "
            f"build_data(RunConfig(), torch.device('cpu'), Path({str(tmp_path)!r})); "
            "print('torchvision' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
