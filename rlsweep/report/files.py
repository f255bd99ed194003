"""The files that summarize a finished run: the best config, the trials table and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.report.plots import plot_evaluation_curves, plot_study, plot_tuning_vs_test
from rlsweep.results.held_out import HeldOutResult, describe
from rlsweep.results.metrics import numeric_metrics
from rlsweep.results.outcome import RunOutcome


def write_report(outcome: RunOutcome) -> list[Path]:
    """Every report file of the run: what MLflow attaches to the sweep's parent run."""
    files = [write_trials_table(outcome)]
    if outcome.best is not None:
        files.append(write_best_config(outcome))
    files += [path for path in (plot_evaluation_curves(outcome), plot_tuning_vs_test(outcome)) if path]
    if outcome.experiment.is_search:
        files += plot_study(outcome)
    return files


def write_best_config(outcome: RunOutcome) -> Path:
    """A file `rlsweep train --config-file` accepts: the best trial's algorithm, env and
    config, under a comment saying how it was chosen and how it did on the test seeds."""
    best = outcome.best
    assert best is not None
    experiment = outcome.experiment
    config = {k: _plain(v) for k, v in best.config.items() if not k.startswith("__")}
    document = {
        "algorithm": experiment.trainable.__name__,
        "env": config.pop("env", next(iter(experiment.env_ranges))),
        "config": config,
        "metric": experiment.metric,
        "score": best.score,
        "timesteps_total": best.env_steps,
        "checkpoint": str(best.checkpoint) if best.checkpoint else None,
    }
    path = outcome.folder.best_config_file
    header = "".join(f"# {line}\n" for line in best_config_header(outcome))
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return path


def best_config_header(outcome: RunOutcome) -> list[str]:
    """How the best config was chosen, and its test result."""
    experiment, best = outcome.experiment, outcome.best
    assert best is not None
    score = f"score = {experiment.score.type} of {experiment.metric}"
    lines = [f"Best config of {outcome.folder.tune_path} (trial {best.trial_id}; {score})"]
    if experiment.envs:
        lines.append(f"trained on every env of {sorted(experiment.envs)}; `env` below is the first")
    if outcome.test is None or outcome.test.best is None:
        return [*lines, f"chosen by tuning score {best.score:.2f}; not tested on held-out seeds"]
    chosen = outcome.test.best
    seeds = ", ".join(str(seed) for seed in outcome.test.seeds)
    return [
        *lines,
        f"chosen on {len(outcome.test.seeds)} held-out test seeds ({seeds}) among the top "
        f"{len(outcome.test.configs)} configs",
        f"tuning score {chosen.tuned.score:.2f}; {describe(chosen, experiment.stop.target)}",
    ]


def write_trials_table(outcome: RunOutcome) -> Path:
    """One row per trial: how it ended, its score and, for tested configs, the test result;
    its hyperparameters and its last result."""
    tests = {c.tuned.trial_id: c for c in outcome.test.configs} if outcome.test else {}
    rows = []
    for trial in outcome.trials:
        row: dict[str, Any] = {
            "trial_id": trial.trial_id,
            "ending": trial.ending.value,
            "score": trial.score,
            "error": trial.error,
        }
        if outcome.test is not None:
            row.update(_test_columns(tests.get(trial.trial_id)))
        row.update({f"config/{k}": v for k, v in trial_hyperparameters(trial.config).items()})
        row.update(numeric_metrics(trial.final))
        rows.append(row)
    path = outcome.folder.trials_file
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _test_columns(config: HeldOutResult | None) -> dict[str, Any]:
    if config is None:
        return dict.fromkeys(
            ["test_mean", "test_ci_low", "test_ci_high", "test_seed_scores", "test_seeds_reached_target"]
        )
    low, high = config.confidence_interval
    return {
        "test_mean": config.mean,
        "test_ci_low": low,
        "test_ci_high": high,
        "test_seed_scores": " ".join(f"{score:.4g}" for score in config.seed_scores),
        "test_seeds_reached_target": config.reached_target,
    }


def _plain(value: Any) -> Any:
    """YAML-safe: tuples become lists."""
    if isinstance(value, tuple):
        return list(value)
    return value
