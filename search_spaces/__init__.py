"""Optuna define-by-run search spaces, one per algorithm: `space(trial) -> config`.

Each is usable directly as `OptunaSearch(space=search_spaces.ppo, ...)`.
"""

from __future__ import annotations

from rlsweep.search_spaces.dqn import dqn, dqn_memory
from rlsweep.search_spaces.fixed import fixed
from rlsweep.search_spaces.offline import bc, cql, discretecql, iql, marwil
from rlsweep.search_spaces.ppo import ppo, ppo_memory
from rlsweep.search_spaces.sac import sac
from rlsweep.search_spaces.search_space import NarrowedTrial, SearchSpace, search_space
from rlsweep.trainables.config import ConfigError, did_you_mean

SEARCH_SPACES: dict[str, SearchSpace] = {
    "ppo": ppo,
    "ppo_memory": ppo_memory,
    "dqn": dqn,
    "dqn_memory": dqn_memory,
    "sac": sac,
    "fixed": fixed,
    "bc": bc,
    "marwil": marwil,
    "cql": cql,
    "discretecql": discretecql,
    "iql": iql,
}
"""Space names as experiment files spell them."""


def get_search_space(name: str) -> SearchSpace:
    if name not in SEARCH_SPACES:
        hint = did_you_mean(name, SEARCH_SPACES) or f"; available: {', '.join(SEARCH_SPACES)}"
        raise ConfigError(f"unknown search space {name!r}{hint}")
    return SEARCH_SPACES[name]


__all__ = [
    "SEARCH_SPACES", "NarrowedTrial", "SearchSpace", "dqn", "dqn_memory", "fixed", "get_search_space", "ppo",
    "ppo_memory", "sac",
    "search_space",
]  # fmt: skip
