"""How a trial ended and which trial is best: the one answer every report reads."""

from pathlib import Path

import pytest
from ray.exceptions import RayTaskError

from rlsweep.experiment.files import experiment_from_dict
from rlsweep.results.outcome import RunOutcome
from rlsweep.results.sweep_folder import SweepFolder
from rlsweep.results.trials import Ending, TrialOutcome, failure_reason, trial_ending
from rlsweep.trainables.algorithm import DivergenceError
from rlsweep.tuning.stop_conditions import StopConditions

EXPERIMENT = experiment_from_dict(
    {
        "name": "t",
        "stop": {"timesteps_total": 1000, "target": 500},
        "metric": "score",
        "search_space": "fixed",
    }
)
STOP = StopConditions.of(EXPERIMENT)


@pytest.mark.parametrize(
    ("result", "failed", "ending"),
    [
        ({"done": True, "timesteps_total": 1000, "score": 20}, False, Ending.REACHED_STOP),
        ({"done": True, "timesteps_total": 300, "score": 500}, False, Ending.REACHED_STOP),
        ({"done": True, "timesteps_total": 300, "score": 20}, False, Ending.STOPPED_EARLY),
        ({"done": False, "timesteps_total": 300, "score": 20}, False, Ending.INTERRUPTED),
        ({"done": True, "timesteps_total": 1000, "score": 500}, True, Ending.FAILED),
    ],
    ids=["budget", "target", "scheduler", "interrupted", "failed"],
)
def test_a_trial_ending_is_read_from_its_last_result(result, failed, ending):
    assert trial_ending(result, failed, STOP) is ending


def _trial(trial_id: str, score: float | None, steps: int, ending=Ending.REACHED_STOP) -> TrialOutcome:
    final = {"score": score, "timesteps_total": steps}
    return TrialOutcome(trial_id, Path(trial_id), {}, ending, None, final, None, None, score)


def _outcome(*trials: TrialOutcome) -> RunOutcome:
    return RunOutcome(EXPERIMENT, SweepFolder(Path(".")), list(trials), interrupted=False, elapsed_s=1.0)


def test_tied_scores_go_to_the_trial_that_used_fewer_env_steps():
    outcome = _outcome(_trial("slow", 500, 107_000), _trial("fast", 500, 13_000), _trial("weak", 90, 5_000))
    assert outcome.best.trial_id == "fast"


def test_a_failed_trial_is_never_the_best():
    outcome = _outcome(_trial("failed", 500, 1000, Ending.FAILED), _trial("ok", 100, 1000))
    assert outcome.best.trial_id == "ok"


def test_a_run_without_scores_has_no_best():
    assert _outcome(_trial("silent", None, 1000)).best is None


def test_failure_reason_is_the_trainables_own_exception_in_one_line():
    cause = DivergenceError("training diverged at iteration 3: the network's weights are NaN")
    wrapped = RayTaskError("step", "Traceback ...\n  many lines\n", cause).as_instanceof_cause()
    assert failure_reason(wrapped) == (
        "DivergenceError: training diverged at iteration 3: the network's weights are NaN"
    )


def test_failure_reason_from_a_text_trace_is_its_last_line():
    trace = "Traceback (most recent call last):\n  File 'x.py', line 1\n    boom()\nValueError: bad env\n"
    assert failure_reason(trace) == "ValueError: bad env"
