"""MLflow tracking: a parent run per sweep, a child run per trial, logged off Tune's hot path.

Tune processes results in its driver loop and only then asks a trial for its next
iteration, so a slow tracking store would slow every trial. Trial metrics therefore go
through a queue to a background thread that sends them in `log_batch` calls. Any tracking
failure turns MLflow off for the rest of the run with one warning; the run goes on with
TensorBoard and its local files.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_RUN_NOTE
from ray.tune.experiment import Trial
from ray.tune.logger import LoggerCallback

from rlsweep.experiments.experiment import Experiment, StopConditions
from rlsweep.experiments.held_out_test import TUNED_TRIAL_KEY, HeldOutResult
from rlsweep.experiments.hyperparameters import STEP_KEY, numeric_metrics, trial_hyperparameters
from rlsweep.experiments.outcome import Ending, RunOutcome, trial_ending
from rlsweep.experiments.sweep_description import sweep_description
from rlsweep.experiments.sweep_folder import SweepFolder, experiment_root

TRIAL_ID_TAG = "rlsweep.trial_id"
STOPPED_EARLY_TAG = "rlsweep.stopped_early"
ENDING_TAG = "rlsweep.ending"
PHASE_TAG = "rlsweep.phase"
"""tune (a search trial) or test (a tuned config retrained on the held-out test seeds)."""
TUNED_TRIAL_TAG = "rlsweep.tuned_trial_id"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""MLflow 3's UI opens an experiment in its GenAI pages unless this says it is model training."""
MODEL_TRAINING = "custom_model_development"
MODEL_TRAINING_VIEW = "#/experiments?workflowType=machine_learning"
"""The UI's address for its model-training pages: MLflow 3.17's UI has a GenAI/Model
training switch that starts on GenAI in a new browser, whatever the experiment's tag says."""
MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call
PARENT_RECORD_FILE = "mlflow_run.txt"
"""Holds the parent run id in the run's folder, so a resumed sweep reopens its run."""


def default_tracking_uri(results_dir: str | Path) -> str:
    """MLFLOW_TRACKING_URI if set, else an SQLite file beside the sweeps."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(results_dir).expanduser().resolve() / 'mlflow.db'}"


class MLflowStore:
    """One MLflow store and experiment, and what happens when the store fails: the first
    failure prints one warning and turns tracking off; everything after is skipped."""

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_root: Path):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_root = artifact_root
        self.enabled = True
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.tracking_uri.startswith(("http:", "https:"))

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            if self.is_remote:
                # An unreachable server must fail in seconds, not after minutes of backoff.
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is not None:
                self._experiment_id = found.experiment_id
                if EXPERIMENT_KIND_TAG not in found.tags:
                    self.client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
            else:
                # A local store keeps artifacts beside its database; a server decides for itself.
                location = None if self.is_remote else (self.artifact_root / "mlartifacts").as_uri()
                self._experiment_id = self.client.create_experiment(
                    self.experiment_name, location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING}
                )
        return self._experiment_id

    def call(self, action: Callable[[], Any], what: str) -> Any:
        """Run one MLflow action; on failure warn once and turn tracking off."""
        if not self.enabled:
            return None
        try:
            return action()
        except Exception as error:
            self.enabled = False
            detail = str(error).splitlines()[0] if str(error) else ""
            print(
                f"rlsweep: warning: MLflow tracking at {self.tracking_uri} failed while {what} "
                f"({type(error).__name__}: {detail}); carrying on with TensorBoard and local files only",
                file=sys.stderr,
                flush=True,
            )
            return None

    def find_trial_run(self, trial_id: str, parent_run_id: str | None) -> str | None:
        """The run already logged for a trial (a resumed sweep's), if any."""
        query = f"tags.`{TRIAL_ID_TAG}` = '{trial_id}'"
        if parent_run_id:
            query += f" and tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'"
        runs = self.client.search_runs([self.experiment_id], query, max_results=1)
        return runs[0].info.run_id if runs else None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        return state


@dataclass(frozen=True)
class _LogMetrics:
    run_id: str
    metrics: list[Metric]


@dataclass(frozen=True)
class _Call:
    action: Callable[[], Any]
    what: str


@dataclass(frozen=True)
class _Stop:
    pass


_Work = _LogMetrics | _Call | _Stop


class _BatchWriter:
    """A daemon thread sending queued metrics with log_batch and running queued calls in
    order, so a run's metrics always land before its final status."""

    def __init__(self, store: MLflowStore):
        self.store = store
        self.queue: queue.Queue[_Work] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="rlsweep-mlflow", daemon=True)
        self.thread.start()

    def put(self, work: _Work) -> None:
        self.queue.put(work)

    def close(self) -> None:
        self.queue.put(_Stop())
        self.thread.join()

    def _work(self) -> None:
        while True:
            work: _Work | None = self.queue.get()
            # Coalesce the metrics waiting in line (up to the next call) into few batches.
            pending: dict[str, list[Metric]] = {}
            while isinstance(work, _LogMetrics):
                pending.setdefault(work.run_id, []).extend(work.metrics)
                try:
                    work = self.queue.get_nowait()
                except queue.Empty:
                    work = None
            for run_id, metrics in pending.items():
                for start in range(0, len(metrics), MAX_BATCH):
                    chunk = metrics[start : start + MAX_BATCH]
                    self.store.call(
                        lambda r=run_id, c=chunk: self.store.client.log_batch(r, metrics=c), "logging metrics"
                    )
            if isinstance(work, _Stop):
                return
            if isinstance(work, _Call):
                self.store.call(work.action, work.what)


class MLflowTrialLogger(LoggerCallback):
    """One MLflow run per trial, nested under `parent_run_id` when there is one.

    Params are the trial's hyperparameters, logged when the trial starts, or when it ends
    under PBT (`params_at_end`), which changes a trial's config while it runs and MLflow
    params cannot change; PBT's numeric mutations appear as `config/<key>` metrics instead.
    Metrics have env steps as their step. A trial's run is tagged with how it ended.
    """

    def __init__(
        self,
        store: MLflowStore,
        parent_run_id: str | None,
        params_at_end: bool,
        stop_conditions: StopConditions,
    ):
        self.store = store
        self.parent_run_id = parent_run_id
        self.params_at_end = params_at_end
        self.stop_conditions = stop_conditions
        self._runs: dict[str, str] = {}
        self._writer: _BatchWriter | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_writer"], state["_runs"] = None, {}
        return state

    @property
    def writer(self) -> _BatchWriter:
        if self._writer is None:
            self._writer = _BatchWriter(self.store)
        return self._writer

    def log_trial_start(self, trial: Trial) -> None:
        if trial.trial_id in self._runs or not self.store.enabled:
            return
        run_id = self.store.call(lambda: self._open_run(trial), "creating a trial run")
        if run_id is None:
            return
        self._runs[trial.trial_id] = run_id
        if not self.params_at_end:
            self._log_params(run_id, trial)

    def _open_run(self, trial: Trial) -> str:
        """The trial's run: a new one, or the one a resumed sweep made before."""
        client = self.store.client
        run_id = self.store.find_trial_run(trial.trial_id, self.parent_run_id)
        if run_id is not None:
            client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            return run_id
        tags = {TRIAL_ID_TAG: trial.trial_id, MLFLOW_RUN_NAME: str(trial), "rlsweep.trial_path": trial.path}
        tags[PHASE_TAG] = "test" if TUNED_TRIAL_KEY in trial.config else "tune"
        if TUNED_TRIAL_KEY in trial.config:
            tags[TUNED_TRIAL_TAG] = trial.config[TUNED_TRIAL_KEY]
        if self.parent_run_id:
            tags[MLFLOW_PARENT_RUN_ID] = self.parent_run_id
        return client.create_run(self.store.experiment_id, tags=tags, run_name=str(trial)).info.run_id

    def _log_params(self, run_id: str, trial: Trial) -> None:
        params = [Param(k, str(v)) for k, v in trial_hyperparameters(trial.config).items()]
        client = self.store.client
        for start in range(0, len(params), 100):
            chunk = params[start : start + 100]
            self.writer.put(_Call(lambda c=chunk: client.log_batch(run_id, params=c), "logging params"))

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        run_id = self._runs.get(trial.trial_id)
        if run_id is None or not self.store.enabled:
            return
        values = numeric_metrics(result)
        if self.params_at_end:
            values.update(
                {
                    f"config/{k}": float(v)
                    for k, v in trial_hyperparameters(trial.config).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
            )
        step = int(values.get(STEP_KEY, iteration))
        timestamp = int(time.time() * 1000)
        self.writer.put(_LogMetrics(run_id, [Metric(k, v, timestamp, step) for k, v in values.items()]))

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        run_id = self._runs.pop(trial.trial_id, None)
        if run_id is None:
            return
        client = self.store.client
        if self.params_at_end:
            self._log_params(run_id, trial)
        ending = trial_ending(trial.last_result or {}, failed, self.stop_conditions)
        tags = {ENDING_TAG: ending.name.lower()}
        if ending is not Ending.FAILED:
            tags[STOPPED_EARLY_TAG] = str(ending is Ending.STOPPED_EARLY).lower()
        self.writer.put(
            _Call(lambda: [client.set_tag(run_id, k, v) for k, v in tags.items()], "tagging a run")
        )
        status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
        self.writer.put(_Call(lambda: client.set_terminated(run_id, status), "ending a trial run"))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Runs still open belong to trials an interruption left unfinished."""
        client = self.store.client
        killed = RunStatus.to_string(RunStatus.KILLED)
        for run_id in self._runs.values():
            self.writer.put(
                _Call(lambda r=run_id: client.set_terminated(r, killed), "ending an interrupted run")
            )
        self._runs.clear()
        self.flush()

    def flush(self) -> None:
        """Wait until everything queued has been sent."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RunTracking:
    """What one run of an experiment logs to MLflow: a run per trial and, for a search, the
    parent run holding what was searched and, in the end, what was found."""

    def __init__(self, store: MLflowStore, parent_run_id: str | None, trial_logger: MLflowTrialLogger):
        self.store = store
        self.parent_run_id = parent_run_id
        self.trial_logger = trial_logger

    @classmethod
    def start(cls, experiment: Experiment, folder: SweepFolder, tracking_uri: str) -> RunTracking:
        """Open the parent run of a search (or reopen a resumed one's); a fixed config has none."""
        store = MLflowStore(tracking_uri, experiment.name, experiment_root(experiment).parent)
        parent_run_id = None
        if experiment.is_search:
            parent_run_id = store.call(
                lambda: _open_parent_run(store, experiment, folder), "creating the sweep run"
            )
        trial_logger = MLflowTrialLogger(
            store,
            parent_run_id,
            params_at_end=experiment.is_population_based,
            stop_conditions=experiment.stop_conditions,
        )
        return cls(store, parent_run_id, trial_logger)

    def finish(self, outcome: RunOutcome) -> None:
        """Attach the best trial's checkpoint to its run; log the outcome to the parent and end it."""
        self.store.call(lambda: self._log_outcome(outcome), "logging the run's outcome")
        if self.store.enabled:
            outcome.mlflow_uri = self.store.tracking_uri

    def _log_outcome(self, outcome: RunOutcome) -> None:
        client = self.store.client
        best = outcome.best
        best_run_id = self.store.find_trial_run(best.trial_id, self.parent_run_id) if best else None
        if best_run_id and best.checkpoint is not None:
            client.log_artifacts(best_run_id, str(best.checkpoint), "checkpoint")
        if outcome.test is not None:
            for config in outcome.test.configs:
                self._log_test(config, outcome.test.seeds)
        if self.parent_run_id is None:
            return
        now = int(time.time() * 1000)
        values = {"trials_total": len(outcome.trials), "trials_failed": outcome.count(Ending.FAILED)}
        values.update({f"trials_{ending.name.lower()}": outcome.count(ending) for ending in Ending})
        params: dict[str, Any] = {}
        if best is not None:
            values["best_score"] = best.score
            params.update({f"best.{k}": v for k, v in trial_hyperparameters(best.config).items()})
        if outcome.test is not None:
            params.update({"test.top": outcome.test.spec.top, "test.seed_values": outcome.test.seeds})
            if outcome.test.best is not None:
                values.update(_test_metrics(outcome.test.best, "best_"))
                params["test.best_trial_id"] = outcome.test.best.tuned.trial_id
        logged = client.get_run(self.parent_run_id).data.params
        client.log_batch(
            self.parent_run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
            # MLflow params cannot change: a later `rlsweep test` keeps the first values.
            params=[Param(k, str(v)) for k, v in params.items() if k not in logged],
        )
        for path in outcome.report_files:
            client.log_artifact(self.parent_run_id, str(path))
        client.set_tag(self.parent_run_id, MLFLOW_RUN_NOTE, sweep_description(outcome))
        if best_run_id:
            client.set_tag(self.parent_run_id, "rlsweep.best_run_id", best_run_id)
        status = RunStatus.KILLED if outcome.interrupted else RunStatus.FINISHED
        client.set_terminated(self.parent_run_id, RunStatus.to_string(status))

    def _log_test(self, config: HeldOutResult, seeds: list[int]) -> None:
        """A config's test result on its test trial's run (with each seed's score as a
        history stepped by seed index) and on its tuning trial's run."""
        client = self.store.client
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in _test_metrics(config).items()]
        test_run_id = self.store.find_trial_run(config.tested.trial_id, self.parent_run_id)
        if test_run_id is not None:
            per_seed = [Metric("test_seed_score", s, now, i) for i, s in enumerate(config.seed_scores)]
            params = [
                Param("test.seed_values", str(seeds)),
                Param("test.tuned_trial_id", config.tuned.trial_id),
            ]
            logged = client.get_run(test_run_id).data.params
            client.log_batch(
                test_run_id, metrics=metrics + per_seed, params=[p for p in params if p.key not in logged]
            )
        tuned_run_id = self.store.find_trial_run(config.tuned.trial_id, self.parent_run_id)
        if tuned_run_id is not None:
            client.log_batch(tuned_run_id, metrics=metrics)


def _test_metrics(config: HeldOutResult, prefix: str = "") -> dict[str, float]:
    low, high = config.confidence_interval
    values = {f"{prefix}test_mean": config.mean, f"{prefix}test_ci_low": low, f"{prefix}test_ci_high": high}
    if config.reached_target is not None:
        values[f"{prefix}test_seeds_reached_target"] = config.reached_target
    return values


def _open_parent_run(store: MLflowStore, experiment: Experiment, folder: SweepFolder) -> str:
    client = store.client
    record = folder.path / PARENT_RECORD_FILE
    if record.is_file():
        run_id = record.read_text().strip()
        client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        return run_id
    run = client.create_run(
        store.experiment_id,
        run_name=folder.path.name,
        tags={"rlsweep.kind": "sweep", "rlsweep.sweep_dir": str(folder.path)},
    )
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in sweep_params(experiment).items()])
    for path in (folder.experiment_file, folder.space_file):
        client.log_artifact(run.info.run_id, str(path))
    record.write_text(run.info.run_id)
    return run.info.run_id


def sweep_params(experiment: Experiment) -> dict[str, Any]:
    """What the sweep's MLflow run records as params: the search setup, not every trial key."""
    params: dict[str, Any] = {
        "algorithm": experiment.algorithm,
        "env": ",".join(experiment.env_ranges),
        "search_space": experiment.space_name,
        "sampler": experiment.sampler,
        "scheduler": experiment.scheduler.get("type", "fifo"),
        "metric": experiment.metric,
        "score": experiment.score.type,
        "mode": experiment.mode,
        "num_samples": experiment.num_samples,
        "max_concurrent_trials": experiment.max_concurrent_trials,
        "seed": experiment.seed,
    }
    params.update({f"stop.{k}": v for k, v in dataclasses.asdict(experiment.stop).items() if v is not None})
    params.update({f"scheduler.{k}": v for k, v in experiment.scheduler.items() if k != "type"})
    params.update({f"search_params.{k}": v for k, v in experiment.search_params.items()})
    params.update({f"config.{k}": v for k, v in experiment.config.items()})
    params.update({f"envs.{env}": score_range for env, score_range in experiment.envs.items()})
    if experiment.score.type == "last_k":
        params["score.k"] = experiment.score.k
    if experiment.test is not None:
        params.update({"test.top": experiment.test.top, "test.seeds": experiment.test.seeds})
    if experiment.points_to_evaluate:
        params["points_to_evaluate"] = len(experiment.points_to_evaluate)
    return params
