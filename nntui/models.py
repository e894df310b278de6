"""The model registry: `mlp`, `cnn`, `vgg` and torchvision's `resnet18`, with weight initializations,
and `custom`: the model of the user's `model.factory`.

Every model returns logits: CrossEntropyLoss applies the softmax itself. Layers carry
readable names ("fc1", "bn1", "conv3", "out") because parameter names label the
per-layer gradient-norm histogram.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from nntui.config import ModelConfig, RunConfig
from nntui.data.bundle import DataBundle

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}
# kaiming_normal_'s gain per activation; ELU and GELU are ReLU-like, sigmoid has gain 1
KAIMING_NONLINEARITY = {
    "relu": "relu", "leaky_relu": "leaky_relu", "elu": "relu", "gelu": "relu",
    "tanh": "tanh", "sigmoid": "sigmoid",
}
LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative slope
VGG_BLOCKS = ((64,), (128,), (256, 256), (512, 512), (512, 512))


class ModelError(ValueError):
    """A model that cannot be built for this data. `str(error)` is one line meant for the user."""


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """The model of `cfg.kind` for samples of `input_shape`, with `num_outputs` logits, initialized.

    A `custom` model is what `cfg.factory` returns, as it returns it (shape and outputs are its own).
    """
    if cfg.kind == "custom":
        from nntui.factories import FactoryError, build_custom_model

        try:
            return build_custom_model(cfg.factory, cfg.args)
        except FactoryError as error:
            raise ModelError(str(error)) from None
    input_shape = tuple(int(size) for size in input_shape)
    if cfg.kind != "mlp" and len(input_shape) != 3:
        raise ModelError(f"model.kind {cfg.kind}: needs images (channels, height, width), "
                         f"the data has samples of shape {input_shape}; use mlp")
    builders = {"mlp": _mlp, "cnn": _cnn, "vgg": _vgg, "resnet18": _resnet18}
    model = builders[cfg.kind](cfg, input_shape, num_outputs)
    initialize(model, cfg.init, cfg.activation)
    return model


def model_for_data(cfg: RunConfig, data: DataBundle, device: torch.device) -> nn.Module:
    """`build_model` for `data`, on `device`; a custom model's outputs are checked on a few training
    samples first (see `nntui.factories.check_model_outputs`)."""
    model = build_model(cfg.model, data.input_shape, data.num_outputs).to(device)
    if cfg.model.kind == "custom":
        from nntui.data.custom import sample_batch
        from nntui.factories import FactoryError, check_model_outputs

        inputs, _targets = sample_batch(data.train)
        try:
            check_model_outputs(model, inputs, cfg.task, data.num_outputs)
        except FactoryError as error:
            raise ModelError(str(error)) from None
    return model


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by its config name."""
    return ACTIVATIONS[name]()


def _mlp(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    width = math.prod(input_shape)
    for index, hidden in enumerate(cfg.hidden, start=1):
        layers[f"fc{index}"] = nn.Linear(width, hidden)
        if cfg.batch_norm:
            layers[f"bn{index}"] = nn.BatchNorm1d(hidden)
        layers[f"act{index}"] = make_activation(cfg.activation)
        if cfg.dropout > 0:
            layers[f"drop{index}"] = nn.Dropout(cfg.dropout)
        width = hidden
    layers["out"] = nn.Linear(width, num_outputs)
    return nn.Sequential(layers)


def _cnn(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    channels, height, width = input_shape
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for index, out_channels in enumerate(cfg.hidden, start=1):
        layers[f"conv{index}"] = nn.Conv2d(channels, out_channels, kernel_size=3, padding=1)
        if cfg.batch_norm:
            layers[f"bn{index}"] = nn.BatchNorm2d(out_channels)
        layers[f"act{index}"] = make_activation(cfg.activation)
        if min(height, width) >= 2:
            layers[f"pool{index}"] = nn.MaxPool2d(2)
            height, width = height // 2, width // 2
        channels = out_channels
    _add_head(layers, channels, cfg.dropout, num_outputs)
    return nn.Sequential(layers)


def _vgg(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """The seed's VGG-style net: conv 3x3 + activation + batch norm (always), max pool per block."""
    channels, height, width = input_shape
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    conv = 0
    for block, widths in enumerate(VGG_BLOCKS, start=1):
        for out_channels in widths:
            conv += 1
            layers[f"conv{conv}"] = nn.Conv2d(channels, out_channels, kernel_size=3, padding=1)
            layers[f"act{conv}"] = make_activation(cfg.activation)
            layers[f"bn{conv}"] = nn.BatchNorm2d(out_channels)
            channels = out_channels
        if min(height, width) >= 2:
            layers[f"pool{block}"] = nn.MaxPool2d(2)
            height, width = height // 2, width // 2
    _add_head(layers, channels, cfg.dropout, num_outputs)
    return nn.Sequential(layers)


def _add_head(layers: OrderedDict[str, nn.Module], channels: int, dropout: float, num_outputs: int) -> None:
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    if dropout > 0:
        layers["drop"] = nn.Dropout(dropout)
    layers["out"] = nn.Linear(channels, num_outputs)


def _resnet18(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """torchvision's ResNet-18, untrained; for inputs up to 64 px the CIFAR stem (3x3 conv, no max pool)."""
    from torchvision.models import resnet18

    channels, height, width = input_shape
    model = resnet18(weights=None, num_classes=num_outputs)
    if max(height, width) <= 64:
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif channels != 3:
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    # the replaced stem gets torchvision's own init for convolutions
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    if cfg.activation != "relu":
        _replace_relus(model, cfg.activation)
    if cfg.dropout > 0:
        model.fc = nn.Sequential(OrderedDict(drop=nn.Dropout(cfg.dropout), out=model.fc))
    return model


def _replace_relus(model: nn.Module, activation: str) -> None:
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, make_activation(activation))


def initialize(model: nn.Module, init: str, activation: str) -> None:
    """Initialize the weights of every Linear and Conv layer; biases become zero.

    `default` leaves PyTorch's (or torchvision's) initialization alone. `uniform` draws
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), `normal` N(0, std=1/sqrt(fan_in)), `xavier` is
    xavier_uniform_, `kaiming` is kaiming_normal_ (fan_in) with the gain of the activation;
    the output layer, followed by no activation, gets the linear gain.
    """
    if init == "default":
        return
    layers = [module for module in model.modules() if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd))]
    output = next((module for module in reversed(layers) if isinstance(module, nn.Linear)), None)
    with torch.no_grad():
        for layer in layers:
            _init_weight(layer.weight, init, "linear" if layer is output else activation)
            if layer.bias is not None:
                layer.bias.zero_()


def _init_weight(weight: torch.Tensor, init: str, activation: str) -> None:
    fan_in = weight[0].numel()  # in_features, or in_channels/groups x kernel area
    if init == "uniform":
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(weight, -bound, bound)
    elif init == "normal":
        nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(fan_in))
    elif init == "xavier":
        nn.init.xavier_uniform_(weight)
    elif init == "kaiming":
        nonlinearity = "linear" if activation == "linear" else KAIMING_NONLINEARITY[activation]
        nn.init.kaiming_normal_(weight, a=LEAKY_SLOPE, mode="fan_in", nonlinearity=nonlinearity)
    else:
        raise ModelError(f"model.init: unknown init {init!r}")
