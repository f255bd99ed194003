"""The algorithms' networks, for K seeds at once (see `layers.py`), on the features of an
`Encoder` (see `encoders.py`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from rlsweep.trainables.models.encoders import CNNSpec, Encoder, TensorObs
from rlsweep.trainables.models.layers import PerSeedLinear, mlp
from rlsweep.trainables.models.observations import ObservationLayout


class NetworkConfig(Protocol):
    """The config keys networks are built from; every algorithm's config has them."""

    hidden_sizes: tuple[int, ...]
    activation: str
    cnn_channels: tuple[int, ...]
    cnn_kernels: tuple[int, ...]
    cnn_strides: tuple[int, ...]


@dataclass(frozen=True)
class NetworkSpec:
    """What every network here is built from besides its output: the observations it reads,
    its hidden layers and the CNN for an image (None without one)."""

    layout: ObservationLayout
    hidden_sizes: tuple[int, ...]
    activation: str
    cnn: CNNSpec | None

    @classmethod
    def of(cls, config: NetworkConfig, layout: ObservationLayout) -> NetworkSpec:
        """The spec for `layout`; a ConfigError if the config's cnn_* keys do not fit its image."""
        cnn = None
        if layout.image_shape is not None:
            cnn = CNNSpec.of(layout.image_shape, config.cnn_channels, config.cnn_kernels, config.cnn_strides)
            cnn.output_size(layout.image_shape)
        return cls(layout, tuple(config.hidden_sizes), config.activation, cnn)


class ActorCritic(nn.Module):
    """PPO's networks. On vector observations, separate policy and value MLPs (as CleanRL for
    classic control); with an image, one shared torso (CNN then MLP) with a linear policy
    and a linear value head (as CleanRL and SB3 for Atari). `policy_params` gives what the
    action head needs; a Gaussian head gets a state-independent log-std appended."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        spec: NetworkSpec,
        param_dim: int,
        continuous: bool,
        log_std_init: float = 0.0,
    ):
        super().__init__()
        layout, hidden_sizes, activation, cnn = spec.layout, spec.hidden_sizes, spec.activation, spec.cnn
        self.shared = layout.image_shape is not None
        if self.shared:
            encoder = Encoder(generators, layout, cnn)
            self.torso = nn.Sequential(
                encoder, *mlp(generators, encoder.out_dim, hidden_sizes, None, activation)
            )
            width = hidden_sizes[-1] if hidden_sizes else encoder.out_dim
            self.actor = PerSeedLinear(generators, width, param_dim, 0.01)
            self.critic = PerSeedLinear(generators, width, 1, 1.0)
        else:
            self.actor_encoder = Encoder(generators, layout, cnn)
            self.actor = mlp(
                generators, self.actor_encoder.out_dim, hidden_sizes, param_dim, activation, out_gain=0.01
            )
            self.critic_encoder = Encoder(generators, layout, cnn)
            self.critic = mlp(
                generators, self.critic_encoder.out_dim, hidden_sizes, 1, activation, out_gain=1.0
            )
        self.continuous = continuous
        if continuous:
            self.log_std = nn.Parameter(torch.full((len(generators), 1, param_dim), log_std_init))

    def policy_params(self, obs: TensorObs) -> torch.Tensor:
        features = self.torso(obs) if self.shared else self.actor_encoder(obs)
        out = self.actor(features)
        if self.continuous:
            out = torch.cat([out, self.log_std.expand_as(out)], -1)
        return out

    def value(self, obs: TensorObs) -> torch.Tensor:
        features = self.torso(obs) if self.shared else self.critic_encoder(obs)
        return self.critic(features).squeeze(-1)

    def policy_params_and_value(self, obs: TensorObs) -> tuple[torch.Tensor, torch.Tensor]:
        """Both at once: a shared torso runs once."""
        if not self.shared:
            return self.policy_params(obs), self.value(obs)
        features = self.torso(obs)
        out = self.actor(features)
        if self.continuous:
            out = torch.cat([out, self.log_std.expand_as(out)], -1)
        return out, self.critic(features).squeeze(-1)


class QNetwork(nn.Module):
    """Action values Q(s, ·) for Discrete actions, [K, B, ...] -> [K, B, num_actions].

    The dueling head (Wang et al. 2016) splits the last hidden layer into a state-value
    and an advantage stream, Q = V + A - mean(A): the value of a state is learned from
    every action tried in it, not only from the action taken.
    """

    def __init__(
        self, generators: Sequence[torch.Generator], spec: NetworkSpec, num_actions: int, dueling: bool
    ):
        super().__init__()
        hidden_sizes, activation = spec.hidden_sizes, spec.activation
        self.encoder = Encoder(generators, spec.layout, spec.cnn)
        self.dueling = dueling
        if not dueling:
            self.q = mlp(generators, self.encoder.out_dim, hidden_sizes, num_actions, activation)
            return
        *trunk_sizes, stream_size = hidden_sizes
        self.trunk = mlp(generators, self.encoder.out_dim, trunk_sizes, None, activation)
        trunk_dim = trunk_sizes[-1] if trunk_sizes else self.encoder.out_dim
        self.value = mlp(generators, trunk_dim, [stream_size], 1, activation)
        self.advantage = mlp(generators, trunk_dim, [stream_size], num_actions, activation)

    def forward(self, obs: TensorObs) -> torch.Tensor:
        features = self.encoder(obs)
        if not self.dueling:
            return self.q(features)
        features = self.trunk(features)
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(-1, keepdim=True)


class SquashedGaussianActor(nn.Module):
    """SAC's policy: a state-dependent diagonal Gaussian squashed by tanh into (-1, 1).

    `sample` returns actions [K, B, action_dim] and their log-probabilities [K, B] under
    the squashed distribution (Haarnoja et al. 2018, appendix C), from standard normal
    noise drawn per seed.
    """

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
    """Keeps the std in a range where exp() and the log-prob stay finite (as in SB3)."""

    def __init__(self, generators: Sequence[torch.Generator], spec: NetworkSpec, action_dim: int):
        super().__init__()
        self.encoder = Encoder(generators, spec.layout, spec.cnn)
        self.trunk = mlp(generators, self.encoder.out_dim, spec.hidden_sizes, None, spec.activation)
        self.mean = PerSeedLinear(generators, spec.hidden_sizes[-1], action_dim, 0.01)
        self.log_std = PerSeedLinear(generators, spec.hidden_sizes[-1], action_dim, 0.01)

    def forward(self, obs: TensorObs) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(self.encoder(obs))
        log_std = self.log_std(features).clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)
        return self.mean(features), log_std

    def sample(self, obs: TensorObs, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self(obs)
        u = mean + log_std.exp() * noise  # reparameterized: the actor loss differentiates through it
        action = torch.tanh(u)
        gaussian_logprob = -0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        # log pi(a|s) = log N(u) - sum log(1 - tanh(u)^2); the correction in a stable form:
        # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)).
        correction = 2 * (math.log(2) - u - F.softplus(-2 * u))
        return action, (gaussian_logprob - correction).sum(-1)

    def mean_action(self, obs: TensorObs) -> torch.Tensor:
        """The deterministic action: the squashed mean."""
        return torch.tanh(self(obs)[0])


class TwinQ(nn.Module):
    """Two independent critics Q1, Q2(s, a) for Box actions; actions [K, B, action_dim] -> 2 x [K, B].

    Taking the smaller of two estimates counters the overestimation a single critic
    accumulates by maximizing over its own errors (Fujimoto et al. 2018).
    """

    def __init__(self, generators: Sequence[torch.Generator], spec: NetworkSpec, action_dim: int):
        super().__init__()
        self.encoder1 = Encoder(generators, spec.layout, spec.cnn)
        self.q1 = mlp(generators, self.encoder1.out_dim + action_dim, spec.hidden_sizes, 1, spec.activation)
        self.encoder2 = Encoder(generators, spec.layout, spec.cnn)
        self.q2 = mlp(generators, self.encoder2.out_dim + action_dim, spec.hidden_sizes, 1, spec.activation)

    def forward(self, obs: TensorObs, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q1 = self.q1(torch.cat([self.encoder1(obs), action], -1)).squeeze(-1)
        q2 = self.q2(torch.cat([self.encoder2(obs), action], -1)).squeeze(-1)
        return q1, q2
