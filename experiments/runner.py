"""Turn an Experiment into a Ray Tune run: Optuna search, scheduler, stopping, checkpoints."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import optuna
import ray
import yaml
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, SearchAlgorithm
from ray.tune.search.optuna import OptunaSearch

from rlsweep.experiments.experiment import Experiment, experiment_from_dict, load_yaml
from rlsweep.experiments.hyperparameters import trial_hyperparameters
from rlsweep.experiments.mlflow_tracking import MLflowTrialLogger, SweepRun, Tracking, default_tracking_uri
from rlsweep.experiments.progress import SweepProgress
from rlsweep.experiments.schedulers import build_scheduler
from rlsweep.experiments.sweep_report import write_study_plots, write_trials_table
from rlsweep.experiments.tensorboard_logging import TensorBoardLogger
from rlsweep.trainables.config import ConfigError

logger = logging.getLogger(__name__)

EXPERIMENT_FILE = "experiment.yaml"
"""The resolved experiment, written into each sweep folder (for --resume and `best`)."""
STUDY_FILE = "optuna.db"
POPULATION_KEY = "__population_member"
"""Under PBT, the config key (ignored by trainables) naming a trial's initial population member."""
SPACE_FILE = "search_space.py"
"""The search space's source as the sweep ran it (narrowing is in experiment.yaml)."""
BEST_CONFIG_FILE = "best_config.yaml"

SAMPLERS = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "cmaes": lambda seed: optuna.samplers.CmaEsSampler(seed=seed),
}


class TrialStopper(tune.Stopper):
    """Ends a trial at the first of the experiment's stop conditions; never the whole sweep."""

    def __init__(self, limits: dict[str, float], metric: str, mode: str, target: float | None):
        self.limits = limits
        self.metric = metric
        self.mode = mode
        self.target = target

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if any(result.get(key, 0) >= limit for key, limit in self.limits.items()):
            return True
        if self.target is None or self.metric not in result:
            return False
        value = result[self.metric]
        return value >= self.target if self.mode == "max" else value <= self.target

    def stop_all(self) -> bool:
        return False


@dataclass
class SweepResult:
    sweep_dir: Path
    results: tune.ResultGrid
    best: tune.Result | None
    interrupted: bool
    """Stopped by Ctrl-C/SIGTERM before every trial finished; `--resume` continues it."""
    mlflow_uri: str | None
    """The tracking store the sweep logged to; None when MLflow was off or unreachable."""

    @property
    def best_config_file(self) -> Path:
        return self.sweep_dir / BEST_CONFIG_FILE


def experiment_root(experiment: Experiment) -> Path:
    return Path(experiment.results_dir).expanduser().resolve() / experiment.name


def latest_sweep_dir(experiment_dir: Path) -> Path | None:
    sweeps = sorted(p for p in experiment_dir.glob("*") if (p / EXPERIMENT_FILE).is_file())
    return sweeps[-1] if sweeps else None


def connect_ray(address: str | None) -> None:
    """Join `address` (or RAY_ADDRESS) if given, else start a local Ray on this machine."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # Our own single-user instance on this machine: no token authentication.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(include_dashboard=False, log_to_driver=False)


def check_cluster(experiment: Experiment, address: str | None) -> None:
    """Fail before Ray starts when a trial cannot fit this machine; on a cluster, right after joining."""
    if address or os.environ.get("RAY_ADDRESS") or ray.is_initialized():
        connect_ray(address)
        resources = ray.cluster_resources()
        experiment.check_resources(resources.get("CPU", 0), resources.get("GPU", 0))
    else:
        import torch

        experiment.check_resources(os.cpu_count() or 1, torch.cuda.device_count())


def is_pbt(experiment: Experiment) -> bool:
    return experiment.scheduler.get("type") == "pbt"


def study_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{sweep_dir / STUDY_FILE}"


def build_search(experiment: Experiment, sweep_dir: Path) -> tuple[SearchAlgorithm, dict[str, Any], int]:
    """The search algorithm, Tune param_space and num_samples for the experiment.

    Optuna's define-by-run search over the experiment's space, persisted to SQLite so
    optuna-dashboard can open the study while (or after) the sweep runs. PBT accepts no
    search algorithm, so there Optuna samples the initial population up front (recorded
    in the same study) and a grid over member indices plays it back.
    """
    if is_pbt(experiment):
        study = _study(experiment, sweep_dir)
        space = experiment.space()
        population = [space(study.ask()) for _ in range(experiment.num_samples)]
        param_space: dict[str, Any] = {POPULATION_KEY: tune.grid_search(list(range(len(population))))}
        for key in population[0]:
            param_space[key] = tune.sample_from(partial(_member_value, population, key))
        return BasicVariantGenerator(max_concurrent=experiment.max_concurrent_trials), param_space, 1
    searcher = OptunaSearch(
        space=experiment.space(),
        metric=experiment.metric,
        mode=experiment.mode,
        sampler=SAMPLERS[experiment.sampler](experiment.seed),
        study_name=experiment.name,
        storage=optuna.storages.RDBStorage(study_storage(sweep_dir)),
    )
    return (
        ConcurrencyLimiter(searcher, max_concurrent=experiment.max_concurrent_trials),
        {},
        experiment.num_samples,
    )


def _member_value(population: list[dict[str, Any]], key: str, spec: Any) -> Any:
    return population[spec.config[POPULATION_KEY]][key]


def _study(experiment: Experiment, sweep_dir: Path) -> optuna.Study:
    return optuna.create_study(
        study_name=experiment.name,
        storage=study_storage(sweep_dir),
        sampler=SAMPLERS[experiment.sampler](experiment.seed),
        direction="maximize" if experiment.mode == "max" else "minimize",
        load_if_exists=True,
    )


def _tell_population(experiment: Experiment, sweep_dir: Path, results: tune.ResultGrid) -> None:
    """Report each PBT member's final score to the Optuna trial that sampled its start."""
    study = _study(experiment, sweep_dir)
    for optuna_trial, result in zip(study.trials, results, strict=False):
        if optuna_trial.state != optuna.trial.TrialState.RUNNING:
            continue
        value = (result.metrics or {}).get(experiment.metric)
        if result.error is None and value is not None and value == value:
            study.tell(optuna_trial.number, float(value))
        else:
            study.tell(optuna_trial.number, state=optuna.trial.TrialState.FAIL)


def build_stopper(experiment: Experiment) -> TrialStopper:
    stop = experiment.stop
    limits = {
        key: value
        for key, value in (
            ("timesteps_total", stop.timesteps_total),
            ("time_total_s", stop.time_total_s),
            ("training_iteration", stop.training_iteration),
        )
        if value is not None
    }
    return TrialStopper(limits, experiment.metric, experiment.mode, stop.target)


def trial_name(trial: Trial) -> str:
    """Short trial names and folders: ALGO_ID (Tune's default packs every param into them)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def progress(experiment: Experiment) -> SweepProgress:
    return SweepProgress(
        experiment.metric,
        experiment.mode,
        experiment.num_samples,
        experiment.fixed_config,
        build_stopper(experiment),
    )


def run_sweep(
    experiment: Experiment,
    *,
    resume: bool = False,
    address: str | None = None,
    mlflow_uri: str | None = None,
    track_mlflow: bool = True,
) -> SweepResult:
    """Run (or, with `resume`, continue the latest interrupted run of) an experiment's sweep.

    Every trial logs TensorBoard files into its folder and, unless `track_mlflow` is off, a
    child run under the sweep's MLflow run (store: `mlflow_uri`, else MLFLOW_TRACKING_URI,
    else results_dir/mlflow.db).
    """
    root = experiment_root(experiment)
    check_cluster(experiment, address)
    sweep_dir = _resumable_sweep_dir(root, experiment) if resume else _new_sweep_dir(root, experiment)
    sweep_run = None
    if track_mlflow:
        tracking = Tracking(
            mlflow_uri or default_tracking_uri(experiment.results_dir), experiment.name, root.parent
        )
        sweep_run = SweepRun.start(
            tracking, sweep_dir, sweep_params(experiment), _sweep_inputs(experiment, sweep_dir)
        )
    connect_ray(address)
    _stop_gracefully_on_sigterm()

    if resume:
        # The restored run keeps the callbacks (and so the MLflow parent) it was started with.
        tuner = tune.Tuner.restore(
            str(sweep_dir), trainable=experiment.trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        callbacks: list[tune.Callback] = [TensorBoardLogger(experiment.metric), progress(experiment)]
        if sweep_run is not None:
            callbacks.append(
                MLflowTrialLogger(
                    sweep_run.tracking,
                    sweep_run.run_id,
                    params_at_end=is_pbt(experiment),
                    stopped_by_condition=build_stopper(experiment),
                )
            )
        tuner = _new_tuner(experiment, sweep_dir, callbacks)
    started = time.monotonic()
    results = tuner.fit()
    best = best_result(results, experiment)
    if best is not None:
        write_best_config(sweep_dir, experiment, best)
    done = results.num_terminated + results.num_errors
    out_of_time = (
        experiment.time_budget_s is not None and time.monotonic() - started >= experiment.time_budget_s
    )
    outcome = SweepResult(
        sweep_dir,
        results,
        best,
        interrupted=done < experiment.num_samples and not out_of_time,
        mlflow_uri=None,
    )
    if is_pbt(experiment) and not outcome.interrupted:
        _tell_population(experiment, sweep_dir, results)
    report = [write_trials_table(results, sweep_dir)]
    report += write_study_plots(study_storage(sweep_dir), experiment.name, sweep_dir)
    if sweep_run is not None:
        _finish_sweep_run(sweep_run, experiment, outcome, report)
        if sweep_run.tracking.enabled:
            outcome.mlflow_uri = sweep_run.tracking.tracking_uri
    return outcome


def _stop_gracefully_on_sigterm() -> None:
    """Tune stops on SIGINT by saving its state for --resume; make SIGTERM (sent by `kill`,
    batch schedulers and container runtimes) do the same instead of Ray's hard exit.
    Installed after Ray starts, since `ray.init` installs a handler of its own."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))


def _new_sweep_dir(root: Path, experiment: Experiment) -> Path:
    sweep_dir = root / time.strftime("%Y%m%d-%H%M%S")
    try:
        sweep_dir.mkdir(parents=True, exist_ok=False)
    except OSError as error:
        raise ConfigError(f"cannot create results folder {str(sweep_dir)!r}: {error.strerror}") from None
    (sweep_dir / EXPERIMENT_FILE).write_text(yaml.safe_dump(experiment.to_dict(), sort_keys=False))
    (sweep_dir / SPACE_FILE).write_text(inspect.getsource(experiment.space().sample))
    return sweep_dir


def _resumable_sweep_dir(root: Path, experiment: Experiment) -> Path:
    sweep_dir = latest_sweep_dir(root)
    if sweep_dir is None or not tune.Tuner.can_restore(str(sweep_dir)):
        raise ConfigError(f"no sweep of {experiment.name!r} to resume under {str(root)!r}")
    return sweep_dir


def _sweep_inputs(experiment: Experiment, sweep_dir: Path) -> list[Path]:
    return [sweep_dir / EXPERIMENT_FILE, sweep_dir / SPACE_FILE]


def sweep_params(experiment: Experiment) -> dict[str, Any]:
    """What the sweep's MLflow run records as params: the search setup, not every trial key."""
    params: dict[str, Any] = {
        "algorithm": experiment.algorithm,
        "env": experiment.env,
        "search_space": experiment.space_name,
        "sampler": experiment.sampler,
        "scheduler": experiment.scheduler.get("type", "fifo"),
        "metric": experiment.metric,
        "mode": experiment.mode,
        "num_samples": experiment.num_samples,
        "max_concurrent_trials": experiment.max_concurrent_trials,
        "seed": experiment.seed,
    }
    params.update({f"stop.{k}": v for k, v in dataclasses.asdict(experiment.stop).items() if v is not None})
    params.update({f"scheduler.{k}": v for k, v in experiment.scheduler.items() if k != "type"})
    params.update({f"search_params.{k}": v for k, v in experiment.search_params.items()})
    params.update({f"config.{k}": v for k, v in experiment.config.items()})
    return params


def _finish_sweep_run(
    sweep_run: SweepRun, experiment: Experiment, outcome: SweepResult, report: list[Path]
) -> None:
    best = outcome.best
    results = list(outcome.results)
    counts = {
        "trials_total": len(results),
        "trials_failed": sum(r.error is not None for r in results),
    }
    artifacts = [outcome.best_config_file] if best is not None else []
    sweep_run.finish(
        best_score=float(best.metrics[experiment.metric]) if best is not None else None,
        best_params=trial_hyperparameters(best.config) if best is not None else {},
        metrics=counts,
        artifacts=artifacts + report,
        best_trial_id=best.metrics.get("trial_id") if best is not None else None,
        best_checkpoint=Path(best.checkpoint.path) if best is not None and best.checkpoint else None,
        interrupted=outcome.interrupted,
    )


def checkpoint_config(experiment: Experiment) -> tune.CheckpointConfig:
    """Keep each trial's best checkpoints by the metric; under PBT keep the most recent
    few instead, since exploiting trials restore from their donor's latest one."""
    if is_pbt(experiment):
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


def _new_tuner(experiment: Experiment, sweep_dir: Path, callbacks: list[tune.Callback]) -> tune.Tuner:
    search, param_space, num_samples = build_search(experiment, sweep_dir)
    return tune.Tuner(
        experiment.trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=build_scheduler(experiment.scheduler, experiment.metric, experiment.mode),
            num_samples=num_samples,
            time_budget_s=experiment.time_budget_s,
            # A new trial reuses a finished trial's process when resources match: no torch re-import.
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=sweep_dir.name,
            storage_path=str(sweep_dir.parent),
            stop=build_stopper(experiment),
            checkpoint_config=checkpoint_config(experiment),
            failure_config=tune.FailureConfig(max_failures=experiment.max_failures),
            callbacks=callbacks,
            verbose=0,
        ),
    )


def best_result(results: tune.ResultGrid, experiment: Experiment) -> tune.Result | None:
    """The trial whose last reported metric is best (the score Optuna was told)."""
    scored = [r for r in results if r.metrics and experiment.metric in r.metrics]
    if not scored:
        return None
    return results.get_best_result(experiment.metric, experiment.mode, scope="last", filter_nan_and_inf=True)


def write_best_config(sweep_dir: Path, experiment: Experiment, best: tune.Result) -> Path:
    """A file `rlsweep train --config-file` accepts: the best trial's algorithm, env and config."""
    config = {k: _plain(v) for k, v in best.config.items() if not k.startswith("__")}
    document = {
        "algorithm": experiment.algorithm,
        "env": config.pop("env", experiment.env),
        "config": config,
        "metric": experiment.metric,
        "score": float(best.metrics[experiment.metric]),
        "checkpoint": best.checkpoint.path if best.checkpoint else None,
    }
    path = sweep_dir / BEST_CONFIG_FILE
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def load_sweep(path: str | Path) -> tuple[Path, Experiment]:
    """A sweep folder, or an experiment folder (its latest sweep), with its experiment."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"results folder {str(path)!r} does not exist")
    sweep_dir = path if (path / EXPERIMENT_FILE).is_file() else latest_sweep_dir(path)
    if sweep_dir is None:
        raise ConfigError(f"{str(path)!r} holds no rlsweep sweep (no {EXPERIMENT_FILE} found)")
    data = load_yaml((sweep_dir / EXPERIMENT_FILE).read_text())
    return sweep_dir, experiment_from_dict(data)


def _plain(value: Any) -> Any:
    """YAML-safe: tuples become lists."""
    if isinstance(value, tuple):
        return list(value)
    return value
