"""Sampling: a worker steps every member's vector env with one batched policy forward pass
per step and returns a Rollout."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlsweep.trainables.envs import EnvSpecifier, env_label, episode_stats, make_vector_env
from rlsweep.trainables.members import generators
from rlsweep.trainables.observations import Observations
from rlsweep.trainables.policy import Policy


class EnvError(RuntimeError):
    """The env raised, or returned observations no policy can act on; names the env."""


@dataclass
class Rollout:
    """`T` consecutive steps of each of K members' `N` envs.

    Envs autoreset on the step after an episode ends (gymnasium's next-step mode): that
    step's observation is the episode's final one, and its transition (reward 0, action
    ignored) is marked invalid. Each `obs` entry has T+1 rows, the last being the
    observation after step T-1, so `obs[t + 1]` is always the true next observation of a
    valid step t, which is what PPO bootstraps from on truncation and off-policy methods
    store as next_obs.
    """

    obs: Observations  # each entry [T+1, K, N, ...], raw (not normalized)
    actions: np.ndarray  # [T, K, N, ...] as the policy chose them (before the env's clipping)
    rewards: np.ndarray  # [T, K, N] float32
    terminated: np.ndarray  # [T, K, N] bool: episode ended in a terminal state
    truncated: np.ndarray  # [T, K, N] bool: episode cut by a time limit; bootstrap from obs[t+1]
    valid: np.ndarray  # [T, K, N] bool: False on autoreset steps
    extras: dict[str, np.ndarray]  # per-step policy outputs, e.g. logprob and value [T, K, N]
    episode_returns: np.ndarray  # [E] returns of the episodes that finished in this rollout
    episode_lengths: np.ndarray  # [E]
    episode_members: np.ndarray  # [E] the member whose env each episode ran in
    sample_time_s: float
    worker: int = 0
    """The index of the worker that sampled it (a replacement keeps its predecessor's)."""
    policy_version: int = 0
    """The learner's update count when it sent the weights this was sampled with: in
    asynchronous sampling one less than the learner's when it learns from it."""

    @property
    def member_steps(self) -> np.ndarray:
        """Env steps each member took, [K] (autoreset steps do not count)."""
        return self.valid.sum(axis=(0, 2))


class RolloutWorker:
    """Owns one vector env per member and a CPU copy of the policy; runs in a Ray actor or
    in-process. Member k's envs are seeded from `seeds[k]`, and so is its exploration."""

    def __init__(
        self,
        env: EnvSpecifier,
        env_config: dict[str, Any],
        num_envs: int,
        seeds: Sequence[int],
        make_policy: Callable[[], Policy],
        index: int = 0,
        *,
        num_workers: int = 0,
    ):
        # One thread per sampler process: with more, small MLPs slow down many times over
        # as soon as another process wants the core.
        torch.set_num_threads(1)
        self.env_id = env_label(env)
        self.index = index
        # RLlib's numbering, which env creators see in their EnvContext: 0 is the trainable's
        # own process, actors are 1..num_workers.
        worker_index = index + 1 if num_workers else 0
        self.envs = [
            make_vector_env(env, num_envs, env_config, worker_index=worker_index, num_workers=num_workers)
            for _ in seeds
        ]
        self.policy = make_policy()
        self.generators = generators(seeds)
        members = [env.reset(seed=seed) for env, seed in zip(self.envs, seeds, strict=True)]
        for env, seed in zip(self.envs, seeds, strict=True):
            env.action_space.seed(seed)
        self.obs = self.policy.layout.encode_members(members)
        self.autoreset = np.zeros((len(seeds), num_envs), dtype=bool)

    def sample(self, weights: dict[str, Any], num_steps: int, policy_version: int = 0) -> Rollout:
        """Load `weights` (the learner's after `policy_version` updates), then step every env
        `num_steps` times."""
        start = time.perf_counter()
        self.policy.set_weights(weights)
        shape = (num_steps, *self.autoreset.shape)
        obs = {key: np.empty((num_steps + 1, *value.shape), value.dtype) for key, value in self.obs.items()}
        rewards = np.empty(shape, dtype=np.float32)
        terminated, truncated, valid = (np.empty(shape, dtype=bool) for _ in range(3))
        actions, extras, episodes = [], [], []
        for t in range(num_steps):
            for key, value in self.obs.items():
                obs[key][t] = value
            valid[t] = ~self.autoreset
            action, extra = self.policy.act(self.obs, self.generators)
            env_action = self.policy.env_actions(action)
            steps = [self._step(env, env_action[k]) for k, env in enumerate(self.envs)]
            self.obs = self.policy.layout.encode_members(steps)
            if "vector" in self.obs and not np.isfinite(self.obs["vector"]).all():
                raise EnvError(f"env {self.env_id!r} returned non-finite observations (NaN or inf)")
            for k, (_, reward, term, trunc, infos) in enumerate(steps):
                rewards[t, k], terminated[t, k], truncated[t, k] = reward, term, trunc
                episode_returns, episode_lengths = episode_stats(infos)
                episodes.append((episode_returns, episode_lengths, np.full(len(episode_returns), k)))
            self.autoreset = terminated[t] | truncated[t]
            actions.append(action)
            extras.append(extra)
        for key, value in self.obs.items():
            obs[key][num_steps] = value
        returns, lengths, members = (np.concatenate(parts) for parts in zip(*episodes, strict=True))
        return Rollout(
            obs=obs,
            actions=np.stack(actions),
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            valid=valid,
            extras={key: np.stack([e[key] for e in extras]) for key in extras[0]} if extras else {},
            episode_returns=returns.astype(np.float64),
            episode_lengths=lengths.astype(np.int64),
            episode_members=members.astype(np.int64),
            sample_time_s=time.perf_counter() - start,
            worker=self.index,
            policy_version=policy_version,
        )

    def _step(self, env: Any, action: np.ndarray) -> tuple[Any, ...]:
        try:
            return env.step(action)
        except Exception as error:
            raise EnvError(f"env {self.env_id!r} raised {type(error).__name__}: {error}") from error

    def close(self) -> None:
        for env in self.envs:
            env.close()
