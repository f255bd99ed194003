"""What the CLI prints when a run ends: how its trials ended, the best one, where everything is."""

from __future__ import annotations

import sys
from typing import TextIO

import yaml

from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.experiment.score import SCORE_KEY
from rlsweep.results.held_out import describe
from rlsweep.results.outcome import RunOutcome
from rlsweep.results.trials import Ending


def print_summary(outcome: RunOutcome, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    experiment = outcome.experiment
    lines = [""]
    if not experiment.is_search and len(outcome.trials) == 1:
        lines += _training_lines(outcome)
    else:
        lines += _search_lines(outcome)
    for trial in outcome.trials:
        if trial.ending is Ending.FAILED:
            lines.append(f"Trial {trial.trial_id} failed: {trial.error} (details in {trial.path}/error.txt)")
    lines.append(f"Results:      {outcome.folder.path}")
    if experiment.is_search:
        lines.append(f"Optuna study: {outcome.folder.study_url}  (optuna-dashboard can open it)")
    lines.append(f"TensorBoard:  rlsweep tensorboard {outcome.folder.path}")
    if outcome.mlflow_uri:
        lines += _mlflow_lines(outcome, outcome.mlflow_uri)
    print("\n".join(lines), file=out, flush=True)


def _search_lines(outcome: RunOutcome) -> list[str]:
    experiment = outcome.experiment
    described = {Ending.REACHED_STOP: "ran to a stop condition"}
    counts = ", ".join(
        f"{outcome.count(ending)} {described.get(ending, ending.value)}"
        for ending in Ending
        if ending is not Ending.INTERRUPTED or outcome.count(ending)
    )
    lines = [
        f"Sweep {experiment.name!r}: {len(outcome.trials)} trials ({counts}) in {outcome.elapsed_s:.0f} s"
    ]
    best = outcome.best
    if best is None:
        return [*lines, f"No trial reported {experiment.metric!r}; nothing to recommend."]
    lines += _test_lines(outcome)
    score = f"{SCORE_KEY} ({experiment.score.type} of {experiment.metric})"
    lines += [
        f"Best trial:   {best.path.name}",
        f"Best score:   {score} = {best.score:.2f} "
        f"(at {best.env_steps:,} {experiment.trainable.timestep_unit})",
    ]
    if outcome.test is not None and outcome.test.best is not None:
        lines.append(f"Best on test: {describe(outcome.test.best, experiment.stop.target)}")
    lines.append("Best config:")
    sampled = {k: v for k, v in trial_hyperparameters(best.config).items() if k != "env"}
    lines += [f"  {line}" for line in yaml.safe_dump(sampled, sort_keys=True).splitlines()]
    lines += [
        f"Best config file: {outcome.folder.best_config_file}",
        f"  retrain it:     rlsweep train --config-file {outcome.folder.best_config_file}",
    ]
    if best.checkpoint is not None:
        lines.append(f"Best checkpoint:  {best.checkpoint}")
    return lines


def _test_lines(outcome: RunOutcome) -> list[str]:
    """The held-out test of the top configs, one line each, by tuning rank."""
    test = outcome.test
    if test is None:
        return []
    seeds = ", ".join(str(seed) for seed in test.seeds)
    lines = [
        f"Held-out test: top {len(test.configs)} configs on {len(test.seeds)} new seeds ({seeds}) "
        f"in {test.elapsed_s:.0f} s, in {test.path}:"
    ]
    for config in test.configs:
        marker = "*" if config is test.best else " "
        lines.append(
            f" {marker} trial {config.tuned.trial_id}: tuning {config.tuned.score:.2f}, "
            f"{describe(config, outcome.experiment.stop.target)}"
        )
    return lines


def _training_lines(outcome: RunOutcome) -> list[str]:
    (trial,) = outcome.trials
    experiment = outcome.experiment
    if trial.ending is Ending.FAILED:
        return [f"Training {experiment.algorithm} on {experiment.env} failed."]
    lines = [
        f"Trained {experiment.trainable.__name__} on {experiment.env} for {trial.env_steps:,} "
        f"{experiment.trainable.timestep_unit} "
        f"({trial.ending.value}) in {outcome.elapsed_s:.0f} s"
    ]
    for key in ("episode_return_mean", "evaluation/episode_return_mean"):
        if key in trial.final:
            lines.append(f"  {key} = {trial.final[key]:.2f}")
    if trial.checkpoint is not None:
        lines.append(f"Checkpoint:   {trial.checkpoint}")
        lines.append(f"  evaluate it: rlsweep evaluate {trial.checkpoint}")
    return lines


def _mlflow_lines(outcome: RunOutcome, tracking_uri: str) -> list[str]:
    """The store, and the address of the sweep's trials in MLflow's UI."""
    from rlsweep.tracking.mlflow_store import is_tracking_server
    from rlsweep.tracking.mlflow_view import ui_address

    lines = [f"MLflow:       {tracking_uri}  (experiment {outcome.experiment.name!r})"]
    serve = [] if is_tracking_server(tracking_uri) else [f"  served by:  rlsweep ui {outcome.folder.path}"]
    if outcome.mlflow_page is None:
        return [*lines, *serve]
    return [*lines, f"  its trials: {ui_address(tracking_uri)}{outcome.mlflow_page}", *serve]
