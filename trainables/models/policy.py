"""The acting side of each agent: what workers sample with, evaluation measures and users deploy.

A policy holds K seeds' networks (see `rlsweep.trainables.seeds`). It keeps no random
state of its own: sampling draws from the per-seed generators its caller passes, so a
worker's exploration is reproducible from the worker's seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.learning.device import to_device
from rlsweep.trainables.models.distributions import action_head, masked_logits
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.networks import (
    ActorCritic,
    NetworkConfig,
    NetworkSpec,
    QNetwork,
    SquashedGaussianActor,
)
from rlsweep.trainables.models.normalizer import ObservationNormalizer
from rlsweep.trainables.models.observations import MASK_KEY, ObservationLayout, Observations
from rlsweep.trainables.models.recurrent import (
    LSTMSpec,
    RecurrentActorCritic,
    RecurrentState,
    action_feature_dim,
    action_features,
)
from rlsweep.trainables.seeds import draw, generators


class PolicyConfig(NetworkConfig, Protocol):
    """The config keys a policy is built from; every algorithm's config has them."""

    normalize_obs: bool
    use_lstm: bool
    lstm_cell_size: int
    lstm_use_prev_action: bool
    lstm_use_prev_reward: bool


class QPolicyConfig(PolicyConfig, Protocol):
    dueling: bool


class Policy:
    """K seeds' networks plus the observation normalizer they were trained with.

    Subclasses build `network` from the algorithm's config and define `explore` (exploratory
    actions for rollouts, with whatever per-step outputs their learner needs) and
    `compute_actions` (env-ready actions, deterministic by default). Batches are [K, N, ...]:
    N observations for each of the K seeds. Both take and return the recurrent state
    (`recurrent.py`; empty for a memoryless policy), which callers reset where episodes
    start (`reset_state`). `act(obs, state)` is the deployment API, for a policy of one
    seed (`load_policy` picks it); `compute_single_action(obs)` for a memoryless one.
    """

    network: nn.Module

    def __init__(
        self,
        config: PolicyConfig,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        device: torch.device | str,
        seeds: Sequence[int],
    ):
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.layout = ObservationLayout.of(observation_space)
        self.spec = NetworkSpec.of(config, self.layout)
        """What the networks are built from (the learner's other networks too: SAC's critics)."""
        self.seeds = list(seeds)
        self.device = torch.device(device)
        self.init_generators = generators(self.seeds)
        """Draw seed k's initial weights; the learner's other networks (SAC's critics)
        continue from them."""
        self.network = self.build_network(config, self.init_generators).to(self.device)
        self.normalizer = ObservationNormalizer(len(self.seeds), self.layout.vector_dim, config.normalize_obs)

    @classmethod
    def check_fits(
        cls, config: PolicyConfig, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
    ) -> None:
        """A one-line ConfigError if the config's networks cannot take these spaces (an image
        the CNN shrinks to nothing, an action mask of the wrong size), without building them."""
        layout = ObservationLayout.of(observation_space)
        NetworkSpec.of(config, layout)
        if layout.mask_dim and isinstance(action_space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
            num_actions = int(np.sum(getattr(action_space, "nvec", action_space.n)))
            if layout.mask_dim != num_actions:
                raise ConfigError(
                    f"the observation's {MASK_KEY!r} has {layout.mask_dim} entries but the action space "
                    f"{action_space} has {num_actions} actions; the mask needs one entry per action"
                )

    @classmethod
    def probe(
        cls, config: PolicyConfig, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
    ) -> None:
        """Build a one-seed policy on the CPU and act on one sampled observation, so what the
        spaces and the config cannot make together is a one-line ConfigError on the driver,
        not a failed actor."""
        cls.check_fits(config, observation_space, action_space)
        policy = cls(config, observation_space, action_space, "cpu", [0])
        layout = policy.layout
        obs = {key: value[None] for key, value in layout.encode_one(observation_space.sample()).items()}
        try:
            with torch.no_grad():
                policy.explore(obs, policy.initial_state(), generators([0]))
        except RuntimeError as error:
            raise ConfigError(
                f"the networks the config builds cannot act on observations {observation_space}: "
                f"{str(error).splitlines()[0]}"
            ) from None

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    def build_network(self, config: PolicyConfig, init: list[torch.Generator]) -> nn.Module:
        """The seeds' network, seed k's parameters drawn from generator `init[k]`."""
        raise NotImplementedError

    def obs_tensors(self, obs: Observations) -> TensorObs:
        """Observations [K, ...] as tensors on the policy's device, the vector normalized,
        images still uint8."""
        return {
            key: to_device(self.normalizer(array) if key == "vector" else np.asarray(array), self.device)
            for key, array in obs.items()
        }

    @property
    def recurrent(self) -> bool:
        """Whether the policy has memory (its state is not empty)."""
        return False

    def initial_state(self, num_envs: int = 1) -> RecurrentState:
        """What the policy remembers before an episode's first step, for N = `num_envs` envs
        per seed: zeros [K, N, ...]; empty for a memoryless policy."""
        return {}

    @staticmethod
    def reset_state(state: RecurrentState, starts: np.ndarray) -> RecurrentState:
        """`state` back at the initial (zero) state for the envs where `starts` [K, N] is true."""
        return {
            key: np.where(starts.reshape(starts.shape + (1,) * (value.ndim - 2)), 0, value).astype(
                value.dtype
            )
            for key, value in state.items()
        }

    @staticmethod
    def remember_rewards(state: RecurrentState, rewards: np.ndarray) -> RecurrentState:
        """`state` after the env paid `rewards` [K, N] for the actions chosen with it: the
        previous reward, for a policy that reads it."""
        if "prev_reward" not in state:
            return state
        return {
            **state,
            "prev_reward": np.asarray(rewards, dtype=np.float32).reshape(state["prev_reward"].shape),
        }

    def explore(
        self, obs: Observations, state: RecurrentState, gens: Sequence[torch.Generator]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], RecurrentState]:
        """Exploratory actions [K, N, ...] for observations [K, N, ...], per-step extras, and
        the next state."""
        raise NotImplementedError

    def compute_actions(
        self,
        obs: Observations,
        state: RecurrentState,
        deterministic: bool = True,
        gens: Sequence[torch.Generator] = (),
    ) -> tuple[np.ndarray, RecurrentState]:
        """Env-ready actions [K, N, ...] and the next state; stochastic ones need the seeds'
        generators."""
        raise NotImplementedError

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """What the env receives for the policy's actions: Box actions clipped to the bounds,
        indices shifted by a Discrete/MultiDiscrete space's `start`."""
        space = self.action_space
        if isinstance(space, gym.spaces.Box):
            return np.clip(actions.reshape(*actions.shape[:2], *space.shape), space.low, space.high)
        if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
            return actions + space.start
        return actions.astype(space.dtype)

    def act(
        self,
        obs: Any,
        state: RecurrentState,
        prev_reward: float = 0.0,
        *,
        deterministic: bool = True,
        action_mask: Any = None,
    ) -> tuple[Any, RecurrentState]:
        """The action for one observation as the env returns it (an array, or an int for
        Discrete action spaces), and the state to act on the next observation with: start
        each episode from `initial_state()`. `prev_reward` is what the previous action earned
        (read with lstm_use_prev_reward); `action_mask` for envs that give it in `info`."""
        if self.num_seeds != 1:
            raise ValueError(
                f"this policy holds {self.num_seeds} seeds; load_policy(path, seed_index=i) picks one"
            )
        encoded = self.layout.encode_one(obs, action_mask)
        state = self.remember_rewards(state, np.full((1, 1), prev_reward))
        actions, state = self.compute_actions({k: v[None] for k, v in encoded.items()}, state, deterministic)
        action = actions[0, 0]
        return int(action) if isinstance(self.action_space, gym.spaces.Discrete) else action, state

    def compute_single_action(self, obs: Any, deterministic: bool = True, action_mask: Any = None) -> Any:
        """The action of a memoryless policy for one observation (see `act`)."""
        if self.recurrent:
            raise ValueError(
                "this policy has memory (use_lstm): state = policy.initial_state() at an episode's start, "
                "then action, state = policy.act(obs, state) at every step"
            )
        return self.act(obs, {}, deterministic=deterministic, action_mask=action_mask)[0]

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

    def of_seed(self, index: int) -> Policy:
        """A policy of seed `index` alone."""
        single = type(self)(
            self.config, self.observation_space, self.action_space, self.device, [self.seeds[index]]
        )
        weights = self.get_weights()
        single.set_weights(
            {
                **weights,
                "network": {k: v[index : index + 1] for k, v in weights["network"].items()},
                "normalizer": {k: v[index : index + 1] for k, v in weights["normalizer"].items()},
            }
        )
        return single


class ActorCriticPolicy(Policy):
    """An `ActorCritic` (a `RecurrentActorCritic` with use_lstm) with the action head of its
    action space; `explore` also returns the log-probabilities and values PPO needs."""

    network: ActorCritic | RecurrentActorCritic

    def build_network(
        self, config: PolicyConfig, init: list[torch.Generator]
    ) -> ActorCritic | RecurrentActorCritic:
        self.head = action_head(self.action_space)
        if not config.use_lstm:
            return ActorCritic(init, self.spec, self.head.param_dim, self.head.continuous)
        self.lstm = LSTMSpec(
            config.lstm_cell_size,
            action_feature_dim(self.action_space) if config.lstm_use_prev_action else 0,
            config.lstm_use_prev_reward,
        )
        return RecurrentActorCritic(init, self.spec, self.lstm, self.head.param_dim, self.head.continuous)

    @property
    def recurrent(self) -> bool:
        return isinstance(self.network, RecurrentActorCritic)

    def initial_state(self, num_envs: int = 1) -> RecurrentState:
        if not self.recurrent:
            return {}
        rows = (self.num_seeds, num_envs)
        state = {  # the actor's and the critic's LSTM state
            "hidden": np.zeros((*rows, 2, self.lstm.cell_size), np.float32),
            "cell": np.zeros((*rows, 2, self.lstm.cell_size), np.float32),
        }
        if self.lstm.prev_action_dim:
            state["prev_action"] = np.zeros((*rows, self.lstm.prev_action_dim), np.float32)
        if self.lstm.prev_reward:
            state["prev_reward"] = np.zeros(rows, np.float32)
        return state

    def params_and_value(
        self, x: TensorObs, state: RecurrentState
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The action head's params [K, N, P], the values [K, N] and the next LSTM state."""
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
    an action the mask forbids.

    `epsilon` travels with the weights, so the learner's schedule reaches every worker;
    the learner's own copy stays 0, and deployment is greedy.
    """

    network: QNetwork
    epsilon = 0.0

    def build_network(self, config: QPolicyConfig, init: list[torch.Generator]) -> QNetwork:
        return QNetwork(init, self.spec, int(self.action_space.n), config.dueling)

    @torch.inference_mode()
    def explore(
        self, obs: Observations, state: RecurrentState, gens: Sequence[torch.Generator]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], RecurrentState]:
        return self._epsilon_greedy(obs, self.epsilon, gens), {}, state

    @torch.inference_mode()
    def compute_actions(
        self,
        obs: Observations,
        state: RecurrentState,
        deterministic: bool = True,
        gens: Sequence[torch.Generator] = (),
    ) -> tuple[np.ndarray, RecurrentState]:
        epsilon = 0.0 if deterministic else self.epsilon
        return self.env_actions(self._epsilon_greedy(obs, epsilon, gens)), state

    def _epsilon_greedy(
        self, obs: Observations, epsilon: float, gens: Sequence[torch.Generator]
    ) -> np.ndarray:
        x = self.obs_tensors(obs)
        mask = x.get(MASK_KEY)
        q = masked_logits(self.network(x), mask)  # [K, N, A]
        actions = q.argmax(-1)
        if epsilon > 0:
            _, num_envs, num_actions = q.shape
            noise = draw("uniform", gens, (num_envs, 1 + num_actions), self.device)
            explore = noise[..., 0] < epsilon
            # Uniform over the allowed actions: the argmax of uniform noise, masked.
            random_actions = masked_logits(noise[..., 1:], mask).argmax(-1)
            actions = torch.where(explore, random_actions, actions)
        return actions.cpu().numpy()

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
