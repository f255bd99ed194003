"""Running an experiment: one pipeline for `rlsweep sweep`, `rlsweep train` and `rlsweep test`.

The runner joins or starts Ray, runs the search phase through a Tuner (`tuner.py`), turns
its results into a RunOutcome, runs the held-out test phase when the experiment has one
(`test_phase.py`), and writes the report and the MLflow outcome.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

from ray import tune

from rlsweep.experiment.schema import Experiment, HeldOutSpec
from rlsweep.pipeline.test_phase import read_held_out_test, run_held_out_test
from rlsweep.pipeline.tuner import callbacks, new_tuner
from rlsweep.report.files import write_report
from rlsweep.results.outcome import RunOutcome, collect_outcome
from rlsweep.results.storage import join
from rlsweep.results.sweep_folder import SweepFolder, experiment_root
from rlsweep.tracking.mlflow_store import default_tracking_uri
from rlsweep.tracking.mlflow_sweep import RunTracking
from rlsweep.trainables.config import ConfigError
from rlsweep.tuning.cluster import check_fits_cluster, connect_ray
from rlsweep.tuning.objective import objective_for
from rlsweep.tuning.search import build_search, tell_population


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
    with _sigterm_stops_gracefully():
        if resume:
            # The restored run keeps the callbacks (and so the MLflow parent) it was started with.
            tuner = tune.Tuner.restore(
                folder.tune_path,
                trainable=objective_for(experiment),
                resume_unfinished=True,
                resume_errored=True,
            )
        else:
            tuner = new_tuner(
                experiment, folder, build_search(experiment, folder), callbacks(experiment, tracking)
            )
        started = time.monotonic()
        results = tuner.fit()
        outcome = collect_outcome(experiment, folder, results, time.monotonic() - started)
        if experiment.is_population_based and not outcome.interrupted:
            # Trials are in creation order, which is the population's: a trial's config names
            # the population member it started as only until it exploits another and copies its config.
            tell_population(
                experiment, folder, {index: trial.score for index, trial in enumerate(outcome.trials)}
            )
        if experiment.test is not None and not outcome.interrupted:
            run_held_out_test(outcome, experiment.test, tracking)
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
    with _sigterm_stops_gracefully():
        run_held_out_test(outcome, spec, tracking)
    _finish(outcome, tracking)
    return outcome


def read_outcome(folder: SweepFolder) -> RunOutcome:
    """The outcome of a run that has ended, read from its folder, with its latest test phase."""
    experiment = folder.read_experiment()
    results = tune.Tuner.restore(folder.tune_path, trainable=objective_for(experiment)).get_results()
    outcome = collect_outcome(experiment, folder, results, elapsed_s=0.0)
    tests = folder.test_folders()
    if tests:
        outcome.test = read_held_out_test(outcome, tests[-1])
    return outcome


def _finish(outcome: RunOutcome, tracking: RunTracking | None) -> None:
    outcome.report_files = write_report(outcome)
    if tracking is not None:
        tracking.finish(outcome)
    outcome.folder.save_to_storage()


def _tracking(
    experiment: Experiment, folder: SweepFolder, mlflow_uri: str | None, track_mlflow: bool
) -> RunTracking | None:
    if not track_mlflow:
        return None
    return RunTracking.start(experiment, folder, mlflow_uri or default_tracking_uri(experiment.results_dir))


def _resumable_folder(experiment: Experiment) -> SweepFolder:
    """The latest run of `experiment`; with storage, the latest stored one (its working copy
    here, or a new one when the run was started on another machine)."""
    root = experiment_root(experiment)
    folder = SweepFolder.latest(root) if root.is_dir() else None
    if experiment.storage is not None:
        stored = SweepFolder.find_stored(join(experiment.storage, experiment.name))
        folder = stored if folder is None or folder.path.name != stored.path.name else folder
        folder = SweepFolder(folder.path, stored.storage)
        root = experiment.storage
    if folder is None or not tune.Tuner.can_restore(folder.tune_path):
        raise ConfigError(f"no run of {experiment.name!r} to resume under {str(root)!r}")
    return folder


@contextlib.contextmanager
def _sigterm_stops_gracefully() -> Iterator[None]:
    """While the context lasts, SIGTERM (sent by `kill`, batch schedulers and container
    runtimes) stops Tune as SIGINT does, saving its state for --resume, instead of Ray's
    hard exit; the previous handler is restored afterwards. Entered after Ray starts,
    since `ray.init` installs a handler of its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
