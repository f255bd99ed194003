"""The sweep described in Markdown: what MLflow shows as the parent run's description."""

from __future__ import annotations

from rlsweep.experiment.hyperparameters import trial_hyperparameters
from rlsweep.results.held_out import describe
from rlsweep.results.outcome import RunOutcome
from rlsweep.results.trials import Ending


def sweep_description(outcome: RunOutcome) -> str:
    """The best config, the held-out test result and how every trial ended."""
    experiment = outcome.experiment
    envs = ", ".join(f"`{env}`" for env in experiment.env_ranges)
    counts = ", ".join(f"{outcome.count(e)} {e.value}" for e in Ending if outcome.count(e))
    lines = [
        f"## Sweep `{experiment.name}` ({outcome.folder.path.name})",
        "",
        f"{experiment.trainable.__name__} on {envs}: {len(outcome.trials)} trials ({counts}). "
        f"Score: {experiment.score.type} of `{experiment.metric}` ({experiment.mode}).",
        "",
    ]
    best = outcome.best
    if best is None:
        return "\n".join([*lines, "No trial reported a score; nothing to recommend."])
    chosen = "on the held-out test seeds" if outcome.test is not None else "by tuning score"
    lines += [
        "### Best config",
        "",
        f"Trial `{best.trial_id}`, chosen {chosen}: tuning score {best.score:.2f} "
        f"at {best.env_steps:,} {experiment.trainable.timestep_unit}.",
    ]
    if outcome.test is not None and outcome.test.best is not None:
        lines.append(f"Held out: {describe(outcome.test.best, experiment.stop.target)}.")
    lines += ["", "| key | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in trial_hyperparameters(best.config).items()]
    if outcome.test is not None:
        seeds = ", ".join(str(seed) for seed in outcome.test.seeds)
        lines += [
            "",
            f"### Held-out test ({len(outcome.test.seeds)} seeds: {seeds})",
            "",
            "| trial | tuning score | test mean | 95% CI | per seed | reached target |",
            "|---|---|---|---|---|---|",
        ]
        for config in outcome.test.configs:
            low, high = config.confidence_interval
            per_seed = ", ".join(f"{score:.1f}" for score in config.seed_scores)
            reached = (
                "-" if config.reached_target is None else f"{config.reached_target}/{len(config.seed_scores)}"
            )
            lines.append(
                f"| `{config.tuned.trial_id}` | {config.tuned.score:.2f} | {config.mean:.2f} | "
                f"{low:.2f} to {high:.2f} | {per_seed} | {reached} |"
            )
    unit = experiment.trainable.timestep_unit
    lines += ["", "### Trials", "", f"| trial | ending | score | {unit} |", "|---|---|---|---|"]
    for trial in outcome.trials:
        score = "-" if trial.score is None else f"{trial.score:.2f}"
        lines.append(f"| `{trial.trial_id}` | {trial.ending.value} | {score} | {trial.env_steps:,} |")
    return "\n".join(lines)
