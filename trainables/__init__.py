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
"""

from pathlib import Path

# isort: off
# Each algorithm registers itself on import; this order is the order `rlsweep list` shows.
from rlsweep.trainables.ppo import PPO, PPOConfig
from rlsweep.trainables.dqn import DQN, DQNConfig
from rlsweep.trainables.sac import SAC, SACConfig

# isort: on
from rlsweep.trainables.algorithm import Algorithm
from rlsweep.trainables.algorithm_config import AlgorithmConfig
from rlsweep.trainables.checkpoint import CheckpointError, read_checkpoint
from rlsweep.trainables.config import ConfigError
from rlsweep.trainables.models.policy import Policy
from rlsweep.trainables.registry import ALGORITHMS, get_algorithm
from rlsweep.trainables.seeds import SEED_STRIDE


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
