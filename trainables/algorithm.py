"""What every rlsweep algorithm shares as a Tune Trainable: its lifecycle (setup, training
iterations, evaluation, checkpoints, cleanup) around the learner math subclasses add in
`learn`."""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from ray import tune

from rlsweep.trainables import registry
from rlsweep.trainables.algorithm_config import AlgorithmConfig
from rlsweep.trainables.checkpoint import read_checkpoint, write_checkpoint
from rlsweep.trainables.config import ConfigError, build_config
from rlsweep.trainables.envs.build import env_spaces, make_vector_env
from rlsweep.trainables.envs.check import EnvReport, check_env
from rlsweep.trainables.envs.names import env_label, publish_gym_registration
from rlsweep.trainables.learning.device import learner_device
from rlsweep.trainables.models.policy import Policy
from rlsweep.trainables.models.spaces import space_names
from rlsweep.trainables.sampling.evaluation import evaluate
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.sampling.worker_group import WorkerGroup
from rlsweep.trainables.seeds import SeedMetrics, aggregate, generators, seed_results, seed_values
from rlsweep.trainables.training_episodes import TrainingEpisodes


class DivergenceError(FloatingPointError):
    """The learner's weights became NaN or infinite; retrying the same config rarely helps."""


class Algorithm(tune.Trainable):
    """Tune's Trainable lifecycle for an RL algorithm.

    Each `step()` is one training iteration of one or more rounds: the workers sample with
    the current weights (with `async_sampling`, they are already sampling the next round
    while `learn` runs; see `WorkerGroup`), `learn` updates the learner from those rollouts. Every
    `evaluation_interval` iterations deterministic episodes measure the greedy policy.
    With `num_seeds` K > 1, every metric is aggregated over the K seeds, each seed's
    own value reported under `seeds/<i>/`.
    """

    config_class: ClassVar[type[AlgorithmConfig]]
    policy_class: ClassVar[type[Policy]]
    """The acting policy; built from the config, the env's spaces, a device and the seed values."""
    action_spaces: ClassVar[tuple[type[gym.spaces.Space], ...]]
    """The action spaces this algorithm acts in."""
    learns_offline: ClassVar[bool] = False
    """Whether it learns from a dataset instead of stepping the env."""
    timestep_unit: ClassVar[str] = "env steps"
    """What `timesteps_total` counts, as reports name it."""

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

    def learn(self, rollouts: list[Rollout]) -> SeedMetrics:
        """Update the learner from one round's rollouts; returns loss metrics per seed
        (NaN: no update)."""
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
        """Raise a ConfigError if this algorithm cannot learn in these spaces with `config`:
        a wrong action space names the algorithms that can act in it, networks that do not
        fit the observations name the keys (`Policy.check_fits`)."""
        problem = cls.action_space_problem(action_space)
        if problem is not None:
            able = [  # the same kind of algorithm: an online one for an online one
                name
                for name in registry.algorithms_acting_in(action_space)
                if registry.get_algorithm(name).learns_offline == cls.learns_offline
            ]
            instead = f"use {' or '.join(able)}" if able else "no rlsweep algorithm can"
            raise ConfigError(
                f"env {env_label(config.env)!r} has action space {action_space}, which {cls.__name__} "
                f"cannot act in ({problem}); {instead}"
            )
        try:
            cls.policy_class.check_fits(config, observation_space, action_space)
        except ConfigError as error:
            raise ConfigError(f"env {env_label(config.env)!r}: {error}") from None

    @classmethod
    def check_environment(cls, config: AlgorithmConfig, *, run_env_checker: bool = False) -> EnvReport:
        """Resolve the env of `config`, build, reset and step one, and check that this
        algorithm can learn in it with `config`, then build its policy (one seed, on the CPU)
        and act once (`Policy.probe`): the check `setup` runs, and the CLI before Ray starts,
        so a network that does not fit the env fails on the driver. Every problem is a
        one-line ConfigError."""
        report = check_env(
            config.env_source,
            config.env_config,
            num_workers=config.num_workers,
            run_env_checker=run_env_checker,
        )
        cls.check_spaces(config, report.observation_space, report.action_space)
        try:
            cls.policy_class.probe(config, report.observation_space, report.action_space)
        except ConfigError as error:
            raise ConfigError(f"env {report.label!r}: {error}") from None
        return report

    # -- Trainable lifecycle --------------------------------------------------------------

    def setup(self, config: dict[str, Any]) -> None:
        self.algo_config = build_config(self.config_class, config)
        cfg = self.algo_config
        torch.set_num_threads(1)
        self.seeds = seed_values(cfg.seed, cfg.num_seeds)
        self.device = learner_device(cfg.num_gpus)
        # The env is resolved and checked once here; workers and evaluation build from the result.
        report = self.check_environment(cfg)
        self.env = report.source
        self.observation_space, self.action_space = report.observation_space, report.action_space
        self.policy = self.policy_class(
            cfg, self.observation_space, self.action_space, self.device, self.seeds
        )
        # The learner's own randomness (minibatch order, SAC's action noise), per seed.
        self.learner_generators = generators(self.seeds, self.device)
        self.setup_learner()
        self.policy_version = 0
        """Rounds learned since the workers started: the version of the weights they receive."""
        self.timesteps_total = 0
        """Env steps each seed took: every step of its envs, counted as CleanRL counts them
        (the step that resets an env after its episode ended included)."""
        self.episodes = TrainingEpisodes(cfg.num_seeds)
        self.last_evaluation: SeedMetrics = {}
        self.evaluation_envs: list[gym.vector.VectorEnv] = []
        self.workers = self.experience_source()
        if cfg.restore_from is not None:
            self.load_checkpoint(cfg.restore_from)

    def experience_source(self) -> WorkerGroup | None:
        """Where the learner's experience comes from: rollout workers stepping the env (an
        offline algorithm reads a dataset instead and has none)."""
        cfg = self.algo_config
        # Workers act on their own CPU; the partial pickles the policy class by reference.
        make_worker_policy = functools.partial(
            self.policy_class, cfg, self.observation_space, self.action_space, "cpu", self.seeds
        )
        return WorkerGroup(
            cfg.num_workers,
            self.env,
            cfg.env_config,
            cfg.num_envs_per_worker,
            self.seeds,
            make_worker_policy,
            cfg.max_worker_restarts,
            cfg.async_sampling,
        )

    def step(self) -> dict[str, Any]:
        cfg = self.algo_config
        steps = 0
        finished = np.zeros(cfg.num_seeds, dtype=np.int64)
        sample_time = learn_time = 0.0
        round_metrics: list[SeedMetrics] = []
        while not round_metrics or steps < self.timesteps_per_iteration():
            start = time.perf_counter()
            rollouts = self.workers.sample(self.sampling_weights(), self.rollout_steps(), self.policy_version)
            sample_time += time.perf_counter() - start
            round_steps = sum(rollout.valid.shape[0] * rollout.valid.shape[2] for rollout in rollouts)
            steps += round_steps
            self.timesteps_total += round_steps
            for rollout in rollouts:
                finished += self.episodes.add(rollout)
            start = time.perf_counter()
            round_metrics.append(self.learn(rollouts))
            self.policy_version += 1
            learn_time += time.perf_counter() - start
        learner_metrics = _mean_over_rounds(round_metrics)
        self._check_finite(learner_metrics)
        result = self.seed_results({**learner_metrics, **self.episodes.metrics(finished)})
        result.update(
            timesteps_total=self.timesteps_total,
            env_steps_per_s=steps * cfg.num_seeds / (sample_time + learn_time),
            sample_time_s=sample_time,
            learn_time_s=learn_time,
            num_worker_restarts=self.workers.restarts,
        )
        # Simulators evaluate nothing on the side: their episodes are the training's own.
        evaluates = cfg.evaluation_interval and not self.env.external
        if evaluates and self.iteration % cfg.evaluation_interval == 0:
            self.last_evaluation = self._evaluate_seeds()
        if self.last_evaluation:
            result.update(self.seed_results(self.last_evaluation, prefix="evaluation/"))
        return result

    def seed_results(self, metrics: SeedMetrics, prefix: str = "") -> dict[str, float]:
        """Per-seed metrics as Tune results (see `seeds.seed_results`)."""
        return seed_results(metrics, self.algo_config.seed_aggregate, prefix)

    def _check_finite(self, learner_metrics: SeedMetrics) -> None:
        """Stop a diverged trial with the reason: some seed's weights are no longer numbers."""
        finite = torch.stack(
            [p.detach().flatten(1).isfinite().all(1) for p in self.policy.network.parameters()]
        ).all(0)
        if bool(finite.all()):
            return
        diverged = torch.nonzero(~finite).flatten().tolist()
        losses = ", ".join(f"{k}={aggregate(v, 'mean'):.3g}" for k, v in learner_metrics.items())
        which = "" if self.algo_config.num_seeds == 1 else f" (seeds {diverged})"
        raise DivergenceError(
            f"training diverged at iteration {self.iteration + 1}{which}: the network's weights are NaN or "
            f"infinite ({losses}); try a lower lr or max_grad_norm"
        )

    def _evaluate_seeds(self) -> SeedMetrics:
        cfg = self.algo_config
        if not self.evaluation_envs:
            num_envs = min(cfg.evaluation_num_episodes, 16)
            self.evaluation_envs = [
                make_vector_env(self.env, num_envs, cfg.env_config, num_workers=cfg.num_workers)
                for _ in self.seeds
            ]
        start = time.perf_counter()
        # Seeds distinct from the workers', and different each evaluation but reproducible.
        seeds = [seed + 1_000_000 + self.iteration for seed in self.seeds]
        metrics = evaluate(self.evaluation_envs, self.policy, cfg.evaluation_num_episodes, seeds)
        metrics["time_s"] = np.full(cfg.num_seeds, time.perf_counter() - start)
        return metrics

    def evaluate(self) -> dict[str, float]:
        """Deterministic episodes with the learner's current policy, as Tune would report them."""
        return self.seed_results(self._evaluate_seeds())

    def compute_single_action(self, obs: Any, deterministic: bool = True) -> Any:
        """The trained policy's action for one observation (a single-seed trial's)."""
        return self.policy.compute_single_action(obs, deterministic)

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        state = {
            "policy": self.policy.get_weights(),
            "learner": self.learner_state(),
            "iteration": self.iteration,
            "timesteps_total": self.timesteps_total,
            **self.episodes.state_dict(),
            "last_evaluation": self.last_evaluation,
            "learner_generators": [g.get_state() for g in self.learner_generators],
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
        self.episodes.load_state_dict(state)
        self.last_evaluation = state["last_evaluation"]
        for generator, generator_state in zip(
            self.learner_generators, state["learner_generators"], strict=True
        ):
            generator.set_state(generator_state)

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
        if self.workers is not None:
            self.workers.stop()
        for env in self.evaluation_envs:
            env.close()

    @classmethod
    def load_policy(
        cls, checkpoint: str | Path, device: str = "cpu", seed_index: int | None = None
    ) -> Policy:
        """The policy of one seed stored in a checkpoint, ready to act, without Ray or Tune:
        `seed_index`, or the seed with the best last evaluation (else training) return."""
        payload = read_checkpoint(checkpoint, cls.__name__)
        config = build_config(cls.config_class, payload["config"])
        observation_space, action_space = env_spaces(config.env_source, config.env_config)
        seeds = seed_values(config.seed, config.num_seeds)
        policy = cls.policy_class(config, observation_space, action_space, device, seeds)
        policy.set_weights(payload["state"]["policy"])
        if seed_index is None:
            seed_index = best_seed(payload["state"])
        if not 0 <= seed_index < config.num_seeds:
            raise ConfigError(f"checkpoint has seeds 0..{config.num_seeds - 1}, not {seed_index}")
        return policy.of_seed(seed_index)


def best_seed(state: dict[str, Any]) -> int:
    """The seed with the best last evaluation return, else the best recent training return."""
    evaluation = state.get("last_evaluation", {}).get("episode_return_mean")
    if evaluation is not None:
        return int(np.nanargmax(evaluation))
    episodes = TrainingEpisodes(len(state["recent_returns"]))
    episodes.load_state_dict(state)
    return episodes.best_recent_seed()


def _mean_over_rounds(round_metrics: list[SeedMetrics]) -> SeedMetrics:
    """Each learner metric averaged over an iteration's rounds per seed, skipping the NaNs of
    rounds that made no update (an off-policy learner waiting for `learning_starts`)."""
    means = {}
    for key in round_metrics[0]:
        values = np.stack([metrics[key] for metrics in round_metrics])  # [rounds, K]
        counts = (~np.isnan(values)).sum(0)
        sums = np.nansum(values, 0)
        means[key] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return means
