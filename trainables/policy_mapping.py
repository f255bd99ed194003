"""Which policy acts for which agent, with the config keys RLlib users know:

- `policies`: policy ids (a list), or id -> that policy's overrides of the algorithm config
  (`lr`, `ent_coef`, `hidden_sizes`, ...; RLlib's `entropy_coeff` and `fcnet_hiddens` are
  accepted as their names); empty: one shared policy when every agent has the same spaces,
  else one per agent;
- `policy_mapping_fn`: `(agent_id, episode) -> policy_id`, as a callable, a "module:fn"
  string, or the shortcuts "shared" (every agent one policy, "shared") and "per_agent"
  (each agent its own policy, named by its id);
- `policies_to_train`: the ids the learner updates (default: all); the others only act.

`PolicyMapping.build` checks all of it against the env's agents and spaces before anything
samples, with one line per problem.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from rlsweep.trainables.config import ConfigError

SHARED = "shared"
PER_AGENT = "per_agent"
SHORTCUTS = (SHARED, PER_AGENT)

OVERRIDE_ALIASES = {
    "entropy_coeff": "ent_coef",
    "fcnet_hiddens": "hidden_sizes",
    "fcnet_activation": "activation",
}
"""RLlib's names of per-policy keys, as rlsweep's config calls them."""

MappingFn = Callable[[Any, Any], str]


@dataclass(frozen=True)
class PolicySpec:
    """One policy: its id, the spaces it acts in and its config overrides."""

    policy_id: str
    observation_space: gym.spaces.Space
    action_space: gym.spaces.Space
    overrides: dict[str, Any]
    trained: bool


@dataclass(frozen=True)
class PolicyMapping:
    """The policies and the function mapping agents to them, checked against an env."""

    policies: dict[str, PolicySpec]
    mapping_fn: MappingFn
    description: str
    """How agents map, for `rlsweep check` ("shared", "per_agent", or the function's name)."""
    agent_policies: dict[Any, str]
    """Each possible agent's policy in a first episode (what `check` shows)."""

    def policy_of(self, agent: Any, episode: Any = None) -> str:
        policy_id = self.mapping_fn(agent, episode)
        if policy_id not in self.policies:
            raise ConfigError(
                f"policy_mapping_fn mapped agent {agent!r} to unknown policy {policy_id!r}; "
                f"policies: {sorted(self.policies)}"
            )
        return policy_id

    @property
    def trained(self) -> list[str]:
        return [pid for pid, spec in self.policies.items() if spec.trained]

    @classmethod
    def build(
        cls,
        policies: Any,
        mapping_fn: Any,
        policies_to_train: Any,
        agents: list[Any],
        observation_spaces: dict[Any, gym.spaces.Space],
        action_spaces: dict[Any, gym.spaces.Space],
    ) -> PolicyMapping:
        overrides = _policy_overrides(policies)
        same_spaces = all(
            observation_spaces[a] == observation_spaces[agents[0]]
            and action_spaces[a] == action_spaces[agents[0]]
            for a in agents
        )
        if mapping_fn is None:
            mapping_fn = SHARED if len(overrides) == 1 or (same_spaces and not overrides) else PER_AGENT
        if mapping_fn == SHARED:
            shared_id = next(iter(overrides)) if len(overrides) == 1 else SHARED
            fn, description = (lambda agent, episode=None: shared_id), SHARED
        elif mapping_fn == PER_AGENT:
            fn, description = (lambda agent, episode=None: str(agent)), PER_AGENT
        elif isinstance(mapping_fn, str):
            fn, description = load_function(mapping_fn, "policy_mapping_fn"), mapping_fn
        elif callable(mapping_fn):
            fn, description = mapping_fn, getattr(mapping_fn, "__qualname__", repr(mapping_fn))
        else:
            raise ConfigError(
                "config key 'policy_mapping_fn' must be 'shared', 'per_agent', 'module:function' or a "
                f"function (agent_id, episode) -> policy_id, got {mapping_fn!r}"
            )
        agent_policies = {}
        for agent in agents:
            policy_id = fn(agent, None)
            if overrides and policy_id not in overrides:
                raise ConfigError(
                    f"policy_mapping_fn mapped agent {agent!r} to unknown policy {policy_id!r}; "
                    f"config key 'policies' lists {sorted(overrides)}"
                )
            agent_policies[agent] = str(policy_id)
        policy_ids = list(overrides) or list(dict.fromkeys(agent_policies.values()))
        specs = {}
        for policy_id in policy_ids:
            members = [a for a in agents if agent_policies[a] == policy_id]
            spaces = {(repr(observation_spaces[a]), repr(action_spaces[a])) for a in members}
            if len(spaces) > 1:
                raise ConfigError(
                    f"agents {members} share policy {policy_id!r} but their observation or action spaces "
                    "differ; map them to separate policies (policy_mapping_fn: per_agent)"
                )
            if not members:
                if not overrides or policy_id not in overrides:
                    continue
                # A policy no agent maps to at the start (a league's opponent): it takes the
                # first agent's spaces, which must then be every agent's.
                if not same_spaces:
                    raise ConfigError(
                        f"policy {policy_id!r} has no agent mapped to it in a first episode and the "
                        "agents' spaces differ, so its spaces are unknown; map an agent to it"
                    )
                members = [agents[0]]
            specs[policy_id] = PolicySpec(
                policy_id,
                observation_spaces[members[0]],
                action_spaces[members[0]],
                overrides.get(policy_id, {}),
                trained=True,
            )
        if policies_to_train is not None:
            if isinstance(policies_to_train, str) or not all(p in specs for p in policies_to_train):
                raise ConfigError(
                    f"config key 'policies_to_train' must list policy ids among {sorted(specs)}, "
                    f"got {policies_to_train!r}"
                )
            specs = {pid: _trained(spec, pid in policies_to_train) for pid, spec in specs.items()}
        return cls(specs, fn, description, agent_policies)


def _trained(spec: PolicySpec, trained: bool) -> PolicySpec:
    return PolicySpec(spec.policy_id, spec.observation_space, spec.action_space, spec.overrides, trained)


def _policy_overrides(policies: Any) -> dict[str, dict[str, Any]]:
    """`policies` as id -> overrides (RLlib's key names translated)."""
    if policies is None:
        return {}
    if isinstance(policies, (list, tuple, set)):
        policies = {str(pid): {} for pid in policies}
    if not isinstance(policies, dict):
        raise ConfigError(
            f"config key 'policies' must list policy ids or map them to config overrides, got {policies!r}"
        )
    result = {}
    for pid, overrides in policies.items():
        overrides = overrides or {}
        if not isinstance(overrides, dict):
            raise ConfigError(
                f"config key 'policies.{pid}' must be a mapping of config overrides, got {overrides!r}"
            )
        result[str(pid)] = {OVERRIDE_ALIASES.get(key, key): value for key, value in overrides.items()}
    return result


def load_function(name: str, key: str) -> Callable[..., Any]:
    """The function a "module:function" string names, or a ConfigError naming `key`."""
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"config key {key!r} must be 'module:function', got {name!r}")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(
            f"config key {key!r}: cannot load {name!r} ({type(error).__name__}: {error})"
        ) from None
    if not callable(function):
        raise ConfigError(f"config key {key!r}: {name!r} is not a function")
    return function
