"""Envs as users bring them, for the env-form and env-check tests: a gymnasium.Env class of
their own, a factory, an id this module registers, a register_env name, and envs that break
one rule each. `env: "custom_envs:NAME"` names them from experiment files.

`LineWalk` records what its creator received: with `probe_dir` in env_config, each copy
writes one JSON file there (its EnvContext's indices, where its module was imported from,
and the Ray node it ran on).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import gymnasium as gym
import numpy as np
from ray.tune.registry import register_env


class LineWalk(gym.Env):
    """Walk right along a line to +5 (reward 1 there); 20 steps at most."""

    def __init__(self, config: dict | None = None):
        config = config if config is not None else {}
        self.observation_space = gym.spaces.Box(-20.0, 20.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        if "probe_dir" in config:
            _record(config)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.steps = 0, 0
        return np.array([self.position], np.float32), {}

    def step(self, action):
        self.position += 1 if action == 1 else -1
        self.steps += 1
        terminated = self.position >= 5
        return np.array([self.position], np.float32), float(terminated), terminated, self.steps >= 20, {}


def _record(config: dict) -> None:
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    record = {
        "worker_index": getattr(config, "worker_index", None),
        "num_workers": getattr(config, "num_workers", None),
        "vector_index": getattr(config, "vector_index", None),
        "module_file": __file__,
        "node_id": node,
        "pid": os.getpid(),
    }
    (Path(config["probe_dir"]) / f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))


def make_line_walk(config):
    """A factory, as RLlib users write them."""
    return LineWalk(config)


def make_line_walk_without_arguments():
    return LineWalk()


gym.register("LineWalk-v0", entry_point=LineWalk, max_episode_steps=20)
register_env("line_walk", make_line_walk)


class SequenceObservations(LineWalk):
    """Observes its position as a sequence of any length: a space no policy network encodes."""

    def __init__(self, config=None):
        super().__init__(config)
        self.observation_space = gym.spaces.Sequence(gym.spaces.Discrete(64))

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed)
        return (int(obs[0]),), info

    def step(self, action):
        obs, *rest = super().step(action)
        return (int(obs[0]),), *rest


class VectorRewards(LineWalk):
    """Rewards two objectives at once, as mo-gymnasium's envs do: not one number."""

    def step(self, action):
        obs, reward, *rest = super().step(action)
        return obs, np.array([reward, -1.0], dtype=np.float32), *rest


class TextActions(LineWalk):
    """Acts with words: a space no algorithm acts in."""

    def __init__(self, config=None):
        super().__init__(config)
        self.action_space = gym.spaces.Text(4)

    def step(self, action):
        return super().step(int(action == "up"))


class MultiDiscreteActions(LineWalk):
    def __init__(self, config=None):
        super().__init__(config)
        self.action_space = gym.spaces.MultiDiscrete([2, 2])

    def step(self, action):
        return super().step(action[0])


class UnboundedActions(LineWalk):
    def __init__(self, config=None):
        super().__init__(config)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)

    def step(self, action):
        return super().step(int(action[0] > 0))


class UnboundedObservations(LineWalk):
    """Observations in an infinite Box: gymnasium's env checker warns about its bounds."""

    def __init__(self, config=None):
        super().__init__(config)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


class ImageObservations(LineWalk):
    """84x84x3 uint8 frames, as Atari wrappers give them."""

    def __init__(self, config=None):
        super().__init__(config)
        self.observation_space = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((84, 84, 3), np.uint8), {}

    def step(self, action):
        _, *rest = super().step(action)
        return np.zeros((84, 84, 3), np.uint8), *rest


class BoundedRewards(LineWalk):
    """Declares its per-step rewards in [0, 1] (20 steps: episode returns in [0, 20])."""

    reward_range = (0.0, 1.0)


class RaisesInReset(LineWalk):
    def reset(self, *, seed=None, options=None):
        raise ValueError("no map loaded")


class OldGymStep(LineWalk):
    """gym < 0.26's step: (obs, reward, done, info)."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, info


class NaNReset(LineWalk):
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([np.nan], np.float32), {}


class WrongShape(LineWalk):
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}


def make_not_an_env(config):
    return "not an env"


gym.register("BoundedRewards-v0", entry_point=BoundedRewards, max_episode_steps=20)
