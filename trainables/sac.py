"""Soft Actor-Critic (Haarnoja et al. 2018, "SAC: Algorithms and Applications") for Box actions.

The actor is a tanh-squashed Gaussian; twin critics and their Polyak-averaged targets
learn the soft Q-function; the temperature alpha is tuned so the policy's entropy stays
near `target_entropy`. Before `learning_starts` the workers act uniformly at random.
Each gradient step, in the order of the paper's algorithm 1:

    critic:  min  (Q_i(s, a) - y)^2,  y = r + gamma (1 - done) (min_i Q'_i(s', a') - alpha log pi(a'|s'))
    actor:   min  alpha log pi(a~|s) - min_i Q_i(s, a~),  a~ ~ pi(.|s) reparameterized
    alpha:   min  -log(alpha) (log pi(a~|s) + target_entropy)
    targets: Q'_i <- tau Q_i + (1 - tau) Q'_i
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables.config import check_range
from rlsweep.trainables.learning.optim import adam
from rlsweep.trainables.models.networks import TwinQ
from rlsweep.trainables.models.policies import SquashedGaussianPolicy
from rlsweep.trainables.off_policy import Batch, OffPolicyAlgorithm, OffPolicyConfig, polyak_update
from rlsweep.trainables.seeds import draw


@dataclass
class SACConfig(OffPolicyConfig):
    """SAC hyperparameters; defaults follow the paper and SB3 (one gradient step per env step)."""

    env: str = "Pendulum-v1"
    num_envs_per_worker: int = 4
    lr: float = 3e-4
    buffer_size: int = 1_000_000
    learning_starts: int = 100
    gradient_steps: int = 4
    tau: float = 0.005
    """Polyak rate of the target critics per gradient step."""
    alpha: float | None = None
    """A fixed entropy temperature; None tunes it toward `target_entropy`, starting at `initial_alpha`."""
    initial_alpha: float = 1.0
    """The tuned temperature's starting value."""
    target_entropy: float | None = None
    """Entropy the tuned temperature aims for; None is -action_dim, the paper's heuristic."""

    def validate(self) -> None:
        super().validate()
        check_range("tau", self.tau, 0, 1, low_inclusive=False)
        check_range("alpha", self.alpha, 0)
        check_range("initial_alpha", self.initial_alpha, 0, low_inclusive=False)


class SAC(OffPolicyAlgorithm):
    """SAC as a Tune Trainable: `tune.run(SAC, config={"env": "Pendulum-v1"})`."""

    policy_class = SquashedGaussianPolicy
    config_class = SACConfig
    action_spaces = (gym.spaces.Box,)
    update_metrics = ("critic_loss", "actor_loss", "alpha", "alpha_loss", "entropy", "q_mean")
    policy: SquashedGaussianPolicy

    @classmethod
    def action_space_problem(cls, action_space: gym.spaces.Space) -> str | None:
        problem = super().action_space_problem(action_space)
        if problem is not None:
            return problem
        if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
            return "SAC squashes actions into the action space's bounds, which must be finite"
        return None

    def setup_learner(self) -> None:
        super().setup_learner()
        cfg = self.algo_config
        policy = self.policy
        self.actor = policy.network
        self.critic = TwinQ(policy.init_generators, policy.spec, policy.action_dim).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.full(
            (cfg.num_seeds,),
            np.log(cfg.initial_alpha),
            dtype=torch.float32,
            device=self.device,
            requires_grad=True,
        )  # one temperature per seed
        self.actor_optimizer = adam(self.actor.parameters(), cfg.lr)
        self.critic_optimizer = adam(self.critic.parameters(), cfg.lr)
        self.alpha_optimizer = adam([self.log_alpha], cfg.lr)
        self.optimizers = [self.actor_optimizer, self.critic_optimizer, self.alpha_optimizer]

    def sampling_weights(self) -> dict[str, Any]:
        uniform = self.timesteps_total < self.algo_config.learning_starts
        return {**self.policy.get_weights(), "uniform_actions": uniform}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.algo_config
        target_entropy = -self.policy.action_dim if cfg.target_entropy is None else cfg.target_entropy
        alpha = (
            self.log_alpha.exp().detach()
            if cfg.alpha is None
            else torch.full((cfg.num_seeds,), cfg.alpha, device=self.device)
        )[:, None]  # [K, 1]
        actions = self.policy.to_unit_action(batch.actions)  # the critics see actions in [-1, 1]
        noise_shape = (batch.rewards.shape[1], self.policy.action_dim)

        with torch.no_grad():
            next_noise = draw("normal", self.learner_generators, noise_shape, self.device)
            next_actions, next_logprob = self.actor.sample(batch.next_obs, next_noise)
            next_q1, next_q2 = self.critic_target(batch.next_obs, next_actions)
            targets = soft_q_target(
                batch.rewards, batch.discounts, batch.terminated, next_q1, next_q2, next_logprob, alpha
            )
        q1, q2 = self.critic(batch.obs, actions)
        critic_loss = twin_q_loss(q1, q2, targets)  # [K]
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.sum().backward()  # seeds share no parameters: each gets its own gradient
        self.critic_optimizer.step()

        # The actor's gradient flows through the critics, which stay fixed for this step.
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

        alpha_loss = temperature_loss(self.log_alpha[:, None], logprob.detach(), target_entropy)
        if cfg.alpha is None:
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.sum().backward()
            self.alpha_optimizer.step()

        polyak_update(self.critic_target, self.critic, cfg.tau)
        return {
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "alpha": alpha.squeeze(-1),
            "alpha_loss": alpha_loss.detach(),
            "entropy": -logprob.detach().mean(-1),
            "q_mean": q1.detach().mean(-1),
        }

    def learner_state(self) -> dict[str, Any]:
        return {
            **super().learner_state(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.detach().cpu(),
        }

    def load_learner_state(self, state: dict[str, Any]) -> None:
        super().load_learner_state(state)
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])


def soft_q_target(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    terminated: torch.Tensor,
    next_q1: torch.Tensor,
    next_q2: torch.Tensor,
    next_logprob: torch.Tensor,
    alpha: torch.Tensor,
) -> torch.Tensor:
    """y = r + gamma^n (1 - terminated) (min(Q'_1, Q'_2)(s', a') - alpha log pi(a'|s')), all
    [..., B] (alpha broadcast against them, e.g. [K, 1]).

    The soft value of s' adds the entropy bonus -alpha log pi; the smaller of the twin
    target critics keeps the bootstrap from inheriting their overestimation.
    """
    next_value = torch.min(next_q1, next_q2) - alpha * next_logprob
    return rewards + discounts * (1 - terminated) * next_value


def twin_q_loss(q1: torch.Tensor, q2: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Both critics regress to the same target: MSE(Q1, y) + MSE(Q2, y); inputs [..., B],
    one loss per leading index (seed)."""
    return (q1 - targets).pow(2).mean(-1) + (q2 - targets).pow(2).mean(-1)


def sac_actor_loss(
    logprob: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """E[alpha log pi(a~|s) - min(Q1, Q2)(s, a~)] for reparameterized actions a~; inputs
    [..., B], one loss per leading index (seed).

    Minimizing it is the KL projection onto the critic's Boltzmann policy: high soft Q
    and high entropy both lower it.
    """
    return (alpha * logprob - torch.min(q1, q2)).mean(-1)


def temperature_loss(log_alpha: torch.Tensor, logprob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """-log(alpha) (log pi + target_entropy), averaged over the last axis; logprob [..., B],
    detached, log_alpha broadcast against it (e.g. [K, 1]).

    Its gradient raises alpha while the policy's entropy -log pi is below the target and
    lowers it above. Optimizing log(alpha) keeps alpha positive (as SB3 does).
    """
    return -(log_alpha * (logprob + target_entropy)).mean(-1)
