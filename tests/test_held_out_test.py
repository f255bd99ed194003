"""Held-out test seeds: disjoint from every tuning seed; the best config is the best there."""

from pathlib import Path

import numpy as np
import pytest

from rlsweep.experiment.files import experiment_from_dict
from rlsweep.experiment.schema import HeldOutSpec
from rlsweep.pipeline.test_phase import held_out_configs
from rlsweep.results.held_out import HeldOutResult, HeldOutTest, bootstrap_interval
from rlsweep.results.outcome import RunOutcome
from rlsweep.results.sweep_folder import SweepFolder
from rlsweep.results.trials import Ending, TrialOutcome
from rlsweep.trainables.seeds import held_out_seed, seed_values


def _experiment(seed: int = 0, num_seeds: int = 1):
    return experiment_from_dict(
        {
            "name": "t",
            "seed": seed,
            "config": {"num_seeds": num_seeds},
            "stop": {"timesteps_total": 1000, "target": 500},
            "test": {"top": 2, "seeds": 5},
        }
    )


@pytest.mark.parametrize(("seed", "tuning_seeds", "test_seeds"), [(0, 1, 5), (7, 3, 10), (123, 8, 2)])
def test_test_seeds_never_overlap_tuning_seeds(seed, tuning_seeds, test_seeds):
    experiment = _experiment(seed, tuning_seeds)
    tuning = set(seed_values(experiment.seed, tuning_seeds))
    (config,) = held_out_configs(
        [_trial("a", 1.0, 10, {"seed": seed})], experiment, HeldOutSpec(1, test_seeds)
    )
    testing = set(seed_values(config["seed"], config["num_seeds"]))
    assert len(testing) == test_seeds
    assert not tuning & testing


def test_test_configs_are_the_tuned_configs_on_the_test_seeds():
    experiment = _experiment()
    tuned = _trial("a", 1.0, 10, {"lr": 0.01, "seed": 0, "__population_member": 3})
    (config,) = held_out_configs([tuned], experiment, HeldOutSpec(1, 4))
    assert config == {
        "lr": 0.01,
        "seed": held_out_seed(experiment.seed, experiment.tuning_seeds),
        "num_seeds": 4,
        "__tuned_trial": "a",
    }


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible():
    scores = [480.0, 500.0, 350.0, 500.0, 420.0]
    low, high = bootstrap_interval(scores)
    assert low < np.mean(scores) < high
    assert (low, high) == bootstrap_interval(scores)
    assert min(scores) <= low and high <= max(scores)


def _trial(trial_id: str, score: float, steps: int, config: dict | None = None) -> TrialOutcome:
    final = {"score": score, "timesteps_total": steps}
    return TrialOutcome(
        trial_id, Path(trial_id), config or {}, Ending.REACHED_STOP, None, final, None, None, score
    )


def _tested(tuned: TrialOutcome, scores: list[float], steps: int = 1000) -> HeldOutResult:
    return HeldOutResult(tuned, _trial(f"test-{tuned.trial_id}", float(np.mean(scores)), steps), scores, None)


def _run(trials: list[TrialOutcome], tests: list[HeldOutResult]) -> RunOutcome:
    experiment = _experiment()
    outcome = RunOutcome(experiment, SweepFolder(Path(".")), trials, interrupted=False, elapsed_s=1.0)
    outcome.test = HeldOutTest(HeldOutSpec(2, 5), [1, 2], Path("test"), tests, "max", 1.0)
    return outcome


def test_the_sweeps_best_config_is_the_best_on_the_test_seeds():
    lucky, robust = _trial("lucky", 500.0, 1000), _trial("robust", 450.0, 1000)
    outcome = _run([lucky, robust], [_tested(lucky, [200.0, 300.0]), _tested(robust, [450.0, 480.0])])
    assert outcome.best is robust


def test_configs_tied_on_the_test_seeds_go_to_fewer_env_steps():
    slow, fast = _trial("slow", 500.0, 1000), _trial("fast", 500.0, 1000)
    tests = [_tested(slow, [500.0, 500.0], steps=90_000), _tested(fast, [500.0, 500.0], steps=20_000)]
    assert _run([slow, fast], tests).best is fast
