"""Which augmentation path a run took (issue 16, point 3): `augment_on` in the start record.

"device": whole batches warped on the training device (DeviceAugmentedBatches); "workers": one
sample at a time in DataLoader workers; left out of the record when nothing is augmented.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import records

from nntui.config import load_config
from nntui.data import build_data
from nntui.engine.control import Controls
from nntui.engine.events import RunStarted, from_record, to_record
from nntui.engine.trainer import Trainer
from nntui.models import build_model

CPU = torch.device("cpu")
ROTATION = "data.augment.rotation=10"


def start_record(cfg, tmp_path: Path) -> dict:
    """The start record a trainer of `cfg` on the CPU writes, through JSON as in metrics.jsonl."""
    data = build_data(cfg, CPU, tmp_path / "data")
    model = build_model(cfg.model, data.input_shape, data.num_outputs)
    trainer = Trainer(cfg, data, model, CPU, lambda event: None, Controls(), tmp_path / "checkpoints")
    return json.loads(json.dumps(to_record(trainer._started_event())))


@pytest.mark.parametrize("sets, expected", [
    ((ROTATION, "data.augment.on='device'"), "device"),
    ((ROTATION, "data.augment.on='auto'"), "device"),  # the CPU holds the images already
    ((ROTATION, "data.augment.on='workers'"), "workers"),
    (("data.augment.hflip=true", "data.augment.on='workers'"), "workers"),  # a flip alone is augmentation too
])
def test_the_start_record_names_where_the_images_were_augmented(small_digits, tmp_path, sets, expected):
    record = start_record(small_digits(*sets), tmp_path)
    assert record["augment_on"] == expected
    assert from_record(record).augment_on == expected


@pytest.mark.parametrize("on", ["auto", "device", "workers"])
def test_a_run_without_augmentation_has_no_augment_on_in_its_start_record(small_digits, tmp_path, on):
    record = start_record(small_digits(f"data.augment.on='{on}'"), tmp_path)
    assert "augment_on" not in record
    assert from_record(record).augment_on is None


def test_image_folders_are_augmented_in_workers_and_say_so(tmp_path):
    from PIL import Image

    for name, level in (("a", 10), ("b", 200)):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for index in range(4):
            Image.fromarray(np.full((6, 6, 3), level, dtype=np.uint8)).save(tmp_path / "imgs" / name / f"{index}.png")
    folder = ["data.dataset='image-folder'", f"data.path='{tmp_path / 'imgs'}'", "data.val_split=0.25",
              "data.test_split=0.25"]
    augmented = build_data(load_config("digits-mlp", [*folder, ROTATION, "data.augment.on='device'"]), CPU, tmp_path)
    plain = build_data(load_config("digits-mlp", folder), CPU, tmp_path)
    assert augmented.train.augment_on == "workers"
    assert plain.train.augment_on is None and plain.val.augment_on is None


def test_a_run_on_custom_images_records_where_they_were_augmented(tmp_path, capsys):
    from test_factories import CUSTOM_BOTH, run_in_process, write_project

    preset = write_project(tmp_path, CUSTOM_BOTH)
    images = ["data.args.kind='images'", "model.kind=cnn", "model.factory=''", "model.args={}", "model.hidden=[4]",
              "data.augment.hflip=true", "train.epochs=1"]
    code, lines, run_dir = run_in_process(tmp_path, preset, [*images, "data.augment.on='auto'"], capsys)
    assert code == 0, lines
    (start,) = [record for record in records(run_dir) if record["event"] == "start"]
    assert start["augment_on"] == "device"
    custom = load_config(str(preset), [*images, "data.augment.on='workers'"])
    assert start_record(custom, tmp_path)["augment_on"] == "workers"
    unaugmented = load_config(str(preset), [*images, "data.augment.hflip=false"])
    assert "augment_on" not in start_record(unaugmented, tmp_path)


def test_augment_on_survives_the_records_round_trip():
    for value in ("device", "workers", None):
        started = RunStarted(preset="p", device="cpu", params=1, train_size=2, val_size=3, test_size=4,
                             resumed_from=None, augment_on=value, time=1.0)
        record = json.loads(json.dumps(to_record(started)))
        assert ("augment_on" in record) == (value is not None)
        assert from_record(record) == started
    older = to_record(RunStarted("p", "cpu", 1, 2, 3, 4, None, time=1.0))  # a record from before the field
    assert from_record(older).augment_on is None
    assert from_record({**older, "augment_on": 3}).augment_on is None  # an unusable value: the default


def test_a_custom_model_is_checked_on_images_augmented_on_the_device(tmp_path, capsys):
    """The model's outputs are checked on a few training samples before the run: those of a
    split augmented on the device are its raw images, normalized as its batches are."""
    from test_factories import CUSTOM_BOTH, run_in_process, write_project

    from nntui.data.custom import sample_batch

    preset = write_project(tmp_path, CUSTOM_BOTH)
    sets = ["data.args.kind='images'", "data.augment.hflip=true", "train.epochs=1"]
    data = build_data(load_config(str(preset), sets), CPU, tmp_path / "data")
    inputs, targets = sample_batch(data.train, count=5)
    train = data.train
    assert torch.equal(inputs, (train.x[:5] - train.shift) / train.scale) and torch.equal(targets, train.y[:5])
    code, lines, run_dir = run_in_process(tmp_path, preset, sets, capsys)
    assert code == 0, lines
    assert records(run_dir)[0]["augment_on"] == "device"
