"""Encoders: observations as network inputs ("vector" [K, B, D] float, "image"
[K, B, C, H, W] uint8, "text" [K, B, L] token ids; see `observations.py`) to features
[K, B, out_dim].

An image's convolutions are chosen from its size unless the config lists them: the Nature
CNN from 36 pixels up (the smallest image its 8/4/3 kernels and 4/2/1 strides leave a
pixel of), and below that, grids (MiniGrid's 7x7, a 3x3 view, a 10x10 board), small
kernels without striding, as MiniGrid's and SB3's docs advise, so no cell is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.models.layers import HIDDEN_GAIN, PerSeedConv2d, PerSeedEmbedding
from rlsweep.trainables.models.observations import TEXT_VOCABULARY, ObservationLayout

TensorObs = dict[str, torch.Tensor]
NATURE_CNN_MIN_SIZE = 36
"""The smallest image side the Nature CNN leaves a pixel of: (36 - 8) // 4 + 1 = 8, 3, 1."""
TEXT_EMBEDDING_DIM = 8
"""Features per word of a text entry."""


@dataclass(frozen=True)
class CNNSpec:
    """A convolutional torso for images: one (channels, kernel, stride) per convolution."""

    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]

    @classmethod
    def nature(cls) -> CNNSpec:
        """The Nature DQN's (Mnih et al. 2015), for frames of 36 pixels and more."""
        return cls((32, 64, 64), (8, 4, 3), (4, 2, 1))

    @classmethod
    def for_image(cls, height: int, width: int) -> CNNSpec:
        """The convolutions for an image of this size: the Nature CNN from 36 pixels up; for
        smaller grids up to three stride-1 convolutions of 16, 32, 64 channels, 2x2 kernels
        below 10 cells (as MiniGrid's docs), 3x3 from 10, as many as leave a cell (none for
        a 1-cell-wide image, which is read as it is)."""
        side = min(height, width)
        if side >= NATURE_CNN_MIN_SIZE:
            return cls.nature()
        kernel = 2 if side < 10 else 3
        count = min(3, (side - 1) // (kernel - 1))
        return cls((16, 32, 64)[:count], (kernel,) * count, (1,) * count)

    @classmethod
    def of(
        cls,
        image_shape: tuple[int, int, int],
        channels: Sequence[int] = (),
        kernels: Sequence[int] = (),
        strides: Sequence[int] = (),
    ) -> CNNSpec:
        """The convolutions for an image (C, H, W): the config's `cnn_*` lists where given,
        the size's choice (`for_image`) for those left empty."""
        chosen = cls.for_image(*image_shape[1:])
        spec = cls(
            tuple(channels) or chosen.channels,
            tuple(kernels) or chosen.kernels,
            tuple(strides) or chosen.strides,
        )
        lengths = {len(spec.channels), len(spec.kernels), len(spec.strides)}
        if len(lengths) != 1:
            raise ConfigError(
                f"config keys 'cnn_channels' {list(spec.channels)}, 'cnn_kernels' {list(spec.kernels)} "
                f"and 'cnn_strides' {list(spec.strides)} (empty ones chosen for the "
                f"{image_shape[1]}x{image_shape[2]} image) must list one value per convolution; "
                "set all three, or none"
            )
        return spec

    def output_size(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(C', H', W') after the convolutions, or a ConfigError naming the keys that shrink
        the image to nothing."""
        channels, height, width = image_shape
        for out_channels, kernel, stride in zip(self.channels, self.kernels, self.strides, strict=True):
            channels = out_channels
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
            if min(height, width) < 1:
                raise ConfigError(
                    f"config keys 'cnn_kernels' {list(self.kernels)} and 'cnn_strides' "
                    f"{list(self.strides)} shrink the {image_shape[1]}x{image_shape[2]} "
                    "image observations to nothing; use fewer, smaller or less strided convolutions, "
                    "or leave the cnn_* keys out to have them chosen from the image size"
                )
        return channels, height, width


class Encoder(nn.Module):
    """Observations -> features [K, B, out_dim]: the image through a CNN (`cnn`, or the one
    its size chooses; uint8 scaled to [0, 1] here, on the learner's device), the text's
    words embedded, concatenated with the vector as it comes."""

    def __init__(self, generators: Sequence[torch.Generator], layout: ObservationLayout, cnn: CNNSpec | None):
        super().__init__()
        self.has_vector = layout.vector_dim > 0
        self.out_dim = layout.vector_dim
        self.cnn: nn.Sequential | None = None
        if layout.image_shape is not None:
            cnn = cnn or CNNSpec.of(layout.image_shape)
            channels = layout.image_shape[0]
            layers: list[nn.Module] = []
            for out_channels, kernel, stride in zip(cnn.channels, cnn.kernels, cnn.strides, strict=True):
                layers += [
                    PerSeedConv2d(generators, channels, out_channels, kernel, stride, HIDDEN_GAIN),
                    nn.ReLU(),
                ]
                channels = out_channels
            self.cnn = nn.Sequential(*layers)
            channels, height, width = cnn.output_size(layout.image_shape)
            self.out_dim += channels * height * width
        self.embedding: PerSeedEmbedding | None = None
        if layout.text_tokens:
            self.embedding = PerSeedEmbedding(generators, TEXT_VOCABULARY, TEXT_EMBEDDING_DIM)
            self.out_dim += layout.text_tokens * TEXT_EMBEDDING_DIM

    def forward(self, obs: TensorObs) -> torch.Tensor:
        features = []
        if self.cnn is not None:
            image = obs["image"].float() / 255.0
            features.append(self.cnn(image).flatten(-3))
        if self.embedding is not None:
            features.append(self.embedding(obs["text"]).flatten(-2))  # [K, B, L * dim]
        if self.has_vector:
            features.append(obs["vector"])
        return features[0] if len(features) == 1 else torch.cat(features, -1)
