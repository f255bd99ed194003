import math

import pytest
import torch

from rlsweep.trainables.ppo import clipped_surrogate_loss as per_seed_loss


def clipped_surrogate_loss(logprob, old_logprob, advantages, clip_range):
    """The loss of one seed over all-valid steps: inputs [B], outputs scalars."""
    valid = torch.ones(1, len(logprob), dtype=torch.bool)
    loss, kl, fraction = per_seed_loss(logprob[None], old_logprob[None], advantages[None], valid, clip_range)
    return loss[0], kl[0], fraction[0]


def test_loss_is_negative_advantage_when_policy_unchanged():
    logprob = torch.log(torch.tensor([0.5, 0.25]))
    loss, approx_kl, clip_fraction = clipped_surrogate_loss(logprob, logprob, torch.tensor([1.0, -2.0]), 0.2)
    assert loss.item() == pytest.approx(-(1.0 - 2.0) / 2)
    assert approx_kl.item() == pytest.approx(0.0)
    assert clip_fraction.item() == 0.0


def test_positive_advantage_gains_nothing_beyond_the_clip():
    old = torch.log(torch.tensor([0.5]))
    new = torch.log(torch.tensor([0.5 * 1.5]))  # ratio 1.5, clipped to 1.2
    loss, _, clip_fraction = clipped_surrogate_loss(new, old, torch.tensor([2.0]), 0.2)
    assert loss.item() == pytest.approx(-2.0 * 1.2)
    assert clip_fraction.item() == 1.0


def test_negative_advantage_is_not_clipped_when_ratio_grows():
    # The pessimistic bound keeps the unclipped term: making a bad action likelier is penalized fully.
    old = torch.log(torch.tensor([0.5]))
    new = torch.log(torch.tensor([0.5 * 1.5]))
    loss, _, _ = clipped_surrogate_loss(new, old, torch.tensor([-2.0]), 0.2)
    assert loss.item() == pytest.approx(2.0 * 1.5)


def test_clipped_side_has_no_gradient():
    old = torch.log(torch.tensor([0.5]))
    new = torch.log(torch.tensor([0.9])).requires_grad_()
    loss, _, _ = clipped_surrogate_loss(new, old, torch.tensor([1.0]), 0.2)
    loss.backward()
    assert new.grad.item() == 0.0


def test_approx_kl_matches_k3_estimator():
    old = torch.tensor([math.log(0.5)])
    new = torch.tensor([math.log(0.25)])
    _, approx_kl, _ = clipped_surrogate_loss(new, old, torch.tensor([0.0]), 0.2)
    ratio = 0.5
    assert approx_kl.item() == pytest.approx((ratio - 1) - math.log(ratio))


def test_invalid_steps_count_for_nothing():
    logprob = torch.log(torch.tensor([[0.5, 0.25]]))
    valid = torch.tensor([[True, False]])
    loss, _, _ = per_seed_loss(logprob, logprob, torch.tensor([[1.0, -100.0]]), valid, 0.2)
    assert loss.item() == pytest.approx(-1.0)


def test_each_seed_gets_the_mean_over_its_own_steps():
    logprob = torch.zeros(2, 2)
    advantages = torch.tensor([[1.0, 3.0], [-2.0, -4.0]])
    loss, _, _ = per_seed_loss(logprob, logprob, advantages, torch.ones(2, 2, dtype=torch.bool), 0.2)
    assert loss.tolist() == pytest.approx([-2.0, 3.0])
