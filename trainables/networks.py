"""Torch modules shared by the algorithms."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def mlp(
    in_dim: int,
    hidden_sizes: Sequence[int],
    out_dim: int,
    activation: str,
    out_gain: float = 1.0,
) -> nn.Sequential:
    """A fully connected net with orthogonal init (hidden gain sqrt(2), output `out_gain`)."""
    sizes = [in_dim, *hidden_sizes]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [_orthogonal(nn.Linear(fan_in, fan_out), np.sqrt(2)), ACTIVATIONS[activation]()]
    layers.append(_orthogonal(nn.Linear(sizes[-1], out_dim), out_gain))
    return nn.Sequential(*layers)


def _orthogonal(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """Separate policy and value MLPs; a categorical head for Discrete actions, a
    state-independent diagonal Gaussian for Box actions."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        continuous: bool,
        hidden_sizes: Sequence[int],
        activation: str,
        log_std_init: float = 0.0,
    ):
        super().__init__()
        self.continuous = continuous
        self.actor = mlp(obs_dim, hidden_sizes, action_dim, activation, out_gain=0.01)
        self.critic = mlp(obs_dim, hidden_sizes, 1, activation, out_gain=1.0)
        if continuous:
            self.log_std = nn.Parameter(torch.full((action_dim,), log_std_init))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        out = self.actor(obs)
        if self.continuous:
            return torch.distributions.Normal(out, self.log_std.exp().expand_as(out), validate_args=False)
        return torch.distributions.Categorical(logits=out, validate_args=False)

    def log_prob_entropy(
        self, dist: torch.distributions.Distribution, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample log-probability and entropy, summed over action dimensions for Box."""
        if self.continuous:
            return dist.log_prob(actions).sum(-1), dist.entropy().sum(-1)
        return dist.log_prob(actions), dist.entropy()

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.actor(obs)
        return out if self.continuous else out.argmax(-1)


class QNetwork(nn.Module):
    """Action values Q(s, ·) for Discrete actions, [B, obs_dim] -> [B, num_actions].

    The dueling head (Wang et al. 2016) splits the last hidden layer into a state-value
    and an advantage stream, Q = V + A - mean(A): the value of a state is learned from
    every action tried in it, not only from the action taken.
    """

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hidden_sizes: Sequence[int],
        activation: str,
        dueling: bool = False,
    ):
        super().__init__()
        self.dueling = dueling
        if not dueling:
            self.q = mlp(obs_dim, hidden_sizes, num_actions, activation)
            return
        *trunk_sizes, stream_size = hidden_sizes
        if trunk_sizes:
            self.trunk: nn.Module = nn.Sequential(
                mlp(obs_dim, trunk_sizes[:-1], trunk_sizes[-1], activation, out_gain=np.sqrt(2)),
                ACTIVATIONS[activation](),
            )
        else:
            self.trunk = nn.Identity()
        trunk_dim = trunk_sizes[-1] if trunk_sizes else obs_dim
        self.value = mlp(trunk_dim, [stream_size], 1, activation)
        self.advantage = mlp(trunk_dim, [stream_size], num_actions, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.dueling:
            return self.q(obs)
        features = self.trunk(obs)
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(-1, keepdim=True)


class SquashedGaussianActor(nn.Module):
    """SAC's policy: a state-dependent diagonal Gaussian squashed by tanh into (-1, 1).

    `sample` returns actions [B, action_dim] and their log-probabilities [B] under the
    squashed distribution (Haarnoja et al. 2018, appendix C).
    """

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
    """Keeps the std in a range where exp() and the log-prob stay finite (as in SB3)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: Sequence[int], activation: str):
        super().__init__()
        self.trunk = nn.Sequential(
            mlp(obs_dim, hidden_sizes[:-1], hidden_sizes[-1], activation, out_gain=np.sqrt(2)),
            ACTIVATIONS[activation](),
        )
        self.mean = _orthogonal(nn.Linear(hidden_sizes[-1], action_dim), 0.01)
        self.log_std = _orthogonal(nn.Linear(hidden_sizes[-1], action_dim), 0.01)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(obs)
        log_std = self.log_std(features).clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)
        return self.mean(features), log_std

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self(obs)
        noise = torch.randn_like(mean)
        u = mean + log_std.exp() * noise  # reparameterized: the actor loss differentiates through it
        action = torch.tanh(u)
        gaussian_logprob = -0.5 * noise.pow(2) - log_std - 0.5 * np.log(2 * np.pi)
        # log pi(a|s) = log N(u) - sum log(1 - tanh(u)^2); the correction in a stable form:
        # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)).
        correction = 2 * (np.log(2) - u - nn.functional.softplus(-2 * u))
        return action, (gaussian_logprob - correction).sum(-1)

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action: the squashed mean."""
        return torch.tanh(self(obs)[0])


class TwinQ(nn.Module):
    """Two independent critics Q1, Q2(s, a) for Box actions; [B, obs_dim], [B, action_dim] -> 2 x [B].

    Taking the smaller of two estimates counters the overestimation a single critic
    accumulates by maximizing over its own errors (Fujimoto et al. 2018).
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: Sequence[int], activation: str):
        super().__init__()
        self.q1 = mlp(obs_dim + action_dim, hidden_sizes, 1, activation)
        self.q2 = mlp(obs_dim + action_dim, hidden_sizes, 1, activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)
