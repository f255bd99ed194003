"""Encoders: observations as network inputs ("vector" [K, B, D] float, "image"
[K, B, C, H, W] uint8; see `observations.py`) to features [K, B, out_dim]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.models.layers import HIDDEN_GAIN, PerSeedConv2d
from rlsweep.trainables.models.observations import ObservationLayout

TensorObs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class CNNSpec:
    """A convolutional torso for images; the defaults are the Nature DQN's (Mnih et al. 2015)."""

    channels: tuple[int, ...] = (32, 64, 64)
    kernels: tuple[int, ...] = (8, 4, 3)
    strides: tuple[int, ...] = (4, 2, 1)


class Encoder(nn.Module):
    """Observations -> features [K, B, out_dim]: the image through a CNN (uint8 scaled to
    [0, 1] here, on the learner's device), concatenated with the vector as it comes."""

    def __init__(self, generators: Sequence[torch.Generator], layout: ObservationLayout, cnn: CNNSpec):
        super().__init__()
        self.has_vector = layout.vector_dim > 0
        self.out_dim = layout.vector_dim
        self.cnn: nn.Sequential | None = None
        if layout.image_shape is not None:
            channels, height, width = layout.image_shape
            layers: list[nn.Module] = []
            for out_channels, kernel, stride in zip(cnn.channels, cnn.kernels, cnn.strides, strict=True):
                layers += [
                    PerSeedConv2d(generators, channels, out_channels, kernel, stride, HIDDEN_GAIN),
                    nn.ReLU(),
                ]
                channels = out_channels
                height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
                if min(height, width) < 1:
                    raise ConfigError(
                        f"config keys 'cnn_kernels' {list(cnn.kernels)} and 'cnn_strides' "
                        f"{list(cnn.strides)} shrink the {layout.image_shape[1]}x{layout.image_shape[2]} "
                        "image observations to nothing; use fewer, smaller or less strided convolutions"
                    )
            self.cnn = nn.Sequential(*layers)
            self.out_dim += channels * height * width

    def forward(self, obs: TensorObs) -> torch.Tensor:
        features = []
        if self.cnn is not None:
            image = obs["image"].float() / 255.0
            features.append(self.cnn(image).flatten(-3))
        if self.has_vector:
            features.append(obs["vector"])
        return features[0] if len(features) == 1 else torch.cat(features, -1)
