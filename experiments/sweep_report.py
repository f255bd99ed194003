"""Files that summarize a finished sweep: the trials table and Optuna's plots."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from ray import tune

logger = logging.getLogger(__name__)

TRIALS_FILE = "trials.csv"


def write_trials_table(results: tune.ResultGrid, sweep_dir: Path) -> Path:
    """One row per trial: its config and last result."""
    path = sweep_dir / TRIALS_FILE
    results.get_dataframe().to_csv(path, index=False)
    return path


def write_study_plots(storage_url: str, study_name: str, out_dir: Path) -> list[Path]:
    """Optuna's optimization history, parameter importances and parallel coordinates as PNG.

    A plot Optuna cannot draw yet (importances need two finished trials with different
    params) is skipped with a log line, not an error.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    study = optuna.load_study(study_name=study_name, storage=storage_url)
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
            path = out_dir / f"{name}.png"
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
        except Exception as error:
            logger.info("skipped the %s plot: %s", name, error)
    return written
