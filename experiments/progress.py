"""Compact live progress for a sweep: one line per trial event and a periodic status table."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from ray import tune
from ray.tune.experiment import Trial

from rlsweep.experiments.hyperparameters import trial_hyperparameters

STATUS_INTERVAL_S = 15.0


def _format_number(value: Any, digits: int = 1) -> str:
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


class SweepProgress(tune.Callback):
    """Prints trial starts (with their sampled hyperparameters), ends (and why), failures,
    and every STATUS_INTERVAL_S a table of all trials with the experiment's metric."""

    def __init__(
        self,
        metric: str,
        mode: str,
        num_samples: int,
        fixed_config: dict[str, Any],
        stopped_by_condition: Any,
        out: TextIO | None = None,
    ):
        # `out` stays None for stdout: Tune pickles callbacks with the sweep state for resuming.
        self.metric = metric
        self.mode = mode
        self.num_samples = num_samples
        self.fixed_keys = set(fixed_config)
        self.stopped_by_condition = stopped_by_condition
        self._out = out
        self.started = self.last_status = time.monotonic()

    def setup(self, **info: Any) -> None:
        # Called at the start of every run, including a resumed one.
        self.started = self.last_status = time.monotonic()

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    def _print(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.0f}s] {message}", file=self.out, flush=True)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        sampled = trial_hyperparameters({k: v for k, v in trial.config.items() if k not in self.fixed_keys})
        params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sampled.items())
        started = sum(t.status != Trial.PENDING or t is trial for t in trials)
        self._print(f"trial {trial.trial_id} started ({started}/{self.num_samples}): {params}")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        result = trial.last_result or {}
        steps = _format_number(result.get("timesteps_total"), 0)
        score = _format_number(result.get(self.metric), 2)
        why = (
            "finished"
            if self.stopped_by_condition(trial.trial_id, result)
            else "stopped early by the scheduler"
        )
        self._print(f"trial {trial.trial_id} {why} at {steps} env steps: {self.metric} = {score}")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._print(f"trial {trial.trial_id} failed; details in {trial.path}/error.txt")

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
        header = (
            f"    {'trial':<10} {'status':<11} {'iter':>5} {'env steps':>10} {'return':>8} {self.metric:>32}"
        )
        print(header, file=self.out)
        for trial in trials:
            result = trial.last_result or {}
            iteration = _format_number(result.get("training_iteration"), 0)
            print(
                f"    {trial.trial_id:<10} {trial.status:<11} {iteration:>5} "
                f"{_format_number(result.get('timesteps_total'), 0):>10} "
                f"{_format_number(result.get('episode_return_mean')):>8} "
                f"{_format_number(result.get(self.metric), 2):>32}",
                file=self.out,
            )
        self.out.flush()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.print_status(trials)
