"""Each algorithm's policy: how its networks turn observations into exploratory and
env-ready actions (PPO's actor-critic, DQN's epsilon-greedy Q-values, SAC's squashed
Gaussian), on the contract of `policy.Policy`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from rlsweep.trainables.learning.device import to_device
from rlsweep.trainables.models.attention import AttentionActorCritic, AttentionSpec
from rlsweep.trainables.models.distributions import action_head, masked_logits
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.networks import (
    ActorCritic,
    QNetwork,
    SquashedGaussianActor,
)
from rlsweep.trainables.models.observations import MASK_KEY, Observations
from rlsweep.trainables.models.policy import Policy, PolicyConfig
from rlsweep.trainables.models.recurrent import (
    LSTMSpec,
    MemoryActorCritic,
    RecurrentActorCritic,
    RecurrentState,
    action_feature_dim,
    action_features,
)
from rlsweep.trainables.models.recurrent_q import RecurrentQNetwork
from rlsweep.trainables.seeds import draw


class QPolicyConfig(PolicyConfig, Protocol):
    dueling: bool


class ActorCriticPolicy(Policy):
    """An `ActorCritic` (with use_lstm a `RecurrentActorCritic`, with use_attention an
    `AttentionActorCritic`) with the action head of its action space; `explore` also returns
    the log-probabilities and values PPO needs."""

    network: ActorCritic | MemoryActorCritic

    def build_network(
        self, config: PolicyConfig, init: list[torch.Generator]
    ) -> ActorCritic | MemoryActorCritic:
        self.head = action_head(self.action_space)
        param_dim, continuous = self.head.param_dim, self.head.continuous
        prev_action_dim = action_feature_dim(self.action_space) if config.lstm_use_prev_action else 0
        if config.use_attention:
            attention = AttentionSpec(
                config.attention_memory,
                config.attention_dim,
                config.attention_num_heads,
                config.attention_num_layers,
                prev_action_dim,
                config.lstm_use_prev_reward,
            )
            return AttentionActorCritic(init, self.spec, attention, param_dim, continuous)
        if config.use_lstm:
            lstm = LSTMSpec(config.lstm_cell_size, prev_action_dim, config.lstm_use_prev_reward)
            return RecurrentActorCritic(init, self.spec, lstm, param_dim, continuous)
        return ActorCritic(init, self.spec, param_dim, continuous)

    @property
    def recurrent(self) -> bool:
        return isinstance(self.network, MemoryActorCritic)

    def initial_state(self, num_envs: int = 1) -> RecurrentState:
        if not self.recurrent:
            return {}
        rows = (self.num_seeds, num_envs)
        return {
            key: np.zeros((*rows, *shape), np.float32) for key, shape in self.network.state_shapes().items()
        }

    def params_and_value(
        self, x: TensorObs, state: RecurrentState
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The action head's params [K, N, P], the values [K, N] and the memory core's next state."""
        if not self.recurrent:
            return *self.network.policy_params_and_value(x), {}
        return self.network.step(x, {key: to_device(value, self.device) for key, value in state.items()})

    def next_state(
        self, state: RecurrentState, lstm_state: dict[str, torch.Tensor], actions: np.ndarray
    ) -> RecurrentState:
        """What the policy remembers after choosing `actions` [K, N, ...] in `state`."""
        if not self.recurrent:
            return {}
        following = {**state, **{key: value.cpu().numpy() for key, value in lstm_state.items()}}
        if "prev_action" in state:
            following["prev_action"] = action_features(self.action_space, actions)
        return following

    @torch.inference_mode()
    def explore(
        self, obs: Observations, state: RecurrentState, gens: Sequence[torch.Generator]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], RecurrentState]:
        x = self.obs_tensors(obs)
        params, value, lstm_state = self.params_and_value(x, state)
        mask = x.get(MASK_KEY)
        noise = draw(self.head.noise, gens, (params.shape[1], self.head.noise_dim), self.device)
        actions = self.head.sample(params, noise, mask)
        logprob = self.head.log_prob(params, actions, mask)
        actions_array = actions.cpu().numpy()
        extras = {"logprob": logprob.cpu().numpy(), "value": value.cpu().numpy()}
        return actions_array, extras, self.next_state(state, lstm_state, actions_array)

    @torch.inference_mode()
    def compute_actions(
        self,
        obs: Observations,
        state: RecurrentState,
        deterministic: bool = True,
        gens: Sequence[torch.Generator] = (),
    ) -> tuple[np.ndarray, RecurrentState]:
        x = self.obs_tensors(obs)
        if self.recurrent:
            params, _, lstm_state = self.params_and_value(x, state)
        else:
            params, lstm_state = self.network.policy_params(x), {}
        mask = x.get(MASK_KEY)
        if deterministic:
            actions = self.head.mode(params, mask)
        else:
            noise = draw(self.head.noise, gens, (params.shape[1], self.head.noise_dim), self.device)
            actions = self.head.sample(params, noise, mask)
        actions_array = actions.cpu().numpy()
        return self.env_actions(actions_array), self.next_state(state, lstm_state, actions_array)


class QPolicy(Policy):
    """Epsilon-greedy over a `QNetwork`'s action values (Discrete actions), never choosing
    an action the mask forbids; with use_lstm over a `RecurrentQNetwork`'s, carrying its
    state from step to step.

    `epsilon` travels with the weights, so the learner's schedule reaches every worker;
    the learner's own copy stays 0, and deployment is greedy.
    """

    network: QNetwork | RecurrentQNetwork
    epsilon = 0.0

    def build_network(
        self, config: QPolicyConfig, init: list[torch.Generator]
    ) -> QNetwork | RecurrentQNetwork:
        num_actions = int(self.action_space.n)
        if config.use_lstm:
            prev_action_dim = action_feature_dim(self.action_space) if config.lstm_use_prev_action else 0
            lstm = LSTMSpec(config.lstm_cell_size, prev_action_dim, config.lstm_use_prev_reward)
            return RecurrentQNetwork(init, self.spec, lstm, num_actions)
        return QNetwork(init, self.spec, num_actions, config.dueling)

    @property
    def recurrent(self) -> bool:
        return isinstance(self.network, RecurrentQNetwork)

    def initial_state(self, num_envs: int = 1) -> RecurrentState:
        if not self.recurrent:
            return {}
        rows = (self.num_seeds, num_envs)
        return {
            key: np.zeros((*rows, *shape), np.float32) for key, shape in self.network.state_shapes().items()
        }

    @torch.inference_mode()
    def explore(
        self, obs: Observations, state: RecurrentState, gens: Sequence[torch.Generator]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], RecurrentState]:
        actions, state = self._epsilon_greedy(obs, state, self.epsilon, gens)
        return actions, {}, state

    @torch.inference_mode()
    def compute_actions(
        self,
        obs: Observations,
        state: RecurrentState,
        deterministic: bool = True,
        gens: Sequence[torch.Generator] = (),
    ) -> tuple[np.ndarray, RecurrentState]:
        epsilon = 0.0 if deterministic else self.epsilon
        actions, state = self._epsilon_greedy(obs, state, epsilon, gens)
        return self.env_actions(actions), state

    def _epsilon_greedy(
        self, obs: Observations, state: RecurrentState, epsilon: float, gens: Sequence[torch.Generator]
    ) -> tuple[np.ndarray, RecurrentState]:
        x = self.obs_tensors(obs)
        mask = x.get(MASK_KEY)
        if self.recurrent:
            q, lstm_state = self.network.step(x, {key: to_device(v, self.device) for key, v in state.items()})
        else:
            q, lstm_state = self.network(x), {}
        q = masked_logits(q, mask)  # [K, N, A]
        actions = q.argmax(-1)
        if epsilon > 0:
            _, num_envs, num_actions = q.shape
            noise = draw("uniform", gens, (num_envs, 1 + num_actions), self.device)
            explore = noise[..., 0] < epsilon
            # Uniform over the allowed actions: the argmax of uniform noise, masked.
            random_actions = masked_logits(noise[..., 1:], mask).argmax(-1)
            actions = torch.where(explore, random_actions, actions)
        actions_array = actions.cpu().numpy()
        if not self.recurrent:
            return actions_array, state
        following = {**state, **{key: value.cpu().numpy() for key, value in lstm_state.items()}}
        if "prev_action" in state:
            following["prev_action"] = action_features(self.action_space, actions_array)
        return actions_array, following

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

    network: SquashedGaussianActor
    uniform_actions = False

    def build_network(self, config: PolicyConfig, init: list[torch.Generator]) -> SquashedGaussianActor:
        self.action_dim = int(np.prod(self.action_space.shape))
        self.low = torch.as_tensor(self.action_space.low, dtype=torch.float32).flatten().to(self.device)
        self.high = torch.as_tensor(self.action_space.high, dtype=torch.float32).flatten().to(self.device)
        return SquashedGaussianActor(init, self.spec, self.action_dim)

    def to_env_action(self, unit_action: torch.Tensor) -> torch.Tensor:
        """[..., action_dim] in [-1, 1] to the env's bounds."""
        return self.low + (unit_action + 1) * 0.5 * (self.high - self.low)

    def to_unit_action(self, env_action: torch.Tensor) -> torch.Tensor:
        """The inverse of `to_env_action`: env-scale actions to [-1, 1]."""
        return 2 * (env_action - self.low) / (self.high - self.low) - 1

    @torch.inference_mode()
    def explore(
        self, obs: Observations, state: RecurrentState, gens: Sequence[torch.Generator]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], RecurrentState]:
        num_envs = len(next(iter(obs.values()))[0])
        if self.uniform_actions:
            unit = draw("uniform", gens, (num_envs, self.action_dim), self.device) * 2 - 1
        else:
            noise = draw("normal", gens, (num_envs, self.action_dim), self.device)
            unit, _ = self.network.sample(self.obs_tensors(obs), noise)
        return self._env_actions(unit), {}, state

    @torch.inference_mode()
    def compute_actions(
        self,
        obs: Observations,
        state: RecurrentState,
        deterministic: bool = True,
        gens: Sequence[torch.Generator] = (),
    ) -> tuple[np.ndarray, RecurrentState]:
        x = self.obs_tensors(obs)
        if deterministic:
            unit = self.network.mean_action(x)
        else:
            num_envs = len(next(iter(obs.values()))[0])
            unit, _ = self.network.sample(x, draw("normal", gens, (num_envs, self.action_dim), self.device))
        return self._env_actions(unit), state

    def _env_actions(self, unit_action: torch.Tensor) -> np.ndarray:
        # Clipped too: rounding can put a saturated action an ulp past a bound.
        return self.env_actions(self.to_env_action(unit_action).cpu().numpy())

    def get_weights(self) -> dict[str, Any]:
        return {**super().get_weights(), "uniform_actions": self.uniform_actions}

    def set_weights(self, weights: dict[str, Any]) -> None:
        super().set_weights(weights)
        self.uniform_actions = bool(weights["uniform_actions"])
