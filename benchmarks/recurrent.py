"""Policies with memory: PPO with an LSTM and with attention (a gated transformer) against
the same PPO without memory, and recurrent DQN (R2D2) against the same DQN without memory,
same run.

    python benchmarks/recurrent.py              # every table, one seed each
    python benchmarks/recurrent.py --seeds 3 --only stateless_cartpole

Four tables, each contender trained in a fresh process, one after the other:

  stateless_cartpole  rlsweep/StatelessCartPole-v1 (CartPole without velocities): each model's first
                      evaluation (20 deterministic episodes, every 5 iterations) reaching 450,
                      within 500k env steps; the memoryless run trains the whole budget and
                      reports its best evaluation.
  memory_cue          rlsweep/MemoryCue-v0 with the cue 10, then 20, steps before the answer:
                      the first evaluation (50 deterministic episodes) with 95% right
                      answers, within 100k env steps; a memoryless policy is at chance, 0.5.
                      The attention net attends to the last 32 steps.
  memory_cue_dqn      rlsweep/MemoryCue-v0, cue 10 steps back, DQN with an LSTM (sequences of 16
                      steps, burn-in 4) against memoryless DQN: as memory_cue, evaluating
                      every 2048 env steps.
  throughput          CartPole-v1, the same sampler (in-process worker, 16 envs) and learner
                      settings: env steps/s of sampling alone and of training (sampling plus
                      learning), the LSTM's and the attention net's (default size) against
                      the MLP's; one process trains the three, an iteration of each in turn.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

SHARED = {
    "num_envs_per_worker": 16,
    "rollout_length": 64,
    "minibatch_size": 256,
    "num_epochs": 8,
    "lr": 1e-3,
    "max_seq_len": 16,
    "lstm_cell_size": 64,
}
LSTM = {"use_lstm": True}
ATTENTION = {"use_attention": True}
MEMORYLESS = {"use_lstm": False}

STATELESS_CARTPOLE = {**SHARED, "env": "rlsweep/StatelessCartPole-v1", "evaluation_num_episodes": 20}
STATELESS_TARGET, STATELESS_BUDGET = 450.0, 500_000
MEMORY_CUE = {
    **SHARED,
    "env": "rlsweep/MemoryCue-v0",
    "env_config": {"cue_distance": 10},
    "max_seq_len": 32,
    "evaluation_num_episodes": 50,
}
MEMORY_CUE_TARGET, MEMORY_CUE_BUDGET = 0.95, 100_000
CUE_DISTANCES = (10, 20)
CUE_ATTENTION = {**ATTENTION, "attention_memory": 32}
CUE_DQN = {
    "env": "rlsweep/MemoryCue-v0",
    "env_config": {"cue_distance": 10},
    "lstm_cell_size": 64,
    "max_seq_len": 16,
    "burn_in": 4,
    "hidden_sizes": (64,),
    "num_envs_per_worker": 16,
    "train_freq": 8,
    "gradient_steps": 8,
    "batch_size": 32,
    "n_step": 3,
    "lr": 1e-3,
    "learning_starts": 1000,
    "exploration_timesteps": 10_000,
    "target_update_interval": 500,
    "timesteps_per_iteration": 1024,
    "evaluation_interval": 2,
    "evaluation_num_episodes": 50,
}
THROUGHPUT = {**SHARED, "env": "CartPole-v1", "evaluation_interval": 0}
THROUGHPUT_STEPS = 40_000


def train(
    config: dict[str, Any], budget: int, target: float | None, algorithm: str = "PPO"
) -> dict[str, float]:
    """Train `algorithm` outside Tune until an evaluation reaches `target` or `budget` env steps pass."""
    import torch

    from rlsweep.trainables.dqn import DQN
    from rlsweep.trainables.ppo import PPO

    torch.set_num_threads(1)
    config = {"evaluation_interval": 5, **config}
    algo = {"PPO": PPO, "DQN": DQN}[algorithm](config=config)
    start = time.perf_counter()
    best, last, reached_at, sample_s, learn_s = float("-inf"), float("nan"), None, 0.0, 0.0
    while True:
        result = algo.train()
        sample_s += result["sample_time_s"]
        learn_s += result["learn_time_s"]
        evaluated = (
            config["evaluation_interval"]
            and (result["training_iteration"] - 1) % config["evaluation_interval"] == 0
        )
        if evaluated:
            score = result["evaluation/episode_return_mean"]
            best, last = max(best, score), score
            if target is not None and score >= target:
                reached_at = result["timesteps_total"]
                break
        if result["timesteps_total"] >= budget:
            break
    steps = result["timesteps_total"]
    algo.stop()
    return {
        "steps": steps,
        "reached_at": reached_at if reached_at is not None else float("nan"),
        "best": best,
        "last": last,
        "wall_s": time.perf_counter() - start,
        "train_steps_per_s": steps / (sample_s + learn_s),
        "sample_steps_per_s": steps / sample_s,
    }


def run(
    config: dict[str, Any], budget: int, target: float | None, algorithm: str = "PPO"
) -> dict[str, float]:
    """`train` in a fresh process, so one contender's threads and memory never slow the next."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(train, config, budget, target, algorithm).result()


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def stateless_cartpole(seeds: int) -> None:
    print(
        f"\nStatelessCartPole: first evaluation >= {STATELESS_TARGET:g} within {STATELESS_BUDGET:,} env steps"
    )
    print("| contender | seed | reached 450 at (env steps) | last evaluation | best evaluation | wall s |")
    print("|---|---|---|---|---|---|")
    contenders = (("PPO + LSTM", LSTM), ("PPO, no memory", MEMORYLESS), ("PPO + attention", ATTENTION))
    for name, model in contenders:
        for seed in range(seeds):
            result = run({**STATELESS_CARTPOLE, **model, "seed": seed}, STATELESS_BUDGET, STATELESS_TARGET)
            print(_row(name, seed, result, "{:.1f}"), flush=True)


def memory_cue(seeds: int) -> None:
    for distance in CUE_DISTANCES:
        print(
            f"\nMemoryCue (cue {distance} steps before the answer): first evaluation with "
            f">= {MEMORY_CUE_TARGET:.0%} right answers within {MEMORY_CUE_BUDGET:,} env steps"
        )
        print(
            "| contender | seed | reached 95% at (env steps) | last evaluation | best evaluation | wall s |"
        )
        print("|---|---|---|---|---|---|")
        contenders = (
            ("PPO + LSTM", LSTM),
            ("PPO + attention", CUE_ATTENTION),
            ("PPO, no memory", MEMORYLESS),
        )
        for name, model in contenders:
            for seed in range(seeds):
                config = {**MEMORY_CUE, "env_config": {"cue_distance": distance}, **model, "seed": seed}
                result = run(config, MEMORY_CUE_BUDGET, MEMORY_CUE_TARGET)
                print(_row(name, seed, result, "{:.0%}"), flush=True)


def memory_cue_dqn(seeds: int) -> None:
    print(
        f"\nMemoryCue, DQN (cue 10 steps before the answer): first evaluation with "
        f">= {MEMORY_CUE_TARGET:.0%} right answers within {MEMORY_CUE_BUDGET:,} env steps"
    )
    print("| contender | seed | reached 95% at (env steps) | last evaluation | best evaluation | wall s |")
    print("|---|---|---|---|---|---|")
    for name, model in (("DQN + LSTM (R2D2)", {"use_lstm": True}), ("DQN, no memory", {"burn_in": None})):
        for seed in range(seeds):
            result = run({**CUE_DQN, **model, "seed": seed}, MEMORY_CUE_BUDGET, MEMORY_CUE_TARGET, "DQN")
            print(_row(name, seed, result, "{:.0%}"), flush=True)


def _row(name: str, seed: int, result: dict[str, float], score: str) -> str:
    """A table row: when the target was reached, the last and best evaluations, the wall time."""
    reached = "never" if math.isnan(result["reached_at"]) else f"{result['reached_at']:,.0f}"
    last, best = score.format(result["last"]), score.format(result["best"])
    return f"| {name} | {seed} | {reached} | {last} | {best} | {result['wall_s']:.0f} |"


def interleaved_rates(models: dict[str, dict[str, Any]], iterations: int) -> dict[str, dict[str, float]]:
    """Train each model's PPO for `iterations` iterations in this process, one iteration of each
    in turn, so that a change in the machine's load hits every model alike; env steps/s of
    sampling alone and of training (sampling plus learning), per model."""
    import torch

    from rlsweep.trainables.ppo import PPO

    torch.set_num_threads(1)
    algos = {name: PPO(config={**THROUGHPUT, **model}) for name, model in models.items()}
    times = {name: {"sample": 0.0, "learn": 0.0, "steps": 0} for name in models}
    totals = dict.fromkeys(models, 0)
    for iteration in range(iterations + 1):
        for name, algo in algos.items():
            result = algo.train()
            steps, totals[name] = result["timesteps_total"] - totals[name], result["timesteps_total"]
            if iteration == 0:  # warm-up: first calls allocate and build
                continue
            times[name]["sample"] += result["sample_time_s"]
            times[name]["learn"] += result["learn_time_s"]
            times[name]["steps"] += steps
    for algo in algos.values():
        algo.stop()
    return {
        name: {
            "sample_steps_per_s": t["steps"] / t["sample"],
            "train_steps_per_s": t["steps"] / (t["sample"] + t["learn"]),
        }
        for name, t in times.items()
    }


def throughput(seeds: int) -> None:
    batch = THROUGHPUT["num_envs_per_worker"] * THROUGHPUT["rollout_length"]
    iterations = THROUGHPUT_STEPS // batch
    print(
        f"\nThroughput on CartPole-v1 ({iterations * batch:,} env steps each, same sampler and learner "
        "settings, the models' iterations interleaved in one process)"
    )
    models = {"MLP": MEMORYLESS, "LSTM": LSTM, "attention": ATTENTION}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        rates = pool.submit(interleaved_rates, models, iterations).result()
    print("| model | sampling env steps/s | training env steps/s | cost vs MLP: sampling | training |")
    print("|---|---|---|---|---|")
    mlp = rates["MLP"]
    for name, rate in rates.items():
        sample, training = rate["sample_steps_per_s"], rate["train_steps_per_s"]
        costs = f"{mlp['sample_steps_per_s'] / sample:.2f}x | {mlp['train_steps_per_s'] / training:.2f}x"
        print(f"| {name} | {sample:,.0f} | {training:,.0f} | {costs} |")


TABLES = {
    "stateless_cartpole": stateless_cartpole,
    "memory_cue": memory_cue,
    "memory_cue_dqn": memory_cue_dqn,
    "throughput": throughput,
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--only", choices=list(TABLES), action="append")
    args = parser.parse_args()
    for table in args.only or list(TABLES):
        TABLES[table](args.seeds)
