"""Fitted Q evaluation (Le et al. 2019): an estimate of a policy's return from the dataset
alone, no env needed.

A critic Q_pi learns the value of following the policy pi from each recorded (s, a):

    min  (Q_pi(s, a) - y)^2,  y = r + gamma (1 - done) Q'_pi(s', pi(s'))

with pi's deterministic action at s' and a Polyak-averaged target Q'_pi; the estimate is
the mean of Q_pi(s0, pi(s0)) over the dataset's episode starts: pi's discounted return.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from rlsweep.trainables.learning.optim import adam
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.networks import QNetwork, TwinQ
from rlsweep.trainables.models.policy import Policy
from rlsweep.trainables.off_policy import polyak_update
from rlsweep.trainables.seeds import generators

if TYPE_CHECKING:
    from rlsweep.trainables.offline_algorithm import OfflineAlgorithm

FQE_SEED_OFFSET = 7_919
"""The FQE critic's initial weights come from generators of its own, seeded apart from the policy's."""

TARGET_TAU = 0.005
MAX_STARTS = 1_000
"""Episode starts the estimate averages over at most (the first ones)."""


class FittedQEvaluation:
    """A critic of the policy being trained, fitted a little further at each evaluation."""

    def __init__(self, policy: Policy, gamma: float, lr: float, seeds: Sequence[int]):
        self.gamma = gamma
        init = generators([seed + FQE_SEED_OFFSET for seed in seeds])
        space = policy.action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        if self.discrete:
            self.critic: torch.nn.Module = QNetwork(init, policy.spec, int(space.n), dueling=False)
        else:
            self.critic = TwinQ(init, policy.spec, int(np.prod(space.shape)))
        self.critic.to(policy.device)
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.optimizer = adam(self.critic.parameters(), lr)

    def q_values(self, critic: torch.nn.Module, obs: TensorObs, actions: torch.Tensor) -> torch.Tensor:
        """Q(s, a) [K, B] for 0-based action indices (Discrete) or env-scale actions (Box)."""
        if self.discrete:
            return critic(obs).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        q1, q2 = critic(obs, actions.flatten(2))
        return (q1 + q2) / 2

    def policy_actions(self, algorithm: OfflineAlgorithm, observations: np.ndarray) -> torch.Tensor:
        """pi's deterministic actions [K, B, ...] at dataset observations [K, B, ...]."""
        policy = algorithm.policy
        actions, _ = policy.compute_actions(algorithm.encode(observations), {}, deterministic=True)
        if self.discrete:
            actions = actions - int(policy.action_space.start)
        return torch.as_tensor(actions, device=policy.device)

    def fit(self, algorithm: OfflineAlgorithm, steps: int, batch_size: int) -> np.ndarray:
        """`steps` gradient steps on dataset minibatches; the last loss per seed [K]."""
        data = algorithm.dataset
        loss = torch.zeros(algorithm.algo_config.num_seeds)
        for _ in range(steps):
            rows = algorithm.sample_rows(batch_size)
            batch = algorithm.batch(rows)
            with torch.no_grad():
                next_actions = self.policy_actions(algorithm, np.asarray(data.next_observations[rows]))
                next_q = self.q_values(self.target, batch.next_obs, next_actions)
                targets = batch.rewards + batch.discounts * (1 - batch.terminated) * next_q
            q = self.q_values(self.critic, batch.obs, batch.actions)
            loss = F.mse_loss(q, targets, reduction="none").mean(-1)  # [K]
            self.optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()  # seeds share no parameters: each gets its own gradient
            self.optimizer.step()
            with torch.no_grad():
                polyak_update(self.target, self.critic, TARGET_TAU)
        return loss.detach().cpu().numpy()

    @torch.no_grad()
    def estimate(self, algorithm: OfflineAlgorithm) -> np.ndarray:
        """Mean Q_pi(s0, pi(s0)) over the dataset's episode starts, per seed [K]."""
        data = algorithm.dataset
        starts = data.episode_starts()[:MAX_STARTS]
        rows = np.broadcast_to(starts, (algorithm.algo_config.num_seeds, len(starts)))
        observations = np.asarray(data.observations[rows])
        obs = algorithm.policy.obs_tensors(algorithm.encode(observations))
        actions = self.policy_actions(algorithm, observations)
        return self.q_values(self.critic, obs, actions).mean(-1).cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        return {
            "critic": self.critic.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic.load_state_dict(state["critic"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
