"""Small multi-agent envs for the multi-agent tests: turns, agents joining and leaving,
action masks, and a PettingZoo-like env that lists no agents."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from rlsweep.trainables.envs.multi_agent import ALL


class TurnTakingEnv:
    """RLlib-style, turn-based: "a" and "b" alternate from the start; "c" joins at step 2 and
    takes turns from then on; "a" leaves (terminated) at step 4; the episode ends at step 8.
    Every step pays each agent present 1 and the acting one 10 more; each agent's observation
    holds a mask allowing only one random action, and a masked action raises."""

    def __init__(self, config: dict[str, Any] | None = None):
        self.possible_agents = ["a", "b", "c"]
        space = gym.spaces.Dict(
            {"obs": gym.spaces.Box(-1, 1, (3,), np.float32), "action_mask": gym.spaces.MultiBinary(4)}
        )
        self.observation_spaces = dict.fromkeys(self.possible_agents, space)
        self.action_spaces = {agent: gym.spaces.Discrete(4) for agent in self.possible_agents}
        self.rng = np.random.default_rng(0)
        self.paid: dict[str, float] = {}
        """Every reward paid to each agent after its first action of an episode (all episodes)."""
        self.turns: dict[str, int] = {}
        """Actions each agent took so far."""

    def _obs(self, agent: str) -> dict[str, np.ndarray]:
        mask = np.zeros(4, dtype=np.int8)
        mask[self.rng.integers(4)] = 1
        self.masks[agent] = mask
        return {"obs": self.rng.uniform(-1, 1, 3).astype(np.float32), "action_mask": mask}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.t, self.present, self.order, self.masks, self.acted = 0, ["a", "b"], ["a", "b"], {}, set()
        return {"a": self._obs("a")}, {}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        ((agent, action),) = actions.items()
        if not self.masks[agent][action]:
            raise AssertionError(f"agent {agent} took masked action {action}")
        self.turns[agent] = self.turns.get(agent, 0) + 1
        self.acted.add(agent)
        self.t += 1
        rewards = {a: 1.0 + (10.0 if a == agent else 0.0) for a in self.present}
        for a, r in rewards.items():
            if a in self.acted:
                self.paid[a] = self.paid.get(a, 0.0) + r
        obs, terminateds = {}, {ALL: False}
        if self.t == 2:
            self.present.append("c")
            self.order.append("c")
        if self.t == 4:  # "a" leaves with its final observation
            self.present.remove("a")
            self.order.remove("a")
            obs["a"], terminateds["a"] = self._obs("a"), True
        if self.t == 8:
            for a in self.present:
                obs[a], terminateds[a] = self._obs(a), True
            terminateds[ALL] = True
        else:
            following = self.order[self.t % len(self.order)]
            obs[following] = self._obs(following)
        return obs, rewards, terminateds, {ALL: False}, {}

    def close(self) -> None:
        pass


class SpreadEnv:
    """RLlib-style, simultaneous: `num_agents` agents, all acting every step, 5 steps long."""

    def __init__(self, num_agents: int = 4, odd_one_out: bool = False):
        self.possible_agents = [f"agent_{i}" for i in range(num_agents)]
        self.observation_spaces = {
            agent: gym.spaces.Box(-1, 1, (3 if odd_one_out and i == 0 else 2,), np.float32)
            for i, agent in enumerate(self.possible_agents)
        }
        self.action_spaces = {agent: gym.spaces.Discrete(2) for agent in self.possible_agents}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.t = 0
        return {agent: self.observation_spaces[agent].sample() for agent in self.possible_agents}, {}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        self.t += 1
        done = self.t >= 5
        obs = {agent: self.observation_spaces[agent].sample() for agent in actions}
        rewards = {agent: float(action) for agent, action in actions.items()}
        return obs, rewards, {ALL: False}, {ALL: done, **dict.fromkeys(actions, done)}, {}

    def close(self) -> None:
        pass


class AgentlessParallelEnv(ParallelEnv):
    """A PettingZoo ParallelEnv that never says which agents it has."""

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        return {}, {}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        return {}, {}, {}, {}, {}


def map_to_missing_policy(agent_id: str, episode: Any = None) -> str:
    return "nobody"
