"""Checking an env for real before training on it: build one, reset it, step it with a
sampled action, and build the vector env the workers will step. Every problem is a
ConfigError of one line naming the env; gymnasium's env checker may add warnings, once."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import env_checker

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.envs.build import check_config_keys, create, make_vector_env
from rlsweep.trainables.envs.context import EnvContext
from rlsweep.trainables.envs.errors import first_line, run_env_code
from rlsweep.trainables.envs.names import EnvSource
from rlsweep.trainables.models.spaces import check_supported_spaces

GYM_MAKE_KEYWORDS = ("max_episode_steps", "disable_env_checker")
"""env_config keys `gymnasium.make` consumes itself, whatever the env's constructor takes."""


@dataclass
class EnvReport:
    """What `check_env` found by building, resetting and stepping one env."""

    source: EnvSource
    """The env, resolved: what workers and evaluation build from."""
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

    @property
    def label(self) -> str:
        return self.source.label

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
    source: EnvSource,
    env_config: dict[str, Any] | None = None,
    *,
    num_workers: int = 0,
    run_env_checker: bool = False,
) -> EnvReport:
    """Build one env, reset it, step it with a sampled action, and build the vector env the
    workers will step; every problem is a ConfigError of one line naming the env.

    With `run_env_checker`, gymnasium's `check_env` also runs on the env (not on gymnasium's
    own envs); what it finds is reported in `EnvReport.warnings`, not raised: rlsweep's own
    checks above decide what it cannot run. This is the one place findings are gathered:
    envs built for sampling and evaluation skip gymnasium's passive checker (`build.py`).
    """
    label = source.label
    if source.is_atari:
        return _check_atari(source, env_config)
    if source.external:
        return _check_external(source, env_config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        instance = _build_checked(source, env_config, num_workers)
        try:
            check_supported_spaces(label, instance.observation_space, instance.action_space)
            _check_reset_and_step(label, instance)
            report = EnvReport(
                source,
                instance.observation_space,
                instance.action_space,
                max_episode_steps=instance.spec.max_episode_steps if instance.spec else None,
                reward_range=_declared_reward_range(instance),
                reward_threshold=instance.spec.reward_threshold if instance.spec else None,
            )
            if run_env_checker and not source.is_gymnasium_own:
                _run_env_checker(instance, report)
        finally:
            instance.close()
        vector_env = run_env_code(
            label, "building its vector env", make_vector_env, source, 1, env_config, num_workers=num_workers
        )
        vector_env.close()
    # Warnings from the import machinery (SWIG's, importing Box2D) say nothing about the env.
    from_env = [_warning_text(w.message) for w in caught if not w.filename.startswith("<frozen")]
    report.warnings = list(dict.fromkeys(from_env + report.warnings))
    return report


def _check_atari(source: EnvSource, env_config: dict[str, Any] | None) -> EnvReport:
    """An Atari game as the workers step it: ale-py's vector env with our preprocessing
    (`env_config` holds its keys, not `gymnasium.make`'s), reset and stepped once."""
    games = run_env_code(source.label, "building it", make_vector_env, source, 1, env_config)
    try:
        run_env_code(source.label, "reset()", games.reset, seed=0)
        games.action_space.seed(0)
        run_env_code(source.label, "step()", games.step, games.action_space.sample())
        return EnvReport(
            source,
            games.single_observation_space,
            games.single_action_space,
            reward_threshold=source.spec.reward_threshold,
            warnings=["gymnasium's env checker skipped: Atari games run in ale-py's own vector env"],
        )
    finally:
        games.close()


def _check_external(source: EnvSource, env_config: dict[str, Any] | None) -> EnvReport:
    """Simulators are not stepped before training: their config and spaces are checked."""
    from rlsweep.trainables.external.vector_env import external_config

    observation_space, action_space = external_config(env_config).spaces()
    check_supported_spaces(source.label, observation_space, action_space)
    return EnvReport(source, observation_space, action_space)


def _build_checked(source: EnvSource, env_config: dict[str, Any] | None, num_workers: int) -> gym.Env:
    label = source.label
    if source.spec is not None:
        _check_make_kwargs(source, env_config or {})
        return run_env_code(label, "building it", gym.make, source.spec, **(env_config or {}))
    return run_env_code(label, "building it", create, source, EnvContext(env_config, num_workers=num_workers))


def _check_reset_and_step(label: str, instance: gym.Env) -> None:
    reset = run_env_code(label, "reset()", instance.reset, seed=0)
    if not (isinstance(reset, tuple) and len(reset) == 2):
        raise ConfigError(
            f"env {label!r}: reset() returned {type(reset).__name__}, not (observation, info); "
            "rlsweep needs gymnasium's API (gym < 0.26 returned the observation alone)"
        )
    _check_observation(label, "reset()", reset[0], instance.observation_space)
    instance.action_space.seed(0)
    action = instance.action_space.sample()
    step = run_env_code(label, "step()", instance.step, action)
    if not (isinstance(step, tuple) and len(step) == 5):
        count = len(step) if isinstance(step, tuple) else type(step).__name__
        raise ConfigError(
            f"env {label!r}: step() returned {count} values, not (observation, reward, terminated, "
            "truncated, info); rlsweep needs gymnasium's API (gym < 0.26 returned 4, with one done flag)"
        )
    _check_observation(label, "step()", step[0], instance.observation_space)
    reward = step[1]
    if not (np.ndim(reward) == 0 and np.issubdtype(np.asarray(reward).dtype, np.number)):
        raise ConfigError(
            f"env {label!r}: step() returned reward {reward!r}; a reward must be one number "
            "(wrap a multi-objective env to weigh its rewards into one, e.g. mo_gymnasium's LinearReward)"
        )
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
        stopped = f"{type(error).__name__}: {first_line(error)}"
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
    entry_point = source.spec.entry_point
    if isinstance(entry_point, str):
        entry_point = run_env_code(
            source.label, "importing it", gym.envs.registration.load_env_creator, entry_point
        )
    check_config_keys(source.label, entry_point, kwargs, also_accepted=GYM_MAKE_KEYWORDS)


def _warning_text(message: Warning | str) -> str:
    """A warning without gymnasium's terminal colors and "WARN: " prefix, on one line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(message)).strip()
    return " ".join(text.removeprefix("WARN:").split())
