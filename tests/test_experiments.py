"""Experiment files: every shipped one loads; overrides reach the right keys."""

import pytest

from rlsweep.experiment.files import list_experiments, load_experiment, parse_assignment
from rlsweep.trainables.config import ConfigError


@pytest.mark.parametrize("name", list_experiments())
def test_every_shipped_experiment_loads_and_samples_valid_configs(name):
    experiment = load_experiment(name)
    assert experiment.name == name


def test_dotted_overrides_reach_nested_keys():
    experiment = load_experiment("cartpole_ppo", {"stop.timesteps_total": 1234, "config.lr": 0.01})
    assert experiment.stop.timesteps_total == 1234
    assert experiment.fixed_config["lr"] == 0.01


def test_fixed_config_overlays_resources_and_env():
    experiment = load_experiment("cartpole_ppo", {"resources.num_workers": 1})
    assert experiment.fixed_config["num_workers"] == 1
    assert experiment.fixed_config["env"] == "CartPole-v1"


def test_assignments_parse_values_as_yaml():
    assert parse_assignment("lr=1e-3") == ("lr", 1e-3)
    assert parse_assignment("hidden_sizes=[32, 32]") == ("hidden_sizes", [32, 32])
    assert parse_assignment("scheduler={type: fifo}") == ("scheduler", {"type": "fifo"})


def test_assignment_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignment("lr")


def test_impossible_gpu_request_is_rejected():
    experiment = load_experiment("cartpole_ppo", {"resources.num_gpus": 2})
    with pytest.raises(ConfigError, match="needs 2 GPUs but the cluster has 0"):
        experiment.check_resources(cluster_cpus=2, cluster_gpus=0)
