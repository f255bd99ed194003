"""The MLflow store a run tracks to, its experiment, the tags rlsweep writes, and what
happens when the store fails: the first failure prints one warning and turns tracking
off; the run goes on with TensorBoard and its local files."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

TRIAL_ID_TAG = "rlsweep.trial_id"
STOPPED_EARLY_TAG = "rlsweep.stopped_early"
ENDING_TAG = "rlsweep.ending"
PHASE_TAG = "rlsweep.phase"
"""tune (a search trial) or test (a tuned config retrained on the held-out test seeds)."""
TUNED_TRIAL_TAG = "rlsweep.tuned_trial_id"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""Says the experiment is model training, for what reads it; MLflow 3.17's UI chooses its
pages by its GenAI/Model training switch instead (see mlflow_view.py)."""
MODEL_TRAINING = "custom_model_development"
PARENT_RECORD_FILE = "mlflow_run.txt"
"""Holds the parent run id in the run's folder, so a resumed sweep reopens its run."""


def default_tracking_uri(results_dir: str | Path) -> str:
    """MLFLOW_TRACKING_URI if set, else an SQLite file beside the sweeps."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(results_dir).expanduser().resolve() / 'mlflow.db'}"


def is_tracking_server(tracking_uri: str) -> bool:
    """A tracking server over HTTP, which serves its own UI and decides where artifacts go."""
    return tracking_uri.startswith(("http:", "https:"))


class MLflowStore:
    """One MLflow store and experiment, and what happens when the store fails: the first
    failure prints one warning and turns tracking off; everything after is skipped."""

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_location: str):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_location = artifact_location
        """Where a new MLflow experiment keeps artifacts: beside a local store, or the run's
        storage (s3://...); an existing experiment keeps its own."""
        self.enabled = True
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @property
    def is_remote(self) -> bool:
        return is_tracking_server(self.tracking_uri)

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
                if EXPERIMENT_KIND_TAG not in found.tags:
                    self.client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
            else:
                # A server decides for itself, unless the run's storage says where.
                local = self.artifact_location.startswith("file:")
                location = None if self.is_remote and local else self.artifact_location
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
