"""Building the environments that workers step and evaluation runs on, from any env a user names.

An env is named (trainable config `env`, experiment `env`, `rlsweep train --env`) as

    "CartPole-v1"           a registered gymnasium id;
    "my_pkg.envs:Maze-v0"   a module to import first (it registers Maze-v0), then the id;
    "my_pkg.envs:Maze"      a gymnasium.Env subclass or a factory in that module;
    Maze, make_maze         the class or factory itself (tune.run and tune.Tuner configs);
    "maze"                  a name registered with `ray.tune.registry.register_env(name, creator)`;
    "Maze-v0"               an id registered with `gym.register` in the driver process only: it
                            reaches trial and worker processes through `publish_gym_registration`.

Gymnasium ids take `env_config` as `gymnasium.make`'s keyword arguments. Classes, factories
and register_env creators are called with it as an `EnvContext`, as RLlib calls them, so
they can shard or seed per worker.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import env_checker
from ray.tune.registry import ENV_CREATOR, _global_registry

from rlsweep.trainables import atari
from rlsweep.trainables.config import ConfigError, did_you_mean
from rlsweep.trainables.spaces import check_supported_spaces

EnvSpecifier = str | Callable[..., Any]
"""How a config names its env: a string in one of the forms above, or a class or factory."""

EXTRAS = {"Box2D": "box2d", "mujoco": "mujoco", "ale_py": "atari"}
"""Modules that gymnasium's optional envs import, by the rlsweep extra that installs them."""

ENTRY_POINT_EXTRAS = {"gymnasium.envs.box2d": "box2d", "gymnasium.envs.mujoco": "mujoco", "ale_py": "atari"}
"""Env code by the extra its dependencies come from, when the missing module is not named."""

PUBLISHED_SPEC_PREFIX = "rlsweep.gym_spec/"
"""Key prefix of gymnasium specs published in Tune's registry (beside register_env's names)."""


class EnvContext(dict):
    """`env_config` as a class, factory or register_env creator receives it (RLlib's EnvContext):
    the user's keys, plus where this copy of the env runs."""

    def __init__(
        self,
        env_config: dict[str, Any] | None = None,
        worker_index: int = 0,
        num_workers: int = 0,
        vector_index: int = 0,
    ):
        super().__init__(env_config or {})
        self.worker_index = worker_index
        """1..num_workers in rollout worker actors; 0 in the trainable's own process (its
        sampler when num_workers is 0, evaluation envs, the env that tells the spaces)."""
        self.num_workers = num_workers
        """Rollout worker actors of the trial."""
        self.vector_index = vector_index
        """Which of a worker's `num_envs_per_worker` envs this is."""

    def __repr__(self) -> str:
        return (
            f"EnvContext({dict(self)}, worker_index={self.worker_index}, "
            f"num_workers={self.num_workers}, vector_index={self.vector_index})"
        )


@dataclass(frozen=True)
class EnvSource:
    """What an env name refers to: a registered gymnasium id, or a creator of one env."""

    label: str
    gym_id: str | None = None
    """A gymnasium id in this process's registry; env_config are `gymnasium.make` kwargs."""
    creator: Callable[..., Any] | None = None
    """A class, factory or register_env creator; called with an EnvContext."""


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
        return EnvSource(env_label(env), creator=env)
    if not isinstance(env, str) or not env:
        raise ConfigError(
            "config key 'env' must be an env id, 'module:Name', or a gymnasium.Env class or factory, "
            f"got {env!r}"
        )
    module_name, _, name = env.rpartition(":")
    if module_name:
        module = _import_env_module(env, module_name)
        attribute = _attribute(module, name)
        if callable(attribute):
            return EnvSource(env, creator=attribute)
        if name in gym.registry:
            return EnvSource(env, gym_id=name)
        creator = _registered_creator(name)
        if creator is not None:
            return EnvSource(env, creator=creator)
        raise ConfigError(
            f"unknown env {env!r}: module {module_name!r} has no class or function {name!r} "
            f"and registers no env id {name!r}"
        )
    creator = _registered_creator(env)
    if creator is not None:
        return EnvSource(env, creator=creator)
    return EnvSource(env, gym_id=_gym_id(env))


def make_env(
    env: EnvSpecifier,
    env_config: dict[str, Any] | None = None,
    *,
    worker_index: int = 0,
    num_workers: int = 0,
    vector_index: int = 0,
) -> gym.Env:
    """One env, built as a worker would build it (errors from the env's own code propagate)."""
    source = resolve_env(env)
    if source.gym_id is not None:
        return gym.make(source.gym_id, **(env_config or {}))
    return _create(source, EnvContext(env_config, worker_index, num_workers, vector_index))


def make_vector_env(
    env: EnvSpecifier,
    num_envs: int,
    env_config: dict[str, Any] | None = None,
    *,
    worker_index: int = 0,
    num_workers: int = 0,
) -> gym.vector.VectorEnv:
    """A vector env of `num_envs` copies of `env` in next-step autoreset mode, recording
    episode statistics; observations as the env gives them (`observations.py` encodes them).

    Gymnasium ids with a native vector implementation (CartPole steps ~9x faster that way)
    use it, Atari games ale-py's (`rlsweep.trainables.atari`); others run in a SyncVectorEnv,
    whose copy i of a creator's env gets an EnvContext with vector_index i.
    """
    source = resolve_env(env)
    kwargs = dict(env_config or {})
    if source.gym_id is not None and atari.is_atari(source.gym_id):
        return atari.make_vector_env(source.gym_id, num_envs, kwargs)
    if source.gym_id is not None:
        mode = "vector_entry_point" if _has_native_vector(source.gym_id, kwargs) else "sync"
        vector_env = gym.make_vec(source.gym_id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
    else:
        contexts = [EnvContext(kwargs, worker_index, num_workers, index) for index in range(num_envs)]
        vector_env = gym.vector.SyncVectorEnv(
            [functools.partial(_create, source, context) for context in contexts],
            autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
        )
    check_supported_spaces(source.label, vector_env.single_observation_space, vector_env.single_action_space)
    return gym.wrappers.vector.RecordEpisodeStatistics(vector_env)


def env_spaces(
    env: EnvSpecifier, env_config: dict[str, Any] | None = None
) -> tuple[gym.spaces.Space, gym.spaces.Space]:
    """The observation and action spaces of one env, as a policy is built for."""
    source = resolve_env(env)
    if source.gym_id is not None and atari.is_atari(source.gym_id):
        return atari.spaces(source.gym_id, env_config)
    instance = make_env(env, env_config)
    spaces = instance.observation_space, instance.action_space
    instance.close()
    return spaces


def episode_stats(infos: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the episodes that finished in one vector step."""
    if "episode" not in infos:
        return np.empty(0), np.empty(0, dtype=np.int64)
    done = infos["_episode"]
    return infos["episode"]["r"][done], infos["episode"]["l"][done]


# -- checking an env for real ---------------------------------------------------------------


@dataclass
class EnvReport:
    """What `check_env` found by building, resetting and stepping one env."""

    label: str
    observation_space: gym.spaces.Space
    action_space: gym.spaces.Space
    max_episode_steps: int | None = None
    """The env's time limit, if it has one."""
    reward_range: tuple[float, float] | None = None
    """Bounds of one step's reward, if the env declares them (a `reward_range` attribute)."""
    reward_threshold: float | None = None
    """The return its gymnasium registration calls solved, if it gives one."""
    warnings: list[str] = field(default_factory=list)
    """What gymnasium warned about while the env was built, stepped and checked."""

    def episode_return_range(self) -> tuple[float, float]:
        """Bounds of an episode's return, from the reward range and time limit (+-inf if unknown)."""
        if self.reward_range is None:
            return -np.inf, np.inf
        low, high = self.reward_range
        longest = self.max_episode_steps if self.max_episode_steps is not None else np.inf
        # Over L steps a return lies in [L low, L high], 1 <= L <= longest.
        lowest = low if low >= 0 else low * longest
        highest = high if high <= 0 else high * longest
        return float(lowest), float(highest)


def check_env(
    env: EnvSpecifier,
    env_config: dict[str, Any] | None = None,
    *,
    num_workers: int = 0,
    run_env_checker: bool = False,
) -> EnvReport:
    """Build one env, reset it, step it with a sampled action, and build the vector env the
    workers will step; every problem is a ConfigError of one line naming the env.

    With `run_env_checker`, gymnasium's `check_env` also runs on the env; what it finds is
    reported in `EnvReport.warnings`, not raised: rlsweep's own checks above decide what it
    cannot run.
    """
    source = resolve_env(env)
    label = source.label
    if source.gym_id is not None and atari.is_atari(source.gym_id):
        return _check_atari(source, env_config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        instance = _build_checked(source, env_config, num_workers)
        try:
            check_supported_spaces(label, instance.observation_space, instance.action_space)
            _check_reset_and_step(label, instance)
            report = EnvReport(
                label,
                instance.observation_space,
                instance.action_space,
                max_episode_steps=instance.spec.max_episode_steps if instance.spec else None,
                reward_range=_declared_reward_range(instance),
                reward_threshold=instance.spec.reward_threshold if instance.spec else None,
            )
            if run_env_checker:
                _run_env_checker(instance, report)
        finally:
            instance.close()
        vector_env = _run_env_code(
            label, "building its vector env", make_vector_env, env, 1, env_config, num_workers=num_workers
        )
        vector_env.close()
    # Warnings from the import machinery (SWIG's, importing Box2D) say nothing about the env.
    from_env = [_warning_text(w.message) for w in caught if not w.filename.startswith("<frozen")]
    report.warnings = list(dict.fromkeys(from_env + report.warnings))
    return report


def _check_atari(source: EnvSource, env_config: dict[str, Any] | None) -> EnvReport:
    """An Atari game as the workers step it: ale-py's vector env with our preprocessing
    (`env_config` holds its keys, not `gymnasium.make`'s), reset and stepped once."""
    games = _run_env_code(source.label, "building it", atari.make_vector_env, source.gym_id, 1, env_config)
    try:
        _run_env_code(source.label, "reset()", games.reset, seed=0)
        games.action_space.seed(0)
        _run_env_code(source.label, "step()", games.step, games.action_space.sample())
        spec = gym.spec(source.gym_id)
        return EnvReport(
            source.label,
            games.single_observation_space,
            games.single_action_space,
            reward_threshold=spec.reward_threshold,
            warnings=["gymnasium's env checker skipped: Atari games run in ale-py's own vector env"],
        )
    finally:
        games.close()


def _build_checked(source: EnvSource, env_config: dict[str, Any] | None, num_workers: int) -> gym.Env:
    label = source.label
    if source.gym_id is not None:
        _check_make_kwargs(source, env_config or {})
        instance = _run_env_code(label, "building it", gym.make, source.gym_id, **(env_config or {}))
    else:
        context = EnvContext(env_config, num_workers=num_workers)
        instance = _run_env_code(label, "building it", _create, source, context)
    return instance


def _check_reset_and_step(label: str, instance: gym.Env) -> None:
    reset = _run_env_code(label, "reset()", instance.reset, seed=0)
    if not (isinstance(reset, tuple) and len(reset) == 2):
        raise ConfigError(
            f"env {label!r}: reset() returned {type(reset).__name__}, not (observation, info); "
            "rlsweep needs gymnasium's API (gym < 0.26 returned the observation alone)"
        )
    _check_observation(label, "reset()", reset[0], instance.observation_space)
    instance.action_space.seed(0)
    action = instance.action_space.sample()
    step = _run_env_code(label, "step()", instance.step, action)
    if not (isinstance(step, tuple) and len(step) == 5):
        count = len(step) if isinstance(step, tuple) else type(step).__name__
        raise ConfigError(
            f"env {label!r}: step() returned {count} values, not (observation, reward, terminated, "
            "truncated, info); rlsweep needs gymnasium's API (gym < 0.26 returned 4, with one done flag)"
        )
    _check_observation(label, "step()", step[0], instance.observation_space)
    reward = step[1]
    if not (np.ndim(reward) == 0 and np.issubdtype(np.asarray(reward).dtype, np.number)):
        raise ConfigError(f"env {label!r}: step() returned reward {reward!r}; a reward must be one number")
    if not np.isfinite(reward):
        raise ConfigError(f"env {label!r}: step() returned a non-finite reward ({reward})")


def _check_observation(label: str, method: str, obs: Any, space: gym.spaces.Space) -> None:
    """The problems with an observation that would break sampling, not just warn."""
    if isinstance(space, gym.spaces.Box):
        array = np.asarray(obs)
        if array.shape != space.shape:
            raise ConfigError(
                f"env {label!r}: {method} returned an observation of shape {array.shape}, but its "
                f"observation space {space} has shape {space.shape}"
            )
        if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
            raise ConfigError(f"env {label!r}: {method} returned a {array.dtype} observation, not numbers")
        if not np.isfinite(array.astype(np.float64)).all():
            raise ConfigError(f"env {label!r}: {method} returned non-finite observations (NaN or inf)")
    elif isinstance(space, gym.spaces.Discrete) and not _contains(space, obs):
        raise ConfigError(f"env {label!r}: {method} returned observation {obs!r}, outside {space}")


def _contains(space: gym.spaces.Space, value: Any) -> bool:
    try:
        return bool(space.contains(value))
    except Exception:
        return False


def _run_env_checker(instance: gym.Env, report: EnvReport) -> None:
    try:
        env_checker.check_env(instance.unwrapped, skip_render_check=True, skip_close_check=True)
    except Exception as error:
        stopped = f"{type(error).__name__}: {_first_line(error)}"
        report.warnings.append(f"gymnasium's env checker stopped: {stopped}")


def _declared_reward_range(instance: gym.Env) -> tuple[float, float] | None:
    declared = getattr(instance.unwrapped, "reward_range", None)
    if declared is None or len(declared) != 2:
        return None
    low, high = (float(bound) for bound in declared)
    return None if low == -np.inf and high == np.inf else (low, high)


def _check_make_kwargs(source: EnvSource, kwargs: dict[str, Any]) -> None:
    """env_config keys the env's constructor would reject, named before anything is built."""
    if not kwargs:
        return
    spec = gym.spec(source.gym_id)
    entry_point = spec.entry_point
    if isinstance(entry_point, str):
        entry_point = _run_env_code(
            source.label, "importing it", gym.envs.registration.load_env_creator, entry_point
        )
    try:
        parameters = inspect.signature(entry_point).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = {
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    } | {"max_episode_steps", "disable_env_checker"}  # gymnasium.make's own
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"env {source.label!r} takes no env_config key {key!r}{did_you_mean(key, accepted)}; "
                f"it takes: {', '.join(sorted(accepted))}"
            )


def _run_env_code(label: str, doing: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the env's own code; what it raises becomes one line naming the env."""
    try:
        return function(*args, **kwargs)
    except ConfigError:
        raise
    except Exception as error:
        dependency = _missing_dependency(label, error)
        if dependency is not None:
            raise ConfigError(dependency) from None
        raise ConfigError(
            f"env {label!r} raised {type(error).__name__} in {doing}: {_first_line(error)}"
        ) from None


# -- resolving names ------------------------------------------------------------------------


def _import_env_module(env: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except Exception as error:
        dependency = _missing_dependency(env, error)
        if dependency is not None:
            raise ConfigError(dependency) from None
        raise ConfigError(
            f"unknown env {env!r}: importing {module_name!r} failed with {type(error).__name__}: "
            f"{_first_line(error)}"
        ) from None


def _attribute(module: Any, dotted_name: str) -> Any:
    """module.Outer.Inner for "Outer.Inner"; None when a part is missing or not a name."""
    value = module
    for part in dotted_name.split("."):
        if not part.isidentifier():
            return None
        value = getattr(value, part, None)
    return value


def _registered_creator(name: str) -> Callable[..., Any] | None:
    """The creator `register_env(name, creator)` stored in Tune's registry, if any."""
    if not name.isascii() or not _global_registry.contains(ENV_CREATOR, name):
        return None
    return _global_registry.get(ENV_CREATOR, name)


def _gym_id(env_id: str) -> str:
    """`env_id` registered in this process: as it is, from a spec the driver published, or
    (ALE/...) by importing ale-py."""
    if env_id not in gym.registry and env_id.isascii():
        key = PUBLISHED_SPEC_PREFIX + env_id
        if _global_registry.contains(ENV_CREATOR, key):
            gym.registry[env_id] = _global_registry.get(ENV_CREATOR, key)
    atari.ensure_registered(env_id)
    try:
        gym.spec(env_id)
    except (gym.error.Error, ModuleNotFoundError, ImportError, AttributeError) as error:
        raise ConfigError(f"unknown env {env_id!r}: {_first_line(error)}") from None
    return env_id


def publish_gym_registration(env: EnvSpecifier) -> None:
    """Share an id registered with `gym.register` in this (the driver's) process with every
    process of its Ray job, so that trials and their rollout workers can make it.

    Only the driver ran the user's `gym.register`; trial and worker processes start with
    gymnasium's own registry. Tune's registry (`ray.tune.registry`, where `register_env`
    keeps RLlib's creators) stores pickled values in the cluster's GCS key-value store
    under the job's id, readable from every process of the job on every node: trial actors,
    and the worker actors they start. Ray 2.60's Tune calls
    `Trainable.default_resource_request(config)` in the driver for every trial it adds, new,
    resumed or restarted (`TuneController.add_trial` -> `Trial.create_placement_group_factory`),
    with the trial's resolved config and Ray connected, and nowhere else; `Algorithm` calls
    this function there. The spec is pickled with cloudpickle, so an entry point defined in
    the user's `__main__` script travels by value. `resolve_env` in the other processes
    registers the published spec when its id is not in their registry.
    """
    if not isinstance(env, str) or ":" in env or env not in gym.registry or not env.isascii():
        return
    if _global_registry.contains(ENV_CREATOR, env):
        return  # a register_env name; resolve_env prefers it, as RLlib does
    _global_registry.register(ENV_CREATOR, PUBLISHED_SPEC_PREFIX + env, gym.spec(env))


# -- building -------------------------------------------------------------------------------


def _create(source: EnvSource, context: EnvContext) -> gym.Env:
    """Call a creator with the EnvContext, or with nothing if it takes no arguments."""
    creator = source.creator
    if _takes_no_arguments(creator):
        if context:
            raise ConfigError(
                f"env {source.label!r} takes no arguments, but env_config has keys {sorted(context)}"
            )
        instance = creator()
    else:
        instance = creator(context)
    if not isinstance(instance, gym.Env):
        raise ConfigError(
            f"env {source.label!r} built a {type(instance).__module__}.{type(instance).__qualname__}, "
            "not a gymnasium.Env"
        )
    return instance


def _takes_no_arguments(creator: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(creator).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    return not any(p.kind in positional for p in parameters)


def _has_native_vector(env_id: str, kwargs: dict[str, Any]) -> bool:
    spec = gym.spec(env_id)
    # JAX-based vector entry points would pull in jax; the numpy ones are the fast path.
    entry = spec.vector_entry_point
    return isinstance(entry, str) and "jax" not in entry.lower() and not kwargs.get("render_mode")


def _missing_dependency(label: str, error: BaseException) -> str | None:
    """ "env 'X' needs Box2D, which is not installed: pip install "rlsweep[box2d]"" when `error`
    (or what caused it) is a missing optional dependency; else None."""
    chain = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    missing = next((e.name.split(".")[0] for e in chain if isinstance(e, ImportError) and e.name), None)
    if missing in EXTRAS:
        extra = EXTRAS[missing]
        return f'env {label!r} needs {missing}, which is not installed: pip install "rlsweep[{extra}]"'
    if not any(isinstance(e, gym.error.DependencyNotInstalled) for e in chain):
        return None
    entry_point = _entry_point_module(label)
    extra = next((x for prefix, x in ENTRY_POINT_EXTRAS.items() if entry_point.startswith(prefix)), None)
    if extra is not None:
        return f'env {label!r} needs a package that is not installed: pip install "rlsweep[{extra}]"'
    return f"env {label!r} needs a package that is not installed: {_first_line(error)}"


def _entry_point_module(label: str) -> str:
    try:
        entry_point = gym.spec(label.rpartition(":")[2]).entry_point
    except Exception:
        return ""
    return entry_point.partition(":")[0] if isinstance(entry_point, str) else entry_point.__module__


def _first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _warning_text(message: Warning | str) -> str:
    """A warning without gymnasium's terminal colors and "WARN: " prefix, on one line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(message)).strip()
    return " ".join(text.removeprefix("WARN:").split())
