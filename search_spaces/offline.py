"""Search spaces of the offline algorithms: the hyperparameters the offline literature
finds each result most sensitive to (CORL's and d3rlpy's per-dataset settings), with log
scales for learning rates, 1 - gamma and the conservative weight."""

from __future__ import annotations

from typing import Any

import optuna

from rlsweep.search_spaces.search_space import named_choice, search_space

NET_ARCHS = {"small": (64, 64), "medium": (256, 256)}


def _common(trial: optuna.Trial) -> dict[str, Any]:
    net_arch = trial.suggest_categorical("net_arch", list(NET_ARCHS))
    return {
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
        "hidden_sizes": NET_ARCHS[net_arch],
    }


def _inverse(config: dict[str, Any]) -> dict[str, Any]:
    """The params behind derived config keys (gamma, hidden_sizes)."""
    params: dict[str, Any] = {}
    if "gamma" in config:
        params["one_minus_gamma"] = 1 - config["gamma"]
    if "hidden_sizes" in config:
        params["net_arch"] = named_choice(NET_ARCHS, config["hidden_sizes"])
    return params


@search_space
def bc(trial: optuna.Trial) -> dict[str, Any]:
    """Sample a valid BC config: only the optimizer and the network matter."""
    return _common(trial)


@search_space
def marwil(trial: optuna.Trial) -> dict[str, Any]:
    """Sample a valid MARWIL config: beta from near-cloning to strongly advantage-weighted."""
    return {
        **_common(trial),
        "beta": trial.suggest_float("beta", 0.05, 3.0, log=True),
        "gamma": 1 - trial.suggest_float("one_minus_gamma", 1e-3, 0.05, log=True),
    }


@search_space
def cql(trial: optuna.Trial) -> dict[str, Any]:
    """Sample a valid CQL config (Box actions): the conservative weight matters most."""
    return {
        **_common(trial),
        "cql_alpha": trial.suggest_float("cql_alpha", 0.5, 20.0, log=True),
        "gamma": 1 - trial.suggest_float("one_minus_gamma", 1e-3, 0.05, log=True),
    }


@search_space
def discretecql(trial: optuna.Trial) -> dict[str, Any]:
    """Sample a valid DiscreteCQL config."""
    return {
        **_common(trial),
        "cql_alpha": trial.suggest_float("cql_alpha", 0.1, 10.0, log=True),
        "gamma": 1 - trial.suggest_float("one_minus_gamma", 1e-3, 0.05, log=True),
        "target_update_interval": trial.suggest_categorical("target_update_interval", [100, 500, 2000]),
    }


@search_space
def iql(trial: optuna.Trial) -> dict[str, Any]:
    """Sample a valid IQL config: the expectile and the temperature set how far it departs
    from the data's policy."""
    return {
        **_common(trial),
        "expectile": trial.suggest_float("expectile", 0.5, 0.95),
        "beta": trial.suggest_float("beta", 0.5, 10.0, log=True),
        "gamma": 1 - trial.suggest_float("one_minus_gamma", 1e-3, 0.05, log=True),
    }


for _space in (bc, marwil, cql, discretecql, iql):
    _space.inverse(_inverse)
