"""Sampling: a worker steps a vector env with batched policy inference and returns a Rollout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables.envs import EnvSpecifier, env_label, episode_stats, make_vector_env


class EnvError(RuntimeError):
    """The env raised, or returned observations no policy can act on; names the env."""


class SamplingPolicy(Protocol):
    """What a worker needs from a policy: batched actions and weight updates."""

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...

    def set_weights(self, weights: dict[str, Any]) -> None: ...


@dataclass
class Rollout:
    """`T` consecutive steps of `N` envs.

    Envs autoreset on the step after an episode ends (gymnasium's next-step mode): that
    step's observation is the episode's final one, and its transition (reward 0, action
    ignored) is marked invalid. `obs` has T+1 rows, the last being the observation after
    step T-1, so `obs[t + 1]` is always the true next observation of a valid step t, which
    is what PPO bootstraps from on truncation and off-policy methods store as next_obs.
    """

    obs: np.ndarray  # [T+1, N, obs_dim] float32, raw (not normalized)
    actions: np.ndarray  # [T, N] for Discrete, [T, N, act_dim] for Box (unclipped)
    rewards: np.ndarray  # [T, N] float32
    terminated: np.ndarray  # [T, N] bool: episode ended in a terminal state
    truncated: np.ndarray  # [T, N] bool: episode cut by a time limit; bootstrap from obs[t+1]
    valid: np.ndarray  # [T, N] bool: False on autoreset steps
    extras: dict[str, np.ndarray]  # per-step policy outputs, e.g. logprob and value [T, N]
    episode_returns: np.ndarray  # returns of episodes that finished in this rollout
    episode_lengths: np.ndarray
    sample_time_s: float

    @property
    def num_env_steps(self) -> int:
        return int(self.valid.sum())


class RolloutWorker:
    """Owns one vector env and a CPU copy of the policy; runs in a Ray actor or in-process."""

    def __init__(
        self,
        env: EnvSpecifier,
        env_config: dict[str, Any],
        num_envs: int,
        seed: int,
        make_policy: Callable[[], SamplingPolicy],
        *,
        worker_index: int = 0,
        num_workers: int = 0,
    ):
        # One thread per sampler process: with more, small MLPs slow down many times over
        # as soon as another process wants the core.
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        self.env_id = env_label(env)
        self.env = make_vector_env(
            env, num_envs, env_config, worker_index=worker_index, num_workers=num_workers
        )
        self.policy = make_policy()
        self.continuous = isinstance(self.env.single_action_space, gym.spaces.Box)
        self.obs, _ = self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        self.autoreset = np.zeros(num_envs, dtype=bool)

    def sample(self, weights: dict[str, Any], num_steps: int) -> Rollout:
        """Load `weights`, then step every env `num_steps` times."""
        start = time.perf_counter()
        self.policy.set_weights(weights)
        num_envs = self.env.num_envs
        obs = np.empty((num_steps + 1, num_envs, *self.obs.shape[1:]), dtype=np.float32)
        rewards = np.empty((num_steps, num_envs), dtype=np.float32)
        terminated = np.empty((num_steps, num_envs), dtype=bool)
        truncated = np.empty((num_steps, num_envs), dtype=bool)
        valid = np.empty((num_steps, num_envs), dtype=bool)
        actions, extras = [], []
        returns, lengths = [], []
        space = self.env.single_action_space
        for t in range(num_steps):
            obs[t] = self.obs
            valid[t] = ~self.autoreset
            action, extra = self.policy.act(self.obs)
            env_action = np.clip(action, space.low, space.high) if self.continuous else action
            self.obs, rewards[t], terminated[t], truncated[t], infos = self._step(env_action)
            self.autoreset = terminated[t] | truncated[t]
            actions.append(action)
            extras.append(extra)
            episode_returns, episode_lengths = episode_stats(infos)
            returns.append(episode_returns)
            lengths.append(episode_lengths)
        obs[num_steps] = self.obs
        return Rollout(
            obs=obs,
            actions=np.stack(actions),
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            valid=valid,
            extras={key: np.stack([e[key] for e in extras]) for key in extras[0]} if extras else {},
            episode_returns=np.concatenate(returns).astype(np.float64),
            episode_lengths=np.concatenate(lengths).astype(np.int64),
            sample_time_s=time.perf_counter() - start,
        )

    def _step(self, action: np.ndarray) -> tuple[Any, ...]:
        try:
            step = self.env.step(action)
        except Exception as error:
            raise EnvError(f"env {self.env_id!r} raised {type(error).__name__}: {error}") from error
        if not np.isfinite(step[0]).all():
            raise EnvError(f"env {self.env_id!r} returned non-finite observations (NaN or inf)")
        return step

    def close(self) -> None:
        self.env.close()
