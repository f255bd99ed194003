"""Sweeps over the DQN and SAC spaces through the rlsweep CLI, as for PPO in test_cli.py."""

import optuna
import pytest
import yaml

from rlsweep.cli import main

pytestmark = pytest.mark.usefixtures("ray_session")

TINY_OFF_POLICY_SWEEP = [
    "--num-samples", "2",
    "--max-concurrent", "2",
    "--no-mlflow",
    "--set", "stop.timesteps_total=600",
    "--set", "scheduler.grace_period=300",
    "--set", "scheduler.max_t=600",
    "--set", "config.timesteps_per_iteration=300",
    "--set", "config.evaluation_interval=1",
    "--set", "config.evaluation_num_episodes=2",
    "--set", "test.top=1",
    "--set", "test.seeds=2",
]  # fmt: skip
"""CLI arguments for a 2-trial sweep of a few seconds, its best config then tested on 2 seeds."""


@pytest.mark.parametrize(("experiment", "algorithm"), [("cartpole_dqn", "DQN"), ("pendulum_sac", "SAC")])
def test_sweep_over_the_space_completes_every_trial_and_writes_a_best_config_chosen_on_test_seeds(
    experiment, algorithm, tmp_path
):
    assert main(["sweep", experiment, *TINY_OFF_POLICY_SWEEP, "--results-dir", str(tmp_path)]) == 0
    (sweep_dir,) = (tmp_path / experiment).iterdir()
    study = optuna.load_study(study_name=experiment, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    best_file = (sweep_dir / "best_config.yaml").read_text()
    assert "held-out test seeds" in best_file
    best = yaml.safe_load(best_file)
    assert best["algorithm"] == algorithm
    assert "gradient_steps" in best["config"]
