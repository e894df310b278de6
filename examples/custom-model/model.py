"""A small CNN for the 8x8 digits, built from the preset's `model.args`.

Named by `digits-cnn.toml` beside it as `model.factory = "model.py:build"`: nntui imports this
file and calls `build(**model.args)`; the module it returns is trained like a built-in model.
"""

from collections import OrderedDict

from torch import nn


def build(channels=(16, 32), classes=10, dropout=0.0, in_channels=1):
    """Conv 3x3 + ReLU + max pool per entry of `channels`, then global average pooling and a linear head.

    Layers are named (conv1, act1, pool1, ..., out): the monitor's gradient pane shows these names.
    """
    layers = OrderedDict()
    for index, width in enumerate(channels, start=1):
        layers[f"conv{index}"] = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        layers[f"act{index}"] = nn.ReLU()
        layers[f"pool{index}"] = nn.MaxPool2d(2)
        in_channels = width
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    if dropout > 0:
        layers["drop"] = nn.Dropout(dropout)
    layers["out"] = nn.Linear(in_channels, classes)
    return nn.Sequential(layers)
