"""DQN and SAC through Ray Tune: metrics, worker actors, and learning within a fixed budget."""

import math

import pytest
from ray import tune

from rlsweep.trainables import DQN, SAC

pytestmark = pytest.mark.usefixtures("ray_session")

EPISODE_METRICS = [
    "episode_return_mean",
    "episode_len_mean",
    "num_episodes",
    "timesteps_total",
    "env_steps_per_s",
]


def _run(trainable, config, stop, tmp_path):
    analysis = tune.run(trainable, config=config, stop=stop, storage_path=str(tmp_path), verbose=0)
    return analysis.trials[0].last_result


def test_dqn_with_a_worker_actor_reports_episode_and_learner_metrics(tmp_path):
    config = {
        "env": "CartPole-v1",
        "num_workers": 1,
        "learning_starts": 100,
        "timesteps_per_iteration": 300,
        "evaluation_interval": 1,
        "evaluation_num_episodes": 2,
    }
    result = _run(DQN, config, {"training_iteration": 2}, tmp_path)
    expected = [
        *EPISODE_METRICS,
        "td_loss",
        "q_mean",
        "epsilon",
        "buffer_size",
        "evaluation/episode_return_mean",
    ]
    assert not [key for key in expected if key not in result]
    assert math.isfinite(result["td_loss"])  # updates ran


def test_sac_with_a_worker_actor_reports_episode_and_learner_metrics(tmp_path):
    config = {
        "env": "Pendulum-v1",
        "num_workers": 1,
        "hidden_sizes": [32, 32],
        "timesteps_per_iteration": 200,
        "evaluation_interval": 0,
    }
    result = _run(SAC, config, {"training_iteration": 2}, tmp_path)
    expected = [*EPISODE_METRICS, "actor_loss", "critic_loss", "alpha", "entropy", "q_mean", "buffer_size"]
    assert not [key for key in expected if key not in result]
    assert 0 < result["alpha"] < 1  # the temperature moved from its start


@pytest.mark.parametrize("num_workers", [0, 1], ids=["in_process", "async_worker"])
def test_dqn_learns_cartpole_within_a_fixed_budget(tmp_path, num_workers):
    config = {
        "env": "CartPole-v1",
        "num_workers": num_workers,
        "seed": 0,
        "timesteps_per_iteration": 5000,
        "evaluation_interval": 0,
    }
    result = _run(DQN, config, {"timesteps_total": 30_000}, tmp_path)
    assert result["episode_return_mean"] > 200  # mean of the last 100 episodes; random play gets ~22


@pytest.mark.parametrize("num_workers", [0, 1], ids=["in_process", "async_worker"])
def test_sac_improves_on_its_initial_pendulum_return_within_a_fixed_budget(tmp_path, num_workers):
    config = {
        "env": "Pendulum-v1",
        "num_workers": num_workers,
        "seed": 0,
        "hidden_sizes": [64, 64],
        "lr": 1e-3,
        "tau": 0.01,
        "timesteps_per_iteration": 1000,
        "evaluation_interval": 1,
        "evaluation_num_episodes": 4,
    }
    untrained = SAC(config=config)
    initial_return = untrained.evaluate()["episode_return_mean"]
    untrained.stop()
    result = _run(SAC, config, {"timesteps_total": 3000}, tmp_path)
    assert result["evaluation/episode_return_mean"] > initial_return + 500  # about -1200 before
