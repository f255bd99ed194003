"""Assembling Ray Tune's Tuner for one phase of a run (the search, or the held-out test):
the objective, the search, the scheduler, the stop conditions, checkpoints, and the
callbacks that print, log and track."""

from __future__ import annotations

from ray import tune
from ray.tune.experiment import Trial

from rlsweep.experiment.schema import Experiment
from rlsweep.experiment.score import SCORE_KEY
from rlsweep.report.progress import SweepProgress
from rlsweep.results.sweep_folder import SweepFolder
from rlsweep.tracking.mlflow_sweep import RunTracking
from rlsweep.tracking.tensorboard import TensorBoardLogger
from rlsweep.tuning.objective import objective_for
from rlsweep.tuning.schedulers import build_scheduler
from rlsweep.tuning.search import Search
from rlsweep.tuning.stop_conditions import StopConditions


def new_tuner(
    experiment: Experiment, folder: SweepFolder, search: Search, callbacks: list[tune.Callback]
) -> tune.Tuner:
    storage_path, _, name = folder.tune_path.rpartition("/")
    return tune.Tuner(
        objective_for(experiment),
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
            name=name,
            storage_path=storage_path,
            stop=StopConditions.of(experiment),
            checkpoint_config=_checkpoint_config(experiment),
            failure_config=tune.FailureConfig(max_failures=experiment.max_failures),
            callbacks=callbacks,
            verbose=0,
        ),
    )


def callbacks(experiment: Experiment, tracking: RunTracking | None, title: str = "") -> list[tune.Callback]:
    """TensorBoard files, progress lines and, when tracking, MLflow runs for every trial."""
    chosen: list[tune.Callback] = [TensorBoardLogger(SCORE_KEY), SweepProgress(experiment, title=title)]
    if tracking is not None:
        chosen.append(tracking.trial_logger)
    return chosen


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
