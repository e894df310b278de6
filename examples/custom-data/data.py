"""Your own data in a preset: a synthetic regression made offline, as tensors.

Named by `waves-mlp.toml` beside it as `data.factory = "data.py:make_waves"`: nntui calls
`make_waves(**data.args)`. It returns only the training samples, a pair (inputs, targets);
nntui holds out the validation and test splits by data.val_split / data.test_split. A factory
may also return (train, val) or (train, val, test), each a pair of tensors or a
torch.utils.data.Dataset of (input, target) pairs.
"""

import math

import torch


def make_waves(samples=2000, features=4, noise=0.05, seed=0):
    """y = sum of sin(k * x_k) over the features, plus Gaussian noise; x uniform in [-pi, pi]."""
    generator = torch.Generator().manual_seed(seed)
    inputs = (torch.rand(samples, features, generator=generator) * 2 - 1) * math.pi
    frequencies = torch.arange(1, features + 1, dtype=torch.float32)
    targets = torch.sin(inputs * frequencies).sum(dim=1)
    targets += noise * torch.randn(samples, generator=generator)
    return inputs, targets
