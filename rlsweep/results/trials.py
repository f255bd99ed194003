"""How each trial of a run ended, and its results: the one answer to "how did this trial
end" that progress lines, MLflow tags, the CLI summary, the report files and the
benchmarks all read; and the ranking that picks the best trial."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs
from ray import tune

from rlsweep.experiment.score import SCORE_KEY
from rlsweep.results.metrics import ENV_STEPS_KEY
from rlsweep.results.storage import uri_of
from rlsweep.tuning.stop_conditions import StopConditions


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
    checkpoint: Path | str | None
    """Its latest checkpoint: a local folder, or a URI in the run's storage."""
    score: float | None
    """The score in its last result: what the search was told."""

    @property
    def env_steps(self) -> int:
        return int(self.final.get(ENV_STEPS_KEY, 0))


def rank(trials: Iterable[TrialOutcome], mode: str) -> list[TrialOutcome]:
    """Scored trials that did not fail, best first; when scores tie, the trial that used fewer
    env steps comes first. Every choice of a best trial is made here."""
    scored = [t for t in trials if t.score is not None and t.ending is not Ending.FAILED]
    sign = 1 if mode == "max" else -1
    return sorted(scored, key=lambda t: (-sign * t.score, t.env_steps))


def trial_outcome(result: tune.Result, stop: StopConditions) -> TrialOutcome:
    """A trial's outcome from its Tune result."""
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
        checkpoint=_location(result.checkpoint) if result.checkpoint else None,
        score=float(score) if _is_number(score) else None,
    )


def _location(checkpoint: tune.Checkpoint) -> Path | str:
    """A local checkpoint's folder, or a stored one's URI."""
    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return Path(checkpoint.path)
    return uri_of(checkpoint.path, checkpoint.filesystem)


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
