"""Compact live progress for a sweep: one line per trial event and a periodic status table."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from ray import tune
from ray.tune.experiment import Trial

from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.experiment.schema import Experiment
from rlsweep.experiment.score import SCORE_KEY
from rlsweep.results.trials import Ending, failure_reason, trial_ending
from rlsweep.tuning.stop_conditions import StopConditions

STATUS_INTERVAL_S = 15.0


def _format_number(value: Any, digits: int = 1) -> str:
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


class SweepProgress(tune.Callback):
    """Prints trial starts (with their sampled hyperparameters), ends (and why), failures,
    and every STATUS_INTERVAL_S a table of all trials with their scores; a phase with a
    `title` (the held-out test) announces itself first."""

    def __init__(self, experiment: Experiment, out: TextIO | None = None, title: str = ""):
        # `out` stays None for stdout: Tune pickles callbacks with the sweep state for resuming.
        self.title = title
        self.num_samples = experiment.num_samples
        self.fixed_keys = set(experiment.fixed_config)
        self.stop_conditions = StopConditions.of(experiment)
        self.timestep_unit = experiment.trainable.timestep_unit
        self._out = out
        self.started = self.last_status = time.monotonic()

    def setup(self, **info: Any) -> None:
        # Called at the start of every run, including a resumed one.
        self.started = self.last_status = time.monotonic()
        if self.title:
            self._print(self.title)

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    def _print(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.0f}s] {message}", file=self.out, flush=True)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        sampled = trial_hyperparameters({k: v for k, v in trial.config.items() if k not in self.fixed_keys})
        params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sampled.items())
        started = sum(t.status != Trial.PENDING or t is trial for t in trials)
        self._print(
            f"trial {trial.trial_id} started ({started}/{self.num_samples}){': ' if params else ''}{params}"
        )

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        result = trial.last_result or {}
        steps = _format_number(result.get("timesteps_total"), 0)
        score = _format_number(result.get(SCORE_KEY), 2)
        ending = trial_ending(result, failed=False, stop=self.stop_conditions)
        why = "finished" if ending is Ending.REACHED_STOP else ending.value
        self._print(f"trial {trial.trial_id} {why} at {steps} {self.timestep_unit}: {SCORE_KEY} = {score}")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        error = trial.get_pickled_error() or trial.get_error()
        reason = f": {failure_reason(error)}" if error else ""
        self._print(f"trial {trial.trial_id} failed{reason} (details in {trial.path}/error.txt)")

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        now = time.monotonic()
        if now - self.last_status >= STATUS_INTERVAL_S:
            self.last_status = now
            self.print_status(trials)

    def print_status(self, trials: list[Trial]) -> None:
        counts: dict[str, int] = {}
        for trial in trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        summary = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
        self._print(f"{len(trials)}/{self.num_samples} trials: {summary}")
        steps = max(10, len(self.timestep_unit))
        header = (
            f"    {'trial':<12} {'status':<11} {'iter':>5} {self.timestep_unit:>{steps}} {'return':>8} "
            f"{SCORE_KEY:>10}"
        )
        print(header, file=self.out)
        for trial in trials:
            result = trial.last_result or {}
            iteration = _format_number(result.get("training_iteration"), 0)
            print(
                f"    {trial.trial_id:<12} {trial.status:<11} {iteration:>5} "
                f"{_format_number(result.get('timesteps_total'), 0):>{steps}} "
                f"{_format_number(result.get('episode_return_mean')):>8} "
                f"{_format_number(result.get(SCORE_KEY), 2):>10}",
                file=self.out,
            )
        self.out.flush()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.print_status(trials)
