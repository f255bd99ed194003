"""The figures of a run's report: every trial's evaluation curve, tuning score against test
score, and Optuna's study plots."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import optuna

from rlsweep.results.metrics import ENV_STEPS_KEY
from rlsweep.results.outcome import RunOutcome

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


def plot_evaluation_curves(outcome: RunOutcome) -> Path | None:
    """Each trial's metric against env steps, tuning trials solid and test trials dashed, the
    best trial drawn thick: how fast each config learned, not only where it ended."""
    metric = outcome.experiment.metric
    best = outcome.best
    figure, axes = _pyplot().subplots(figsize=(8, 5))
    drawn = 0
    curves = [(t, "-", t.trial_id + (" (best)" if t is best else "")) for t in outcome.trials]
    if outcome.test is not None:
        curves += [(c.tested, "--", f"{c.tuned.trial_id} on test seeds") for c in outcome.test.configs]
    for trial, style, label in curves:
        history = trial.history
        if history is None or metric not in history or ENV_STEPS_KEY not in history:
            continue
        points = history[[ENV_STEPS_KEY, metric]].dropna()
        width = 2.5 if trial is best else 1
        axes.plot(points[ENV_STEPS_KEY], points[metric], style, marker=".", linewidth=width, label=label)
        drawn += 1
    if not drawn:
        _pyplot().close(figure)
        return None
    axes.set(
        xlabel=outcome.experiment.trainable.timestep_unit,
        ylabel=metric,
        title=f"{outcome.experiment.name}: every trial",
    )
    axes.legend(fontsize="x-small", ncol=2)
    return _save(figure, outcome.folder.path / "evaluation_curves.png")


def plot_tuning_vs_test(outcome: RunOutcome) -> Path | None:
    """Each tested config's tuning score against its test mean with the 95% interval: how
    far the tuning seeds flattered each config."""
    if outcome.test is None or not outcome.test.configs:
        return None
    figure, axes = _pyplot().subplots(figsize=(6, 5))
    for config in outcome.test.configs:
        low, high = config.confidence_interval
        axes.errorbar(
            config.tuned.score,
            config.mean,
            yerr=[[config.mean - low], [high - config.mean]],
            fmt="o",
            capsize=4,
            label=config.tuned.trial_id,
        )
    ends = [c.tuned.score for c in outcome.test.configs] + [c.mean for c in outcome.test.configs]
    axes.plot([min(ends), max(ends)], [min(ends), max(ends)], ":", color="gray", label="test = tuning")
    axes.set(
        xlabel="tuning score",
        ylabel=f"test score (mean of {outcome.test.spec.seeds} seeds, 95% CI)",
        title=f"{outcome.experiment.name}: tuning vs held-out test",
    )
    axes.legend(fontsize="small")
    return _save(figure, outcome.folder.path / "tuning_vs_test.png")


def plot_study(outcome: RunOutcome) -> list[Path]:
    """Optuna's optimization history, parameter importances and parallel coordinates.

    A plot Optuna cannot draw yet (importances need two finished trials with different
    params) is skipped with a log line, not an error.
    """
    _pyplot()  # drawing to files
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
            written.append(_save(figure, outcome.folder.path / f"{name}.png"))
        except Exception as error:
            logger.info("skipped the %s plot: %s", name, error)
    return written


def _pyplot() -> ModuleType:
    """matplotlib's pyplot, drawing to files only, imported when a run ends: the 26 MB it
    takes stay out of the driver while trials run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=100, bbox_inches="tight")
    _pyplot().close(figure)
    return path
