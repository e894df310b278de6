"""Batched augmentation on the device: torchvision's per-sample transforms, whole batches at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from nntui.config import AugmentConfig
from nntui.data import DeviceAugmentedBatches, LoaderBatches, TensorBatches, build_data, epoch_permutation
from nntui.data.device_augment import (
    augments_on_device,
    draw_params,
    inverse_affine_matrices,
    pixel_grid,
    sampling_matrices,
    warp,
)
from nntui.data.prepare import Normalizer, fit_normalizer
from nntui.data.vision import augment_transform
from nntui.engine.control import Command, Controls
from nntui.engine.events import EpochEnded
from nntui.engine.trainer import Trainer
from nntui.models import build_model

CPU = torch.device("cpu")
EVERYTHING = AugmentConfig(rotation=40, translate=0.2, hflip=True, shear=20, zoom=(0.7, 1.3))


def torchvision_reference(images: torch.Tensor, params) -> torch.Tensor:
    """Each image through torchvision's functional affine (bilinear, fill 0), then flipped if drawn so."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    out = []
    for i, image in enumerate(images):
        warped = TF.affine(image, angle=float(params.angle[i]), scale=float(params.scale[i]),
                           translate=[int(params.translate_x[i]), int(params.translate_y[i])],
                           shear=[float(params.shear_x[i]), 0.0], interpolation=InterpolationMode.BILINEAR, fill=0)
        out.append(TF.horizontal_flip(warped) if params.flip[i] else warped)
    return torch.stack(out)


def batched(images: torch.Tensor, params) -> torch.Tensor:
    height, width = images.shape[-2:]
    matrices = sampling_matrices(inverse_affine_matrices(params), height, width)
    return warp(images, matrices, pixel_grid(height, width, images.device))


@pytest.mark.parametrize("augment", [
    EVERYTHING,
    AugmentConfig(rotation=90),
    AugmentConfig(translate=0.3),
    AugmentConfig(shear=45, zoom=(0.5, 2.0), hflip=True),
])
def test_a_batch_is_warped_as_torchvision_warps_each_sample_with_the_same_parameters(augment):
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(48, 3, 13, 21, generator=generator)  # odd, unequal sides: centre and axes matter
    params = draw_params(augment, len(images), 13, 21, generator)
    assert torch.allclose(batched(images, params), torchvision_reference(images, params), atol=1e-5)


def test_parameters_follow_random_affine_and_flip_distributions():
    from torchvision.transforms import v2

    augment = AugmentConfig(rotation=30, translate=0.25, shear=10, zoom=(0.8, 1.25), hflip=True)
    image = torch.zeros(3, 20, 24)
    affine = augment_transform(augment).transforms[0]
    assert isinstance(affine, v2.RandomAffine)
    torch.manual_seed(0)
    reference = [affine.make_params([image]) for _ in range(3000)]
    ours = draw_params(augment, 3000, 20, 24, torch.Generator().manual_seed(1))
    pairs = {
        "angle": (ours.angle, [p["angle"] for p in reference]),
        "translate_x": (ours.translate_x, [p["translate"][0] for p in reference]),
        "translate_y": (ours.translate_y, [p["translate"][1] for p in reference]),
        "scale": (ours.scale, [p["scale"] for p in reference]),
        "shear_x": (ours.shear_x, [p["shear"][0] for p in reference]),
    }
    for name, (drawn, expected) in pairs.items():
        assert ks_2samp(drawn.numpy(), np.array(expected, dtype=np.float64)).pvalue > 1e-3, name
    assert set(ours.translate_x.tolist()) == {float(p["translate"][0]) for p in reference}  # whole pixels, same range
    assert all(float(p["shear"][1]) == 0.0 for p in reference)
    assert abs(float(ours.flip.float().mean()) - 0.5) < 0.04


def blob_images(count: int, size: int = 24) -> torch.Tensor:
    """A bright, elongated, off-centre bar: its orientation and centre of mass show the transform."""
    image = torch.zeros(1, size, size)
    image[0, 9:12, 4:16] = 1.0
    return image.expand(count, 1, size, size).contiguous()


def moments(images: torch.Tensor) -> dict[str, np.ndarray]:
    """Centre of mass (x, y) and orientation of the bright mass of each image."""
    size = images.shape[-1]
    coords = torch.arange(size, dtype=torch.float64)
    mass = images[:, 0].double()
    total = mass.sum(dim=(1, 2))
    cx = (mass.sum(dim=1) * coords).sum(dim=1) / total
    cy = (mass.sum(dim=2) * coords).sum(dim=1) / total
    dx, dy = coords.view(1, 1, -1) - cx.view(-1, 1, 1), coords.view(1, -1, 1) - cy.view(-1, 1, 1)
    mu20, mu02, mu11 = ((mass * dx**2).sum((1, 2)), (mass * dy**2).sum((1, 2)), (mass * dx * dy).sum((1, 2)))
    angle = 0.5 * torch.atan2(2 * mu11, mu20 - mu02)
    return {"x": cx.numpy(), "y": cy.numpy(), "angle": angle.numpy(), "mass": total.numpy()}


def test_augmented_images_match_the_per_sample_transforms_in_distribution():
    augment = AugmentConfig(rotation=60, translate=0.15, hflip=True, zoom=(0.8, 1.2))
    count = 1500
    per_sample = augment_transform(augment)
    torch.manual_seed(0)
    reference = torch.stack([per_sample(image) for image in blob_images(count)])
    source = DeviceAugmentedBatches(blob_images(count), torch.zeros(count, dtype=torch.long), augment,
                                    Normalizer.identity((1, 24, 24)), batch_size=256, seed=5)
    ours = torch.cat([x for x, _y in source.batches(epoch=1)])
    expected, measured = moments(reference), moments(ours)
    for name in expected:
        assert ks_2samp(measured[name], expected[name]).pvalue > 1e-3, name
    # the bar sits left of centre: a flip moves it right, half the time
    assert abs(float(np.mean(measured["x"] > 11.5)) - float(np.mean(expected["x"] > 11.5))) < 0.06
    assert np.std(measured["angle"]) > 0.5  # rotations of up to 60 degrees were applied


def test_without_transforms_the_batches_are_the_plain_normalized_ones():
    x = torch.rand(70, 3, 8, 8)
    y = torch.arange(70)
    normalizer = fit_normalizer(x, "zscore")
    plain = TensorBatches(normalizer(x), y, batch_size=16, shuffle=True, seed=4)
    for augment in (AugmentConfig(), AugmentConfig(zoom=(1.0, 1.0), rotation=0.0)):
        source = DeviceAugmentedBatches(x, y, augment, normalizer, batch_size=16, seed=4)
        for (xa, ya), (xb, yb) in zip(source.batches(2), plain.batches(2), strict=True):
            assert torch.equal(ya, yb) and torch.allclose(xa, xb, atol=1e-5)
    still = draw_params(AugmentConfig(hflip=True), 70, 8, 8, torch.Generator().manual_seed(0))
    still.flip[:] = False
    assert torch.allclose(batched(x, still), x, atol=1e-6)  # the identity warp leaves pixels as they were


def test_flip_only_mirrors_exactly_the_drawn_samples():
    x, y = torch.rand(40, 3, 5, 7), torch.arange(40)
    source = DeviceAugmentedBatches(x, y, AugmentConfig(hflip=True), Normalizer.identity((3, 5, 7)), 40, seed=1)
    out, targets = next(source.batches(3))
    flips = source.epoch_params(3).flip
    original = x[epoch_permutation(1, 3, 40)]
    assert torch.equal(targets, y[epoch_permutation(1, 3, 40)])
    assert torch.equal(out[flips], original[flips].flip(-1)) and torch.equal(out[~flips], original[~flips])
    assert 0 < int(flips.sum()) < 40


def test_same_seed_and_epoch_same_batches_and_a_later_start_skips_batches():
    x, y = torch.rand(100, 1, 10, 10), torch.arange(100)

    def source(seed: int) -> DeviceAugmentedBatches:
        return DeviceAugmentedBatches(x, y, EVERYTHING, Normalizer.identity((1, 10, 10)), 16, seed)

    def epoch(src, number, start=0):
        return [batch for batch, _targets in src.batches(number, start)]

    first = epoch(source(7), 2)
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(source(7), 2), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(first[3:], epoch(source(7), 2, start=3), strict=True))
    assert not torch.equal(first[0], epoch(source(7), 3)[0])
    assert not torch.equal(first[0], epoch(source(8), 2)[0])


def test_shapes_dtypes_and_batch_bounds():
    x, y = torch.rand(65, 3, 12, 9), torch.randint(0, 10, (65,))
    source = DeviceAugmentedBatches(x, y, EVERYTHING, fit_normalizer(x, "minmax"), batch_size=32, seed=0)
    batches = list(source.batches(1))
    assert len(source) == len(batches) == 2 and source.num_samples == 65  # a last batch of one joins the one before
    assert [tuple(b.shape) for b, _ in batches] == [(32, 3, 12, 9), (33, 3, 12, 9)]
    assert all(b.dtype == torch.float32 and t.dtype == torch.int64 and b.device == CPU for b, t in batches)
    assert sorted(torch.cat([t for _, t in batches]).tolist()) == sorted(y.tolist())
    with pytest.raises(ValueError, match="N, C, H, W"):
        DeviceAugmentedBatches(torch.rand(4, 8), torch.arange(4), EVERYTHING, Normalizer.identity((8,)), 2, 0)


def test_where_augmentation_runs():
    x = torch.zeros(10, 1, 4, 4)
    assert augments_on_device("auto", x, CPU) and augments_on_device("device", x, CPU)
    assert not augments_on_device("workers", x, CPU)
    assert not augments_on_device("auto", x, torch.device("meta"))  # a device whose memory nntui cannot ask


def test_build_data_picks_the_device_path_for_in_memory_images_only(tmp_path):
    def bundle(on: str, **data):
        from nntui.config import RunConfig

        cfg = RunConfig.model_validate({"data": {"augment": {"rotation": 10, "on": on}, **data}})
        return build_data(cfg, CPU, tmp_path)

    assert isinstance(bundle("auto", dataset="digits").train, DeviceAugmentedBatches)
    assert isinstance(bundle("device", dataset="digits").train, DeviceAugmentedBatches)
    assert isinstance(bundle("workers", dataset="digits").train, LoaderBatches)
    from PIL import Image

    for name, level in (("a", 10), ("b", 200)):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for index in range(4):
            Image.fromarray(np.full((6, 6, 3), level, dtype=np.uint8)).save(tmp_path / "imgs" / name / f"{index}.png")
    folder = bundle("device", dataset="image-folder", path=str(tmp_path / "imgs"), val_split=0.25, test_split=0.25)
    assert isinstance(folder.train, LoaderBatches)  # files, not tensors: read and augmented in workers


def train_digits(cfg, checkpoint_dir: Path, stop_at_step: int | None = None,
                 resume: Path | None = None) -> tuple[Trainer, list]:
    torch.manual_seed(cfg.train.seed)
    data = build_data(cfg, CPU, Path("/nonexistent"))
    assert isinstance(data.train, DeviceAugmentedBatches)
    model = build_model(cfg.model, data.input_shape, data.num_outputs)
    events: list = []
    controls = Controls()
    trainer = Trainer(cfg, data, model, CPU, events.append, controls, checkpoint_dir)
    if stop_at_step is not None:
        def after_step(_optimizer, _args, _kwargs):
            if trainer.progress.step == stop_at_step:
                controls.submit(Command("stop", "SIGTERM", "signal"))
        trainer.optimizer.register_step_post_hook(after_step)
    if resume is not None:
        trainer.resume_from(resume)
    return trainer, events


def epoch_metrics(events: list) -> list[dict]:
    return [{name: getattr(e, name) for name in e.__dataclass_fields__ if name not in ("time", "epoch_s")}
            for e in events if isinstance(e, EpochEnded)]


def test_digits_with_augmentation_trains_and_a_resumed_run_equals_an_uninterrupted_one(small_digits, tmp_path):
    cfg = small_digits("train.epochs=3", "data.augment.rotation=10", "data.augment.translate=0.1",
                       "data.augment.zoom=[0.9, 1.1]")
    whole, whole_events = train_digits(cfg, tmp_path / "whole")
    end = whole.run()
    assert end.status == "completed" and end.test_acc is not None and end.test_acc > 0.8
    first, first_events = train_digits(cfg, tmp_path / "parts", stop_at_step=30)
    assert first.run().status == "stopped"
    resumed, events = train_digits(cfg, tmp_path / "parts", resume=tmp_path / "parts" / "last.pt")
    assert resumed.run().status == "completed"
    assert epoch_metrics(first_events) + epoch_metrics(events) == epoch_metrics(whole_events)
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_the_command_line_sets_where_augmentation_runs(tmp_path):
    from conftest import records, run_cli

    done = run_cli("run", "digits-mlp", "--headless", "--epochs", "2", "--name", "aug", "--runs-dir", str(tmp_path),
                   "--set", "train.log_interval_s=0", "--set", "data.augment.rotation=10",
                   "--set", "data.augment.on='device'", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    end = records(tmp_path / "aug")[-1]
    assert end["event"] == "end" and end["status"] == "completed" and end["test_acc"] > 0.5
    refused = run_cli("run", "digits-mlp", "--headless", "--set", "data.augment.on='gpu'", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "data.augment.on" in refused.stderr
