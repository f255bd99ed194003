"""A trial's score: what the search, the schedulers and the best-trial choice all read.

The experiment's metric is measured at every evaluation; the score turns that history into
the one number the experiment optimizes. It is computed inside the trial (see
`rlsweep.tuning.objective`) and reported under SCORE_KEY in every result, because
Optuna reads the trial's last result and ASHA and PBT read every result: each sees the
same score only if the trial reports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.seeds import PER_SEED_PREFIX

SCORE_KEY = "score"
"""The result key holding the score: the metric of every search and scheduler."""


@dataclass
class ScoreSpec:
    """How an evaluation history becomes a score."""

    type: Literal["final", "last_k", "auc"] = "final"
    """final: the last evaluation; last_k: the mean of the last k; auc: the mean of all
    evaluations over the run, which rewards learning fast as well as well."""
    k: int = 5
    """Evaluations averaged by last_k."""

    def validate(self) -> None:
        check_range("score.k", self.k, 1, label="experiment")
        if self.type != "last_k" and self.k != ScoreSpec.k:
            raise ConfigError(f"experiment key 'score.k' is only used by score type last_k, not {self.type}")


def score(history: Sequence[float], spec: ScoreSpec) -> float:
    """The score of a metric's history (one value per evaluation, oldest first)."""
    if not history:
        raise ValueError("a score needs at least one evaluation")
    if spec.type == "final":
        return float(history[-1])
    if spec.type == "last_k":
        return float(np.mean(history[-spec.k :]))
    return float(np.mean(history))


class ScoreHistory:
    """The experiment's metric at every evaluation of one trial, and the scores it gives.

    It follows the metric itself and its per-seed (`seeds/<i>/`) and per-env
    (`envs/<env>/`) copies; each one's score is reported under the same prefix with the
    metric's name replaced by SCORE_KEY (`seeds/0/score`, `envs/Acrobot-v1/score`).
    """

    def __init__(self, metric: str, spec: ScoreSpec):
        self.spec = spec
        self.tracked = re.compile(rf"^(envs/[^/]+/)?({PER_SEED_PREFIX})?{re.escape(metric)}$")
        self.values: dict[str, list[float]] = {}

    def record(self, result: dict[str, Any]) -> None:
        """Add an evaluation's result."""
        for key, value in result.items():
            if self.tracked.match(key) and isinstance(value, (int, float)) and math.isfinite(value):
                self.values.setdefault(key, []).append(float(value))

    def scores(self) -> dict[str, float]:
        return {
            self.tracked.sub(lambda m: f"{m[1] or ''}{m[2] or ''}{SCORE_KEY}", key): score(values, self.spec)
            for key, values in self.values.items()
        }
