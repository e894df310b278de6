"""The model registry: output shapes, readable parameter names, initializations, options."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nntui.config import ModelConfig
from nntui.models import ACTIVATIONS, ModelError, build_model, count_parameters

DIGITS, CIFAR = (1, 8, 8), (3, 32, 32)


def model_of(input_shape=DIGITS, num_outputs=10, **options) -> nn.Module:
    return build_model(ModelConfig(**options), input_shape, num_outputs)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "vgg", "resnet18"])
@pytest.mark.parametrize("shape", [DIGITS, CIFAR])
def test_every_kind_gives_logits_of_the_right_shape(kind, shape):
    torch.manual_seed(0)
    model = model_of(shape, num_outputs=7, kind=kind, hidden=[8, 16])
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)
    # logits, not probabilities: rows do not sum to one and values leave [0, 1]
    assert not torch.allclose(out.sum(dim=1), torch.ones(2), atol=1e-3)


def test_mlp_takes_tabular_inputs_and_other_kinds_refuse_them():
    model = model_of((10,), num_outputs=1, kind="mlp", hidden=[4])
    assert model(torch.randn(3, 10)).shape == (3, 1)
    with pytest.raises(ModelError, match="use mlp") as caught:
        model_of((10,), num_outputs=1, kind="cnn")
    assert "\n" not in str(caught.value)


def test_mlp_layers_have_readable_names_and_configured_parts():
    model = model_of(kind="mlp", hidden=[32, 16], batch_norm=True, dropout=0.3)
    names = [name for name, _ in model.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias", "fc2.weight", "fc2.bias",
                     "bn2.weight", "bn2.bias", "out.weight", "out.bias"]
    assert isinstance(model.drop1, nn.Dropout) and model.drop1.p == 0.3
    assert isinstance(model.bn2, nn.BatchNorm1d) and model.fc1.in_features == 64
    plain = model_of(kind="mlp", hidden=[32, 16])
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm1d)) for m in plain.modules())
    assert isinstance(list(plain.children())[-1], nn.Linear)  # no softmax at the end


def test_cnn_layers_pool_while_the_image_is_larger_than_one_pixel():
    model = model_of(DIGITS, kind="cnn", hidden=[4, 8, 8, 8], batch_norm=True, dropout=0.2)
    names = dict(model.named_children())
    assert {"conv1", "bn1", "act1", "pool1", "pool3", "gap", "drop", "out"} <= set(names)
    assert "pool4" not in names  # 8 -> 4 -> 2 -> 1: no pooling of a single pixel
    assert isinstance(names["bn1"], nn.BatchNorm2d) and names["conv1"].kernel_size == (3, 3)
    assert names["out"].in_features == 8


def test_vgg_follows_the_seed_recipe():
    model = model_of(CIFAR, kind="vgg", dropout=0.5)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert convs[0].in_channels == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 5
    order = [name for name, _ in model.named_children()][:3]
    assert order == ["conv1", "act1", "bn1"]
    assert model.out.in_features == 512 and isinstance(model.drop, nn.Dropout)
    small = model_of(DIGITS, kind="vgg")
    assert sum(isinstance(m, nn.MaxPool2d) for m in small.modules()) == 3  # 8 -> 4 -> 2 -> 1


def test_resnet18_stem_fits_small_images_and_input_channels():
    small = model_of(DIGITS, kind="resnet18")
    assert small.conv1.in_channels == 1 and small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, nn.Identity) and small.fc.out_features == 10
    large = model_of((1, 96, 96), kind="resnet18", activation="gelu", dropout=0.2)
    assert large.conv1.kernel_size == (7, 7) and large.conv1.in_channels == 1
    assert not isinstance(large.maxpool, nn.Identity)
    assert not any(isinstance(m, nn.ReLU) for m in large.modules())
    assert isinstance(large.layer1[0].relu, nn.GELU) and isinstance(large.fc.drop, nn.Dropout)
    assert count_parameters(small) == sum(p.numel() for p in small.parameters())


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activation_choice_changes_the_module(activation):
    for kind in ("mlp", "cnn"):
        model = model_of(kind=kind, hidden=[4], activation=activation)
        assert type(model.act1) is ACTIVATIONS[activation]


def test_count_parameters_counts_trainable_ones():
    model = model_of((5,), num_outputs=3, kind="mlp", hidden=[4])
    assert count_parameters(model) == (5 * 4 + 4) + (4 * 3 + 3)
    model.fc1.weight.requires_grad_(False)
    assert count_parameters(model) == 4 + 15


WIDE = (2048,)


def wide_model(init: str, activation: str = "relu") -> nn.Module:
    torch.manual_seed(0)
    model = model_of(WIDE, num_outputs=512, kind="mlp", hidden=[1024], init=init, activation=activation)
    return model.requires_grad_(False)


def test_normal_init_has_std_one_over_sqrt_fan_in_and_zero_biases():
    model = wide_model("normal")
    weight = model.fc1.weight
    assert abs(float(weight.mean())) < 1e-3
    assert float(weight.std()) == pytest.approx(1 / math.sqrt(2048), rel=0.02)
    assert float(model.out.weight.std()) == pytest.approx(1 / math.sqrt(1024), rel=0.02)
    assert all(float(b.abs().max()) == 0.0 for b in (model.fc1.bias, model.out.bias))


def test_uniform_init_stays_within_one_over_sqrt_fan_in():
    weight = wide_model("uniform").fc1.weight
    bound = 1 / math.sqrt(2048)
    assert float(weight.abs().max()) <= bound and float(weight.abs().max()) > 0.99 * bound
    assert float(weight.std()) == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_xavier_init_uses_fan_in_and_fan_out():
    model = wide_model("xavier")
    bound = math.sqrt(6 / (2048 + 1024))
    assert float(model.fc1.weight.abs().max()) <= bound
    assert float(model.fc1.weight.std()) == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert float(model.fc1.bias.abs().max()) == 0.0


@pytest.mark.parametrize("activation, gain", [("relu", math.sqrt(2)), ("tanh", 5 / 3), ("sigmoid", 1.0),
                                              ("leaky_relu", math.sqrt(2 / (1 + 0.01**2)))])
def test_kaiming_init_matches_the_activation_and_the_output_layer_is_linear(activation, gain):
    model = wide_model("kaiming", activation)
    assert float(model.fc1.weight.std()) == pytest.approx(gain / math.sqrt(2048), rel=0.02)
    assert float(model.out.weight.std()) == pytest.approx(1 / math.sqrt(1024), rel=0.02)
    assert float(model.fc1.bias.abs().max()) == 0.0


def test_init_reaches_convolutions_and_default_leaves_pytorch_alone():
    torch.manual_seed(0)
    conv = model_of((16, 8, 8), kind="cnn", hidden=[256], init="normal").requires_grad_(False).conv1
    assert float(conv.weight.std()) == pytest.approx(1 / math.sqrt(16 * 9), rel=0.03)
    assert float(conv.bias.abs().max()) == 0.0
    default = model_of(kind="mlp", hidden=[64], init="default").requires_grad_(False)
    assert float(default.fc1.bias.abs().max()) > 0.0  # PyTorch's uniform bias init survives
