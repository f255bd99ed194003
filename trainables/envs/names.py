"""What an env name refers to. An env is named (trainable config `env`, experiment `env`,
`rlsweep train --env`) as

    "CartPole-v1"           a registered gymnasium id;
    "my_pkg.envs:Maze-v0"   a module to import first (it registers Maze-v0), then the id;
    "my_pkg.envs:Maze"      a gymnasium.Env subclass or a factory in that module (env_config
                            as keywords, or as one dict: `takes_config_as_keywords`);
    Maze, make_maze         the class or factory itself (tune.run and tune.Tuner configs);
    "rlsweep/MemoryCue-v0"  one of rlsweep's own envs (`partially_observed.py`);
    "maze"                  a name registered with `ray.tune.registry.register_env(name, creator)`;
    "Maze-v0"               an id registered with `gym.register` in the driver process only: it
                            reaches trial processes through `publish_gym_registration`;
    "external"              simulators that call in over HTTP (`trainables/external/`); env_config
                            gives the spaces and how to launch them.

A trial resolves its env once (`resolve_env`) and hands the resulting `EnvSource` to its
workers, which build envs from it without looking the name up again: a gymnasium id
travels as its `EnvSpec`, so a worker needs no registration of its own.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.envs import atari, partially_observed
from rlsweep.trainables.envs.errors import first_line, missing_dependency

CONFIG_PARAMETER_NAMES = ("config", "env_config")
"""Names of the first parameter of an RLlib-style env class or factory (its env_config dict)."""

POSITIONAL_KINDS = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.VAR_POSITIONAL,
)

EnvSpecifier = str | Callable[..., Any]
"""How a config names its env: a string in one of the forms above, or a class or factory."""


@dataclass(frozen=True)
class EnvSource:
    """What an env name refers to: a gymnasium spec, or a creator of one env."""

    label: str
    """The name as given, or "module:Name" for a class or factory: for messages and folders."""
    spec: EnvSpec | None = None
    """A gymnasium env's spec; env_config are `gymnasium.make` kwargs."""
    creator: Callable[..., Any] | None = None
    """A class, factory or register_env creator."""
    config_as_keywords: bool = False
    """The creator takes env_config's keys as keyword arguments (gymnasium's convention), not
    one EnvContext (RLlib's, and always register_env's): see `takes_config_as_keywords`."""
    external: bool = False
    """Simulators serve the experience (`env: external`); env_config is an ExternalConfig."""

    @property
    def is_gymnasium_own(self) -> bool:
        """One of gymnasium's own envs (CartPole, LunarLander, MuJoCo, ...): tested by
        gymnasium, so its env checker's findings (CartPole's infinite bounds) are not news."""
        entry_point = self.spec.entry_point if self.spec is not None else None
        return isinstance(entry_point, str) and entry_point.startswith("gymnasium.envs.")

    @property
    def is_atari(self) -> bool:
        """An Atari game: stepped by ale-py's vector env, `env_config` its preprocessing."""
        return self.spec is not None and self.spec.entry_point == atari.ATARI_ENTRY_POINT


class GymSpecCreator:
    """A gymnasium spec published with `register_env` under its id, so that trial processes,
    which did not run the driver's `gym.register`, resolve the id to the same spec."""

    def __init__(self, spec: EnvSpec):
        self.spec = spec

    def __call__(self, env_config: dict[str, Any]) -> gym.Env:
        return gym.make(self.spec, **env_config)


def env_label(env: EnvSpecifier) -> str:
    """A readable name for messages, folders and trackers: the string as given, or
    "module:Name" for a class or factory (not "<class ...>")."""
    if isinstance(env, str):
        return env
    target = env.func if isinstance(env, functools.partial) else env
    if not hasattr(target, "__qualname__"):
        target = type(target)  # a callable instance
    return f"{target.__module__}:{target.__qualname__}"


def resolve_env(env: EnvSpecifier) -> EnvSource:
    """The env `env` names, or a ConfigError saying why it names none."""
    if callable(env) and not isinstance(env, str):
        return EnvSource(env_label(env), creator=env, config_as_keywords=takes_config_as_keywords(env))
    if not isinstance(env, str) or not env:
        raise ConfigError(
            "config key 'env' must be an env id, 'module:Name', or a gymnasium.Env class or factory, "
            f"got {env!r}"
        )
    if env == "external":
        return EnvSource(env, external=True)
    module_name, _, name = env.rpartition(":")
    if module_name:
        module = _import_env_module(env, module_name)
        attribute = _attribute(module, name)
        if attribute is None and name.isidentifier():
            attribute = _submodule(f"{module_name}.{name}")
        if isinstance(attribute, types.ModuleType):  # a PettingZoo env module names its factory
            factory = getattr(attribute, "parallel_env", None) or getattr(attribute, "env", None)
            if callable(factory):
                return EnvSource(env, creator=factory, config_as_keywords=True)
        if callable(attribute):
            return EnvSource(env, creator=attribute, config_as_keywords=takes_config_as_keywords(attribute))
        if name in gym.registry:
            return EnvSource(env, spec=gym.spec(name))
        source = _registered(env, name)
        if source is not None:
            return source
        raise ConfigError(
            f"unknown env {env!r}: module {module_name!r} has no class or function {name!r} "
            f"and registers no env id {name!r}"
        )
    return _registered(env, env) or EnvSource(env, spec=_gym_spec(env))


def takes_config_as_keywords(creator: Callable[..., Any]) -> bool:
    """Whether a class or factory takes env_config's keys as keyword arguments, as gymnasium
    envs do (`gym.make(id, **kwargs)`), rather than one config dict, as RLlib envs do.

    RLlib's convention is recognised by the signature: a first parameter named `config` or
    `env_config`, or a single parameter without a default (`lambda cfg: ...`). Every other
    signature, no parameters included, takes keywords. An unreadable signature gets a dict.
    """
    try:
        parameters = list(inspect.signature(creator).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in POSITIONAL_KINDS]
    if positional and positional[0].name in CONFIG_PARAMETER_NAMES:
        return False
    single_required = len(parameters) == 1 and positional and positional[0].default is inspect.Parameter.empty
    return not single_required


def as_source(env: EnvSource | EnvSpecifier) -> EnvSource:
    """`env` itself when it is resolved already, else what its name refers to."""
    return env if isinstance(env, EnvSource) else resolve_env(env)


def publish_gym_registration(env: EnvSpecifier) -> None:
    """Share an id registered with `gym.register` in this (the driver's) process with every
    process of its Ray job, so that trials can resolve it.

    Only the driver ran the user's `gym.register`; trial processes start with gymnasium's
    own registry. Tune's env registry (`register_env`, where RLlib keeps its creators)
    lives in the cluster's key-value store, readable from every process of the job on
    every node. Ray 2.60's Tune calls `Trainable.default_resource_request(config)` in the
    driver for every trial it adds, new, resumed or restarted, with Ray connected;
    `Algorithm` calls this function there. The spec travels pickled with cloudpickle, so
    an entry point defined in the user's `__main__` script travels by value.
    """
    if not isinstance(env, str) or ":" in env or env not in gym.registry or not env.isascii():
        return
    if _registered_creator(env) is not None:
        return  # a register_env name, or published already; resolve_env prefers it, as RLlib does
    from ray.tune.registry import register_env  # Ray loads when a name is resolved, not when imported

    register_env(env, GymSpecCreator(gym.spec(env)))


def _registered(label: str, name: str) -> EnvSource | None:
    creator = _registered_creator(name)
    if creator is None:
        return None
    if isinstance(creator, GymSpecCreator):
        return EnvSource(label, spec=creator.spec)
    return EnvSource(label, creator=creator)


def _registered_creator(name: str) -> Callable[..., Any] | None:
    """The creator `register_env(name, creator)` stored in Tune's registry, if any. Tune has
    no public reader; RLlib reads the registry the same way."""
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if not name.isascii() or not _global_registry.contains(ENV_CREATOR, name):
        return None
    return _global_registry.get(ENV_CREATOR, name)


def _gym_spec(env_id: str) -> EnvSpec:
    """The spec of a gymnasium id registered in this process (ALE/... by importing ale-py)."""
    atari.ensure_registered(env_id)
    partially_observed.ensure_registered(env_id)
    try:
        return gym.spec(env_id)
    except (gym.error.Error, ModuleNotFoundError, ImportError, AttributeError) as error:
        raise ConfigError(f"unknown env {env_id!r}: {first_line(error)}") from None


def _import_env_module(env: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except Exception as error:
        dependency = missing_dependency(env, error)
        if dependency is not None:
            raise ConfigError(dependency) from None
        # OpenGL envs (MiniWorld, pyglet's) fail on import on a machine without a display.
        needs_display = "display" in f"{type(error).__name__} {error}".lower()
        raise ConfigError(
            f"unknown env {env!r}: importing {module_name!r} failed with {type(error).__name__}: "
            f"{first_line(error)}"
            + ("; it needs a display: run it under xvfb-run (xvfb) or on a desktop" if needs_display else "")
        ) from None


def _submodule(name: str) -> types.ModuleType | None:
    """The module `name` (mpe2.simple_spread_v3, which its package does not import), or None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _attribute(module: Any, dotted_name: str) -> Any:
    """module.Outer.Inner for "Outer.Inner"; None when a part is missing or not a name."""
    value = module
    for part in dotted_name.split("."):
        if not part.isidentifier():
            return None
        value = getattr(value, part, None)
    return value
