import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsweep.trainables import PPO, CheckpointError, load_policy

TINY = {
    "env": "CartPole-v1",
    "num_envs_per_worker": 4,
    "rollout_length": 32,
    "minibatch_size": 64,
    "normalize_obs": True,
    "evaluation_interval": 0,
}


@pytest.fixture
def trained(tmp_path):
    algo = PPO(config=dict(TINY))
    for _ in range(3):
        algo.train()
    checkpoint = algo.save(str(tmp_path / "ckpt")).checkpoint.path
    yield algo, checkpoint
    algo.stop()


def test_restore_recovers_weights_optimizer_normalizer_and_counters(trained):
    algo, checkpoint = trained
    restored = PPO(config=dict(TINY))
    restored.restore(checkpoint)
    for key, value in algo.policy.network.state_dict().items():
        assert torch.equal(value, restored.policy.network.state_dict()[key]), key
    assert (
        restored.optimizer.state_dict()["state"][0]["step"] == algo.optimizer.state_dict()["state"][0]["step"]
    )
    np.testing.assert_array_equal(restored.policy.normalizer.mean, algo.policy.normalizer.mean)
    assert restored.timesteps_total == algo.timesteps_total
    assert restored.iteration == algo.iteration
    restored.stop()


def test_training_continues_from_the_restored_state(trained):
    algo, checkpoint = trained
    restored = PPO(config=dict(TINY))
    restored.restore(checkpoint)
    result = restored.train()
    assert result["timesteps_total"] > algo.timesteps_total
    assert result["training_iteration"] == 4
    restored.stop()


def test_load_policy_acts_outside_tune(trained):
    algo, checkpoint = trained
    policy = load_policy(checkpoint)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    assert policy.compute_single_action(obs) == algo.compute_single_action(obs)
    assert env.action_space.contains(policy.compute_single_action(obs))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "nope")


def test_directory_without_state_is_not_an_rlsweep_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is not an rlsweep checkpoint"):
        load_policy(tmp_path)


def test_discrete_observations_are_one_hot_encoded(tmp_path):
    algo = PPO(config={**TINY, "env": "FrozenLake-v1", "normalize_obs": False})
    algo.train()
    assert algo.policy.network.actor[0].weight.shape == (1, 16, 64)  # [seeds, in, out]
    assert 0 <= algo.compute_single_action(3) < 4
    algo.stop()
