"""The acting side of an actor-critic agent: what workers sample with and users deploy."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from trainables.networks import ActorCritic
from trainables.normalizer import ObservationNormalizer


class ActorCriticPolicy:
    """An `ActorCritic` network plus the observation normalizer it was trained with.

    `act` samples exploratory actions for rollouts (with the log-probabilities and values
    PPO needs); `compute_single_action` is the deployment API, deterministic by default.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        hidden_sizes: tuple[int, ...],
        activation: str,
        normalize_obs: bool,
        device: torch.device | str = "cpu",
    ):
        self.observation_space = observation_space
        self.action_space = action_space
        self.continuous = isinstance(action_space, gym.spaces.Box)
        action_dim = int(np.prod(action_space.shape)) if self.continuous else int(action_space.n)
        self.device = torch.device(device)
        obs_dim = gym.spaces.flatdim(observation_space)
        self.network = ActorCritic(obs_dim, action_dim, self.continuous, hidden_sizes, activation).to(
            self.device
        )
        self.normalizer = ObservationNormalizer((obs_dim,), normalize_obs)

    def obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        """Flat observations [..., obs_dim] (one-hot for Discrete spaces, as vector envs give
        them) normalized, as float32 on the policy's device."""
        # A copy: observations arriving through the object store are read-only arrays.
        return torch.tensor(self.normalizer(obs), device=self.device)

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sample actions for a batch of raw observations [num_envs, ...]."""
        x = self.obs_tensor(obs)
        dist = self.network.distribution(x)
        actions = dist.sample()
        logprob, _ = self.network.log_prob_entropy(dist, actions)
        extras = {"logprob": logprob.cpu().numpy(), "value": self.network.value(x).cpu().numpy()}
        return actions.cpu().numpy(), extras

    @torch.inference_mode()
    def compute_actions(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Env-ready actions (clipped to a Box's bounds) for a batch of raw observations."""
        x = self.obs_tensor(obs)
        if deterministic:
            actions = self.network.deterministic_action(x)
        else:
            actions = self.network.distribution(x).sample()
        actions = actions.cpu().numpy()
        if self.continuous:
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        return actions

    def compute_single_action(self, obs: Any, deterministic: bool = True) -> Any:
        """The action for one observation as the env returns it (an array, or an int for
        Discrete observation spaces)."""
        obs = gym.spaces.flatten(self.observation_space, obs)
        action = self.compute_actions(obs[None], deterministic)[0]
        return action if self.continuous else int(action)

    def get_weights(self) -> dict[str, Any]:
        """CPU copies of everything a worker needs to act like this policy."""
        return {
            "network": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "normalizer": self.normalizer.state_dict(),
        }

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.network.load_state_dict(weights["network"])
        self.normalizer.load_state_dict(weights["normalizer"])
