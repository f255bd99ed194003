"""rlsweep's RL algorithms, each a `ray.tune.Trainable`.

    algorithm.py          the Tune lifecycle every algorithm shares
    algorithm_config.py   the settings every algorithm has
    ppo.py, dqn.py, sac.py, off_policy.py   each algorithm's config and learner math
    registry.py           algorithm names as experiments spell them
    seeds.py              a trial's seeds: their values, randomness and per-seed results
    envs/                 every env form, resolved, built and checked
    models/               networks, action distributions, observation encoding, the policy
    sampling/             rollout workers (Ray actors or in-process) and evaluation
    learning/             what learners share: advantages, replay, optimizers, devices

Names load on first use: importing a light module of this package (its config errors,
say) does not import torch and Ray.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlsweep.trainables.algorithm import Algorithm
    from rlsweep.trainables.algorithm_config import AlgorithmConfig
    from rlsweep.trainables.checkpoint import CheckpointError
    from rlsweep.trainables.config import ConfigError
    from rlsweep.trainables.dqn import DQN, DQNConfig
    from rlsweep.trainables.models.policy import Policy
    from rlsweep.trainables.ppo import PPO, PPOConfig
    from rlsweep.trainables.registry import get_algorithm
    from rlsweep.trainables.sac import SAC, SACConfig
    from rlsweep.trainables.seeds import SEED_STRIDE

_EXPORTS = {
    "Algorithm": "rlsweep.trainables.algorithm",
    "AlgorithmConfig": "rlsweep.trainables.algorithm_config",
    "CheckpointError": "rlsweep.trainables.checkpoint",
    "ConfigError": "rlsweep.trainables.config",
    "DQN": "rlsweep.trainables.dqn",
    "DQNConfig": "rlsweep.trainables.dqn",
    "MultiAgentPPO": "rlsweep.trainables.multi_agent_ppo",
    "PPO": "rlsweep.trainables.ppo",
    "PPOConfig": "rlsweep.trainables.ppo",
    "Policy": "rlsweep.trainables.models.policy",
    "SAC": "rlsweep.trainables.sac",
    "SACConfig": "rlsweep.trainables.sac",
    "SEED_STRIDE": "rlsweep.trainables.seeds",
    "get_algorithm": "rlsweep.trainables.registry",
}
"""Each public name, by the module that defines it."""


def __getattr__(name: str) -> Any:
    if name == "ALGORITHMS":
        from rlsweep.trainables.registry import algorithms

        return algorithms()
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rlsweep.trainables' has no attribute {name!r}")


def load_policy(
    checkpoint: str | Path, device: str = "cpu", seed_index: int | None = None, *, member: int | None = None
) -> Policy:
    """The trained policy in any rlsweep checkpoint, ready for `compute_single_action`: of a
    multi-seed trial, seed `seed_index`, or the seed whose last evaluation was best.
    (`member` is the deprecated name of `seed_index`.)"""
    from rlsweep.trainables.checkpoint import CheckpointError, read_checkpoint
    from rlsweep.trainables.registry import ALGORITHM_MODULES, get_algorithm

    if member is not None:
        warnings.warn(
            "load_policy(member=i) is deprecated; use load_policy(seed_index=i)",
            DeprecationWarning,
            stacklevel=2,
        )
        seed_index = member
    algorithm = read_checkpoint(checkpoint)["algorithm"]
    if algorithm not in ALGORITHM_MODULES:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} holds unknown algorithm {algorithm!r}")
    return get_algorithm(algorithm).load_policy(checkpoint, device, seed_index)


__all__ = [
    "ALGORITHMS", "DQN", "PPO", "SAC", "SEED_STRIDE", "Algorithm", "AlgorithmConfig", "CheckpointError",
    "ConfigError", "DQNConfig", "PPOConfig", "Policy", "SACConfig", "get_algorithm", "load_policy",
]  # fmt: skip
