"""The default sweep (cartpole_ppo) end to end: where a sweep's wall time goes.

Runs the shipped experiment through the same runner as `rlsweep sweep`, once with MLflow
tracking off and once on (TensorBoard is always on), on one local Ray started beforehand
(its start-up is reported separately: a sweep pays it once). For each run it prints the
wall time, trials that ran to a stop condition, trials the scheduler stopped early, time
per trial, the best score, and Tune's overhead: trial-slot seconds not spent inside
`step()` (process start-up, setup, checkpointing, result handling, scheduling gaps).

    python benchmarks/sweep_cartpole.py [--num-samples 8] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiment", default="cartpole_ppo")
    parser.add_argument("--num-samples", type=int, help="override the experiment's trial count")
    parser.add_argument("--repeats", type=int, default=1, help="runs per tracking setting")
    args = parser.parse_args()

    import logging

    import ray

    from rlsweep.experiment.files import load_experiment
    from rlsweep.pipeline.runner import run_experiment
    from rlsweep.results.trials import Ending

    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    started = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - started:.1f} s (once per sweep, not counted below)\n")

    rows = []
    for repeat in range(args.repeats):
        for tracking in (False, True):
            with tempfile.TemporaryDirectory() as results_dir:
                # The search alone: its trial-slot accounting below knows nothing of the
                # held-out test phase that follows it.
                overrides = {"results_dir": results_dir, "test": None}
                if args.num_samples:
                    overrides["num_samples"] = args.num_samples
                experiment = load_experiment(args.experiment, overrides)
                started = time.perf_counter()
                outcome = run_experiment(experiment, track_mlflow=tracking)
                wall = time.perf_counter() - started
            results = [trial.final for trial in outcome.trials if trial.final]
            in_step = sum(result.get("time_total_s", 0.0) for result in results)
            slots = experiment.max_concurrent_trials
            overhead = wall * slots - in_step
            rows.append(
                {
                    "mlflow": "on" if tracking else "off",
                    "repeat": repeat,
                    "wall_s": wall,
                    "trials": len(results),
                    "completed": outcome.count(Ending.REACHED_STOP),
                    "stopped_early": outcome.count(Ending.STOPPED_EARLY),
                    "failed": outcome.count(Ending.FAILED),
                    "s_per_trial": wall * slots / max(1, len(results)),
                    "in_step_s": in_step,
                    "overhead_s": overhead,
                    "overhead_pct": 100 * overhead / (wall * slots),
                    "best": outcome.best.score if outcome.best else float("nan"),
                }
            )
            row = rows[-1]
            print(
                f"done: mlflow {row['mlflow']}, repeat {repeat}: {wall:.1f} s, best {row['best']:.1f}",
                flush=True,
            )

    print(
        f"\n{args.experiment}: {experiment.num_samples} trials, {experiment.max_concurrent_trials} at a time"
    )
    header = (
        f"{'mlflow':<7}{'wall s':>8}{'trials':>7}{'done':>6}{'early':>6}{'failed':>7}"
        f"{'slot-s/trial':>13}{'in step s':>10}{'overhead s':>11}{'overhead %':>11}{'best':>8}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['mlflow']:<7}{row['wall_s']:>8.1f}{row['trials']:>7}{row['completed']:>6}"
            f"{row['stopped_early']:>6}{row['failed']:>7}{row['s_per_trial']:>13.1f}{row['in_step_s']:>10.1f}"
            f"{row['overhead_s']:>11.1f}{row['overhead_pct']:>10.0f}%{row['best']:>8.1f}"
        )
    off = [r["wall_s"] for r in rows if r["mlflow"] == "off"]
    on = [r["wall_s"] for r in rows if r["mlflow"] == "on"]
    print(
        f"\nMLflow tracking cost: {sum(on) / len(on) - sum(off) / len(off):+.1f} s of wall time per sweep "
        f"({100 * (sum(on) / sum(off) - 1):+.0f}%)"
    )


if __name__ == "__main__":
    main()
