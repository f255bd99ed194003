"""The files that summarize a finished run: the best config, the trials table and Optuna's plots."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml

from rlsweep.experiments.hyperparameters import numeric_metrics, trial_hyperparameters
from rlsweep.experiments.outcome import RunOutcome

logger = logging.getLogger(__name__)


def write_report(outcome: RunOutcome) -> list[Path]:
    """Every report file of the run: what MLflow attaches to the sweep's parent run."""
    files = [write_trials_table(outcome)]
    if outcome.best is not None:
        files.append(write_best_config(outcome))
    if outcome.experiment.is_search:
        files += write_study_plots(outcome)
    return files


def write_best_config(outcome: RunOutcome) -> Path:
    """A file `rlsweep train --config-file` accepts: the best trial's algorithm, env and config."""
    best = outcome.best
    assert best is not None
    config = {k: _plain(v) for k, v in best.config.items() if not k.startswith("__")}
    document = {
        "algorithm": outcome.experiment.trainable.__name__,
        "env": config.pop("env", outcome.experiment.env),
        "config": config,
        "metric": outcome.experiment.metric,
        "score": best.score,
        "timesteps_total": best.env_steps,
        "checkpoint": str(best.checkpoint) if best.checkpoint else None,
    }
    path = outcome.folder.best_config_file
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def write_trials_table(outcome: RunOutcome) -> Path:
    """One row per trial: how it ended, its score, its hyperparameters and its last result."""
    rows = []
    for trial in outcome.trials:
        row: dict[str, Any] = {
            "trial_id": trial.trial_id,
            "ending": trial.ending.value,
            "score": trial.score,
            "error": trial.error,
        }
        row.update({f"config/{k}": v for k, v in trial_hyperparameters(trial.config).items()})
        row.update(numeric_metrics(trial.final))
        rows.append(row)
    path = outcome.folder.trials_file
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_study_plots(outcome: RunOutcome) -> list[Path]:
    """Optuna's optimization history, parameter importances and parallel coordinates as PNG.

    A plot Optuna cannot draw yet (importances need two finished trials with different
    params) is skipped with a log line, not an error.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    study = optuna.load_study(study_name=outcome.experiment.name, storage=outcome.folder.study_url)
    plots = {
        "optimization_history": optuna_plots.plot_optimization_history,
        "param_importances": optuna_plots.plot_param_importances,
        "parallel_coordinate": optuna_plots.plot_parallel_coordinate,
    }
    written = []
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = plot(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            path = outcome.folder.path / f"{name}.png"
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
        except Exception as error:
            logger.info("skipped the %s plot: %s", name, error)
    return written


def _plain(value: Any) -> Any:
    """YAML-safe: tuples become lists."""
    if isinstance(value, tuple):
        return list(value)
    return value
