"""The gymnasium spaces rlsweep can learn in: one list for observations, one for actions.

Policies encode what an env observes and each algorithm declares what it can act in
(`Algorithm.action_spaces`); the env check and the vector envs ask here, so teaching the
core a new space is one edit in this module.
"""

from __future__ import annotations

import gymnasium as gym

from rlsweep.trainables.config import ConfigError

OBSERVATION_SPACES: tuple[type[gym.spaces.Space], ...] = (gym.spaces.Box, gym.spaces.Discrete)
"""Observation spaces every policy encodes (Discrete ones one-hot)."""

ACTION_SPACES: tuple[type[gym.spaces.Space], ...] = (gym.spaces.Box, gym.spaces.Discrete)
"""Action spaces at least one algorithm acts in; see each algorithm's `action_spaces`."""


def check_supported_spaces(
    env_label: str, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
) -> None:
    """A ConfigError naming the space when rlsweep cannot observe or act in an env's spaces."""
    if not isinstance(observation_space, OBSERVATION_SPACES):
        raise ConfigError(
            f"env {env_label!r} has observation space {observation_space}; "
            f"rlsweep supports {space_names(OBSERVATION_SPACES)} observations"
        )
    if not isinstance(action_space, ACTION_SPACES):
        raise ConfigError(
            f"env {env_label!r} has action space {action_space}; "
            f"rlsweep supports {space_names(ACTION_SPACES)} actions"
        )


def space_names(space_types: tuple[type[gym.spaces.Space], ...]) -> str:
    """ "Box and Discrete", "Box, Discrete and MultiDiscrete"."""
    names = [space_type.__name__ for space_type in space_types]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
