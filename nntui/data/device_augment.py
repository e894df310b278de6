"""Image augmentation of whole batches on the training device.

The per-sample path (`vision.augment_transform` in DataLoader workers) runs torchvision's
RandomAffine and RandomHorizontalFlip on one image at a time. Here every sample of an epoch gets
its own parameters, drawn with the same distributions as `RandomAffine.make_params`, and a batch
is warped by one `grid_sample` with the inverse matrices torchvision's `affine_image` builds, the
same bilinear interpolation and the same fill (0, before normalization). Given the same
parameters, a sample comes out as torchvision's functional `affine` + `horizontal_flip` make it.

The parameters of an epoch are drawn on the CPU from a generator seeded by `(seed, epoch)`
only, like the epoch's order: a run resumed at batch `start`, on any device, warps its samples
as the uninterrupted run did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nntui.config import AugmentConfig
from nntui.data.batches import augment_generator, batch_bounds, epoch_permutation
from nntui.data.prepare import Normalizer

# auto: a training split of at most this fraction of the device's free memory is augmented there
# (the model, its activations and the batch being warped need the rest)
DEVICE_MEMORY_FRACTION = 0.25


def augments_on_device(choice: str, x: Tensor, device: torch.device) -> bool:
    """Whether the in-memory training images `x` are augmented on `device` (`data.augment.on`).

    `auto` picks the device whenever the split fits: always on the CPU (the tensors are in memory
    already), on an accelerator when the split takes at most a quarter of its free memory.
    """
    if choice != "auto":
        return choice == "device"
    if device.type == "cpu":
        return True
    needed = x.numel() * x.element_size()
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return needed <= DEVICE_MEMORY_FRACTION * free
    if device.type == "mps":
        return needed <= DEVICE_MEMORY_FRACTION * torch.mps.recommended_max_memory()
    return False


@dataclass
class AffineParams:
    """Per-sample parameters as `RandomAffine.make_params` draws them, plus the flip (N each)."""

    angle: Tensor  # degrees
    translate_x: Tensor  # whole pixels
    translate_y: Tensor
    scale: Tensor
    shear_x: Tensor  # degrees (a single `shear` value shears along x only)
    flip: Tensor  # bool


def draw_params(augment: AugmentConfig, count: int, height: int, width: int,
                generator: torch.Generator) -> AffineParams:
    """`count` samples' parameters: uniform ranges as RandomAffine's, a flip with probability 1/2
    when `hflip` is on. Every value is drawn whatever the settings, so that turning one
    transform off leaves the others' draws as they were."""

    def uniform(low: float, high: float) -> Tensor:
        return torch.empty(count).uniform_(low, high, generator=generator)

    max_dx, max_dy = float(augment.translate * width), float(augment.translate * height)
    low_zoom, high_zoom = augment.zoom
    return AffineParams(
        angle=uniform(-augment.rotation, augment.rotation),
        translate_x=uniform(-max_dx, max_dx).round(),  # round half to even, as Python's round()
        translate_y=uniform(-max_dy, max_dy).round(),
        scale=uniform(low_zoom, high_zoom),
        shear_x=uniform(-augment.shear, augment.shear),
        flip=(torch.rand(count, generator=generator) < 0.5) & augment.hflip,
    )


def inverse_affine_matrices(params: AffineParams) -> Tensor:
    """(N, 2, 3) float64: torchvision's `_get_inverse_affine_matrix` per sample, centre (0, 0).

    A flipped sample's output columns are mirrored: its matrix reads `-x` for `x`, which is
    its first column negated (the pixel grid is symmetric about the centre).
    """
    rot = torch.deg2rad(params.angle.double())
    tan_sx = torch.tan(torch.deg2rad(params.shear_x.double()))
    scale = params.scale.double()
    tx, ty = params.translate_x.double(), params.translate_y.double()
    a, c = torch.cos(rot), torch.sin(rot)  # the vertical shear is 0: cos(rot - 0) / cos(0)
    b = -(a * tan_sx + c)
    d = a - c * tan_sx
    m0, m1, m3, m4 = d / scale, -b / scale, -c / scale, a / scale
    m2 = -m0 * tx - m1 * ty
    m5 = -m3 * tx - m4 * ty
    sign = 1.0 - 2.0 * params.flip.double()
    return torch.stack([m0 * sign, m1, m2, m3 * sign, m4, m5], dim=1).reshape(-1, 2, 3)


def pixel_grid(height: int, width: int, device: torch.device) -> Tensor:
    """(H*W, 3): each output pixel's centre relative to the image centre, and a 1 (as `_affine_grid`)."""
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, device=device)
    grid = torch.ones(height, width, 3, device=device)
    grid[..., 0] = xs
    grid[..., 1] = ys.unsqueeze(-1)
    return grid.reshape(height * width, 3)


def sampling_matrices(inverse: Tensor, height: int, width: int) -> Tensor:
    """(N, 3, 2) float32: pixel offsets -> grid_sample's [-1, 1] coordinates, as `_affine_grid`."""
    half_size = torch.tensor([0.5 * width, 0.5 * height], dtype=inverse.dtype)
    return (inverse.transpose(1, 2) / half_size).float()


def warp(images: Tensor, matrices: Tensor, grid: Tensor) -> Tensor:
    """`images` (B, C, H, W) warped by `matrices` (B, 3, 2), bilinear, filled with 0 outside.

    As torchvision, the fill goes through a mask of ones sampled the same way: a border pixel
    is blended with the fill by how much of it came from outside the image.
    """
    batch, channels, height, width = images.shape
    # bmm of the expanded grid: a broadcasting matmul takes a much slower path on the CPU (tens of times here)
    coords = torch.bmm(grid.expand(batch, -1, -1), matrices).view(batch, height, width, 2)
    with_mask = torch.cat([images, images.new_ones(batch, 1, height, width)], dim=1)
    sampled = F.grid_sample(with_mask, coords, mode="bilinear", padding_mode="zeros", align_corners=False)
    warped, mask = sampled[:, :channels], sampled[:, channels:]
    return warped * mask


class DeviceAugmentedBatches:
    """A training split held on the device as raw images; each batch warped there, then normalized.

    A BatchSource like `TensorBatches`: the same order per epoch, the same batch bounds.
    """

    augment_on: str | None = "device"

    def __init__(self, x: Tensor, y: Tensor, augment: AugmentConfig, normalizer: Normalizer,
                 batch_size: int, seed: int) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        if x.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), not {tuple(x.shape)}")
        self.x, self.y, self.augment, self.seed = x, y, augment, seed
        self.num_samples = len(x)
        self.height, self.width = x.shape[-2:]
        self.shift, self.scale = normalizer.shift.to(x.device), normalizer.scale.to(x.device)
        self.warps = augment.warps
        self.grid = pixel_grid(self.height, self.width, x.device) if self.warps else None
        self._bounds = batch_bounds(self.num_samples, batch_size, merge_single=True)

    def __len__(self) -> int:
        return len(self._bounds)

    def epoch_params(self, epoch: int) -> AffineParams:
        """The parameters of every position of `epoch`'s order (CPU tensors)."""
        generator = augment_generator(self.seed, epoch)
        return draw_params(self.augment, self.num_samples, self.height, self.width, generator)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        device = self.x.device
        order = epoch_permutation(self.seed, epoch, self.num_samples).to(device)
        params = self.epoch_params(epoch)
        targets = self.y.index_select(0, order)  # one gather per epoch, as TensorBatches
        if self.warps:
            matrices = sampling_matrices(inverse_affine_matrices(params), self.height, self.width).to(device)
        else:
            flips = params.flip.to(device).view(-1, 1, 1, 1)
        for lo, hi in self._bounds[start:]:
            images = self.x.index_select(0, order[lo:hi])
            if self.warps:
                images = warp(images, matrices[lo:hi], self.grid)  # type: ignore[arg-type]
            elif self.augment.hflip:
                images = torch.where(flips[lo:hi], images.flip(-1), images)
            yield (images - self.shift) / self.scale, targets[lo:hi]

