"""When a trial stops: the experiment's stop conditions as a Tune Stopper."""

from __future__ import annotations

from typing import Any

from ray import tune

from rlsweep.experiment.schema import Experiment, StopSpec


class StopConditions(tune.Stopper):
    """Ends a trial at the first of the experiment's stop conditions; never the whole sweep.

    `reached(result)` is also how rlsweep tells a trial that ran to a stop condition from
    one a scheduler stopped early (see `rlsweep.results.trials`).
    """

    def __init__(self, stop: StopSpec, metric: str, mode: str):
        self.limits = stop.limits
        self.target = stop.target
        self.metric = metric
        self.mode = mode

    @classmethod
    def of(cls, experiment: Experiment) -> StopConditions:
        return cls(experiment.stop, experiment.metric, experiment.mode)

    def reached(self, result: dict[str, Any]) -> bool:
        if any(result.get(key, 0) >= limit for key, limit in self.limits.items()):
            return True
        if self.target is None or self.metric not in result:
            return False
        value = result[self.metric]
        return value >= self.target if self.mode == "max" else value <= self.target

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.reached(result)

    def stop_all(self) -> bool:
        return False
