"""A rollout: consecutive steps of every seed's envs, as workers return them to the learner."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rlsweep.trainables.models.observations import Observations
from rlsweep.trainables.models.recurrent import RecurrentState


@dataclass
class Rollout:
    """`T` consecutive steps of each of K seeds' `N` envs.

    Envs autoreset on the step after an episode ends (gymnasium's next-step mode): that
    step's observation is the episode's final one, and its transition (reward 0, action
    ignored) is marked invalid. Each `obs` entry has T+1 rows, the last being the
    observation after step T-1, so `obs[t + 1]` is always the true next observation of a
    valid step t, which is what PPO bootstraps from on truncation and off-policy methods
    store as next_obs.
    """

    obs: Observations  # each entry [T+1, K, N, ...], raw (not normalized)
    actions: np.ndarray  # [T, K, N, ...] as the policy chose them (before the env's clipping)
    rewards: np.ndarray  # [T, K, N] float32
    terminated: np.ndarray  # [T, K, N] bool: episode ended in a terminal state
    truncated: np.ndarray  # [T, K, N] bool: episode cut by a time limit; bootstrap from obs[t+1]
    valid: np.ndarray  # [T, K, N] bool: False on autoreset steps
    extras: dict[str, np.ndarray]  # per-step policy outputs, e.g. logprob and value [T, K, N]
    episode_returns: np.ndarray  # [E] returns of the episodes that finished in this rollout
    episode_lengths: np.ndarray  # [E]
    episode_seeds: np.ndarray  # [E] the seed whose env each episode ran in
    sample_time_s: float
    worker: int = 0
    """The index of the worker that sampled it (a replacement keeps its predecessor's)."""
    policy_version: int = 0
    """The learner's update count when it sent the weights this was sampled with: in
    asynchronous sampling one less than the learner's when it learns from it."""
    memory: RecurrentState = field(default_factory=dict)
    """A recurrent policy's state each step's action was chosen with (reset to zeros where
    an episode starts), each entry [T+1, K, N, ...], the last row the state it will act on
    the observation after step T-1 with; empty for a memoryless policy. An episode starts
    at step t > 0 exactly where step t-1 is invalid (the autoreset step)."""
