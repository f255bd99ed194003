"""Running observation normalization whose statistics travel with the weights and checkpoints."""

from __future__ import annotations

import numpy as np


class ObservationNormalizer:
    """Standardizes each seed's vector observations [K, ..., D] with that seed's running
    mean and variance; a no-op when disabled.

    The learner owns the statistics and updates them after each training step; workers
    receive a frozen copy with the weights, so the actions they sample and the learner's
    re-evaluation of those actions see identical inputs.
    """

    def __init__(self, num_seeds: int, dim: int, enabled: bool, clip: float = 10.0):
        self.enabled = enabled
        self.clip = clip
        self.mean = np.zeros((num_seeds, dim))
        self.var = np.ones((num_seeds, dim))
        self.count = np.full(num_seeds, 1e-4)  # as gymnasium's RunningMeanStd starts

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float32)
        if not self.enabled:
            return vector
        shape = (len(self.mean),) + (1,) * (vector.ndim - 2) + (-1,)
        mean, std = self.mean.reshape(shape), np.sqrt(self.var + 1e-8).reshape(shape)
        return np.clip((vector - mean) / std, -self.clip, self.clip).astype(np.float32)

    def update(self, seed_index: int, batch: np.ndarray) -> None:
        """Fold a batch [B, D] of seed `seed_index`'s observations into its statistics
        (Chan et al.'s parallel variance, as gymnasium's RunningMeanStd)."""
        if not self.enabled or len(batch) == 0:
            return
        batch = np.asarray(batch, dtype=np.float64)
        batch_mean, batch_var, batch_count = batch.mean(0), batch.var(0), len(batch)
        delta = batch_mean - self.mean[seed_index]
        total = self.count[seed_index] + batch_count
        m2 = self.var[seed_index] * self.count[seed_index] + batch_var * batch_count
        m2 += delta**2 * self.count[seed_index] * batch_count / total
        self.mean[seed_index] += delta * batch_count / total
        self.var[seed_index] = m2 / total
        self.count[seed_index] = total

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.var = np.array(state["var"], dtype=np.float64)
        self.count = np.array(state["count"], dtype=np.float64)
