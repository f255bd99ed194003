"""The gymnasium spaces rlsweep can learn in, asked of the parts that handle them.

What an env observes, `observations.ObservationLayout` encodes; what it acts in, PPO's
action heads (`distributions.ACTION_SPACES`) cover, and each algorithm declares its own
subset (`Algorithm.action_spaces`). The env check and the vector envs ask here, so a space
the core learns to handle is supported everywhere at once.
"""

from __future__ import annotations

import gymnasium as gym

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.models.distributions import ACTION_SPACES
from rlsweep.trainables.models.observations import ObservationLayout


def check_supported_spaces(
    env_label: str, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
) -> None:
    """A ConfigError naming the space when rlsweep cannot observe or act in an env's spaces."""
    try:
        ObservationLayout.of(observation_space)
    except ConfigError as error:
        raise ConfigError(f"env {env_label!r}: {error}") from None
    if not isinstance(action_space, ACTION_SPACES):
        raise ConfigError(
            f"env {env_label!r} has action space {action_space}; "
            f"rlsweep supports {space_names(ACTION_SPACES)} actions"
        )


def space_names(space_types: tuple[type[gym.spaces.Space], ...]) -> str:
    """ "Box and Discrete", "Box, Discrete and MultiDiscrete"."""
    names = [space_type.__name__ for space_type in space_types]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
