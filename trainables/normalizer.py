"""Running observation normalization whose statistics travel with the weights and checkpoints."""

from __future__ import annotations

import numpy as np
from gymnasium.wrappers.utils import RunningMeanStd


class ObservationNormalizer:
    """Standardizes observations with running statistics; a no-op when disabled.

    The learner owns the statistics and updates them after each training step; workers
    receive a frozen copy with the weights, so the actions they sample and the learner's
    re-evaluation of those actions see identical inputs.
    """

    def __init__(self, shape: tuple[int, ...], enabled: bool, clip: float = 10.0):
        self.enabled = enabled
        self.clip = clip
        self.stats = RunningMeanStd(shape=shape)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if not self.enabled:
            return obs
        std = np.sqrt(self.stats.var + 1e-8)
        return np.clip((obs - self.stats.mean) / std, -self.clip, self.clip).astype(np.float32)

    def update(self, obs: np.ndarray) -> None:
        if self.enabled:
            self.stats.update(np.asarray(obs, dtype=np.float64))

    def state_dict(self) -> dict[str, np.ndarray | float]:
        return {
            "mean": self.stats.mean.copy(),
            "var": self.stats.var.copy(),
            "count": self.stats.count,
        }

    def load_state_dict(self, state: dict[str, np.ndarray | float]) -> None:
        self.stats.mean = np.array(state["mean"], dtype=np.float64)
        self.stats.var = np.array(state["var"], dtype=np.float64)
        self.stats.count = float(state["count"])
