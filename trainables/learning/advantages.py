"""Generalized Advantage Estimation (Schulman et al. 2016) over next-step-autoreset rollouts."""

from __future__ import annotations

import numpy as np


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and value targets, all arrays [T, ...] (e.g. [T, K, N]: T steps of N envs
    of K seeds; every column is its own stream).

    `next_values[t]` is V(s_{t+1}), the value of the observation that followed step t (for
    a finished episode, its final observation). A terminated step does not bootstrap; a
    truncated step does, because the episode was cut, not over. Either way the advantage
    does not flow back across an episode boundary.
    """
    advantages = np.zeros_like(rewards, dtype=np.float32)
    last_advantage = np.zeros(rewards.shape[1:], dtype=np.float32)
    not_terminal = 1.0 - terminated.astype(np.float32)
    not_done = 1.0 - (terminated | truncated).astype(np.float32)
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_values[t] * not_terminal[t] - values[t]
        last_advantage = delta + gamma * gae_lambda * not_done[t] * last_advantage
        advantages[t] = last_advantage
    return advantages, advantages + values
