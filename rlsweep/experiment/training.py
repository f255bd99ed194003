"""The one-trial experiment `rlsweep train` runs: a fixed config, no search."""

from __future__ import annotations

import dataclasses
from typing import Any

from rlsweep.experiment.files import experiment_from_dict
from rlsweep.experiment.schema import FIXED_SPACE, Experiment, StopSpec
from rlsweep.trainables import get_algorithm


def training_experiment(
    algorithm: str,
    config: dict[str, Any],
    stop: StopSpec,
    *,
    checkpoint_frequency: int,
    results_dir: str,
    storage: str | None = None,
    runtime_env: dict[str, Any] | None = None,
) -> Experiment:
    """The one-trial experiment `rlsweep train` runs: `config` as it is, tracked under
    "train". Its metric is the evaluation return, or the training return when the config
    turns evaluation off."""
    trainable = get_algorithm(algorithm)
    config = dict(config)
    env = config.pop("env", trainable.config_class.env)
    # The experiment checks every config key (naming what is wrong) when it is built below.
    evaluation_interval = config.get("evaluation_interval", trainable.config_class.evaluation_interval)
    return experiment_from_dict(
        {
            "name": "train",
            "algorithm": trainable.__name__,
            "env": env,
            "config": config,
            "search_space": FIXED_SPACE,
            # External simulators run no evaluation episodes (see docs/external.md).
            "metric": "evaluation/episode_return_mean"
            if evaluation_interval and env != "external"
            else "episode_return_mean",
            "num_samples": 1,
            "max_concurrent_trials": 1,
            "stop": dataclasses.asdict(stop),
            "results_dir": results_dir,
            "storage": storage,
            "checkpoint_frequency": checkpoint_frequency,
            "runtime_env": runtime_env or {},
        }
    )
