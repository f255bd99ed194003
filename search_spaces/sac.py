"""SAC search space, in the spirit of rl-baselines3-zoo's `sample_sac_params`."""

from __future__ import annotations

from typing import Any

import optuna

from rlsweep.search_spaces.search_space import named_choice, search_space

NET_ARCHS = {"small": (64, 64), "medium": (256, 256), "big": (400, 300)}


@search_space
def sac(trial: optuna.Trial) -> dict[str, Any]:
    """Sample a valid SAC config.

    Log scales for the learning rate and 1 - gamma; powers of two for batch and buffer
    sizes. As in the zoo, one gradient step per transition a worker collects (the
    replay ratio the SAC paper uses), however the round is sized. Every buffer size holds
    the largest `learning_starts`.
    """
    num_envs = trial.suggest_categorical("num_envs_per_worker", [1, 2, 4, 8])
    train_freq = trial.suggest_categorical("train_freq", [1, 2, 4, 8, 16, 32, 64])
    net_arch = trial.suggest_categorical("net_arch", list(NET_ARCHS))
    return {
        "num_envs_per_worker": num_envs,
        "train_freq": train_freq,
        "gradient_steps": train_freq * num_envs,
        "lr": trial.suggest_float("lr", 1e-4, 3e-3, log=True),
        "gamma": 1 - trial.suggest_float("one_minus_gamma", 1e-4, 0.1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
        "buffer_size": trial.suggest_categorical("buffer_size", [2**14, 2**17, 2**20]),
        "learning_starts": trial.suggest_categorical("learning_starts", [0, 100, 1000, 10000]),
        "tau": trial.suggest_categorical("tau", [0.001, 0.005, 0.01, 0.02, 0.05]),
        "hidden_sizes": NET_ARCHS[net_arch],
    }


@sac.inverse
def _sac_params(config: dict[str, Any]) -> dict[str, Any]:
    """The params behind the config keys `sac` derives (`gradient_steps` follows from
    `train_freq` and `num_envs_per_worker`, which are params themselves)."""
    params: dict[str, Any] = {}
    if "gamma" in config:
        params["one_minus_gamma"] = 1 - config["gamma"]
    if "hidden_sizes" in config:
        params["net_arch"] = named_choice(NET_ARCHS, config["hidden_sizes"])
    return params
