"""Rollouts cut into sequences for recurrent learners (truncated backpropagation through time).

Each env's T steps become C = ceil(T / L) sequences of L = max_seq_len steps, the last one
padded with zeros; padded steps are invalid, so no loss reads them. A sequence is replayed
from the recurrent state its first step was sampled with, and the state is zeroed inside
it where an episode starts (`episode_starts`).
"""

from __future__ import annotations

import numpy as np


def to_sequences(array: np.ndarray, length: int) -> np.ndarray:
    """[T, K, N, ...] -> [K, N * C, L, ...]: each env's steps in consecutive sequences of
    L = `length` steps (env n's c-th sequence at row n * C + c), zero-padded at the end."""
    steps, num_seeds, envs, *rest = array.shape
    chunks = -(-steps // length)
    padded = np.zeros((chunks * length, num_seeds, envs, *rest), array.dtype)
    padded[:steps] = array
    sequences = padded.reshape(chunks, length, num_seeds, envs, *rest)
    sequences = np.moveaxis(sequences, (2, 3), (0, 1))  # [K, N, C, L, ...]
    return sequences.reshape(num_seeds, envs * chunks, length, *rest)


def episode_starts(valid: np.ndarray) -> np.ndarray:
    """Where an episode starts inside a rollout [T, K, N]: at step t > 0 exactly where step
    t-1 reset the env (invalid). Step 0's state was reset by the sampler already."""
    starts = np.zeros_like(valid)
    starts[1:] = ~valid[:-1]
    return starts
