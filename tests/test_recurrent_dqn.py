"""Recurrent DQN (R2D2): sequences with their start states in the replay buffer, n-step
targets inside sequences, burn-in and autoreset steps kept out of the loss, checkpoints that
act with state, bad configs, and the cue task only the recurrent Q-network solves."""

from __future__ import annotations

import functools
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsweep.trainables import ConfigError, load_policy
from rlsweep.trainables.config import build_config
from rlsweep.trainables.dqn import DQN, DQNConfig, SequenceBatch, sequence_n_step, sequence_td_loss
from rlsweep.trainables.envs.build import make_env
from rlsweep.trainables.learning.sequence_buffer import SequenceReplayBuffer
from rlsweep.trainables.models.policies import QPolicy
from rlsweep.trainables.sampling.rollout_worker import RolloutWorker

CUE = "rlsweep/MemoryCue-v0"
CUE_TASK = {
    "env": CUE,
    "env_config": {"cue_distance": 4},
    "use_lstm": True,
    "lstm_cell_size": 32,
    "max_seq_len": 8,
    "burn_in": 2,
    "hidden_sizes": (32,),
    "num_envs_per_worker": 8,
    "train_freq": 8,
    "gradient_steps": 4,
    "batch_size": 32,
    "n_step": 1,
    "lr": 1e-3,
    "learning_starts": 256,
    "exploration_timesteps": 2000,
    "target_update_interval": 200,
    "timesteps_per_iteration": 512,
    "evaluation_interval": 0,
}


def _worker(num_seeds: int = 2, **config) -> RolloutWorker:
    cfg = build_config(DQNConfig, {**CUE_TASK, **config, "num_seeds": num_seeds})
    env = make_env(CUE, {"cue_distance": 3})
    seeds = list(range(num_seeds))
    policy = functools.partial(QPolicy, cfg, env.observation_space, env.action_space, "cpu", seeds)
    worker = RolloutWorker(CUE, {"cue_distance": 3}, 3, seeds, policy)
    worker.policy.epsilon = 0.5
    return worker


def test_buffer_stores_sequences_across_rollouts_with_the_state_their_first_step_saw():
    worker = _worker(lstm_use_prev_action=True)
    weights = worker.policy.get_weights()
    rollouts = [worker.sample(weights, 5) for _ in range(3)]  # 15 steps: sequences at 0, 4, 8
    buffer = SequenceReplayBuffer(capacity=100, seeds=[0, 1], length=6, period=4, carried=("hidden", "cell"))
    for rollout in rollouts:
        buffer.add_rollout(rollout, 0)
    obs = np.concatenate([r.obs["vector"][:-1] for r in rollouts] + [rollouts[-1].obs["vector"][-1:]])
    memory = {
        key: np.concatenate([r.memory[key][:-1] for r in rollouts] + [rollouts[-1].memory[key][-1:]])
        for key in rollouts[0].memory
    }
    valid = np.concatenate([r.valid for r in rollouts])
    assert buffer.size == 3 * 3  # 3 sequences of each of 3 envs (per seed)
    stored = buffer.storage
    for k in range(2):
        for n in range(3):
            for s, start in enumerate((0, 4, 8)):
                row = s * 3 + n
                np.testing.assert_array_equal(stored.obs["vector"][k, row], obs[start : start + 7, k, n])
                np.testing.assert_array_equal(stored.valid[k, row], valid[start : start + 6, k, n])
                for key, value in memory.items():
                    steps = 1 if key in ("hidden", "cell") else 7  # the LSTM's at the first step only
                    np.testing.assert_array_equal(
                        stored.memory[key][k, row], value[start : start + steps, k, n]
                    )
    assert len(buffer.pending[0].rewards) == 3  # steps 12..14 wait for the next rollout
    sampled = buffer.sample(5)
    assert sampled.obs["vector"].shape == (2, 5, 7, 3) and sampled.memory["hidden"].shape == (2, 5, 1, 32)
    for k in range(2):  # each sampled sequence is a stored one, start state included
        for b in range(5):
            matches = (stored.memory["hidden"][k] == sampled.memory["hidden"][k, b]).all((1, 2))
            assert matches.any()
    restored = SequenceReplayBuffer(
        capacity=100, seeds=[0, 1], length=6, period=4, carried=("hidden", "cell")
    )
    restored.load_state_dict(buffer.state_dict(include_transitions=True))
    np.testing.assert_array_equal(restored.sample(5).obs["vector"], buffer.sample(5).obs["vector"])


def test_n_step_returns_inside_a_sequence_stop_at_episode_ends_and_the_sequence_end():
    gamma = 0.5
    rewards = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])
    terminated = torch.tensor([False, True, False, False, False])
    ended = terminated.clone()
    returns, discounts, term, bootstrap = sequence_n_step(rewards, terminated, ended, gamma, 3)
    # step 0: 1 + 0.5 * 2, then the episode ends at step 1 (terminal: no bootstrap)
    # step 2 (the autoreset step, masked in the loss anyway), step 3: 8 + 0.5 * 16, cut by the sequence end
    assert returns.tolist() == [2.0, 2.0, 4 + 4 + 4, 16.0, 16.0]
    assert discounts.tolist() == [0.25, 0.5, 0.125, 0.25, 0.5]
    assert term.tolist() == [True, True, False, False, False]
    assert bootstrap.tolist() == [2, 2, 5, 5, 5]


def _sequence_batch(network, length: int = 8) -> SequenceBatch:
    generator = torch.Generator().manual_seed(0)
    k, b = 1, 4
    valid = torch.ones(k, b, length, dtype=torch.bool)
    ended = torch.zeros(k, b, length, dtype=torch.bool)
    ended[:, :, 4] = True  # an episode ends at step 4; step 5 is the autoreset step
    valid[:, :, 5] = False
    memory = {
        key: torch.randn(k, b, length + 1, *shape, generator=generator)
        for key, shape in network.state_shapes().items()
    }
    return SequenceBatch(
        obs={"vector": torch.randn(k, b, length + 1, 3, generator=generator, requires_grad=True)},
        memory=memory,
        actions=torch.randint(0, 2, (k, b, length), generator=generator),
        rewards=torch.randn(k, b, length, generator=generator),
        terminated=ended.clone(),
        ended=ended,
        valid=valid,
    )


def test_burn_in_autoreset_and_bootstrap_only_steps_never_contribute_to_the_loss():
    policy = _worker(num_seeds=1).policy
    network = policy.network
    target_policy = _worker(num_seeds=1, seed=7).policy
    batch = _sequence_batch(network)
    loss, _ = sequence_td_loss(network, target_policy.network, batch, 2, 0.9, 3, True)
    loss.sum().backward()
    grad = batch.obs["vector"].grad.abs().sum((0, 1, 3))  # per position 0..8
    assert (grad[:2] == 0).all()  # burn-in
    assert grad[5] == 0  # the autoreset step's observation (only a bootstrap for step 4)
    assert grad[8] == 0  # the observation after the sequence (only a bootstrap)
    assert (grad[[2, 3, 4, 6, 7]] > 0).all()
    # The autoreset step's reward and the burn-in steps' rewards never change the loss.
    changed = batch._replace(rewards=batch.rewards.clone())
    changed.rewards[:, :, [0, 1, 5]] += 100.0
    changed_loss, _ = sequence_td_loss(network, target_policy.network, changed, 2, 0.9, 3, True)
    torch.testing.assert_close(changed_loss, loss.detach())


def _cue_success(config: dict, iterations: int) -> float:
    algo = DQN(config={**CUE_TASK, **config, "evaluation_num_episodes": 50})
    for _ in range(iterations):
        algo.train()
    success = algo.evaluate()["episode_return_mean"]
    algo.stop()
    return success


def test_recurrent_dqn_solves_the_cue_task_where_memoryless_dqn_stays_at_chance():
    assert _cue_success({}, 10) >= 0.95
    assert _cue_success({"use_lstm": False, "burn_in": None}, 10) <= 0.75  # chance is 0.5


def test_checkpoint_restores_a_recurrent_q_policy_that_acts_with_its_state(tmp_path):
    algo = DQN(config={**CUE_TASK, "lstm_use_prev_action": True, "lstm_use_prev_reward": True})
    algo.train()
    policy = load_policy(algo.save(str(tmp_path / "ckpt")).checkpoint.path)
    env = make_env(CUE, CUE_TASK["env_config"])
    obs, _ = env.reset(seed=3)
    state, trained_state = policy.initial_state(), algo.policy.initial_state()
    assert set(state) == {"hidden", "cell", "prev_action", "prev_reward"}
    reward, done = 0.0, False
    while not done:
        action, state = policy.act(obs, state, reward)
        trained_state = algo.policy.remember_rewards(trained_state, np.full((1, 1), reward))
        encoded = {key: value[None] for key, value in algo.policy.layout.encode_one(obs).items()}
        trained_actions, trained_state = algo.policy.compute_actions(encoded, trained_state)
        assert action == trained_actions[0, 0]
        for key, value in trained_state.items():
            np.testing.assert_allclose(state[key], value, rtol=1e-5, atol=1e-6)
        obs, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    assert np.abs(state["hidden"]).sum() > 0
    with pytest.raises(ValueError, match="has memory"):
        policy.compute_single_action(obs)
    algo.stop()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"use_lstm": True, "max_seq_len": 8, "burn_in": 8},
            "'burn_in' (8) must be less than 'max_seq_len' (8)",
        ),
        ({"use_lstm": True, "burn_in": -1}, "burn_in"),
        ({"use_lstm": True, "dueling": True}, "'use_lstm' and 'dueling' are both true"),
        ({"use_attention": True}, "DQN cannot train attention policies; use use_lstm, or PPO"),
    ],
)
def test_bad_recurrent_dqn_configs_are_one_line_errors(config, message):
    with pytest.raises(ConfigError) as error:
        build_config(DQNConfig, config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_sequence_buffer_larger_than_the_machine_is_one_line_error(monkeypatch):
    # On a 4 GiB machine, 100M transitions of 4 numbers fit as single transitions (3 GiB),
    # not as 17-step sequences every 12 steps (8 GiB).
    monkeypatch.setattr(os, "sysconf", {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**20}.__getitem__)
    cfg = build_config(DQNConfig, {"use_lstm": True, "max_seq_len": 16, "buffer_size": 10**8})
    with pytest.raises(ConfigError) as error:
        DQN.check_spaces(cfg, gym.spaces.Box(0, 1, (4,)), gym.spaces.Discrete(2))
    assert "transitions in sequences) needs at least" in str(error.value) and "\n" not in str(error.value)
