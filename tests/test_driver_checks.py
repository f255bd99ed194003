"""What the env's spaces and the config decide is checked on the driver, once, before Ray
starts: a network that cannot fit the observations is one line, not a failed trial."""

import gymnasium as gym
import pytest

from rlsweep.cli import main
from rlsweep.trainables import PPO, ConfigError
from rlsweep.trainables.config import build_config

NATURE_CNN = {"cnn_channels": [32, 64, 64], "cnn_kernels": [8, 4, 3], "cnn_strides": [4, 2, 1]}
SHRINKS = "'cnn_kernels' [8, 4, 3] and 'cnn_strides' [4, 2, 1] shrink the 10x10 image"


@pytest.fixture
def ray_must_not_start(monkeypatch):
    """Fails a test that reaches Ray: its checks must end the command before it connects
    (the session's shared Ray may already be up, so `ray.is_initialized` cannot tell)."""

    def connect_ray(*args, **kwargs):
        raise AssertionError("the command connected to Ray")

    monkeypatch.setattr("rlsweep.pipeline.runner.connect_ray", connect_ray)
    monkeypatch.setattr("rlsweep.tuning.cluster.connect_ray", connect_ray)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_train_with_a_cnn_that_does_not_fit_the_image_fails_in_one_line_before_ray_starts(
    capsys, ray_must_not_start
):
    overrides = [arg for key, value in NATURE_CNN.items() for arg in ("--set", f"{key}={value}")]
    code = main(["train", "--algo", "PPO", "--env", "image_envs:DotSide-v0", *overrides])
    assert code == 2
    assert SHRINKS in _one_error_line(capsys)


def test_check_of_an_experiment_whose_cnn_does_not_fit_fails_in_one_line(
    tmp_path, capsys, ray_must_not_start
):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "name: dots\nenv: image_envs:DotSide-v0\nstop: {timesteps_total: 1000}\n"
        f"search_space: fixed\nconfig: {NATURE_CNN}\n"
    )
    assert main(["check", str(path)]) == 2
    assert SHRINKS in _one_error_line(capsys)


def test_an_action_mask_of_the_wrong_size_is_found_before_any_trial():
    observations = gym.spaces.Dict(
        {"board": gym.spaces.Box(0, 1, (9,)), "action_mask": gym.spaces.MultiBinary(8)}
    )
    config = build_config(PPO.config_class, {})
    with pytest.raises(ConfigError, match=r"'action_mask' has 8 entries but the action space Discrete\(9\)"):
        PPO.check_spaces(config, observations, gym.spaces.Discrete(9))
