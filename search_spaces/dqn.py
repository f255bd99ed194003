"""DQN search space, in the spirit of rl-baselines3-zoo's `sample_dqn_params`."""

from __future__ import annotations

from typing import Any

import optuna

from rlsweep.search_spaces.search_space import named_choice, search_space

NET_ARCHS = {"tiny": (64,), "small": (64, 64), "medium": (256, 256)}


@search_space
def dqn(trial: optuna.Trial) -> dict[str, Any]:
    """Sample a valid DQN config.

    Log scales for the learning rate, 1 - gamma and the exploration length; powers of two
    for batch and buffer sizes. Gradient steps per round derive from the transitions one
    worker collects in it and a sampled subsampling factor, so the replay ratio stays at
    most one update per collected transition. Every buffer size holds the largest
    `learning_starts`.
    """
    num_envs = trial.suggest_categorical("num_envs_per_worker", [1, 4, 8])
    train_freq = trial.suggest_categorical("train_freq", [1, 4, 8, 16, 64, 256])
    subsample_steps = trial.suggest_categorical("subsample_steps", [1, 2, 4, 8])
    net_arch = trial.suggest_categorical("net_arch", list(NET_ARCHS))
    return {
        "num_envs_per_worker": num_envs,
        "train_freq": train_freq,
        "gradient_steps": max(1, train_freq * num_envs // subsample_steps),
        "lr": trial.suggest_float("lr", 1e-4, 5e-3, log=True),
        "gamma": 1 - trial.suggest_float("one_minus_gamma", 1e-3, 0.1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "buffer_size": trial.suggest_categorical("buffer_size", [2**14, 2**16, 2**18, 2**20]),
        "learning_starts": trial.suggest_categorical("learning_starts", [0, 1000, 5000, 10000]),
        "target_update_interval": trial.suggest_categorical(
            "target_update_interval", [1, 100, 250, 1000, 5000]
        ),
        "exploration_timesteps": trial.suggest_int("exploration_timesteps", 1000, 50_000, log=True),
        "exploration_final_eps": trial.suggest_float("exploration_final_eps", 0.0, 0.2),
        "n_step": trial.suggest_categorical("n_step", [1, 3, 5]),
        "double_q": trial.suggest_categorical("double_q", [True, False]),
        "dueling": trial.suggest_categorical("dueling", [False, True]),
        "hidden_sizes": NET_ARCHS[net_arch],
    }


@dqn.inverse
def _dqn_params(config: dict[str, Any]) -> dict[str, Any]:
    """The params behind the config keys `dqn` derives."""
    params: dict[str, Any] = {}
    if "gamma" in config:
        params["one_minus_gamma"] = 1 - config["gamma"]
    if "hidden_sizes" in config:
        params["net_arch"] = named_choice(NET_ARCHS, config["hidden_sizes"])
    if {"gradient_steps", "num_envs_per_worker", "train_freq"} <= set(config):
        collected = config["train_freq"] * config["num_envs_per_worker"]
        params["subsample_steps"] = max(1, collected // config["gradient_steps"])
    return params


@search_space
def dqn_memory(trial: optuna.Trial) -> dict[str, Any]:
    """The `dqn` space plus recurrent DQN (R2D2): whether the Q-network has an LSTM, its size,
    whether it sees the previous action, the replayed sequences' length and the share of it
    spent on burn-in. Batches count sequences then, so a trial with the LSTM replays an
    eighth of the sampled batch size in sequences (at least 8); no dueling head with it."""
    config = dqn.sample(trial)
    use_lstm = trial.suggest_categorical("use_lstm", [True, False])
    max_seq_len = trial.suggest_categorical("max_seq_len", [8, 16, 32])
    return {
        **config,
        "use_lstm": use_lstm,
        "dueling": config["dueling"] and not use_lstm,
        "batch_size": max(8, config["batch_size"] // 8) if use_lstm else config["batch_size"],
        "lstm_cell_size": trial.suggest_categorical("lstm_cell_size", [32, 64, 128]),
        "lstm_use_prev_action": trial.suggest_categorical("lstm_use_prev_action", [False, True]),
        "max_seq_len": max_seq_len,
        "burn_in": int(max_seq_len * trial.suggest_categorical("burn_in_share", [0.0, 0.25, 0.5])),
    }


@dqn_memory.inverse
def _dqn_memory_params(config: dict[str, Any]) -> dict[str, Any]:
    """The params behind the config keys `dqn_memory` derives."""
    params = _dqn_params(config)
    if "burn_in" in config and "max_seq_len" in config:
        params["burn_in_share"] = config["burn_in"] / config["max_seq_len"]
    if config.get("use_lstm") and "batch_size" in config:
        params["batch_size"] = config["batch_size"] * 8
    return params
