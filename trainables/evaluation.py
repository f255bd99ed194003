"""Deterministic evaluation episodes on envs separate from the training workers."""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np


def evaluate(
    env: gym.vector.VectorEnv,
    compute_actions: Callable[[np.ndarray], np.ndarray],
    num_episodes: int,
    seed: int,
) -> dict[str, float]:
    """Run `num_episodes` full episodes spread evenly over the vector env's copies.

    Each copy contributes at most ceil(num_episodes / num_envs) episodes, so short
    episodes cannot crowd out long ones and bias the mean.
    """
    per_env = math.ceil(num_episodes / env.num_envs)
    counts = np.zeros(env.num_envs, dtype=np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = env.reset(seed=seed)
    while len(returns) < num_episodes:
        obs, _, _, _, infos = env.step(compute_actions(obs))
        if "episode" not in infos:
            continue
        for index in np.flatnonzero(infos["_episode"]):
            if counts[index] < per_env and len(returns) < num_episodes:
                counts[index] += 1
                returns.append(float(infos["episode"]["r"][index]))
                lengths.append(int(infos["episode"]["l"][index]))
    return {
        "episode_return_mean": float(np.mean(returns)),
        "episode_return_min": float(np.min(returns)),
        "episode_return_max": float(np.max(returns)),
        "episode_len_mean": float(np.mean(lengths)),
    }
