"""rlsweep's RL algorithms, each a `ray.tune.Trainable`."""

from pathlib import Path

from rlsweep.trainables.algorithm import Algorithm, AlgorithmConfig
from rlsweep.trainables.checkpoint import CheckpointError, read_checkpoint
from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.dqn import DQN, DQNConfig
from rlsweep.trainables.members import SEED_STRIDE
from rlsweep.trainables.policy import Policy
from rlsweep.trainables.ppo import PPO, PPOConfig
from rlsweep.trainables.sac import SAC, SACConfig

ALGORITHMS: dict[str, type[Algorithm]] = {"PPO": PPO, "DQN": DQN, "SAC": SAC}
"""Algorithm names as experiment files and the CLI spell them."""


def get_algorithm(name: str) -> type[Algorithm]:
    """The trainable class for `name` (case-insensitive), or a ConfigError listing the choices."""
    for known, trainable in ALGORITHMS.items():
        if known.lower() == name.lower():
            return trainable
    raise ConfigError(f"unknown algorithm {name!r}; available: {', '.join(ALGORITHMS)}")


def load_policy(checkpoint: str | Path, device: str = "cpu", member: int | None = None) -> Policy:
    """The trained policy in any rlsweep checkpoint, ready for `compute_single_action`: of a
    multi-seed trial, `member`, or the member whose last evaluation was best."""
    algorithm = read_checkpoint(checkpoint)["algorithm"]
    if algorithm not in ALGORITHMS:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} holds unknown algorithm {algorithm!r}")
    return ALGORITHMS[algorithm].load_policy(checkpoint, device, member)


__all__ = [
    "ALGORITHMS", "DQN", "PPO", "SAC", "SEED_STRIDE", "Algorithm", "AlgorithmConfig", "CheckpointError",
    "ConfigError", "DQNConfig", "PPOConfig", "Policy", "SACConfig", "get_algorithm", "load_policy",
]  # fmt: skip
