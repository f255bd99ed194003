"""The experiment schema: a sweep described as data, each value validated before Ray starts.

An `Experiment` is what an experiment file holds (see `files.py` for reading one); its
`validate` checks every key against the algorithm, the search space and the scheduler it
names, so a sweep fails on a bad file in one line, not in a trial.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rlsweep.experiment.runtime_env import check_runtime_env, code_on_path
from rlsweep.experiment.schedulers import check_scheduler
from rlsweep.experiment.score import ScoreSpec
from rlsweep.search_spaces import SearchSpace, get_search_space
from rlsweep.trainables import get_algorithm
from rlsweep.trainables.config import ConfigError, check_range, did_you_mean
from rlsweep.trainables.envs.names import resolve_env

if TYPE_CHECKING:  # the algorithms import torch; reading an experiment does not need them
    from rlsweep.trainables import Algorithm

ScoreRange = tuple[float, float]
"""An env's [low, high] score range, which normalizes its metric to 0..1 across envs."""

FIXED_SPACE = "fixed"
"""The search space that searches nothing: an experiment that trains its config as it is."""


@dataclass
class StopSpec:
    """When a trial ends; the first condition met wins."""

    timesteps_total: int | None = None
    """Env steps."""
    time_total_s: float | None = None
    """Wall seconds of training."""
    training_iteration: int | None = None
    """Training iterations."""
    target: float | None = None
    """A value of the experiment's metric that is good enough (>= for max, <= for min)."""

    def validate(self) -> None:
        check_range("stop.timesteps_total", self.timesteps_total, 1, label="experiment")
        check_range("stop.time_total_s", self.time_total_s, 0, low_inclusive=False, label="experiment")
        check_range("stop.training_iteration", self.training_iteration, 1, label="experiment")
        if self.timesteps_total is None and self.time_total_s is None and self.training_iteration is None:
            raise ConfigError(
                "experiment key 'stop' needs at least one of timesteps_total, time_total_s or "
                "training_iteration, or trials would run forever"
            )

    @property
    def limits(self) -> dict[str, float]:
        """The budget conditions, by the result key each limits."""
        budget = {
            "timesteps_total": self.timesteps_total,
            "time_total_s": self.time_total_s,
            "training_iteration": self.training_iteration,
        }
        return {key: limit for key, limit in budget.items() if limit is not None}


@dataclass
class ResourcesSpec:
    """What each trial reserves; Tune packs trials into the cluster accordingly."""

    num_workers: int = 0
    """Rollout worker actors per trial (1 CPU each), on top of the learner's CPU."""
    num_envs_per_worker: int | None = None
    """Envs per worker; unset lets the search space choose."""
    num_gpus: float = 0.0
    """GPUs for each trial's learner."""

    def validate(self) -> None:
        check_range("resources.num_workers", self.num_workers, 0, label="experiment")
        check_range("resources.num_envs_per_worker", self.num_envs_per_worker, 1, label="experiment")
        check_range("resources.num_gpus", self.num_gpus, 0, label="experiment")

    @property
    def cpus_per_trial(self) -> int:
        return 1 + self.num_workers


@dataclass
class HeldOutSpec:
    """Held-out test seeds: once the search ends, its top configs are trained again from
    scratch, with the same budget, on seeds no tuning trial used; the best on those is the
    sweep's best config."""

    top: int = 3
    """Configs tested, the best by tuning score."""
    seeds: int = 5
    """Test seeds per config, trained as the seeds of one trial."""

    def validate(self) -> None:
        check_range("test.top", self.top, 1, label="experiment")
        check_range("test.seeds", self.seeds, 1, label="experiment")


@dataclass
class Experiment:
    """One sweep: which algorithm on which env, what to search, how to schedule and stop."""

    name: str
    """Names the results folder, the Optuna study and the MLflow experiment."""
    algorithm: str = "PPO"
    env: str = "CartPole-v1"
    """A gymnasium id, "module:EnvId-v0", "module:ClassOrFactory", or a register_env name
    (see `rlsweep.trainables.envs.build`); a file can only spell strings."""
    envs: dict[str, list[float]] = field(default_factory=dict)
    """Train every trial on each of these envs instead of `env`: env id -> [low, high], the
    score range that normalizes the env's metric to 0..1 before the envs are averaged."""
    config: dict[str, Any] = field(default_factory=dict)
    """Fixed trainable config for every trial; wins over what the space samples."""
    search_space: str | None = None
    """A name from search_spaces; defaults to the algorithm's own space; `fixed` searches
    nothing (every trial trains `config` as it is)."""
    search_params: dict[str, Any] = field(default_factory=dict)
    """Narrow space parameters ({low, high} or {choices}) or fix them (a plain value)."""
    metric: str = "evaluation/episode_return_mean"
    """What each evaluation measures; the score is computed from its history."""
    mode: Literal["max", "min"] = "max"
    score: ScoreSpec = field(default_factory=ScoreSpec)
    """What the search optimizes: the metric's final value, mean of its last k, or mean over the run."""
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    """Configs (config keys, e.g. a published tuned set) the search tries first; keys left
    out are sampled."""
    test: HeldOutSpec | None = None
    """Retrain the top configs on held-out seeds when the search ends; unset: no test."""
    num_samples: int = 8
    """Trials in the sweep."""
    max_concurrent_trials: int = 2
    sampler: Literal["tpe", "random", "qmc", "gp", "cmaes"] = "tpe"
    """Optuna sampler, seeded with `seed`."""
    scheduler: dict[str, Any] = field(default_factory=lambda: {"type": "fifo"})
    """{type: fifo}, {type: asha, ...}, {type: pbt, ...} or {type: pb2, ...}; see schedulers.py."""
    stop: StopSpec = field(default_factory=lambda: StopSpec(timesteps_total=100_000))
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    seed: int = 0
    """Seeds the sampler and every trial."""
    results_dir: str = "results"
    """Each sweep writes to RESULTS_DIR/NAME/TIMESTAMP; relative paths are from the working dir."""
    storage: str | None = None
    """A pyarrow filesystem URI (s3://bucket/prefix, gs://...) that keeps every run as
    STORAGE/NAME/TIMESTAMP: Tune's results and checkpoints, the run's files, MLflow's
    artifacts; RESULTS_DIR then holds a working copy of the run's own files."""
    max_failures: int = 1
    """Times a crashed trial is retried from its last checkpoint."""
    checkpoint_frequency: int = 10
    """Checkpoint every this many iterations (and always at the end); 0: only at the end."""
    keep_checkpoints: int = 2
    """Checkpoints kept per trial, the best by the metric."""
    time_budget_s: float | None = None
    """Stop starting and running trials after this many seconds for the whole sweep."""
    runtime_env: dict[str, Any] = field(default_factory=dict)
    """Ray's runtime_env for every trial and worker: `working_dir` and `py_modules` ship your
    own modules (a custom env) to every node of a cluster; see experiments/runtime_env.py."""

    def validate(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"experiment key 'name' must be letters, digits, '-' or '_', got {self.name!r}")
        get_algorithm(self.algorithm)
        check_runtime_env(self.runtime_env)
        if self.storage is not None and "://" not in self.storage:
            raise ConfigError(
                f"experiment key 'storage' must be a URI such as s3://bucket/prefix, got {self.storage!r}"
            )
        with code_on_path(self.runtime_env):
            resolve_env(self.env)
            self._check_envs()
        get_search_space(self.space_name)
        known = {f.name for f in dataclasses.fields(self.trainable.config_class)}
        for key in self.config:
            if key == "dataset" and key not in known:
                raise ConfigError(
                    f"{self.algorithm} learns online and would ignore config key 'dataset'; train from a "
                    "dataset with an offline algorithm (BC, MARWIL, CQL, DiscreteCQL, IQL), or remove the key"
                )
            if key not in known:
                raise ConfigError(
                    f"experiment key 'config.{key}' is not a {self.algorithm} config key"
                    f"{did_you_mean(key, known)}"
                )
        check_range("num_samples", self.num_samples, 1, label="experiment")
        check_range("max_concurrent_trials", self.max_concurrent_trials, 1, label="experiment")
        check_range("max_failures", self.max_failures, 0, label="experiment")
        check_range("checkpoint_frequency", self.checkpoint_frequency, 0, label="experiment")
        check_range("keep_checkpoints", self.keep_checkpoints, 1, label="experiment")
        check_range("time_budget_s", self.time_budget_s, 0, low_inclusive=False, label="experiment")
        check_scheduler(self.scheduler, known, self.scheduler_bounds())
        self._check_points(known)

    def _check_points(self, config_keys: set[str]) -> None:
        if self.points_to_evaluate and not self.is_search:
            raise ConfigError(
                "experiment key 'points_to_evaluate' needs a search; search_space 'fixed' has none"
            )
        check_range(
            "points_to_evaluate", len(self.points_to_evaluate), high=self.num_samples, label="experiment"
        )
        space = self.space
        for index, point in enumerate(self.points_to_evaluate):
            where = f"experiment key 'points_to_evaluate[{index}]'"
            if not isinstance(point, dict):
                raise ConfigError(f"{where} must be a mapping of config keys to values, got {point!r}")
            for key in point:
                if key not in config_keys:
                    hint = did_you_mean(key, config_keys)
                    raise ConfigError(f"{where} names {key!r}, not a {self.algorithm} config key{hint}")
            try:
                space.params_for(point)
            except ConfigError as error:
                raise ConfigError(f"{where} {error}") from None

    def _check_envs(self) -> None:
        for env, score_range in self.envs.items():
            if not (
                isinstance(score_range, (list, tuple))
                and len(score_range) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in score_range)
                and score_range[0] < score_range[1]
            ):
                raise ConfigError(
                    f"experiment key 'envs.{env}' must be the env's score range [low, high] with "
                    f"low < high, got {score_range!r}"
                )
        for env in self.env_ranges:
            resolve_env(env)
        num_workers = self.config.get("num_workers", self.resources.num_workers)
        if len(self.envs) > 1 and num_workers:
            raise ConfigError(
                "experiment key 'envs' trains every env in the trial's own process; "
                "set resources.num_workers: 0"
            )

    @property
    def space_name(self) -> str:
        return self.search_space or self.algorithm.lower()

    @property
    def is_search(self) -> bool:
        """Whether trials sample their configs (and an Optuna study records them)."""
        return self.space_name != FIXED_SPACE

    @property
    def is_population_based(self) -> bool:
        """PBT or PB2: trials exploit each other's checkpoints and change their configs as they run."""
        return self.scheduler.get("type") in ("pbt", "pb2")

    @property
    def trainable(self) -> type[Algorithm]:
        return get_algorithm(self.algorithm)

    @property
    def env_ranges(self) -> dict[str, ScoreRange | None]:
        """Every env a trial trains on, with its score range (None for a lone `env`)."""
        if self.envs:
            return {env: (float(low), float(high)) for env, (low, high) in self.envs.items()}
        return {self.env: None}

    def scheduler_bounds(self) -> dict[str, tuple[float, float]]:
        """For PB2: the float config keys the space varies, with their ranges; else nothing."""
        is_pb2 = isinstance(self.scheduler, dict) and self.scheduler.get("type") == "pb2"
        return self.space.config_bounds() if is_pb2 else {}

    @property
    def fixed_config(self) -> dict[str, Any]:
        """Config every trial gets: env, seed, resources, then the experiment's `config`.
        Over several envs the Objective sets each algorithm's env itself."""
        resources = {k: v for k, v in dataclasses.asdict(self.resources).items() if v is not None}
        env = {} if self.envs else {"env": self.env}
        config = {**env, "seed": self.seed, **resources, **self.config}
        if isinstance(config.get("dataset"), str) and Path(config["dataset"]).expanduser().exists():
            # Trials run in their own folders: a dataset path relative to here must not move.
            config["dataset"] = str(Path(config["dataset"]).expanduser().resolve())
        return config

    @property
    def tuning_seeds(self) -> int:
        """Seeds each tuning trial trains (its `num_seeds`)."""
        return int(self.config.get("num_seeds", 1))

    @functools.cached_property
    def space(self) -> SearchSpace:
        """The search space, narrowed by `search_params` and overlaid with the fixed config;
        built once per experiment."""
        return get_search_space(self.space_name).narrowed(self.search_params, self.fixed_config)

    def check_resources(self, cluster_cpus: float, cluster_gpus: float) -> None:
        """A trial that needs more than the whole cluster could never start."""
        needs_cpus = self.resources.cpus_per_trial
        if needs_cpus > cluster_cpus:
            raise ConfigError(
                f"each trial needs {needs_cpus} CPUs (1 learner + {self.resources.num_workers} workers) "
                f"but the cluster has {cluster_cpus:g}; lower resources.num_workers"
            )
        if self.resources.num_gpus > cluster_gpus:
            raise ConfigError(
                f"each trial needs {self.resources.num_gpus:g} GPUs but the cluster has {cluster_gpus:g}; "
                "lower resources.num_gpus"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.envs:
            del data["env"]  # `envs` replaces it, and a file may not hold both
        return data
