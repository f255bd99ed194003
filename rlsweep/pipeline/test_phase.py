"""The held-out test phase of a sweep: its top configs trained again from scratch, with the
same budget, each as one trial whose seeds are the test seeds, through the same Tuner
assembly as the search."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ray import tune

from rlsweep.experiment.schema import Experiment, HeldOutSpec
from rlsweep.pipeline.tuner import callbacks, new_tuner
from rlsweep.results.held_out import TUNED_TRIAL_KEY, HeldOutTest, collect_held_out_test
from rlsweep.results.outcome import RunOutcome, collect_outcome
from rlsweep.results.sweep_folder import SweepFolder
from rlsweep.results.trials import TrialOutcome
from rlsweep.tracking.mlflow_sweep import RunTracking
from rlsweep.trainables.seeds import held_out_seed
from rlsweep.tuning.objective import objective_for
from rlsweep.tuning.search import playback


def run_held_out_test(outcome: RunOutcome, spec: HeldOutSpec, tracking: RunTracking | None) -> None:
    """Train the top `spec.top` configs on `spec.seeds` held-out seeds; sets `outcome.test`."""
    tuned = outcome.ranked()[: spec.top]
    if not tuned:
        return
    experiment = held_out_experiment(outcome.experiment, HeldOutSpec(top=len(tuned), seeds=spec.seeds))
    folder = outcome.folder.new_test_folder()
    search = playback(held_out_configs(tuned, outcome.experiment, spec), experiment.max_concurrent_trials)
    title = f"held-out test: the top {len(tuned)} configs, {spec.seeds} new seeds each"
    started = time.monotonic()
    results = new_tuner(experiment, folder, search, callbacks(experiment, tracking, title)).fit()
    elapsed = time.monotonic() - started
    tested = collect_outcome(experiment, folder, results, elapsed)
    outcome.test = collect_held_out_test(
        experiment, tuned, tested.trials, folder.path, spec, _test_seed(outcome.experiment), elapsed
    )
    outcome.interrupted = tested.interrupted


def read_held_out_test(outcome: RunOutcome, folder: SweepFolder) -> HeldOutTest:
    """A finished test phase, read back from its folder."""
    experiment = outcome.experiment
    results = tune.Tuner.restore(folder.tune_path, trainable=objective_for(experiment)).get_results()
    configs = [result.config for result in results]
    spec = HeldOutSpec(top=len(configs), seeds=int(configs[0].get("num_seeds", 1)))
    tested = collect_outcome(held_out_experiment(experiment, spec), folder, results, elapsed_s=0.0)
    tuned_ids = {config.get(TUNED_TRIAL_KEY) for config in configs}
    tuned = [trial for trial in outcome.ranked() if trial.trial_id in tuned_ids]
    return collect_held_out_test(
        experiment, tuned, tested.trials, folder.path, spec, _test_seed(experiment), elapsed_s=0.0
    )


def held_out_configs(
    trials: list[TrialOutcome], experiment: Experiment, spec: HeldOutSpec
) -> list[dict[str, Any]]:
    """Each tuned trial's config, trained on `spec.seeds` test seeds from scratch."""
    return [
        {
            **{key: value for key, value in trial.config.items() if not key.startswith("__")},
            "seed": _test_seed(experiment),
            "num_seeds": spec.seeds,
            TUNED_TRIAL_KEY: trial.trial_id,
        }
        for trial in trials
    ]


def held_out_experiment(experiment: Experiment, spec: HeldOutSpec) -> Experiment:
    """The experiment of the test phase: the sweep's, with no scheduler to stop a trial
    early, so every config gets the whole budget (the stop conditions)."""
    return dataclasses.replace(
        experiment, scheduler={"type": "fifo"}, num_samples=spec.top, points_to_evaluate=[], test=None
    )


def _test_seed(experiment: Experiment) -> int:
    return held_out_seed(experiment.seed, experiment.tuning_seeds)
