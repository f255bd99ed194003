"""How an env's observations become network inputs.

Whatever the observation space, a batch of observations becomes a dict of arrays with up
to three entries, the same on workers, in rollouts and replay buffers, on the learner and
in deployment:

- "vector": float32 [..., D], every non-image part flattened (Box flattened, Discrete and
  MultiDiscrete one-hot, MultiBinary as 0/1, Dict and Tuple entries concatenated);
- "image": uint8 [..., C, H, W], one image (a uint8 Box of shape HxWxC, CxHxW or HxW, alone
  or inside a Dict/Tuple), kept as uint8 until the learner's device, where the network
  scales it;
- "text": int64 [..., TEXT_TOKENS], one text (a gymnasium `Text`, or any space of strings
  such as MiniGrid's `MissionSpace`) as its first words, each hashed into one of
  TEXT_VOCABULARY ids (0 pads), which the network embeds; a text the space fixes to one
  constant value (MiniGrid's single-mission envs) carries nothing and is dropped, with one
  notice;
- "action_mask": bool [..., A], the valid actions, where the env exposes `action_mask` in a
  Dict observation or in `info` (as PettingZoo and many board-game envs do).
"""

from __future__ import annotations

import functools
import logging
import re
import zlib
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
TEXT_TOKENS = 32
"""Words of a text the network reads; longer texts are cut, shorter ones padded."""
TEXT_VOCABULARY = 1024
"""Ids words hash into (id 0 pads): any vocabulary, known in advance or not, fits."""

logger = logging.getLogger(__name__)


def is_image(space: gym.spaces.Space) -> bool:
    return (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and (len(space.shape) == 2 or (len(space.shape) == 3 and _channels_axis(space.shape) is not None))
    )


def _channels_axis(shape: tuple[int, ...]) -> int | None:
    """Where a 3-d image keeps its channels: the smallest axis, last (HxWxC, gymnasium's
    convention, also when all axes are equal: a 3x3 grid of 3 features) or first (stacked
    frames, CxHxW); None when the smallest is in the middle."""
    if shape[2] == min(shape):
        return 2
    return 0 if shape[0] == min(shape) else None


def is_text(space: gym.spaces.Space) -> bool:
    """A space of strings: gymnasium's `Text`, or one declaring str values (MiniGrid's `MissionSpace`)."""
    return isinstance(space, gym.spaces.Text) or (space.dtype is not None and space.dtype.kind == "U")


def constant_text(space: gym.spaces.Space) -> str | None:
    """The one value of a text space that allows only one (MiniGrid's `MissionSpace` without
    placeholders, e.g. "get to the green goal square"), else None."""
    if isinstance(space, gym.spaces.Text) or getattr(space, "ordered_placeholders", True) is not None:
        return None
    value = space.sample()
    return None if space.contains(value + " ") else value  # BabyAI's accepts any text: not constant


def tokenize(texts: Sequence[str]) -> np.ndarray:
    """[B, TEXT_TOKENS] int64 word ids of a batch of texts: lowercase words hashed (crc32, the
    same in every process) into 1..TEXT_VOCABULARY-1, then 0s."""
    tokens = np.zeros((len(texts), TEXT_TOKENS), dtype=np.int64)
    for row, text in enumerate(texts):
        words = re.findall(r"\w+", str(text).lower())[:TEXT_TOKENS]
        tokens[row, : len(words)] = [1 + zlib.crc32(word.encode()) % (TEXT_VOCABULARY - 1) for word in words]
    return tokens


@functools.cache
def _notice_dropped_text(key: str, value: str) -> None:
    """Once per process and text: the observation entry the network does not read."""
    logger.warning("observation entry %r is always %r and carries nothing; it is not encoded", key, value)


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
    text_tokens: int = 0
    """Token ids of the text entry (TEXT_TOKENS), 0 if the observations hold no text that varies."""

    @classmethod
    def of(cls, space: gym.spaces.Space) -> ObservationLayout:
        """The layout of `space`, or a ConfigError naming a space rlsweep cannot handle."""
        parts = _parts(space)
        for _, part in parts:
            if not (isinstance(part, FLAT_SPACES) or is_image(part) or is_text(part)):
                raise ConfigError(
                    f"observation space {' '.join(str(space).split())} holds {type(part).__name__} "
                    "observations, which no rlsweep encoder can take (they have no fixed size); "
                    "wrap the env to give Box, Discrete, MultiDiscrete, MultiBinary, Text "
                    "or Dict/Tuple of those"
                )
        for kind, found in (("images", is_image), ("texts", is_text)):
            count = sum(found(part) for _, part in parts)
            if count > 1:
                raise ConfigError(f"observation space {space} holds {count} {kind}; rlsweep handles one")
        texts = {key: constant_text(part) for key, part in parts if is_text(part)}
        for key, value in texts.items():
            if value is not None:
                _notice_dropped_text(key, value)
        images = [part for _, part in parts if is_image(part)]
        masks = [part for key, part in parts if key == MASK_KEY]
        return cls(
            space=space,
            vector_dim=sum(
                gym.spaces.flatdim(part)
                for key, part in parts
                if key != MASK_KEY and not is_image(part) and not is_text(part)
            ),
            image_shape=image_shape(images[0]) if images else None,
            mask_dim=gym.spaces.flatdim(masks[0]) if masks else 0,
            text_tokens=TEXT_TOKENS if None in texts.values() else 0,
        )

    def encode(self, obs: Any, infos: dict[str, Any] | None = None) -> Observations:
        """A batch of observations as the vector env returns them, [B, ...] per entry."""
        vectors, encoded = [], {}
        for key, part_space, part in _batch_parts(self.space, obs):
            if key == MASK_KEY:
                encoded[MASK_KEY] = np.asarray(part, dtype=bool).reshape(len(part), -1)
            elif is_image(part_space):
                encoded["image"] = _channels_first(part_space, np.asarray(part, dtype=np.uint8))
            elif is_text(part_space):
                if self.text_tokens:
                    encoded["text"] = tokenize(part)
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
