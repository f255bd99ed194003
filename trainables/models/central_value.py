"""MAPPO's centralized critic: an actor-critic whose actor sees the agent's own observation
(decentralized execution) and whose value function sees the global state (the env's
`state()`, or every agent's observation concatenated; see `envs/multi_agent.global_state`).

The global state travels with the observations under `STATE_KEY`, so PPO's batching, GAE
and loss run unchanged: only the critic's input differs.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.envs.multi_agent import AgentSpaces
from rlsweep.trainables.models.distributions import action_head
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.layers import mlp
from rlsweep.trainables.models.networks import ActorCritic, NetworkSpec
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.models.policy import PolicyConfig

STATE_KEY = "global_state"
"""The observations' key holding the global state [.., state_dim] (float32)."""


class CentralValueActorCritic(ActorCritic):
    """`ActorCritic`'s actor on the agent's observation; the critic an MLP of the same sizes
    on `obs[STATE_KEY]`."""

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        spec: NetworkSpec,
        param_dim: int,
        continuous: bool,
        state_dim: int,
    ):
        super().__init__(generators, spec, param_dim, continuous)
        if self.shared:
            raise ConfigError(
                "config key 'central_value' needs vector observations (image observations share one torso "
                "between actor and critic)"
            )
        del self.critic_encoder
        self.critic = mlp(generators, state_dim, spec.hidden_sizes, 1, spec.activation, out_gain=1.0)

    def value(self, obs: TensorObs) -> torch.Tensor:
        return self.critic(obs[STATE_KEY]).squeeze(-1)


class CentralValuePolicy(ActorCriticPolicy):
    """PPO's actor-critic policy with a centralized critic (MAPPO). Acting needs only the
    agent's observations; exploring (which also returns values) and learning need
    `STATE_KEY` in them too."""

    network: CentralValueActorCritic

    def __init__(
        self,
        config: PolicyConfig,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        device: torch.device | str,
        seeds: Sequence[int],
        spaces: AgentSpaces,
    ):
        self.spaces = spaces
        """The env's agents and spaces: where the global state comes from."""
        super().__init__(config, observation_space, action_space, device, seeds)

    def build_network(self, config: PolicyConfig, init: list[torch.Generator]) -> CentralValueActorCritic:
        if config.use_lstm or config.use_attention:
            raise ConfigError("config key 'central_value' does not support use_lstm or use_attention yet")
        self.head = action_head(self.action_space)
        return CentralValueActorCritic(
            init, self.spec, self.head.param_dim, self.head.continuous, self.spaces.global_state_dim
        )
