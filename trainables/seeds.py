"""Members: the independent agents one trial trains side by side, one per seed.

A trial with `num_seeds: K` trains K agents of the same config as one batched learner:
every network parameter has a leading member axis of size K, so one forward and backward
pass serves all of them, and Adam (elementwise) over the stacked parameters is K Adams.
What must stay separate per member is here: seeds, random generators, gradient clipping,
and how per-member results become one number. Adam, being elementwise, needs nothing
of the kind: over the stacked parameters it is one Adam per member.

Member i's seed is `seed + i * SEED_STRIDE`, so a single-seed trial with that seed trains
exactly member i (same initial weights, same env streams, same exploration noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

SEED_STRIDE = 10_000
"""Seeds between members: room for every env seed a member's workers derive from its own."""

SeedAggregate = Literal["mean", "median", "iqm", "min"]

SeedMetrics = dict[str, np.ndarray]
"""Metrics with one value per seed, [K] each."""


def member_seeds(seed: int, num_seeds: int) -> list[int]:
    return [seed + member * SEED_STRIDE for member in range(num_seeds)]


def generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One torch generator per member: a member's random draws never depend on the others'."""
    return [torch.Generator(device=device).manual_seed(seed) for seed in seeds]


def draw(
    kind: Literal["uniform", "normal"], gens: Sequence[torch.Generator], shape: tuple[int, ...], device
) -> torch.Tensor:
    """Noise [K, *shape], member k's from generator k."""
    sample = torch.rand if kind == "uniform" else torch.randn
    return torch.stack([sample(shape, generator=g, device=device) for g in gens])


def aggregate(values: np.ndarray, how: SeedAggregate) -> float:
    """One number for K members' values (NaNs, members without a value yet, ignored)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan")
    if how == "mean":
        return float(values.mean())
    if how == "median":
        return float(np.median(values))
    if how == "min":
        return float(values.min())
    # The interquartile mean (Agarwal et al. 2021, as rliable computes it): robust to one
    # lucky or broken seed, less noisy than the median. scipy.stats is imported here, not
    # at the top: it costs ~0.8 s, paid by every worker actor's start-up otherwise.
    import scipy.stats

    return float(scipy.stats.trim_mean(values, 0.25))


def held_out_seed(seed: int, num_tuning_seeds: int) -> int:
    """The first seed of a held-out test. Tuning trials train seeds 0..K-1 of `seed`; test
    trials continue that sequence from K, so no test seed is a tuning seed."""
    return seed + num_tuning_seeds * SEED_STRIDE
