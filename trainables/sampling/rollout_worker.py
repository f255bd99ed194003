"""Sampling: a worker steps every seed's vector env with one batched policy forward pass
per step and returns a Rollout."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from rlsweep.trainables.envs.build import episode_stats, make_vector_env
from rlsweep.trainables.envs.names import EnvSource, EnvSpecifier, as_source
from rlsweep.trainables.external.vector_env import ExternalVectorEnv
from rlsweep.trainables.models.policy import Policy
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.seeds import generators


class EnvError(RuntimeError):
    """The env raised, or returned observations no policy can act on; names the env."""


class RolloutWorker:
    """Owns one vector env per seed and a CPU copy of the policy; runs in a Ray actor or
    in-process. Seed k's envs are seeded from `seeds[k]`, and so is its exploration."""

    def __init__(
        self,
        env: EnvSource | EnvSpecifier,
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
        env = as_source(env)
        self.env_id = env.label
        self.index = index
        # RLlib's numbering, which env creators see in their EnvContext: 0 is the trainable's
        # own process, actors are 1..num_workers.
        worker_index = index + 1 if num_workers else 0
        self.envs = [
            make_vector_env(env, num_envs, env_config, worker_index=worker_index, num_workers=num_workers)
            for _ in seeds
        ]
        self.policy = make_policy()
        self.external = [
            (k, env.unwrapped)
            for k, env in enumerate(self.envs)
            if isinstance(env.unwrapped, ExternalVectorEnv)
        ]
        """Seeds whose experience simulators serve: they see each new policy, and may have
        chosen actions themselves (`ExternalVectorEnv.logged_actions`)."""
        self._announce_policy(0)
        self.generators = generators(seeds)
        first_steps = [env.reset(seed=seed) for env, seed in zip(self.envs, seeds, strict=True)]
        for env, seed in zip(self.envs, seeds, strict=True):
            env.action_space.seed(seed)
        self.obs = self.policy.layout.encode_seeds(first_steps)
        self.autoreset = np.zeros((len(seeds), num_envs), dtype=bool)
        self.state = self.policy.initial_state(num_envs)
        """The recurrent state per env, carried across rollouts and reset where episodes start."""
        self.episode_starts = np.ones((len(seeds), num_envs), dtype=bool)
        """Envs whose next observation is an episode's first (the step after an autoreset)."""

    def sample(self, weights: dict[str, Any], num_steps: int, policy_version: int = 0) -> Rollout:
        """Load `weights` (the learner's after `policy_version` updates), then step every env
        `num_steps` times."""
        start = time.perf_counter()
        self.policy.set_weights(weights)
        self._announce_policy(policy_version)
        shape = (num_steps, *self.autoreset.shape)
        obs = {key: np.empty((num_steps + 1, *value.shape), value.dtype) for key, value in self.obs.items()}
        rewards = np.empty(shape, dtype=np.float32)
        terminated, truncated, valid = (np.empty(shape, dtype=bool) for _ in range(3))
        memory = {
            key: np.empty((num_steps + 1, *value.shape), value.dtype) for key, value in self.state.items()
        }
        actions, extras, episodes = [], [], []
        for t in range(num_steps):
            for key, value in self.obs.items():
                obs[key][t] = value
            valid[t] = ~self.autoreset
            self.state = self.policy.reset_state(self.state, self.episode_starts)
            for key, value in self.state.items():
                memory[key][t] = value
            action, extra, self.state = self.policy.explore(self.obs, self.state, self.generators)
            for k, source in self.external:
                source.logged_actions(action[k], {key: value[k] for key, value in extra.items()})
            env_action = self.policy.env_actions(action)
            steps = [self._step(env, env_action[k]) for k, env in enumerate(self.envs)]
            self.obs = self.policy.layout.encode_seeds(steps)
            if "vector" in self.obs and not np.isfinite(self.obs["vector"]).all():
                raise EnvError(f"env {self.env_id!r} returned non-finite observations (NaN or inf)")
            for k, (_, reward, term, trunc, infos) in enumerate(steps):
                rewards[t, k], terminated[t, k], truncated[t, k] = reward, term, trunc
                episode_returns, episode_lengths = episode_stats(infos)
                episodes.append((episode_returns, episode_lengths, np.full(len(episode_returns), k)))
            self.state = self.policy.remember_rewards(self.state, rewards[t])
            self.episode_starts = self.autoreset  # this step reset the env: its next observation is new
            self.autoreset = terminated[t] | truncated[t]
            actions.append(action)
            extras.append(extra)
        for key, value in self.obs.items():
            obs[key][num_steps] = value
        self.state = self.policy.reset_state(self.state, self.episode_starts)
        for key, value in self.state.items():
            memory[key][num_steps] = value
        returns, lengths, episode_seeds = (np.concatenate(parts) for parts in zip(*episodes, strict=True))
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
            episode_seeds=episode_seeds.astype(np.int64),
            sample_time_s=time.perf_counter() - start,
            worker=self.index,
            policy_version=policy_version,
            memory=memory,
        )

    def _announce_policy(self, version: int) -> None:
        for k, source in self.external:
            source.policy_updated(self.policy.of_seed(k), version)

    def _step(self, env: Any, action: np.ndarray) -> tuple[Any, ...]:
        try:
            return env.step(action)
        except Exception as error:
            raise EnvError(f"env {self.env_id!r} raised {type(error).__name__}: {error}") from error

    def close(self) -> None:
        for env in self.envs:
            env.close()
