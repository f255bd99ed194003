"""MLflow tracking: a parent run per sweep, a child run per trial, logged off Tune's hot path.

Tune processes results in its driver loop and only then asks a trial for its next
iteration, so a slow tracking store would slow every trial. Trial metrics therefore go
through a queue to a background thread that sends them in `log_batch` calls. Any tracking
failure disables MLflow for that store with one warning; the sweep goes on with
TensorBoard and its local files.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from ray.tune.experiment import Trial
from ray.tune.logger import LoggerCallback

from rlsweep.experiments.hyperparameters import numeric_metrics, trial_hyperparameters

# An unreachable HTTP store must fail in seconds, not after minutes of exponential backoff.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

STEP_KEY = "timesteps_total"
TRIAL_ID_TAG = "rlsweep.trial_id"
STOPPED_EARLY_TAG = "rlsweep.stopped_early"
MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call

_unreachable: set[str] = set()
"""Tracking URIs that failed once in this process; nothing more is sent to them."""


def default_tracking_uri(results_dir: str | Path) -> str:
    """MLFLOW_TRACKING_URI if set, else an SQLite file beside the sweeps."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(results_dir).expanduser().resolve() / 'mlflow.db'}"


class Tracking:
    """One MLflow store and experiment, with the warn-once-then-carry-on failure policy."""

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_root: Path | None):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_root = artifact_root
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @property
    def enabled(self) -> bool:
        return self.tracking_uri not in _unreachable

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is not None:
                self._experiment_id = found.experiment_id
            else:
                # A local store keeps artifacts beside its database; a server decides for itself.
                location = None
                if self.artifact_root is not None and not self.tracking_uri.startswith(("http:", "https:")):
                    location = (self.artifact_root / "mlartifacts").as_uri()
                self._experiment_id = self.client.create_experiment(self.experiment_name, location)
        return self._experiment_id

    def call(self, action: Callable[[], Any], what: str) -> Any:
        """Run one MLflow action; on failure warn once for this store and disable it."""
        if not self.enabled:
            return None
        try:
            return action()
        except Exception as error:
            _unreachable.add(self.tracking_uri)
            detail = str(error).splitlines()[0] if str(error) else ""
            print(
                f"rlsweep: warning: MLflow tracking at {self.tracking_uri} failed while {what} "
                f"({type(error).__name__}: {detail}); carrying on with TensorBoard and local files only",
                file=sys.stderr,
                flush=True,
            )
            return None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        return state


def find_trial_run(tracking: Tracking, trial_id: str, parent_run_id: str | None) -> str | None:
    """The run already logged for a trial (a resumed sweep's), if any."""
    query = f"tags.`{TRIAL_ID_TAG}` = '{trial_id}'"
    if parent_run_id:
        query += f" and tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'"
    runs = tracking.client.search_runs([tracking.experiment_id], query, max_results=1)
    return runs[0].info.run_id if runs else None


class _BatchWriter:
    """A daemon thread sending queued metrics with log_batch and running queued calls in
    order, so a run's metrics always land before its final status."""

    def __init__(self, tracking: Tracking):
        self.tracking = tracking
        self.queue: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="rlsweep-mlflow", daemon=True)
        self.thread.start()

    def metrics(self, run_id: str, metrics: list[Metric]) -> None:
        self.queue.put(("metrics", run_id, metrics))

    def call(self, action: Callable[[], Any], what: str) -> None:
        self.queue.put(("call", action, what))

    def close(self) -> None:
        self.queue.put(("stop", None, None))
        self.thread.join()

    def _work(self) -> None:
        while True:
            item: tuple[str, Any, Any] | None = self.queue.get()
            # Coalesce the metrics waiting in line (up to the next call) into few batches.
            pending: dict[str, list[Metric]] = {}
            while item is not None and item[0] == "metrics":
                pending.setdefault(item[1], []).extend(item[2])
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    item = None
            for run_id, metrics in pending.items():
                for start in range(0, len(metrics), MAX_BATCH):
                    chunk = metrics[start : start + MAX_BATCH]
                    self.tracking.call(
                        lambda r=run_id, c=chunk: self.tracking.client.log_batch(r, metrics=c),
                        "logging metrics",
                    )
            if item is None:
                continue
            kind, action, what = item
            if kind == "stop":
                return
            self.tracking.call(action, what)


class MLflowTrialLogger(LoggerCallback):
    """One MLflow run per trial, nested under `parent_run_id` when there is one.

    Params are the trial's hyperparameters, logged when the trial starts, or when it ends
    under PBT (`params_at_end`), which changes a trial's config while it runs and MLflow
    params cannot change; PBT's numeric mutations appear as `config/<key>` metrics instead.
    Metrics have env steps as their step.
    """

    def __init__(
        self,
        tracking: Tracking,
        parent_run_id: str | None = None,
        params_at_end: bool = False,
        stopped_by_condition: Callable[[str, dict[str, Any]], bool] | None = None,
    ):
        self.tracking = tracking
        self.parent_run_id = parent_run_id
        self.params_at_end = params_at_end
        self.stopped_by_condition = stopped_by_condition
        self._runs: dict[str, str] = {}
        self._writer: _BatchWriter | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_writer"], state["_runs"] = None, {}
        return state

    @property
    def writer(self) -> _BatchWriter:
        if self._writer is None:
            self._writer = _BatchWriter(self.tracking)
        return self._writer

    def run_id(self, trial: Trial) -> str | None:
        return self._runs.get(trial.trial_id)

    def log_trial_start(self, trial: Trial) -> None:
        if trial.trial_id in self._runs or not self.tracking.enabled:
            return
        run_id = self.tracking.call(lambda: self._open_run(trial), "creating a trial run")
        if run_id is None:
            return
        self._runs[trial.trial_id] = run_id
        if not self.params_at_end:
            self._log_params(run_id, trial)

    def _open_run(self, trial: Trial) -> str:
        """The trial's run: a new one, or the one a resumed sweep made before."""
        client = self.tracking.client
        run_id = find_trial_run(self.tracking, trial.trial_id, self.parent_run_id)
        if run_id is not None:
            client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            return run_id
        tags = {TRIAL_ID_TAG: trial.trial_id, MLFLOW_RUN_NAME: str(trial), "rlsweep.trial_path": trial.path}
        if self.parent_run_id:
            tags[MLFLOW_PARENT_RUN_ID] = self.parent_run_id
        return client.create_run(self.tracking.experiment_id, tags=tags, run_name=str(trial)).info.run_id

    def _log_params(self, run_id: str, trial: Trial) -> None:
        params = [Param(k, str(v)) for k, v in trial_hyperparameters(trial.config).items()]
        client = self.tracking.client
        for start in range(0, len(params), 100):
            chunk = params[start : start + 100]
            self.writer.call(lambda c=chunk: client.log_batch(run_id, params=c), "logging params")

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        run_id = self._runs.get(trial.trial_id)
        if run_id is None or not self.tracking.enabled:
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
        self.writer.metrics(run_id, [Metric(k, v, timestamp, step) for k, v in values.items()])

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        run_id = self._runs.pop(trial.trial_id, None)
        if run_id is None:
            return
        client = self.tracking.client
        if self.params_at_end:
            self._log_params(run_id, trial)
        result = trial.last_result or {}
        if not failed and self.stopped_by_condition is not None:
            stopped_early = not self.stopped_by_condition(trial.trial_id, result)
            self.writer.call(
                lambda: client.set_tag(run_id, STOPPED_EARLY_TAG, str(stopped_early).lower()), "tagging a run"
            )
        status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
        self.writer.call(lambda: client.set_terminated(run_id, status), "ending a trial run")

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Runs still open belong to trials an interruption left unfinished."""
        client = self.tracking.client
        killed = RunStatus.to_string(RunStatus.KILLED)
        for run_id in self._runs.values():
            self.writer.call(lambda r=run_id: client.set_terminated(r, killed), "ending an interrupted run")
        self._runs.clear()
        self.flush()

    def flush(self) -> None:
        """Wait until everything queued has been sent."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class SweepRun:
    """The parent run of one sweep: what was searched, and in the end what was found."""

    RECORD_FILE = "mlflow_run.txt"
    """Holds the parent run id in the sweep folder, so a resumed sweep reopens its run."""

    def __init__(self, tracking: Tracking, run_id: str):
        self.tracking = tracking
        self.run_id = run_id

    @classmethod
    def start(
        cls, tracking: Tracking, sweep_dir: Path, params: dict[str, Any], artifacts: list[Path]
    ) -> SweepRun | None:
        """Create the sweep's run, or reopen it when `sweep_dir` already has one."""
        record = sweep_dir / cls.RECORD_FILE

        def open_run() -> str:
            client = tracking.client
            if record.is_file():
                run_id = record.read_text().strip()
                client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
                return run_id
            run = client.create_run(
                tracking.experiment_id,
                run_name=sweep_dir.name,
                tags={"rlsweep.kind": "sweep", "rlsweep.sweep_dir": str(sweep_dir)},
            )
            logged = [Param(k, str(v)) for k, v in params.items()]
            client.log_batch(run.info.run_id, params=logged)
            for path in artifacts:
                client.log_artifact(run.info.run_id, str(path))
            record.write_text(run.info.run_id)
            return run.info.run_id

        run_id = tracking.call(open_run, "creating the sweep run")
        return None if run_id is None else cls(tracking, run_id)

    def finish(
        self,
        best_score: float | None,
        best_params: dict[str, Any],
        metrics: dict[str, float],
        artifacts: list[Path],
        best_trial_id: str | None,
        best_checkpoint: Path | None,
        interrupted: bool,
    ) -> None:
        """Log the outcome, attach the best trial's checkpoint to its run, end the run."""
        client = self.tracking.client

        def log_outcome() -> None:
            values = dict(metrics)
            if best_score is not None:
                values["best_score"] = best_score
            now = int(time.time() * 1000)
            logged = client.get_run(self.run_id).data.params
            new_params = [
                Param(f"best.{k}", str(v)) for k, v in best_params.items() if f"best.{k}" not in logged
            ]
            client.log_batch(
                self.run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
                params=new_params,
            )
            for path in artifacts:
                client.log_artifact(self.run_id, str(path))
            best_run_id = best_trial_id and find_trial_run(self.tracking, best_trial_id, self.run_id)
            if best_run_id:
                client.set_tag(self.run_id, "rlsweep.best_run_id", best_run_id)
                if best_checkpoint is not None:
                    client.log_artifacts(best_run_id, str(best_checkpoint), "checkpoint")
            status = RunStatus.KILLED if interrupted else RunStatus.FINISHED
            client.set_terminated(self.run_id, RunStatus.to_string(status))

        self.tracking.call(log_outcome, "logging the sweep's outcome")
