"""The data layer's public types: the error users see and the bundle the trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nntui.data.batches import BatchSource


class DataError(RuntimeError):
    """A data set cannot be loaded. `str(error)` is one line meant for the user."""


@dataclass
class DataBundle:
    """The three splits of a data set, ready to iterate on the training device.

    `input_shape` is the shape of one sample, e.g. (1, 8, 8) for digits or (10,) for
    diabetes; `num_outputs` is the number of classes, or 1 for regression;
    `class_names` is () for regression.
    """

    train: BatchSource
    val: BatchSource
    test: BatchSource
    input_shape: tuple[int, ...]
    num_outputs: int
    class_names: tuple[str, ...]
