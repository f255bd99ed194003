"""What DQN and SAC share: rollouts go into a replay buffer, and the learner's updates
sample from it. Each algorithm's math lives in its `update`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables.algorithm import Activation, Algorithm, AlgorithmConfig, check_fits_memory
from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.policy import Policy
from rlsweep.trainables.replay_buffer import ReplayBuffer, Transitions
from rlsweep.trainables.rollout_worker import Rollout


@dataclass
class OffPolicyConfig(AlgorithmConfig):
    """Settings of every replay-buffer algorithm."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: Activation = "relu"
    lr: float = 1e-3
    """Adam learning rate of every network (and of SAC's temperature)."""
    gamma: float = 0.99
    """Discount factor."""
    buffer_size: int = 100_000
    """Transitions the replay buffer keeps; the oldest are overwritten first."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_starts: int = 1000
    """Updates wait until the buffer holds this many transitions (again after a checkpoint
    restored without its buffer, so a few transitions are not overfit)."""
    train_freq: int = 1
    """Steps each worker env takes per round; a round is sampling, then `gradient_steps`."""
    gradient_steps: int = 1
    """Updates per round."""
    n_step: int = 1
    """Steps of real rewards summed before bootstrapping from the target networks."""
    timesteps_per_iteration: int = 1000
    """Env steps per Tune iteration (whole rounds, so at least this many); sets how often
    the trial reports, evaluates and can be checkpointed or stopped."""
    checkpoint_replay_buffer: bool = False
    """Save the buffer's transitions in checkpoints, so a restored trial (PBT, a retried
    failure) resumes learning without refilling it; costs disk, up to buffer_size rows."""

    def validate(self) -> None:
        super().validate()
        check_range("lr", self.lr, 0, low_inclusive=False)
        check_range("gamma", self.gamma, 0, 1, low_inclusive=False)
        check_range("buffer_size", self.buffer_size, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("learning_starts", self.learning_starts, 0)
        check_range("train_freq", self.train_freq, 1)
        check_range("gradient_steps", self.gradient_steps, 1)
        check_range("n_step", self.n_step, 1)
        check_range("timesteps_per_iteration", self.timesteps_per_iteration, 1)
        if self.learning_starts > self.buffer_size:
            raise ConfigError(
                f"config key 'learning_starts' ({self.learning_starts}) must not exceed 'buffer_size' "
                f"({self.buffer_size}), or learning would never start"
            )


class Batch(NamedTuple):
    """Replayed transitions as learner tensors; see `Transitions` for the meaning."""

    obs: torch.Tensor  # [B, obs_dim] normalized
    actions: torch.Tensor  # [B] long (Discrete) or [B, action_dim] float (Box)
    rewards: torch.Tensor  # [B]
    next_obs: torch.Tensor  # [B, obs_dim] normalized
    terminated: torch.Tensor  # [B] float, 1.0 where next_obs is terminal
    discounts: torch.Tensor  # [B]


class OffPolicyAlgorithm(Algorithm):
    """Each round stores the rollouts' transitions, then runs `gradient_steps` updates on
    batches replayed from the buffer. Subclasses build `optimizers` in `setup_learner`."""

    config_class: ClassVar[type[OffPolicyConfig]]
    update_metrics: ClassVar[tuple[str, ...]]
    """Keys `update` returns; NaN in rounds before learning starts, so every result has them."""
    policy: Policy
    optimizers: list[torch.optim.Optimizer]

    @classmethod
    def check_spaces(
        cls, config: OffPolicyConfig, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
    ) -> None:
        super().check_spaces(config, observation_space, action_space)
        obs_dim = gym.spaces.flatdim(observation_space)
        check_fits_memory(
            f"the replay buffer ({config.buffer_size} transitions of 2 x {obs_dim} float32 observations)",
            2 * config.buffer_size * obs_dim * np.dtype(np.float32).itemsize,
            "lower buffer_size",
        )

    def setup_learner(self) -> None:
        cfg = self.algo_config
        action_shape = self.action_space.shape if self.policy.continuous else ()
        action_dtype = np.float32 if self.policy.continuous else np.int64
        self.replay_buffer = ReplayBuffer(
            cfg.buffer_size, self.policy.obs_dim, action_shape, action_dtype, cfg.n_step, cfg.seed
        )
        self.worker_restarts_seen = 0

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on a replayed batch; returns scalar metric tensors."""
        raise NotImplementedError

    def rollout_steps(self) -> int:
        return self.algo_config.train_freq

    def timesteps_per_iteration(self) -> int:
        return self.algo_config.timesteps_per_iteration

    def learn(self, rollouts: list[Rollout]) -> dict[str, float]:
        cfg = self.algo_config
        if self.workers.restarts > self.worker_restarts_seen:
            self.replay_buffer.discard_held_back()
            self.worker_restarts_seen = self.workers.restarts
        for source, rollout in enumerate(rollouts):
            self.replay_buffer.add_rollout(rollout, source, cfg.gamma)
            self.policy.normalizer.update(rollout.obs[:-1][rollout.valid])
        if len(self.replay_buffer) < max(1, cfg.learning_starts):
            return dict.fromkeys(self.update_metrics, math.nan)
        # From the config every round, so PBT's new lr wins over a restored optimizer's.
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr
        stats: dict[str, list[torch.Tensor]] = {key: [] for key in self.update_metrics}
        for _ in range(cfg.gradient_steps):
            for key, value in self.update(self._batch(self.replay_buffer.sample(cfg.batch_size))).items():
                stats[key].append(value)
        # One device sync per round instead of one per gradient step.
        return {key: torch.stack(values).mean().item() for key, values in stats.items()}

    def _batch(self, transitions: Transitions) -> Batch:
        as_tensor = lambda array: torch.as_tensor(array, device=self.device)  # noqa: E731
        return Batch(
            obs=self.policy.obs_tensor(transitions.obs),
            actions=as_tensor(transitions.actions),
            rewards=as_tensor(transitions.rewards),
            next_obs=self.policy.obs_tensor(transitions.next_obs),
            terminated=as_tensor(transitions.terminated).float(),
            discounts=as_tensor(transitions.discounts),
        )

    def step(self) -> dict[str, Any]:
        result = super().step()
        result["buffer_size"] = len(self.replay_buffer)
        return result

    def learner_state(self) -> dict[str, Any]:
        cfg = self.algo_config
        return {
            "replay_buffer": self.replay_buffer.state_dict(include_transitions=cfg.checkpoint_replay_buffer),
            "optimizers": [optimizer.state_dict() for optimizer in self.optimizers],
        }

    def load_learner_state(self, state: dict[str, Any]) -> None:
        self.replay_buffer.load_state_dict(state["replay_buffer"])
        for optimizer, optimizer_state in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(optimizer_state)


def adam(params: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel: one op for all parameters instead of several per tensor,
    a quarter of a small network's update time on the CPU."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def polyak_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target; tau = 1 copies."""
    with torch.no_grad():
        for target_param, param in zip(target.parameters(), online.parameters(), strict=True):
            target_param.lerp_(param, tau)
