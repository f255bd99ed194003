"""Algorithm names as experiment files and the CLI spell them, each registered by its module."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from rlsweep.trainables.config import ConfigError

if TYPE_CHECKING:
    import gymnasium as gym

AlgorithmClass = TypeVar("AlgorithmClass", bound=type)

ALGORITHMS: dict[str, type] = {}
"""Name -> the algorithm's Trainable class, in registration order."""


def register(trainable: AlgorithmClass) -> AlgorithmClass:
    """Class decorator: make an algorithm known by its class name."""
    ALGORITHMS[trainable.__name__] = trainable
    return trainable


def get_algorithm(name: str) -> type:
    """The trainable class for `name` (case-insensitive), or a ConfigError listing the choices."""
    for known, trainable in ALGORITHMS.items():
        if known.lower() == name.lower():
            return trainable
    raise ConfigError(f"unknown algorithm {name!r}; available: {', '.join(ALGORITHMS)}")


def algorithms_acting_in(action_space: gym.spaces.Space) -> list[str]:
    """The names of the algorithms that can act in `action_space`."""
    return [
        name for name, trainable in ALGORITHMS.items() if not trainable.action_space_problem(action_space)
    ]
