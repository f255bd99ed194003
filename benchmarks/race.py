"""A race to a target return, shared by the algorithm benchmarks.

Each contender trains in a fresh process (so peak memory is its own) until the mean return
of its last WINDOW training episodes first reaches the target, or its step budget runs out.
Wall time starts when the agent is built: imports are excluded, and so is Ray's start-up,
which a sweep pays once. "start s" is the time to build the agent and finish its first
iteration (for rlsweep with workers, their actors' start-up: a process each, importing torch);
env steps/s are counted after it, so they measure training, not starting; the wall time to
the target includes it. The script prints a row per run as it finishes, then medians per
contender with three ratios: Stable-Baselines3's median wall time to each contender's, and
each contender's env steps/s against Stable-Baselines3's and against the first contender's
(in the algorithm benchmarks, rlsweep sampling in its own process).

A contender is data: `Rlsweep(algorithm, config)`, or a module-level function
`(contender, seed, max_steps) -> Run` for a peer library.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

WINDOW = 20
BASELINE = "sb3 zoo"


@dataclass
class Run:
    contender: str
    seed: int
    wall_s: float | None  # to the target; None if not reached
    steps: int | None  # env steps to the target
    start_s: float  # building the agent and its first iteration
    steps_per_s: float  # after the start
    peak_rss_mb: float


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def steps_per_s_after(start: tuple[float, int], elapsed: float, steps: int) -> float:
    """The env-step rate from `start` (seconds, steps) to the end of the run."""
    start_s, start_steps = start
    return (steps - start_steps) / (elapsed - start_s) if elapsed > start_s else steps / elapsed


Contender = Callable[[str, int, int], Run]
"""Called as contender(name, seed, max_steps) in a fresh process."""


@dataclass(frozen=True)
class Rlsweep:
    """An rlsweep trainable with `config`, raced to `target` (picklable into the run's process)."""

    algorithm: str
    config: dict[str, Any]
    target: float

    def __call__(self, contender: str, seed: int, max_steps: int) -> Run:
        return train_rlsweep(contender, self.algorithm, self.config, self.target, seed, max_steps)


def train_rlsweep(
    contender: str, algorithm: str, config: dict[str, Any], target: float, seed: int, max_steps: int
) -> Run:
    """Train an rlsweep trainable outside Tune (as a trial would inside it) to the target."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from rlsweep.trainables import get_algorithm

    config = {**config, "seed": seed, "evaluation_interval": 0}
    if config.get("num_workers"):
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    algo = get_algorithm(algorithm)(config=config)
    reached: tuple[float, int] | None = None
    first: tuple[float, int] | None = None
    while algo.timesteps_total < max_steps:
        algo.train()
        first = first or (time.perf_counter() - start, algo.timesteps_total)
        last = list(algo.episodes.returns[0])[-WINDOW:]
        if len(last) == WINDOW and np.mean(last) >= target:
            reached = (time.perf_counter() - start, algo.timesteps_total)
            break
    elapsed = time.perf_counter() - start
    steps = algo.timesteps_total
    algo.stop()
    first = first or (elapsed, steps)
    return Run(
        contender,
        seed,
        *(reached or (None, None)),
        first[0],
        steps_per_s_after(first, elapsed, steps),
        peak_rss_mb(),
    )


def train_sb3(make_model: Callable[[], Any], target: float, seed: int, total_timesteps: int) -> Run:
    """Train a Stable-Baselines3 model built by `make_model` until the target or the budget."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAtTarget(BaseCallback):
        reached: tuple[float, int] | None = None
        first: tuple[float, int] | None = None

        def _on_rollout_end(self) -> None:
            self.first = self.first or (time.perf_counter() - start, self.num_timesteps)

        def _on_step(self) -> bool:
            buffer = self.model.ep_info_buffer
            if len(buffer) >= WINDOW and np.mean([info["r"] for info in list(buffer)[-WINDOW:]]) >= target:
                self.reached = (time.perf_counter() - start, self.num_timesteps)
                return False
            return True

    start = time.perf_counter()
    model = make_model()
    callback = StopAtTarget()
    model.learn(total_timesteps=total_timesteps, callback=callback)
    elapsed = time.perf_counter() - start
    first = callback.first or (elapsed, model.num_timesteps)
    return Run(
        BASELINE,
        seed,
        *(callback.reached or (None, None)),
        first[0],
        steps_per_s_after(first, elapsed, model.num_timesteps),
        peak_rss_mb(),
    )


def _median_or_none(values: list[float | None]) -> float | None:
    """The median, a run that missed the target counting as infinitely slow; None when
    half or more missed it."""
    present = [v for v in values if v is not None]
    if len(present) * 2 <= len(values):
        return None
    return statistics.median(v if v is not None else float("inf") for v in values)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def run_race(description: str, contenders: dict[str, Contender], default_max_steps: int) -> None:
    """Parse the benchmark's command line, run every (seed, contender) pair, print the tables.

    `contenders` maps names to contenders, each pickled into a fresh spawned process per run.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per contender (default 5)")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=default_max_steps,
        help=f"env-step budget per run (default {default_max_steps})",
    )
    parser.add_argument("--contenders", nargs="+", default=list(contenders), choices=list(contenders))
    args = parser.parse_args()

    runs: list[Run] = []
    context = multiprocessing.get_context("spawn")
    print(
        f"{'contender':<24} {'seed':>4} {'wall s':>8} {'steps':>9} "
        f"{'start s':>8} {'steps/s':>9} {'peak MB':>8}"
    )
    for seed in range(args.seeds):
        for name in args.contenders:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                run = pool.submit(contenders[name], name, seed, args.max_steps).result()
            runs.append(run)
            print(
                f"{run.contender:<24} {run.seed:>4} {_fmt(run.wall_s, 2):>8} {_fmt(run.steps, 0):>9} "
                f"{_fmt(run.start_s, 2):>8} {_fmt(run.steps_per_s, 0):>9} {_fmt(run.peak_rss_mb, 0):>8}",
                flush=True,
            )

    print("\nMedians over seeds (a run that missed the target counts as infinitely slow)")
    first = args.contenders[0]
    print(
        f"{'contender':<24} {'reached':>7} {'wall s':>8} {'steps':>9} "
        f"{'start s':>8} {'steps/s':>9} {'peak MB':>8} "
        f"{'SB3/this wall':>14} {'steps/s vs SB3':>15} {'vs ' + first:>{max(12, len(first) + 3)}}"
    )

    def median_steps_per_s(name: str) -> float | None:
        mine = [r.steps_per_s for r in runs if r.contender == name]
        return statistics.median(mine) if mine else None

    baseline_wall = _median_or_none([r.wall_s for r in runs if r.contender == BASELINE])
    baseline_rate, first_rate = median_steps_per_s(BASELINE), median_steps_per_s(first)
    for name in args.contenders:
        mine = [r for r in runs if r.contender == name]
        wall = _median_or_none([r.wall_s for r in mine])
        rate = median_steps_per_s(name)
        wall_ratio = baseline_wall / wall if baseline_wall and wall else None
        rate_ratio = rate / baseline_rate if baseline_rate else None
        print(
            f"{name:<24} {sum(r.wall_s is not None for r in mine):>3}/{len(mine):<3} {_fmt(wall, 2):>8} "
            f"{_fmt(_median_or_none([r.steps for r in mine]), 0):>9} "
            f"{_fmt(statistics.median(r.start_s for r in mine), 2):>8} {_fmt(rate, 0):>9} "
            f"{_fmt(statistics.median(r.peak_rss_mb for r in mine), 0):>8} {_fmt(wall_ratio, 2):>14} "
            f"{_fmt(rate_ratio, 2):>15} {_fmt(rate / first_rate, 2):>{max(12, len(first) + 3)}}"
        )
