"""How a run chooses its trials' configs: Optuna's define-by-run search over the
experiment's space, a population Optuna samples for PBT or PB2, given configs played back
(the held-out test of the top configs), or the fixed config alone."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import optuna
from ray import tune
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, SearchAlgorithm
from ray.tune.search.optuna import OptunaSearch

from rlsweep.experiment.schema import Experiment
from rlsweep.experiment.score import SCORE_KEY
from rlsweep.results.sweep_folder import SweepFolder

POPULATION_KEY = "__population_member"
"""The config key (ignored by trainables) naming which of the configs played back a trial
trains: under PBT and PB2 a member of the initial population."""

SAMPLERS = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "cmaes": lambda seed: optuna.samplers.CmaEsSampler(seed=seed),
}


@dataclass
class Search:
    """What the Tuner needs to create trials."""

    algorithm: SearchAlgorithm
    param_space: dict[str, Any]
    num_samples: int


def build_search(experiment: Experiment, folder: SweepFolder) -> Search:
    """The search for the experiment.

    Optuna's study is persisted to SQLite in the run's folder, so optuna-dashboard can open
    it while (or after) the sweep runs. The experiment's points_to_evaluate become Optuna
    params (`SearchSpace.params_for`) enqueued in the study, so they are its first trials.
    PBT and PB2 accept no search algorithm, so there Optuna samples the initial population
    up front (recorded in the same study, points first) and it is played back. A fixed
    config needs no study at all.
    """
    limit = experiment.max_concurrent_trials
    if not experiment.is_search:
        return Search(
            BasicVariantGenerator(max_concurrent=limit), experiment.fixed_config, experiment.num_samples
        )
    space = experiment.space
    points = [space.params_for(point) for point in experiment.points_to_evaluate]
    if experiment.is_population_based:
        study = optuna_study(experiment, folder)
        for point in points:
            study.enqueue_trial(point)
        return playback([space(study.ask()) for _ in range(experiment.num_samples)], limit)
    searcher = OptunaSearch(
        space=space,
        metric=SCORE_KEY,
        mode=experiment.mode,
        points_to_evaluate=points or None,
        sampler=SAMPLERS[experiment.sampler](experiment.seed),
        study_name=experiment.name,
        storage=optuna.storages.RDBStorage(folder.study_url),
    )
    return Search(ConcurrencyLimiter(searcher, max_concurrent=limit), {}, experiment.num_samples)


def playback(configs: list[dict[str, Any]], max_concurrent: int) -> Search:
    """One trial per config, in order: a grid over their indices."""
    param_space: dict[str, Any] = {POPULATION_KEY: tune.grid_search(list(range(len(configs))))}
    for key in set().union(*configs):
        param_space[key] = tune.sample_from(partial(_config_value, configs, key))
    return Search(BasicVariantGenerator(max_concurrent=max_concurrent), param_space, 1)


def _config_value(configs: list[dict[str, Any]], key: str, spec: Any) -> Any:
    return configs[spec.config[POPULATION_KEY]].get(key)


def optuna_study(experiment: Experiment, folder: SweepFolder) -> optuna.Study:
    return optuna.create_study(
        study_name=experiment.name,
        storage=folder.study_url,
        sampler=SAMPLERS[experiment.sampler](experiment.seed),
        direction="maximize" if experiment.mode == "max" else "minimize",
        load_if_exists=True,
    )


def tell_population(experiment: Experiment, folder: SweepFolder, scores: dict[int, float | None]) -> None:
    """Report each PBT or PB2 member's final score (None: it failed), keyed by population index,
    to the Optuna trial that sampled its start."""
    study = optuna_study(experiment, folder)
    for index, score in scores.items():
        optuna_trial = study.trials[index]
        if optuna_trial.state != optuna.trial.TrialState.RUNNING:
            continue
        if score is None:
            study.tell(optuna_trial.number, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(optuna_trial.number, score)
