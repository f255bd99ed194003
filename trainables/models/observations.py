"""How an env's observations become network inputs.

Whatever the observation space, a batch of observations becomes a dict of arrays with up
to three entries, the same on workers, in rollouts and replay buffers, on the learner and
in deployment:

- "vector": float32 [..., D], every non-image part flattened (Box flattened, Discrete and
  MultiDiscrete one-hot, MultiBinary as 0/1, Dict and Tuple entries concatenated);
- "image": uint8 [..., C, H, W], one image (a uint8 Box of shape HxWxC, CxHxW or HxW, alone
  or inside a Dict/Tuple), kept as uint8 until the learner's device, where the network
  scales it;
- "action_mask": bool [..., A], the valid actions, where the env exposes `action_mask` in a
  Dict observation or in `info` (as PettingZoo and many board-game envs do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlsweep.trainables.config import ConfigError

Observations = dict[str, np.ndarray]
MASK_KEY = "action_mask"
FLAT_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)
"""Spaces that flatten into the vector (a Box only when it is not an image)."""


def is_image(space: gym.spaces.Space) -> bool:
    return (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and (len(space.shape) == 2 or (len(space.shape) == 3 and _channels_axis(space.shape) is not None))
    )


def _channels_axis(shape: tuple[int, ...]) -> int | None:
    """Where a 3-d image keeps its channels: the smallest axis, first (stacked frames, CxHxW)
    or last (HxWxC); None when the smallest is in the middle."""
    if shape[0] == min(shape):
        return 0
    return 2 if shape[2] == min(shape) else None


def image_shape(space: gym.spaces.Box) -> tuple[int, int, int]:
    """(C, H, W) of an image space."""
    if len(space.shape) == 2:
        return (1, *space.shape)
    if _channels_axis(space.shape) == 0:
        return space.shape
    height, width, channels = space.shape
    return channels, height, width


@dataclass(frozen=True)
class ObservationLayout:
    """The network inputs an observation space gives; `encode` builds them from a batch."""

    space: gym.spaces.Space
    vector_dim: int
    image_shape: tuple[int, int, int] | None
    """(C, H, W) of the image entry, if the observations hold one."""
    mask_dim: int
    """Size of the action mask in a Dict observation; 0 if the observations carry none (an
    env may still give one in `info`)."""

    @classmethod
    def of(cls, space: gym.spaces.Space) -> ObservationLayout:
        """The layout of `space`, or a ConfigError naming a space rlsweep cannot handle."""
        parts = _parts(space)
        images = [part for _, part in parts if is_image(part)]
        if len(images) > 1:
            raise ConfigError(f"observation space {space} holds {len(images)} images; rlsweep handles one")
        for _, part in parts:
            if not (isinstance(part, FLAT_SPACES) or is_image(part)):
                raise ConfigError(
                    f"observation space {space} holds {part}, which rlsweep cannot encode; "
                    "it handles Box, Discrete, MultiDiscrete, MultiBinary and Dict/Tuple of those"
                )
        masks = [part for key, part in parts if key == MASK_KEY]
        return cls(
            space=space,
            vector_dim=sum(
                gym.spaces.flatdim(part) for key, part in parts if key != MASK_KEY and not is_image(part)
            ),
            image_shape=image_shape(images[0]) if images else None,
            mask_dim=gym.spaces.flatdim(masks[0]) if masks else 0,
        )

    def encode(self, obs: Any, infos: dict[str, Any] | None = None) -> Observations:
        """A batch of observations as the vector env returns them, [B, ...] per entry."""
        vectors, encoded = [], {}
        for key, part_space, part in _batch_parts(self.space, obs):
            if key == MASK_KEY:
                encoded[MASK_KEY] = np.asarray(part, dtype=bool).reshape(len(part), -1)
            elif is_image(part_space):
                encoded["image"] = _channels_first(part_space, np.asarray(part, dtype=np.uint8))
            else:
                vectors.append(_flatten_batch(part_space, part))
        if vectors:
            encoded["vector"] = np.concatenate(vectors, axis=-1) if len(vectors) > 1 else vectors[0]
        if infos is not None and MASK_KEY in infos and MASK_KEY not in encoded:
            encoded[MASK_KEY] = np.stack(infos[MASK_KEY]).astype(bool)
        return encoded

    def encode_seeds(self, steps: Sequence[tuple[Any, ...]]) -> Observations:
        """Each seed's vector-env step result (obs, ..., infos), encoded and stacked into
        [K, N, ...] per entry: what one batched forward pass for all seeds takes."""
        encoded = [self.encode(step[0], step[-1]) for step in steps]
        return {key: np.stack([per_seed[key] for per_seed in encoded]) for key in encoded[0]}

    def encode_one(self, obs: Any, action_mask: np.ndarray | None = None) -> Observations:
        """One observation as the env returns it, as a batch of one."""
        batch = gym.vector.utils.concatenate(
            self.space, [obs], gym.vector.utils.create_empty_array(self.space, 1)
        )
        encoded = self.encode(batch)
        if action_mask is not None:
            encoded[MASK_KEY] = np.asarray(action_mask, dtype=bool)[None]
        return encoded


def _parts(space: gym.spaces.Space, key: str = "") -> list[tuple[str, gym.spaces.Space]]:
    """The leaves of a (nested) Dict/Tuple space, keyed by their Dict key."""
    if isinstance(space, gym.spaces.Dict):
        return [part for name, sub in space.spaces.items() for part in _parts(sub, name)]
    if isinstance(space, gym.spaces.Tuple):
        return [part for sub in space.spaces for part in _parts(sub)]
    return [(key, space)]


def _batch_parts(
    space: gym.spaces.Space, batch: Any, key: str = ""
) -> list[tuple[str, gym.spaces.Space, Any]]:
    if isinstance(space, gym.spaces.Dict):
        return [part for name, sub in space.spaces.items() for part in _batch_parts(sub, batch[name], name)]
    if isinstance(space, gym.spaces.Tuple):
        return [
            part
            for sub, sub_batch in zip(space.spaces, batch, strict=True)
            for part in _batch_parts(sub, sub_batch)
        ]
    return [(key, space, batch)]


def _flatten_batch(space: gym.spaces.Space, batch: Any) -> np.ndarray:
    """[B, flatdim] float32 for a batch of a flat space's values."""
    batch = np.asarray(batch)
    if isinstance(space, gym.spaces.Discrete):
        return np.eye(space.n, dtype=np.float32)[batch - space.start]
    if isinstance(space, gym.spaces.MultiDiscrete):
        flat_nvec, flat_start = space.nvec.reshape(-1), space.start.reshape(-1)
        values = batch.reshape(len(batch), -1) - flat_start
        return np.concatenate(
            [np.eye(n, dtype=np.float32)[values[:, i]] for i, n in enumerate(flat_nvec)], axis=-1
        )
    return batch.reshape(len(batch), -1).astype(np.float32)


def _channels_first(space: gym.spaces.Box, batch: np.ndarray) -> np.ndarray:
    if len(space.shape) == 2:
        return batch[:, None]
    if _channels_axis(space.shape) == 0:
        return batch
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
