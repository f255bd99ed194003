"""Building the vectorized gymnasium environments that workers step and evaluation runs on."""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np

from rlsweep.trainables.config import ConfigError


def check_env(env_id: str) -> str:
    """The registered id for `env_id`, or a ConfigError naming it when gymnasium cannot build it.

    "package.module:EnvId-v0" first imports the module that registers EnvId-v0, as
    `gymnasium.make` does; worker processes repeat the import through this function.
    """
    module, _, registered_id = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except Exception as error:
            raise ConfigError(
                f"unknown env {env_id!r}: importing {module!r} failed with {type(error).__name__}: {error}"
            ) from None
    try:
        gym.spec(registered_id)
    except (gym.error.Error, ModuleNotFoundError, ImportError, AttributeError) as error:
        raise ConfigError(f"unknown env {env_id!r}: {error}") from None
    return registered_id


def make_vector_env(
    env_id: str, num_envs: int, env_config: dict[str, Any] | None = None
) -> gym.vector.VectorEnv:
    """A vector env of `num_envs` copies of `env_id` in next-step autoreset mode, recording
    episode statistics; observations as the env gives them (see `observations.py`).

    Envs with a native vector implementation (CartPole steps ~9x faster that way) use it;
    others run in a SyncVectorEnv.
    """
    registered_id = check_env(env_id)
    kwargs = dict(env_config or {})
    mode = "vector_entry_point" if _has_native_vector(registered_id, kwargs) else "sync"
    env = gym.make_vec(registered_id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
    return gym.wrappers.vector.RecordEpisodeStatistics(env)


def env_spaces(
    env_id: str, env_config: dict[str, Any] | None = None
) -> tuple[gym.spaces.Space, gym.spaces.Space]:
    """The observation and action spaces of one `env_id` env, as a policy is built for."""
    env = gym.make(check_env(env_id), **(env_config or {}))
    spaces = env.observation_space, env.action_space
    env.close()
    return spaces


def _has_native_vector(env_id: str, kwargs: dict[str, Any]) -> bool:
    spec = gym.spec(env_id)
    # JAX-based vector entry points would pull in jax; the numpy ones are the fast path.
    entry = spec.vector_entry_point
    return isinstance(entry, str) and "jax" not in entry.lower() and not kwargs.get("render_mode")


def episode_stats(infos: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the episodes that finished in one vector step."""
    if "episode" not in infos:
        return np.empty(0), np.empty(0, dtype=np.int64)
    done = infos["_episode"]
    return infos["episode"]["r"][done], infos["episode"]["l"][done]
