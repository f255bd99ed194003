"""Partially observed envs that only a policy with memory solves, registered with gymnasium
under the `rlsweep/` namespace the first time a config names one (`ensure_registered`).

    rlsweep/StatelessCartPole-v1   CartPole without its velocities: the cart position and
                                   pole angle only, so the policy must infer how they change.
    rlsweep/MemoryCue-v0           a cue shown on the first step decides which action pays
                                   `cue_distance` steps later; every step between looks the same.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

NAMESPACE = "rlsweep/"


class StatelessCartPole(CartPoleEnv):
    """CartPole-v1 observing (x, theta) only; rewards, dynamics and time limit unchanged.

    A memoryless policy sees the pole's angle but not where it is heading; RLlib's
    stateless CartPole, the usual test of recurrent policies.
    """

    OBSERVED = np.array([0, 2])
    """Indices of CartPole's (x, x_dot, theta, theta_dot) that stay visible."""

    def __init__(self, render_mode: str | None = None, **kwargs: Any):
        super().__init__(render_mode=render_mode, **kwargs)
        self.observation_space = gym.spaces.Box(
            self.observation_space.low[self.OBSERVED], self.observation_space.high[self.OBSERVED]
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, info = super().reset(seed=seed, options=options)
        return obs[self.OBSERVED], info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs[self.OBSERVED], reward, terminated, truncated, info


class MemoryCue(gym.Env):
    """Remember a cue for `cue_distance` steps, then answer with it.

    Observations are `num_cues + 1` numbers: the first step shows the cue one-hot; the steps
    after it show zeros until the last, which raises the final "answer now" flag. Actions
    are ignored until that step, where choosing the cue's index earns 1 and anything else 0,
    and the episode ends. An episode's return is 1 when the answer is right, so a policy's
    mean return is its success rate; a memoryless one is at chance, 1 / num_cues.
    """

    def __init__(self, cue_distance: int = 10, num_cues: int = 2, render_mode: str | None = None):
        if cue_distance < 1 or num_cues < 2:
            raise ValueError(
                f"MemoryCue needs cue_distance >= 1 and num_cues >= 2, got {cue_distance}, {num_cues}"
            )
        self.cue_distance = cue_distance
        self.num_cues = num_cues
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0.0, 1.0, (num_cues + 1,), np.float32)
        self.action_space = gym.spaces.Discrete(num_cues)
        self.cue = 0
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.cue = int(self.np_random.integers(self.num_cues))
        self.steps = 0
        obs = np.zeros(self.num_cues + 1, np.float32)
        obs[self.cue] = 1.0
        return obs, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        answering = self.steps == self.cue_distance
        self.steps += 1
        obs = np.zeros(self.num_cues + 1, np.float32)
        if answering:
            return obs, float(int(action) == self.cue), True, False, {}
        if self.steps == self.cue_distance:
            obs[-1] = 1.0
        return obs, 0.0, False, False, {}


ENVS = {
    f"{NAMESPACE}StatelessCartPole-v1": {
        "entry_point": StatelessCartPole,
        "max_episode_steps": 500,
        "reward_threshold": 475.0,
    },
    f"{NAMESPACE}MemoryCue-v0": {"entry_point": MemoryCue, "reward_threshold": 0.95},
}
"""The ids, with gymnasium's registration arguments."""


def ensure_registered(env_id: str) -> None:
    """Register rlsweep's own env `env_id` with gymnasium, if it is one and is not yet."""
    if env_id in ENVS and env_id not in gym.registry:
        gym.register(env_id, **ENVS[env_id])
