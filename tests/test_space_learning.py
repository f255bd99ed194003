"""Structured observations and actions learn, and masked actions are never taken.

Every env in `space_envs` pays 8 per episode for reading its observation and about a third
of that for acting blind; the masked ones raise on a forbidden action, and with
`max_worker_restarts: 0` one such action fails the trial.
"""

import pytest

from rlsweep import DQN, PPO

PPO_FAST = {
    "num_envs_per_worker": 16,
    "rollout_length": 32,
    "minibatch_size": 128,
    "lr": 3e-3,
    "evaluation_interval": 0,
    "max_worker_restarts": 0,
}


def _train(algorithm, config, iterations):
    algo = algorithm(config=config)
    for _ in range(iterations):
        result = algo.train()
    algo.stop()
    return result


@pytest.mark.parametrize(
    "env",
    [
        "space_envs:DictMultiDiscrete-v0",
        "space_envs:TupleMultiBinary-v0",
        "space_envs:MaskInObservation-v0",
        "space_envs:MaskInInfo-v0",
    ],
)
def test_ppo_learns_structured_spaces_and_masks(env):
    result = _train(PPO, {**PPO_FAST, "env": env}, iterations=20)
    assert result["episode_return_mean"] > 7
    assert result["num_worker_restarts"] == 0


@pytest.mark.parametrize("env", ["space_envs:MaskInObservation-v0", "space_envs:MaskInInfo-v0"])
def test_dqn_never_takes_a_masked_action_and_learns(env):
    config = {
        "env": env,
        "learning_starts": 500,
        "timesteps_per_iteration": 1000,
        "exploration_timesteps": 3000,
        "hidden_sizes": [64, 64],
        "evaluation_interval": 4,
        "evaluation_num_episodes": 4,
        "max_worker_restarts": 0,
    }
    result = _train(DQN, config, iterations=8)
    assert result["episode_return_mean"] > 7
    assert result["evaluation/episode_return_mean"] > 7
