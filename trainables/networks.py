"""Torch modules shared by the algorithms, for K members at once.

Every parameter has a leading member axis: `MemberLinear` holds K weight matrices and
computes [K, B, in] -> [K, B, out] as one batched matmul; `MemberConv2d` runs K convolutions
as one grouped convolution. Member k's parameters are initialized from generator k, so
its network is the one a single-seed run with its seed builds. Inputs are the dicts of
`rlsweep.trainables.observations` as tensors: "vector" [K, B, D] float, "image"
[K, B, C, H, W] uint8.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.observations import ObservationLayout

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}
HIDDEN_GAIN = math.sqrt(2)
TensorObs = dict[str, torch.Tensor]


class MemberLinear(nn.Module):
    """K independent linear layers: [K, ..., in] -> [K, ..., out], orthogonal init, zero bias."""

    def __init__(
        self, generators: Sequence[torch.Generator], in_features: int, out_features: int, gain: float
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(len(generators), in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(len(generators), 1, out_features))
        with torch.no_grad():
            for member, generator in enumerate(generators):
                matrix = torch.empty(out_features, in_features)  # torch's Linear layout, as it inits
                nn.init.orthogonal_(matrix, gain, generator=generator)
                self.weight[member] = matrix.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # [K, B, in], the usual case: no reshapes to pay for
            return torch.baddbmm(self.bias, x, self.weight)
        members, *batch, features = x.shape
        out = torch.baddbmm(self.bias, x.reshape(members, -1, features), self.weight)
        return out.reshape(members, *batch, -1)


class MemberConv2d(nn.Module):
    """K independent 2-d convolutions as one grouped one: [K, B, C, H, W] -> [K, B, C', H', W']."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        gain: float,
    ):
        super().__init__()
        self.stride = stride
        members = len(generators)
        self.weight = nn.Parameter(torch.empty(members, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(members, out_channels))
        with torch.no_grad():
            for member, generator in enumerate(generators):
                nn.init.orthogonal_(self.weight[member], gain, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, batch, channels, height, width = x.shape
        grouped = x.transpose(0, 1).reshape(batch, members * channels, height, width)
        weight = self.weight.reshape(-1, *self.weight.shape[2:])
        out = F.conv2d(grouped, weight, self.bias.reshape(-1), stride=self.stride, groups=members)
        return out.reshape(batch, members, -1, *out.shape[-2:]).transpose(0, 1)


def mlp(
    generators: Sequence[torch.Generator],
    in_dim: int,
    hidden_sizes: Sequence[int],
    out_dim: int | None,
    activation: str,
    out_gain: float = 1.0,
) -> nn.Sequential:
    """Fully connected layers with orthogonal init (hidden gain sqrt(2)); with `out_dim`
    None it ends with the last hidden layer's activation (a torso for heads to share)."""
    sizes = [in_dim, *hidden_sizes]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [MemberLinear(generators, fan_in, fan_out, HIDDEN_GAIN), ACTIVATIONS[activation]()]
    if out_dim is not None:
        layers.append(MemberLinear(generators, sizes[-1], out_dim, out_gain))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class CNNSpec:
    """A convolutional torso for images; the defaults are the Nature DQN's (Mnih et al. 2015)."""

    channels: tuple[int, ...] = (32, 64, 64)
    kernels: tuple[int, ...] = (8, 4, 3)
    strides: tuple[int, ...] = (4, 2, 1)


class Encoder(nn.Module):
    """Observations -> features [K, B, out_dim]: the image through a CNN (uint8 scaled to
    [0, 1] here, on the learner's device), concatenated with the vector as it comes."""

    def __init__(self, generators: Sequence[torch.Generator], layout: ObservationLayout, cnn: CNNSpec):
        super().__init__()
        self.has_vector = layout.vector_dim > 0
        self.out_dim = layout.vector_dim
        self.cnn: nn.Sequential | None = None
        if layout.image_shape is not None:
            channels, height, width = layout.image_shape
            layers: list[nn.Module] = []
            for out_channels, kernel, stride in zip(cnn.channels, cnn.kernels, cnn.strides, strict=True):
                layers += [
                    MemberConv2d(generators, channels, out_channels, kernel, stride, HIDDEN_GAIN),
                    nn.ReLU(),
                ]
                channels = out_channels
                height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
                if min(height, width) < 1:
                    raise ConfigError(
                        f"config keys 'cnn_kernels' {list(cnn.kernels)} and 'cnn_strides' "
                        f"{list(cnn.strides)} shrink the {layout.image_shape[1]}x{layout.image_shape[2]} "
                        "image observations to nothing; use fewer, smaller or less strided convolutions"
                    )
            self.cnn = nn.Sequential(*layers)
            self.out_dim += channels * height * width

    def forward(self, obs: TensorObs) -> torch.Tensor:
        features = []
        if self.cnn is not None:
            image = obs["image"].float() / 255.0
            features.append(self.cnn(image).flatten(-3))
        if self.has_vector:
            features.append(obs["vector"])
        return features[0] if len(features) == 1 else torch.cat(features, -1)


class ActorCritic(nn.Module):
    """PPO's networks. On vector observations, separate policy and value MLPs (as CleanRL for
    classic control); with an image, one shared torso (CNN then MLP) with a linear policy
    and a linear value head (as CleanRL and SB3 for Atari). `policy_params` gives what the
    action head needs; a Gaussian head gets a state-independent log-std appended."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        layout: ObservationLayout,
        param_dim: int,
        continuous: bool,
        hidden_sizes: Sequence[int],
        activation: str,
        cnn: CNNSpec,
        log_std_init: float = 0.0,
    ):
        super().__init__()
        self.shared = layout.image_shape is not None
        if self.shared:
            encoder = Encoder(generators, layout, cnn)
            self.torso = nn.Sequential(
                encoder, *mlp(generators, encoder.out_dim, hidden_sizes, None, activation)
            )
            width = hidden_sizes[-1] if hidden_sizes else encoder.out_dim
            self.actor = MemberLinear(generators, width, param_dim, 0.01)
            self.critic = MemberLinear(generators, width, 1, 1.0)
        else:
            self.actor_encoder = Encoder(generators, layout, cnn)
            self.actor = mlp(
                generators, layout.vector_dim, hidden_sizes, param_dim, activation, out_gain=0.01
            )
            self.critic_encoder = Encoder(generators, layout, cnn)
            self.critic = mlp(generators, layout.vector_dim, hidden_sizes, 1, activation, out_gain=1.0)
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
        self,
        generators: Sequence[torch.Generator],
        layout: ObservationLayout,
        num_actions: int,
        hidden_sizes: Sequence[int],
        activation: str,
        dueling: bool,
        cnn: CNNSpec,
    ):
        super().__init__()
        self.encoder = Encoder(generators, layout, cnn)
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
    noise drawn per member.
    """

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
    """Keeps the std in a range where exp() and the log-prob stay finite (as in SB3)."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        layout: ObservationLayout,
        action_dim: int,
        hidden_sizes: Sequence[int],
        activation: str,
        cnn: CNNSpec,
    ):
        super().__init__()
        self.encoder = Encoder(generators, layout, cnn)
        self.trunk = mlp(generators, self.encoder.out_dim, hidden_sizes, None, activation)
        self.mean = MemberLinear(generators, hidden_sizes[-1], action_dim, 0.01)
        self.log_std = MemberLinear(generators, hidden_sizes[-1], action_dim, 0.01)

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

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        layout: ObservationLayout,
        action_dim: int,
        hidden_sizes: Sequence[int],
        activation: str,
        cnn: CNNSpec,
    ):
        super().__init__()
        self.encoder1 = Encoder(generators, layout, cnn)
        self.q1 = mlp(generators, self.encoder1.out_dim + action_dim, hidden_sizes, 1, activation)
        self.encoder2 = Encoder(generators, layout, cnn)
        self.q2 = mlp(generators, self.encoder2.out_dim + action_dim, hidden_sizes, 1, activation)

    def forward(self, obs: TensorObs, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q1 = self.q1(torch.cat([self.encoder1(obs), action], -1)).squeeze(-1)
        q2 = self.q2(torch.cat([self.encoder2(obs), action], -1)).squeeze(-1)
        return q1, q2
