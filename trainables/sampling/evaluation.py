"""Deterministic evaluation episodes on envs separate from the training workers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from rlsweep.trainables.models.policy import Policy


def evaluate(
    envs: Sequence[gym.vector.VectorEnv], policy: Policy, num_episodes: int, seeds: Sequence[int]
) -> dict[str, np.ndarray]:
    """Run `num_episodes` greedy episodes for each seed on its own vector env, seed k's
    env seeded with `seeds[k]`; every metric is [K]. A recurrent policy's memory starts
    fresh with each episode.

    Each env copy contributes at most ceil(num_episodes / num_envs) episodes, so short
    episodes cannot crowd out long ones and bias the mean.
    """
    per_env = math.ceil(num_episodes / envs[0].num_envs)
    counts = np.zeros((len(envs), envs[0].num_envs), dtype=np.int64)
    returns: list[list[float]] = [[] for _ in envs]
    lengths: list[list[int]] = [[] for _ in envs]
    steps = [env.reset(seed=seed) for env, seed in zip(envs, seeds, strict=True)]
    state = policy.initial_state(envs[0].num_envs)
    ended = np.zeros(counts.shape, dtype=bool)  # the last step ended the env's episode
    autoreset = np.zeros(counts.shape, dtype=bool)  # the last step reset the env
    while min(map(len, returns)) < num_episodes:
        state = policy.reset_state(state, autoreset)  # a new episode starts with a fresh memory
        actions, state = policy.compute_actions(policy.layout.encode_seeds(steps), state)
        steps = [env.step(actions[k]) for k, env in enumerate(envs)]
        state = policy.remember_rewards(state, np.stack([step[1] for step in steps]))
        autoreset, ended = ended, np.stack([step[2] | step[3] for step in steps])
        for k, step in enumerate(steps):
            if "episode" not in step[-1]:
                continue
            for index in np.flatnonzero(step[-1]["_episode"]):
                if counts[k, index] < per_env and len(returns[k]) < num_episodes:
                    counts[k, index] += 1
                    episode_returns, episode_lengths = step[-1]["episode"]["r"], step[-1]["episode"]["l"]
                    returns[k].append(float(episode_returns[index]))
                    lengths[k].append(int(episode_lengths[index]))
    return {
        "episode_return_mean": np.array([np.mean(r) for r in returns]),
        "episode_return_min": np.array([np.min(r) for r in returns]),
        "episode_return_max": np.array([np.max(r) for r in returns]),
        "episode_len_mean": np.array([np.mean(lengths_k) for lengths_k in lengths]),
    }
