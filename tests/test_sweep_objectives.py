"""What a sweep optimizes and how it starts, through real sweeps: the score the search sees,
warm-start points, a two-env objective, PB2, and `rlsweep test` on a finished sweep."""

import shutil

import optuna
import pandas as pd
import pytest
import yaml

from rlsweep.cli import main

pytestmark = pytest.mark.usefixtures("ray_session")

QUICK = (
    "config: {num_envs_per_worker: 4, rollout_length: 16, minibatch_size: 32,\n"
    "         evaluation_interval: 1, evaluation_num_episodes: 2}\n"
)
"""Trial config for iterations of a fraction of a second."""


def _sweep(tmp_path, text: str, *extra: str) -> int:
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return main(["sweep", str(path), "--results-dir", str(tmp_path), "--no-mlflow", *extra])


def _study(sweep_dir, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def test_warm_start_points_run_first_and_the_search_is_told_the_score(tmp_path):
    text = (
        "name: warm\n"
        "search_space: ppo\n"
        "search_params: {num_envs_per_worker: {choices: [4]}, rollout_length: {choices: [16]}}\n"
        "config: {evaluation_interval: 1, evaluation_num_episodes: 2}\n"
        "points_to_evaluate:\n"
        "  - {gamma: 0.98, lr: 0.002, hidden_sizes: [32, 32], minibatch_size: 32}\n"
        "score: {type: last_k, k: 2}\n"
        "num_samples: 2\n"
        "max_concurrent_trials: 1\n"
        "stop: {training_iteration: 3}\n"
    )
    assert _sweep(tmp_path, text) == 0
    (sweep_dir,) = (tmp_path / "warm").iterdir()
    first = _study(sweep_dir, "warm").trials[0]
    assert first.params["one_minus_gamma"] == pytest.approx(0.02)
    assert first.params["net_arch"] == "tiny" and first.params["num_minibatches"] == 2
    trials = pd.read_csv(sweep_dir / "trials.csv")
    (warm,) = trials[trials["config/lr"] == 0.002].to_dict("records")
    assert warm["config/gamma"] == pytest.approx(0.98)
    progress = pd.read_csv(sweep_dir / f"PPO_{warm['trial_id']}" / "progress.csv")
    last_two = progress["evaluation/episode_return_mean"].tail(2).mean()
    assert first.value == pytest.approx(last_two)  # last_k of the metric, not its final value


def test_a_two_env_objective_trains_every_env_and_scores_their_normalized_mean(tmp_path):
    text = (
        "name: two_envs\n"
        "envs: {CartPole-v1: [0, 500], Acrobot-v1: [-500, -60]}\n"
        "search_space: fixed\n" + QUICK + "num_samples: 1\n"
        "stop: {training_iteration: 2}\n"
    )
    assert _sweep(tmp_path, text) == 0
    (sweep_dir,) = (tmp_path / "two_envs").iterdir()
    (row,) = pd.read_csv(sweep_dir / "trials.csv").to_dict("records")
    cartpole, acrobot = row["envs/CartPole-v1/score"], row["envs/Acrobot-v1/score"]
    assert row["score"] == pytest.approx((cartpole / 500 + (acrobot + 500) / 440) / 2)
    assert row["envs/CartPole-v1/timesteps_total"] == row["envs/Acrobot-v1/timesteps_total"] > 0


def test_pb2_trains_a_population_within_bounds_read_from_the_space(tmp_path):
    text = (
        "name: pb2\n"
        "search_space: ppo\n"
        "search_params: {num_envs_per_worker: {choices: [4]}, rollout_length: {choices: [16]},\n"
        "                lr: {low: 1.0e-4, high: 1.0e-3}}\n"
        "config: {evaluation_interval: 1, evaluation_num_episodes: 2}\n"
        "num_samples: 2\n"
        "scheduler: {type: pb2, perturbation_interval: 2, hyperparams: [lr]}\n"
        "stop: {training_iteration: 6}\n"
    )
    assert _sweep(tmp_path, text) == 0
    (sweep_dir,) = (tmp_path / "pb2").iterdir()
    trials = pd.read_csv(sweep_dir / "trials.csv")
    assert list(trials["ending"]) == ["reached a stop condition"] * 2
    assert trials["config/lr"].between(1e-4, 1e-3).all()
    assert [t.state for t in _study(sweep_dir, "pb2").trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_rlsweep_test_retests_a_finished_sweep_and_rewrites_its_best_config(finished_sweep, tmp_path, capsys):
    sweep_dir = tmp_path / "cartpole_ppo" / finished_sweep.name
    shutil.copytree(finished_sweep, sweep_dir)
    assert main(["test", str(sweep_dir), "--top", "1", "--seeds", "3", "--no-mlflow"]) == 0
    assert "Held-out test: top 1 configs on 3 new seeds" in capsys.readouterr().out
    assert (sweep_dir / "test-2").is_dir()
    header = (sweep_dir / "best_config.yaml").read_text().splitlines()[1]
    assert header.startswith("# chosen on 3 held-out test seeds")
    assert yaml.safe_load((sweep_dir / "best_config.yaml").read_text())["algorithm"] == "PPO"


def test_a_trial_whose_first_iterations_end_no_episode_reports_a_nan_score_until_one_does(tmp_path):
    text = (
        "name: long_episodes\n"
        "env: Pendulum-v1\n"  # every episode is 200 steps; an iteration here is 64
        "search_space: fixed\n"
        "config: {num_envs_per_worker: 1, rollout_length: 64, minibatch_size: 32, evaluation_interval: 0}\n"
        "metric: episode_return_mean\n"
        "num_samples: 1\n"
        "stop: {training_iteration: 5}\n"
    )
    assert _sweep(tmp_path, text) == 0
    (sweep_dir,) = (tmp_path / "long_episodes").iterdir()
    (row,) = pd.read_csv(sweep_dir / "trials.csv").to_dict("records")
    progress = pd.read_csv(sweep_dir / f"PPO_{row['trial_id']}" / "progress.csv")
    assert progress["score"].head(3).isna().all() and progress["episode_return_mean"].head(3).isna().all()
    assert row["score"] == pytest.approx(progress["episode_return_mean"].iloc[-1])
