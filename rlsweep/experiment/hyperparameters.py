"""A trial's hyperparameters as trackers and reports show them: flat scalars, readable sizes."""

from __future__ import annotations

from typing import Any

from rlsweep.trainables.envs.names import env_label

Scalar = str | bool | int | float


def trial_hyperparameters(config: dict[str, Any]) -> dict[str, Scalar]:
    """The trial's config without Tune's bookkeeping keys, sorted by key; sequences such as
    hidden sizes become "64x64", a mapping's scalar entries (env_config) dotted keys, and an
    env class or factory its "module:Name"."""
    params: dict[str, Scalar] = {}
    for key, value in sorted(config.items()):
        if key.startswith("__") or value is None:
            continue
        if key == "env":
            params[key] = env_label(value)
        elif isinstance(value, (list, tuple)):
            params[key] = "x".join(str(v) for v in value)
        elif isinstance(value, dict):
            params.update(
                {f"{key}.{k}": v for k, v in value.items() if isinstance(v, (str, bool, int, float))}
            )
        elif isinstance(value, (str, bool, int, float)):
            params[key] = value
        else:
            params[key] = str(value)
    return params
