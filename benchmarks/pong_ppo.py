"""PPO learns Atari Pong from pixels: wall time and env steps until the mean raw score of the
last 20 games reaches 18 (scores run from -21 to 21).

Meant for a GPU machine: one trial with `--workers` rollout worker actors (one CPU each) of
`--envs-per-worker` envs and the learner on the GPU, the settings of
experiments/atari/pong_ppo.yaml at the centre of its ranges. Wall time starts when the
trial is built (Ray's start-up excluded, as a sweep pays it once) and ends at the target.

    .venv/bin/python benchmarks/pong_ppo.py                      # 15 workers x 8 envs, 1 GPU
    .venv/bin/python benchmarks/pong_ppo.py --smoke               # a few iterations on 2 CPUs
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

WINDOW = 20
"""Games the mean score is taken over."""


def config(workers: int, envs_per_worker: int, num_gpus: float) -> dict:
    return {
        "env": "ALE/Pong-v5",
        "num_workers": workers,
        "num_envs_per_worker": envs_per_worker,
        "num_gpus": num_gpus,
        "rollout_length": 128,
        "minibatch_size": envs_per_worker * 128 // 2,
        "num_epochs": 4,
        "lr": 2.5e-4,
        "lr_anneal_timesteps": 10_000_000,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "clip_range": 0.1,
        "ent_coef": 0.01,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
        "hidden_sizes": [512],
        "activation": "relu",
        "evaluation_interval": 0,
    }


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPUs, {gpu}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=15)
    parser.add_argument("--envs-per-worker", type=int, default=8)
    parser.add_argument("--num-gpus", type=float, default=1.0)
    parser.add_argument("--target", type=float, default=18.0)
    parser.add_argument("--max-steps", type=int, default=10_000_000, help="env steps before giving up")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny budget on this machine: 1 worker, no GPU, 3 iterations"
    )
    args = parser.parse_args()
    if args.smoke:
        args.workers, args.envs_per_worker, args.num_gpus = 1, 4, 0.0
        args.max_steps = 3 * 4 * 128
    import ray
    import torch

    torch.set_num_threads(1)
    from rlsweep.trainables import PPO

    if args.workers:
        ray.init(
            num_cpus=max(os.cpu_count() or 1, args.workers + 1), include_dashboard=False, log_to_driver=False
        )
    start = time.perf_counter()
    algo = PPO(config=config(args.workers, args.envs_per_worker, args.num_gpus))
    reached = None
    while algo.timesteps_total < args.max_steps:
        result = algo.train()
        games = list(algo.episodes.returns[0])[-WINDOW:]
        mean = float(np.mean(games)) if games else float("nan")
        wall = time.perf_counter() - start
        print(
            f"iteration {result['training_iteration']:4d}  env steps {algo.timesteps_total:>10,}  "
            f"wall {wall:8.1f} s  mean score of last {len(games)} games {mean:6.2f}  "
            f"{result['env_steps_per_s']:,.0f} env steps/s",
            flush=True,
        )
        if len(games) == WINDOW and mean >= args.target:
            reached = (wall, algo.timesteps_total)
            break
    algo.stop()
    print(f"\nPPO on ALE/Pong-v5, {args.workers} workers x {args.envs_per_worker} envs, on {machine()}")
    if reached is None:
        print(f"target {args.target} not reached in {algo.timesteps_total:,} env steps")
    else:
        print(f"mean score {args.target} reached in {reached[0]:.0f} s and {reached[1]:,} env steps")


if __name__ == "__main__":
    main()
