"""The env zoo: env families from PyPI that no one on rlsweep wrote, each checked and trained
by PPO for a short budget, as a new user would try them.

    pip install -e ".[zoo]"                             # the families, pinned
    python benchmarks/env_zoo.py                        # every family
    python benchmarks/env_zoo.py --only minigrid-empty highway --budget-scale 0.5

For each family the script runs rlsweep's own pre-Ray check (`Algorithm.check_environment`,
what `rlsweep check`, `train` and `sweep` run), and either prints its one-line error or
trains in this process (num_workers 0) and prints: env steps/s of training against the raw
env stepped alone with random actions (the same run, the same machine), the greedy policy's
evaluation return and the last training episodes' return after the budget, against a random
policy's, and the warnings gymnasium's env checker gave. A family "beats random" when its
trained return exceeds the random one.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import gymnasium as gym
import numpy as np
import torch

from rlsweep.trainables import PPO, ConfigError
from rlsweep.trainables.config import build_config
from rlsweep.trainables.envs.build import make_env

WRAPPED = "rlsweep.trainables.envs.wrapped:wrapped_env"
PPO_SMALL = {
    "num_envs_per_worker": 8,
    "rollout_length": 128,
    "minibatch_size": 256,
    "num_epochs": 4,
    "lr": 5e-4,
    "ent_coef": 0.01,
    "hidden_sizes": [64, 64],
}
MINIGRID_PPO = {**PPO_SMALL, "num_envs_per_worker": 16}
"""The first config of experiments/minigrid/minigrid_doorkey_ppo.yaml."""
MINIGRID_EMPTY_PPO = {**MINIGRID_PPO, "ent_coef": 0.001}
"""The first config of experiments/minigrid/minigrid_empty_ppo.yaml."""


@dataclass
class Family:
    """One env family: the PyPI package, the env as rlsweep names it, and PPO's budget."""

    name: str
    package: str
    env: str
    env_config: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=lambda: dict(PPO_SMALL))
    budget: int = 20_000
    """Env steps of training."""


FAMILIES = [
    Family(
        "minigrid-empty",
        "minigrid",
        WRAPPED,
        {"id": "minigrid:MiniGrid-Empty-5x5-v0", "wrappers": ["minigrid.wrappers:ImgObsWrapper"]},
        MINIGRID_EMPTY_PPO,
        50_000,
    ),
    Family(
        "minigrid-doorkey",
        "minigrid",
        WRAPPED,
        {"id": "minigrid:MiniGrid-DoorKey-5x5-v0", "wrappers": ["minigrid.wrappers:ImgObsWrapper"]},
        MINIGRID_PPO,
        300_000,
    ),
    Family("minigrid-dict-mission", "minigrid", "minigrid:MiniGrid-Empty-5x5-v0", config=MINIGRID_EMPTY_PPO),
    Family(
        "highway",
        "highway-env",
        "highway_env:highway-fast-v0",
        config={**PPO_SMALL, "rollout_length": 16, "minibatch_size": 64},
        budget=1_500,
    ),
    Family(
        "flappy-bird", "flappy-bird-gymnasium", "flappy_bird_gymnasium:FlappyBird-v0", {"use_lidar": False}
    ),
    Family("point-maze", "gymnasium-robotics", "gymnasium_robotics:PointMaze_UMazeDense-v3"),
    Family(  # the answer is the card seen 4 steps ago: a task for a policy with memory
        "popgym",
        "popgym",
        "popgym:popgym-RepeatPreviousEasy-v0",
        config={**PPO_SMALL, "use_lstm": True, "lstm_use_prev_action": True, "max_seq_len": 16},
        budget=50_000,
    ),
    Family("simplegrid", "gym-simplegrid", "gym_simplegrid:SimpleGrid-4x4-v0"),
    Family("anytrading", "gym-anytrading", "gym_anytrading:stocks-v0"),
    Family("mo-gymnasium", "mo-gymnasium", "mo_gymnasium:deep-sea-treasure-v0"),
    Family("miniworld", "miniworld", "miniworld:MiniWorld-OneRoom-v0"),
    Family(  # episodes of 1,000 steps: 20k env steps would be 20 episodes
        "dm-control (shimmy)",
        "shimmy[dm-control]",
        "shimmy:dm_control/cartpole-balance-v0",
        config={
            **PPO_SMALL,
            "normalize_obs": True,
            "ent_coef": 0.0,
            "lr": 3e-4,
            "num_epochs": 10,
            "rollout_length": 256,
        },
        budget=100_000,
    ),
]

RANDOM_EPISODES = 10
RAW_STEPS_SECONDS = 2.0


@dataclass
class ZooRow:
    family: Family
    budget: int = 0
    """Env steps trained."""
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    raw_steps_per_s: float = math.nan
    train_steps_per_s: float = math.nan
    random_return: float = math.nan
    trained_return: float = math.nan
    """The greedy policy's evaluation return after the budget."""
    training_return: float = math.nan
    """The mean return of the last training episodes (the exploring policy)."""

    @property
    def beats_random(self) -> bool:
        return max(self.trained_return, self.training_return) > self.random_return


def random_policy(env: gym.Env, episodes: int, max_steps: int = 5_000) -> tuple[float, float]:
    """(mean return of random episodes, raw env steps/s over RAW_STEPS_SECONDS of stepping)."""
    returns = []
    for episode in range(episodes):
        env.reset(seed=episode)
        env.action_space.seed(episode)
        total, done, steps = 0.0, False, 0
        while not done and steps < max_steps:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done, steps = total + float(reward), terminated or truncated, steps + 1
        returns.append(total)
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < RAW_STEPS_SECONDS:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    return float(np.mean(returns)), steps / (time.perf_counter() - start)


def run_family(family: Family, budget_scale: float) -> ZooRow:
    row = ZooRow(family)
    config = {
        **family.config,
        "env": family.env,
        "env_config": family.env_config,
        "evaluation_interval": 0,
        "evaluation_num_episodes": 10,
    }
    try:
        report = PPO.check_environment(build_config(PPO.config_class, config), run_env_checker=True)
    except (ConfigError, ImportError) as error:
        row.error = str(error).splitlines()[0]
        return row
    row.warnings = report.warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = make_env(report.source, family.env_config)
        row.random_return, row.raw_steps_per_s = random_policy(env, RANDOM_EPISODES)
        env.close()
        algo = PPO(config=config)
        budget = int(family.budget * budget_scale)
        start, result = time.perf_counter(), {}
        while not result or result["timesteps_total"] < budget:
            result = algo.train()
        row.budget = result["timesteps_total"]
        row.train_steps_per_s = row.budget / (time.perf_counter() - start)
        row.training_return = result.get("episode_return_mean", math.nan)
        row.trained_return = algo.evaluate()["episode_return_mean"]
        algo.stop()
    return row


def table(rows: list[ZooRow]) -> str:
    lines = [
        "| family (PyPI) | env | runs | env steps/s: training / raw env | return: greedy / training"
        " / random | beats random | env checker warnings |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        family = row.family
        env = family.env_config.get("id", family.env) + (
            " + " + ", ".join(w.rpartition(":")[2] for w in family.env_config["wrappers"])
            if "wrappers" in family.env_config
            else ""
        )
        if row.error:
            lines.append(f"| {family.name} ({family.package}) | `{env}` | no: {row.error} | | | | |")
            continue
        ratio = row.train_steps_per_s / row.raw_steps_per_s
        lines.append(
            f"| {family.name} ({family.package}) | `{env}` | yes, {row.budget:,} steps "
            f"| {row.train_steps_per_s:,.0f} / {row.raw_steps_per_s:,.0f} ({ratio:.2f}x) "
            f"| {row.trained_return:.3g} / {row.training_return:.3g} / {row.random_return:.3g} "
            f"| {'yes' if row.beats_random else 'no'} | {len(row.warnings)}"
            + (f": {row.warnings[0][:80]}" if row.warnings else "")
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", nargs="*", help="family names to run (default: all)")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every budget")
    args = parser.parse_args()
    torch.set_num_threads(1)
    chosen = [f for f in FAMILIES if not args.only or f.name in args.only]
    rows = []
    for family in chosen:
        rows.append(run_family(family, args.budget_scale))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
