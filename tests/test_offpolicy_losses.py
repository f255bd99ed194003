import math

import gymnasium as gym
import pytest
import torch

from rlsweep.trainables.dqn import double_q_target
from rlsweep.trainables.models.networks import NetworkSpec, SquashedGaussianActor
from rlsweep.trainables.models.observations import ObservationLayout
from rlsweep.trainables.sac import sac_actor_loss, soft_q_target, temperature_loss, twin_q_loss
from rlsweep.trainables.seeds import generators

ONE = torch.tensor([1.0])
ZERO = torch.tensor([0.0])
GAMMA = torch.tensor([0.9])


def test_double_dqn_values_the_online_argmax_with_the_target_network():
    online = torch.tensor([[1.0, 5.0, 2.0]])  # picks action 1
    target = torch.tensor([[9.0, 3.0, 7.0]])  # whose target value is 3, not the max 9
    assert double_q_target(ONE, GAMMA, ZERO, online, target).item() == pytest.approx(1 + 0.9 * 3)


def test_classic_dqn_target_is_the_target_networks_max():
    target = torch.tensor([[9.0, 3.0, 7.0]])
    assert double_q_target(ONE, GAMMA, ZERO, target, target).item() == pytest.approx(1 + 0.9 * 9)


def test_dqn_target_does_not_bootstrap_from_a_terminal_state():
    q = torch.tensor([[9.0, 3.0]])
    assert double_q_target(ONE, GAMMA, ONE, q, q).item() == pytest.approx(1.0)


def test_dqn_target_uses_each_transitions_own_discount():
    q = torch.tensor([[2.0], [2.0]])
    targets = double_q_target(torch.zeros(2), torch.tensor([0.9, 0.81]), torch.zeros(2), q, q)
    assert targets.tolist() == pytest.approx([1.8, 1.62])


def test_soft_q_target_bootstraps_the_smaller_critic_plus_the_entropy_bonus():
    target = soft_q_target(
        ONE, GAMMA, ZERO, torch.tensor([4.0]), torch.tensor([3.0]), torch.tensor([-0.5]), torch.tensor(0.2)
    )
    assert target.item() == pytest.approx(1 + 0.9 * (3.0 - 0.2 * -0.5))


def test_soft_q_target_does_not_bootstrap_from_a_terminal_state():
    target = soft_q_target(
        ONE, GAMMA, ONE, torch.tensor([4.0]), torch.tensor([3.0]), torch.tensor([-0.5]), torch.tensor(0.2)
    )
    assert target.item() == pytest.approx(1.0)


def test_twin_q_loss_sums_both_critics_squared_errors():
    loss = twin_q_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx((1 + 1) / 2 + (0 + 1) / 2)


def test_actor_loss_trades_the_smaller_critic_against_the_entropy_term():
    loss = sac_actor_loss(torch.tensor([-1.0]), torch.tensor([5.0]), torch.tensor([4.0]), torch.tensor(0.5))
    assert loss.item() == pytest.approx(0.5 * -1.0 - 4.0)


def test_temperature_rises_while_entropy_is_below_target():
    log_alpha = torch.tensor(0.0, requires_grad=True)
    entropy_below_target = torch.tensor([2.0])  # log pi = 2: entropy -2 < target -1
    temperature_loss(log_alpha, entropy_below_target, target_entropy=-1.0).backward()
    assert log_alpha.grad.item() < 0  # gradient descent increases log alpha


def test_squashed_gaussian_log_prob_matches_the_change_of_variables():
    layout = ObservationLayout.of(gym.spaces.Box(-1, 1, (3,)))
    actor = SquashedGaussianActor(generators([0]), NetworkSpec(layout, (8,), "relu", None), 2)
    obs = {"vector": torch.randn(1, 5, 3, generator=torch.Generator().manual_seed(0))}
    noise = torch.randn(1, 5, 2, generator=torch.Generator().manual_seed(1))
    actions, logprob = actor.sample(obs, noise)
    mean, log_std = actor(obs)
    squashed = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()]
    )
    assert torch.allclose(logprob, squashed.log_prob(actions).sum(-1), atol=1e-4)
    assert actions.abs().max() < 1
    assert math.isfinite(logprob.sum().item())
