"""The space that searches nothing: what `rlsweep train` and fixed-config experiments run."""

from __future__ import annotations

from typing import Any

import optuna

from rlsweep.search_spaces.search_space import search_space


@search_space
def fixed(trial: optuna.Trial) -> dict[str, Any]:
    """No search: every trial trains the experiment's `config` as it is."""
    return {}
