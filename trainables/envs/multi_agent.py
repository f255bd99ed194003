"""Multi-agent envs, adapted once at the edge: every form a user brings becomes one
RLlib-style `MultiAgentEnv`, and everything inside keeps agents as dict keys.

The one API inside (RLlib's):

    reset(seed=None) -> (obs, infos)
    step(actions)    -> (obs, rewards, terminateds, truncateds, infos)

each a dict keyed by agent id; `terminateds` and `truncateds` also hold "__all__". The
agents in `obs` are the ones to act next (all of them in a simultaneous game, one in a
turn-based one); an agent that just finished appears once more with its final observation
and its flag set. Agents may join and leave between steps.

Forms accepted, by the same names as single-agent envs (`module:Class`, `module:factory`,
a `register_env` name, the class itself, `env_config` as keywords or as one dict):

- an RLlib-style class (the API above, with `possible_agents` and per-agent spaces as
  `observation_spaces`/`action_spaces` dicts, `get_observation_space(agent)` methods, or
  one shared `observation_space`/`action_space`);
- a PettingZoo `ParallelEnv` (simultaneous moves);
- a PettingZoo `AECEnv` (turns): only the agent whose turn it is acts; the action mask in
  its observation (classic games) is honoured by the policies' masked action heads.

A PettingZoo env module (`pettingzoo.classic:tictactoe_v3`, `mpe2:simple_spread_v3`) names
its `parallel_env` factory when it has one, else its `env` (AEC) factory (`names.resolve_env`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.envs.build import check_config_keys
from rlsweep.trainables.envs.context import EnvContext
from rlsweep.trainables.envs.errors import first_line
from rlsweep.trainables.envs.names import EnvSource, EnvSpecifier, resolve_env

ALL = "__all__"
"""The key of `terminateds`/`truncateds` saying the whole episode is over."""

AgentID = Any


class MultiAgentEnv:
    """The RLlib-style API every multi-agent env is adapted to (see the module docstring).
    Subclassing is optional: any class with these methods and attributes is accepted."""

    possible_agents: list[AgentID]
    observation_spaces: dict[AgentID, gym.spaces.Space]
    action_spaces: dict[AgentID, gym.spaces.Space]

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        raise NotImplementedError

    def step(self, actions: dict[AgentID, Any]) -> tuple[dict, dict, dict, dict, dict]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def agent_spaces(env: Any, label: str) -> tuple[list[AgentID], dict, dict]:
    """Every agent the env may have, with its observation and action spaces, from whichever
    form the env declares them in; a one-line ConfigError when it declares none."""
    agents = getattr(env, "possible_agents", None)
    if agents is None:
        spaces = getattr(env, "observation_spaces", None)
        agents = list(spaces) if isinstance(spaces, dict) else None
    if not agents:
        raise ConfigError(
            f"multi-agent env {label!r} has no 'possible_agents': list every agent id it may have "
            "(PettingZoo envs and RLlib MultiAgentEnvs set it in __init__)"
        )
    agents = list(agents)

    def space(kind: str, agent: AgentID) -> gym.spaces.Space:
        shared = getattr(env, f"{kind}_space", None)
        if callable(shared) and not isinstance(shared, gym.spaces.Space):
            return shared(agent)  # PettingZoo: observation_space(agent)
        table = getattr(env, f"{kind}_spaces", None)
        if isinstance(table, dict) and agent in table:
            return table[agent]
        getter = getattr(env, f"get_{kind}_space", None)
        if callable(getter):
            return getter(agent)
        if isinstance(shared, gym.spaces.Dict) and agent in shared.spaces:
            return shared[agent]  # old RLlib: one Dict keyed by agent id
        if isinstance(shared, gym.spaces.Space):
            return shared
        raise ConfigError(f"multi-agent env {label!r} declares no {kind} space for agent {agent!r}")

    return (
        agents,
        {agent: space("observation", agent) for agent in agents},
        {agent: space("action", agent) for agent in agents},
    )


class RLlibStyleEnv(MultiAgentEnv):
    """A user's RLlib-style env, with the spaces and agents it declares read once."""

    def __init__(self, env: Any, label: str):
        self.env = env
        self.possible_agents, self.observation_spaces, self.action_spaces = agent_spaces(env, label)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return obs, infos

    def step(self, actions: dict[AgentID, Any]) -> tuple[dict, dict, dict, dict, dict]:
        return self.env.step(actions)

    def close(self) -> None:
        self.env.close()


class ParallelEnvAdapter(MultiAgentEnv):
    """A PettingZoo ParallelEnv: its dicts plus "__all__", which is true once no agent is left."""

    def __init__(self, env: Any, label: str):
        self.env = env
        self.possible_agents, self.observation_spaces, self.action_spaces = agent_spaces(env, label)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return obs, infos

    def step(self, actions: dict[AgentID, Any]) -> tuple[dict, dict, dict, dict, dict]:
        obs, rewards, terminateds, truncateds, infos = self.env.step(actions)
        terminateds, truncateds = dict(terminateds), dict(truncateds)
        over = not self.env.agents
        terminateds[ALL] = over and all(terminateds.get(agent, True) for agent in obs)
        truncateds[ALL] = over and not terminateds[ALL]
        return obs, rewards, terminateds, truncateds, infos

    def close(self) -> None:
        self.env.close()


class AECEnvAdapter(MultiAgentEnv):
    """A PettingZoo AECEnv as turns: each step acts for the agent whose turn it is.

    After the acting agent's move, every agent collects the reward the move paid it
    (`env.rewards`); agents that the move finished step out (PettingZoo's dead steps) and
    are returned with their final observation; the next agent to act is returned with the
    observation it acts on."""

    def __init__(self, env: Any, label: str):
        self.env = env
        self.possible_agents, self.observation_spaces, self.action_spaces = agent_spaces(env, label)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.env.reset(seed=seed, options=options)
        obs, _, _, _, infos = self._collect({})
        return obs, infos

    def step(self, actions: dict[AgentID, Any]) -> tuple[dict, dict, dict, dict, dict]:
        agent = self.env.agent_selection
        if agent not in actions:
            raise ValueError(f"it is agent {agent!r}'s turn, but the actions are for {list(actions)}")
        self.env.step(actions[agent])
        return self._collect({a: float(r) for a, r in self.env.rewards.items()})

    def _collect(self, rewards: dict[AgentID, float]) -> tuple[dict, dict, dict, dict, dict]:
        env = self.env
        obs: dict[AgentID, Any] = {}
        terminateds: dict[AgentID, bool] = {}
        truncateds: dict[AgentID, bool] = {}
        infos: dict[AgentID, Any] = {}
        while env.agents:
            agent = env.agent_selection
            if env.terminations[agent] or env.truncations[agent]:
                obs[agent] = env.observe(agent)
                terminateds[agent] = bool(env.terminations[agent])
                truncateds[agent] = bool(env.truncations[agent]) and not terminateds[agent]
                infos[agent] = env.infos.get(agent, {})
                env.step(None)  # the dead step: the finished agent leaves
                continue
            obs[agent] = env.observe(agent)
            terminateds[agent] = truncateds[agent] = False
            infos[agent] = env.infos.get(agent, {})
            break
        over = not env.agents
        terminateds[ALL] = over and all(terminateds.get(a, True) for a in obs)
        truncateds[ALL] = over and not terminateds[ALL]
        return obs, rewards, terminateds, truncateds, infos

    def close(self) -> None:
        self.env.close()


@dataclass(frozen=True)
class AgentSpaces:
    """What `check_multi_agent_env` found: every agent and its spaces."""

    label: str
    agents: list[AgentID]
    observation_spaces: dict[AgentID, gym.spaces.Space]
    action_spaces: dict[AgentID, gym.spaces.Space]
    state_space: gym.spaces.Space | None = None
    """The env's global state space, if it has a `state()` (PettingZoo's, mpe2's)."""
    observed_at_reset: tuple[AgentID, ...] = ()
    """The agents the first reset observed (all of them in a simultaneous game)."""

    @property
    def global_state_dim(self) -> int:
        """The size of the global state a centralized critic sees: `state()`'s, else every
        agent's observation flattened and concatenated in `agents` order."""
        if self.state_space is not None:
            return gym.spaces.flatdim(self.state_space)
        return sum(gym.spaces.flatdim(self.observation_spaces[agent]) for agent in self.agents)

    @property
    def global_state_source(self) -> str:
        if self.state_space is not None:
            return "the env's state()"
        return "all agents' observations, concatenated"

    def central_value_problem(self) -> str | None:
        """Why a centralized critic cannot get this env's global state, or None."""
        if self.state_space is not None:
            return None
        missing = [agent for agent in self.agents if agent not in self.observed_at_reset]
        if not missing:
            return None
        return (
            f"config key 'central_value' needs a global state: multi-agent env {self.label!r} has no "
            f"state() and observes only {list(self.observed_at_reset)} at reset, not {missing} "
            "(agents taking turns, joining or leaving); give the env a state() and state_space"
        )


def state_provider(env: MultiAgentEnv) -> Any | None:
    """The object whose `state()` is the env's global state (the adapted env itself, or the
    PettingZoo or user env inside an adapter), or None when it has none."""
    for candidate in (env, getattr(env, "env", None)):
        if isinstance(getattr(candidate, "state_space", None), gym.spaces.Space) and callable(
            getattr(candidate, "state", None)
        ):
            return candidate
    return None


def global_state(env: MultiAgentEnv, obs: dict[AgentID, Any], spaces: AgentSpaces) -> np.ndarray:
    """The global state after a reset or step that returned `obs`: the env's `state()`, else
    every agent's observation flattened and concatenated in `spaces.agents` order (a
    RuntimeError when `obs` lacks an agent: a centralized critic needs all of them)."""
    provider = state_provider(env)
    if provider is not None:
        return np.asarray(gym.spaces.flatten(provider.state_space, provider.state()), np.float32)
    missing = [agent for agent in spaces.agents if agent not in obs]
    if missing:
        raise RuntimeError(
            f"central_value: multi-agent env {spaces.label!r} has no state() and did not observe agents "
            f"{missing} this step; the concatenated-observations state needs every agent every step"
        )
    return np.concatenate(
        [
            np.asarray(gym.spaces.flatten(spaces.observation_spaces[agent], obs[agent]), np.float32)
            for agent in spaces.agents
        ]
    )


def resolve_multi_agent_env(env: EnvSpecifier) -> EnvSource:
    """The env `env` names, in the single-agent forms (`names.resolve_env`, which also takes a
    PettingZoo env module, `pettingzoo.classic:tictactoe_v3`, as its `parallel_env` factory,
    else its `env` factory)."""
    return resolve_env(env)


def make_multi_agent_env(
    source: EnvSource,
    env_config: dict[str, Any] | None = None,
    *,
    worker_index: int = 0,
    vector_index: int = 0,
) -> MultiAgentEnv:
    """One env of `source`, adapted to the RLlib-style API."""
    context = EnvContext(env_config or {}, worker_index, 0, vector_index)
    creator = source.creator
    if creator is None:
        raise ConfigError(
            f"env {source.label!r} is a single-agent gymnasium id; a multi-agent trainable needs a "
            "multi-agent env (an RLlib-style MultiAgentEnv, or a PettingZoo ParallelEnv or AECEnv)"
        )
    if source.config_as_keywords:
        check_config_keys(source.label, creator, context)
        instance = creator(**context)
    else:
        instance = creator(context)
    return adapt(instance, source.label)


def adapt(instance: Any, label: str) -> MultiAgentEnv:
    """An env of any accepted form as the RLlib-style API (the one adaptation)."""
    if isinstance(instance, MultiAgentEnv):
        return instance
    kind = _pettingzoo_kind(instance)
    if kind == "parallel":
        return ParallelEnvAdapter(instance, label)
    if kind == "aec":
        return AECEnvAdapter(instance, label)
    if isinstance(instance, gym.Env) and not hasattr(instance, "possible_agents"):
        raise ConfigError(
            f"env {label!r} is a single-agent gymnasium.Env; a multi-agent trainable needs an RLlib-style "
            "MultiAgentEnv or a PettingZoo ParallelEnv or AECEnv"
        )
    if not (callable(getattr(instance, "reset", None)) and callable(getattr(instance, "step", None))):
        raise ConfigError(f"env {label!r} built a {type(instance).__qualname__}, which has no reset and step")
    return RLlibStyleEnv(instance, label)


def _pettingzoo_kind(instance: Any) -> str | None:
    """ "parallel" or "aec" for a PettingZoo env (its wrappers included), else None."""
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(instance).__mro__}
    if any(name.startswith("pettingzoo.") and name.endswith(".ParallelEnv") for name in names):
        return "parallel"
    if any(name.startswith("pettingzoo.") and name.endswith(".AECEnv") for name in names):
        return "aec"
    return None


def check_multi_agent_env(source: EnvSource, env_config: dict[str, Any] | None = None) -> AgentSpaces:
    """Build one env, read its agents and spaces, and reset it; a one-line ConfigError
    naming the env for anything that fails."""
    try:
        env = make_multi_agent_env(source, env_config)
        agents, observation_spaces, action_spaces = agent_spaces(env, source.label)
        obs, _ = env.reset(seed=0)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(
            f"multi-agent env {source.label!r} failed: {type(error).__name__}: {first_line(error)}"
        ) from None
    unknown = [agent for agent in obs if agent not in observation_spaces]
    provider = state_provider(env)
    state_space = provider.state_space if provider is not None else None
    env.close()
    if unknown:
        raise ConfigError(
            f"multi-agent env {source.label!r} returned observations for agents {unknown} "
            f"that are not in its possible_agents {agents}"
        )
    return AgentSpaces(source.label, agents, observation_spaces, action_spaces, state_space, tuple(obs))
