"""Building envs from a resolved env (`EnvSource`): one env, or the vector envs that workers
step and evaluation runs on.

Gymnasium envs take `env_config` as `gymnasium.make`'s keyword arguments, and so do classes
and factories with keyword parameters. RLlib-style classes and factories (`config` first)
and register_env creators are called with it as an `EnvContext`, as RLlib calls them, so
they can shard or seed per worker.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from rlsweep.trainables.config import ConfigError, did_you_mean
from rlsweep.trainables.envs import atari
from rlsweep.trainables.envs.context import EnvContext
from rlsweep.trainables.envs.names import EnvSource, EnvSpecifier, as_source
from rlsweep.trainables.models.spaces import check_supported_spaces


def make_env(
    env: EnvSource | EnvSpecifier,
    env_config: dict[str, Any] | None = None,
    *,
    worker_index: int = 0,
    num_workers: int = 0,
    vector_index: int = 0,
) -> gym.Env:
    """One env, built as a worker would build it (errors from the env's own code propagate)."""
    source = as_source(env)
    if source.spec is not None:
        return gym.make(unchecked(source.spec), **(env_config or {}))
    return create(source, EnvContext(env_config, worker_index, num_workers, vector_index))


def make_vector_env(
    env: EnvSource | EnvSpecifier,
    num_envs: int,
    env_config: dict[str, Any] | None = None,
    *,
    worker_index: int = 0,
    num_workers: int = 0,
) -> gym.vector.VectorEnv:
    """A vector env of `num_envs` copies of the env in next-step autoreset mode, recording
    episode statistics; observations as the env gives them (`observations.py` encodes them).

    Gymnasium envs with a native vector implementation (CartPole steps ~9x faster that way)
    use it, Atari games ale-py's (`atari.py`); others run in a SyncVectorEnv, whose copy i
    of a creator's env gets an EnvContext with vector_index i.
    """
    source = as_source(env)
    kwargs = dict(env_config or {})
    if source.is_atari:
        return atari.make_vector_env(source.spec, num_envs, kwargs)
    if source.external:
        from rlsweep.trainables.external.vector_env import ExternalVectorEnv

        return gym.wrappers.vector.RecordEpisodeStatistics(
            ExternalVectorEnv(kwargs, num_envs, worker_index=worker_index)
        )
    if source.spec is not None:
        mode = "vector_entry_point" if _has_native_vector(source.spec, kwargs) else "sync"
        vector_env = gym.make_vec(
            unchecked(source.spec), num_envs=num_envs, vectorization_mode=mode, **kwargs
        )
    else:
        contexts = [EnvContext(kwargs, worker_index, num_workers, index) for index in range(num_envs)]
        vector_env = gym.vector.SyncVectorEnv(
            [functools.partial(create, source, context) for context in contexts],
            autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
        )
    check_supported_spaces(source.label, vector_env.single_observation_space, vector_env.single_action_space)
    return gym.wrappers.vector.RecordEpisodeStatistics(vector_env)


def env_spaces(
    env: EnvSource | EnvSpecifier, env_config: dict[str, Any] | None = None
) -> tuple[gym.spaces.Space, gym.spaces.Space]:
    """The observation and action spaces of one env, as a policy is built for."""
    source = as_source(env)
    if source.is_atari:
        return atari.spaces(source.spec, env_config)
    if source.external:
        from rlsweep.trainables.external.vector_env import external_config

        return external_config(env_config).spaces()
    instance = make_env(source, env_config)
    spaces = instance.observation_space, instance.action_space
    instance.close()
    return spaces


def unchecked(spec: EnvSpec) -> EnvSpec:
    """`spec` without gymnasium's passive env checker: `check.check_env` gathered its findings
    once, before any trial; every worker and evaluation env repeating them is noise."""
    return dataclasses.replace(spec, disable_env_checker=True)


def episode_stats(infos: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the episodes that finished in one vector step."""
    if "episode" not in infos:
        return np.empty(0), np.empty(0, dtype=np.int64)
    done = infos["_episode"]
    return infos["episode"]["r"][done], infos["episode"]["l"][done]


def create(source: EnvSource, context: EnvContext) -> gym.Env:
    """Call a class or factory with env_config's keys as keywords, or with the EnvContext,
    as its signature asks (`names.takes_config_as_keywords`)."""
    creator = source.creator
    if source.config_as_keywords:
        check_config_keys(source.label, creator, context)
        instance = creator(**context)
    else:
        instance = creator(context)
    if not isinstance(instance, gym.Env):
        raise ConfigError(
            f"env {source.label!r} built a {type(instance).__module__}.{type(instance).__qualname__}, "
            "not a gymnasium.Env"
        )
    return instance


def check_config_keys(
    label: str, constructor: Callable[..., Any], env_config: dict[str, Any], also_accepted: Iterable[str] = ()
) -> None:
    """A ConfigError naming the first env_config key that `constructor` takes no keyword
    argument for (`also_accepted`: keys a wrapper such as `gymnasium.make` consumes)."""
    if not env_config:
        return
    try:
        parameters = inspect.signature(constructor).parameters.values()
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = {p.name for p in parameters if p.kind in keywords} | set(also_accepted)
    for key in env_config:
        if key not in accepted:
            takes = ", ".join(sorted(accepted)) or "none"
            hint = did_you_mean(key, accepted)
            raise ConfigError(f"env {label!r} takes no env_config key {key!r}{hint}; it takes: {takes}")


def _has_native_vector(spec: gym.envs.registration.EnvSpec, kwargs: dict[str, Any]) -> bool:
    # JAX-based vector entry points would pull in jax; the numpy ones are the fast path.
    entry = spec.vector_entry_point
    return isinstance(entry, str) and "jax" not in entry.lower() and not kwargs.get("render_mode")
