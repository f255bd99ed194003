"""The sweep's page in MLflow's UI: a saved view of the runs table listing the sweep's
trials, best score first, with the columns a reviewer compares.

MLflow 3.17's UI keeps saved views of an experiment's runs table as experiment tags named
`mlflow.sharedViewState.<id>`, each holding a JSON envelope around the table's state (its
search filter, sort, columns); they show in the runs page's "Views" menu, and the URL
`#/experiments/<id>/runs?viewStateShareKey=<id>` opens one. rlsweep writes one view per
sweep, keyed by the sweep's parent run id. The view cannot choose the UI's GenAI/Model
training switch, which the UI keeps per browser (GenAI in a new one, whatever the
experiment's `mlflow.experimentKind` tag says), so the URL also sets `workflowType`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from rlsweep.experiment.score import SCORE_KEY
from rlsweep.results.metrics import ENV_STEPS_KEY
from rlsweep.tracking.mlflow_store import PHASE_TAG, MLflowStore, is_tracking_server

if TYPE_CHECKING:  # the schema imports Ray and Tune, which `rlsweep ui` does without
    from rlsweep.experiment.schema import Experiment

SAVED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
MODEL_TRAINING_PARAM = "workflowType=machine_learning"
"""The URL parameter that puts the UI's GenAI/Model training switch on Model training."""
EXPERIMENTS_PAGE = f"#/experiments?{MODEL_TRAINING_PARAM}"
"""The UI's experiments list in its model-training pages (for a store without a sweep)."""
TEST_MEAN_KEY = "test_mean"
LOCAL_UI_PORT = 5000
"""Where `rlsweep ui` serves MLflow's UI unless told otherwise."""


def local_ui_address(port: int = LOCAL_UI_PORT) -> str:
    """Where `rlsweep ui` serves the UI of a local store."""
    return f"http://127.0.0.1:{port}/"


def ui_address(tracking_uri: str) -> str:
    """The UI's address for a store: a tracking server's own, else `rlsweep ui`'s."""
    return tracking_uri.rstrip("/") + "/" if is_tracking_server(tracking_uri) else local_ui_address()


def sweep_page(experiment_id: str, parent_run_id: str) -> str:
    """The UI page of one sweep, after the server's address: its saved view of the runs table."""
    return f"#/experiments/{experiment_id}/runs?viewStateShareKey={parent_run_id}&{MODEL_TRAINING_PARAM}"


def save_sweep_view(store: MLflowStore, experiment: Experiment, parent_run_id: str, label: str) -> None:
    """Save the sweep's view of the runs table as an experiment tag (see the module's doc)."""
    now = int(time.time() * 1000)
    envelope = {
        "name": f"{experiment.name} sweep {label} (rlsweep)",
        "createdAt": now,
        "updatedAt": now,
        "state": json.dumps(sweep_view_state(experiment, parent_run_id)),
    }
    store.client.set_experiment_tag(
        store.experiment_id, SAVED_VIEW_TAG_PREFIX + parent_run_id, json.dumps(envelope)
    )


def sweep_view_state(experiment: Experiment, parent_run_id: str) -> dict[str, Any]:
    """The runs table's state: the sweep's tuning trials (its test trials are on the parent
    run), sorted by score, showing the score, the held-out test mean, the metric the score
    is made of (its final value), env steps and the searched hyperparameters; every trial
    drawn in the charts, not only the first 10."""
    metrics = dict.fromkeys([SCORE_KEY, TEST_MEAN_KEY, experiment.metric, ENV_STEPS_KEY])
    columns = [_column("metrics", key) for key in metrics]
    columns += [_column("params", key) for key in searched_hyperparameters(experiment)]
    return {
        "searchFilter": f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}' and tags.`{PHASE_TAG}` = 'tune'",
        "orderByKey": _column("metrics", SCORE_KEY),
        "orderByAsc": experiment.mode == "min",
        "selectedColumns": columns,
        "columnOrder": columns,
        "runsHiddenMode": "SHOW_ALL",
    }


def searched_hyperparameters(experiment: Experiment) -> list[str]:
    """The hyperparameter names the experiment's search space samples (as trial params)."""
    from rlsweep.experiment.hyperparameters import trial_hyperparameters
    from rlsweep.experiment.space_check import sample_configs

    (sample,) = sample_configs(experiment, samples=1)
    return sorted(trial_hyperparameters(sample.searched))


def _column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: metrics.`score`, params.`lr`."""
    return f"{kind}.`{key}`"
