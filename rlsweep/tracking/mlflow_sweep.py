"""What one run of an experiment logs to MLflow beyond its trials: the sweep's parent run,
with what was searched and, in the end, what was found (the best config, the held-out
test, the report files and the Markdown description)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.experiment.schema import Experiment
from rlsweep.report.description import sweep_description
from rlsweep.results.held_out import HeldOutResult
from rlsweep.results.outcome import RunOutcome
from rlsweep.results.storage import join, local_copy
from rlsweep.results.sweep_folder import SweepFolder, experiment_root
from rlsweep.results.trials import Ending
from rlsweep.tracking.mlflow_store import PARENT_RECORD_FILE, MLflowStore
from rlsweep.tracking.mlflow_trials import MLflowTrialLogger
from rlsweep.tracking.mlflow_view import save_sweep_view, sweep_page
from rlsweep.tuning.stop_conditions import StopConditions


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
        artifacts = (
            join(experiment.storage, "mlartifacts")
            if experiment.storage is not None
            else (experiment_root(experiment).parent / "mlartifacts").as_uri()
        )
        store = MLflowStore(tracking_uri, experiment.name, artifacts)
        parent_run_id = None
        if experiment.is_search:
            parent_run_id = store.call(
                lambda: _open_parent_run(store, experiment, folder), "creating the sweep run"
            )
        trial_logger = MLflowTrialLogger(
            store,
            parent_run_id,
            params_at_end=experiment.is_population_based,
            stop_conditions=StopConditions.of(experiment),
        )
        return cls(store, parent_run_id, trial_logger)

    def finish(self, outcome: RunOutcome) -> None:
        """Attach the best trial's checkpoint to its run; log the outcome to the parent and end it."""
        self.store.call(lambda: self._log_outcome(outcome), "logging the run's outcome")
        if self.store.enabled:
            outcome.mlflow_uri = self.store.tracking_uri
            if self.parent_run_id is not None:
                outcome.mlflow_page = sweep_page(self.store.experiment_id, self.parent_run_id)

    def _log_outcome(self, outcome: RunOutcome) -> None:
        client = self.store.client
        best = outcome.best
        best_run_id = self.store.find_trial_run(best.trial_id, self.parent_run_id) if best else None
        if best_run_id and best.checkpoint is not None:
            with local_copy(best.checkpoint) as checkpoint:
                client.log_artifacts(best_run_id, str(checkpoint), "checkpoint")
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
    save_sweep_view(store, experiment, run.info.run_id, folder.path.name)
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
