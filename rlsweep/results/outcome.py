"""How a run of an experiment ended: its trials, whether it was interrupted, its held-out
test, and the best trial."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ray import tune

from rlsweep.experiment.schema import Experiment
from rlsweep.results.held_out import HeldOutTest
from rlsweep.results.sweep_folder import SweepFolder
from rlsweep.results.trials import Ending, TrialOutcome, rank, trial_outcome
from rlsweep.tuning.stop_conditions import StopConditions


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
    mlflow_page: str | None = None
    """A search's page in the MLflow UI, after the server's address: its trials by score."""
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


def collect_outcome(
    experiment: Experiment, folder: SweepFolder, results: tune.ResultGrid, elapsed_s: float
) -> RunOutcome:
    """The outcome of `tuner.fit()`'s results."""
    stop = StopConditions.of(experiment)
    trials = [trial_outcome(result, stop) for result in results]
    out_of_time = experiment.time_budget_s is not None and elapsed_s >= experiment.time_budget_s
    unfinished = len(trials) < experiment.num_samples or any(t.ending is Ending.INTERRUPTED for t in trials)
    return RunOutcome(
        experiment, folder, trials, interrupted=unfinished and not out_of_time, elapsed_s=elapsed_s
    )
