"""Action distributions for PPO's policy head, one per action space, as plain tensor math.

A head turns the actor network's output `params` [K, B, param_dim] into log-probabilities,
entropies, samples and greedy actions. Sampling takes its randomness as an argument
(`noise`, drawn per seed from the seed's own generator, see `seeds.draw`), so a
seed samples the same actions whether it trains alone or beside others. An action mask
[K, B, A] (True: allowed) gives disallowed actions zero probability.
"""

from __future__ import annotations

from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from rlsweep.trainables.config import ConfigError

ACTION_SPACES = (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary, gym.spaces.Box)
"""The action spaces a head exists for (`action_head`)."""

MASKED_LOGIT = torch.finfo(torch.float32).min
"""Logit of a disallowed action: exp() is exactly 0, and 0 * logit stays finite (not NaN)."""


class ActionHead:
    """What PPO needs from a distribution over one action space."""

    param_dim: int
    """Actor outputs per sample."""
    noise: Literal["uniform", "normal"]
    noise_dim: int
    continuous: bool = False

    def log_prob(
        self, params: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """[K, B]"""
        raise NotImplementedError

    def entropy(self, params: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """[K, B]"""
        raise NotImplementedError

    def sample(self, params: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def mode(self, params: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The most likely action (the mean for a Gaussian)."""
        raise NotImplementedError


def masked_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return logits if mask is None else logits.masked_fill(~mask, MASKED_LOGIT)


def gumbel_argmax(logits: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """A sample of Categorical(logits) from uniform noise of the same shape (Gumbel-max)."""
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
    return (logits + gumbel).argmax(-1)


def categorical_log_prob(
    logits: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    log_p = F.log_softmax(masked_logits(logits, mask), -1)
    return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_entropy(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    log_p = F.log_softmax(masked_logits(logits, mask), -1)
    return -(log_p.exp() * log_p).sum(-1)


class Categorical(ActionHead):
    """Discrete(n): logits [K, B, n]; actions [K, B] (0-based)."""

    noise = "uniform"

    def __init__(self, n: int):
        self.param_dim = self.noise_dim = n

    def log_prob(self, params, actions, mask):
        return categorical_log_prob(params, actions, mask)

    def entropy(self, params, mask):
        return categorical_entropy(params, mask)

    def sample(self, params, noise, mask):
        return gumbel_argmax(masked_logits(params, mask), noise)

    def mode(self, params, mask):
        return masked_logits(params, mask).argmax(-1)


class MultiCategorical(ActionHead):
    """MultiDiscrete(nvec): one categorical per dimension, logits concatenated
    [K, B, sum(nvec)], actions [K, B, len(nvec)]; a mask concatenates per-dimension masks."""

    noise = "uniform"

    def __init__(self, nvec: np.ndarray):
        self.sizes = [int(n) for n in nvec]
        self.param_dim = self.noise_dim = sum(self.sizes)

    def _split(self, tensor: torch.Tensor | None) -> list[torch.Tensor | None]:
        return [None] * len(self.sizes) if tensor is None else list(tensor.split(self.sizes, -1))

    def log_prob(self, params, actions, mask):
        parts = zip(self._split(params), actions.unbind(-1), self._split(mask), strict=True)
        return sum(categorical_log_prob(logits, action, part_mask) for logits, action, part_mask in parts)

    def entropy(self, params, mask):
        parts = zip(self._split(params), self._split(mask), strict=True)
        return sum(categorical_entropy(logits, part_mask) for logits, part_mask in parts)

    def sample(self, params, noise, mask):
        parts = zip(self._split(params), self._split(noise), self._split(mask), strict=True)
        return torch.stack([gumbel_argmax(masked_logits(p, m), u) for p, u, m in parts], -1)

    def mode(self, params, mask):
        parts = zip(self._split(params), self._split(mask), strict=True)
        return torch.stack([masked_logits(p, m).argmax(-1) for p, m in parts], -1)


class Bernoulli(ActionHead):
    """MultiBinary(d): a logit per bit [K, B, d]; actions 0/1 [K, B, d]."""

    noise = "uniform"

    def __init__(self, dim: int):
        self.param_dim = self.noise_dim = dim

    def log_prob(self, params, actions, mask):
        return -F.binary_cross_entropy_with_logits(params, actions.float(), reduction="none").sum(-1)

    def entropy(self, params, mask):
        p = torch.sigmoid(params)
        return F.binary_cross_entropy_with_logits(params, p, reduction="none").sum(-1)

    def sample(self, params, noise, mask):
        return (noise < torch.sigmoid(params)).long()

    def mode(self, params, mask):
        return (params > 0).long()


class DiagonalGaussian(ActionHead):
    """Box(d): the actor outputs means [K, B, d]; the network appends its state-independent
    log-std, so `params` are [K, B, 2d]. Actions are unsquashed; the worker clips them to
    the env's bounds (the learner sees the unclipped ones it sampled)."""

    noise = "normal"
    continuous = True

    def __init__(self, dim: int):
        self.dim = self.noise_dim = dim
        self.param_dim = dim

    def _mean_log_std(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return params[..., : self.dim], params[..., self.dim :]

    def log_prob(self, params, actions, mask):
        mean, log_std = self._mean_log_std(params)
        z = (actions - mean) / log_std.exp()
        return (-0.5 * z.pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)

    def entropy(self, params, mask):
        _, log_std = self._mean_log_std(params)
        return (log_std + 0.5 * (1 + np.log(2 * np.pi))).sum(-1)

    def sample(self, params, noise, mask):
        mean, log_std = self._mean_log_std(params)
        return mean + log_std.exp() * noise

    def mode(self, params, mask):
        return self._mean_log_std(params)[0]


def action_head(action_space: gym.spaces.Space) -> ActionHead:
    """The distribution PPO uses for an action space, or a ConfigError naming the space."""
    if isinstance(action_space, gym.spaces.Discrete):
        return Categorical(int(action_space.n))
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return MultiCategorical(action_space.nvec.reshape(-1))
    if isinstance(action_space, gym.spaces.MultiBinary):
        return Bernoulli(int(np.prod(action_space.shape)))
    if isinstance(action_space, gym.spaces.Box):
        return DiagonalGaussian(int(np.prod(action_space.shape)))
    raise ConfigError(
        f"action space {action_space} is not one rlsweep can act in; "
        "it handles Discrete, MultiDiscrete, MultiBinary and Box"
    )
