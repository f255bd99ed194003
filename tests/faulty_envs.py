"""Envs that fail on purpose, for fault-injection tests: `gym.make("faulty_envs:NAME")`."""

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import CartPoleEnv


class RaisingCartPole(CartPoleEnv):
    """Raises on every step."""

    def step(self, action):
        raise RuntimeError("simulated physics crash")


class NaNCartPole(CartPoleEnv):
    """Returns NaN observations from its third step on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = super().step(action)
        return (np.full_like(obs, np.nan) if self.steps >= 3 else obs), reward, terminated, truncated, info


class ExplodingRewardCartPole(CartPoleEnv):
    """Rewards of `reward` per step; the default overflows the value loss, so a learner
    diverges for real."""

    def __init__(self, reward: float = 3e38, **kwargs):
        super().__init__(**kwargs)
        self.reward = reward

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, self.reward, terminated, truncated, info


for name, cls in [
    ("RaisingCartPole-v0", RaisingCartPole),
    ("NaNCartPole-v0", NaNCartPole),
    ("ExplodingRewardCartPole-v0", ExplodingRewardCartPole),
]:
    if name not in gym.registry:
        gym.register(name, entry_point=cls, max_episode_steps=200)
