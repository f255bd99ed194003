import pytest

from rlsweep.trainables import ConfigError, PPOConfig
from rlsweep.trainables.config import build_config


def test_defaults_build_a_valid_config():
    config = build_config(PPOConfig, {})
    assert config.env == "CartPole-v1"


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown config key 'gae_lamda'.*did you mean 'gae_lambda'"):
        build_config(PPOConfig, {"gae_lamda": 0.9})


def test_out_of_range_value_names_the_key_and_interval():
    with pytest.raises(ConfigError, match=r"'gamma' must be in \(0, 1\], got 1.5"):
        build_config(PPOConfig, {"gamma": 1.5})


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match="'num_epochs' must be an integer"):
        build_config(PPOConfig, {"num_epochs": "ten"})


def test_bool_is_not_accepted_as_a_number():
    with pytest.raises(ConfigError, match="'lr' must be a number"):
        build_config(PPOConfig, {"lr": True})


def test_minibatch_larger_than_batch_is_rejected():
    with pytest.raises(ConfigError, match=r"'minibatch_size' \(64\) must not exceed the batch size"):
        build_config(PPOConfig, {"num_envs_per_worker": 2, "rollout_length": 16, "minibatch_size": 64})


def test_unknown_env_is_named():
    with pytest.raises(ConfigError, match="unknown env 'NoSuchEnv-v0'"):
        build_config(PPOConfig, {"env": "NoSuchEnv-v0"})


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ConfigError, match="'activation' must be one of"):
        build_config(PPOConfig, {"activation": "swish"})


def test_lists_become_tuples_and_ints_become_floats():
    config = build_config(PPOConfig, {"hidden_sizes": [32, 32], "lr": 1})
    assert config.hidden_sizes == (32, 32)
    assert isinstance(config.lr, float)


def test_tune_bookkeeping_keys_are_ignored():
    assert build_config(PPOConfig, {"__trial_info__": object()}).lr == PPOConfig.lr
