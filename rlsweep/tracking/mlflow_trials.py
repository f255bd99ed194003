"""One MLflow run per trial, logged through the background writer."""

from __future__ import annotations

import time
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from ray.tune.experiment import Trial
from ray.tune.logger import LoggerCallback

from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.results.held_out import TUNED_TRIAL_KEY
from rlsweep.results.metrics import ENV_STEPS_KEY, numeric_metrics
from rlsweep.results.trials import Ending, trial_ending
from rlsweep.tracking.mlflow_store import (
    ENDING_TAG,
    PHASE_TAG,
    STOPPED_EARLY_TAG,
    TRIAL_ID_TAG,
    TUNED_TRIAL_TAG,
    MLflowStore,
)
from rlsweep.tracking.mlflow_writer import BatchWriter, Call, LogMetrics
from rlsweep.tuning.stop_conditions import StopConditions


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
        self._writer: BatchWriter | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_writer"], state["_runs"] = None, {}
        return state

    @property
    def writer(self) -> BatchWriter:
        if self._writer is None:
            self._writer = BatchWriter(self.store)
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
            self.writer.put(Call(lambda c=chunk: client.log_batch(run_id, params=c), "logging params"))

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
        step = int(values.get(ENV_STEPS_KEY, iteration))
        timestamp = int(time.time() * 1000)
        self.writer.put(LogMetrics(run_id, [Metric(k, v, timestamp, step) for k, v in values.items()]))

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
            Call(lambda: [client.set_tag(run_id, k, v) for k, v in tags.items()], "tagging a run")
        )
        status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
        self.writer.put(Call(lambda: client.set_terminated(run_id, status), "ending a trial run"))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Runs still open belong to trials an interruption left unfinished."""
        client = self.store.client
        killed = RunStatus.to_string(RunStatus.KILLED)
        for run_id in self._runs.values():
            self.writer.put(
                Call(lambda r=run_id: client.set_terminated(r, killed), "ending an interrupted run")
            )
        self._runs.clear()
        self.flush()

    def flush(self) -> None:
        """Wait until everything queued has been sent."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
