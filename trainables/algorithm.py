"""What every rlsweep algorithm shares as a Tune Trainable: config, workers, metrics,
evaluation, checkpoints. Subclasses add the learner math in `learn`."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
from ray import tune

from rlsweep.trainables.checkpoint import checkpoint_file, read_checkpoint, write_checkpoint
from rlsweep.trainables.config import ConfigError, build_config, check_range
from rlsweep.trainables.envs import (
    EnvReport,
    EnvSpecifier,
    check_env,
    env_label,
    env_spaces,
    make_vector_env,
    publish_gym_registration,
    resolve_env,
)
from rlsweep.trainables.evaluation import evaluate
from rlsweep.trainables.policy import Policy
from rlsweep.trainables.rollout_worker import Rollout
from rlsweep.trainables.spaces import space_names
from rlsweep.trainables.worker_group import WorkerGroup

logger = logging.getLogger(__name__)

Activation = Literal["tanh", "relu", "elu", "leaky_relu"]
"""Nonlinearities `trainables.networks.mlp` knows."""

EPISODE_WINDOW = 100
"""Training episode metrics are means over this many most recent episodes, as in SB3."""


@dataclass
class AlgorithmConfig:
    """Settings every algorithm has."""

    env: EnvSpecifier = "CartPole-v1"
    """A gymnasium id ("some.module:EnvId-v0" imports the module that registers it first), a
    gymnasium.Env class or factory ("some.module:Name", or the object itself), or a name
    registered with `ray.tune.registry.register_env`; see `rlsweep.trainables.envs`."""
    env_config: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of `gymnasium.make` for a gymnasium id (e.g. max_episode_steps); for
    a class, factory or register_env creator, its one argument (as an EnvContext)."""
    num_workers: int = 0
    """Rollout worker actors, one CPU each; 0 samples in the trainable's own process."""
    num_envs_per_worker: int = 8
    """Envs each worker steps as one batch, sharing one policy forward pass per step."""
    num_gpus: float = 0.0
    """GPUs for the learner; it falls back to the CPU when CUDA is not available."""
    seed: int = 0
    """Seeds torch, numpy and every env, so a config trains the same way twice."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Units per hidden layer of each network."""
    activation: Activation = "tanh"
    """Nonlinearity between hidden layers."""
    normalize_obs: bool = False
    """Standardize observations with running statistics (kept in checkpoints)."""
    evaluation_interval: int = 5
    """Evaluate every this many iterations, starting with the first; 0 turns evaluation off."""
    evaluation_num_episodes: int = 10
    """Deterministic episodes per evaluation, on envs separate from the workers."""
    max_worker_restarts: int = 3
    """Rollout workers the trial replaces (dead actor, failing env) before it fails itself."""
    restore_from: str | None = None
    """An rlsweep checkpoint of this algorithm to continue from (weights, optimizer state,
    counters) instead of starting from scratch; `rlsweep train --restore` sets it."""

    def validate(self) -> None:
        resolve_env(self.env)
        check_range("num_workers", self.num_workers, 0)
        check_range("num_envs_per_worker", self.num_envs_per_worker, 1)
        check_range("num_gpus", self.num_gpus, 0)
        check_range("seed", self.seed, 0)
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ConfigError(
                f"config key 'hidden_sizes' must list positive layer sizes, got {list(self.hidden_sizes)}"
            )
        check_range("evaluation_interval", self.evaluation_interval, 0)
        check_range("max_worker_restarts", self.max_worker_restarts, 0)
        check_range("evaluation_num_episodes", self.evaluation_num_episodes, 1)
        if self.restore_from is not None:
            checkpoint_file(self.restore_from)


class DivergenceError(FloatingPointError):
    """The learner's weights became NaN or infinite; retrying the same config rarely helps."""


def learner_device(num_gpus: float) -> torch.device:
    """CUDA when GPUs were asked for and one is visible; the CPU otherwise, with a warning."""
    if num_gpus > 0:
        if torch.cuda.is_available():
            return torch.device("cuda")
        logger.warning("num_gpus=%s but CUDA is not available; the learner runs on the CPU", num_gpus)
    return torch.device("cpu")


class Algorithm(tune.Trainable):
    """Tune's Trainable lifecycle for an RL algorithm.

    Each `step()` is one training iteration of one or more rounds: the workers sample with
    the current weights, `learn` updates the learner from those rollouts. Every
    `evaluation_interval` iterations deterministic episodes measure the greedy policy.
    """

    config_class: ClassVar[type[AlgorithmConfig]]
    policy_class: ClassVar[type[Policy]]
    """The acting policy; built from the config, the env's spaces and a device."""
    action_spaces: ClassVar[tuple[type[gym.spaces.Space], ...]]
    """The action spaces this algorithm acts in."""

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> tune.PlacementGroupFactory:
        """Bundle 0 is the learner (with its GPUs); one single-CPU bundle per worker actor.

        Tune calls this in the driver for every trial it adds, so it is also where an env id
        registered with `gym.register` in the driver is published to the trial's processes
        (see `publish_gym_registration`).
        """
        publish_gym_registration(config.get("env", cls.config_class.env))
        num_workers = max(0, int(config.get("num_workers", cls.config_class.num_workers)))
        num_gpus = max(0.0, float(config.get("num_gpus", cls.config_class.num_gpus)))
        learner = {"CPU": 1, "GPU": num_gpus} if num_gpus else {"CPU": 1}
        return tune.PlacementGroupFactory([learner] + [{"CPU": 1}] * num_workers)

    # -- subclass API ---------------------------------------------------------------------

    def setup_learner(self) -> None:
        """Build optimizers and anything else `learn` needs."""
        raise NotImplementedError

    def rollout_steps(self) -> int:
        """Steps each worker env takes per round of sampling."""
        raise NotImplementedError

    def timesteps_per_iteration(self) -> int:
        """Env steps an iteration covers at least: it repeats rounds of sampling then learning
        until it has. The default makes every iteration a single round (PPO)."""
        return 1

    def sampling_weights(self) -> dict[str, Any]:
        """What the workers load before a round: the policy's weights, plus any exploration
        state the algorithm schedules (DQN's epsilon)."""
        return self.policy.get_weights()

    def learn(self, rollouts: list[Rollout]) -> dict[str, float]:
        """Update the learner from one round's rollouts; returns loss metrics (NaN: no update)."""
        raise NotImplementedError

    def learner_state(self) -> dict[str, Any]:
        """Learner state beyond the policy weights (optimizers, ...) for checkpoints."""
        raise NotImplementedError

    def load_learner_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    @classmethod
    def action_space_problem(cls, action_space: gym.spaces.Space) -> str | None:
        """Why this algorithm cannot act in `action_space`, or None if it can."""
        if not isinstance(action_space, cls.action_spaces):
            return f"{cls.__name__} needs {space_names(cls.action_spaces)} actions"
        return None

    @classmethod
    def check_spaces(
        cls, config: AlgorithmConfig, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
    ) -> None:
        """Raise a ConfigError if this algorithm cannot learn in these spaces with `config`;
        a wrong action space names the algorithms that can act in it."""
        problem = cls.action_space_problem(action_space)
        if problem is not None:
            from rlsweep.trainables import ALGORITHMS

            able = [name for name, algo in ALGORITHMS.items() if not algo.action_space_problem(action_space)]
            instead = f"use {' or '.join(able)}" if able else "no rlsweep algorithm can"
            raise ConfigError(
                f"env {env_label(config.env)!r} has action space {action_space}, which {cls.__name__} "
                f"cannot act in ({problem}); {instead}"
            )

    @classmethod
    def check_environment(cls, config: AlgorithmConfig, *, run_env_checker: bool = False) -> EnvReport:
        """Build, reset and step one env of `config` and check that this algorithm can learn in
        it with `config`: the check `setup` runs, and the CLI before Ray starts. Every problem
        is a one-line ConfigError."""
        report = check_env(
            config.env, config.env_config, num_workers=config.num_workers, run_env_checker=run_env_checker
        )
        cls.check_spaces(config, report.observation_space, report.action_space)
        return report

    # -- Trainable lifecycle --------------------------------------------------------------

    def setup(self, config: dict[str, Any]) -> None:
        self.algo_config = build_config(self.config_class, config)
        cfg = self.algo_config
        torch.set_num_threads(1)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.device = learner_device(cfg.num_gpus)
        report = self.check_environment(cfg)
        self.observation_space, self.action_space = report.observation_space, report.action_space
        self.policy = self.policy_class(cfg, self.observation_space, self.action_space, self.device)
        self.setup_learner()
        self.timesteps_total = 0
        self.episodes_total = 0
        self.recent_returns: deque[float] = deque(maxlen=EPISODE_WINDOW)
        self.recent_lengths: deque[int] = deque(maxlen=EPISODE_WINDOW)
        self.last_evaluation: dict[str, float] = {}
        self.evaluation_env: gym.vector.VectorEnv | None = None
        # Workers act on their own CPU; the partial pickles the policy class by reference.
        make_worker_policy = functools.partial(
            self.policy_class, cfg, self.observation_space, self.action_space, "cpu"
        )
        self.workers = WorkerGroup(
            cfg.num_workers,
            cfg.env,
            cfg.env_config,
            cfg.num_envs_per_worker,
            cfg.seed,
            make_worker_policy,
            cfg.max_worker_restarts,
        )
        if cfg.restore_from is not None:
            self.load_checkpoint(cfg.restore_from)

    def step(self) -> dict[str, Any]:
        cfg = self.algo_config
        steps = finished = 0
        sample_time = learn_time = 0.0
        round_metrics: list[dict[str, float]] = []
        while not round_metrics or steps < self.timesteps_per_iteration():
            start = time.perf_counter()
            rollouts = self.workers.sample(self.sampling_weights(), self.rollout_steps())
            sample_time += time.perf_counter() - start
            round_steps = sum(rollout.num_env_steps for rollout in rollouts)
            steps += round_steps
            self.timesteps_total += round_steps
            for rollout in rollouts:
                self.recent_returns.extend(rollout.episode_returns.tolist())
                self.recent_lengths.extend(rollout.episode_lengths.tolist())
                finished += len(rollout.episode_returns)
            start = time.perf_counter()
            round_metrics.append(self.learn(rollouts))
            learn_time += time.perf_counter() - start
        self.episodes_total += finished
        result: dict[str, Any] = _mean_over_rounds(round_metrics)
        self._check_finite(result)
        result.update(self._episode_metrics(finished))
        result.update(
            timesteps_total=self.timesteps_total,
            episodes_total=self.episodes_total,
            env_steps_per_s=steps / (sample_time + learn_time),
            sample_time_s=sample_time,
            learn_time_s=learn_time,
            num_worker_restarts=self.workers.restarts,
        )
        if cfg.evaluation_interval and self.iteration % cfg.evaluation_interval == 0:
            self.last_evaluation = self.evaluate()
        result.update({f"evaluation/{key}": value for key, value in self.last_evaluation.items()})
        return result

    def _check_finite(self, learner_metrics: dict[str, float]) -> None:
        """Stop a diverged trial with the reason: its weights are no longer numbers."""
        if all(torch.isfinite(p).all() for p in self.policy.network.parameters()):
            return
        losses = ", ".join(f"{k}={v:.3g}" for k, v in learner_metrics.items())
        raise DivergenceError(
            f"training diverged at iteration {self.iteration + 1}: the network's weights are NaN or "
            f"infinite ({losses}); try a lower lr or max_grad_norm"
        )

    def _episode_metrics(self, finished: int) -> dict[str, float]:
        returns = np.asarray(self.recent_returns) if self.recent_returns else np.array([np.nan])
        lengths = np.asarray(self.recent_lengths) if self.recent_lengths else np.array([np.nan])
        return {
            "episode_return_mean": float(returns.mean()),
            "episode_return_min": float(returns.min()),
            "episode_return_max": float(returns.max()),
            "episode_len_mean": float(lengths.mean()),
            "num_episodes": finished,
        }

    def evaluate(self) -> dict[str, float]:
        """Deterministic episodes with the learner's current policy."""
        cfg = self.algo_config
        if self.evaluation_env is None:
            num_envs = min(cfg.evaluation_num_episodes, 16)
            self.evaluation_env = make_vector_env(
                cfg.env, num_envs, cfg.env_config, num_workers=cfg.num_workers
            )
        start = time.perf_counter()
        # Seeds distinct from the workers', and different each evaluation but reproducible.
        seed = cfg.seed + 1_000_000 + self.iteration
        metrics = evaluate(
            self.evaluation_env, self.policy.compute_actions, cfg.evaluation_num_episodes, seed
        )
        metrics["time_s"] = time.perf_counter() - start
        return metrics

    def compute_single_action(self, obs: Any, deterministic: bool = True) -> Any:
        """The trained policy's action for one observation."""
        return self.policy.compute_single_action(obs, deterministic)

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        state = {
            "policy": self.policy.get_weights(),
            "learner": self.learner_state(),
            "iteration": self.iteration,
            "timesteps_total": self.timesteps_total,
            "episodes_total": self.episodes_total,
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "last_evaluation": self.last_evaluation,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
        }
        write_checkpoint(checkpoint_dir, type(self).__name__, dataclasses.asdict(self.algo_config), state)

    def load_checkpoint(self, checkpoint: str | dict[str, Any]) -> None:
        state = read_checkpoint(checkpoint, type(self).__name__)["state"]
        self.policy.set_weights(state["policy"])
        self.load_learner_state(state["learner"])
        # Tune restores the iteration from its own metadata, but `restore(path)` outside Tune
        # has only our file; the checkpoint's count is right in both cases.
        self._iteration = state["iteration"]
        self.timesteps_total = state["timesteps_total"]
        self.episodes_total = state["episodes_total"]
        self.recent_returns = deque(state["recent_returns"], maxlen=EPISODE_WINDOW)
        self.recent_lengths = deque(state["recent_lengths"], maxlen=EPISODE_WINDOW)
        self.last_evaluation = state["last_evaluation"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Become a fresh trial with `new_config` inside this process (Tune's actor reuse).

        Rebuilding here is cheap next to a new trial process importing torch and Ray.
        State a reused trial should keep (PBT's exploit) arrives afterwards through
        `load_checkpoint`.
        """
        self.cleanup()
        self.setup(new_config)
        return True

    def cleanup(self) -> None:
        self.workers.stop()
        if self.evaluation_env is not None:
            self.evaluation_env.close()

    @classmethod
    def load_policy(cls, checkpoint: str | Path, device: str = "cpu") -> Policy:
        """The policy stored in a checkpoint, ready to act, without Ray or Tune."""
        payload = read_checkpoint(checkpoint, cls.__name__)
        config = build_config(cls.config_class, payload["config"])
        observation_space, action_space = env_spaces(config.env, config.env_config)
        policy = cls.policy_class(config, observation_space, action_space, device)
        policy.set_weights(payload["state"]["policy"])
        return policy


def check_fits_memory(what: str, num_bytes: float, remedy: str) -> None:
    """A ConfigError when `what` needs more memory than this machine has at all: it would fill
    up over hours of training, then be killed."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if num_bytes > total:
        raise ConfigError(
            f"{what} needs {num_bytes / 2**30:.1f} GiB, but this machine has {total / 2**30:.1f} GiB; "
            f"{remedy}"
        )


def _mean_over_rounds(round_metrics: list[dict[str, float]]) -> dict[str, float]:
    """Each learner metric averaged over an iteration's rounds, skipping the NaNs of rounds
    that made no update (an off-policy learner waiting for `learning_starts`)."""
    means = {}
    for key in round_metrics[0]:
        values = [metrics[key] for metrics in round_metrics if not math.isnan(metrics[key])]
        means[key] = float(np.mean(values)) if values else math.nan
    return means
