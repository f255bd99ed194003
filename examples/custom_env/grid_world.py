"""A small env of your own: walk to a goal on a grid, the goal placed anew every episode.

rlsweep imports this module wherever an env is built (the check before Ray starts, every
trial, every rollout worker) from the experiment's `env: grid_world:GridWorld`. The
experiment's `runtime_env: {working_dir: .}` ships this folder to every Ray node, so the
same file sweeps on a laptop and on a cluster.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

MOVES = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]])
"""Up, right, down, left."""


class GridWorld(gym.Env):
    """The agent sees its own and the goal's cells, scaled to [0, 1]; it earns 1 at the goal
    and pays `step_cost` for every move, so the fastest path scores best.

    `config` is rlsweep's env_config (as in RLlib): the experiment's `env_config` plus
    `worker_index`, `num_workers` and `vector_index`, which an env can use to shard work.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = config or {}
        self.size = int(config.get("size", 5))
        self.step_cost = float(config.get("step_cost", 0.02))
        self.max_steps = int(config.get("max_steps", 4 * self.size))
        self.observation_space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = gym.spaces.Discrete(len(MOVES))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.agent, self.goal = self.np_random.choice(self.size, size=(2, 2))
        while np.array_equal(self.agent, self.goal):
            self.goal = self.np_random.integers(self.size, size=2)
        self.steps = 0
        return self._observation(), {}

    def step(self, action: int):
        self.agent = np.clip(self.agent + MOVES[action], 0, self.size - 1)
        self.steps += 1
        reached = bool(np.array_equal(self.agent, self.goal))
        reward = 1.0 if reached else -self.step_cost
        return self._observation(), reward, reached, self.steps >= self.max_steps, {}

    def _observation(self) -> np.ndarray:
        return (np.concatenate([self.agent, self.goal]) / (self.size - 1)).astype(np.float32)


def make_grid_world(config: dict[str, Any]) -> GridWorld:
    """A factory works too (`env: grid_world:make_grid_world`), as does RLlib's
    `ray.tune.registry.register_env("grid_world", make_grid_world)`."""
    return GridWorld(config)
