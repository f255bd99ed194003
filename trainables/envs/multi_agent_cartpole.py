"""Several independent CartPoles as the agents of one RLlib-style multi-agent env (RLlib's
`MultiAgentCartPole`): each agent balances its own pole; an agent whose pole falls leaves,
and the episode ends when every pole has fallen or the time limit cuts it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from rlsweep.trainables.envs.multi_agent import ALL, MultiAgentEnv


class MultiAgentCartPole(MultiAgentEnv):
    """`num_agents` CartPole-v1s, agents "agent_0" ... (same spaces, so by default one shared policy)."""

    def __init__(self, num_agents: int = 4, max_episode_steps: int = 500):
        self.envs = [gym.make("CartPole-v1", max_episode_steps=max_episode_steps) for _ in range(num_agents)]
        self.possible_agents = [f"agent_{i}" for i in range(num_agents)]
        self.observation_spaces = {
            agent: env.observation_space for agent, env in zip(self.possible_agents, self.envs, strict=True)
        }
        self.action_spaces = {
            agent: env.action_space for agent, env in zip(self.possible_agents, self.envs, strict=True)
        }
        self.alive: set[str] = set()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.alive = set(self.possible_agents)
        obs = {}
        for i, (agent, env) in enumerate(zip(self.possible_agents, self.envs, strict=True)):
            obs[agent], _ = env.reset(seed=None if seed is None else seed * len(self.envs) + i)
        return obs, {agent: {} for agent in obs}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        obs, rewards, terminateds, truncateds = {}, {}, {}, {}
        for agent, action in actions.items():
            env = self.envs[self.possible_agents.index(agent)]
            obs[agent], rewards[agent], terminateds[agent], truncateds[agent], _ = env.step(action)
            if terminateds[agent] or truncateds[agent]:
                self.alive.discard(agent)
        terminateds[ALL] = not self.alive and all(terminateds.values())
        truncateds[ALL] = not self.alive and not terminateds[ALL]
        return obs, rewards, terminateds, truncateds, {agent: {} for agent in obs}

    def close(self) -> None:
        for env in self.envs:
            env.close()
