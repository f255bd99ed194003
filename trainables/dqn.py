"""Deep Q-Networks (Mnih et al. 2015) with the usual improvements as options: Double DQN
(van Hasselt et al. 2016), a dueling head (Wang et al. 2016) and n-step returns.

Workers act epsilon-greedily, epsilon decaying linearly with env steps; the learner
regresses Q(s, a) toward r + gamma^n max_a' Q_target(s', a') with the Huber loss on
batches replayed from the buffer, and moves the target network toward the online one
every `target_update_interval` env steps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from rlsweep.trainables.config import check_range
from rlsweep.trainables.learning.optim import adam, clip_grad_norm
from rlsweep.trainables.models.distributions import masked_logits
from rlsweep.trainables.models.observations import MASK_KEY
from rlsweep.trainables.models.policies import QPolicy
from rlsweep.trainables.off_policy import Batch, OffPolicyAlgorithm, OffPolicyConfig, polyak_update
from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.seeds import SeedMetrics


@dataclass
class DQNConfig(OffPolicyConfig):
    """DQN hyperparameters; defaults are tuned on CartPole-v1 (solved in about 30k steps)."""

    num_envs_per_worker: int = 4
    hidden_sizes: tuple[int, ...] = (128, 128)
    lr: float = 2.3e-3
    buffer_size: int = 100_000
    batch_size: int = 64
    learning_starts: int = 1000
    train_freq: int = 16
    gradient_steps: int = 16
    n_step: int = 3
    target_update_interval: int = 250
    """Env steps between target network updates (checked once per round)."""
    tau: float = 1.0
    """Target update rate: 1 copies the online network (classic DQN), < 1 is a Polyak average."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start of training."""
    exploration_final_eps: float = 0.01
    """Epsilon after `exploration_timesteps` env steps, and from then on."""
    exploration_timesteps: int = 5_000
    """Env steps over which epsilon decays linearly from its initial to its final value."""
    double_q: bool = True
    """Pick the next action with the online network, value it with the target (Double DQN)."""
    dueling: bool = False
    """Separate state-value and advantage streams in the Q network."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""

    def validate(self) -> None:
        super().validate()
        check_range("target_update_interval", self.target_update_interval, 1)
        check_range("tau", self.tau, 0, 1, low_inclusive=False)
        check_range("exploration_initial_eps", self.exploration_initial_eps, 0, 1)
        check_range("exploration_final_eps", self.exploration_final_eps, 0, 1)
        check_range("exploration_timesteps", self.exploration_timesteps, 1)
        check_range("max_grad_norm", self.max_grad_norm, 0, low_inclusive=False)


class DQN(OffPolicyAlgorithm):
    """DQN as a Tune Trainable: `tune.run(DQN, config={"env": "CartPole-v1"})`."""

    policy_class = QPolicy
    config_class = DQNConfig
    action_spaces = (gym.spaces.Discrete,)
    update_metrics = ("td_loss", "q_mean")
    policy: QPolicy

    def setup_learner(self) -> None:
        super().setup_learner()
        self.q_network = self.policy.network
        self.q_target = copy.deepcopy(self.q_network).requires_grad_(False)
        self.optimizer = adam(self.q_network.parameters(), self.algo_config.lr)
        self.optimizers = [self.optimizer]
        self.last_target_update = 0  # timesteps_total at the last target update

    def epsilon(self) -> float:
        """The exploration rate at the current env step: linear decay, then constant."""
        cfg = self.algo_config
        progress = min(1.0, self.timesteps_total / cfg.exploration_timesteps)
        return cfg.exploration_initial_eps + progress * (
            cfg.exploration_final_eps - cfg.exploration_initial_eps
        )

    def sampling_weights(self) -> dict[str, Any]:
        return {**self.policy.get_weights(), "epsilon": self.epsilon()}

    def learn(self, rollouts: list[Rollout]) -> SeedMetrics:
        cfg = self.algo_config
        if self.timesteps_total - self.last_target_update >= cfg.target_update_interval:
            polyak_update(self.q_target, self.q_network, cfg.tau)
            self.last_target_update = self.timesteps_total
        return super().learn(rollouts)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.algo_config
        next_mask = batch.next_obs.get(MASK_KEY)
        with torch.no_grad():
            next_q_target = self.q_target(batch.next_obs)  # [K, B, num_actions]
            next_q_online = self.q_network(batch.next_obs) if cfg.double_q else next_q_target
            targets = double_q_target(
                batch.rewards,
                batch.discounts,
                batch.terminated,
                masked_logits(next_q_online, next_mask),
                next_q_target,
            )
        q = (
            self.q_network(batch.obs).gather(-1, batch.actions.long().unsqueeze(-1)).squeeze(-1)
        )  # Q(s, a), [K, B]
        loss = nn.functional.smooth_l1_loss(q, targets, reduction="none").mean(-1)  # [K]

        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # seeds share no parameters: each gets its own gradient
        clip_grad_norm(self.q_network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return {"td_loss": loss.detach(), "q_mean": q.detach().mean(-1)}

    def step(self) -> dict[str, Any]:
        return {**super().step(), "epsilon": self.epsilon()}

    def learner_state(self) -> dict[str, Any]:
        return {
            **super().learner_state(),
            "q_target": self.q_target.state_dict(),
            "last_target_update": self.last_target_update,
        }

    def load_learner_state(self, state: dict[str, Any]) -> None:
        super().load_learner_state(state)
        self.q_target.load_state_dict(state["q_target"])
        self.last_target_update = state["last_target_update"]


def double_q_target(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    terminated: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
) -> torch.Tensor:
    """The TD target r + gamma^n Q_target(s', argmax_a' Q_online(s', a')), 0-bootstrap at
    terminal s'; rewards, discounts, terminated [..., B], next Q-values [..., B, num_actions]
    (the online ones masked, where actions are, so the argmax is an allowed action).

    With `next_q_online` the online network's values this is Double DQN: the target network
    only evaluates the action, so one network's overestimated argmax is not also its
    estimate. Passing the target's own values gives classic DQN's max.
    """
    next_actions = next_q_online.argmax(-1, keepdim=True)
    next_value = next_q_target.gather(-1, next_actions).squeeze(-1)
    return rewards + discounts * (1 - terminated) * next_value
