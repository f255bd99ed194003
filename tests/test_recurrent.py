"""Policies with memory: the LSTM's and the attention net's math, their state in the
samplers, sequence minibatches, checkpoints, bad configs, and the cue task only memory solves."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from ray import tune

from rlsweep.cli import main
from rlsweep.trainables import PPO, ConfigError, load_policy
from rlsweep.trainables.config import build_config
from rlsweep.trainables.dqn import DQNConfig
from rlsweep.trainables.envs.build import make_env
from rlsweep.trainables.learning.sequences import episode_starts, to_sequences
from rlsweep.trainables.models.attention import AttentionActorCritic, AttentionSpec, attention_masks
from rlsweep.trainables.models.networks import NetworkSpec
from rlsweep.trainables.models.observations import ObservationLayout
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.models.recurrent import LSTMRecurrence, LSTMSpec, PerSeedLSTM, RecurrentActorCritic
from rlsweep.trainables.ppo import PPOConfig
from rlsweep.trainables.sac import SACConfig
from rlsweep.trainables.sampling.rollout_worker import RolloutWorker
from rlsweep.trainables.seeds import generators

CUE = "rlsweep/MemoryCue-v0"
CUE_TASK = {
    "env": CUE,
    "env_config": {"cue_distance": 4},
    "num_envs_per_worker": 8,
    "rollout_length": 32,
    "minibatch_size": 64,
    "lr": 1e-3,
    "evaluation_interval": 0,
}
LSTM = {"use_lstm": True, "lstm_cell_size": 32, "max_seq_len": 8}
ATTENTION = {"use_attention": True, "attention_memory": 6, "attention_dim": 32, "max_seq_len": 8}
MEMORIES = pytest.mark.parametrize("memory", [LSTM, ATTENTION], ids=["lstm", "attention"])


def test_per_seed_lstm_computes_torchs_lstm():
    lstm = PerSeedLSTM(generators([1, 2]), 3, 5)
    with torch.no_grad():
        lstm.bias.normal_()
    x, h, c = torch.randn(2, 4, 6, 3), torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    outputs, _, cell = lstm(x, h, c, torch.ones(2, 4, 6, 1))
    reference = torch.nn.LSTM(3, 5, batch_first=True)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(lstm.weight_ih[1].T)
        reference.weight_hh_l0.copy_(lstm.weight_hh[1].T)
        reference.bias_ih_l0.copy_(lstm.bias[1, 0])
        reference.bias_hh_l0.zero_()
    expected_outputs, (_, expected_cell) = reference(x[1], (h[1][None], c[1][None]))
    torch.testing.assert_close(outputs[1], expected_outputs)
    torch.testing.assert_close(cell[1], expected_cell[0])


@pytest.mark.parametrize("resets", [True, False], ids=["with resets", "without"])
def test_lstm_recurrence_gradient_matches_finite_differences(resets):
    generator = torch.Generator().manual_seed(0)
    members, batch, length, size = 2, 2, 4, 2

    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.double).requires_grad_()

    keep = (torch.rand(members, batch, length, 1, generator=generator) > 0.3).double() if resets else None
    inputs = (tensor(members, batch, length, 4 * size), tensor(members, size, 4 * size))
    state = (tensor(members, batch, size), tensor(members, batch, size))
    assert torch.autograd.gradcheck(LSTMRecurrence.apply, (*inputs, *state, keep))


def test_stateless_cartpole_hides_the_velocities():
    env = make_env("rlsweep/StatelessCartPole-v1")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,) and env.spec.max_episode_steps == 500


def _cue_policy(config: dict, num_seeds: int = 1) -> functools.partial:
    cfg = build_config(PPOConfig, {**CUE_TASK, **config, "num_seeds": num_seeds})
    env = make_env(CUE, cfg.env_config)
    seeds = list(range(num_seeds))
    return functools.partial(ActorCriticPolicy, cfg, env.observation_space, env.action_space, "cpu", seeds)


@MEMORIES
def test_worker_resets_the_memory_where_episodes_start_and_only_there(memory):
    worker = RolloutWorker(CUE, {"cue_distance": 3}, 4, [0, 1], _cue_policy(memory, num_seeds=2))
    weights = worker.policy.get_weights()
    for _ in range(2):  # the state carries across rollouts too
        rollout = worker.sample(weights, 13)
        # MemoryCue shows its cue on an episode's first observation only.
        first_observations = rollout.obs["vector"][:-1, ..., :2].any(-1)  # [T, K, N]
        for key, memory in rollout.memory.items():
            zero_memory = (memory[:-1] == 0).reshape(*first_observations.shape, -1).all(-1)
            assert np.array_equal(zero_memory, first_observations), key


def test_sequences_hold_each_envs_steps_in_order_then_padding():
    steps = np.arange(10).reshape(5, 1, 2)  # [T=5, K=1, N=2]: step t of env n is 2t + n
    sequences = to_sequences(steps, 2)
    assert sequences.tolist() == [[[0, 2], [4, 6], [8, 0], [1, 3], [5, 7], [9, 0]]]
    valid = to_sequences(np.ones((5, 1, 2), dtype=bool), 2)
    assert valid[0, :, 1].tolist() == [True, True, False, True, True, False]


def test_an_episode_starts_after_each_autoreset_step():
    valid = np.array([True, True, False, True, False, True])[:, None, None]
    assert episode_starts(valid)[:, 0, 0].tolist() == [False, False, False, True, False, True]


def _lstm_trainer(memory: dict = LSTM, **config) -> PPO:
    return PPO(config={**CUE_TASK, **memory, **config})


@MEMORIES
def test_padded_and_autoreset_steps_never_contribute_to_the_loss(memory):
    # 10 steps: sequences 4 + 4 + 2 padded
    algo = _lstm_trainer(memory, rollout_length=10, max_seq_len=4)
    batch = algo._batch(algo.workers.sample(algo.sampling_weights(), 10))
    invalid = ~batch["valid"]
    assert invalid[:, 2::3, 2:].all()  # each env's last sequence ends in padding

    def loss_and_gradient(mb):
        loss, _ = algo.minibatch_loss(mb, 0.2)
        algo.policy.network.zero_grad()
        loss.sum().backward()
        return loss.detach(), [p.grad.clone() for p in algo.policy.network.parameters()]

    keys = ("obs", "actions", "logprob", "advantages", "returns", "valid", "memory", "starts")
    loss, gradient = loss_and_gradient({key: batch[key] for key in keys})
    garbage = {key: batch[key] for key in keys}
    for key in ("logprob", "advantages", "returns"):
        garbage[key] = torch.where(invalid, torch.full_like(batch[key], 1e6), batch[key])
    garbage["actions"] = torch.where(invalid, 1 - batch["actions"], batch["actions"])
    garbage["obs"] = {"vector": torch.where(invalid[..., None], 1e3, batch["obs"]["vector"])}
    garbage_loss, garbage_gradient = loss_and_gradient(garbage)
    torch.testing.assert_close(garbage_loss, loss)
    for expected, actual in zip(gradient, garbage_gradient, strict=True):
        torch.testing.assert_close(actual, expected)


def test_truncated_bptt_gradient_equals_a_hand_rolled_loop():
    torch.manual_seed(0)
    layout = ObservationLayout.of(make_env(CUE, {"cue_distance": 4}).observation_space)
    spec = NetworkSpec(layout, (5,), "tanh", None)
    lstm = LSTMSpec(cell_size=4, prev_action_dim=0, prev_reward=False)
    network = RecurrentActorCritic(generators([0]), spec, lstm, 2, False)
    obs = torch.randn(1, 6, 3)  # one env's 6 steps, cut into 2 sequences of 3
    starts = torch.tensor([[False, False, True, False, False, False]])  # an episode starts at step 2

    # The hand-rolled loop: step by step, zeroing the state where an episode starts and cutting
    # the gradient between the sequences, as truncated BPTT does.
    cell = torch.nn.LSTMCell(5, 4)
    with torch.no_grad():
        cell.weight_ih.copy_(network.critic_lstm.weight_ih[0].T)
        cell.weight_hh.copy_(network.critic_lstm.weight_hh[0].T)
        cell.bias_ih.copy_(network.critic_lstm.bias[0, 0])
        cell.bias_hh.zero_()
    hidden = memory = torch.zeros(1, 4)
    total = 0.0
    states_at_sequence_start = []
    for t in range(6):
        if t == 3:
            hidden, memory = hidden.detach(), memory.detach()
            states_at_sequence_start.append((hidden, memory))
        if starts[0, t]:
            hidden, memory = torch.zeros(1, 4), torch.zeros(1, 4)
        features = network.critic_torso(network.critic_encoder({"vector": obs[:, t][None]}))[0]
        hidden, memory = cell(features, (hidden, memory))
        total = total + network.critic(hidden[None]).sum()
    total.backward()
    expected_ih, expected_hh = cell.weight_ih.grad.T.clone(), cell.weight_hh.grad.T.clone()
    network.zero_grad()

    (second_hidden, second_memory) = states_at_sequence_start[0]
    sequences = {"vector": obs.reshape(1, 2, 3, 3)}  # [K, B=2, L=3, D]
    first_states = {"hidden": second_hidden, "cell": second_memory}
    memory_in = {  # each sequence's state at its first step [K, B=2, L=3, 2, H]; later steps unread
        part: torch.stack([torch.zeros(1, 4), first_states[part]])
        .reshape(1, 2, 1, 1, 4)
        .expand(1, 2, 3, 2, 4)
        for part in ("hidden", "cell")
    }
    _, values, _ = network.unroll(sequences, memory_in, starts.reshape(1, 2, 3))
    values.sum().backward()
    torch.testing.assert_close(network.critic_lstm.weight_ih.grad[0], expected_ih)
    torch.testing.assert_close(network.critic_lstm.weight_hh.grad[0], expected_hh)


@MEMORIES
def test_checkpoint_restores_a_policy_that_acts_with_its_state(tmp_path, memory):
    algo = _lstm_trainer(memory, lstm_use_prev_action=True, lstm_use_prev_reward=True)
    algo.train()
    policy = load_policy(algo.save(str(tmp_path / "ckpt")).checkpoint.path)
    env = make_env(CUE, CUE_TASK["env_config"])
    obs, _ = env.reset(seed=3)
    state, trained_state = policy.initial_state(), algo.policy.initial_state()
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
    with pytest.raises(ValueError, match="has memory"):
        policy.compute_single_action(obs)
    algo.stop()


def _cue_success(config: dict, iterations: int) -> float:
    algo = PPO(config={**CUE_TASK, **config, "evaluation_num_episodes": 50})
    for _ in range(iterations):
        algo.train()
    success = algo.evaluate()["episode_return_mean"]
    algo.stop()
    return success


def test_memoryless_policy_stays_at_chance_on_the_cue_task_while_the_lstm_solves_it():
    assert _cue_success(LSTM, 15) >= 0.95
    assert _cue_success({}, 15) <= 0.75  # chance is 0.5


def test_attention_policy_solves_the_cue_task():
    assert _cue_success(ATTENTION, 8) >= 0.95


def test_attention_reads_the_last_m_steps_of_the_episode_only():
    # Memory of M=2 slots, the older one empty; a sequence of 4 steps, an episode starting at step 2.
    allowed, distance, next_valid = attention_masks(
        torch.tensor([[[0.0, 1.0]]]), torch.tensor([[[False, False, True, False]]]), 4
    )
    # Keys: slot 0, slot 1, steps 0..3. Step 0 reads slot 1 and itself; step 1 slot 1 (2 steps
    # back), step 0 and itself; step 2 starts an episode: itself only; step 3 steps 2 and 3.
    assert allowed[0, 0].int().tolist() == [
        [0, 1, 1, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 1, 1],
    ]
    assert distance[3].tolist() == [2, 2, 2, 2, 1, 0]  # clamped at M for keys out of reach
    assert next_valid[0, 0].tolist() == [1.0, 1.0]  # after step 3: steps 2 and 3, this episode's


def _attention_network(num_layers: int = 2) -> AttentionActorCritic:
    layout = ObservationLayout.of(make_env(CUE, {"cue_distance": 4}).observation_space)
    spec = NetworkSpec(layout, (8,), "tanh", None)
    attention = AttentionSpec(
        memory=3, dim=8, num_heads=2, num_layers=num_layers, prev_action_dim=0, prev_reward=False
    )
    return AttentionActorCritic(generators([0, 1]), spec, attention, 2, False)


def _zero_memory(network: AttentionActorCritic, batch: int) -> dict[str, torch.Tensor]:
    """The transformer's empty state for 2 seeds' `batch` envs: entries [K=2, B, ...]."""
    return {key: torch.zeros(2, batch, *shape) for key, shape in network.core_state_shapes().items()}


def _at_first_step(memory: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state [K, B, ...] as `unroll` reads it, at the sequences' first step [K, B, 1, ...]."""
    return {key: value.unsqueeze(2) for key, value in memory.items()}


def test_attention_unrolled_over_a_sequence_acts_as_it_does_step_by_step():
    torch.manual_seed(0)
    network = _attention_network()
    obs = torch.randn(2, 1, 7, 3)  # [K, B=1, L=7, D]
    starts = torch.tensor([False, False, False, False, True, False, False]).expand(2, 1, 7)
    with torch.no_grad():
        params, values, _ = network.unroll({"vector": obs}, _at_first_step(_zero_memory(network, 1)), starts)
        memory, stepped = _zero_memory(network, 1), []
        for t in range(7):
            if starts[0, 0, t]:  # what the samplers do where an episode starts
                memory = {key: torch.zeros_like(value) for key, value in memory.items()}
            step_params, step_values, memory = network.step({"vector": obs[:, :, t]}, memory)
            stepped.append((step_params, step_values))
    torch.testing.assert_close(params, torch.stack([p for p, _ in stepped], 2))
    torch.testing.assert_close(values, torch.stack([v for _, v in stepped], 2))


def test_steps_before_an_episode_start_and_later_steps_never_reach_an_attention_output():
    torch.manual_seed(0)
    network = _attention_network()
    obs = torch.randn(2, 1, 6, 3, requires_grad=True)
    starts = torch.tensor([False, False, True, False, False, False]).expand(2, 1, 6)
    memory = _zero_memory(network, 1)
    memory["memory"] = torch.randn_like(memory["memory"], requires_grad=True)
    memory["memory_valid"] = torch.ones_like(memory["memory_valid"])
    _, values, _ = network.unroll({"vector": obs}, _at_first_step(memory), starts)
    values[:, :, 3].sum().backward()  # step 3: its episode started at step 2
    reached = obs.grad.abs().sum((0, 1, 3))
    assert reached[2:4].min() > 0 and reached[[0, 1, 4, 5]].max() == 0
    assert memory["memory"].grad.abs().max() == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"use_lstm": True, "max_seq_len": 0}, "config key 'max_seq_len' must be in [1, inf), got 0"),
        (
            {"use_lstm": True, "max_seq_len": 64, "rollout_length": 32},
            "config key 'max_seq_len' (64) must not exceed 'rollout_length' (32)",
        ),
    ],
)
def test_bad_sequence_lengths_are_one_line_errors(config, message):
    with pytest.raises(ConfigError) as error:
        build_config(PPOConfig, {**CUE_TASK, **config})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_use_lstm_with_sac_is_one_line_error():
    with pytest.raises(ConfigError, match="SAC cannot train recurrent policies; use PPO"):
        build_config(SACConfig, {"env": "Pendulum-v1", "use_lstm": True})


@pytest.mark.parametrize(
    ("algorithm", "config", "message"),
    [
        (
            PPOConfig,
            {"use_lstm": True, "use_attention": True},
            "'use_lstm' and 'use_attention' are both true",
        ),
        (
            DQNConfig,
            {"use_attention": True},
            "'use_attention' is true, but DQN cannot train attention policies",
        ),
        (
            PPOConfig,
            {"use_attention": True, "max_seq_len": 64, "rollout_length": 32},
            "config key 'max_seq_len' (64) must not exceed 'rollout_length' (32)",
        ),
        (PPOConfig, {"use_attention": True, "attention_dim": 30, "attention_num_heads": 4}, "multiple of"),
    ],
)
def test_bad_attention_configs_are_one_line_errors(algorithm, config, message):
    with pytest.raises(ConfigError) as error:
        build_config(algorithm, config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_train_rejects_both_memories_before_ray(capsys):
    assert main(["train", "--set", "use_lstm=true", "--set", "use_attention=true"]) == 2
    assert "'use_lstm' and 'use_attention' are both true" in capsys.readouterr().err


def test_train_rejects_use_lstm_for_an_algorithm_without_memory_before_ray(capsys):
    assert main(["train", "--algo", "SAC", "--env", "Pendulum-v1", "--set", "use_lstm=true"]) == 2
    err = capsys.readouterr().err
    assert "config key 'use_lstm' is true, but SAC cannot train recurrent policies" in err


def test_check_summary_shows_the_model(capsys):
    assert main(["check", "memory_cue_lstm"]) == 0
    (model,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Model:")]
    assert "-> LSTM" in model and "lstm_cell_size, max_seq_len" in model


def test_check_summary_shows_the_attention_model(capsys):
    assert main(["check", "memory_cue_attention"]) == 0
    (model,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Model:")]
    assert "-> gated transformer (GTrXL) over the last 16 steps" in model


@pytest.mark.usefixtures("ray_session")
def test_tune_sweeps_over_use_lstm_with_worker_actors(tmp_path):
    analysis = tune.run(
        PPO,
        config={**CUE_TASK, **LSTM, "num_workers": 1, "use_lstm": tune.grid_search([False, True])},
        stop={"training_iteration": 2},
        storage_path=str(tmp_path),
        verbose=0,
    )
    assert sorted(trial.config["use_lstm"] for trial in analysis.trials) == [False, True]
    assert all(trial.last_result["timesteps_total"] == 2 * 8 * 32 for trial in analysis.trials)
