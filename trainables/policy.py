"""The acting side of each agent: what workers sample with and users deploy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlsweep.trainables.networks import ActorCritic, QNetwork, SquashedGaussianActor
from rlsweep.trainables.normalizer import ObservationNormalizer

if TYPE_CHECKING:
    from rlsweep.trainables.algorithm import AlgorithmConfig
    from rlsweep.trainables.dqn import DQNConfig


class Policy:
    """A network plus the observation normalizer it was trained with.

    Subclasses build `network` from the algorithm's config and define `act` (exploratory
    actions for rollouts, with whatever per-step outputs their learner needs) and
    `compute_actions` (env-ready actions, deterministic by default).
    `compute_single_action` is the deployment API.
    """

    network: nn.Module

    def __init__(
        self,
        config: AlgorithmConfig,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        device: torch.device | str = "cpu",
    ):
        self.observation_space = observation_space
        self.action_space = action_space
        self.continuous = isinstance(action_space, gym.spaces.Box)
        self.obs_dim = gym.spaces.flatdim(observation_space)
        self.action_dim = int(np.prod(action_space.shape)) if self.continuous else int(action_space.n)
        self.device = torch.device(device)
        self.normalizer = ObservationNormalizer((self.obs_dim,), config.normalize_obs)

    def obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        """Flat observations [..., obs_dim] (one-hot for Discrete spaces, as vector envs give
        them) normalized, as float32 on the policy's device."""
        # A copy: observations arriving through the object store are read-only arrays.
        return torch.tensor(self.normalizer(obs), device=self.device)

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Exploratory actions for a batch of raw observations [num_envs, ...], and extras."""
        raise NotImplementedError

    def compute_actions(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Env-ready actions for a batch of raw observations."""
        raise NotImplementedError

    def compute_single_action(self, obs: Any, deterministic: bool = True) -> Any:
        """The action for one observation as the env returns it (an array, or an int for
        Discrete action spaces)."""
        obs = gym.spaces.flatten(self.observation_space, obs)
        action = self.compute_actions(obs[None], deterministic)[0]
        return action if self.continuous else int(action)

    def get_weights(self) -> dict[str, Any]:
        """Everything a worker needs to act like this policy, as numpy arrays: Ray ships
        those several times faster than torch tensors."""
        return {
            "network": {k: v.detach().cpu().numpy() for k, v in self.network.state_dict().items()},
            "normalizer": self.normalizer.state_dict(),
        }

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.network.load_state_dict({k: torch.as_tensor(v) for k, v in weights["network"].items()})
        self.normalizer.load_state_dict(weights["normalizer"])


class ActorCriticPolicy(Policy):
    """An `ActorCritic` network; `act` also returns the log-probabilities and values PPO needs."""

    def __init__(
        self,
        config: AlgorithmConfig,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        device: torch.device | str = "cpu",
    ):
        super().__init__(config, observation_space, action_space, device)
        self.network = ActorCritic(
            self.obs_dim, self.action_dim, self.continuous, config.hidden_sizes, config.activation
        ).to(self.device)

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        x = self.obs_tensor(obs)
        dist = self.network.distribution(x)
        actions = dist.sample()
        logprob, _ = self.network.log_prob_entropy(dist, actions)
        extras = {"logprob": logprob.cpu().numpy(), "value": self.network.value(x).cpu().numpy()}
        return actions.cpu().numpy(), extras

    @torch.inference_mode()
    def compute_actions(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions clipped to a Box's bounds."""
        x = self.obs_tensor(obs)
        if deterministic:
            actions = self.network.deterministic_action(x)
        else:
            actions = self.network.distribution(x).sample()
        actions = actions.cpu().numpy()
        if self.continuous:
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        return actions


class QPolicy(Policy):
    """Epsilon-greedy over a `QNetwork`'s action values (Discrete actions).

    `epsilon` travels with the weights, so the learner's schedule reaches every worker;
    the learner's own copy stays 0, and deployment is greedy.
    """

    def __init__(
        self,
        config: DQNConfig,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Discrete,
        device: torch.device | str = "cpu",
    ):
        super().__init__(config, observation_space, action_space, device)
        self.network = QNetwork(
            self.obs_dim, self.action_dim, config.hidden_sizes, config.activation, config.dueling
        ).to(self.device)
        self.epsilon = 0.0

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self._epsilon_greedy(obs, self.epsilon), {}

    @torch.inference_mode()
    def compute_actions(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self._epsilon_greedy(obs, 0.0 if deterministic else self.epsilon)

    def _epsilon_greedy(self, obs: np.ndarray, epsilon: float) -> np.ndarray:
        greedy = self.network(self.obs_tensor(obs)).argmax(-1)
        if epsilon > 0:
            # torch's generator, which each worker seeds, so sampling is reproducible.
            explore = torch.rand(greedy.shape, device=self.device) < epsilon
            random_actions = torch.randint(self.action_dim, greedy.shape, device=self.device)
            greedy = torch.where(explore, random_actions, greedy)
        return greedy.cpu().numpy()

    def get_weights(self) -> dict[str, Any]:
        return {**super().get_weights(), "epsilon": self.epsilon}

    def set_weights(self, weights: dict[str, Any]) -> None:
        super().set_weights(weights)
        self.epsilon = float(weights["epsilon"])


class SquashedGaussianPolicy(Policy):
    """A `SquashedGaussianActor` whose actions in (-1, 1) are rescaled to a Box's bounds.

    With `uniform_actions` (sent with the weights) it acts uniformly at random within the
    bounds instead, as SAC does before learning starts.
    """

    def __init__(
        self,
        config: AlgorithmConfig,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Box,
        device: torch.device | str = "cpu",
    ):
        super().__init__(config, observation_space, action_space, device)
        self.network = SquashedGaussianActor(
            self.obs_dim, self.action_dim, config.hidden_sizes, config.activation
        ).to(self.device)
        self.low = torch.as_tensor(action_space.low, dtype=torch.float32, device=self.device).flatten()
        self.high = torch.as_tensor(action_space.high, dtype=torch.float32, device=self.device).flatten()
        self.uniform_actions = False

    def to_env_action(self, unit_action: torch.Tensor) -> torch.Tensor:
        """[..., action_dim] in [-1, 1] to the env's bounds."""
        return self.low + (unit_action + 1) * 0.5 * (self.high - self.low)

    def to_unit_action(self, env_action: torch.Tensor) -> torch.Tensor:
        """The inverse of `to_env_action`: env-scale actions to [-1, 1]."""
        return 2 * (env_action - self.low) / (self.high - self.low) - 1

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self.uniform_actions:
            unit = torch.rand((len(obs), self.action_dim), device=self.device) * 2 - 1
        else:
            unit, _ = self.network.sample(self.obs_tensor(obs))
        return self._env_actions(unit), {}

    @torch.inference_mode()
    def compute_actions(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        x = self.obs_tensor(obs)
        unit = self.network.mean_action(x) if deterministic else self.network.sample(x)[0]
        return self._env_actions(unit)

    def _env_actions(self, unit_action: torch.Tensor) -> np.ndarray:
        actions = self.to_env_action(unit_action).cpu().numpy()
        # Rounding can put a saturated action an ulp past a bound.
        actions = np.clip(
            actions.reshape(len(actions), *self.action_space.shape),
            self.action_space.low,
            self.action_space.high,
        )
        return actions

    def get_weights(self) -> dict[str, Any]:
        return {**super().get_weights(), "uniform_actions": self.uniform_actions}

    def set_weights(self, weights: dict[str, Any]) -> None:
        super().set_weights(weights)
        self.uniform_actions = bool(weights["uniform_actions"])
