"""What every offline algorithm shares: its experience is a recorded dataset, not rollout
workers. Each Tune iteration is `updates_per_iteration` gradient steps on minibatches drawn
from the dataset; each evaluation measures the policy online, in the env the dataset was
recorded in, and off-policy with fitted Q evaluation (`offline/fqe.py`), which needs no env.

The dataset is memory-mapped from this node's cache (`offline/shared.py`): every trial on
a node reads the same pages. Each algorithm's math lives in its `update`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables.algorithm import Algorithm
from rlsweep.trainables.algorithm_config import Activation, AlgorithmConfig
from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.envs.check import EnvReport
from rlsweep.trainables.learning.device import to_device
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.observations import Observations
from rlsweep.trainables.offline.dataset import Dataset
from rlsweep.trainables.offline.fqe import FittedQEvaluation
from rlsweep.trainables.offline.shared import open_shared
from rlsweep.trainables.seeds import SeedMetrics, draw

OFFLINE_ALGORITHMS = ("BC", "MARWIL", "CQL", "DiscreteCQL", "IQL")
"""The algorithms that learn from a `dataset` (named in error messages)."""


@dataclass
class OfflineConfig(AlgorithmConfig):
    """Settings of every algorithm that learns from a dataset."""

    dataset: str | None = None
    """The recorded transitions: a .npz file, a Minari dataset folder, or a Minari dataset id
    under MINARI_DATASETS_PATH (nothing is downloaded); see `rlsweep record`."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: Activation = "relu"
    lr: float = 3e-4
    """Adam learning rate of every network."""
    gamma: float = 0.99
    """Discount factor."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before learning (values of a few tens train in far fewer
    steps than Pendulum's hundreds); evaluation reports the env's own returns."""
    batch_size: int = 256
    """Transitions per gradient step (per seed), drawn uniformly from the dataset."""
    updates_per_iteration: int = 1000
    """Gradient steps per Tune iteration; `timesteps_total` counts gradient steps (an offline
    algorithm takes no env steps to learn)."""
    evaluation_interval: int = 1
    online_evaluation: bool = True
    """Evaluate with episodes in the dataset's env; false where the env cannot be run."""
    fqe_updates: int = 500
    """Fitted Q evaluation gradient steps per evaluation (its critic carries over between
    evaluations); 0 turns the off-policy estimate off."""
    fqe_lr: float = 1e-3
    """Adam learning rate of the FQE critic."""

    def validate(self) -> None:
        super().validate()
        if self.dataset is None:
            algorithm = type(self).__name__.removesuffix("Config")
            raise ConfigError(
                f"{algorithm} learns from a dataset, but config key 'dataset' is not set; set it to a .npz "
                "file, a Minari dataset folder or id (record one with `rlsweep record`)"
            )
        check_range("lr", self.lr, 0, low_inclusive=False)
        check_range("gamma", self.gamma, 0, 1, low_inclusive=False)
        check_range("reward_scale", self.reward_scale, 0, low_inclusive=False)
        check_range("batch_size", self.batch_size, 1)
        check_range("updates_per_iteration", self.updates_per_iteration, 1)
        check_range("fqe_updates", self.fqe_updates, 0)
        check_range("fqe_lr", self.fqe_lr, 0, low_inclusive=False)
        if self.use_lstm:
            raise ConfigError(
                "config key 'use_lstm' is true, but offline algorithms train memoryless policies"
            )


class OfflineBatch(NamedTuple):
    """Dataset transitions as learner tensors [K, B, ...]: each seed draws its own rows."""

    obs: TensorObs  # normalized
    actions: torch.Tensor  # long indices [K, B] (Discrete), flat env-scale [K, B, dim] (Box)
    rewards: torch.Tensor
    next_obs: TensorObs  # normalized
    terminated: torch.Tensor  # float, 1.0 where next_obs is terminal
    discounts: torch.Tensor  # gamma per transition (one-step returns)
    returns: torch.Tensor | None  # discounted returns-to-go, for the algorithms that ask


class OfflineAlgorithm(Algorithm):
    """Learns from the dataset of config key `dataset`; subclasses define `update` and build
    `optimizers` in `setup_learner`."""

    config_class: ClassVar[type[OfflineConfig]]
    learns_offline = True
    timestep_unit = "gradient steps"
    update_metrics: ClassVar[tuple[str, ...]]
    needs_returns: ClassVar[bool] = False
    """Whether batches carry discounted returns-to-go (MARWIL's advantages)."""
    optimizers: list[torch.optim.Optimizer]
    dataset: Dataset

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> Any:
        return super().default_resource_request({**config, "num_workers": 0})

    @classmethod
    def check_environment(cls, config: OfflineConfig, *, run_env_checker: bool = False) -> EnvReport:
        """The env checks of every algorithm, then the dataset's: readable, finite, and
        recorded in the env's spaces (the first check on a node also caches its arrays)."""
        report = super().check_environment(config, run_env_checker=run_env_checker)
        dataset = open_shared(config.dataset)
        dataset.check_spaces(repr(config.dataset), report.observation_space, report.action_space)
        return report

    def experience_source(self) -> None:
        """The dataset, memory-mapped; no rollout workers."""
        cfg = self.algo_config
        self.dataset = open_shared(cfg.dataset)
        self.returns_to_go = self.dataset.returns_to_go(cfg.gamma) if self.needs_returns else None
        if cfg.normalize_obs:  # the statistics of the whole dataset, known up front
            vectors = self.policy.layout.encode(np.asarray(self.dataset.observations)).get("vector")
            for seed_index in range(cfg.num_seeds):
                self.policy.normalizer.update(seed_index, vectors)
        self.fqe = (
            FittedQEvaluation(self.policy, cfg.gamma, cfg.fqe_lr, self.seeds) if cfg.fqe_updates else None
        )
        return None

    def update(self, batch: OfflineBatch) -> dict[str, torch.Tensor]:
        """One gradient step on a batch; returns metric tensors [K]."""
        raise NotImplementedError

    # -- sampling the dataset ---------------------------------------------------------------

    def sample_rows(self, batch_size: int) -> np.ndarray:
        """Row indices [K, B]: each seed's minibatch, drawn from its own generator."""
        uniform = draw("uniform", self.learner_generators, (batch_size,), self.device)
        return np.minimum((uniform.cpu().numpy() * len(self.dataset)).astype(np.int64), len(self.dataset) - 1)

    def encode(self, observations: np.ndarray) -> Observations:
        """Dataset observations [K, B, ...] as the policy's (unnormalized) inputs [K, B, ...]."""
        rows = observations.shape[:2]
        encoded = self.policy.layout.encode(observations.reshape(-1, *observations.shape[2:]))
        return {key: value.reshape(*rows, *value.shape[1:]) for key, value in encoded.items()}

    def batch(self, rows: np.ndarray) -> OfflineBatch:
        data, cfg = self.dataset, self.algo_config
        actions = np.asarray(data.actions[rows])
        if isinstance(self.action_space, gym.spaces.Discrete):
            actions = actions.astype(np.int64) - int(self.action_space.start)
        else:  # the action heads and critics take flat actions [K, B, dim]
            actions = actions.reshape(*rows.shape, -1).astype(np.float32)
        return OfflineBatch(
            obs=self.policy.obs_tensors(self.encode(np.asarray(data.observations[rows]))),
            actions=to_device(actions, self.device),
            rewards=to_device(np.asarray(data.rewards[rows], np.float32) * cfg.reward_scale, self.device),
            next_obs=self.policy.obs_tensors(self.encode(np.asarray(data.next_observations[rows]))),
            terminated=to_device(np.asarray(data.terminations[rows], np.float32), self.device),
            discounts=torch.full(rows.shape, cfg.gamma, device=self.device),
            returns=None
            if self.returns_to_go is None
            else to_device(self.returns_to_go[rows] * cfg.reward_scale, self.device),
        )

    # -- Trainable lifecycle ----------------------------------------------------------------

    def step(self) -> dict[str, Any]:
        cfg = self.algo_config
        start = time.perf_counter()
        for optimizer in self.optimizers:  # from the config, so PBT's new lr wins over a restored one
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr
        stats: dict[str, list[torch.Tensor]] = defaultdict(list)
        for _ in range(cfg.updates_per_iteration):
            for key, value in self.update(self.batch(self.sample_rows(cfg.batch_size))).items():
                stats[key].append(value)
        metrics: SeedMetrics = {
            key: torch.stack(values).mean(0).cpu().numpy() for key, values in stats.items()
        }
        self.timesteps_total += cfg.updates_per_iteration
        learn_time = time.perf_counter() - start
        self._check_finite(metrics)
        result = self.seed_results(metrics)
        result.update(
            timesteps_total=self.timesteps_total,
            gradient_steps_per_s=cfg.updates_per_iteration / learn_time,
            learn_time_s=learn_time,
            dataset_transitions=len(self.dataset),
        )
        if cfg.evaluation_interval and self.iteration % cfg.evaluation_interval == 0:
            self.last_evaluation = self._evaluate_offline()
        if self.last_evaluation:
            result.update(self.seed_results(self.last_evaluation, prefix="evaluation/"))
        return result

    def _evaluate_offline(self) -> SeedMetrics:
        """Online episodes in the env (with the normalized score when the dataset has
        reference scores) and the FQE estimate of the policy's discounted return."""
        cfg = self.algo_config
        metrics: SeedMetrics = self._evaluate_seeds() if cfg.online_evaluation else {}
        if "episode_return_mean" in metrics:
            normalized = self.dataset.info.normalized_score(metrics["episode_return_mean"])
            if normalized is not None:
                metrics["normalized_score"] = normalized
        if self.fqe is not None:
            start = time.perf_counter()
            metrics["fqe_loss"] = self.fqe.fit(self, cfg.fqe_updates, cfg.batch_size)
            metrics["fqe_value"] = self.fqe.estimate(self)
            metrics["fqe_time_s"] = np.full(cfg.num_seeds, time.perf_counter() - start)
        return metrics

    def learner_state(self) -> dict[str, Any]:
        state = {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}
        if self.fqe is not None:
            state["fqe"] = self.fqe.state_dict()
        return state

    def load_learner_state(self, state: dict[str, Any]) -> None:
        for optimizer, optimizer_state in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(optimizer_state)
        if self.fqe is not None and "fqe" in state:
            self.fqe.load_state_dict(state["fqe"])
