"""TensorBoard event files per trial, with env steps on the x axis and an HParams entry."""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.logger import TBXLoggerCallback
from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams

from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.results.metrics import ENV_STEPS_KEY, numeric_metrics


class TensorBoardLogger(TBXLoggerCallback):
    """Writes each trial's scalars against env steps, so trials with different batch sizes
    line up, and its hyperparameters to TensorBoard's HParams tab when it ends.

    A TBXLoggerCallback subclass so Tune does not also add its default one, which plots
    against iterations and flushes the file on every result.
    """

    def __init__(self, metric: str | None = None):
        super().__init__()
        self.metric = metric
        self._writers: dict[Trial, SummaryWriter] = {}
        self._last_metrics: dict[Trial, dict[str, float]] = {}

    def log_trial_start(self, trial: Trial) -> None:
        if trial in self._writers:
            self._writers[trial].close()
        trial.init_local_path()
        self._writers[trial] = SummaryWriter(trial.local_path, flush_secs=10)
        self._last_metrics[trial] = {}

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        if trial not in self._writers:
            self.log_trial_start(trial)
        metrics = numeric_metrics(result)
        step = int(metrics.get(ENV_STEPS_KEY, result.get("training_iteration", 0)))
        writer = self._writers[trial]
        for key, value in metrics.items():
            writer.add_scalar(key, value, global_step=step)
        self._last_metrics[trial] = metrics

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial, None)
        last = self._last_metrics.pop(trial, {})
        if writer is None:
            return
        if last:
            # HParams compares trials on their final values of these metrics.
            keys = [k for k in (self.metric, "episode_return_mean", ENV_STEPS_KEY) if k and k in last]
            for summary in hparams(trial_hyperparameters(trial.config), {k: last[k] for k in keys}):
                writer.file_writer.add_summary(summary)
        writer.close()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for trial in list(self._writers):
            self.log_trial_end(trial)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with the sweep state; open writers are not picklable.
        state = self.__dict__.copy()
        state["_writers"], state["_last_metrics"] = {}, {}
        state["_trial_writer"], state["_trial_result"] = {}, {}
        return state
