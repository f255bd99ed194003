"""Conservative Q-Learning (Kumar et al. 2020) from a dataset: Q-learning whose critic is
pushed down on actions the dataset does not hold and up on those it does, so the policy
does not exploit values the data never tested.

Both variants add the same conservative term to their TD loss (`conservative_penalty`):

    alpha_cql E_s [ log sum_a exp Q(s, a) - Q(s, a_data) ]

`DiscreteCQL` is DQN's update (double-Q target, Huber loss, target network) with the
sum over every action. `CQL` is SAC's update (twin critics, soft target, actor,
temperature) for Box actions, with the sum estimated by importance sampling
(CQL(H) as in CORL): `num_sampled_actions` uniform actions and as many from the policy at
s and at s', each Q(s, a_j) less the log-density a_j was drawn with.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlsweep.trainables.config import check_range
from rlsweep.trainables.dqn import double_q_target
from rlsweep.trainables.learning.optim import adam, clip_grad_norm
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.networks import TwinQ
from rlsweep.trainables.models.policies import QPolicy, SquashedGaussianPolicy
from rlsweep.trainables.off_policy import polyak_update
from rlsweep.trainables.offline_algorithm import OfflineAlgorithm, OfflineBatch, OfflineConfig
from rlsweep.trainables.sac import sac_actor_loss, soft_q_target, temperature_loss, twin_q_loss
from rlsweep.trainables.seeds import draw


@dataclass
class DiscreteCQLConfig(OfflineConfig):
    """DiscreteCQL hyperparameters (d3rlpy's defaults: alpha 1, a hard target update)."""

    env: str = "CartPole-v1"
    lr: float = 1e-3
    cql_alpha: float = 1.0
    """Weight of the conservative term."""
    target_update_interval: int = 500
    """Gradient steps between target network updates."""
    tau: float = 1.0
    """Target update rate: 1 copies the online network, < 1 is a Polyak average."""
    double_q: bool = True
    """Pick the next action with the online network, value it with the target (Double DQN)."""
    dueling: bool = False
    """Separate state-value and advantage streams in the Q network."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""

    def validate(self) -> None:
        super().validate()
        check_range("cql_alpha", self.cql_alpha, 0)
        check_range("target_update_interval", self.target_update_interval, 1)
        check_range("tau", self.tau, 0, 1, low_inclusive=False)
        check_range("max_grad_norm", self.max_grad_norm, 0, low_inclusive=False)


class DiscreteCQL(OfflineAlgorithm):
    """CQL for Discrete actions on DQN's pieces, as a Tune Trainable."""

    policy_class = QPolicy
    config_class = DiscreteCQLConfig
    action_spaces = (gym.spaces.Discrete,)
    update_metrics = ("td_loss", "cql_penalty", "q_mean")
    policy: QPolicy

    def setup_learner(self) -> None:
        self.q_network = self.policy.network
        self.q_target = copy.deepcopy(self.q_network).requires_grad_(False)
        self.optimizer = adam(self.q_network.parameters(), self.algo_config.lr)
        self.optimizers = [self.optimizer]
        self.updates = 0

    def update(self, batch: OfflineBatch) -> dict[str, torch.Tensor]:
        cfg = self.algo_config
        with torch.no_grad():
            next_q_target = self.q_target(batch.next_obs)  # [K, B, A]
            next_q_online = self.q_network(batch.next_obs) if cfg.double_q else next_q_target
            targets = double_q_target(
                batch.rewards, batch.discounts, batch.terminated, next_q_online, next_q_target
            )
        q_all = self.q_network(batch.obs)  # [K, B, A]
        q = q_all.gather(-1, batch.actions.long().unsqueeze(-1)).squeeze(-1)  # Q(s, a_data), [K, B]
        td_loss = nn.functional.smooth_l1_loss(q, targets, reduction="none").mean(-1)  # [K]
        penalty = conservative_penalty(q_all, torch.zeros_like(q_all), q)  # every action, once
        loss = td_loss + cfg.cql_alpha * penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # seeds share no parameters: each gets its own gradient
        clip_grad_norm(self.q_network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if self.updates % cfg.target_update_interval == 0:
            polyak_update(self.q_target, self.q_network, cfg.tau)
        return {"td_loss": td_loss.detach(), "cql_penalty": penalty.detach(), "q_mean": q.detach().mean(-1)}

    def learner_state(self) -> dict[str, Any]:
        return {**super().learner_state(), "q_target": self.q_target.state_dict(), "updates": self.updates}

    def load_learner_state(self, state: dict[str, Any]) -> None:
        super().load_learner_state(state)
        self.q_target.load_state_dict(state["q_target"])
        self.updates = state["updates"]


@dataclass
class CQLConfig(OfflineConfig):
    """CQL hyperparameters for Box actions (CORL's and d3rlpy's: alpha_cql 5, 10 sampled actions)."""

    env: str = "Pendulum-v1"
    cql_alpha: float = 5.0
    """Weight of the conservative term."""
    num_sampled_actions: int = 10
    """Actions sampled per state from each of the uniform, the policy at s and at s'."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor and the temperature (the critics use lr)."""
    tau: float = 0.005
    """Polyak rate of the target critics per gradient step."""
    alpha: float | None = None
    """A fixed entropy temperature; None tunes it toward `target_entropy`, starting at `initial_alpha`."""
    initial_alpha: float = 1.0
    target_entropy: float | None = None
    """Entropy the tuned temperature aims for; None is -action_dim."""

    def validate(self) -> None:
        super().validate()
        check_range("cql_alpha", self.cql_alpha, 0)
        check_range("num_sampled_actions", self.num_sampled_actions, 1)
        check_range("actor_lr", self.actor_lr, 0, low_inclusive=False)
        check_range("tau", self.tau, 0, 1, low_inclusive=False)
        check_range("alpha", self.alpha, 0)
        check_range("initial_alpha", self.initial_alpha, 0, low_inclusive=False)


class CQL(OfflineAlgorithm):
    """CQL for Box actions on SAC's pieces, as a Tune Trainable."""

    policy_class = SquashedGaussianPolicy
    config_class = CQLConfig
    action_spaces = (gym.spaces.Box,)
    update_metrics = ("critic_loss", "cql_penalty", "actor_loss", "alpha", "q_mean")
    policy: SquashedGaussianPolicy

    def setup_learner(self) -> None:
        cfg = self.algo_config
        policy = self.policy
        self.actor = policy.network
        self.critic = TwinQ(policy.init_generators, policy.spec, policy.action_dim).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.full(
            (cfg.num_seeds,), np.log(cfg.initial_alpha), device=self.device, requires_grad=True
        )
        self.actor_optimizer = adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_optimizer = adam(self.critic.parameters(), cfg.lr)
        self.alpha_optimizer = adam([self.log_alpha], cfg.actor_lr)
        self.optimizers = [self.critic_optimizer]  # the lr the step loop sets; the others keep actor_lr

    def sampled_q(self, obs: TensorObs, next_obs: TensorObs) -> tuple[torch.Tensor, torch.Tensor]:
        """Both critics at s for M uniform actions, M policy actions at s and M at s', and the
        log-densities the actions were drawn with: Q [2, K, B, 3M], log mu [K, B, 3M]."""
        cfg = self.algo_config
        num_samples, (_, batch_size) = cfg.num_sampled_actions, next(iter(obs.values())).shape[:2]
        dim, rows = self.policy.action_dim, batch_size * cfg.num_sampled_actions
        at_s = {key: value.repeat_interleave(num_samples, 1) for key, value in obs.items()}  # [K, B M, ...]
        at_next = {key: value.repeat_interleave(num_samples, 1) for key, value in next_obs.items()}
        uniform = draw("uniform", self.learner_generators, (rows, dim), self.device) * 2 - 1
        with torch.no_grad():
            actions_s, logprob_s = self.actor.sample(
                at_s, draw("normal", self.learner_generators, (rows, dim), self.device)
            )
            actions_next, logprob_next = self.actor.sample(
                at_next, draw("normal", self.learner_generators, (rows, dim), self.device)
            )
        uniform_log_density = torch.full(uniform.shape[:2], -dim * math.log(2.0), device=self.device)
        actions = torch.cat([uniform, actions_s, actions_next], 1)  # [K, 3 B M, dim]
        q1, q2 = self.critic({key: torch.cat([value] * 3, 1) for key, value in at_s.items()}, actions)
        log_density = torch.cat([uniform_log_density, logprob_s, logprob_next], 1)

        def per_state(x: torch.Tensor) -> torch.Tensor:  # [..., 3 B M] -> [..., B, 3M]
            return x.unflatten(-1, (3, batch_size, num_samples)).transpose(-3, -2).flatten(-2)

        return torch.stack([per_state(q1), per_state(q2)]), per_state(log_density)

    def update(self, batch: OfflineBatch) -> dict[str, torch.Tensor]:
        cfg = self.algo_config
        target_entropy = -self.policy.action_dim if cfg.target_entropy is None else cfg.target_entropy
        alpha = (
            self.log_alpha.exp().detach()
            if cfg.alpha is None
            else torch.full((cfg.num_seeds,), cfg.alpha, device=self.device)
        )[:, None]  # [K, 1]
        # The critics see actions in [-1, 1]; recorded ones may sit exactly on a bound.
        actions = self.policy.to_unit_action(batch.actions.flatten(2)).clamp(-1, 1)
        noise_shape = (batch.rewards.shape[1], self.policy.action_dim)

        with torch.no_grad():
            next_actions, next_logprob = self.actor.sample(
                batch.next_obs, draw("normal", self.learner_generators, noise_shape, self.device)
            )
            next_q1, next_q2 = self.critic_target(batch.next_obs, next_actions)
            targets = soft_q_target(
                batch.rewards, batch.discounts, batch.terminated, next_q1, next_q2, next_logprob, alpha
            )
        q1, q2 = self.critic(batch.obs, actions)
        sampled, density = self.sampled_q(batch.obs, batch.next_obs)
        penalty = conservative_penalty(sampled[0], density, q1) + conservative_penalty(
            sampled[1], density, q2
        )
        critic_loss = twin_q_loss(q1, q2, targets) + cfg.cql_alpha * penalty  # [K]
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        self.critic_optimizer.step()

        new_actions, logprob = self.actor.sample(
            batch.obs, draw("normal", self.learner_generators, noise_shape, self.device)
        )
        self.critic.requires_grad_(False)
        q1_new, q2_new = self.critic(batch.obs, new_actions)
        self.critic.requires_grad_(True)
        actor_loss = sac_actor_loss(logprob, q1_new, q2_new, alpha)
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.sum().backward()
        self.actor_optimizer.step()

        if cfg.alpha is None:
            alpha_loss = temperature_loss(self.log_alpha[:, None], logprob.detach(), target_entropy)
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.sum().backward()
            self.alpha_optimizer.step()
        polyak_update(self.critic_target, self.critic, cfg.tau)
        return {
            "critic_loss": critic_loss.detach(),
            "cql_penalty": penalty.detach() / 2,
            "actor_loss": actor_loss.detach(),
            "alpha": alpha.squeeze(-1),
            "q_mean": q1.detach().mean(-1),
        }

    def learner_state(self) -> dict[str, Any]:
        return {
            **super().learner_state(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.detach().cpu(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
        }

    def load_learner_state(self, state: dict[str, Any]) -> None:
        super().load_learner_state(state)
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])


def conservative_penalty(
    q_sampled: torch.Tensor, log_density: torch.Tensor, q_data: torch.Tensor
) -> torch.Tensor:
    """mean_B [ log sum_j exp(Q(s, a_j) - log mu(a_j|s)) - Q(s, a_data) ]: CQL's term;
    q_sampled and log_density [..., B, M], q_data [..., B]; one value per leading index.

    With every discrete action once and log mu = 0 the sum is exact (DiscreteCQL); with
    actions drawn from mu, subtracting their log-density makes it an importance-sampled
    estimate. Minimizing it lowers a soft maximum of Q over actions while raising Q on the
    data's actions: values off the data cannot exceed those on it by much.
    """
    return (torch.logsumexp(q_sampled - log_density, -1) - q_data).mean(-1)
