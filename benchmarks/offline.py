"""Offline RL on recorded classic-control datasets: does each algorithm reach its target?

    python benchmarks/offline.py [--only bc|cql|iql|replay ...] [--algorithm CQL|IQL|BC ...]

The datasets are recorded first, with the recipes of experiments/offline (hand-written
experts from examples/offline/controllers.py; `medium` is the Pendulum expert with half
its actions replaced by uniform random ones). Each algorithm trains in-process (no Ray)
for a fixed number of gradient steps, seeds batched in one learner, evaluating every 1000
steps on 10 greedy episodes; its score is the mean of the last 3 evaluations over seeds
(single final evaluations of offline policies swing by tens of points).
Scores are normalized as the offline literature does: 0 = random policy, 100 = expert
(the reference returns each recipe stores in its dataset).

Targets (issue 23): BC on expert data reaches >= 95% of the expert's return; CQL and IQL
on medium Pendulum beat the behaviour policy by >= 10 normalized points, and reach >= 70
normalized on medium-replay (`--only replay`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlsweep.trainables import registry  # noqa: E402
from rlsweep.trainables.offline.formats import read_dataset, write_npz  # noqa: E402
from rlsweep.trainables.offline.record import record  # noqa: E402
from rlsweep.trainables.offline.replay import record_replay  # noqa: E402

CARTPOLE_REFS = (21.0, 500.0)  # random, expert (the recipes' --ref-min-score / --ref-max-score)
PENDULUM_REFS = (-1200.0, -132.0)
LAST_EVALUATIONS = 3
CONTROLLERS = "examples.offline.controllers"

CARTPOLE_EXPERT = f"{CONTROLLERS}:cartpole_expert"
PENDULUM_EXPERT = f"{CONTROLLERS}:pendulum_expert"
DATASETS = {
    "cartpole-expert": dict(env="CartPole-v1", policy=CARTPOLE_EXPERT, episodes=20, refs=CARTPOLE_REFS),
    "pendulum-expert": dict(env="Pendulum-v1", policy=PENDULUM_EXPERT, episodes=50, refs=PENDULUM_REFS),
    "pendulum-medium": dict(
        env="Pendulum-v1", policy=PENDULUM_EXPERT, episodes=100, epsilon=0.5, refs=PENDULUM_REFS
    ),
}  # fmt: skip

# medium-replay: SAC's replay buffer until its last 10 episodes average -530 (the Makefile's
# recipe, seed 4); the recipe's output is reused when `make datasets` has written it.
REPLAY_RECIPE = dict(
    target_return=-530.0,
    max_timesteps=50_000,
    seed=4,
    config={"hidden_sizes": [64, 64], "batch_size": 128, "timesteps_per_iteration": 200},
)
REPLAY_FILE = ROOT / "experiments/offline/datasets/pendulum-medium-replay.npz"

PENDULUM_OFFLINE_RL = {"hidden_sizes": (128, 128), "reward_scale": 0.1}
RUNS = [
    # (group, algorithm, dataset, config, gradient steps, seeds)
    ("bc", "BC", "cartpole-expert", {}, 2_000, 1),
    ("bc", "BC", "pendulum-expert", {}, 5_000, 1),
    ("bc", "BC", "pendulum-medium", {}, 5_000, 3),  # what cloning the medium data gives, for comparison
    ("cql", "CQL", "pendulum-medium", {**PENDULUM_OFFLINE_RL, "num_sampled_actions": 4}, 6_000, 2),
    ("iql", "IQL", "pendulum-medium", PENDULUM_OFFLINE_RL, 10_000, 3),
    ("replay", "CQL", "pendulum-medium-replay", {**PENDULUM_OFFLINE_RL, "num_sampled_actions": 4}, 5_000, 1),
    ("replay", "IQL", "pendulum-medium-replay", PENDULUM_OFFLINE_RL, 5_000, 1),
    # Sharper advantage weights pick the good episodes out of the mixed-quality buffer.
    (
        "replay",
        "IQL",
        "pendulum-medium-replay",
        {**PENDULUM_OFFLINE_RL, "beta": 10.0, "expectile": 0.9},
        5_000,
        3,
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["bc", "cql", "iql", "replay"], action="append")
    parser.add_argument("--algorithm", action="append", help="only these algorithms' runs (BC, CQL, IQL)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.chdir(ROOT)
    folder = Path(tempfile.mkdtemp(prefix="rlsweep-offline-bench-"))
    os.environ["RLSWEEP_DATASET_CACHE"] = str(folder / "cache")
    behaviour = {}
    for name, recipe in DATASETS.items():
        low, high = recipe["refs"]
        dataset = record(
            recipe["env"], recipe["policy"], episodes=recipe["episodes"], seed=1,
            epsilon=recipe.get("epsilon", 0.0), ref_min_score=low, ref_max_score=high,
        )  # fmt: skip
        write_npz(dataset, folder / f"{name}.npz")
        returns = dataset.episode_returns()
        behaviour[name] = (returns.mean(), float(dataset.info.normalized_score(returns.mean())), len(dataset))
        print(
            f"recorded {name}: {len(dataset)} transitions, behaviour return {returns.mean():.1f}", flush=True
        )

    if not args.only or "replay" in args.only:
        if REPLAY_FILE.exists():
            dataset = read_dataset(str(REPLAY_FILE))
            print(f"pendulum-medium-replay: the recipe's {REPLAY_FILE.relative_to(ROOT)}")
        else:
            low, high = PENDULUM_REFS
            dataset = record_replay("Pendulum-v1", **REPLAY_RECIPE, ref_min_score=low, ref_max_score=high)
        write_npz(dataset, folder / "pendulum-medium-replay.npz")
        returns = dataset.episode_returns()
        behaviour["pendulum-medium-replay"] = (
            returns.mean(),
            float(dataset.info.normalized_score(returns.mean())),
            len(dataset),
        )
        DATASETS["pendulum-medium-replay"] = dict(env="Pendulum-v1")
        print(f"pendulum-medium-replay: {len(dataset)} transitions, mean episode return {returns.mean():.1f}")

    rows = []
    for group, algorithm, name, config, steps, seeds in RUNS:
        if args.only and group not in args.only:
            continue
        if args.algorithm and algorithm not in args.algorithm:
            continue
        trainable = registry.get_algorithm(algorithm)
        iterations = steps // 1000
        start = time.perf_counter()
        algo = trainable(
            config={
                "env": DATASETS[name]["env"], "dataset": str(folder / f"{name}.npz"),
                "num_seeds": seeds, "updates_per_iteration": 1000, "evaluation_interval": 1,
                "evaluation_num_episodes": 10, "fqe_updates": 300, **config,
            }
        )  # fmt: skip
        history = [algo.train() for _ in range(iterations)]
        algo.stop()
        wall = time.perf_counter() - start
        last = history[-LAST_EVALUATIONS:]
        data_return, data_score, transitions = behaviour[name]
        rows.append(
            (algorithm, name, transitions, steps, seeds, data_return, data_score,
             np.mean([r["evaluation/episode_return_mean"] for r in last]),
             np.mean([r["evaluation/normalized_score"] for r in last]),
             history[-1]["evaluation/fqe_value"], wall)
        )  # fmt: skip
        print(
            f"{algorithm} on {name}: {rows[-1][7]:.1f} ({rows[-1][8]:.1f} normalized) in {wall:.0f} s",
            flush=True,
        )

    print()
    print(
        "| algorithm | dataset | transitions | gradient steps | seeds | behaviour return (norm.) | "
        "policy return (norm.) | policy - behaviour | FQE estimate (discounted, scaled) | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for algorithm, name, transitions, steps, seeds, data_return, data_score, ret, score, fqe, wall in rows:
        print(
            f"| {algorithm} | {name} | {transitions} | {steps} | {seeds} | "
            f"{data_return:.1f} ({data_score:.1f}) | {ret:.1f} ({score:.1f}) | "
            f"{score - data_score:+.1f} points | {fqe:.1f} | {wall:.0f} |"
        )
    print(
        f"\n(policy return: mean over seeds and the last {LAST_EVALUATIONS} evaluations, 1000 gradient steps "
        "apart, of 10 greedy episodes each)"
    )


if __name__ == "__main__":
    main()
