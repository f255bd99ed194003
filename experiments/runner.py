"""Running an experiment: one pipeline for `rlsweep sweep`, `rlsweep train` and `rlsweep test`.

The runner assembles Ray Tune's Tuner from the other modules' parts (the run's folder,
the search, the scheduler, the stop conditions, the callbacks that log and track), runs
it, and turns its results into a RunOutcome with its report files. A sweep with `test:`
then runs a second phase through the same Tuner assembly: its top configs played back
on held-out seeds.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from ray import tune
from ray.tune.experiment import Trial

from rlsweep.experiments.cluster import check_fits_cluster, connect_ray
from rlsweep.experiments.experiment import Experiment, HeldOutSpec
from rlsweep.experiments.held_out_test import (
    TUNED_TRIAL_KEY,
    HeldOutTest,
    collect_held_out_test,
    held_out_configs,
    held_out_experiment,
    held_out_seed,
)
from rlsweep.experiments.mlflow_tracking import RunTracking, default_tracking_uri
from rlsweep.experiments.outcome import RunOutcome, collect_outcome
from rlsweep.experiments.progress import SweepProgress
from rlsweep.experiments.report import write_report
from rlsweep.experiments.schedulers import build_scheduler
from rlsweep.experiments.score import SCORE_KEY
from rlsweep.experiments.search import Search, build_search, playback, tell_population
from rlsweep.experiments.sweep_folder import SweepFolder, experiment_root
from rlsweep.experiments.tensorboard_logging import TensorBoardLogger
from rlsweep.trainables.config import ConfigError


def run_experiment(
    experiment: Experiment,
    *,
    resume: bool = False,
    address: str | None = None,
    mlflow_uri: str | None = None,
    track_mlflow: bool = True,
) -> RunOutcome:
    """Run an experiment (or, with `resume`, continue its latest interrupted run), then its
    held-out test if it has one.

    Every trial logs TensorBoard files into its folder and, unless `track_mlflow` is off, an
    MLflow run (store: `mlflow_uri`, else MLFLOW_TRACKING_URI, else RESULTS/mlflow.db).
    """
    check_fits_cluster(experiment, address)
    folder = _resumable_folder(experiment) if resume else SweepFolder.create(experiment)
    tracking = _tracking(experiment, folder, mlflow_uri, track_mlflow)
    connect_ray(address, experiment.runtime_env)
    _stop_gracefully_on_sigterm()

    if resume:
        # The restored run keeps the callbacks (and so the MLflow parent) it was started with.
        tuner = tune.Tuner.restore(
            str(folder.path), trainable=experiment.objective, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = _new_tuner(
            experiment, folder, build_search(experiment, folder), _callbacks(experiment, tracking)
        )
    started = time.monotonic()
    results = tuner.fit()
    outcome = collect_outcome(experiment, folder, results, time.monotonic() - started)
    if experiment.is_population_based and not outcome.interrupted:
        # Trials are in creation order, which is the population's: a trial's config names
        # the member it started as only until it exploits another and copies its config.
        tell_population(
            experiment, folder, {member: trial.score for member, trial in enumerate(outcome.trials)}
        )
    if experiment.test is not None and not outcome.interrupted:
        _run_test(outcome, experiment.test, tracking)
    _finish(outcome, tracking)
    return outcome


def run_test_phase(
    folder: SweepFolder,
    spec: HeldOutSpec,
    *,
    address: str | None = None,
    mlflow_uri: str | None = None,
    track_mlflow: bool = True,
) -> RunOutcome:
    """`rlsweep test`: the held-out test of a finished sweep's top configs, added to its
    report and its MLflow run."""
    experiment = folder.read_experiment()
    check_fits_cluster(experiment, address)
    outcome = read_outcome(folder)
    if not outcome.ranked():
        raise ConfigError(f"no trial in {str(folder.path)!r} has a score; nothing to test")
    tracking = _tracking(experiment, folder, mlflow_uri, track_mlflow)
    connect_ray(address)
    _stop_gracefully_on_sigterm()
    _run_test(outcome, spec, tracking)
    _finish(outcome, tracking)
    return outcome


def read_outcome(folder: SweepFolder) -> RunOutcome:
    """The outcome of a run that has ended, read from its folder, with its latest test phase."""
    experiment = folder.read_experiment()
    results = tune.Tuner.restore(str(folder.path), trainable=experiment.objective).get_results()
    outcome = collect_outcome(experiment, folder, results, elapsed_s=0.0)
    tests = folder.test_folders()
    if tests:
        outcome.test = _read_test(outcome, tests[-1])
    return outcome


def _run_test(outcome: RunOutcome, spec: HeldOutSpec, tracking: RunTracking | None) -> None:
    """Train the top `spec.top` configs on `spec.seeds` held-out seeds; sets `outcome.test`."""
    tuned = outcome.ranked()[: spec.top]
    if not tuned:
        return
    experiment = held_out_experiment(outcome.experiment, HeldOutSpec(top=len(tuned), seeds=spec.seeds))
    folder = outcome.folder.new_test_folder()
    search = playback(held_out_configs(tuned, outcome.experiment, spec), experiment.max_concurrent_trials)
    title = f"held-out test: the top {len(tuned)} configs, {spec.seeds} new seeds each"
    started = time.monotonic()
    results = _new_tuner(experiment, folder, search, _callbacks(experiment, tracking, title)).fit()
    elapsed = time.monotonic() - started
    tested = collect_outcome(experiment, folder, results, elapsed)
    outcome.test = collect_held_out_test(tuned, tested, spec, held_out_seed(outcome.experiment), elapsed)
    outcome.interrupted = tested.interrupted


def _read_test(outcome: RunOutcome, folder: SweepFolder) -> HeldOutTest:
    experiment = outcome.experiment
    results = tune.Tuner.restore(str(folder.path), trainable=experiment.objective).get_results()
    configs = [result.config for result in results]
    spec = HeldOutSpec(top=len(configs), seeds=int(configs[0].get("num_seeds", 1)))
    tested = collect_outcome(held_out_experiment(experiment, spec), folder, results, elapsed_s=0.0)
    tuned_ids = {config.get(TUNED_TRIAL_KEY) for config in configs}
    tuned = [trial for trial in outcome.ranked() if trial.trial_id in tuned_ids]
    return collect_held_out_test(tuned, tested, spec, held_out_seed(experiment), elapsed_s=0.0)


def _finish(outcome: RunOutcome, tracking: RunTracking | None) -> None:
    outcome.report_files = write_report(outcome)
    if tracking is not None:
        tracking.finish(outcome)


def _tracking(
    experiment: Experiment, folder: SweepFolder, mlflow_uri: str | None, track_mlflow: bool
) -> RunTracking | None:
    if not track_mlflow:
        return None
    return RunTracking.start(experiment, folder, mlflow_uri or default_tracking_uri(experiment.results_dir))


def _callbacks(experiment: Experiment, tracking: RunTracking | None, title: str = "") -> list[tune.Callback]:
    callbacks: list[tune.Callback] = [TensorBoardLogger(SCORE_KEY), SweepProgress(experiment, title=title)]
    if tracking is not None:
        callbacks.append(tracking.trial_logger)
    return callbacks


def _resumable_folder(experiment: Experiment) -> SweepFolder:
    root = experiment_root(experiment)
    folder = SweepFolder.latest(root) if root.is_dir() else None
    if folder is None or not tune.Tuner.can_restore(str(folder.path)):
        raise ConfigError(f"no run of {experiment.name!r} to resume under {str(root)!r}")
    return folder


def _stop_gracefully_on_sigterm() -> None:
    """Tune stops on SIGINT by saving its state for --resume; make SIGTERM (sent by `kill`,
    batch schedulers and container runtimes) do the same instead of Ray's hard exit.
    Installed after Ray starts, since `ray.init` installs a handler of its own."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))


def _new_tuner(
    experiment: Experiment, folder: SweepFolder, search: Search, callbacks: list[tune.Callback]
) -> tune.Tuner:
    return tune.Tuner(
        experiment.objective,
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            search_alg=search.algorithm,
            scheduler=build_scheduler(
                experiment.scheduler, SCORE_KEY, experiment.mode, experiment.scheduler_bounds()
            ),
            num_samples=search.num_samples,
            time_budget_s=experiment.time_budget_s,
            # A new trial reuses a finished trial's process when resources match: no torch re-import.
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=folder.path.name,
            storage_path=str(folder.path.parent),
            stop=experiment.stop_conditions,
            checkpoint_config=_checkpoint_config(experiment),
            failure_config=tune.FailureConfig(max_failures=experiment.max_failures),
            callbacks=callbacks,
            verbose=0,
        ),
    )


def _trial_name(trial: Trial) -> str:
    """Short trial names and folders: ALGO_ID (Tune's default packs every param into them)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def _checkpoint_config(experiment: Experiment) -> tune.CheckpointConfig:
    """Keep each trial's best checkpoints by its score (and always its latest); under PBT and
    PB2 keep the most recent few instead, since exploiting trials restore from their donor's
    latest one."""
    if experiment.is_population_based:
        return tune.CheckpointConfig(
            num_to_keep=max(experiment.keep_checkpoints, 4),
            checkpoint_frequency=experiment.checkpoint_frequency,
            checkpoint_at_end=True,
        )
    return tune.CheckpointConfig(
        num_to_keep=experiment.keep_checkpoints,
        checkpoint_score_attribute=SCORE_KEY,
        checkpoint_score_order=experiment.mode,
        checkpoint_frequency=experiment.checkpoint_frequency,
        checkpoint_at_end=True,
    )
