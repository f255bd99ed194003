"""Atari: the standard preprocessing, the learner's signals next to the raw game score, and
PPO and DQN on ALE/Pong-v5 through Tune."""

import gymnasium as gym
import numpy as np
import pytest
from ray import tune

pytest.importorskip("ale_py", reason='Atari needs ale-py: pip install "rlsweep[atari]"')

from rlsweep.experiment.files import load_experiment
from rlsweep.trainables import DQN, PPO, ConfigError
from rlsweep.trainables.envs.atari import AtariConfig, AtariGames
from rlsweep.trainables.envs.build import env_spaces, episode_stats, make_vector_env

PONG = "ALE/Pong-v5"


def test_pong_observations_are_four_stacked_84x84_grayscale_uint8_frames():
    env = make_vector_env(PONG, 2)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, reward, terminated, truncated, _ = env.step(np.zeros(2, np.int64))
    assert env.single_observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert env.single_action_space == gym.spaces.Discrete(6)
    assert reward.dtype == np.float32 and terminated.dtype == truncated.dtype == bool
    env.close()


def test_preprocessing_steps_are_switched_in_env_config():
    observation_space, _ = env_spaces(PONG, {"screen_size": 64, "frame_stack": 2, "grayscale": False})
    assert observation_space.shape == (2 * 3, 64, 64)


def test_a_misspelt_env_config_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown config key 'env_config.noop_maximum'.*'noop_max'"):
        PPO(config={"env": PONG, "env_config": {"noop_maximum": 10}})


def test_a_truncated_game_reports_its_raw_score_and_length():
    env = make_vector_env(PONG, 2, {"max_episode_frames": 400})  # 100 agent steps
    env.reset(seed=0)
    rewards, ended = 0.0, None
    for _ in range(101):
        _, reward, _, truncated, info = env.step(np.random.default_rng(0).integers(0, 6, 2))
        rewards += reward[0]
        if len(episode_stats(info)[0]):
            ended = (info["episode"]["r"][0], info["episode"]["l"][0], truncated[0])
            break
    assert ended == (rewards, 100, True)
    env.close()


class ScriptedALE(gym.vector.VectorEnv):
    """Stands in for ale-py's vector env: one env whose steps return scripted raw rewards and
    lives, and which records the actions it was sent."""

    def __init__(self, rewards, lives, game_over):
        self.num_envs = 1
        self.single_observation_space = gym.spaces.Box(0, 255, (4, 2, 2), np.uint8)
        self.single_action_space = gym.spaces.Discrete(4)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 1)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 1)
        self.script = list(zip(rewards, lives, game_over, strict=True))
        self.sent = []
        self.ale = self

    def get_action_set(self):
        return [type("Action", (), {"name": name}) for name in ("NOOP", "FIRE", "RIGHT", "LEFT")]

    def reset(self, *, seed=None, options=None):
        return np.zeros((1, 4, 2, 2), np.uint8), {"lives": np.array([3])}

    def step(self, actions):
        self.sent.append(int(actions[0]))
        reward, lives, game_over = self.script.pop(0)
        info = {"lives": np.array([lives])}
        return (
            np.zeros((1, 4, 2, 2), np.uint8),
            np.array([reward]),
            np.array([bool(game_over)]),
            np.array([False]),
            info,
        )


def test_the_learner_sees_clipped_rewards_and_lost_lives_while_the_score_stays_raw():
    # Steps: +4, a life lost with +7, the restart step, -1, game over with +2, the reset step.
    native = ScriptedALE(rewards=[4, 7, 0, -1, 2, 0], lives=[3, 2, 2, 2, 0, 3], game_over=[0, 0, 0, 0, 1, 0])
    env = AtariGames(native, AtariConfig())
    env.reset(seed=0)
    steps = [env.step(np.array([3])) for _ in range(6)]
    assert [float(step[1][0]) for step in steps] == [1, 1, 0, -1, 1, 0]
    assert [bool(step[2][0]) for step in steps] == [False, True, False, False, True, False]
    assert native.sent == [3, 3, 1, 3, 3, 3]  # FIRE restarts the game after the lost life
    returns, lengths = episode_stats(steps[4][-1])
    assert (returns.tolist(), lengths.tolist()) == ([12.0], [5])


def test_without_episodic_life_and_clipping_the_learner_sees_the_game_as_it_is():
    native = ScriptedALE(rewards=[4, 7, 0], lives=[3, 2, 2], game_over=[0, 0, 0])
    env = AtariGames(native, AtariConfig(episodic_life=False, clip_rewards=False))
    env.reset(seed=0)
    steps = [env.step(np.array([2])) for _ in range(3)]
    assert [float(step[1][0]) for step in steps] == [4, 7, 0]
    assert not any(bool(step[2][0]) for step in steps)
    assert native.sent == [2, 2, 2]


PONG_PPO = {
    "env": PONG,
    "num_workers": 1,
    "num_envs_per_worker": 2,
    "rollout_length": 16,
    "minibatch_size": 16,
    "num_epochs": 1,
    "hidden_sizes": [64],
    "activation": "relu",
    "evaluation_interval": 0,
}
PONG_DQN = {
    "env": PONG,
    "num_workers": 1,
    "num_envs_per_worker": 2,
    "hidden_sizes": [64],
    "buffer_size": 1000,
    "batch_size": 16,
    "learning_starts": 32,
    "train_freq": 8,
    "gradient_steps": 2,
    "timesteps_per_iteration": 48,
    "evaluation_interval": 0,
}


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize(("algorithm", "config"), [(PPO, PONG_PPO), (DQN, PONG_DQN)], ids=["PPO", "DQN"])
def test_pong_trains_two_iterations_through_tune_with_a_worker_actor(tmp_path, algorithm, config):
    analysis = tune.run(
        algorithm, config=config, stop={"training_iteration": 2}, storage_path=str(tmp_path), verbose=0
    )
    result = analysis.trials[0].last_result
    assert result["training_iteration"] == 2
    assert result["timesteps_total"] >= 64
    learner_metric = "policy_loss" if algorithm is PPO else "td_loss"
    assert np.isfinite(result[learner_metric])


@pytest.mark.parametrize("name", ["pong_ppo", "breakout_ppo", "pong_dqn"])
def test_shipped_atari_experiments_load_on_a_machine_without_a_gpu(name):
    experiment = load_experiment(name)
    assert experiment.env.startswith("ALE/")
    assert experiment.resources.num_gpus == 1
    assert experiment.stop.target is not None
