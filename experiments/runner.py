"""Running an experiment: one pipeline for `rlsweep sweep` and `rlsweep train`.

The runner assembles Ray Tune's Tuner from the other modules' parts (the run's folder,
the search, the scheduler, the stop conditions, the callbacks that log and track), runs
it, and turns its results into a RunOutcome with its report files.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from ray import tune
from ray.tune.experiment import Trial

from rlsweep.experiments.cluster import check_fits_cluster, connect_ray
from rlsweep.experiments.experiment import Experiment
from rlsweep.experiments.mlflow_tracking import RunTracking, default_tracking_uri
from rlsweep.experiments.outcome import RunOutcome, collect_outcome
from rlsweep.experiments.progress import SweepProgress
from rlsweep.experiments.report import write_report
from rlsweep.experiments.schedulers import build_scheduler
from rlsweep.experiments.search import POPULATION_KEY, build_search, tell_population
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
    """Run an experiment (or, with `resume`, continue its latest interrupted run).

    Every trial logs TensorBoard files into its folder and, unless `track_mlflow` is off, an
    MLflow run (store: `mlflow_uri`, else MLFLOW_TRACKING_URI, else RESULTS/mlflow.db).
    """
    check_fits_cluster(experiment, address)
    folder = _resumable_folder(experiment) if resume else SweepFolder.create(experiment)
    tracking = None
    if track_mlflow:
        uri = mlflow_uri or default_tracking_uri(experiment.results_dir)
        tracking = RunTracking.start(experiment, folder, uri)
    connect_ray(address, experiment.runtime_env)
    _stop_gracefully_on_sigterm()

    if resume:
        # The restored run keeps the callbacks (and so the MLflow parent) it was started with.
        tuner = tune.Tuner.restore(
            str(folder.path), trainable=experiment.trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        callbacks: list[tune.Callback] = [TensorBoardLogger(experiment.metric), SweepProgress(experiment)]
        if tracking is not None:
            callbacks.append(tracking.trial_logger)
        tuner = _new_tuner(experiment, folder, callbacks)
    started = time.monotonic()
    results = tuner.fit()
    outcome = collect_outcome(experiment, folder, results, time.monotonic() - started)
    if experiment.is_pbt and not outcome.interrupted:
        tell_population(
            experiment, folder, {trial.config[POPULATION_KEY]: trial.score for trial in outcome.trials}
        )
    outcome.report_files = write_report(outcome)
    if tracking is not None:
        tracking.finish(outcome)
    return outcome


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


def _new_tuner(experiment: Experiment, folder: SweepFolder, callbacks: list[tune.Callback]) -> tune.Tuner:
    search = build_search(experiment, folder)
    return tune.Tuner(
        experiment.trainable,
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            search_alg=search.algorithm,
            scheduler=build_scheduler(experiment.scheduler, experiment.metric, experiment.mode),
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
    """Keep each trial's best checkpoints by the metric (and always its latest); under PBT
    keep the most recent few instead, since exploiting trials restore from their donor's
    latest one."""
    if experiment.is_pbt:
        return tune.CheckpointConfig(
            num_to_keep=max(experiment.keep_checkpoints, 4),
            checkpoint_frequency=experiment.checkpoint_frequency,
            checkpoint_at_end=True,
        )
    return tune.CheckpointConfig(
        num_to_keep=experiment.keep_checkpoints,
        checkpoint_score_attribute=experiment.metric,
        checkpoint_score_order=experiment.mode,
        checkpoint_frequency=experiment.checkpoint_frequency,
        checkpoint_at_end=True,
    )
