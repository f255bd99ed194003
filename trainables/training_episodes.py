"""The training episodes a trial's seeds finished: their counts, and returns and lengths over
a window of the most recent ones, as SB3 reports them."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from rlsweep.trainables.sampling.rollout import Rollout
from rlsweep.trainables.seeds import SeedMetrics

EPISODE_WINDOW = 100
"""Training episode metrics are means over this many most recent episodes, as in SB3."""


class TrainingEpisodes:
    """Per seed: episodes finished so far, and the returns and lengths of the latest ones."""

    def __init__(self, num_seeds: int):
        self.total = np.zeros(num_seeds, dtype=np.int64)
        self.returns: list[deque[float]] = [deque(maxlen=EPISODE_WINDOW) for _ in range(num_seeds)]
        self.lengths: list[deque[int]] = [deque(maxlen=EPISODE_WINDOW) for _ in range(num_seeds)]

    def add(self, rollout: Rollout) -> np.ndarray:
        """Record the episodes that finished in `rollout`; returns how many each seed finished, [K]."""
        for seed, ret, length in zip(
            rollout.episode_seeds, rollout.episode_returns, rollout.episode_lengths, strict=True
        ):
            self.returns[seed].append(float(ret))
            self.lengths[seed].append(int(length))
        finished = np.bincount(rollout.episode_seeds, minlength=len(self.returns))
        self.total += finished
        return finished

    def metrics(self, finished: np.ndarray) -> SeedMetrics:
        """The window's statistics per seed (NaN before a seed's first episode), with the
        episodes `finished` this iteration and in all."""

        def stat(window: deque, reduce: Any) -> float:
            return float(reduce(window)) if window else np.nan

        return {
            "episode_return_mean": np.array([stat(r, np.mean) for r in self.returns]),
            "episode_return_min": np.array([stat(r, np.min) for r in self.returns]),
            "episode_return_max": np.array([stat(r, np.max) for r in self.returns]),
            "episode_len_mean": np.array([stat(lengths, np.mean) for lengths in self.lengths]),
            "num_episodes": finished.astype(np.float64),
            "episodes_total": self.total.astype(np.float64),
        }

    def best_recent_seed(self) -> int:
        """The seed whose recent training returns are best."""
        return int(np.argmax([np.mean(r) if r else -np.inf for r in self.returns]))

    def state_dict(self) -> dict[str, Any]:
        return {
            "episodes_total": self.total,
            "recent_returns": [list(r) for r in self.returns],
            "recent_lengths": [list(lengths) for lengths in self.lengths],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total = np.array(state["episodes_total"])
        self.returns = [deque(r, maxlen=EPISODE_WINDOW) for r in state["recent_returns"]]
        self.lengths = [deque(lengths, maxlen=EPISODE_WINDOW) for lengths in state["recent_lengths"]]
