"""Implicit Q-Learning (Kostrikov et al. 2022) from a dataset: it never evaluates an action
the dataset does not hold. A state value V estimates an upper expectile of Q over the
data's actions, the critics bootstrap from V, and the policy imitates the recorded actions
weighted by their advantage (as MARWIL does, with Q - V for G - V):

    value:   min  L_tau(min_i Q'_i(s, a) - V(s)),  L_tau(u) = |tau - 1(u < 0)| u^2
    critic:  min  (Q_i(s, a) - r - gamma (1 - done) V(s'))^2
    policy:  min  -min(exp(beta (min_i Q'_i(s, a) - V(s))), max_weight) log pi(a|s)
    targets: Q'_i <- tau Q_i + (1 - tau) Q'_i

The policy and V are PPO's actor and critic; the twin critics are SAC's, taking a one-hot
action for Discrete action spaces.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from rlsweep.trainables.config import check_range
from rlsweep.trainables.learning.optim import adam
from rlsweep.trainables.marwil import exponential_weights, weighted_imitation_loss
from rlsweep.trainables.models.networks import TwinQ
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.off_policy import polyak_update
from rlsweep.trainables.offline_algorithm import OfflineAlgorithm, OfflineBatch, OfflineConfig
from rlsweep.trainables.sac import twin_q_loss


@dataclass
class IQLConfig(OfflineConfig):
    """IQL hyperparameters (the paper's for locomotion: expectile 0.7, beta 3)."""

    env: str = "Pendulum-v1"
    expectile: float = 0.7
    """tau of the value's expectile loss: 0.5 is the mean of Q over the data's actions, toward 1 their max."""
    beta: float = 3.0
    """Inverse temperature of the policy's advantage weights."""
    max_weight: float = 100.0
    """Cap on an action's weight in the policy loss."""
    tau: float = 0.005
    """Polyak rate of the target critics per gradient step."""

    def validate(self) -> None:
        super().validate()
        check_range("expectile", self.expectile, 0, 1, low_inclusive=False, high_inclusive=False)
        check_range("beta", self.beta, 0)
        check_range("max_weight", self.max_weight, 0, low_inclusive=False)
        check_range("tau", self.tau, 0, 1, low_inclusive=False)


class IQL(OfflineAlgorithm):
    """IQL as a Tune Trainable: `tune.run(IQL, config={"env": ..., "dataset": ...})`."""

    policy_class = ActorCriticPolicy
    config_class = IQLConfig
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)
    update_metrics = ("value_loss", "critic_loss", "policy_loss", "advantage_mean", "q_mean")
    policy: ActorCriticPolicy

    def setup_learner(self) -> None:
        cfg = self.algo_config
        policy, space = self.policy, self.action_space
        self.action_dim = (
            int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))
        )
        self.critic = TwinQ(policy.init_generators, policy.spec, self.action_dim).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        named = dict(policy.network.named_parameters())
        value_params = [p for name, p in named.items() if name.startswith("critic")]
        actor_params = [p for name, p in named.items() if not name.startswith("critic")]
        self.value_optimizer = adam(value_params, cfg.lr)
        self.actor_optimizer = adam(actor_params, cfg.lr)
        self.critic_optimizer = adam(self.critic.parameters(), cfg.lr)
        self.optimizers = [self.value_optimizer, self.actor_optimizer, self.critic_optimizer]

    def critic_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions [K, B, ...] as the critics take them: one-hot or flattened, float [K, B, dim]."""
        if isinstance(self.action_space, gym.spaces.Discrete):
            return F.one_hot(actions.long(), self.action_dim).float()
        return actions.flatten(2).float()

    def update(self, batch: OfflineBatch) -> dict[str, torch.Tensor]:
        cfg = self.algo_config
        network = self.policy.network
        actions = self.critic_actions(batch.actions)
        with torch.no_grad():
            target_q = torch.min(*self.critic_target(batch.obs, actions))  # [K, B]
            next_v = network.value(batch.next_obs)
            targets = batch.rewards + batch.discounts * (1 - batch.terminated) * next_v

        values = network.value(batch.obs)  # [K, B]
        value_loss = expectile_loss(target_q - values, cfg.expectile)
        self.value_optimizer.zero_grad(set_to_none=True)
        value_loss.sum().backward()  # seeds share no parameters: each gets its own gradient
        self.value_optimizer.step()

        q1, q2 = self.critic(batch.obs, actions)
        critic_loss = twin_q_loss(q1, q2, targets)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        self.critic_optimizer.step()

        advantages = target_q - values.detach()
        weights = exponential_weights(advantages, cfg.beta, cfg.max_weight)
        logprob = self.policy.head.log_prob(network.policy_params(batch.obs), batch.actions, None)
        policy_loss = weighted_imitation_loss(logprob, weights)
        self.actor_optimizer.zero_grad(set_to_none=True)
        policy_loss.sum().backward()
        self.actor_optimizer.step()

        polyak_update(self.critic_target, self.critic, cfg.tau)
        return {
            "value_loss": value_loss.detach(),
            "critic_loss": critic_loss.detach(),
            "policy_loss": policy_loss.detach(),
            "advantage_mean": advantages.mean(-1),
            "q_mean": q1.detach().mean(-1),
        }

    def learner_state(self) -> dict[str, Any]:
        return {
            **super().learner_state(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
        }

    def load_learner_state(self, state: dict[str, Any]) -> None:
        super().load_learner_state(state)
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])


def expectile_loss(differences: torch.Tensor, expectile: float) -> torch.Tensor:
    """mean(|tau - 1(u < 0)| u^2) over the last axis for u = Q - V [..., B]: one loss per
    leading index (seed).

    Minimized by the tau-expectile of Q: tau 0.5 is the mean square error, and toward 1
    positive errors (V below Q) cost more than negative ones, so V approaches the largest Q
    among the data's actions without querying any other action.
    """
    weight = torch.where(differences < 0, 1 - expectile, expectile)
    return (weight * differences.pow(2)).mean(-1)
