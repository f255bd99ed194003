"""A `medium-replay` dataset: the replay buffer of an off-policy training run (SAC by
default), stopped once its recent training episodes reach a target return.

As D4RL's medium-replay, it holds everything the learner saw on its way to a medium
policy: random first steps, then ever better ones. One process, no Ray; one env per
seed so that the buffer's rows are the episodes in order. The same seed and settings
record the same dataset.

    python -m rlsweep.trainables.offline.replay --env Pendulum-v1 --target-return -530 \
        --seed 4 --set 'hidden_sizes=[64,64]' --set batch_size=128 --set timesteps_per_iteration=200 \
        --ref-min-score -1200 --ref-max-score -132 --output pendulum-medium-replay.npz

`timesteps_per_iteration` sets how often the target is checked: every episode here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import yaml

from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.envs.names import env_label
from rlsweep.trainables.off_policy import OffPolicyAlgorithm
from rlsweep.trainables.offline.dataset import Dataset, DatasetInfo
from rlsweep.trainables.offline.formats import write_dataset

RECENT_EPISODES = 10
"""Training episodes whose mean return is compared with the target."""


def record_replay(
    env: str,
    *,
    target_return: float,
    max_timesteps: int,
    algorithm: str = "SAC",
    seed: int = 0,
    config: dict[str, Any] | None = None,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Train `algorithm` in `env` until the mean return of its last RECENT_EPISODES training
    episodes reaches `target_return` (or `max_timesteps` pass), then return its replay buffer."""
    from rlsweep.trainables.registry import get_algorithm

    trainable = get_algorithm(algorithm)
    if not (isinstance(trainable, type) and issubclass(trainable, OffPolicyAlgorithm)):
        raise ConfigError(f"a replay dataset needs a replay-buffer algorithm (DQN, SAC), not {algorithm}")
    settings = {
        **(config or {}),
        "env": env,
        "seed": seed,
        "num_seeds": 1,
        "num_workers": 0,
        "num_envs_per_worker": 1,
        "n_step": 1,
        "evaluation_interval": 0,
    }
    settings.setdefault("buffer_size", max_timesteps)
    algo = trainable(config=settings)
    try:
        recent = -np.inf
        while algo.timesteps_total < max_timesteps:
            algo.train()
            returns = list(algo.episodes.returns[0])[-RECENT_EPISODES:]
            recent = float(np.mean(returns)) if returns else -np.inf
            if progress is not None:
                progress(
                    f"{algo.timesteps_total} steps, last {RECENT_EPISODES} episodes' mean return {recent:.1f}"
                )
            if recent >= target_return:
                break
        else:
            raise ConfigError(
                f"{algorithm} did not reach return {target_return} in {max_timesteps} steps "
                f"(last {RECENT_EPISODES} episodes: {recent:.1f}); raise --max-timesteps or lower the target"
            )
        arrays = algo.replay_transitions()
        observation_space, action_space = algo.observation_space, algo.action_space
    finally:
        algo.stop()
    info = DatasetInfo(
        env_id=env_label(env),
        observation_space=observation_space,
        action_space=action_space,
        policy=f"{algorithm} replay buffer until return {target_return}",
        ref_min_score=ref_min_score,
        ref_max_score=ref_max_score,
        seed=seed,
    )
    arrays["truncations"][-1] = not arrays["terminations"][-1]
    dataset = Dataset(**arrays, info=info)
    dataset.check(f"from the {algorithm} replay buffer")
    return dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--algo", default="SAC")
    parser.add_argument("--target-return", type=float, required=True)
    parser.add_argument("--max-timesteps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ref-min-score", type=float)
    parser.add_argument("--ref-max-score", type=float)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="an algorithm setting"
    )
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    settings = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --set takes KEY=VALUE, got {item!r}")
        settings[key] = yaml.safe_load(value)
    try:
        dataset = record_replay(
            args.env,
            target_return=args.target_return,
            max_timesteps=args.max_timesteps,
            algorithm=args.algo,
            seed=args.seed,
            config=settings,
            ref_min_score=args.ref_min_score,
            ref_max_score=args.ref_max_score,
            progress=print,
        )
    except ConfigError as error:
        raise SystemExit(f"error: {error}") from None
    where = write_dataset(dataset, args.output)
    returns = dataset.episode_returns()
    print(
        f"wrote {len(dataset)} transitions, {len(returns)} episodes "
        f"(mean return {returns.mean():.1f}) to {where}"
    )


if __name__ == "__main__":
    main()
