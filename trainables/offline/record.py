"""Recording a dataset: roll a policy out in an env for N episodes or steps.

The policy is `random` (uniform actions), an rlsweep checkpoint folder (its best seed), or
a user's `module:fn` taking one observation and returning one action. Exploration noise
makes weaker or broader data from the same policy: `epsilon` replaces an action by a
uniformly random one with that probability (any action space), `noise_std` adds Gaussian
noise to Box actions (in the action's units, clipped to the bounds). One seed makes the
env's resets, the noise and random actions: the same command records the same dataset.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.envs.build import make_env
from rlsweep.trainables.envs.names import env_label, resolve_env
from rlsweep.trainables.offline.dataset import Dataset, DatasetInfo

ActFn = Callable[[Any], Any]


def load_actor(policy: str, action_space: gym.spaces.Space) -> ActFn:
    """The function that acts for `policy` ("random", a checkpoint folder, or module:fn)."""
    if policy == "random":
        return lambda obs: action_space.sample()
    if Path(policy).expanduser().exists():
        from rlsweep.trainables import registry
        from rlsweep.trainables.checkpoint import read_checkpoint

        algorithm = read_checkpoint(Path(policy).expanduser())["algorithm"]
        loaded = registry.get_algorithm(algorithm).load_policy(Path(policy).expanduser())
        return loaded.compute_single_action
    module_name, _, function = policy.partition(":")
    if not function:
        raise ConfigError(f"policy {policy!r} is neither 'random', a checkpoint folder, nor module:function")
    if str(Path.cwd()) not in sys.path:  # a module beside the user's files, as `python -m` finds it
        sys.path.insert(0, str(Path.cwd()))
    try:
        act = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"policy {policy!r} cannot be imported: {error}") from None
    if not callable(act):
        raise ConfigError(f"policy {policy!r} is not a function of an observation")
    return act


def record(
    env: str,
    policy: str,
    *,
    episodes: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    epsilon: float = 0.0,
    noise_std: float = 0.0,
    env_config: dict[str, Any] | None = None,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Roll `policy` out in `env` until `episodes` episodes or `steps` steps are recorded
    (a cut last episode ends truncated); `progress` gets a line about every tenth of the way."""
    if (episodes is None) == (steps is None):
        raise ConfigError("record either a number of episodes or a number of steps")
    if not 0 <= epsilon <= 1:
        raise ConfigError(f"epsilon must lie in [0, 1], got {epsilon}")
    if noise_std < 0:
        raise ConfigError(f"noise_std must be at least 0, got {noise_std}")
    source = resolve_env(env)
    single = make_env(source, env_config)
    action_space = single.action_space
    if noise_std and not isinstance(action_space, gym.spaces.Box):
        raise ConfigError(f"noise_std adds noise to Box actions; env {env_label(env)!r} has {action_space}")
    action_space.seed(seed)
    rng = np.random.default_rng(seed)
    act = load_actor(policy, action_space)
    columns: dict[str, list[Any]] = {
        "observations": [], "actions": [], "rewards": [], "next_observations": [],
        "terminations": [], "truncations": [],
    }  # fmt: skip
    returns: list[float] = []
    goal = episodes if episodes is not None else steps
    next_report = 0.1
    obs, _ = single.reset(seed=seed)
    episode_return = 0.0
    while True:
        action = act(obs)
        if epsilon and rng.random() < epsilon:
            action = action_space.sample()
        if noise_std:
            noisy = np.asarray(action, np.float32) + rng.normal(0.0, noise_std, action_space.shape)
            action = np.clip(noisy, action_space.low, action_space.high).astype(action_space.dtype)
        next_obs, reward, terminated, truncated, _ = single.step(action)
        for name, value in (
            ("observations", obs), ("actions", action), ("rewards", reward),
            ("next_observations", next_obs), ("terminations", terminated), ("truncations", truncated),
        ):  # fmt: skip
            columns[name].append(value)
        episode_return += float(reward)
        if terminated or truncated:
            returns.append(episode_return)
            episode_return = 0.0
            obs, _ = single.reset()
        else:
            obs = next_obs
        done = len(returns) if episodes is not None else len(columns["rewards"])
        if progress is not None and done >= next_report * goal:
            mean = f", mean return {np.mean(returns):.1f}" if returns else ""
            progress(
                f"recorded {len(returns)} episodes, {len(columns['rewards'])} steps ({done / goal:.0%}){mean}"
            )
            next_report = (int(done / goal * 10) + 1) / 10
        if done >= goal:
            break
    single.close()
    columns["truncations"][-1] = not columns["terminations"][-1]  # a cut last episode ends truncated
    noise = [f"{name} {value}" for name, value in (("epsilon", epsilon), ("noise_std", noise_std)) if value]
    info = DatasetInfo(
        env_id=env_label(env),
        observation_space=single.observation_space,
        action_space=action_space,
        policy=policy + (f" ({', '.join(noise)})" if noise else ""),
        ref_min_score=ref_min_score,
        ref_max_score=ref_max_score,
        seed=seed,
    )
    dataset = Dataset(
        observations=np.asarray(columns["observations"]),
        actions=np.asarray(columns["actions"]),
        rewards=np.asarray(columns["rewards"], np.float32),
        next_observations=np.asarray(columns["next_observations"]),
        terminations=np.asarray(columns["terminations"], bool),
        truncations=np.asarray(columns["truncations"], bool),
        info=info,
    )
    dataset.check(f"recorded from {policy!r}")
    return dataset
