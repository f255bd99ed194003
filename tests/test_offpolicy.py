"""DQN and SAC outside Tune: configs, exploration schedules, checkpoints with and without the buffer."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsweep.trainables import DQN, SAC, ConfigError, DQNConfig, load_policy
from rlsweep.trainables.config import build_config

DQN_TINY = {
    "env": "CartPole-v1",
    "hidden_sizes": [16],
    "learning_starts": 300,
    "timesteps_per_iteration": 256,  # two iterations start learning, one alone does not
    "evaluation_interval": 0,
}
SAC_TINY = {
    "env": "Pendulum-v1",
    "hidden_sizes": [16, 16],
    "batch_size": 32,
    "learning_starts": 100,
    "timesteps_per_iteration": 200,
    "evaluation_interval": 0,
}


def _trained(algorithm, config, checkpoint_dir, iterations=2):
    algo = algorithm(config=dict(config))
    for _ in range(iterations):
        algo.train()
    return algo, algo.save(str(checkpoint_dir)).checkpoint.path


def test_dqn_on_box_actions_names_the_env_and_the_space():
    with pytest.raises(
        ConfigError,
        match=r"env 'Pendulum-v1' has action space Box\(.*\), which DQN cannot act in "
        r"\(DQN needs Discrete actions\); use PPO or SAC",
    ):
        DQN(config={"env": "Pendulum-v1"})


def test_sac_on_discrete_actions_names_the_env_and_the_space():
    with pytest.raises(
        ConfigError,
        match=r"env 'CartPole-v1' has action space Discrete\(2\), which SAC cannot act in "
        r"\(SAC needs Box actions\); use PPO or DQN",
    ):
        SAC(config={"env": "CartPole-v1"})


def test_learning_starts_beyond_the_buffer_is_rejected():
    with pytest.raises(
        ConfigError, match=r"'learning_starts' \(5000\) must not exceed 'buffer_size' \(1000\)"
    ):
        build_config(DQNConfig, {"buffer_size": 1000, "learning_starts": 5000})


def test_epsilon_decays_linearly_then_stays_final():
    algo = DQN(config={**DQN_TINY, "exploration_timesteps": 1000, "exploration_final_eps": 0.1})
    assert algo.sampling_weights()["epsilon"] == 1.0
    algo.timesteps_total = 500
    assert algo.sampling_weights()["epsilon"] == pytest.approx(0.55)
    algo.timesteps_total = 5000
    assert algo.sampling_weights()["epsilon"] == pytest.approx(0.1)
    algo.stop()


def test_sac_acts_uniformly_only_before_learning_starts():
    algo = SAC(config=dict(SAC_TINY))
    assert algo.sampling_weights()["uniform_actions"]
    algo.train()
    assert not algo.sampling_weights()["uniform_actions"]
    algo.stop()


def test_results_carry_loss_keys_as_nan_before_learning_starts():
    algo = DQN(config={**DQN_TINY, "learning_starts": 10_000, "buffer_size": 10_000})
    result = algo.train()
    algo.stop()
    assert np.isnan(result["td_loss"])
    assert np.isnan(result["q_mean"])


def test_every_valid_env_step_becomes_one_transition():
    algo = DQN(config={**DQN_TINY, "n_step": 1})
    (rollout,) = algo.workers.sample(algo.sampling_weights(), num_steps=64)
    algo.learn([rollout])
    algo.stop()
    # Every env step but the autoreset steps (which follow an episode's end) is a transition.
    assert len(algo.replay_buffer) == rollout.valid.sum() < rollout.valid.size


def test_dqn_restore_recovers_networks_optimizer_and_counters(tmp_path):
    algo, checkpoint = _trained(DQN, DQN_TINY, tmp_path)
    restored = DQN(config=dict(DQN_TINY))
    restored.restore(checkpoint)
    for key, value in algo.q_target.state_dict().items():
        assert torch.equal(value, restored.q_target.state_dict()[key]), key
    for key, value in algo.q_network.state_dict().items():
        assert torch.equal(value, restored.q_network.state_dict()[key]), key
    assert (
        restored.optimizer.state_dict()["state"][0]["step"] == algo.optimizer.state_dict()["state"][0]["step"]
    )
    assert restored.timesteps_total == algo.timesteps_total
    algo.stop()
    restored.stop()


def test_checkpoint_without_the_buffer_restarts_filling_it_before_updating(tmp_path):
    algo, checkpoint = _trained(DQN, DQN_TINY, tmp_path)
    algo.stop()
    restored = DQN(config=dict(DQN_TINY))
    restored.restore(checkpoint)
    assert len(restored.replay_buffer) == 0
    assert np.isnan(restored.train()["td_loss"])
    restored.stop()


def test_checkpoint_with_the_buffer_resumes_updates_at_once(tmp_path):
    config = {**DQN_TINY, "checkpoint_replay_buffer": True}
    algo, checkpoint = _trained(DQN, config, tmp_path)
    restored = DQN(config=dict(config))
    restored.restore(checkpoint)
    np.testing.assert_array_equal(
        restored.replay_buffer.state_dict(True)["transitions"][0].obs["vector"],
        algo.replay_buffer.state_dict(True)["transitions"][0].obs["vector"],
    )
    algo.stop()
    assert np.isfinite(restored.train()["td_loss"])
    restored.stop()


def test_sac_restore_recovers_critics_temperature_and_buffer(tmp_path):
    config = {**SAC_TINY, "checkpoint_replay_buffer": True}
    algo, checkpoint = _trained(SAC, config, tmp_path)
    restored = SAC(config=dict(config))
    restored.restore(checkpoint)
    for key, value in algo.critic_target.state_dict().items():
        assert torch.equal(value, restored.critic_target.state_dict()[key]), key
    assert restored.log_alpha.item() == algo.log_alpha.item()
    assert len(restored.replay_buffer) == len(algo.replay_buffer) > 0
    algo.stop()
    restored.stop()


@pytest.mark.parametrize(("algorithm", "config"), [(DQN, DQN_TINY), (SAC, SAC_TINY)])
def test_load_policy_acts_within_the_action_space(tmp_path, algorithm, config):
    algo, checkpoint = _trained(algorithm, config, tmp_path, iterations=1)
    policy = load_policy(checkpoint)
    env = gym.make(config["env"])
    obs, _ = env.reset(seed=0)
    action = policy.compute_single_action(obs)
    assert env.action_space.contains(action)
    assert np.array_equal(action, algo.compute_single_action(obs))
    algo.stop()


@pytest.mark.parametrize(("algorithm", "config"), [(DQN, DQN_TINY), (SAC, SAC_TINY)])
def test_gpu_request_learns_on_cuda_or_falls_back_to_the_cpu(algorithm, config):
    algo = algorithm(config={**config, "num_gpus": 1, "learning_starts": 50})
    result = algo.train()
    algo.stop()
    assert algo.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert all(np.isfinite(result[key]) for key in algorithm.update_metrics)
