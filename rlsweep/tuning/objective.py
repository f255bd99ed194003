"""The trainable every experiment trial runs: its config trained on each of the
experiment's envs, reporting the score the search optimizes.

An `Objective` owns one algorithm instance per env, in its own process, and steps them in
turn. With one env its results are the algorithm's; with several (CleanRL's tuner does
this) each env's results go under `envs/<env>/`, and the metric is the mean over envs of
its value normalized by the env's score range (0 at the range's low end, 1 at its high
end), so that envs with different return scales weigh the same. On top, it reports the
score of its evaluation history (`rlsweep.experiment.score`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS, EPISODES_TOTAL, TIMESTEPS_TOTAL

from rlsweep.experiment.schema import Experiment, ScoreRange
from rlsweep.experiment.score import SCORE_KEY, ScoreHistory, ScoreSpec
from rlsweep.trainables import Algorithm
from rlsweep.trainables.seeds import PER_SEED_PREFIX

HISTORY_FILE = "score_history.json"
"""Beside the algorithm's state in a checkpoint, so a restored trial keeps its score's history."""

TUNE_BOOKKEEPING = (set(AUTO_RESULT_KEYS) | {"done", "trial_id"}) - {TIMESTEPS_TOTAL, EPISODES_TOTAL}
"""Keys Tune adds to an algorithm's results; the Objective's own `train` adds them again."""


def env_key(env_id: str) -> str:
    """An env id as a metric name segment (MLflow allows no ':' in metric names)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", env_id)


class Objective(tune.Trainable):
    """Trains one config on every env of `env_ranges` and reports its score.

    Subclassed per experiment by `objective_for`, under the algorithm's name, so
    trials are named and resource-requested as the algorithm's own.
    """

    algorithm: ClassVar[type[Algorithm]]
    env_ranges: ClassVar[dict[str, ScoreRange | None]]
    """Env id -> its score range; a single env is not normalized (its range is None)."""
    metric: ClassVar[str]
    score_spec: ClassVar[ScoreSpec]

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> tune.PlacementGroupFactory:
        """The algorithm's own: several envs are trained one after the other in this process
        (experiments check they sample in-process), so they need no more."""
        return cls.algorithm.default_resource_request(config)

    def setup(self, config: dict[str, Any]) -> None:
        # Our trial's storage: the algorithms write nothing of their own there, and without it
        # each would make an empty log folder under ~/ray_results.
        self.algorithms = {
            env: self.algorithm(config={**config, "env": env}, storage=self._storage)
            for env in self.env_ranges
        }
        self.history = ScoreHistory(self.metric, self.score_spec)

    def step(self) -> dict[str, Any]:
        evaluates = self._evaluates_now()
        results = {env: _own_metrics(algorithm.train()) for env, algorithm in self.algorithms.items()}
        result = results[next(iter(results))] if len(results) == 1 else self._combine(results)
        if evaluates:
            self.history.record(result)
        # Tune wants the search's metric in every result; before the metric has a value (no
        # episode has ended yet, as early in a Pong trial) the score is NaN, as the metric is.
        return {**result, SCORE_KEY: math.nan, **self.history.scores()}

    def _evaluates_now(self) -> bool:
        """Whether this iteration measures the metric anew: evaluation metrics every
        `evaluation_interval` iterations from the first (as the algorithm evaluates),
        training metrics every iteration."""
        if not self.metric.startswith("evaluation/"):
            return True
        interval = next(iter(self.algorithms.values())).algo_config.evaluation_interval
        return interval > 0 and self.iteration % interval == 0

    def _combine(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Every env's results under `envs/<env>/`; the metric (and each seed's) as the mean
        of its normalized values; env steps as each env's, which the budget limits."""
        combined: dict[str, Any] = {
            f"envs/{env_key(env)}/{key}": value
            for env, result in results.items()
            for key, value in result.items()
        }
        combined[TIMESTEPS_TOTAL] = max(result[TIMESTEPS_TOTAL] for result in results.values())
        seed_metric = re.compile(rf"^({PER_SEED_PREFIX})?{re.escape(self.metric)}$")
        first = next(iter(results.values()))
        for key in filter(seed_metric.match, first):
            combined[key] = float(
                np.mean([normalized(result[key], self.env_ranges[env]) for env, result in results.items()])
            )
        return combined

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        for env, algorithm in self.algorithms.items():
            algorithm.save_checkpoint(str(self._env_dir(checkpoint_dir, env)))
        (Path(checkpoint_dir) / HISTORY_FILE).write_text(json.dumps(self.history.values))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        for env, algorithm in self.algorithms.items():
            algorithm.load_checkpoint(str(self._env_dir(checkpoint_dir, env)))
        self.history.values = json.loads((Path(checkpoint_dir) / HISTORY_FILE).read_text())

    def _env_dir(self, checkpoint_dir: str, env: str) -> Path:
        """A single env's checkpoint is the algorithm's own (`load_policy` reads it); several
        envs' go into a folder each."""
        if len(self.algorithms) == 1:
            return Path(checkpoint_dir)
        path = Path(checkpoint_dir) / env_key(env)
        path.mkdir(exist_ok=True)
        return path

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Become a fresh trial with `new_config` in this process (Tune's actor reuse): new
        algorithms, since each counts its own iterations and Tune resets only ours."""
        self.cleanup()
        self.setup(new_config)
        return True

    def cleanup(self) -> None:
        for algorithm in self.algorithms.values():
            algorithm.stop()


def normalized(value: float, score_range: ScoreRange | None) -> float:
    """`value` as a fraction of the way from the range's low end to its high end."""
    if score_range is None:
        return value
    low, high = score_range
    return (value - low) / (high - low)


def objective_for(experiment: Experiment) -> type[Objective]:
    """The trainable Tune runs for an experiment: its algorithm on every env, reporting the
    score; named like the algorithm (trials are ALGO_<id>)."""
    algorithm = experiment.trainable
    attributes = {
        "algorithm": algorithm,
        "env_ranges": experiment.env_ranges,
        "metric": experiment.metric,
        "score_spec": experiment.score,
        "__doc__": algorithm.__doc__,
    }
    return type(algorithm.__name__, (Objective,), attributes)


def _own_metrics(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key not in TUNE_BOOKKEEPING}
