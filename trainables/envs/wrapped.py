"""A gymnasium env with gymnasium-style wrappers around it, named in an experiment file.

Many env packages ship wrappers their envs are meant to be used through (MiniGrid's
`ImgObsWrapper` keeps the image of its Dict observation; gymnasium's `FlattenObservation`
turns a nested space into a vector). An experiment names this factory as its env and lists
the env and its wrappers in `env_config`, so YAML stays data:

    env: rlsweep.trainables.envs.wrapped:wrapped_env
    config:
      env_config:
        id: minigrid:MiniGrid-Empty-5x5-v0       # any gymnasium id, "module:Id" imports module
        wrappers: [minigrid.wrappers:ImgObsWrapper]
        max_episode_steps: 100                    # the rest: gymnasium.make keyword arguments
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from rlsweep.trainables.config import ConfigError


def wrapped_env(env_config: dict[str, Any]) -> gym.Env:
    """`gymnasium.make(env_config["id"], **rest)` inside each of `env_config["wrappers"]`
    ("module:Class", applied in order, innermost first)."""
    options = dict(env_config)
    if "id" not in options:
        raise ConfigError("env_config of rlsweep.trainables.envs.wrapped:wrapped_env needs the key 'id'")
    env_id, wrappers = options.pop("id"), options.pop("wrappers", [])
    env = gym.make(env_id, **options)
    for wrapper in wrappers:
        env = _wrapper_class(wrapper)(env)
    return env


def _wrapper_class(name: str) -> Any:
    module_name, _, class_name = name.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(
            f"env_config key 'wrappers' names {name!r}, which is not a 'module:Class' that imports"
        ) from None
