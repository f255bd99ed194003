"""Offline RL: datasets recorded and read back whole, the losses against numbers worked by
hand, bad datasets as one-line errors, behaviour cloning, and one tiny offline sweep."""

import json
import math

import numpy as np
import pytest
import torch
import yaml

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.cql import conservative_penalty
from rlsweep.trainables.iql import expectile_loss
from rlsweep.trainables.marwil import BC, exponential_weights, weighted_imitation_loss
from rlsweep.trainables.offline.dataset import ARRAYS, Dataset, DatasetInfo
from rlsweep.trainables.offline.formats import read_dataset, write_dataset, write_npz
from rlsweep.trainables.offline.record import record
from rlsweep.trainables.offline.shared import open_shared

CARTPOLE_EXPERT = "examples.offline.controllers:cartpole_expert"


@pytest.fixture(autouse=True)
def dataset_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RLSWEEP_DATASET_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])


@pytest.fixture
def expert_npz(tmp_path):
    path = tmp_path / "cartpole-expert.npz"
    dataset = record("CartPole-v1", CARTPOLE_EXPERT, episodes=3, seed=1, ref_min_score=21, ref_max_score=500)
    write_npz(dataset, path)
    return path


# -- losses, against numbers worked by hand ---------------------------------------------


def test_conservative_penalty_is_logsumexp_of_all_actions_minus_the_data_action():
    q_all = torch.tensor([[1.0, 2.0, 3.0]])  # one state, three actions; the data took action 0
    penalty = conservative_penalty(q_all, torch.zeros_like(q_all), q_all[:, 0])
    assert penalty.item() == pytest.approx(math.log(math.e + math.e**2 + math.e**3) - 1.0)


def test_conservative_penalty_subtracts_the_log_density_actions_were_sampled_with():
    q_sampled = torch.zeros(1, 2)  # two sampled actions of value 0, each drawn with density 0.5
    log_density = torch.full((1, 2), math.log(0.5))
    penalty = conservative_penalty(q_sampled, log_density, torch.tensor([1.0]))
    assert penalty.item() == pytest.approx(math.log(4.0) - 1.0)


def test_expectile_loss_weighs_positive_errors_by_tau_and_negative_by_one_minus_tau():
    loss = expectile_loss(torch.tensor([2.0, -1.0]), expectile=0.7)
    assert loss.item() == pytest.approx((0.7 * 4 + 0.3 * 1) / 2)


def test_marwil_weights_are_exp_beta_advantage_capped_and_all_one_at_beta_zero():
    advantages = torch.tensor([0.0, 1.0, 10.0])
    assert exponential_weights(advantages, 1.0, 20.0).tolist() == pytest.approx([1.0, math.e, 20.0])
    assert exponential_weights(advantages, 0.0, 20.0).tolist() == [1.0, 1.0, 1.0]


def test_weighted_imitation_loss_is_minus_the_weighted_mean_log_likelihood():
    loss = weighted_imitation_loss(torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 3.0]))
    assert loss.item() == pytest.approx((1 * 1 + 3 * 2) / 2)


def test_returns_to_go_restart_where_an_episode_ends():
    dataset = _dataset(rewards=[1, 1, 1, 1], terminations=[0, 1, 0, 0])
    assert dataset.returns_to_go(0.5).tolist() == [1.5, 1.0, 1.5, 1.0]


# -- record and read back -----------------------------------------------------------------


def test_record_then_npz_round_trip_keeps_every_transition(tmp_path):
    dataset = record("Pendulum-v1", "random", steps=250, seed=4, noise_std=0.1)
    write_dataset(dataset, str(tmp_path / "data.npz"))
    _assert_same(read_dataset(str(tmp_path / "data.npz")), dataset)


def test_record_then_minari_round_trip_keeps_every_transition(tmp_path):
    pytest.importorskip("minari")
    dataset = record("CartPole-v1", CARTPOLE_EXPERT, episodes=2, seed=2, epsilon=0.2, ref_min_score=0)
    folder = write_dataset(dataset, str(tmp_path / "cartpole" / "expert-v0"))
    _assert_same(read_dataset(folder), dataset)


def test_record_is_reproducible_from_its_seed():
    first, second = (record("CartPole-v1", "random", episodes=3, seed=9) for _ in range(2))
    assert np.array_equal(first.observations, second.observations)


def test_record_command_writes_the_steps_it_was_asked_for(tmp_path):
    from rlsweep.cli import main

    output = tmp_path / "random.npz"
    assert main(["record", "--env", "CartPole-v1", "--steps", "50", "--output", str(output)]) == 0
    assert len(read_dataset(str(output))) == 50


def test_trials_on_a_node_memory_map_one_cached_copy(expert_npz):
    first, second = open_shared(str(expert_npz)), open_shared(str(expert_npz))
    assert isinstance(first.observations, np.memmap)
    assert first.observations.filename == second.observations.filename


# -- bad input: one line ---------------------------------------------------------------------


def test_missing_dataset_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_dataset(str(tmp_path / "nope.npz"))


def test_corrupt_dataset_file_is_one_line(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match=r"not a readable \.npz"):
        read_dataset(str(tmp_path / "bad.npz"))


def test_nan_rewards_are_named_with_the_first_bad_transition(tmp_path):
    dataset = _dataset(rewards=[1, np.nan, 1, 1], terminations=[0, 0, 0, 1])
    write_npz(dataset, tmp_path / "nan.npz")
    with pytest.raises(ConfigError, match=r"NaN or infinite rewards \(first at transition 1\)"):
        read_dataset(str(tmp_path / "nan.npz"))


def test_dataset_recorded_in_other_spaces_than_the_env_is_rejected(tmp_path):
    pendulum = record("Pendulum-v1", "random", steps=20, seed=0)
    write_npz(pendulum, tmp_path / "pendulum.npz")
    with pytest.raises(ConfigError, match="recorded with observation space"):
        BC.check_environment(_bc_config(tmp_path / "pendulum.npz"))


def test_offline_algorithm_without_dataset_is_one_line():
    from rlsweep.trainables.config import build_config

    with pytest.raises(ConfigError, match="config key 'dataset' is not set"):
        build_config(BC.config_class, {"env": "CartPole-v1"})


def test_online_algorithm_given_a_dataset_is_one_line(expert_npz):
    from rlsweep.experiment.files import load_experiment

    with pytest.raises(ConfigError, match="DQN learns online and would ignore config key 'dataset'"):
        load_experiment("cartpole_dqn", {"config.dataset": str(expert_npz)})


def test_train_command_given_a_dataset_for_an_online_algorithm_is_one_line(expert_npz, capsys):
    from rlsweep.cli import main

    assert main(["train", "--algo", "PPO", "--set", f"dataset={expert_npz}"]) == 2
    assert "PPO learns online and would ignore config key 'dataset'" in capsys.readouterr().err


# -- learning ----------------------------------------------------------------------------------


def test_bc_reproduces_a_deterministic_policy_from_its_own_data(expert_npz):
    algo = BC(
        config={
            "env": "CartPole-v1", "dataset": str(expert_npz), "updates_per_iteration": 1500,
            "evaluation_interval": 0, "fqe_updates": 0, "hidden_sizes": [64, 64],
        }
    )  # fmt: skip
    algo.train()
    data = open_shared(str(expert_npz))
    actions, _ = algo.policy.compute_actions({"vector": np.asarray(data.observations)[None]}, {})
    algo.stop()
    assert (actions[0] == data.actions).mean() >= 0.95


def test_iql_checkpoint_restores_to_the_same_actions_and_critics(tmp_path):
    from rlsweep.trainables.iql import IQL

    dataset = record("Pendulum-v1", "random", steps=300, seed=3)
    write_npz(dataset, tmp_path / "pendulum.npz")
    config = {
        "env": "Pendulum-v1", "dataset": str(tmp_path / "pendulum.npz"), "updates_per_iteration": 20,
        "evaluation_interval": 0, "fqe_updates": 0, "hidden_sizes": [16, 16], "batch_size": 32,
    }  # fmt: skip
    observations = {"vector": np.asarray(dataset.observations)[None]}  # [1, N, 3]
    trained, fresh, restored = IQL(config=dict(config)), IQL(config=dict(config)), IQL(config=dict(config))
    trained.train()
    checkpoint = trained.save(str(tmp_path / "checkpoint")).checkpoint.path
    restored.restore(checkpoint)
    actions = {
        name: algo.policy.compute_actions(observations, {}, deterministic=True)[0]
        for name, algo in (("trained", trained), ("fresh", fresh), ("restored", restored))
    }
    assert not np.allclose(actions["fresh"], actions["trained"])  # training moved the policy
    np.testing.assert_array_equal(actions["restored"], actions["trained"])
    for key, value in trained.critic_target.state_dict().items():
        assert torch.equal(value, restored.critic_target.state_dict()[key]), key
    assert restored.train()["training_iteration"] == 2
    for algo in (trained, fresh, restored):
        algo.stop()


def test_sac_replay_buffer_exports_its_episodes_in_order_reproducibly():
    from rlsweep.trainables.offline.replay import record_replay

    # Random actions only (learning would start after the run): the export is what is tested.
    settings = {"hidden_sizes": [16, 16], "learning_starts": 400, "timesteps_per_iteration": 400}
    first, second = (
        record_replay("Pendulum-v1", target_return=-1e9, max_timesteps=400, seed=5, config=settings)
        for _ in range(2)
    )
    _assert_same(first, second)
    # 400 env steps: a 200-step episode (Pendulum's time limit), the step that resets the env
    # (no transition), and the first 199 steps of the next episode.
    assert len(first) == 399
    assert np.flatnonzero(first.truncations).tolist() == [199, 398]
    np.testing.assert_array_equal(first.next_observations[:199], first.observations[1:200])
    assert first.episode_returns().shape == (2,)


@pytest.mark.ray
def test_offline_sweep_through_tune_reports_online_and_fqe_evaluation_by_gradient_steps(
    expert_npz, tmp_path, ray_session, capsys
):
    from rlsweep.cli import main

    experiment = {
        "name": "tiny_offline", "algorithm": "DiscreteCQL", "env": "CartPole-v1",
        "config": {
            "dataset": str(expert_npz), "updates_per_iteration": 50, "evaluation_num_episodes": 2,
            "fqe_updates": 20, "hidden_sizes": [32, 32], "batch_size": 32,
        },
        "search_space": "fixed", "num_samples": 1, "resources": {"num_workers": 0},
        "stop": {"training_iteration": 2},
    }  # fmt: skip
    path = tmp_path / "tiny_offline.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert main(["sweep", str(path), "--no-mlflow", "--results-dir", str(tmp_path / "results")]) == 0
    (result_file,) = (tmp_path / "results").rglob("result.json")
    last = json.loads(result_file.read_text().splitlines()[-1])
    assert {"evaluation/episode_return_mean", "evaluation/fqe_value", "evaluation/normalized_score"} <= set(
        last
    )
    assert "for 100 gradient steps (reached a stop condition)" in capsys.readouterr().out


# -- helpers ------------------------------------------------------------------------------------


def _dataset(rewards, terminations) -> Dataset:
    count = len(rewards)
    return Dataset(
        observations=np.zeros((count, 4), np.float32),
        actions=np.zeros(count, np.int64),
        rewards=np.asarray(rewards, np.float32),
        next_observations=np.zeros((count, 4), np.float32),
        terminations=np.asarray(terminations, bool),
        truncations=np.zeros(count, bool),
        info=DatasetInfo(env_id="CartPole-v1"),
    )


def _assert_same(read: Dataset, recorded: Dataset) -> None:
    for name in ARRAYS:
        assert np.array_equal(np.asarray(getattr(read, name)), np.asarray(getattr(recorded, name))), name
    assert read.info.env_id == recorded.info.env_id
    assert read.info.policy == recorded.info.policy
    assert isinstance(read.info.action_space, type(recorded.info.action_space))


def _bc_config(dataset_path):
    from rlsweep.trainables.config import build_config

    return build_config(BC.config_class, {"env": "CartPole-v1", "dataset": str(dataset_path)})
