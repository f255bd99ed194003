"""Sampling an experiment's narrowed search space before Ray starts, to prove that every
config it gives is valid for the algorithm (and to show a few in `rlsweep check`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from rlsweep.experiment.schema import Experiment
from rlsweep.trainables import AlgorithmConfig
from rlsweep.trainables.config import ConfigError, build_config

SPACE_CHECK_SAMPLES = 64
"""Configs sampled from a space at load time to prove it only produces valid ones."""


@dataclass
class SampledConfig:
    """One config a trial of the experiment could get."""

    searched: dict[str, Any]
    """The values the search space chose (none for a fixed config)."""
    config: AlgorithmConfig
    """The whole trainable config, validated."""


def sample_configs(experiment: Experiment, samples: int = SPACE_CHECK_SAMPLES) -> list[SampledConfig]:
    """Sample configs from the narrowed space and validate each, so a space that can produce
    an invalid config fails now, not hours into the sweep; returns them (seeded: the same
    every time)."""
    space = experiment.space
    name = experiment.space_name
    sampled: list[SampledConfig] = []
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=experiment.seed))
    asked: set[str] = set()
    for _ in range(samples if experiment.is_search else 1):
        trial = study.ask()
        try:
            config, asked_now = space.sample_config(trial)
        except Exception as error:
            raise ConfigError(f"search space {name!r} raised {type(error).__name__}: {error}") from None
        asked |= asked_now
        try:
            trainable_config = build_config(experiment.trainable.config_class, config)
        except ConfigError as error:
            if not experiment.is_search:
                raise
            raise ConfigError(
                f"search space {name!r} with this experiment's settings gave an invalid config: {error}"
            ) from None
        _check_metric_is_reported(experiment, trainable_config.evaluation_interval)
        study.tell(trial, 0.0)
        searched = {k: v for k, v in config.items() if k not in space.fixed_config}
        sampled.append(SampledConfig(searched, trainable_config))
    unknown = sorted(set(experiment.search_params) - asked)
    if unknown:
        raise ConfigError(
            f"experiment key 'search_params' names {unknown}, which search space {name!r} "
            f"does not have; it has {sorted(asked)}"
        )
    return sampled


def _check_metric_is_reported(experiment: Experiment, evaluation_interval: int) -> None:
    if experiment.metric.startswith("evaluation/") and evaluation_interval == 0:
        raise ConfigError(
            f"experiment key 'metric' is {experiment.metric!r}, which trials never report with "
            "config.evaluation_interval: 0; evaluate, or use metric: episode_return_mean"
        )
