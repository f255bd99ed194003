"""What the held-out test found: how each of the search's top configs, trained again from
scratch on seeds no tuning trial used, did there, with a confidence interval.

A config tuned on a few seeds is partly tuned to those seeds' luck; its score on fresh
seeds is the honest estimate (Eimer et al., ICML 2023). The test runs as a phase of the
sweep's pipeline (`rlsweep.pipeline.test_phase`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlsweep.experiment.schema import Experiment, HeldOutSpec
from rlsweep.experiment.score import SCORE_KEY
from rlsweep.results.trials import TrialOutcome, rank
from rlsweep.trainables.seeds import per_seed_key, per_seed_values, seed_values

TUNED_TRIAL_KEY = "__tuned_trial"
"""A test trial's config key (ignored by trainables) naming the tuning trial whose config it trains."""

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000


@dataclass
class HeldOutResult:
    """One tuned config on the test seeds."""

    tuned: TrialOutcome
    tested: TrialOutcome
    """The test trial: the config trained on every test seed."""
    seed_scores: list[float]
    """Each test seed's score, in seed order."""
    reached_target: int | None
    """Test seeds whose metric met `stop.target` at some evaluation; None without a target."""

    @property
    def mean(self) -> float:
        return float(np.mean(self.seed_scores))

    @property
    def confidence_interval(self) -> tuple[float, float]:
        return bootstrap_interval(self.seed_scores)


@dataclass
class HeldOutTest:
    """The test phase of a sweep."""

    spec: HeldOutSpec
    seeds: list[int]
    """The test seeds (the seed values of every test trial)."""
    path: Path
    """Where the test trials' folders are."""
    configs: list[HeldOutResult]
    """By tuning rank."""
    mode: str
    """The experiment's: whether a higher score is better."""
    elapsed_s: float

    @property
    def best(self) -> HeldOutResult | None:
        """The config whose test trial ranks first (ties go to fewer env steps)."""
        ranked = rank([config.tested for config in self.configs], self.mode)
        return next((c for c in self.configs if ranked and c.tested is ranked[0]), None)


def collect_held_out_test(
    experiment: Experiment,
    tuned: list[TrialOutcome],
    tested: list[TrialOutcome],
    path: Path,
    spec: HeldOutSpec,
    seed: int,
    elapsed_s: float,
) -> HeldOutTest:
    """Pair each tuned trial with its test trial (in `path`) and read the test seeds' scores."""
    by_tuned = {trial.config.get(TUNED_TRIAL_KEY): trial for trial in tested}
    configs = []
    for trial in tuned:
        test_trial = by_tuned.get(trial.trial_id)
        if test_trial is None or test_trial.score is None:
            continue
        configs.append(
            HeldOutResult(
                tuned=trial,
                tested=test_trial,
                seed_scores=per_seed_values(test_trial.final, SCORE_KEY, spec.seeds),
                reached_target=_reached_target(test_trial, experiment, spec.seeds),
            )
        )
    return HeldOutTest(spec, seed_values(seed, spec.seeds), path, configs, experiment.mode, elapsed_s)


def _reached_target(trial: TrialOutcome, experiment: Experiment, num_seeds: int) -> int | None:
    target = experiment.stop.target
    if target is None or trial.history is None:
        return None
    reached = 0
    for seed_index in range(num_seeds):
        column = experiment.metric if num_seeds == 1 else per_seed_key(seed_index, experiment.metric)
        values = trial.history[column].dropna() if column in trial.history else []
        best = (max if experiment.mode == "max" else min)(values, default=None)
        reached += best is not None and (best >= target if experiment.mode == "max" else best <= target)
    return reached


def bootstrap_interval(scores: list[float], seed: int = 0) -> tuple[float, float]:
    """The 95% percentile-bootstrap confidence interval of the mean of `scores`; seeded, so a
    report reads the same every time it is written."""
    rng = np.random.default_rng(seed)
    resampled = rng.choice(np.asarray(scores, dtype=np.float64), size=(BOOTSTRAP_RESAMPLES, len(scores)))
    low, high = np.quantile(resampled.mean(axis=1), [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(low), float(high)


def describe(config: HeldOutResult, target: float | None) -> str:
    """A config's test result in one line, as every report words it."""
    low, high = config.confidence_interval
    per_seed = ", ".join(f"{score:.2f}" for score in config.seed_scores)
    line = f"test mean {config.mean:.2f} (95% CI {low:.2f} to {high:.2f}); per seed: {per_seed}"
    if target is not None and config.reached_target is not None:
        line += (
            f"; {config.reached_target}/{len(config.seed_scores)} seeds reached {target:g} at some evaluation"
        )
    return line
