"""PPO search space, in the spirit of rl-baselines3-zoo's `sample_ppo_params`."""

from __future__ import annotations

from typing import Any

import optuna

from rlsweep.search_spaces.search_space import named_choice, search_space

NET_ARCHS = {"tiny": (32, 32), "small": (64, 64), "medium": (256, 256)}


@search_space
def ppo(trial: optuna.Trial) -> dict[str, Any]:
    """Sample a valid PPO config.

    Log scales where the effect is multiplicative (learning rate, 1 - gamma, 1 - lambda,
    entropy coefficient); powers of two for sizes. The minibatch size is derived from a
    sampled number of minibatches, so it always divides, and never exceeds, the batch
    a single worker collects (the smallest batch any `num_workers` gives).
    """
    num_envs = trial.suggest_categorical("num_envs_per_worker", [4, 8, 16, 32])
    rollout_length = trial.suggest_categorical("rollout_length", [16, 32, 64, 128, 256, 512])
    num_minibatches = trial.suggest_categorical("num_minibatches", [1, 2, 4, 8, 16])
    net_arch = trial.suggest_categorical("net_arch", list(NET_ARCHS))
    return {
        "num_envs_per_worker": num_envs,
        "rollout_length": rollout_length,
        "minibatch_size": max(2, num_envs * rollout_length // num_minibatches),
        "num_epochs": trial.suggest_categorical("num_epochs", [1, 3, 5, 10, 20]),
        "lr": trial.suggest_float("lr", 1e-5, 3e-3, log=True),
        "gamma": 1 - trial.suggest_float("one_minus_gamma", 1e-4, 0.1, log=True),
        "gae_lambda": 1 - trial.suggest_float("one_minus_gae_lambda", 1e-3, 0.2, log=True),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3, 0.4]),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "vf_coef": trial.suggest_float("vf_coef", 0.2, 1.0),
        "max_grad_norm": trial.suggest_categorical("max_grad_norm", [0.3, 0.5, 0.7, 1.0, 2.0, 5.0]),
        "hidden_sizes": NET_ARCHS[net_arch],
        "activation": trial.suggest_categorical("activation", ["tanh", "relu"]),
    }


@ppo.inverse
def _ppo_params(config: dict[str, Any]) -> dict[str, Any]:
    """The params behind the config keys `ppo` derives."""
    params: dict[str, Any] = {}
    if "gamma" in config:
        params["one_minus_gamma"] = 1 - config["gamma"]
    if "gae_lambda" in config:
        params["one_minus_gae_lambda"] = 1 - config["gae_lambda"]
    if "hidden_sizes" in config:
        params["net_arch"] = named_choice(NET_ARCHS, config["hidden_sizes"])
    if {"minibatch_size", "num_envs_per_worker", "rollout_length"} <= set(config):
        batch = config["num_envs_per_worker"] * config["rollout_length"]
        params["num_minibatches"] = batch // config["minibatch_size"]
    return params


@search_space
def ppo_memory(trial: optuna.Trial) -> dict[str, Any]:
    """The `ppo` space plus a policy's memory: an LSTM, an attention net or neither.

    Also samples the attention's span (attention_memory steps), the LSTM's size, whether the
    memory sees the previous action, and the sequence length it learns through (never longer
    than the rollout, so every sample is valid)."""
    config = ppo.sample(trial)
    use_lstm = trial.suggest_categorical("use_lstm", [True, False])
    return {
        **config,
        "use_lstm": use_lstm,
        # One memory at most: attention is a choice only for trials without the LSTM.
        "use_attention": not use_lstm and trial.suggest_categorical("use_attention", [True, False]),
        "attention_memory": trial.suggest_categorical("attention_memory", [8, 16, 32]),
        "lstm_cell_size": trial.suggest_categorical("lstm_cell_size", [32, 64, 128, 256]),
        "lstm_use_prev_action": trial.suggest_categorical("lstm_use_prev_action", [False, True]),
        "max_seq_len": min(
            config["rollout_length"], trial.suggest_categorical("max_seq_len", [8, 16, 32, 64])
        ),
    }


ppo_memory.inverse(_ppo_params)
