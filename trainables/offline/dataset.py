"""A dataset of recorded transitions as plain arrays, in the order they were recorded.

Every offline algorithm trains from a `Dataset` whatever file it came from (`formats.py`
reads Minari datasets and .npz files into one). Transitions are rows: row i is
(observations[i], actions[i], rewards[i], next_observations[i]); an episode ends at a row
where `terminations` (the env's terminal state: no bootstrapping) or `truncations` (a time
limit, or the recording's end) is true.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.external.spaces import space_spec

ARRAYS = ("observations", "actions", "rewards", "next_observations", "terminations", "truncations")
"""The per-transition arrays of a dataset, in the order of its rows."""


@dataclass
class DatasetInfo:
    """What a dataset says about itself beside its transitions."""

    env_id: str | None = None
    """The env the transitions were recorded in (a gymnasium id, or what rlsweep can build)."""
    observation_space: gym.spaces.Space | None = None
    action_space: gym.spaces.Space | None = None
    policy: str = "unknown"
    """What acted: "random", a checkpoint path, or "module:fn", with its noise."""
    ref_min_score: float | None = None
    """An episode return that scores 0 (a random policy's), for normalized scores."""
    ref_max_score: float | None = None
    """An episode return that scores 100 (an expert's)."""
    seed: int | None = None
    """The seed the recording started from."""

    def normalized_score(self, episode_return: np.ndarray) -> np.ndarray | None:
        """100 (R - min) / (max - min): 0 is random, 100 expert; None without reference scores."""
        if self.ref_min_score is None or self.ref_max_score is None:
            return None
        return 100 * (episode_return - self.ref_min_score) / (self.ref_max_score - self.ref_min_score)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        for key in ("observation_space", "action_space"):
            data[key] = None if data[key] is None else space_to_dict(data[key])
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> DatasetInfo:
        data = json.loads(text)
        for key in ("observation_space", "action_space"):
            data[key] = None if data[key] is None else space_from_dict(data[key])
        return cls(**data)


@dataclass
class Dataset:
    """Transitions [N, ...] in recording order, and what recorded them."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray  # float32 [N]
    next_observations: np.ndarray
    terminations: np.ndarray  # bool [N]
    truncations: np.ndarray  # bool [N]
    info: DatasetInfo = field(default_factory=DatasetInfo)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def episode_ends(self) -> np.ndarray:
        """Rows where an episode ends, [E]; the last row always ends one."""
        ends = self.terminations | self.truncations
        ends[-1] = True
        return np.flatnonzero(ends)

    def episode_returns(self) -> np.ndarray:
        """The undiscounted return of every episode, [E]."""
        starts = np.concatenate([[0], self.episode_ends[:-1] + 1])
        return np.add.reduceat(self.rewards.astype(np.float64), starts)

    def episode_starts(self) -> np.ndarray:
        """Rows where an episode starts, [E]."""
        return np.concatenate([[0], self.episode_ends[:-1] + 1])

    def returns_to_go(self, gamma: float) -> np.ndarray:
        """G_i = r_i + gamma G_{i+1} within each episode, float32 [N]. At a truncation the
        recorded rewards stop: G there is r alone (MARWIL's Monte Carlo return, as RLlib's)."""
        returns = np.zeros(len(self), dtype=np.float64)
        ends = np.zeros(len(self), dtype=bool)
        ends[self.episode_ends] = True
        following = 0.0
        for i in range(len(self) - 1, -1, -1):
            following = self.rewards[i] + (0.0 if ends[i] else gamma * following)
            returns[i] = following
        return returns.astype(np.float32)

    def check(self, where: str) -> None:
        """A ConfigError naming `where` for rows that disagree in length, or values that are
        NaN or infinite."""
        lengths = {name: len(getattr(self, name)) for name in ARRAYS}
        if len(set(lengths.values())) != 1:
            raise ConfigError(f"dataset {where} is corrupt: its arrays differ in length ({lengths})")
        if len(self) == 0:
            raise ConfigError(f"dataset {where} holds no transitions")
        for name in ARRAYS[:4]:
            values = getattr(self, name)
            if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
                bad = int(np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(1))[0])
                raise ConfigError(
                    f"dataset {where} has NaN or infinite {name} (first at transition {bad}); "
                    "remove or fix those transitions"
                )

    def check_spaces(
        self, where: str, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
    ) -> None:
        """A ConfigError if the dataset was recorded in other spaces than the env's, or its
        arrays do not fit them."""
        for what, recorded, env_space in (
            ("observation", self.info.observation_space, observation_space),
            ("action", self.info.action_space, action_space),
        ):
            if recorded is not None and not same_space(recorded, env_space):
                raise ConfigError(
                    f"dataset {where} was recorded with {what} space {_one_line(recorded)}, but the env "
                    f"has {_one_line(env_space)}; record it again in this env, or set env to the dataset's"
                )
        if self.observations.shape[1:] != observation_space.shape:
            raise ConfigError(
                f"dataset {where} has observations of shape {self.observations.shape[1:]}, but the env's "
                f"observation space {_one_line(observation_space)} has shape {observation_space.shape}"
            )
        if self.actions.shape[1:] != action_space.shape:
            raise ConfigError(
                f"dataset {where} has actions of shape {self.actions.shape[1:]}, but the env's action "
                f"space {_one_line(action_space)} has shape {action_space.shape}"
            )
        if isinstance(action_space, gym.spaces.Discrete):
            low, high = int(action_space.start), int(action_space.start + action_space.n - 1)
            if self.actions.min() < low or self.actions.max() > high:
                raise ConfigError(
                    f"dataset {where} has actions in [{self.actions.min()}, {self.actions.max()}], outside "
                    f"the env's action space {action_space}"
                )


def same_space(a: gym.spaces.Space, b: gym.spaces.Space) -> bool:
    """Spaces equal in kind, shape and bounds (dtype aside: Minari may store float64 bounds)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, gym.spaces.Box):
        return a.shape == b.shape and np.allclose(a.low, b.low) and np.allclose(a.high, b.high)
    return a == b


def space_to_dict(space: gym.spaces.Space) -> dict[str, Any]:
    """A Box or Discrete space as JSON-ready data, in the spec form external envs use too."""
    if isinstance(space, (gym.spaces.Box, gym.spaces.Discrete)):
        return space_spec(space)
    raise ConfigError(f"datasets hold Box or Discrete spaces, not {space}")


def space_from_dict(data: dict[str, Any]) -> gym.spaces.Space:
    if data["type"] == "Box":
        dtype = np.dtype(data["dtype"])
        return gym.spaces.Box(
            np.asarray(data["low"], dtype), np.asarray(data["high"], dtype), tuple(data["shape"]), dtype
        )
    return gym.spaces.Discrete(data["n"], start=data["start"])


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
