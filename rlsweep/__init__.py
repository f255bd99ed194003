"""rlsweep: hyperparameter sweeps for reinforcement learning on Ray Tune, driven by Optuna.

Three concepts, one subpackage each: `rlsweep.trainables` (the algorithms as Tune
Trainables, their rollout worker actors and learner math), `rlsweep.search_spaces`
(Optuna define-by-run functions) and `rlsweep.experiments` (experiment files and the
pipeline that runs them, the CLI, tracking).
"""

from rlsweep.trainables import DQN, PPO, SAC, load_policy

__version__ = "0.2.0"

__all__ = ["DQN", "PPO", "SAC", "__version__", "load_policy"]
