"""Search spaces: every sample is a valid config; experiments can narrow and fix parameters."""

import dataclasses

import optuna
import pytest
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from rlsweep import search_spaces
from rlsweep.search_spaces import SEARCH_SPACES
from rlsweep.trainables import ALGORITHMS, PPO
from rlsweep.trainables.config import build_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

ALGORITHM_SPACES = sorted(name for name in SEARCH_SPACES if name.split("_")[0].upper() in ALGORITHMS)
"""Each algorithm's spaces: its own (`ppo`) and its variants (`ppo_memory`)."""


def _required(algorithm) -> dict:
    """What an experiment must fix for the algorithm: an offline one's dataset (not opened here)."""
    fields = {f.name for f in dataclasses.fields(algorithm.config_class)}
    return {"dataset": "recorded.npz"} if "dataset" in fields else {}


def _samples(space, n, sampler=None):
    study = optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=0))
    for _ in range(n):
        trial = study.ask()
        yield trial, space(trial)
        study.tell(trial, 0.0)


@pytest.mark.parametrize("name", ALGORITHM_SPACES)
@pytest.mark.parametrize("num_workers", [0, 1, 3])
def test_every_sampled_config_is_valid(name, num_workers):
    algorithm = ALGORITHMS[name.split("_")[0].upper()]
    space = SEARCH_SPACES[name].narrowed({}, {"num_workers": num_workers, **_required(algorithm)})
    for _, config in _samples(space, 300):
        build_config(algorithm.config_class, config)


@pytest.mark.parametrize("name", ALGORITHM_SPACES)
def test_tpe_samples_are_valid_too(name):
    algorithm = ALGORITHMS[name.split("_")[0].upper()]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    for index in range(30):
        trial = study.ask()
        build_config(algorithm.config_class, {**SEARCH_SPACES[name](trial), **_required(algorithm)})
        study.tell(trial, float(index % 7))


def test_narrowed_range_is_respected():
    space = search_spaces.ppo.narrowed({"lr": {"low": 1e-3, "high": 2e-3}}, {})
    assert all(1e-3 <= config["lr"] <= 2e-3 for _, config in _samples(space, 50))


def test_narrowed_choices_are_respected():
    space = search_spaces.ppo.narrowed({"num_epochs": {"choices": [3]}}, {})
    assert {config["num_epochs"] for _, config in _samples(space, 20)} == {3}


def test_fixed_parameter_is_not_sampled():
    space = search_spaces.ppo.narrowed({"one_minus_gamma": 0.01}, {})
    for trial, config in _samples(space, 5):
        assert "one_minus_gamma" not in trial.params
        assert config["gamma"] == pytest.approx(0.99)


def test_fixed_config_feeds_derived_parameters():
    # The minibatch is derived from num_envs_per_worker; fixing the latter must shape the former.
    space = search_spaces.ppo.narrowed({}, {"num_envs_per_worker": 2})
    for _, config in _samples(space, 50):
        assert config["num_envs_per_worker"] == 2
        assert config["minibatch_size"] <= 2 * config["rollout_length"]


def test_optuna_trial_params_are_not_leaked_into_the_config():
    _, config = next(_samples(search_spaces.ppo, 1))
    assert "one_minus_gamma" not in config
    assert "num_minibatches" not in config


@pytest.mark.usefixtures("ray_session")
def test_tune_run_with_optuna_search_over_the_ppo_space(tmp_path):
    searcher = OptunaSearch(
        space=search_spaces.ppo.narrowed({"rollout_length": {"choices": [16]}}, {"evaluation_interval": 1}),
        metric="episode_return_mean",
        mode="max",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    analysis = tune.run(
        PPO,
        config={"env": "CartPole-v1"},
        search_alg=searcher,
        num_samples=2,
        stop={"training_iteration": 1},
        storage_path=str(tmp_path),
        verbose=0,
    )
    assert [trial.status for trial in analysis.trials] == ["TERMINATED", "TERMINATED"]
