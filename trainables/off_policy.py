"""What DQN and SAC share: rollouts go into a replay buffer, and the learner's updates
sample from it. Each algorithm's math lives in its `update`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables.algorithm import Algorithm
from rlsweep.trainables.algorithm_config import Activation, AlgorithmConfig
from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.learning.device import to_device
from rlsweep.trainables.learning.frame_store import EPISODE_START_ROOM
from rlsweep.trainables.learning.replay_buffer import ReplayBuffer, Transitions
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.observations import ObservationLayout
from rlsweep.trainables.models.policy import Policy
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.seeds import SeedMetrics


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
    """Transitions the replay buffer keeps per seed; the oldest are overwritten first."""
    batch_size: int = 256
    """Transitions per gradient step (per seed)."""
    learning_starts: int = 1000
    """Updates wait until this many env steps have filled the buffer (again after a
    checkpoint restored without its buffer, so a few transitions are not overfit)."""
    train_freq: int = 1
    """Steps each worker env takes per round; a round is sampling, then `gradient_steps`."""
    gradient_steps: int = 1
    """Updates per round of one rollout from each worker (with asynchronous sampling, per
    that many env steps on average)."""
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
    """Replayed transitions as learner tensors [K, B, ...]; see `Transitions` for the meaning."""

    obs: TensorObs  # normalized
    actions: torch.Tensor  # long (Discrete) or float env-scale actions (Box)
    rewards: torch.Tensor
    next_obs: TensorObs  # normalized
    terminated: torch.Tensor  # float, 1.0 where next_obs is terminal
    discounts: torch.Tensor

    def rows(self, start: int, stop: int) -> Batch:
        """Every seed's transitions start..stop."""

        def part(value: Any) -> Any:
            if isinstance(value, dict):
                return {key: tensor[:, start:stop] for key, tensor in value.items()}
            return value[:, start:stop]

        return Batch(*(part(value) for value in self))


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
        layout = ObservationLayout.of(observation_space)
        # At least: the vector for obs and next_obs, and one new image channel per step (the
        # frame store keeps each frame once; see frame_store.py).
        per_transition = 2 * layout.vector_dim * np.dtype(np.float32).itemsize
        if layout.image_shape is not None:
            per_transition += math.prod(layout.image_shape[1:]) * (1 + EPISODE_START_ROOM)
        check_fits_memory(
            f"the replay buffer ({config.num_seeds} x {config.buffer_size} transitions)",
            config.num_seeds * config.buffer_size * per_transition,
            "lower buffer_size",
        )

    def setup_learner(self) -> None:
        cfg = self.algo_config
        self.replay_buffer = ReplayBuffer(cfg.buffer_size, self.seeds, cfg.n_step)
        self.filled_steps = 0
        """Env steps stored since the buffer was last empty: the clock of `learning_starts`."""
        self.worker_restarts_seen = 0
        self.pending_updates = 0.0
        """Gradient steps owed to the env steps stored so far (a fraction carries over)."""

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on a replayed batch; returns metric tensors [K]."""
        raise NotImplementedError

    def rollout_steps(self) -> int:
        return self.algo_config.train_freq

    def timesteps_per_iteration(self) -> int:
        return self.algo_config.timesteps_per_iteration

    def learn(self, rollouts: list[Rollout]) -> SeedMetrics:
        cfg = self.algo_config
        if self.workers.restarts > self.worker_restarts_seen:
            self.replay_buffer.discard_held_back()
            self.worker_restarts_seen = self.workers.restarts
        for rollout in rollouts:
            self.replay_buffer.add_rollout(rollout, rollout.worker, cfg.gamma)
            self.filled_steps += rollout.valid.shape[0] * rollout.valid.shape[2]
            if "vector" in rollout.obs:
                for seed_index in range(cfg.num_seeds):
                    vectors = rollout.obs["vector"][:-1, seed_index][rollout.valid[:, seed_index]]
                    self.policy.normalizer.update(seed_index, vectors)
        if self.filled_steps < max(1, cfg.learning_starts) or len(self.replay_buffer) == 0:
            return {key: np.full(cfg.num_seeds, np.nan) for key in self.update_metrics}
        # From the config every round, so PBT's new lr wins over a restored optimizer's.
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr
        # `gradient_steps` per round of one rollout per worker; asynchronous sampling may bring
        # more rollouts to one update, and the fraction left over waits for the next.
        self.pending_updates += cfg.gradient_steps * len(rollouts) / max(1, cfg.num_workers)
        num_updates = int(self.pending_updates)
        self.pending_updates -= num_updates
        if num_updates == 0:
            return {key: np.full(cfg.num_seeds, np.nan) for key in self.update_metrics}
        stats: dict[str, list[torch.Tensor]] = {key: [] for key in self.update_metrics}
        # The update's batches are replayed together: one copy to the learner's device.
        replayed = self._batch(self.replay_buffer.sample(cfg.batch_size * num_updates))
        for start in range(0, cfg.batch_size * num_updates, cfg.batch_size):
            for key, value in self.update(replayed.rows(start, start + cfg.batch_size)).items():
                stats[key].append(value)
        # One device sync per round instead of one per gradient step.
        return {key: torch.stack(values).mean(0).cpu().numpy() for key, values in stats.items()}

    def _batch(self, transitions: Transitions) -> Batch:
        return Batch(
            obs=self.policy.obs_tensors(transitions.obs),
            actions=to_device(transitions.actions, self.device),
            rewards=to_device(transitions.rewards, self.device),
            next_obs=self.policy.obs_tensors(transitions.next_obs),
            terminated=to_device(transitions.terminated, self.device).float(),
            discounts=to_device(transitions.discounts, self.device),
        )

    def step(self) -> dict[str, Any]:
        result = super().step()
        result["buffer_size"] = len(self.replay_buffer)
        return result

    def replay_transitions(self, seed_index: int = 0) -> dict[str, np.ndarray]:
        """Seed `seed_index`'s transitions in the buffer, oldest first, as the arrays of an
        offline dataset (`trainables/offline/dataset.py`): observations, actions, rewards,
        next_observations, terminations, truncations.

        One-step transitions of vector observations only. A row is truncated where the next
        row does not continue from its next observation: an episode's time limit with one
        env per worker (with several, their interleaved steps break there too).
        """
        cfg = self.algo_config
        if cfg.n_step != 1:
            raise ConfigError(f"the replay buffer holds {cfg.n_step}-step transitions; export needs n_step 1")
        storage = self.replay_buffer.storage
        flat_box = (
            isinstance(self.observation_space, gym.spaces.Box) and len(self.observation_space.shape) == 1
        )
        if storage is None or not flat_box:
            raise ConfigError("only a non-empty replay buffer of flat Box observations exports as a dataset")
        size = int(self.replay_buffer.sizes[seed_index])
        index = (self.replay_buffer.position[seed_index] - size + np.arange(size)) % cfg.buffer_size
        rows = storage.select((seed_index, index))
        observations, next_observations = rows.obs["vector"], rows.next_obs["vector"]
        terminations = rows.terminated.astype(bool)
        continues = np.zeros(size, dtype=bool)
        continues[:-1] = np.all(next_observations[:-1] == observations[1:], axis=-1)
        return {
            "observations": observations,
            "actions": rows.actions,
            "rewards": rows.rewards.astype(np.float32),
            "next_observations": next_observations,
            "terminations": terminations,
            "truncations": ~terminations & ~continues,
        }

    def learner_state(self) -> dict[str, Any]:
        cfg = self.algo_config
        return {
            "replay_buffer": self.replay_buffer.state_dict(include_transitions=cfg.checkpoint_replay_buffer),
            "filled_steps": self.filled_steps if cfg.checkpoint_replay_buffer else 0,
            "optimizers": [optimizer.state_dict() for optimizer in self.optimizers],
        }

    def load_learner_state(self, state: dict[str, Any]) -> None:
        self.replay_buffer.load_state_dict(state["replay_buffer"])
        self.filled_steps = state["filled_steps"]
        for optimizer, optimizer_state in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(optimizer_state)


def check_fits_memory(what: str, num_bytes: float, remedy: str) -> None:
    """A ConfigError when `what` needs more memory than this machine has at all: it would fill
    up over hours of training, then be killed."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if num_bytes > total:
        raise ConfigError(
            f"{what} needs at least {num_bytes / 2**30:.1f} GiB, but this machine has "
            f"{total / 2**30:.1f} GiB; {remedy}"
        )


def polyak_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target; tau = 1 copies."""
    with torch.no_grad():
        for target_param, param in zip(target.parameters(), online.parameters(), strict=True):
            target_param.lerp_(param, tau)
