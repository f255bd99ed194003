"""How fast rlsweep samples Atari: env steps/s of its sampler, with the policy's CNN
inference, next to the raw rate of the same vector env stepping random actions with no policy.

All rows run in one process tree on the same cores, one after the other, each measured
`--repeats` times (the median is printed), so their ratios are comparable even on a busy
machine. A frame is an emulator frame: frames/s = 4 x env steps/s with the default frame
skip. Rows:

  raw native x1          ale-py's C++ vector env (the one rlsweep steps), random actions
  raw native x2          two of them in two processes at once (the cores 2 workers use)
  raw gymnasium wrappers gymnasium's AtariPreprocessing + FrameStackObservation over single
                         envs in a SyncVectorEnv (needs opencv-python-headless), random actions
  rlsweep in-process     the trainable's own sampler (num_workers: 0), weights in, rollout out
  rlsweep 1 worker       one rollout worker actor
  rlsweep 2 workers      two rollout worker actors; compared with raw native x2

    .venv/bin/python benchmarks/atari_throughput.py [--env ALE/Pong-v5] [--envs-per-worker 16]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

FRAME_SKIP = 4


def random_action_rate(env: Any, num_envs: int, steps: int) -> float:
    """Env steps/s of a vector env stepping random actions, after 20 warm-up steps; closes it."""
    import numpy as np

    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, env.single_action_space.n, (steps + 20, num_envs))
    for action in actions[:20]:
        env.step(action)
    start = time.perf_counter()
    for action in actions[20:]:
        env.step(action)
    rate = steps * num_envs / (time.perf_counter() - start)
    env.close()
    return rate


def raw_native(env_id: str, num_envs: int, steps: int) -> float:
    """Env steps/s of the vector env rlsweep builds, stepping random actions."""
    from rlsweep.trainables.envs.build import make_vector_env

    env = make_vector_env(env_id, num_envs)
    return random_action_rate(env, num_envs, steps)


def raw_native_in_processes(env_id: str, num_envs: int, steps: int, processes: int) -> float:
    """The summed rate of `processes` raw vector envs stepping at the same time."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        return sum(pool.starmap(raw_native, [(env_id, num_envs, steps)] * processes))


def raw_gymnasium_wrappers(env_id: str, num_envs: int, steps: int) -> float | None:
    """The same preprocessing by gymnasium's Python wrappers over single envs."""
    try:
        import cv2  # noqa: F401  (AtariPreprocessing resizes with it)
    except ImportError:
        return None
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)

    def make() -> gym.Env:
        env = gym.make(env_id, frameskip=1)
        env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=FRAME_SKIP, screen_size=84)
        return gym.wrappers.FrameStackObservation(env, 4)

    env = gym.vector.SyncVectorEnv([make] * num_envs, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    return random_action_rate(env, num_envs, steps)


def rlsweep_sampler(env_id: str, num_envs: int, steps: int, num_workers: int, rounds: int) -> float:
    """Env steps/s of a trial's WorkerGroup sampling with a PPO CNN policy, as `step()` calls it."""
    import torch

    torch.set_num_threads(1)
    import functools

    from rlsweep.trainables.envs.build import env_spaces
    from rlsweep.trainables.models.policies import ActorCriticPolicy
    from rlsweep.trainables.ppo import PPOConfig
    from rlsweep.trainables.sampling.worker_group import WorkerGroup

    config = PPOConfig(env=env_id, hidden_sizes=(512,), activation="relu", num_envs_per_worker=num_envs)
    observation_space, action_space = env_spaces(env_id)
    make_policy = functools.partial(ActorCriticPolicy, config, observation_space, action_space, "cpu", [0])
    weights = make_policy().get_weights()
    workers = WorkerGroup(num_workers, env_id, {}, num_envs, [0], make_policy, max_restarts=0)
    workers.sample(weights, steps)  # warm-up: actors started, first rollout shipped
    start = time.perf_counter()
    for _ in range(rounds):
        rollouts = workers.sample(weights, steps)
    elapsed = time.perf_counter() - start
    assert all(rollout.obs["image"].dtype == "uint8" for rollout in rollouts)
    workers.stop()
    return rounds * steps * num_envs * max(1, num_workers) / elapsed


def median_of(repeats: int, measure: Callable[[], float | None]) -> float | None:
    values = [measure() for _ in range(repeats)]
    return None if values[0] is None else statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="ALE/Pong-v5")
    parser.add_argument("--envs-per-worker", type=int, default=16)
    parser.add_argument("--rollout-length", type=int, default=128, help="steps per env per sample() call")
    parser.add_argument("--rounds", type=int, default=3, help="sample() calls per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per row (median printed)")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    env, n, length = args.env, args.envs_per_worker, args.rollout_length
    raw_steps = length * args.rounds
    rows: list[tuple[str, float | None, str]] = []
    raw1 = median_of(args.repeats, lambda: raw_native(env, n, raw_steps))
    raw2 = median_of(args.repeats, lambda: raw_native_in_processes(env, n, raw_steps, 2))
    wrappers = median_of(args.repeats, lambda: raw_gymnasium_wrappers(env, n, raw_steps))
    rows += [
        ("raw native x1", raw1, "raw native x1"),
        ("raw native x2", raw2, "raw native x2"),
        ("raw gymnasium wrappers", wrappers, "raw native x1"),
    ]
    for label, workers in (("rlsweep in-process", 0), ("rlsweep 1 worker", 1), ("rlsweep 2 workers", 2)):
        rate = median_of(args.repeats, lambda w=workers: rlsweep_sampler(env, n, length, w, args.rounds))
        rows.append((label, rate, "raw native x2" if workers == 2 else "raw native x1"))
    ray.shutdown()

    rates = {label: rate for label, rate, _ in rows}
    print(f"\n{env}, {n} envs per vector env, {os.cpu_count()} CPUs; medians of {args.repeats}\n")
    print("| sampler | env steps/s | frames/s | vs raw (same cores) |")
    print("|---|---|---|---|")
    for label, rate, baseline in rows:
        if rate is None:
            print(f"| {label} | skipped: pip install opencv-python-headless | | |")
            continue
        ratio = "" if label == baseline else f"{rate / rates[baseline]:.0%} of {baseline}"
        print(f"| {label} | {rate:,.0f} | {rate * FRAME_SKIP:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
