"""Layers for K seeds' networks at once: every parameter has a leading seed axis.

`PerSeedLinear` holds K weight matrices and computes [K, B, in] -> [K, B, out] as one batched
matmul; `PerSeedConv2d` runs K convolutions as one grouped convolution. Seed k's parameters
are initialized from generator k, so its network is the one a single-seed run with its seed
builds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}
HIDDEN_GAIN = math.sqrt(2)


class PerSeedLinear(nn.Module):
    """K independent linear layers: [K, ..., in] -> [K, ..., out], orthogonal init, zero bias."""

    def __init__(
        self, generators: Sequence[torch.Generator], in_features: int, out_features: int, gain: float
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(len(generators), in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(len(generators), 1, out_features))
        with torch.no_grad():
            for seed_index, generator in enumerate(generators):
                matrix = torch.empty(out_features, in_features)  # torch's Linear layout, as it inits
                nn.init.orthogonal_(matrix, gain, generator=generator)
                self.weight[seed_index] = matrix.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # [K, B, in], the usual case: no reshapes to pay for
            return torch.baddbmm(self.bias, x, self.weight)
        num_seeds, *batch, features = x.shape
        out = torch.baddbmm(self.bias, x.reshape(num_seeds, -1, features), self.weight)
        return out.reshape(num_seeds, *batch, -1)


class PerSeedConv2d(nn.Module):
    """K independent 2-d convolutions as one grouped one: [K, B, C, H, W] -> [K, B, C', H', W']."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        gain: float,
    ):
        super().__init__()
        self.stride = stride
        num_seeds = len(generators)
        self.weight = nn.Parameter(
            torch.empty(num_seeds, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.bias = nn.Parameter(torch.zeros(num_seeds, out_channels))
        with torch.no_grad():
            for seed_index, generator in enumerate(generators):
                nn.init.orthogonal_(self.weight[seed_index], gain, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num_seeds, batch, channels, height, width = x.shape
        grouped = x.transpose(0, 1).reshape(batch, num_seeds * channels, height, width)
        weight = self.weight.reshape(-1, *self.weight.shape[2:])
        out = F.conv2d(grouped, weight, self.bias.reshape(-1), stride=self.stride, groups=num_seeds)
        return out.reshape(batch, num_seeds, -1, *out.shape[-2:]).transpose(0, 1)


class PerSeedEmbedding(nn.Module):
    """K independent embedding tables: token ids [K, B, L] -> vectors [K, B, L, dim], N(0, 1) init."""

    def __init__(self, generators: Sequence[torch.Generator], num_tokens: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(len(generators), num_tokens, dim))
        with torch.no_grad():
            for seed_index, generator in enumerate(generators):
                nn.init.normal_(self.weight[seed_index], generator=generator)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        seed_rows = torch.arange(len(self.weight), device=tokens.device).view(-1, *[1] * (tokens.dim() - 1))
        return self.weight[seed_rows, tokens]


def mlp(
    generators: Sequence[torch.Generator],
    in_dim: int,
    hidden_sizes: Sequence[int],
    out_dim: int | None,
    activation: str,
    out_gain: float = 1.0,
) -> nn.Sequential:
    """Fully connected layers with orthogonal init (hidden gain sqrt(2)); with `out_dim`
    None it ends with the last hidden layer's activation (a torso for heads to share)."""
    sizes = [in_dim, *hidden_sizes]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [PerSeedLinear(generators, fan_in, fan_out, HIDDEN_GAIN), ACTIVATIONS[activation]()]
    if out_dim is not None:
        layers.append(PerSeedLinear(generators, sizes[-1], out_dim, out_gain))
    return nn.Sequential(*layers)
