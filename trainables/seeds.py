"""A trial's seeds: the one home of how a trial's independently seeded agents get their
seed values, randomness and results, and how held-out test seeds stay apart from them.

A trial with `num_seeds: K` trains K agents of the same config side by side as one batched
learner: "seed k" is the k-th of them (k = 0..K-1). Every network parameter has a leading
seed axis of size K, so one forward and backward pass serves all of them; what must stay
separate per seed is here (values, random generators, how per-seed results become one
number) and in `learning/optim.py` (gradient clipping). Seed k's value is
`seed + k * SEED_STRIDE`, so a single-seed trial with that value trains exactly seed k
(same initial weights, same env streams, same exploration noise).

Results: every metric is reported as the seeds' aggregate under its own key and, with
K > 1, each seed's value under `seeds/<k>/<key>`; `seed_results` writes those keys and
`per_seed_values` and `PER_SEED_PREFIX` read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # torch loads with the networks; the pipeline reads seed keys without it
    import torch

SEED_STRIDE = 10_000
"""Between consecutive seed values: room for every env seed a seed's workers derive from its own."""

PER_SEED_PREFIX = r"seeds/\d+/"
"""A regular expression matching the `seeds/<k>/` prefix of a seed's own result keys."""

SeedAggregate = Literal["mean", "median", "iqm", "min"]

SeedMetrics = dict[str, np.ndarray]
"""Metrics with one value per seed, [K] each."""


def seed_values(seed: int, num_seeds: int) -> list[int]:
    """The values of a trial's seeds 0..num_seeds-1, from the config's `seed`."""
    return [seed + k * SEED_STRIDE for k in range(num_seeds)]


def seed_index(value: int, seed: int) -> int:
    """Which of a trial's seeds has this value (the inverse of `seed_values`)."""
    return (value - seed) // SEED_STRIDE


def held_out_seed(seed: int, num_tuning_seeds: int) -> int:
    """The first seed value of a held-out test. Tuning trials train seeds 0..K-1 of `seed`;
    test trials continue that sequence from K, so no test seed is a tuning seed."""
    return seed + num_tuning_seeds * SEED_STRIDE


def per_seed_key(k: int, key: str) -> str:
    """Where seed k's own value of a result `key` is reported."""
    return f"seeds/{k}/{key}"


def seed_results(metrics: SeedMetrics, how: SeedAggregate, prefix: str = "") -> dict[str, float]:
    """Per-seed metrics as results: each key aggregated over the seeds by `how`, and with
    several seeds each one's value under `seeds/<k>/`."""
    results = {f"{prefix}{key}": aggregate(values, how) for key, values in metrics.items()}
    for key, values in metrics.items():
        if len(values) > 1:
            results.update({per_seed_key(k, prefix + key): float(v) for k, v in enumerate(values)})
    return results


def per_seed_values(result: dict[str, Any], key: str, num_seeds: int) -> list[float]:
    """Each seed's value of `key` in a result (a single seed's is the key itself)."""
    if num_seeds == 1:
        return [float(result[key])]
    return [float(result[per_seed_key(k, key)]) for k in range(num_seeds)]


def generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One torch generator per seed: a seed's random draws never depend on the others'."""
    import torch

    return [torch.Generator(device=device).manual_seed(seed) for seed in seeds]


def draw(
    kind: Literal["uniform", "normal"], gens: Sequence[torch.Generator], shape: tuple[int, ...], device
) -> torch.Tensor:
    """Noise [K, *shape], seed k's from generator k."""
    import torch

    sample = torch.rand if kind == "uniform" else torch.randn
    return torch.stack([sample(shape, generator=g, device=device) for g in gens])


def aggregate(values: np.ndarray, how: SeedAggregate) -> float:
    """One number for K seeds' values (NaNs, seeds without a value yet, ignored)."""
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
