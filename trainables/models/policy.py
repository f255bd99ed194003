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
from rlsweep.trainables.models.encoders import TensorObs
from rlsweep.trainables.models.networks import (
    NetworkConfig,
    NetworkSpec,
)
from rlsweep.trainables.models.normalizer import ObservationNormalizer
from rlsweep.trainables.models.observations import MASK_KEY, ObservationLayout, Observations
from rlsweep.trainables.models.recurrent import (
    RecurrentState,
)
from rlsweep.trainables.seeds import generators


class PolicyConfig(NetworkConfig, Protocol):
    """The config keys a policy is built from; every algorithm's config has them."""

    normalize_obs: bool
    use_lstm: bool
    lstm_cell_size: int
    lstm_use_prev_action: bool
    lstm_use_prev_reward: bool
    use_attention: bool
    attention_memory: int
    attention_dim: int
    attention_num_heads: int
    attention_num_layers: int


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
        not a failed actor. Run after `check_fits` (`Algorithm.check_spaces` calls it), which
        names the config keys of the mismatches it can see without building anything."""
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
                "this policy has memory (use_lstm or use_attention): state = policy.initial_state() "
                "at an episode's start, "
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
