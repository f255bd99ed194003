"""How a run ended: for every trial, how it ended and its results; and the best trial.

This module is the one answer to "how did this trial end": progress lines, MLflow tags,
the CLI summary, the report files and the benchmarks all read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from ray import tune

from rlsweep.experiments.experiment import Experiment, StopConditions
from rlsweep.experiments.score import SCORE_KEY
from rlsweep.experiments.sweep_folder import SweepFolder

if TYPE_CHECKING:
    from rlsweep.experiments.held_out_test import HeldOutTest


class Ending(Enum):
    """How one trial ended."""

    REACHED_STOP = "reached a stop condition"
    STOPPED_EARLY = "stopped early by the scheduler"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


def trial_ending(last_result: dict[str, Any], failed: bool, stop: StopConditions) -> Ending:
    """How a trial ended, from its last result.

    Tune marks the result that ends a trial `done`, whether a stop condition or the
    scheduler ended it; a trial cut short by Ctrl-C or the sweep's time budget has none.
    """
    if failed:
        return Ending.FAILED
    if not last_result.get("done"):
        return Ending.INTERRUPTED
    return Ending.REACHED_STOP if stop.reached(last_result) else Ending.STOPPED_EARLY


@dataclass
class TrialOutcome:
    """One trial: how it ended, its results, its latest checkpoint."""

    trial_id: str
    path: Path
    config: dict[str, Any]
    ending: Ending
    error: str | None
    """Why it failed, in one line."""
    final: dict[str, Any]
    """Its last result."""
    history: pd.DataFrame | None
    """Every result it reported, oldest first."""
    checkpoint: Path | None
    score: float | None
    """The score in its last result: what the search was told."""

    @property
    def env_steps(self) -> int:
        return int(self.final.get("timesteps_total", 0))


@dataclass
class RunOutcome:
    """A finished (or interrupted) run of an experiment."""

    experiment: Experiment
    folder: SweepFolder
    trials: list[TrialOutcome]
    interrupted: bool
    """Stopped by Ctrl-C/SIGTERM before every trial finished; `--resume` continues it."""
    elapsed_s: float
    mlflow_uri: str | None = None
    """The tracking store the run logged to; None when MLflow was off or unreachable."""
    report_files: list[Path] = field(default_factory=list)
    test: HeldOutTest | None = None
    """The top configs retrained on held-out seeds, when the run tested them."""

    @property
    def best(self) -> TrialOutcome | None:
        """The best trial: the best on the held-out test seeds when the run tested its top
        configs, else the best by tuning score."""
        if self.test is not None:
            return self.test.best.tuned if self.test.best is not None else None
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def ranked(self) -> list[TrialOutcome]:
        """The trials that reported a score and did not fail, best first by tuning score."""
        return rank(self.trials, self.experiment.mode)

    def count(self, ending: Ending) -> int:
        return sum(t.ending is ending for t in self.trials)


def rank(trials: Iterable[TrialOutcome], mode: str) -> list[TrialOutcome]:
    """Scored trials that did not fail, best first; when scores tie, the trial that used fewer
    env steps comes first. Every choice of a best trial is made here."""
    scored = [t for t in trials if t.score is not None and t.ending is not Ending.FAILED]
    sign = 1 if mode == "max" else -1
    return sorted(scored, key=lambda t: (-sign * t.score, t.env_steps))


def collect_outcome(
    experiment: Experiment, folder: SweepFolder, results: tune.ResultGrid, elapsed_s: float
) -> RunOutcome:
    """The outcome of `tuner.fit()`'s results."""
    stop = experiment.stop_conditions
    trials = [_trial_outcome(result, experiment, stop) for result in results]
    out_of_time = experiment.time_budget_s is not None and elapsed_s >= experiment.time_budget_s
    unfinished = len(trials) < experiment.num_samples or any(t.ending is Ending.INTERRUPTED for t in trials)
    return RunOutcome(
        experiment, folder, trials, interrupted=unfinished and not out_of_time, elapsed_s=elapsed_s
    )


def _trial_outcome(result: tune.Result, experiment: Experiment, stop: StopConditions) -> TrialOutcome:
    final = dict(result.metrics or {})
    path = Path(result.path)
    score = final.get(SCORE_KEY)
    return TrialOutcome(
        # Trial folders are named ALGO_TRIALID; a trial that never reported has no trial_id.
        trial_id=final.get("trial_id") or path.name.rsplit("_", 1)[-1],
        path=path,
        config=dict(result.config or {}),
        ending=trial_ending(final, result.error is not None, stop),
        error=failure_reason(result.error) if result.error is not None else None,
        final=final,
        history=result.metrics_dataframe,
        checkpoint=Path(result.checkpoint.path) if result.checkpoint else None,
        score=float(score) if _is_number(score) else None,
    )


def failure_reason(error: BaseException | str) -> str:
    """Why a trial failed, in one line: the trainable's own exception where Ray wrapped it;
    the last line of the trace where Tune kept only its text."""
    if isinstance(error, str):
        lines = [line for line in error.splitlines() if line.strip() and not line.startswith(" ")]
        return lines[-1] if lines else "unknown error"
    cause = getattr(error, "cause", None) or error
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
