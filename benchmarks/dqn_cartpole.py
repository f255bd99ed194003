"""DQN on CartPole-v1: rlsweep against Stable-Baselines3, measured in the same run.

For each seed, every contender trains until the mean return of its last 20 training
episodes first reaches 475 (or the step budget runs out). Each run is a fresh process, so
peak memory is its own; wall time starts when the agent is built (imports excluded, Ray
start-up excluded, since a sweep pays it once).

    python benchmarks/dqn_cartpole.py --seeds 3

Contenders:
  rlsweep tuned      our CartPole settings, sampling in-process (num_workers=0)
  rlsweep tuned 1w   the same with one rollout worker actor (Ray)
  rlsweep zoo        our DQN with rl-baselines3-zoo's CartPole hyperparameters
  sb3 zoo            Stable-Baselines3 DQN with rl-baselines3-zoo's CartPole hyperparameters
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ENV = "CartPole-v1"
TARGET = 475.0
WINDOW = 20

# DQNConfig's defaults, spelled out: Double DQN with 3-step returns, a short epsilon decay.
RLSWEEP_TUNED = {
    "num_envs_per_worker": 4,
    "hidden_sizes": (128, 128),
    "lr": 2.3e-3,
    "batch_size": 64,
    "train_freq": 16,
    "gradient_steps": 16,
    "n_step": 3,
    "target_update_interval": 250,
    "exploration_timesteps": 5_000,
    "exploration_final_eps": 0.01,
}
# rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 (n_timesteps 5e4, which misses the
# target more often than not, so every contender gets --max-steps).
ZOO_TIMESTEPS = 50_000
ZOO = {
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}
RLSWEEP_ZOO = {
    "num_envs_per_worker": 1,
    "lr": ZOO["learning_rate"],
    "batch_size": ZOO["batch_size"],
    "buffer_size": ZOO["buffer_size"],
    "learning_starts": ZOO["learning_starts"],
    "gamma": ZOO["gamma"],
    "target_update_interval": ZOO["target_update_interval"],
    "train_freq": ZOO["train_freq"],
    "gradient_steps": ZOO["gradient_steps"],
    "exploration_timesteps": int(ZOO["exploration_fraction"] * ZOO_TIMESTEPS),
    "exploration_final_eps": ZOO["exploration_final_eps"],
    "hidden_sizes": tuple(ZOO["policy_kwargs"]["net_arch"]),
    "activation": "relu",
    "double_q": False,  # SB3's DQN is the classic one
}


@dataclass
class Run:
    contender: str
    seed: int
    wall_s: float | None  # to the target; None if not reached
    steps: int | None
    steps_per_s: float
    peak_rss_mb: float


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_rlsweep(contender: str, config: dict, seed: int, max_steps: int) -> Run:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from trainables import DQN

    num_workers = config.pop("num_workers", 0)
    if num_workers:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    # One round per iteration, so the target is checked as often as the learner updates.
    algo = DQN(
        config={
            **config,
            "env": ENV,
            "num_workers": num_workers,
            "seed": seed,
            "evaluation_interval": 0,
            "timesteps_per_iteration": 1,
        }
    )
    reached: tuple[float, int] | None = None
    while algo.timesteps_total < max_steps:
        algo.train()
        last = list(algo.recent_returns)[-WINDOW:]
        if len(last) == WINDOW and np.mean(last) >= TARGET:
            reached = (time.perf_counter() - start, algo.timesteps_total)
            break
    elapsed = time.perf_counter() - start
    steps = algo.timesteps_total
    algo.stop()
    return Run(contender, seed, *(reached or (None, None)), steps / elapsed, _peak_rss_mb())


def run_sb3(seed: int, max_steps: int) -> Run:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAtTarget(BaseCallback):
        reached: tuple[float, int] | None = None

        def _on_step(self) -> bool:
            buffer = self.model.ep_info_buffer
            if len(buffer) >= WINDOW and np.mean([info["r"] for info in list(buffer)[-WINDOW:]]) >= TARGET:
                self.reached = (time.perf_counter() - start, self.num_timesteps)
                return False
            return True

    # SB3 decays epsilon over a fraction of `total_timesteps`: keep the zoo's 8000 steps of
    # decay while giving SB3 the same step budget as the other contenders.
    exploration_fraction = ZOO["exploration_fraction"] * ZOO_TIMESTEPS / max_steps
    start = time.perf_counter()
    model = SB3DQN(
        "MlpPolicy", ENV, seed=seed, device="cpu", **{**ZOO, "exploration_fraction": exploration_fraction}
    )
    callback = StopAtTarget()
    model.learn(total_timesteps=max_steps, callback=callback)
    elapsed = time.perf_counter() - start
    return Run(
        "sb3 zoo", seed, *(callback.reached or (None, None)), model.num_timesteps / elapsed, _peak_rss_mb()
    )


def run_one(contender: str, seed: int, max_steps: int) -> Run:
    if contender == "sb3 zoo":
        return run_sb3(seed, max_steps)
    configs = {
        "rlsweep tuned": RLSWEEP_TUNED,
        "rlsweep tuned 1w": {**RLSWEEP_TUNED, "num_workers": 1},
        "rlsweep zoo": RLSWEEP_ZOO,
    }
    return run_rlsweep(contender, dict(configs[contender]), seed, max_steps)


def median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    # A run that never reached the target counts as infinitely slow.
    if len(present) * 2 <= len(values):
        return None
    return statistics.median(v if v is not None else float("inf") for v in values)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per contender (default 5)")
    parser.add_argument("--max-steps", type=int, default=100_000, help="env-step budget per run")
    parser.add_argument(
        "--contenders",
        nargs="+",
        default=["rlsweep tuned", "rlsweep tuned 1w", "rlsweep zoo", "sb3 zoo"],
        help="subset of contenders to run",
    )
    args = parser.parse_args()

    runs: list[Run] = []
    context = multiprocessing.get_context("spawn")
    print(f"{'contender':<18} {'seed':>4} {'wall s':>8} {'steps':>9} {'steps/s':>9} {'peak MB':>8}")
    for seed in range(args.seeds):
        for contender in args.contenders:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                run = pool.submit(run_one, contender, seed, args.max_steps).result()
            runs.append(run)
            print(
                f"{run.contender:<18} {run.seed:>4} {fmt(run.wall_s, 2):>8} {fmt(run.steps, 0):>9} "
                f"{fmt(run.steps_per_s, 0):>9} {fmt(run.peak_rss_mb, 0):>8}",
                flush=True,
            )

    print("\nMedians over seeds (a run that missed the target counts as infinitely slow)")
    print(
        f"{'contender':<18} {'reached':>7} {'wall s':>8} {'steps':>9} {'steps/s':>9} {'peak MB':>8} "
        f"{'SB3/this wall':>14}"
    )
    sb3_wall = median_or_none([r.wall_s for r in runs if r.contender == "sb3 zoo"])
    for contender in args.contenders:
        mine = [r for r in runs if r.contender == contender]
        wall = median_or_none([r.wall_s for r in mine])
        ratio = sb3_wall / wall if sb3_wall and wall else None
        print(
            f"{contender:<18} {sum(r.wall_s is not None for r in mine):>3}/{len(mine):<3} {fmt(wall, 2):>8} "
            f"{fmt(median_or_none([r.steps for r in mine]), 0):>9} "
            f"{fmt(statistics.median(r.steps_per_s for r in mine), 0):>9} "
            f"{fmt(statistics.median(r.peak_rss_mb for r in mine), 0):>8} {fmt(ratio, 2):>14}"
        )


if __name__ == "__main__":
    main()
