"""Multi-seed trials: K seeds trained as one batched learner are K independent agents."""

import numpy as np
import pytest
import torch

from rlsweep import DQN, PPO, SAC, load_policy
from rlsweep.trainables import SEED_STRIDE
from rlsweep.trainables.learning.optim import clip_grad_norm
from rlsweep.trainables.models.layers import PerSeedLinear
from rlsweep.trainables.seeds import aggregate, generators

PPO_TINY = {
    "env": "CartPole-v1",
    "num_envs_per_worker": 4,
    "rollout_length": 32,
    "minibatch_size": 32,
    "num_epochs": 2,
    "evaluation_interval": 0,
}
OFF_POLICY_TINY = {
    "hidden_sizes": [32, 32],
    "learning_starts": 64,
    "timesteps_per_iteration": 128,
    "train_freq": 8,
    "gradient_steps": 4,
    "batch_size": 32,
    "evaluation_interval": 0,
}
CASES = [
    (PPO, PPO_TINY),
    (DQN, {**OFF_POLICY_TINY, "env": "CartPole-v1"}),
    (SAC, {**OFF_POLICY_TINY, "env": "Pendulum-v1"}),
]


def _weights_after(algorithm, config, iterations=3):
    algo = algorithm(config=config)
    for _ in range(iterations):
        algo.train()
    weights = {k: v.detach().clone() for k, v in algo.policy.network.state_dict().items()}
    algo.stop()
    return weights


@pytest.mark.parametrize(("algorithm", "config"), CASES, ids=["PPO", "DQN", "SAC"])
def test_batched_seeds_equal_separately_trained_agents(algorithm, config):
    batched = _weights_after(algorithm, {**config, "seed": 5, "num_seeds": 3})
    for seed_index in range(3):
        alone = _weights_after(algorithm, {**config, "seed": 5 + seed_index * SEED_STRIDE})
        for name, value in alone.items():
            torch.testing.assert_close(batched[name][seed_index], value[0], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(("algorithm", "config"), CASES, ids=["PPO", "DQN", "SAC"])
def test_seeds_start_from_different_weights(algorithm, config):
    algo = algorithm(config={**config, "num_seeds": 2})
    first_layer = next(iter(algo.policy.network.parameters()))
    algo.stop()
    assert not torch.equal(first_layer[0], first_layer[1])


def test_a_seed_with_huge_gradients_does_not_change_another_seeds_clipping():
    layer = PerSeedLinear(generators([0, 1]), 3, 2, gain=1.0)
    x = torch.ones(2, 4, 3)
    scale = torch.tensor([1e6, 1.0])[:, None, None]  # seed 0's loss is a million times larger
    (layer(x) * scale).sum().backward()
    alone = PerSeedLinear(generators([1]), 3, 2, gain=1.0)
    alone(torch.ones(1, 4, 3)).sum().backward()
    torch.nn.utils.clip_grad_norm_(alone.parameters(), max_norm=0.5)

    norms = clip_grad_norm(layer.parameters(), max_norm=0.5)
    assert norms[0] > 1e5
    torch.testing.assert_close(layer.weight.grad[1], alone.weight.grad[0])
    torch.testing.assert_close(layer.bias.grad[1], alone.bias.grad[0])


def test_ppo_advantages_are_normalized_per_seed():
    from rlsweep.trainables.ppo import normalize

    advantages = torch.tensor([[1.0, 2.0, 3.0], [100.0, 300.0, 500.0]])
    normalized = normalize(advantages, torch.ones(2, 3, dtype=torch.bool))
    torch.testing.assert_close(normalized[0], normalized[1])


@pytest.mark.parametrize(
    ("how", "expected"),
    [("mean", 22.0), ("median", 3.0), ("min", 1.0), ("iqm", 3.0)],
)
def test_seed_aggregates(how, expected):
    assert aggregate(np.array([1.0, 2.0, 3.0, 4.0, 100.0]), how) == pytest.approx(expected)


def test_results_hold_the_aggregate_and_each_seeds_value():
    algo = PPO(config={**PPO_TINY, "num_seeds": 3, "seed_aggregate": "min", "evaluation_interval": 1,
                       "evaluation_num_episodes": 2})  # fmt: skip
    result = algo.train()
    algo.stop()
    per_seed = [result[f"seeds/{i}/evaluation/episode_return_mean"] for i in range(3)]
    assert result["evaluation/episode_return_mean"] == min(per_seed)
    assert {f"seeds/{i}/policy_loss" for i in range(3)} <= set(result)
    assert result["timesteps_total"] == 4 * 32  # env steps per seed, not summed over seeds


def test_load_policy_returns_the_best_seed_unless_one_is_named(tmp_path):
    config = {**PPO_TINY, "num_seeds": 3, "evaluation_interval": 1, "evaluation_num_episodes": 2}
    algo = PPO(config=config)
    algo.train()
    evaluation = algo.last_evaluation["episode_return_mean"]
    checkpoint = algo.save(str(tmp_path)).checkpoint.path
    algo.stop()
    best = int(np.argmax(evaluation))
    chosen = load_policy(checkpoint)
    assert chosen.seeds == [config.get("seed", 0) + best * SEED_STRIDE]
    assert load_policy(checkpoint, seed_index=2).seeds == [2 * SEED_STRIDE]


def test_the_old_member_names_still_pick_a_seed_with_a_deprecation_line(tmp_path, capsys):
    from rlsweep.cli import main

    algo = PPO(config={**PPO_TINY, "num_seeds": 2})
    algo.train()
    checkpoint = algo.save(str(tmp_path)).checkpoint.path
    algo.stop()
    with pytest.warns(DeprecationWarning, match="use load_policy\\(seed_index=i\\)"):
        assert load_policy(checkpoint, member=1).seeds == [SEED_STRIDE]
    assert main(["evaluate", checkpoint, "--episodes", "1", "--member", "1"]) == 0
    captured = capsys.readouterr()
    assert "--member is deprecated; use --seed-index" in captured.err
    assert "(seed 1)" in captured.out
