"""The score: what the search, the schedulers and the best-trial choice all read, computed
inside the trial from the metric's evaluation history."""

import pytest
import torch

from rlsweep.experiment.files import experiment_from_dict
from rlsweep.experiment.score import ScoreHistory, ScoreSpec, score
from rlsweep.tuning.objective import objective_for

torch.set_num_threads(1)

HISTORY = [10.0, 200.0, 500.0, 300.0]
"""Four evaluations, oldest first: the last one is worse than the one before."""


def test_final_score_is_the_last_evaluation():
    assert score(HISTORY, ScoreSpec("final")) == 300.0


def test_last_k_score_is_the_mean_of_the_last_k_evaluations():
    assert score(HISTORY, ScoreSpec("last_k", k=2)) == 400.0


def test_last_k_score_of_a_short_history_is_the_mean_of_what_there_is():
    assert score([100.0, 200.0], ScoreSpec("last_k", k=5)) == 150.0


def test_auc_score_is_the_mean_evaluation_over_the_run():
    assert score(HISTORY, ScoreSpec("auc")) == 252.5


def test_auc_rewards_the_config_that_learned_sooner():
    fast, slow = [400.0, 500.0, 500.0], [10.0, 100.0, 500.0]
    spec = ScoreSpec("auc")
    assert score(fast, spec) > score(slow, spec)
    assert score(fast, ScoreSpec("final")) == score(slow, ScoreSpec("final"))


def test_each_seed_and_env_is_scored_under_its_own_prefix():
    history = ScoreHistory("evaluation/episode_return_mean", ScoreSpec("auc"))
    for value in (100.0, 300.0):
        history.record(
            {
                "evaluation/episode_return_mean": value,
                "seeds/1/evaluation/episode_return_mean": value / 2,
                "envs/Acrobot-v1/evaluation/episode_return_mean": -value,
                "episode_return_mean": 7.0,  # another metric: not scored
            }
        )
    assert history.scores() == {
        "score": 200.0,
        "seeds/1/score": 100.0,
        "envs/Acrobot-v1/score": -200.0,
    }


def _objective(score_spec: dict, evaluation_interval: int, envs: dict | None = None):
    where = {"envs": envs} if envs else {}
    experiment = experiment_from_dict(
        {
            "name": "t",
            **where,
            "search_space": "fixed",
            "score": score_spec,
            "config": {
                "num_envs_per_worker": 2,
                "rollout_length": 8,
                "minibatch_size": 16,
                "evaluation_interval": evaluation_interval,
                "evaluation_num_episodes": 1,
            },
            "stop": {"training_iteration": 3},
        }
    )
    return objective_for(experiment)(config=experiment.fixed_config)


def test_the_score_counts_an_evaluation_once_not_once_per_iteration():
    objective = _objective({"type": "auc"}, evaluation_interval=2)
    results = [objective.train() for _ in range(3)]
    objective.stop()
    evaluations = [results[0]["evaluation/episode_return_mean"], results[2]["evaluation/episode_return_mean"]]
    assert results[-1]["score"] == pytest.approx(sum(evaluations) / 2)


def test_a_restored_trial_keeps_its_score_history(tmp_path):
    objective = _objective({"type": "last_k", "k": 3}, evaluation_interval=1)
    for _ in range(2):
        objective.train()
    objective.save_checkpoint(str(tmp_path))
    restored = _objective({"type": "last_k", "k": 3}, evaluation_interval=1)
    restored.load_checkpoint(str(tmp_path))
    assert restored.history.values == objective.history.values
    objective.stop()
    restored.stop()


def test_two_envs_are_scored_on_the_mean_of_their_normalized_metrics():
    objective = _objective({"type": "final"}, 1, envs={"CartPole-v1": [0, 500], "Acrobot-v1": [-500, -100]})
    result = objective.train()
    objective.stop()
    cartpole = result["envs/CartPole-v1/evaluation/episode_return_mean"]
    acrobot = result["envs/Acrobot-v1/evaluation/episode_return_mean"]
    assert result["score"] == pytest.approx((cartpole / 500 + (acrobot + 500) / 400) / 2)
    assert result["envs/CartPole-v1/score"] == cartpole
    assert result["timesteps_total"] == result["envs/Acrobot-v1/timesteps_total"]
