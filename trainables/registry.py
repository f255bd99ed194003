"""Algorithm names as experiment files and the CLI spell them, each with its module: one
line per algorithm. Modules are imported on first use, so naming an algorithm costs
nothing until it is trained."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from rlsweep.trainables.config import ConfigError

if TYPE_CHECKING:
    import gymnasium as gym

ALGORITHM_MODULES = {
    "PPO": "rlsweep.trainables.ppo",
    "DQN": "rlsweep.trainables.dqn",
    "SAC": "rlsweep.trainables.sac",
    "MultiAgentPPO": "rlsweep.trainables.multi_agent_ppo",
    "BC": "rlsweep.trainables.marwil",
    "MARWIL": "rlsweep.trainables.marwil",
    "DiscreteCQL": "rlsweep.trainables.cql",
    "CQL": "rlsweep.trainables.cql",
    "IQL": "rlsweep.trainables.iql",
}
"""Name -> the module defining the algorithm's Trainable class (an `Algorithm` subclass) of
that name, in the order `rlsweep list` shows them."""


def algorithms() -> dict[str, type]:
    """Every algorithm's Trainable class, by name."""
    return {
        name: getattr(importlib.import_module(module), name) for name, module in ALGORITHM_MODULES.items()
    }


def get_algorithm(name: str) -> type:
    """The trainable class for `name` (case-insensitive), or a ConfigError listing the choices."""
    for known, module in ALGORITHM_MODULES.items():
        if known.lower() == name.lower():
            return getattr(importlib.import_module(module), known)
    raise ConfigError(f"unknown algorithm {name!r}; available: {', '.join(ALGORITHM_MODULES)}")


def algorithms_acting_in(action_space: gym.spaces.Space) -> list[str]:
    """The names of the algorithms that can act in `action_space`."""
    return [
        name for name, trainable in algorithms().items() if not trainable.action_space_problem(action_space)
    ]
