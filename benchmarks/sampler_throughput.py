"""Env steps/s of one rollout worker with its policy, next to the raw vector env it steps.

    python benchmarks/sampler_throughput.py

The worker (rlsweep's RolloutWorker with PPO's policy for CartPole-v1, in this process, one
torch thread) samples rollouts of 64 steps; the raw env is the same vector env (CartPole's
native one, with the episode statistics wrapper the worker uses) stepping random actions,
with no policy. "worker / raw" is the share of the raw rate the worker keeps: the rest is
the policy's forward pass, action sampling and the rollout's bookkeeping.
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np
import torch

from rlsweep.trainables.envs.build import env_spaces, make_vector_env
from rlsweep.trainables.models.policies import ActorCriticPolicy
from rlsweep.trainables.ppo import PPOConfig
from rlsweep.trainables.sampling.rollout_worker import RolloutWorker

ENV = "CartPole-v1"
ROLLOUT_LENGTH = 64


def raw_steps_per_s(num_envs: int, seconds: float) -> float:
    """Random actions, drawn beforehand, stepped through the vector env."""
    env = make_vector_env(ENV, num_envs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(1024, num_envs))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for action in actions[:256]:
            env.step(action)
        steps += 256 * num_envs
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def worker_steps_per_s(num_envs: int, seconds: float) -> float:
    """Whole rollouts sampled by a RolloutWorker with an untrained PPO policy."""
    config = PPOConfig(env=ENV, num_envs_per_worker=num_envs)
    observation_space, action_space = env_spaces(ENV)
    make_policy = functools.partial(ActorCriticPolicy, config, observation_space, action_space, "cpu", [0])
    worker = RolloutWorker(ENV, {}, num_envs, [0], make_policy)
    weights = make_policy().get_weights()
    worker.sample(weights, ROLLOUT_LENGTH)  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        rollout = worker.sample(weights, ROLLOUT_LENGTH)
        steps += rollout.valid.size
    elapsed = time.perf_counter() - start
    worker.close()
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", type=int, nargs="+", default=[8, 64, 256], help="envs per worker")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row and side")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'envs':>5} {'raw env steps/s':>16} {'worker steps/s':>15} {'worker / raw':>13}")
    for num_envs in args.envs:
        raw = raw_steps_per_s(num_envs, args.seconds)
        worker = worker_steps_per_s(num_envs, args.seconds)
        print(f"{num_envs:>5} {raw:>16,.0f} {worker:>15,.0f} {worker / raw:>12.0%}", flush=True)


if __name__ == "__main__":
    main()
