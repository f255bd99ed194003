"""Behaviour cloning and MARWIL (Wang et al. 2018, "Exponentially Weighted Imitation
Learning for Batched Historical Data") from a dataset.

MARWIL imitates the recorded actions, each weighted by how much better than usual it
turned out: with the discounted return-to-go G of the recorded episode and a learned
state value V,

    value:   min  (G - V(s))^2
    policy:  min  -exp(beta (G - V(s)) / c) log pi(a|s),  c^2 a running mean of (G - V)^2

`beta: 0` weighs every action the same: that is behaviour cloning, `BC`, which skips the
value function. The policy is PPO's actor (a categorical or diagonal Gaussian head), so a
cloned policy deploys like any other rlsweep policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch

from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.learning.optim import adam, clip_grad_norm
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.offline_algorithm import OfflineAlgorithm, OfflineBatch, OfflineConfig


@dataclass
class MARWILConfig(OfflineConfig):
    """MARWIL hyperparameters; beta 1 and the value loss weight follow RLlib's defaults."""

    lr: float = 1e-3
    beta: float = 1.0
    """Inverse temperature of the advantage weights; 0 is behaviour cloning."""
    vf_coeff: float = 1.0
    """Weight of the value function's loss."""
    advantage_norm_rate: float = 1e-2
    """Rate of the running mean of squared advantages c^2 that scales them."""
    max_weight: float = 20.0
    """Cap on an action's weight, so one lucky episode cannot dominate (as AWR clips)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""

    def validate(self) -> None:
        super().validate()
        check_range("beta", self.beta, 0)
        check_range("vf_coeff", self.vf_coeff, 0)
        check_range("advantage_norm_rate", self.advantage_norm_rate, 0, 1, low_inclusive=False)
        check_range("max_weight", self.max_weight, 0, low_inclusive=False)
        check_range("max_grad_norm", self.max_grad_norm, 0, low_inclusive=False)


@dataclass
class BCConfig(MARWILConfig):
    """Behaviour cloning: MARWIL with beta 0."""

    beta: float = 0.0

    def validate(self) -> None:
        super().validate()
        if self.beta != 0:
            raise ConfigError(
                f"config key 'beta' is {self.beta}, but BC is MARWIL with beta 0; use MARWIL for beta > 0"
            )


class MARWIL(OfflineAlgorithm):
    """MARWIL as a Tune Trainable: `tune.run(MARWIL, config={"env": ..., "dataset": ...})`."""

    policy_class = ActorCriticPolicy
    config_class = MARWILConfig
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)
    update_metrics = ("policy_loss", "value_loss", "weight_mean", "advantage_scale")
    needs_returns = True
    policy: ActorCriticPolicy

    def setup_learner(self) -> None:
        cfg = self.algo_config
        self.optimizer = adam(self.policy.network.parameters(), cfg.lr)
        self.optimizers = [self.optimizer]
        # RLlib's start: advantages are scaled by 10 until their own spread is known.
        self.squared_advantage_mean = torch.full((cfg.num_seeds,), 100.0, device=self.device)

    def update(self, batch: OfflineBatch) -> dict[str, torch.Tensor]:
        cfg = self.algo_config
        network, head = self.policy.network, self.policy.head
        logprob = head.log_prob(network.policy_params(batch.obs), batch.actions, None)  # [K, B]
        if cfg.beta == 0:  # behaviour cloning: no advantages, no value function
            weights = torch.ones_like(logprob)
            value_loss = torch.zeros(cfg.num_seeds, device=self.device)
        else:
            values = network.value(batch.obs)  # [K, B]
            advantages = batch.returns - values.detach()
            self.squared_advantage_mean += cfg.advantage_norm_rate * (
                advantages.pow(2).mean(-1) - self.squared_advantage_mean
            )
            scale = self.squared_advantage_mean.sqrt()[:, None]  # [K, 1]
            weights = exponential_weights(advantages / scale, cfg.beta, cfg.max_weight)
            value_loss = 0.5 * (batch.returns - values).pow(2).mean(-1)
        policy_loss = weighted_imitation_loss(logprob, weights)
        loss = policy_loss + cfg.vf_coeff * value_loss  # [K]
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # seeds share no parameters: each gets its own gradient
        clip_grad_norm(network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return {
            "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(),
            "weight_mean": weights.mean(-1),
            "advantage_scale": self.squared_advantage_mean.sqrt(),
        }

    def learner_state(self) -> dict[str, Any]:
        return {**super().learner_state(), "squared_advantage_mean": self.squared_advantage_mean.cpu()}

    def load_learner_state(self, state: dict[str, Any]) -> None:
        super().load_learner_state(state)
        self.squared_advantage_mean.copy_(state["squared_advantage_mean"])


class BC(MARWIL):
    """Behaviour cloning as a Tune Trainable: maximizes the likelihood of the recorded actions."""

    config_class = BCConfig
    update_metrics = ("policy_loss",)
    needs_returns = False

    def update(self, batch: OfflineBatch) -> dict[str, torch.Tensor]:
        return {"policy_loss": super().update(batch)["policy_loss"]}


def exponential_weights(advantages: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """min(exp(beta A), max_weight), elementwise: the weight of each recorded action in
    advantage-weighted imitation (MARWIL, and IQL's policy extraction); any shape.

    Weights exp(beta A) make the imitation a projection of pi_data exp(beta A) / Z, the
    data's policy tilted toward better actions; beta 0 weighs all the same (cloning).
    """
    return torch.exp(beta * advantages).clamp(max=max_weight)


def weighted_imitation_loss(logprob: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """-mean(w log pi(a|s)) over the last axis: logprob and weights [..., B] (weights are
    constants: no gradient flows into what set them), one loss per leading index (seed)."""
    return -(weights.detach() * logprob).mean(-1)
