"""Proximal Policy Optimization (Schulman et al. 2017), clipped-surrogate variant.

Workers collect `rollout_length` steps from each of their envs with the current policy;
the learner computes GAE advantages and runs `num_epochs` passes of minibatch updates on
the clipped objective below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlsweep.trainables.advantages import compute_gae
from rlsweep.trainables.algorithm import Algorithm, AlgorithmConfig
from rlsweep.trainables.config import ConfigError, check_range
from rlsweep.trainables.policy import ActorCriticPolicy
from rlsweep.trainables.rollout_worker import Rollout


@dataclass
class PPOConfig(AlgorithmConfig):
    """PPO hyperparameters; defaults follow CleanRL's classic-control settings."""

    rollout_length: int = 128
    """Steps per env per iteration; the batch is max(1, num_workers) * num_envs_per_worker * this."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE bias-variance trade-off: 0 is one-step TD, 1 is Monte Carlo."""
    lr: float = 3e-4
    """Adam learning rate."""
    lr_anneal_timesteps: int | None = None
    """If set, the learning rate decays linearly to 0 over this many env steps."""
    num_epochs: int = 4
    """Passes over each batch."""
    minibatch_size: int = 256
    """Transitions per gradient step; must not exceed the batch."""
    clip_range: float = 0.2
    """PPO's epsilon: how far the probability ratio may move before the objective stops rewarding it."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    normalize_advantages: bool = True
    """Standardize advantages within each minibatch."""

    def validate(self) -> None:
        super().validate()
        check_range("rollout_length", self.rollout_length, 1)
        check_range("gamma", self.gamma, 0, 1, low_inclusive=False)
        check_range("gae_lambda", self.gae_lambda, 0, 1)
        check_range("lr", self.lr, 0, low_inclusive=False)
        check_range("lr_anneal_timesteps", self.lr_anneal_timesteps, 1)
        check_range("num_epochs", self.num_epochs, 1)
        check_range("minibatch_size", self.minibatch_size, 2)
        check_range("clip_range", self.clip_range, 0, low_inclusive=False)
        check_range("vf_coef", self.vf_coef, 0)
        check_range("ent_coef", self.ent_coef, 0)
        check_range("max_grad_norm", self.max_grad_norm, 0, low_inclusive=False)
        if self.minibatch_size > self.batch_size:
            raise ConfigError(
                f"config key 'minibatch_size' ({self.minibatch_size}) must not exceed the batch size "
                f"max(1, num_workers) * num_envs_per_worker * rollout_length = {self.batch_size}"
            )

    @property
    def batch_size(self) -> int:
        return max(1, self.num_workers) * self.num_envs_per_worker * self.rollout_length


class PPO(Algorithm):
    """PPO as a Tune Trainable: `tune.run(PPO, config={"env": "CartPole-v1"})`."""

    policy_class = ActorCriticPolicy
    config_class = PPOConfig
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)

    def setup_learner(self) -> None:
        self.optimizer = torch.optim.Adam(self.policy.network.parameters(), lr=self.algo_config.lr, eps=1e-5)

    def rollout_steps(self) -> int:
        return self.algo_config.rollout_length

    def current_lr(self) -> float:
        cfg = self.algo_config
        if cfg.lr_anneal_timesteps is None:
            return cfg.lr
        return cfg.lr * max(0.0, 1.0 - self.timesteps_total / cfg.lr_anneal_timesteps)

    def learn(self, rollouts: list[Rollout]) -> dict[str, float]:
        cfg = self.algo_config
        batch = self._batch(rollouts)
        network = self.policy.network
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        num_samples = len(batch["advantages"])
        num_minibatches = max(1, num_samples // cfg.minibatch_size)
        stats: dict[str, list[float]] = {
            k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
        }
        for _ in range(cfg.num_epochs):
            for index in torch.randperm(num_samples, device=self.device).tensor_split(num_minibatches):
                obs, actions = batch["obs"][index], batch["actions"][index]
                old_logprob, advantages, returns = (
                    batch["logprob"][index],
                    batch["advantages"][index],
                    batch["returns"][index],
                )

                dist = network.distribution(obs)
                logprob, entropy = network.log_prob_entropy(dist, actions)
                if cfg.normalize_advantages:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                policy_loss, approx_kl, clip_fraction = clipped_surrogate_loss(
                    logprob, old_logprob, advantages, cfg.clip_range
                )
                value_loss = 0.5 * (network.value(obs) - returns).pow(2).mean()
                entropy = entropy.mean()
                loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy

                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(network.parameters(), cfg.max_grad_norm)
                self.optimizer.step()

                stats["approx_kl"].append(approx_kl.item())
                stats["clip_fraction"].append(clip_fraction.item())
                stats["policy_loss"].append(policy_loss.item())
                stats["value_loss"].append(value_loss.item())
                stats["entropy"].append(entropy.item())

        # Statistics move only after the update, so the update saw what the workers saw.
        self.policy.normalizer.update(batch["raw_obs"])
        metrics = {key: float(np.mean(values)) for key, values in stats.items()}
        metrics["lr"] = lr
        metrics["explained_variance"] = _explained_variance(batch["values"], batch["returns"])
        return metrics

    @torch.no_grad()
    def _batch(self, rollouts: list[Rollout]) -> dict[str, Any]:
        """Flatten the valid steps of all rollouts into learner tensors, with GAE targets."""
        cfg = self.algo_config
        parts: dict[str, list[np.ndarray]] = {
            k: [] for k in ("raw_obs", "actions", "logprob", "values", "advantages", "returns")
        }
        for rollout in rollouts:
            values = rollout.extras["value"]  # [T, N]
            last_value = (
                self.policy.network.value(self.policy.obs_tensor(rollout.obs[-1])).cpu().numpy()
            )  # [N]
            next_values = np.concatenate([values[1:], last_value[None]])  # V(s_{t+1}), [T, N]
            advantages, returns = compute_gae(
                rollout.rewards,
                values,
                next_values,
                rollout.terminated,
                rollout.truncated,
                cfg.gamma,
                cfg.gae_lambda,
            )
            valid = rollout.valid
            parts["raw_obs"].append(rollout.obs[:-1][valid])
            parts["actions"].append(rollout.actions[valid])
            parts["logprob"].append(rollout.extras["logprob"][valid])
            parts["values"].append(values[valid])
            parts["advantages"].append(advantages[valid])
            parts["returns"].append(returns[valid])
        batch = {key: np.concatenate(arrays) for key, arrays in parts.items()}
        tensors = {
            key: torch.as_tensor(array, device=self.device)
            for key, array in batch.items()
            if key != "raw_obs"
        }
        tensors["obs"] = self.policy.obs_tensor(batch["raw_obs"])
        tensors["raw_obs"] = batch["raw_obs"]
        return tensors

    def learner_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_learner_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def clipped_surrogate_loss(
    logprob: torch.Tensor, old_logprob: torch.Tensor, advantages: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped objective as a loss, plus the approximate KL and clip fraction; inputs [B].

    The loss takes the pessimistic (larger) of the unclipped and clipped terms, so moving the
    probability ratio outside [1 - clip, 1 + clip] earns nothing.
    """
    log_ratio = logprob - old_logprob
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_range, 1 + clip_range)
    loss = torch.max(unclipped, clipped).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()  # KL(old || new), Schulman's low-variance k3
        clip_fraction = ((ratio - 1).abs() > clip_range).float().mean()
    return loss, approx_kl, clip_fraction


def _explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var[target - predicted] / Var[target]: 1 is a perfect critic, <= 0 is useless."""
    variance = target.var()
    return float("nan") if variance == 0 else float(1 - (target - predicted).var() / variance)
