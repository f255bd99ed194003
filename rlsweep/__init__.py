"""rlsweep: hyperparameter sweeps for reinforcement learning on Ray Tune, driven by Optuna.

The public API: the algorithms as Tune Trainables (`PPO`, `DQN`, `SAC`), `load_policy` for
a trained agent without Ray, and `rlsweep.search_spaces` for Optuna define-by-run spaces.
The rest of the package turns experiment files into sweeps (see docs/architecture.md).

Names load on first use, so `rlsweep --help` and the checks that run before a sweep do not
pay for importing torch and Ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_PUBLIC = {"DQN", "PPO", "SAC", "Policy", "load_policy"}
"""Names `rlsweep` exports from `rlsweep.trainables`."""

if TYPE_CHECKING:
    from rlsweep.trainables import DQN, PPO, SAC, Policy, load_policy


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module("rlsweep.trainables"), name)
    raise AttributeError(f"module 'rlsweep' has no attribute {name!r}")


__all__ = ["DQN", "PPO", "SAC", "Policy", "__version__", "load_policy"]
