"""Image observations of any env: uint8 from the env to the learner's device, a CNN that
learns from pixels, checkpoints of CNN policies, and the learner's GPU request."""

import functools
import logging

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsweep.experiment.files import load_experiment
from rlsweep.trainables import DQN, PPO, SAC, ConfigError, load_policy
from rlsweep.trainables.envs.build import env_spaces
from rlsweep.trainables.models.encoders import CNNSpec
from rlsweep.trainables.models.networks import ActorCritic, NetworkSpec
from rlsweep.trainables.models.observations import ObservationLayout
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.ppo import PPOConfig
from rlsweep.trainables.sampling.worker_group import WorkerGroup
from rlsweep.trainables.seeds import generators

SMALL_CNN = {"cnn_channels": [8, 16], "cnn_kernels": [3, 3], "cnn_strides": [1, 1]}
"""A CNN for the 10x10 pictures of `image_envs` (the Nature CNN needs 36x36 at least)."""

PPO_DOTS = {
    **SMALL_CNN,
    "env": "image_envs:DotSide-v0",
    "num_envs_per_worker": 16,
    "rollout_length": 32,
    "minibatch_size": 128,
    "lr": 1e-3,
    "hidden_sizes": [64],
    "activation": "relu",
    "evaluation_interval": 0,
    "seed": 3,
}
DQN_DOTS = {
    **SMALL_CNN,
    "env": "image_envs:DotSide-v0",
    "hidden_sizes": [32],
    "buffer_size": 2000,
    "learning_starts": 64,
    "timesteps_per_iteration": 128,
    "evaluation_interval": 0,
}


def _train(algorithm, config, iterations):
    algo = algorithm(config=config)
    for _ in range(iterations):
        result = algo.train()
    return algo, result


@pytest.mark.parametrize("env", ["image_envs:DotSide-v0", "image_envs:DotSideWithVector-v0"])
def test_ppo_learns_which_side_the_dot_is_on_from_pixels(env):
    algo, _ = _train(PPO, {**PPO_DOTS, "env": env, "evaluation_num_episodes": 32}, iterations=16)
    greedy = algo.evaluate()
    algo.stop()
    assert greedy["episode_return_mean"] > 7.5  # blind: 4


def test_a_dict_observation_routes_its_image_through_the_cnn():
    observation_space, _ = env_spaces("image_envs:DotSideWithVector-v0")
    layout = ObservationLayout.of(observation_space)
    spec = NetworkSpec(layout, (16,), "relu", CNNSpec((4,), (3,), (1,)))
    network = ActorCritic(generators([0]), spec, 2, False)
    vector = torch.zeros(1, 1, 2)
    left, right = torch.zeros(2, 1, 1, 1, 10, 10, dtype=torch.uint8)
    left[..., 0:2, 0:2], right[..., 0:2, 8:10] = 255, 255
    assert not torch.equal(
        network.policy_params({"image": left, "vector": vector}),
        network.policy_params({"image": right, "vector": vector}),
    )
    assert network.torso[0].cnn is not None


@pytest.mark.usefixtures("ray_session")
def test_frames_stay_uint8_through_worker_actors_and_the_object_store():
    config = PPOConfig(**PPO_DOTS)
    observation_space, action_space = env_spaces(config.env)
    make_policy = functools.partial(ActorCriticPolicy, config, observation_space, action_space, "cpu", [0])
    workers = WorkerGroup(1, config.env, {}, 4, [0], make_policy, max_restarts=0)
    (rollout,) = workers.sample(make_policy().get_weights(), 8)
    workers.stop()
    assert rollout.obs["image"].dtype == np.uint8
    assert rollout.obs["image"].shape == (9, 1, 4, 1, 10, 10)


def test_frames_stay_uint8_until_the_ppo_learner_batch():
    algo = PPO(config=PPO_DOTS)
    (rollout,) = algo.workers.sample(algo.sampling_weights(), 4)
    batch = algo._batch([rollout])
    algo.stop()
    assert rollout.obs["image"].dtype == np.uint8
    assert batch["obs"]["image"].dtype == torch.uint8  # the encoder scales it on the learner's device


def test_replay_buffer_and_its_checkpoint_keep_frames_as_uint8(tmp_path):
    algo, _ = _train(DQN, {**DQN_DOTS, "checkpoint_replay_buffer": True}, iterations=1)
    checkpoint = algo.save(str(tmp_path)).checkpoint.path
    buffer = algo.replay_buffer
    algo.stop()
    assert buffer.frames.frames.dtype == np.uint8
    assert buffer.sample(4).obs["image"].dtype == np.uint8
    state = torch.load(f"{checkpoint}/rlsweep_state.pt", weights_only=False)["state"]
    assert all(frames.dtype == np.uint8 for frames in state["learner"]["replay_buffer"]["frames"]["frames"])


def test_dqn_learns_which_side_the_dot_is_on_from_pixels():
    config = {**DQN_DOTS, "exploration_timesteps": 1500, "timesteps_per_iteration": 1000}
    algo, result = _train(DQN, config, iterations=4)
    algo.stop()
    assert result["episode_return_mean"] > 7


def test_sac_acts_on_images_with_box_actions():
    config = {
        **SMALL_CNN,
        "env": "image_envs:DotSideContinuous-v0",
        "hidden_sizes": [32],
        "batch_size": 16,
        "learning_starts": 64,
        "timesteps_per_iteration": 128,
        "evaluation_interval": 0,
    }
    algo, result = _train(SAC, config, iterations=2)
    algo.stop()
    assert np.isfinite(result["critic_loss"])


@pytest.mark.parametrize("algorithm", [PPO, DQN])
def test_a_checkpointed_cnn_policy_restores_and_acts(tmp_path, algorithm):
    config = PPO_DOTS if algorithm is PPO else DQN_DOTS
    algo, _ = _train(algorithm, config, iterations=1)
    checkpoint = algo.save(str(tmp_path)).checkpoint.path
    policy = load_policy(checkpoint)
    env = gym.make(config["env"])
    obs, _ = env.reset(seed=0)
    action = policy.compute_single_action(obs)
    assert env.action_space.contains(action)
    assert action == algo.compute_single_action(obs)
    algo.stop()


def test_gpu_request_for_a_cnn_learner_uses_cuda_or_falls_back_to_the_cpu_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        algo, result = _train(PPO, {**PPO_DOTS, "num_gpus": 0.25}, iterations=1)
    algo.stop()
    assert np.isfinite(result["policy_loss"])
    if torch.cuda.is_available():
        assert algo.device.type == "cuda"
    else:
        assert algo.device.type == "cpu"
        assert "CUDA is not available" in caplog.text


def test_a_quarter_gpu_per_trial_packs_four_trials_on_one_gpu():
    bundles = PPO.default_resource_request({"num_gpus": 0.25, "num_workers": 2}).bundles
    assert bundles == [{"CPU": 1, "GPU": 0.25}, {"CPU": 1}, {"CPU": 1}]
    experiment = load_experiment("cartpole_ppo", {"resources.num_gpus": 0.25, "resources.num_workers": 2})
    experiment.check_resources(cluster_cpus=4 * experiment.resources.cpus_per_trial, cluster_gpus=1)
    assert 4 * bundles[0]["GPU"] == 1


def test_a_cnn_that_would_shrink_the_image_to_nothing_names_the_keys():
    with pytest.raises(ConfigError, match=r"'cnn_kernels' \[8, 4, 3\] and 'cnn_strides' \[4, 2, 1\]"):
        PPO(
            config={
                **PPO_DOTS,
                "cnn_channels": [32, 64, 64],
                "cnn_kernels": [8, 4, 3],
                "cnn_strides": [4, 2, 1],
            }
        )
