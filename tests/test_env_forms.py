"""Every form a user's env takes, through `tune.run` with a rollout worker actor and through a
CLI sweep; what creators receive; Box2D and MuJoCo envs training for real."""

import json
import uuid
from pathlib import Path

import custom_envs
import gymnasium as gym
import pytest
import ray
from ray import tune

from rlsweep.cli import main
from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.trainables import PPO, SAC, load_policy
from rlsweep.trainables.envs.names import env_label

pytestmark = pytest.mark.usefixtures("ray_session")

QUICK = {
    "num_workers": 1,
    "num_envs_per_worker": 2,
    "rollout_length": 16,
    "minibatch_size": 32,
    "evaluation_interval": 1,
    "evaluation_num_episodes": 2,
}

TUNE_FORMS = {
    "the class itself": custom_envs.LineWalk,
    "a factory (a lambda)": lambda config: custom_envs.LineWalk(config),
    "module:Class": "custom_envs:LineWalk",
    "module:factory": "custom_envs:make_line_walk",
    "a register_env name": "line_walk",
}
"""The gymnasium id forms ("module:EnvId-v0", a driver's gym.register) have tests of their own."""


def _tune_run(config, tmp_path, iterations=2, **kwargs):
    return tune.run(
        PPO,
        config={**QUICK, **config},
        stop={"training_iteration": iterations},
        storage_path=str(tmp_path),
        verbose=0,
        raise_on_failed_trial=False,
        **kwargs,
    )


def _failed(analysis) -> dict[str, str]:
    return {
        env_label(trial.config["env"]): Path(trial.error_file).read_text()[-300:]
        for trial in analysis.trials
        if trial.status != "TERMINATED"
    }


def test_every_env_form_trains_through_tune_run_with_a_worker_actor(tmp_path):
    analysis = _tune_run({"env": tune.grid_search(list(TUNE_FORMS.values()))}, tmp_path)
    assert len(analysis.trials) == len(TUNE_FORMS)
    assert _failed(analysis) == {}
    assert all(trial.last_result["evaluation/episode_return_mean"] >= 0 for trial in analysis.trials)


class DriverOnlyWalk(custom_envs.LineWalk):
    """Registered with gym.register inside a test only, so no other process has its id."""


@ray.remote
def _knows(env_id: str) -> bool:
    return env_id in gym.registry


def test_an_id_registered_with_gym_register_in_the_driver_reaches_trial_and_worker_processes(tmp_path):
    env_id = f"DriverOnly{uuid.uuid4().hex[:8]}-v0"
    gym.register(env_id, entry_point=DriverOnlyWalk, max_episode_steps=20)
    assert not ray.get(_knows.remote(env_id)), "a fresh Ray worker process must not know the id"
    analysis = _tune_run({"env": env_id}, tmp_path)
    assert _failed(analysis) == {}


def test_creators_receive_env_config_with_worker_index_num_workers_and_vector_index(tmp_path):
    config = {
        "env": "custom_envs:LineWalk",
        "env_config": {"probe_dir": str(tmp_path)},
        "evaluation_interval": 0,
    }
    analysis = _tune_run(config, tmp_path, iterations=1)
    assert _failed(analysis) == {}
    seen = {
        (record["worker_index"], record["num_workers"], record["vector_index"])
        for record in (json.loads(path.read_text()) for path in tmp_path.glob("*.json"))
    }
    # Worker actor 1 steps two envs; the trainable's own process (index 0) checks one.
    assert seen == {(1, 1, 0), (1, 1, 1), (0, 1, 0)}


def test_the_same_env_mismatch_fails_a_tune_run_trial_in_setup_with_the_cli_message(tmp_path):
    analysis = tune.run(
        SAC,
        config={"env": "CartPole-v1"},
        stop={"training_iteration": 1},
        storage_path=str(tmp_path),
        verbose=0,
        raise_on_failed_trial=False,
    )
    error = Path(analysis.trials[0].error_file).read_text()
    assert "env 'CartPole-v1' has action space Discrete(2), which SAC cannot act in" in error


def test_a_checkpoint_of_a_class_env_loads_a_policy_that_acts(tmp_path):
    analysis = _tune_run(
        {"env": custom_envs.LineWalk, "num_workers": 0},
        tmp_path,
        iterations=1,
        checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
    )
    policy = load_policy(analysis.trials[0].checkpoint.path)
    assert policy.compute_single_action([0.0]) in (0, 1)


def test_trackers_record_a_class_env_as_module_and_name():
    assert trial_hyperparameters({"env": custom_envs.LineWalk})["env"] == "custom_envs:LineWalk"


@pytest.mark.parametrize(
    "env",
    [
        "custom_envs:LineWalk",
        "custom_envs:make_line_walk",
        "custom_envs:LineWalk-v0",
        "custom_envs:line_walk",
    ],
)
def test_every_env_form_an_experiment_file_can_spell_sweeps_through_the_cli(tmp_path, env):
    experiment = tmp_path / "walk.yaml"
    experiment.write_text(
        f"name: walk\nalgorithm: PPO\nenv: '{env}'\nsearch_space: fixed\nnum_samples: 1\n"
        "config: {num_envs_per_worker: 2, rollout_length: 16, minibatch_size: 32, evaluation_interval: 1, "
        "evaluation_num_episodes: 2}\n"
        "stop: {training_iteration: 2}\n"
    )
    assert main(["sweep", str(experiment), "--results-dir", str(tmp_path), "--no-mlflow"]) == 0


def test_lunarlander_trains_a_few_iterations_through_tune_run(tmp_path):
    config = {"env": "LunarLander-v3", "num_workers": 0, "num_envs_per_worker": 4, "rollout_length": 64}
    analysis = _tune_run({**config, "minibatch_size": 128, "evaluation_interval": 0}, tmp_path, iterations=3)
    assert _failed(analysis) == {}
    assert analysis.trials[0].last_result["training_iteration"] == 3


def test_a_mujoco_env_trains_a_few_iterations_of_sac_through_tune_run(tmp_path):
    analysis = tune.run(
        SAC,
        config={
            "env": "HalfCheetah-v5",
            "num_envs_per_worker": 1,
            "timesteps_per_iteration": 100,
            "learning_starts": 50,
            "gradient_steps": 1,
            "batch_size": 32,
            "hidden_sizes": [32, 32],
            "evaluation_interval": 0,
        },
        stop={"training_iteration": 3},
        storage_path=str(tmp_path),
        verbose=0,
        raise_on_failed_trial=False,
    )
    assert _failed(analysis) == {}
    assert analysis.trials[0].last_result["timesteps_total"] >= 300
