"""What K seeds cost: one batched multi-seed trial against a single-seed one, same run.

Each algorithm trains with its tuned settings for a fixed number of env steps per seed,
once with `num_seeds: 1` and once with `num_seeds: 5`, each in a fresh process (imports
excluded, as in benchmarks/race.py), repeats interleaved (1, 5, 1, 5, ...) so a change in
machine load hits both alike. The table gives median wall times and their ratio: training
5 seeds one after the other, as every peer does, costs 5x by construction.

Targets: PPO on CartPole-v1 at most 1.5x; DQN on CartPole-v1 and SAC on Pendulum-v1 at
most 2x.

    python benchmarks/multi_seed.py [--repeats 3] [--seeds 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from dqn_cartpole import RLSWEEP_TUNED as DQN_TUNED
from ppo_cartpole import RLSWEEP_TUNED as PPO_TUNED
from sac_pendulum import RLSWEEP_TUNED as SAC_TUNED

CASES: dict[str, tuple[str, dict[str, Any], int, float]] = {
    # name: (algorithm, config, env steps per seed, target ratio)
    "PPO CartPole-v1": ("PPO", {**PPO_TUNED, "env": "CartPole-v1"}, 100_000, 1.5),
    "DQN CartPole-v1": (
        "DQN",
        {**DQN_TUNED, "env": "CartPole-v1", "timesteps_per_iteration": 2000},
        20_000,
        2.0,
    ),
    "SAC Pendulum-v1": (
        "SAC",
        {**SAC_TUNED, "env": "Pendulum-v1", "timesteps_per_iteration": 1000},
        5_000,
        2.0,
    ),
}


def train_for(algorithm: str, config: dict[str, Any], steps: int) -> tuple[float, float]:
    """Wall seconds to train `steps` env steps per seed, and the final mean training return."""
    import torch

    torch.set_num_threads(1)
    from rlsweep.trainables import get_algorithm

    start = time.perf_counter()
    algo = get_algorithm(algorithm)(config={**config, "evaluation_interval": 0})
    result: dict[str, Any] = {}
    while algo.timesteps_total < steps:
        result = algo.train()
    wall = time.perf_counter() - start
    algo.stop()
    return wall, result["episode_return_mean"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (case, seeds) pair")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the multi-seed trial")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    walls: dict[tuple[str, int], list[float]] = {}
    print(f"{'case':<18} {'seeds':>5} {'repeat':>6} {'wall s':>8} {'return':>8}")
    for name in args.cases:
        algorithm, config, steps, _ = CASES[name]
        for repeat in range(args.repeats):
            for seeds in (1, args.seeds):
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    wall, final_return = pool.submit(
                        train_for, algorithm, {**config, "num_seeds": seeds, "seed": repeat}, steps
                    ).result()
                walls.setdefault((name, seeds), []).append(wall)
                print(f"{name:<18} {seeds:>5} {repeat:>6} {wall:>8.2f} {final_return:>8.1f}", flush=True)

    print(f"\nMedian wall time for the same env steps per seed ({args.repeats} repeats)")
    multi_label = f"{args.seeds} seeds s"
    print(f"{'case':<18} {'steps/seed':>10} {'1 seed s':>9} {multi_label:>10} {'ratio':>6} {'target':>7}")
    for name in args.cases:
        _, _, steps, target = CASES[name]
        single = statistics.median(walls[name, 1])
        multi = statistics.median(walls[name, args.seeds])
        verdict = "met" if multi / single <= target else "missed"
        print(
            f"{name:<18} {steps:>10,} {single:>9.2f} {multi:>10.2f} {multi / single:>5.2f}x "
            f"{target:>5.1f}x {verdict}"
        )


if __name__ == "__main__":
    main()
